//! Which shell commands only read: programs that cannot change anything with the arguments
//! given, and verbs of tools with subcommands (`kubectl get`, `systemctl status`). Anything not
//! on these lists is taken as a change and becomes an action that asks first.

use super::shell::Command;

/// Programs that only read whatever their arguments (output to a file is refused before).
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
    "column",
    "ls",
    "stat",
    "file",
    "du",
    "df",
    "free",
    "uptime",
    "ps",
    "pgrep",
    "id",
    "whoami",
    "uname",
    "dig",
    "nslookup",
    "host",
    "netstat",
    "lsof",
    "echo",
    "printf",
    "test",
    "true",
    "nproc",
    "lscpu",
    "lsblk",
    "vmstat",
    "iostat",
    "mpstat",
    "traceroute",
    "tracepath",
    "getent",
    "which",
    "pg_isready",
    "md5sum",
    "sha256sum",
];

/// Tools whose first word after the flags says what they do, and the words that only read.
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
            "cluster-info",
        ],
    ),
    (
        "docker",
        &[
            "ps", "logs", "stats", "inspect", "images", "info", "version", "top", "port", "diff",
        ],
    ),
    (
        "docker-compose",
        &["ps", "logs", "config", "images", "top", "version", "port"],
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

/// Subcommand words that read in a tool oncall does not know (`vid-bench metrics`).
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
    "logs",
    "ps",
    "top",
    "stats",
];
const READ_PREFIXES: &[&str] = &["list-", "get-", "show-", "describe-"];

/// Flags that keep a command running until it is stopped: as a check it could only time out.
const FOLLOW: &[&str] = &["-f", "-F", "--follow", "-w", "--watch"];

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

fn has_letter(args: &[&str], letter: char) -> bool {
    args.iter().any(|a| letters(a).any(|c| c == letter))
}

/// Whether one command's words only read. Anything not known to read is a change.
pub fn argv_reads_only(argv: &[&str]) -> bool {
    let Some((&program, args)) = argv.split_first() else {
        return false;
    };
    // A program named by a variable or a template could be anything.
    if program.contains(['$', '{', '`']) {
        return false;
    }
    let program = program.rsplit('/').next().unwrap_or(program);
    let positional: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    let verb = positional.first().copied();
    let any = |flags: &[&str]| {
        args.iter().any(|a| {
            flags
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
        })
    };
    match program {
        "tail" => !any(FOLLOW) && !has_letter(args, 'f') && !has_letter(args, 'F'),
        "journalctl" => {
            !any(&[
                "--follow",
                "--rotate",
                "--flush",
                "--sync",
                "--relinquish-var",
                "--setup-keys",
            ]) && !has_letter(args, 'f')
                && !args.iter().any(|a| a.starts_with("--vacuum"))
        }
        "sort" => !has_letter(args, 'o') && !any(&["--output"]),
        // `uniq IN OUT` writes OUT.
        "uniq" => positional.len() <= 1,
        "date" => {
            !has_letter(args, 's')
                && !any(&["--set"])
                && positional.iter().all(|p| p.starts_with('+'))
        }
        "hostname" => positional.is_empty() && !has_letter(args, 'F') && !any(&["--file"]),
        "dmesg" => {
            !args.iter().any(|a| letters(a).any(|c| "CcDEn".contains(c)))
                && !any(&[
                    "--clear",
                    "--read-clear",
                    "--console-off",
                    "--console-on",
                    "--console-level",
                ])
        }
        "ss" => !has_letter(args, 'K') && !any(&["--kill"]),
        "ping" => has_letter(args, 'c') || any(&["--count"]),
        "top" => has_letter(args, 'b') && has_letter(args, 'n'),
        "jq" => !any(&["--rawfile", "--slurpfile"]),
        "nvidia-smi" => args.iter().all(|a| {
            ["-q", "--query", "-L", "--list-gpus", "-i", "--id"].contains(a)
                || a.starts_with("--query-")
                || a.starts_with("--format")
                || a.chars().all(|c| c.is_ascii_digit())
        }),
        "fuser" => !has_letter(args, 'k') && !any(&["--kill"]),
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
        "docker" if verb == Some("stats") => any(&["--no-stream"]),
        "redis-cli"
            if matches!(
                verb.map(str::to_ascii_lowercase).as_deref(),
                Some("slowlog" | "memory" | "client")
            ) =>
        {
            false
        }
        "git" if any(&["--output"]) => false,
        _ if PROGRAMS.contains(&program) => true,
        _ => match VERBS.iter().find(|(p, _)| *p == program) {
            Some((_, verbs)) => {
                verb.is_some_and(|v| verbs.contains(&v.to_ascii_lowercase().as_str()))
                    && !any(FOLLOW)
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
                // A tool oncall does not know: only a reading verb, and nothing that forces it.
                !is_known_writer(program)
                    && verb.is_some_and(|v| {
                        READ_VERBS.contains(&v) || READ_PREFIXES.iter().any(|p| v.starts_with(p))
                    })
                    && !any(&[
                        "--force", "-f", "--fix", "--delete", "--yes", "-y", "--follow", "-w",
                        "--watch",
                    ])
            }
        },
    }
}

/// Programs that change things whatever their first word is.
fn is_known_writer(program: &str) -> bool {
    [
        "rm", "mv", "cp", "dd", "mkfs", "kill", "pkill", "killall", "reboot", "shutdown", "chmod",
        "chown", "tee", "truncate", "sed", "awk", "perl", "python", "python3", "sh", "bash",
        "xargs", "sudo", "su", "make", "apt", "apt-get", "yum", "pip", "npm", "go", "cargo",
        "crontab", "iptables", "mount", "umount", "ln", "touch", "mkdir", "rmdir", "env", "nohup",
        "timeout", "ssh", "scp", "rsync", "nc", "ncat", "netcat", "telnet", "socat",
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
        "-w",
        "--write-out",
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
    // Quoted names hide what is called; `\` starts a psql command (`\!` runs a shell).
    if lower.contains([';', '"', '\\'])
        || !(lower.starts_with("select ") || lower.starts_with("show "))
        || lower.split_whitespace().any(|w| w == "into")
    {
        return false;
    }
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
            &["date", "+%s"],
            &["docker", "stats", "--no-stream"],
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
        ] {
            assert!(!argv_reads_only(argv), "{argv:?}");
        }
    }
}
