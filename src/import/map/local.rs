//! Commands on the host the runbook runs on: Docker and docker-compose, the GPUs, disks,
//! memory, load, folders, Redis, PostgreSQL's readiness, TCP ports, and deleting files.

use super::{Args, Ctx, Mapped, Native, grep_filter};
use crate::import::shell::Word;
use crate::import::yaml::Y;

/// The compose project every docker-compose command of the page works on.
fn project(ctx: &mut Ctx, given: Option<&str>) -> Y {
    match given {
        Some(p) => Y::Str(ctx.text(p)),
        None => Y::Str(ctx.required(
            "project",
            "Compose project of the page's docker-compose commands: the name docker-compose gives it (-p, or the compose file's folder)",
        )),
    }
}

/// A compose service, or a container when it carries a replica number (`benchmark_1`).
fn target(ctx: &mut Ctx, name: &str) -> (&'static str, Y) {
    let numbered = name
        .rsplit_once(['_', '-'])
        .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let key = if numbered { "container" } else { "service" };
    (key, Y::Str(ctx.text(name)))
}

pub fn compose(words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    let args = Args::read(
        words,
        &[
            "-f",
            "--file",
            "-p",
            "--project-name",
            "--tail",
            "--scale",
            "-t",
            "--timeout",
            "--since",
        ],
    );
    let given = args.get(&["-p", "--project-name"]).map(str::to_string);
    let pos: Vec<&str> = args.pos.iter().map(String::as_str).collect();
    let project = project(ctx, given.as_deref());
    match pos.as_slice() {
        ["ps", services @ ..] if filters.is_empty() => {
            let items = if services.is_empty() {
                vec![Native::check(
                    "docker_containers",
                    "containers",
                    Y::Map(vec![("project".into(), project)]),
                )]
            } else {
                services
                    .iter()
                    .map(|s| {
                        let (key, value) = target(ctx, s);
                        let spec = Y::Map(vec![
                            ("project".into(), project.clone()),
                            (key.into(), value),
                        ]);
                        Native::check(
                            "docker_containers",
                            format!("{}_containers", super::ident(s)),
                            spec,
                        )
                    })
                    .collect()
            };
            Some(Mapped::Native { items, every: None })
        }
        ["logs", services @ ..] if services.len() <= 1 && !args.has(&["-f", "--follow"]) => {
            let (matches, keep) = super::log_lines(filters, &args)?;
            let mut spec = vec![("project".to_string(), project)];
            if let Some(s) = services.first() {
                let (key, value) = target(ctx, s);
                spec.push((key.into(), value));
            }
            if let Some(since) = args.get(&["--since"]) {
                spec.push(("since".into(), Y::str(since)));
            }
            spec.push(("matches".into(), Y::str(super::literal(&matches))));
            if let Some(keep) = keep {
                spec.push(("keep".into(), Y::Int(keep as i64)));
            }
            let name = format!(
                "{}_log_lines",
                services
                    .first()
                    .map_or("compose".to_string(), |s| super::ident(s))
            );
            let mut check = Native::check("docker_logs", name, Y::Map(spec));
            check.unit = Some("lines".into());
            Some(Mapped::one(check))
        }
        _ if !filters.is_empty() => None,
        ["up", ..] if args.has(&["--scale"]) => {
            let items = args
                .flags
                .iter()
                .filter(|(f, _)| f == "--scale")
                .map(|(_, v)| {
                    let (service, n) = v.split_once('=')?;
                    let n: i64 = n.parse().ok()?;
                    let spec = Y::map([
                        ("project", Some(project.clone())),
                        ("service", Some(Y::Str(ctx.text(service)))),
                        ("replicas", Some(Y::Int(n))),
                    ]);
                    Some(Native::action(
                        "docker_scale",
                        format!("scale_{}_to_{n}", super::ident(service)),
                        spec,
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Mapped::Native { items, every: None })
        }
        [op @ ("restart" | "stop" | "start"), services @ ..] => {
            let grace = args
                .get(&["-t", "--timeout"])
                .map(|t| Y::str(format!("{t}s")));
            let one = |ctx: &mut Ctx, service: Option<&str>| {
                let mut spec = vec![
                    ("op".to_string(), Y::str(*op)),
                    ("project".to_string(), project.clone()),
                ];
                if let Some(s) = service {
                    let (key, value) = target(ctx, s);
                    spec.push((key.into(), value));
                }
                if let Some(g) = &grace {
                    spec.push(("grace".into(), g.clone()));
                }
                let name = format!("{op}_{}", service.map_or("all".to_string(), super::ident));
                Native::action("docker", name, Y::Map(spec))
            };
            let items = if services.is_empty() {
                vec![one(ctx, None)]
            } else {
                services.iter().map(|s| one(ctx, Some(s))).collect()
            };
            Some(Mapped::Native { items, every: None })
        }
        _ => None,
    }
}

pub fn docker(words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    if !filters.is_empty() {
        return None;
    }
    let args = Args::read(
        words,
        &["--format", "--filter", "-f", "--tail", "-t", "--time"],
    );
    let pos: Vec<&str> = args.pos.iter().map(String::as_str).collect();
    let known_only = |known: &[&str]| args.others(known).is_empty();
    match pos.as_slice() {
        ["stats"] if known_only(&["--no-stream", "-a", "--all"]) => Some(Mapped::one(
            Native::check("docker_stats", "docker_stats", Y::Map(vec![])),
        )),
        ["ps"] if known_only(&["-a", "--all"]) => Some(Mapped::one(Native::check(
            "docker_containers",
            "docker_containers",
            Y::Map(vec![]),
        ))),
        ["system", "prune"] if known_only(&["-f", "--force"]) => Some(Mapped::one(Native::action(
            "docker_prune",
            "docker_prune",
            Y::Map(vec![]),
        ))),
        ["logs", container] if known_only(&["--tail"]) => {
            let (matches, keep) = super::log_lines(filters, &args)?;
            let spec = Y::map([
                ("container", Some(Y::Str(ctx.text(container)))),
                ("matches", Some(Y::str(matches))),
                ("keep", keep.map(|k| Y::Int(k as i64))),
            ]);
            Some(Mapped::one(Native::check(
                "docker_logs",
                format!("{}_log_lines", super::ident(container)),
                spec,
            )))
        }
        [op @ ("restart" | "stop" | "start"), containers @ ..]
            if !containers.is_empty() && known_only(&["-t", "--time"]) =>
        {
            let items = containers
                .iter()
                .map(|c| {
                    let spec = Y::map([
                        ("op", Some(Y::str(*op))),
                        ("container", Some(Y::Str(ctx.text(c)))),
                    ]);
                    Native::action("docker", format!("{op}_{}", super::ident(c)), spec)
                })
                .collect();
            Some(Mapped::Native { items, every: None })
        }
        _ => None,
    }
}

/// Host programs, each with its own arguments.
pub fn host(program: &str, words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    let with_value: &[&str] = match program {
        "redis-cli" => &["-h", "-p", "-n", "-a"],
        "pg_isready" => &[
            "-h",
            "-p",
            "-d",
            "-U",
            "-t",
            "--host",
            "--port",
            "--dbname",
            "--username",
        ],
        "nc" | "ncat" | "netcat" => &["-w"],
        "nvidia-smi" => &["-i"],
        "grep" | "egrep" | "fgrep" => &["-e", "-m"],
        "tail" => &["-n"],
        _ => &[],
    };
    let args = Args::read(words, with_value);
    let pos: Vec<&str> = args.pos.iter().map(String::as_str).collect();
    let only = |known: &[&str]| args.others(known).is_empty();
    let none = || Y::Map(vec![]);
    let check = |kind: &'static str, name: &str, spec: Y| {
        Some(Mapped::one(Native::check(kind, name, spec)))
    };
    match program {
        "nvidia-smi" if pos.is_empty() && only(&["-q", "--query", "-L", "--list-gpus"]) => {
            check("gpus", "gpus", none())
        }
        "nvidia-smi" if pos.is_empty() && args.has(&["--query-compute-apps"]) => {
            check("gpu_processes", "gpu_processes", none())
        }
        "fuser"
            if pos.iter().all(|p| p.starts_with("/dev/nvidia"))
                && !pos.is_empty()
                && only(&["-v", "-m", "-u"]) =>
        {
            check("gpu_processes", "gpu_processes", none())
        }
        "df" if only(&["-h", "-H", "-k", "-P", "-T", "-l"]) => {
            let paths: Vec<Y> = if pos.is_empty() {
                vec![Y::str("/")]
            } else {
                pos.iter().map(|p| Y::Str(ctx.text(p))).collect()
            };
            let name = pos.first().map_or("disk_root".to_string(), |p| {
                format!("disk_{}", super::ident(p))
            });
            let mut item =
                Native::check("disk", name, Y::Map(vec![("paths".into(), Y::Seq(paths))]));
            item.unit = Some("%".into());
            Some(Mapped::one(item))
        }
        "free" if pos.is_empty() => check("memory", "memory", none()),
        "top" | "uptime" | "htop" if pos.is_empty() => check("load", "load", none()),
        "du" if only(&["-s", "-h", "-c", "-k", "-m", "--summarize"]) && !pos.is_empty() => {
            let items = pos
                .iter()
                .map(|p| {
                    let dir = p.trim_end_matches('*').trim_end_matches('/');
                    let dir = if dir.is_empty() { "/" } else { dir };
                    let spec = Y::Map(vec![("path".into(), Y::Str(ctx.text(dir)))]);
                    Native::check("dir_size", format!("size_{}", super::ident(dir)), spec)
                })
                .collect();
            Some(Mapped::Native { items, every: None })
        }
        "redis-cli" => redis(&args, &pos, ctx),
        "pg_isready" if pos.is_empty() => {
            let url = postgres_url(&args, ctx);
            check("pg_ready", "postgres_ready", Y::map([("url", url)]))
        }
        "telnet" | "nc" | "ncat" | "netcat" if only(&["-z", "-v", "-w", "-zv", "-vz"]) => {
            let [host, port] = pos.as_slice() else {
                return None;
            };
            port.parse::<u16>().ok()?;
            let spec = Y::Map(vec![(
                "address".into(),
                Y::Str(format!("{}:{port}", ctx.text(host))),
            )]);
            check("tcp", &format!("tcp_{}_{port}", super::ident(host)), spec)
        }
        // `netstat -tlnp | grep :8000`: is anything listening on the port — a connect answers it.
        "netstat" | "ss" if filters.len() == 1 => {
            let grep = &filters[0];
            let [g, pattern] = grep.as_slice() else {
                return None;
            };
            if g.value != "grep" {
                return None;
            }
            let port: u16 = pattern.value.strip_prefix(':')?.parse().ok()?;
            let spec = Y::Map(vec![(
                "address".into(),
                Y::Str(format!("127.0.0.1:{port}")),
            )]);
            let item = Native::check("tcp", format!("listening_{port}"), spec).review(format!(
                "the page looked for a listener on :{port}; oncall connects to 127.0.0.1:{port}"
            ));
            Some(Mapped::one(item))
        }
        "grep" | "egrep" | "fgrep" => grep(program, &args, filters, ctx),
        "tail" if filters.is_empty() => {
            let (file, count) = words.split_last()?;
            if file.value.starts_with('-') {
                return None;
            }
            let n = super::line_count(count)?;
            Some(Mapped::one(log_files(
                ctx,
                &[&file.value],
                ".",
                Some(n),
                &format!("tail_{}", super::ident(&file.value)),
            )))
        }
        "find" => find(words, ctx),
        "rm" => rm(&args, &pos, ctx),
        _ => None,
    }
}

/// `grep [-i|-E|-F] PATTERN FILE… [| tail -N]`: the lines of the files that match.
fn grep(program: &str, args: &Args, filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    let (pattern, files) = match args.get(&["-e"]) {
        Some(p) => (p.to_string(), &args.pos[..]),
        None => (args.pos.first()?.clone(), args.pos.get(1..)?),
    };
    if files.is_empty() {
        return None;
    }
    let word = Word::plain;
    let mut stage = vec![word(program)];
    for (flag, _) in &args.flags {
        if flag != "-e" {
            stage.push(word(flag));
        }
    }
    stage.extend([word("-e"), word(&pattern)]);
    let stages: Vec<Vec<Word>> = std::iter::once(stage)
        .chain(filters.iter().cloned())
        .collect();
    let Some(Ok((regex, keep))) = grep_filter(&stages) else {
        return None;
    };
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let name = format!("{}_lines", super::ident(&pattern));
    Some(Mapped::one(log_files(ctx, &files, &regex, keep, &name)))
}

fn log_files(
    ctx: &mut Ctx,
    files: &[&str],
    matches: &str,
    keep: Option<usize>,
    name: &str,
) -> Native {
    let paths = files.iter().map(|f| Y::Str(ctx.text(f))).collect();
    let spec = Y::map([
        ("paths", Some(Y::Seq(paths))),
        ("matches", Some(Y::str(super::literal(matches)))),
        (
            "keep",
            keep.map(|k| Y::Int(k.clamp(1, crate::spec::MAX_ROWS) as i64)),
        ),
    ]);
    let mut item = Native::check("log_files", name, spec);
    item.unit = Some("lines".into());
    item
}

fn redis(args: &Args, pos: &[&str], ctx: &mut Ctx) -> Option<Mapped> {
    if !args.others(&["-h", "-p", "-n"]).is_empty() {
        return None;
    }
    let url = match (args.get(&["-h"]), args.get(&["-p"])) {
        (None, None) => None,
        (host, port) => {
            let host = host.unwrap_or("localhost");
            let port = port.unwrap_or("6379");
            let db = args.get(&["-n"]).map_or(String::new(), |n| format!("/{n}"));
            Some(Y::Str(ctx.endpoint(
                "redis",
                &format!("redis://{host}:{port}{db}"),
                "The Redis the page's redis-cli reached".into(),
            )))
        }
    };
    let lower: Vec<String> = pos.iter().map(|p| p.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (kind, name, spec) = match lower.as_slice() {
        ["ping"] => (
            "redis_ping",
            "redis_ping".to_string(),
            Y::map([("url", url)]),
        ),
        ["info", "memory"] => (
            "redis_memory",
            "redis_memory".to_string(),
            Y::map([("url", url)]),
        ),
        ["llen", _] => (
            "redis_list",
            format!("{}_length", super::ident(pos[1])),
            Y::map([("url", url), ("key", Some(Y::Str(ctx.text(pos[1]))))]),
        ),
        ["lrange", _, "0", end] => {
            let end: i64 = end.parse().ok()?;
            let first = if end < 0 {
                None
            } else {
                Some(Y::Int(
                    end.saturating_add(1).clamp(1, crate::spec::MAX_ROWS as i64),
                ))
            };
            (
                "redis_list",
                super::ident(pos[1]),
                Y::map([
                    ("url", url),
                    ("key", Some(Y::Str(ctx.text(pos[1])))),
                    ("first", first),
                ]),
            )
        }
        _ => return None,
    };
    Some(Mapped::one(Native::check(kind, name, spec)))
}

/// `-h HOST -p PORT -d DB -U USER` as the `postgres` endpoint; none of them: the configured one.
pub fn postgres_url(args: &Args, ctx: &mut Ctx) -> Option<Y> {
    let host = args.get(&["-h", "--host"]);
    let port = args.get(&["-p", "--port"]);
    let db = args.get(&["-d", "--dbname"]);
    let user = args.get(&["-U", "--username"]);
    // `-h localhost -p 5432` are psql's own defaults: the configured server, as a bare psql uses.
    let local = host.is_none_or(|h| h == "localhost" || h == "127.0.0.1")
        && port.is_none_or(|p| p == "5432");
    if local && db.is_none() && user.is_none() {
        // The server an earlier command of the page named, else the configured one.
        return ctx
            .draft
            .endpoints
            .contains_key("postgres")
            .then(|| Y::str("{{ endpoints.postgres }}"));
    }
    let user = user.map_or(String::new(), |u| format!("{u}@"));
    let url = format!(
        "postgres://{user}{}:{}/{}",
        host.unwrap_or("localhost"),
        port.unwrap_or("5432"),
        db.unwrap_or("postgres")
    );
    Some(Y::Str(ctx.endpoint(
        "postgres",
        &url,
        "The PostgreSQL server the page's commands reached".into(),
    )))
}

/// `find DIR -name PATTERN -mtime +N -delete`: the files a `delete_files` action deletes.
fn find(words: &[Word], ctx: &mut Ctx) -> Option<Mapped> {
    let values: Vec<&str> = words.iter().map(|w| w.value.as_str()).collect();
    let [dir, rest @ ..] = values.as_slice() else {
        return None;
    };
    if !rest.contains(&"-delete") {
        return None;
    }
    let (mut pattern, mut older) = (None, None);
    let mut i = 0;
    while i < rest.len() {
        match (rest[i], rest.get(i + 1)) {
            ("-name", Some(p)) => {
                pattern = Some(*p);
                i += 2;
            }
            ("-mtime", Some(n)) => {
                let days: u64 = n.strip_prefix('+')?.parse().ok()?;
                older = Some(format!("{}d", days.checked_add(1)?));
                i += 2;
            }
            ("-mmin", Some(n)) => {
                let minutes: u64 = n.strip_prefix('+')?.parse().ok()?;
                older = Some(format!("{}m", minutes.checked_add(1)?));
                i += 2;
            }
            ("-type", Some(&"f")) => i += 2,
            ("-delete", _) => i += 1,
            _ => return None,
        }
    }
    let spec = Y::map([
        ("dir", Some(Y::Str(ctx.text(dir)))),
        ("pattern", pattern.map(|p| Y::Str(ctx.text(p)))),
        ("older_than", older.map(Y::Str)),
    ]);
    Some(Mapped::one(Native::action(
        "delete_files",
        format!("delete_in_{}", super::ident(dir)),
        spec,
    )))
}

/// `rm -rf DIR/*` or `rm -rf DIR/prefix-*` or `rm -rf DIR`: a `delete_files` action.
fn rm(args: &Args, pos: &[&str], ctx: &mut Ctx) -> Option<Mapped> {
    if !args
        .others(&["-r", "-f", "-R", "--recursive", "--force"])
        .is_empty()
    {
        return None;
    }
    let items = pos
        .iter()
        .map(|path| {
            let path = path.trim_end_matches('/');
            let (dir, last) = path.rsplit_once('/')?;
            let dir = if dir.is_empty() { "/" } else { dir };
            let named = ctx.text(path);
            let spec = if last.contains('[') {
                // A character class: the glob of delete_files has only * and ?.
                return None;
            } else if last == "*" {
                Y::map([("dir", Some(Y::Str(ctx.text(dir))))])
            } else if last.contains(['*', '?']) || named == path {
                // `rm -rf DIR/vid-bench-*`, or one entry by its name.
                Y::map([
                    ("dir", Some(Y::Str(ctx.text(dir)))),
                    ("pattern", Some(Y::Str(ctx.text(last)))),
                ])
            } else {
                // A folder a param names (`cache/MODEL_NAME`): its contents, never a glob from the param.
                Y::map([("dir", Some(Y::Str(named)))])
            };
            // Nothing outside a folder of its own: `rm -rf /` or `/*` is not imported.
            if dir == "/" && (last == "*" || last.is_empty()) {
                return None;
            }
            Some(Native::action(
                "delete_files",
                format!("delete_{}", super::ident(path)),
                spec,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    (!items.is_empty()).then_some(Mapped::Native { items, every: None })
}
