//! Which shell commands only read: programs that cannot change anything with the arguments
//! given, and verbs of tools with subcommands (`kubectl get`, `systemctl status`). Anything not
//! on these lists is taken as a change and becomes an action that asks first.

use super::shell::Command;

/// Programs that only read, whatever flags they are given (none of theirs writes or runs on).
const PROGRAMS: &[&str] = &[
    "cat",
    "head",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "zcat",
    "wc",
    "cut",
    "tr",
    "ls",
    "stat",
    "du",
    "df",
    "ps",
    "pgrep",
    "id",
    "whoami",
    "uname",
    "dig",
    "nslookup",
    "host",
    "lsof",
    "echo",
    "printf",
    "test",
    "true",
    "nproc",
    "lscpu",
    "lsblk",
    "getent",
    "which",
    "pg_isready",
    "md5sum",
    "sha256sum",
    "uptime",
    "traceroute",
    "tracepath",
];

/// Tools whose first argument says what they do, and the words that only read and end.
const VERBS: &[(&str, &[&str])] = &[
    (
        "kubectl",
        &[
            "get",
            "describe",
            "logs",
            "top",
            "explain",
            "version",
            "api-resources",
        ],
    ),
    (
        "docker",
        &[
            "ps", "logs", "inspect", "images", "info", "version", "top", "port", "diff",
        ],
    ),
    (
        "docker-compose",
        &["ps", "logs", "images", "top", "version", "port"],
    ),
    (
        "systemctl",
        &[
            "status",
            "show",
            "is-active",
            "is-enabled",
            "is-failed",
            "list-units",
            "list-timers",
            "cat",
        ],
    ),
    (
        "redis-cli",
        &[
            "ping", "info", "get", "lrange", "llen", "scan", "type", "ttl", "exists", "dbsize",
            "hgetall", "hget", "smembers", "scard", "zrange", "zcard", "xlen",
        ],
    ),
    ("git", &["log", "status", "show"]),
    ("helm", &["list", "status", "history"]),
];

/// Why a command is asked rather than run unasked, or Ok when every stage of it only reads.
pub fn judge(command: &Command) -> Result<(), String> {
    if let Some(why) = command.unread {
        return Err(format!("{why}: oncall cannot tell what it does"));
    }
    for stage in &command.stages {
        let argv: Vec<&str> = stage.iter().map(|w| w.value.as_str()).collect();
        judge_argv(&argv)?;
    }
    Ok(())
}

/// The short flags of a word, one by one: `-uo` → `u`, `o`.
fn letters(arg: &str) -> impl Iterator<Item = char> + '_ {
    arg.strip_prefix('-')
        .filter(|rest| !rest.starts_with('-'))
        .unwrap_or_default()
        .chars()
}

fn has_letter(args: &[&str], set: &str) -> bool {
    args.iter().any(|a| letters(a).any(|c| set.contains(c)))
}

/// Whether a long option is one of these, as getopt reads it: `--se` is `--set`.
fn long_is(arg: &str, options: &[&str]) -> bool {
    let Some(name) = arg.strip_prefix("--") else {
        return false;
    };
    let name = name.split('=').next().unwrap_or(name);
    !name.is_empty()
        && options
            .iter()
            .any(|o| o.trim_start_matches("--").starts_with(name))
}

/// Whether one command's words only read and end. Anything not known to is a change.
pub fn argv_reads_only(argv: &[&str]) -> bool {
    judge_argv(argv).is_ok()
}

/// What oncall says of a command it cannot tell anything more about.
const UNKNOWN: &str = "oncall cannot tell what this changes";

/// Why one command's words are asked first, or Ok when they only read and end.
pub fn judge_argv(argv: &[&str]) -> Result<(), String> {
    let Some((&program, args)) = argv.split_first() else {
        return Err(UNKNOWN.into());
    };
    // A variable, a template, an assignment (`LD_PRELOAD=… ls`) or a program of the page's own
    // folder (`./tools/cat`) could be anything.
    let program = match program.rsplit_once('/') {
        Some((dir, name))
            if ["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"].contains(&dir) =>
        {
            name
        }
        Some(_) => return Err(format!("`{program}` could be any program")),
        None => program,
    };
    if !program
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    {
        return Err(format!("`{program}` could be any program"));
    }
    elsewhere(program, args)?;
    if reads(program, args)? {
        Ok(())
    } else {
        Err(UNKNOWN.into())
    }
}

/// Flags that make a tool reach another server or use other credentials than the ones
/// configured: a check must never send the engineer's credentials where the page says.
const ELSEWHERE: &[(&str, &[&str])] = &[
    (
        "kubectl",
        &[
            "--kubeconfig",
            "--server",
            "-s",
            "--token",
            "--context",
            "--cluster",
            "--user",
            "--as",
            "--as-group",
            "--as-uid",
            "--certificate-authority",
            "--client-certificate",
            "--client-key",
            "--insecure-skip-tls-verify",
            "--tls-server-name",
            "--username",
            "--password",
        ],
    ),
    (
        "helm",
        &[
            "--kubeconfig",
            "--kube-context",
            "--kube-apiserver",
            "--kube-token",
            "--kube-as-user",
            "--kube-as-group",
            "--kube-ca-file",
            "--kube-insecure-skip-tls-verify",
            "--kube-tls-server-name",
            "--registry-config",
            "--repository-config",
        ],
    ),
    (
        "docker",
        &[
            "-H",
            "--host",
            "-c",
            "--context",
            "--config",
            "--tls",
            "--tlscacert",
            "--tlscert",
            "--tlskey",
            "--tlsverify",
        ],
    ),
    (
        "docker-compose",
        &[
            "-H",
            "--host",
            "-c",
            "--context",
            "--tls",
            "--tlscacert",
            "--tlscert",
            "--tlskey",
            "--tlsverify",
            "--skip-hostname-check",
        ],
    ),
    (
        "curl",
        &[
            "-K",
            "--config",
            "-n",
            "--netrc",
            "--netrc-file",
            "--netrc-optional",
            "--oauth2-bearer",
            "-E",
            "--cert",
            "--key",
            "-x",
            "--proxy",
            "--resolve",
            "--connect-to",
            "--unix-socket",
        ],
    ),
    (
        "redis-cli",
        &[
            "-u",
            "--user",
            "--pass",
            "--askpass",
            "-s",
            "--tls",
            "--cacert",
            "--cert",
            "--key",
            "--sni",
        ],
    ),
    ("psql", &["-U", "--username", "-W", "--password"]),
];

/// A flag of the program's that reaches another server or other credentials, or a header that
/// asks the server for another method: why the command is asked first.
fn elsewhere(program: &str, args: &[&str]) -> Result<(), String> {
    let program = match (program, args.first()) {
        ("docker", Some(&"compose")) => "docker-compose",
        _ => program,
    };
    if let Some((_, flags)) = ELSEWHERE.iter().find(|(p, _)| *p == program) {
        for a in args {
            let name = a.split('=').next().unwrap_or(a);
            // A short flag with its value glued on: `-sURL`, `-uuser:pass`.
            let short = (!a.starts_with("--") && a.len() > 2).then(|| &a[..2]);
            if let Some(flag) = flags.iter().find(|f| {
                **f == name
                    || Some(**f) == short
                    || long_is(a, &[f]) && f.len() > 2 && name.len() > 3
            }) {
                return Err(format!(
                    "`{flag}` makes {program} reach another server or use other credentials than the ones configured"
                ));
            }
        }
    }
    match program {
        "curl" => {
            let mut values = args.iter().zip(args.iter().skip(1));
            if let Some((_, header)) =
                values.find(|(f, h)| ["-H", "--header"].contains(f) && method_override(h))
            {
                let name = header.split(':').next().unwrap_or(header).trim();
                return Err(format!(
                    "the header {name} asks the server for another method than GET"
                ));
            }
            if args.iter().any(|a| {
                a.split_once('?')
                    .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("_method=")))
            }) {
                return Err(
                    "`_method=` in the URL asks the server for another method than GET".into(),
                );
            }
        }
        "redis-cli" => {
            let host = args
                .iter()
                .zip(args.iter().skip(1))
                .find(|(f, _)| **f == "-h")
                .map(|(_, h)| *h);
            if host.is_some_and(|h| !is_local(h)) {
                return Err("`-h` makes redis-cli reach another server than the local one, with the credentials of this machine".into());
            }
        }
        "psql" => psql_elsewhere(args)?,
        _ => {}
    }
    Ok(())
}

/// A header that makes a server treat a GET as another method.
pub fn method_override(header: &str) -> bool {
    let name = header.split(':').next().unwrap_or(header).trim();
    [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ]
    .contains(&name.to_ascii_lowercase().as_str())
}

fn is_local(host: &str) -> bool {
    ["localhost", "127.0.0.1", "::1"].contains(&host)
}

/// psql on another server than the local default, or with a connection string (which can name
/// any server, user or password file): libpq sends PGPASSWORD and .pgpass entries there.
fn psql_elsewhere(args: &[&str]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a, args.get(i + 1).copied()),
        };
        let conninfo = |v: &str| v.contains('=') || v.contains("://");
        let why = match flag {
            "-h" | "--host" if value.is_some_and(|h| !is_local(h) && !h.starts_with('/')) => {
                Some("`-h` makes psql reach another server than the local one")
            }
            "-p" | "--port" if value.is_some_and(|p| p != "5432") => {
                Some("`-p` makes psql reach another server than the local one")
            }
            "-d" | "--dbname" if value.is_some_and(conninfo) => Some(
                "a connection string makes psql reach the server and use the credentials it names",
            ),
            _ if !a.starts_with('-') && conninfo(a) && i == 0
                || !a.starts_with('-') && a.contains("://") =>
            {
                Some(
                    "a connection string makes psql reach the server and use the credentials it names",
                )
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err(why.into());
        }
        i += 1;
    }
    Ok(())
}

/// Whether a known program's words only read; Err for a program oncall does not know.
fn reads(program: &str, args: &[&str]) -> Result<bool, String> {
    let long = |options: &[&str]| args.iter().any(|a| long_is(a, options));
    let verb = args.first().copied();
    Ok(match program {
        "tail" => !has_letter(args, "fF") && !long(&["--follow", "--retry"]),
        "journalctl" => args.iter().all(|a| {
            !a.starts_with('-')
                || letters(a).all(|c| "nbrqkxe".contains(c)) && !a.starts_with("--")
                || long_is(
                    a,
                    &[
                        "--unit",
                        "--since",
                        "--until",
                        "--lines",
                        "--priority",
                        "--boot",
                        "--no-pager",
                        "--reverse",
                        "--dmesg",
                        "--grep",
                        "--utc",
                        "--quiet",
                        "--catalog",
                    ],
                ) && !long_is(a, &["--update-catalog", "--cursor-file"])
                || ["-u", "-p", "-S", "-U", "-g", "-o"].contains(a)
        }),
        // In a pipeline after a read: `| sort -rn | uniq -c`, with no file to write.
        "sort" => {
            args.iter().all(|a| {
                !a.starts_with("--")
                    && (!a.starts_with('-')
                        || letters(a).all(|c| "nrukthVfbgMsz0123456789".contains(c)))
            }) && !has_letter(args, "o")
        }
        "uniq" => args.iter().all(|a| {
            a.starts_with('-') && !a.starts_with("--") && letters(a).all(|c| "cdiu".contains(c))
        }),
        "ping" => args.contains(&"-c") && !has_letter(args, "f"),
        "netstat" => !has_letter(args, "c") && !long(&["--continuous"]),
        "ss" => !has_letter(args, "KE") && !long(&["--kill", "--events"]),
        "jq" => !long(&["--rawfile", "--slurpfile", "--seq"]),
        "nvidia-smi" => args.iter().all(|a| {
            ["-q", "--query", "-L", "--list-gpus", "-i", "--id"].contains(a)
                || a.starts_with("--query-")
                || a.starts_with("--format")
                || a.chars().all(|c| c.is_ascii_digit())
        }),
        "fuser" => !has_letter(args, "k") && !long(&["--kill"]),
        "curl" => curl_reads(args),
        "find" => !args.iter().any(|a| {
            [
                "-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf",
                "-fls",
            ]
            .contains(a)
        }),
        "psql" => psql_reads(args)?,
        "docker" if verb == Some("compose") => {
            return reads("docker-compose", &args[1..]);
        }
        "redis-cli" => redis_reads(args),
        _ if PROGRAMS.contains(&program) => true,
        "kubectl" => kubectl_reads(args),
        _ => match VERBS.iter().find(|(p, _)| *p == program) {
            Some((_, verbs)) => {
                // The verb is the first word: a flag before it could take it as its value.
                let rest = &args[1.min(args.len())..];
                verb.is_some_and(|v| verbs.contains(&v))
                    && !has_letter(rest, "fw")
                    && !long(&[
                        "--follow",
                        "--watch",
                        "--watch-only",
                        "--output",
                        "--output-directory",
                    ])
            }
            // A tool oncall does not know may do anything, whatever its first word says
            // (`logger status` writes to syslog, `vid-bench status --reboot-now` reboots): it is
            // asked first, and a reviewer who knows it only reads can make it a check.
            None => {
                return Err(format!(
                    "`{program}` is not a program oncall knows to only read (move it under `checks:` if it does)"
                ));
            }
        },
    })
}

/// `kubectl get|describe|logs|top|explain|version|api-resources` with flags that only choose what
/// to show: any other flag (`--raw`, `-v`, `--cache-dir`, `-w`) makes it asked.
fn kubectl_reads(args: &[&str]) -> bool {
    const WITH_VALUE: &[&str] = &[
        "-n",
        "--namespace",
        "-l",
        "--selector",
        "-o",
        "--output",
        "--field-selector",
        "--sort-by",
        "-L",
        "--label-columns",
        "--since",
        "--since-time",
        "--tail",
        "-c",
        "--container",
        "--limit-bytes",
        "--chunk-size",
        "--request-timeout",
        "--api-version",
        "--api-group",
        "--verbs",
        "--template",
    ];
    const BOOLS: &[&str] = &[
        "-A",
        "--all-namespaces",
        "--show-labels",
        "--no-headers",
        "--show-kind",
        "--ignore-not-found",
        "-p",
        "--previous",
        "--timestamps",
        "--all-containers",
        "--prefix",
        "--recursive",
        "--namespaced",
        "--containers",
        "--use-protocol-buffers",
        "--short",
        "--client",
        "--show-events",
        "--show-managed-fields",
    ];
    let verbs = VERBS
        .iter()
        .find(|(p, _)| *p == "kubectl")
        .map_or(&[][..], |(_, v)| v);
    if !args.first().is_some_and(|v| verbs.contains(v)) {
        return false;
    }
    let mut i = 1;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if !a.starts_with('-') {
            continue;
        }
        let (name, glued) = match a.split_once('=') {
            Some((n, _)) => (n, true),
            // `-owide`, `-nvideo`: a short flag with its value glued on.
            None if !a.starts_with("--") && a.len() > 2 => (&a[..2], true),
            None => (a, false),
        };
        if WITH_VALUE.contains(&name) {
            if !glued {
                i += 1;
            }
        } else if !(BOOLS.contains(&name) && (!glued || name.starts_with("--"))) {
            return false;
        }
    }
    true
}

/// redis-cli with its connection flags only, and a reading command.
fn redis_reads(args: &[&str]) -> bool {
    let mut i = 0;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        if !["-h", "-p", "-n", "-a"].contains(a) {
            return false;
        }
        i += 2;
    }
    let verbs = VERBS
        .iter()
        .find(|(p, _)| *p == "redis-cli")
        .map_or(&[][..], |(_, v)| v);
    args.get(i)
        .is_some_and(|v| verbs.contains(&v.to_ascii_lowercase().as_str()))
}

/// A curl that only GETs or HEADs, with flags known to write nothing and send no body.
fn curl_reads(args: &[&str]) -> bool {
    const BOOLS: &str = "sSfLkviIg";
    const WITH_VALUE: &[&str] = &[
        "-m",
        "--max-time",
        "--connect-timeout",
        "-H",
        "--header",
        "-A",
        "--user-agent",
        "--retry",
        // The page's own credentials, which the engineer gives as a secret param: with no
        // password curl would ask for one on the terminal instead.
        "-u",
        "--user",
    ];
    const LONG: &[&str] = &[
        "--silent",
        "--show-error",
        "--fail",
        "--location",
        "--insecure",
        "--verbose",
        "--include",
        "--head",
        "--globoff",
        "--compressed",
    ];
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if ["-X", "--request"].contains(&a) {
            let method = args.get(i + 1).map(|m| m.to_ascii_uppercase());
            if !matches!(method.as_deref(), Some("GET" | "HEAD")) {
                return false;
            }
            i += 1;
        } else if WITH_VALUE.contains(&a) {
            if ["-u", "--user"].contains(&a) && !args.get(i + 1).is_some_and(|v| v.contains(':')) {
                return false;
            }
            i += 1;
        } else if a.starts_with("--") {
            let name = a.split('=').next().unwrap_or(a);
            if !LONG.contains(&name) && !WITH_VALUE.contains(&name) {
                return false;
            }
        } else if a.starts_with('-') && !a[1..].chars().all(|c| BOOLS.contains(c)) {
            return false;
        } else if !(a.starts_with('-') || a.starts_with("http://") || a.starts_with("https://")) {
            // gopher:// and dict:// send whatever the URL says.
            return false;
        }
        i += 1;
    }
    true
}

/// A psql with one statement, a SELECT or SHOW that calls no function outside a short list of
/// pure ones (a SELECT can call a function that writes), and no output file or script.
fn psql_reads(args: &[&str]) -> Result<bool, String> {
    let mut sql = None;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-c" | "--command" => {
                if sql.is_some() {
                    return Ok(false);
                }
                sql = args.get(i + 1).copied();
                i += 1;
            }
            "-h" | "--host" | "-p" | "--port" | "-U" | "--username" | "-d" | "--dbname" => i += 1,
            "-X" | "-x" | "-t" | "-A" | "-q" | "--no-psqlrc" => {}
            a if a.starts_with('-') => return Ok(false),
            _ => {}
        }
        i += 1;
    }
    let Some(sql) = sql else { return Ok(false) };
    locks(sql)?;
    Ok(sql_reads(sql))
}

/// A statement that takes locks: a read that blocks writers (or holds a lock past its end) is
/// not a check.
pub fn locks(sql: &str) -> Result<(), String> {
    static LOCKS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)(\bfor\s+(?:no\s+key\s+update|key\s+share|update|share)\b)|(^\s*lock\b)|(\bpg_(?:try_)?advisory(?:_xact)?_lock(?:_shared)?\s*\()",
        )
        .expect("valid")
    });
    match LOCKS.captures(sql) {
        Some(caps) => {
            let said = caps[0].split_whitespace().collect::<Vec<_>>().join(" ");
            let said = said.trim_end_matches(['(', ' ']);
            Err(format!(
                "`{}` takes locks other sessions wait for",
                said.to_ascii_uppercase()
            ))
        }
        None => Ok(()),
    }
}

pub fn sql_reads(sql: &str) -> bool {
    let lower = sql.trim().trim_end_matches(';').to_ascii_lowercase();
    // Quoted names and comments hide what is called; `\` starts a psql command (`\!` runs a
    // shell); SELECT … INTO makes a table.
    if lower.contains([';', '"', '\\'])
        || lower.contains("/*")
        || lower.contains("--")
        || !(lower.starts_with("select ") || lower.starts_with("show "))
        || lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "into")
    {
        return false;
    }
    let lower = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    const PURE: &[&str] = &[
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "now",
        "coalesce",
        "round",
        "lower",
        "upper",
        "length",
        "extract",
        "date_trunc",
        "to_char",
        "age",
        "pg_size_pretty",
        "pg_database_size",
        "pg_relation_size",
        "pg_total_relation_size",
        "current_database",
        "version",
        "left",
        "substring",
        "in",
        "and",
        "or",
        "not",
        "interval",
        "filter",
        "over",
    ];
    let chars: Vec<char> = lower.chars().collect();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        let called = c == '(' || (c == ' ' && chars.get(i + 1) == Some(&'('));
        if called && !word.is_empty() && !PURE.contains(&word.as_str()) {
            return false;
        }
        if !(c == ' ' && chars.get(i + 1) == Some(&'(')) {
            word.clear();
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_verbs_read_and_everything_else_is_a_change() {
        for argv in [
            &["kubectl", "get", "pods"][..],
            &["systemctl", "status", "vid-bench"],
            &["grep", "ERROR", "/var/log/x.log"],
            &["curl", "-s", "http://x/health"],
            &["psql", "-c", "SELECT count(*) FROM t"],
            &[
                "psql",
                "-c",
                "SELECT count (*) FROM pg_stat_activity WHERE state = 'active'",
            ],
            &["ping", "-c", "3", "db"],
            &["tail", "-100", "/var/log/x"],
        ] {
            assert!(argv_reads_only(argv), "{argv:?}");
        }
        for argv in [
            &["kubectl", "delete", "pod", "x"][..],
            // A tool oncall does not know, whatever its verb says (issue 25).
            &["vid-bench", "metrics", "--active-users"],
            &["vid-bench", "list-models", "--status=failed"],
            &["systemctl", "restart", "x"],
            &["vid-bench", "config", "set", "x", "1"],
            &["vid-bench", "download-model", "--force", "m"],
            &["python", "-c", "print(1)"],
            &["curl", "-X", "POST", "http://x"],
            &["curl", "-o", "/etc/passwd", "http://x"],
            &["psql", "-c", "SELECT pg_terminate_backend(1)"],
            &["nvidia-smi", "-r"],
            &["fuser", "-k", "/dev/nvidia0"],
            &["journalctl", "--vacuum-time=1d"],
            &["rm", "list"],
            // What a review found passing for reads.
            &["psql", "-c", "SELECT 1", "-c", "DROP TABLE users"],
            &[
                "psql",
                "-X",
                "-c",
                "SELECT \"pg_terminate_backend\"(pid) FROM pg_stat_activity",
            ],
            &["psql", "-c", "SELECT * INTO backup FROM users"],
            &["psql", "-o", "/tmp/f", "-c", "SELECT 1"],
            &["curl", "-so", "/etc/x", "http://x"],
            &["curl", "-sO", "http://x/f"],
            &["curl", "--json", "{}", "http://x"],
            &["curl", "-D", "/tmp/h", "http://x"],
            &["curl", "-K", "cfg"],
            &["curl", "-u", "admin", "http://x"],
            &["sort", "-uo", "f", "g"],
            &["sort", "--output=f", "g"],
            &["uniq", "in", "out"],
            &["date", "-s", "2020-01-01"],
            &["hostname", "evil"],
            &["dmesg", "-C"],
            &["ss", "-K"],
            &["nc", "-e", "/bin/sh", "h", "1"],
            &["kubectl", "auth", "reconcile", "-f", "x"],
            &["redis-cli", "slowlog", "reset"],
            &["git", "diff", "--output=f"],
            &["go", "get", "x"],
            &["$TOOL", "status"],
            &["tail", "-f", "/var/log/x"],
            &["journalctl", "-f"],
            &["kubectl", "logs", "-f", "deploy/x"],
            &["ping", "host"],
            &["docker", "stats"],
            // What a second review found.
            &["eval", "ls", ";", "rm", "-rf", "/tmp/x"],
            &["node", "--eval=x", "status"],
            &["ruby", "-e'x'", "status"],
            &["tar", "-czf", "logs", "/var/log/app"],
            &["watch", "ps", "aux"],
            &["podman", "stats"],
            &["pm2", "logs"],
            &["LD_PRELOAD=/tmp/e.so", "ls"],
            &["./tools/cat", "f"],
            &["Rm", "-rf", "logs"],
            &["kubectl", "-n", "get", "cordon", "node-1"],
            &["docker", "-l", "info", "kill", "web"],
            &["systemctl", "-p", "status", "stop", "nginx"],
            &["redis-cli", "-a", "info", "flushall"],
            &["date", "--se=2020"],
            &["sort", "--out=f"],
            &["tail", "--foll", "x"],
            &["journalctl", "--update-catalog"],
            &["journalctl", "--cursor-file=F"],
            &["file", "-C", "-m", "f"],
            &["uniq", "--", "in", "-out"],
            &["docker", "compose", "config", "-o", "f"],
            &["kubectl", "cluster-info", "dump", "--output-directory=d"],
            &["dmesg", "-w"],
            &["vmstat", "1"],
            &["kubectl", "get", "pods", "-Aw"],
            &["kubectl", "get", "pods", "--watch-only"],
            &["docker", "logs", "-tf", "web"],
            &["redis-cli", "-r", "-1", "info"],
            &["curl", "-s", "gopher://127.0.0.1:6379/_FLUSHALL"],
            &["curl", "-w", "%output{/f}", "http://x"],
            &["psql", "-c", "SELECT setval  ('s', 1)"],
            &["psql", "-c", "SELECT lo_unlink/**/(16400)"],
            &["psql", "-c", "SELECT *INTO backup FROM users"],
        ] {
            assert!(!argv_reads_only(argv), "{argv:?}");
        }
    }

    /// Issue 25, item 5: what a dry run ran unasked. Each is asked first, and says why.
    #[test]
    fn other_servers_credentials_overrides_locks_and_unknown_tools_are_asked_with_why() {
        let why =
            |argv: &[&str]| judge_argv(argv).expect_err(&format!("{argv:?} passed as a read"));
        for (argv, said) in [
            (
                &["vid-bench", "status", "--reboot-now"][..],
                "`vid-bench` is not a program oncall knows",
            ),
            (
                &["vid-bench", "status"],
                "`vid-bench` is not a program oncall knows",
            ),
            (
                &["logger", "status"],
                "`logger` is not a program oncall knows",
            ),
            (&["pm2", "--version"], "`pm2` is not a program oncall knows"),
            (
                &[
                    "curl",
                    "-H",
                    "X-HTTP-Method-Override: DELETE",
                    "http://api/items/1",
                ],
                "the header X-HTTP-Method-Override asks the server for another method",
            ),
            (
                &[
                    "curl",
                    "-s",
                    "--header",
                    "x-http-method: PUT",
                    "http://api/x",
                ],
                "x-http-method asks",
            ),
            (
                &["curl", "-s", "http://api/items/1?_method=DELETE"],
                "`_method=` in the URL",
            ),
            (
                &["psql", "-c", "SELECT * FROM jobs WHERE id = 1 FOR UPDATE"],
                "`FOR UPDATE` takes locks",
            ),
            (
                &["psql", "-c", "SELECT * FROM jobs for  share"],
                "`FOR SHARE` takes locks",
            ),
            (
                &[
                    "psql",
                    "-c",
                    "SELECT id FROM jobs FOR NO KEY UPDATE SKIP LOCKED",
                ],
                "`FOR NO KEY UPDATE` takes locks",
            ),
            (
                &["psql", "-c", "SELECT id FROM jobs FOR KEY SHARE"],
                "`FOR KEY SHARE` takes locks",
            ),
            (&["psql", "-c", "LOCK TABLE jobs"], "`LOCK` takes locks"),
            (
                &["psql", "-c", "SELECT pg_advisory_lock(42)"],
                "`PG_ADVISORY_LOCK` takes locks",
            ),
            (
                &["psql", "-c", "SELECT pg_try_advisory_xact_lock_shared (1)"],
                "takes locks",
            ),
            (
                &["kubectl", "get", "pods", "--kubeconfig=/tmp/evil"],
                "`--kubeconfig` makes kubectl reach another server",
            ),
            (
                &["kubectl", "get", "pods", "--kubeconfig", "/tmp/evil"],
                "`--kubeconfig`",
            ),
            (
                &["kubectl", "--kubeconfig=/tmp/evil", "get", "pods"],
                "`--kubeconfig`",
            ),
            (
                &["kubectl", "get", "pods", "--server=https://evil:6443"],
                "`--server`",
            ),
            (
                &["kubectl", "get", "pods", "-s", "https://evil:6443"],
                "`-s`",
            ),
            (&["kubectl", "get", "pods", "-shttps://evil:6443"], "`-s`"),
            (&["kubectl", "get", "pods", "--token", "abc"], "`--token`"),
            (
                &["kubectl", "get", "pods", "--context", "prod"],
                "`--context`",
            ),
            (&["kubectl", "get", "pods", "--cluster=prod"], "`--cluster`"),
            (&["kubectl", "get", "pods", "--user=admin"], "`--user`"),
            (
                &["kubectl", "get", "pods", "--as", "system:admin"],
                "`--as`",
            ),
            (
                &["kubectl", "get", "pods", "--as-group=system:masters"],
                "`--as-group`",
            ),
            (
                &["kubectl", "get", "pods", "--certificate-authority=/tmp/ca"],
                "`--certificate-authority`",
            ),
            (
                &["kubectl", "get", "pods", "--client-key", "/tmp/k"],
                "`--client-key`",
            ),
            (
                &["kubectl", "get", "pods", "--client-certificate=/tmp/c"],
                "`--client-certificate`",
            ),
            (
                &["kubectl", "get", "pods", "--insecure-skip-tls-verify"],
                "`--insecure-skip-tls-verify`",
            ),
            (&["kubectl", "get", "pods", "-v=9"], "oncall cannot tell"),
            (
                &[
                    "kubectl",
                    "get",
                    "--raw",
                    "/api/v1/namespaces/x/services/y/proxy/reset",
                ],
                "oncall cannot tell",
            ),
            (
                &["kubectl", "get", "pods", "--cache-dir", "/tmp/x"],
                "oncall cannot tell",
            ),
            (
                &["helm", "status", "web", "--kube-token", "abc"],
                "`--kube-token`",
            ),
            (&["curl", "-K", "/tmp/cfg", "http://x"], "`-K` makes curl"),
            (&["curl", "--config=/tmp/cfg", "http://x"], "`--config`"),
            (&["curl", "--netrc", "http://x/health"], "`--netrc`"),
            (
                &["curl", "--resolve", "x:80:10.0.0.9", "http://x/health"],
                "`--resolve`",
            ),
            (
                &["docker", "-H", "tcp://evil:2375", "ps"],
                "`-H` makes docker",
            ),
            (&["docker", "--context", "prod", "ps"], "`--context`"),
            (
                &["docker", "compose", "-H", "tcp://evil:2375", "ps"],
                "`-H` makes docker-compose",
            ),
            (&["docker-compose", "--context=prod", "ps"], "`--context`"),
            (
                &["redis-cli", "-h", "prod-redis", "info"],
                "`-h` makes redis-cli",
            ),
            (&["redis-cli", "-u", "redis://evil:6379", "info"], "`-u`"),
            (
                &["psql", "-h", "prod-db", "-c", "SELECT 1"],
                "`-h` makes psql",
            ),
            (&["psql", "-p", "6543", "-c", "SELECT 1"], "`-p` makes psql"),
            (&["psql", "-U", "admin", "-c", "SELECT 1"], "`-U`"),
            (
                &["psql", "host=evil user=admin", "-c", "SELECT 1"],
                "a connection string",
            ),
            (
                &["psql", "postgres://admin@evil/app", "-c", "SELECT 1"],
                "a connection string",
            ),
            (
                &["psql", "-d", "postgresql://evil/app", "-c", "SELECT 1"],
                "a connection string",
            ),
        ] {
            let got = why(argv);
            assert!(got.contains(said), "{argv:?}: {got}");
        }
        for argv in [
            &["kubectl", "get", "pods", "-n", "video", "-o", "wide"][..],
            &[
                "kubectl",
                "get",
                "pods",
                "--namespace=video",
                "-owide",
                "-l",
                "app=worker",
            ],
            &[
                "kubectl",
                "get",
                "pods",
                "-A",
                "--show-labels",
                "--no-headers",
            ],
            &["kubectl", "describe", "pod", "web-1", "-n", "video"],
            &[
                "kubectl",
                "logs",
                "deploy/web",
                "--tail=20",
                "--since",
                "1h",
                "-c",
                "app",
            ],
            &[
                "psql",
                "-h",
                "localhost",
                "-p",
                "5432",
                "-d",
                "app",
                "-c",
                "SELECT count(*) FROM jobs",
            ],
            &["psql", "-c", "SELECT * FROM pg_locks"],
            &["redis-cli", "-h", "127.0.0.1", "-p", "6380", "info"],
            &["redis-cli", "-a", "s3cr3t-pass", "llen", "queue"],
            &[
                "curl",
                "-s",
                "-H",
                "Accept: application/json",
                "http://api/x",
            ],
            &["curl", "-s", "-u", "admin:s3cr3t-pass", "http://api/health"],
        ] {
            assert_eq!(judge_argv(argv), Ok(()), "{argv:?}");
        }
    }
}
