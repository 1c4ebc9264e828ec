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

/// The first word of a tool oncall does not know that reads (`vid-bench metrics`,
/// `vid-bench list-models`); words that stream (`logs`, `stats`, `top`) are not among them.
const READ_VERBS: &[&str] = &[
    "status",
    "list",
    "ls",
    "get",
    "show",
    "describe",
    "info",
    "version",
    "metrics",
    "health",
    "health-check",
    "inspect",
    "ps",
];
const READ_PREFIXES: &[&str] = &["list-", "get-", "show-", "describe-"];

/// Words in a flag of an unknown tool that say it changes something or does not end.
const CHANGING: &[&str] = &[
    "force", "fix", "delete", "remove", "purge", "reset", "yes", "write", "out", "file", "exec",
    "eval", "follow", "watch", "apply", "set", "kill", "run", "script", "save", "dump",
];

/// Whether every stage of a pipeline only reads.
pub fn reads_only(command: &Command) -> bool {
    command.unread.is_none()
        && command.stages.iter().all(|stage| {
            let argv: Vec<&str> = stage.iter().map(|w| w.value.as_str()).collect();
            argv_reads_only(&argv)
        })
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
    let Some((&program, args)) = argv.split_first() else {
        return false;
    };
    // A variable, a template, an assignment (`LD_PRELOAD=… ls`) or a program of the page's own
    // folder (`./tools/cat`) could be anything.
    let program = match program.rsplit_once('/') {
        Some((dir, name))
            if ["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"].contains(&dir) =>
        {
            name
        }
        Some(_) => return false,
        None => program,
    };
    if !program
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    {
        return false;
    }
    let long = |options: &[&str]| args.iter().any(|a| long_is(a, options));
    let verb = args.first().copied();
    match program {
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
        "psql" => psql_reads(args),
        "docker" if verb == Some("compose") => {
            argv_reads_only(&[&["docker-compose"], &args[1..]].concat())
        }
        "redis-cli" => redis_reads(args),
        _ if PROGRAMS.contains(&program) => true,
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
            // Asking a tool for its version reads.
            None if !args.is_empty()
                && args
                    .iter()
                    .all(|a| ["--version", "-V", "version"].contains(a)) =>
            {
                true
            }
            None => {
                // A tool oncall does not know: a reading verb first, then only flags that do not
                // say they change something.
                !is_known_writer(program)
                    && verb.is_some_and(|v| {
                        READ_VERBS.contains(&v) || READ_PREFIXES.iter().any(|p| v.starts_with(p))
                    })
                    && args[1..].iter().all(|a| {
                        a.starts_with("--")
                            && !CHANGING.iter().any(|w| a.to_ascii_lowercase().contains(w))
                    })
            }
        },
    }
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

/// Programs that change things, run other programs or never end, whatever their first word is.
fn is_known_writer(program: &str) -> bool {
    [
        "rm",
        "mv",
        "cp",
        "dd",
        "mkfs",
        "kill",
        "pkill",
        "killall",
        "reboot",
        "shutdown",
        "chmod",
        "chown",
        "tee",
        "truncate",
        "sed",
        "awk",
        "perl",
        "python",
        "python3",
        "ruby",
        "node",
        "php",
        "lua",
        "sh",
        "bash",
        "zsh",
        "dash",
        "eval",
        "exec",
        "source",
        "command",
        "builtin",
        "xargs",
        "sudo",
        "su",
        "doas",
        "make",
        "apt",
        "apt-get",
        "yum",
        "dnf",
        "pip",
        "npm",
        "go",
        "cargo",
        "crontab",
        "iptables",
        "mount",
        "umount",
        "ln",
        "touch",
        "mkdir",
        "rmdir",
        "env",
        "nohup",
        "nice",
        "timeout",
        "time",
        "strace",
        "watch",
        "ssh",
        "scp",
        "rsync",
        "nc",
        "ncat",
        "netcat",
        "telnet",
        "socat",
        "tar",
        "zip",
        "unzip",
        "gzip",
        "gunzip",
        "install",
        "systemd-run",
        "at",
        "batch",
    ]
    .contains(&program)
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
fn psql_reads(args: &[&str]) -> bool {
    let mut sql = None;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-c" | "--command" => {
                if sql.is_some() {
                    return false;
                }
                sql = args.get(i + 1).copied();
                i += 1;
            }
            "-h" | "--host" | "-p" | "--port" | "-U" | "--username" | "-d" | "--dbname" => i += 1,
            "-X" | "-x" | "-t" | "-A" | "-q" | "--no-psqlrc" => {}
            a if a.starts_with('-') => return false,
            _ => {}
        }
        i += 1;
    }
    sql.is_some_and(sql_reads)
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
            &["vid-bench", "metrics", "--active-users"],
            &["vid-bench", "list-models", "--status=failed"],
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
}
