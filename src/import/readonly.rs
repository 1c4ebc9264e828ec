//! Which shell commands only read: programs that cannot change anything with the arguments
//! given, and verbs of tools with subcommands (`kubectl get`, `systemctl status`). Anything not
//! on these lists is taken as a change and becomes an action that asks first.

use super::shell::Command;

/// Programs that only read whatever their arguments (output to a file is refused before).
const PROGRAMS: &[&str] = &[
    "cat",
    "head",
    "tail",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "zcat",
    "less",
    "wc",
    "sort",
    "uniq",
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
    "hostname",
    "date",
    "uname",
    "ping",
    "dig",
    "nslookup",
    "host",
    "netstat",
    "ss",
    "lsof",
    "echo",
    "printf",
    "jq",
    "test",
    "true",
    "nproc",
    "lscpu",
    "lsblk",
    "vmstat",
    "iostat",
    "mpstat",
    "dmesg",
    "traceroute",
    "tracepath",
    "mtr",
    "getent",
    "which",
    "pg_isready",
    "md5sum",
    "sha256sum",
    "nvidia-smi",
    "top",
    "htop",
    "fuser",
    "telnet",
    "nc",
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
            "auth",
        ],
    ),
    (
        "docker",
        &[
            "ps", "logs", "stats", "inspect", "images", "info", "version", "top", "port", "diff",
            "events",
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
    ("journalctl", &[]),
    (
        "redis-cli",
        &[
            "ping", "info", "get", "lrange", "llen", "scan", "type", "ttl", "exists", "dbsize",
            "hgetall", "hget", "smembers", "scard", "zrange", "zcard", "xlen", "xinfo", "slowlog",
            "memory",
        ],
    ),
    ("git", &["log", "status", "diff", "show"]),
    ("helm", &["list", "status", "history", "get"]),
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

/// Whether every stage of a pipeline only reads.
pub fn reads_only(command: &Command) -> bool {
    command.unread.is_none()
        && command.stages.iter().all(|stage| {
            let argv: Vec<&str> = stage.iter().map(|w| w.value.as_str()).collect();
            argv_reads_only(&argv)
        })
}

/// Whether one command's words only read.
pub fn argv_reads_only(argv: &[&str]) -> bool {
    let Some((&program, args)) = argv.split_first() else {
        return false;
    };
    let program = program.rsplit('/').next().unwrap_or(program);
    let verb = args.iter().find(|a| !a.starts_with('-')).copied();
    match program {
        // Flags that write or act: `tail -f` never ends, the others change things.
        "journalctl" => !args
            .iter()
            .any(|a| a.starts_with("--vacuum") || *a == "--rotate" || *a == "--flush"),
        "nvidia-smi" => args.iter().all(|a| {
            ["-q", "--query", "-L", "--list-gpus", "-i", "--id"].contains(a)
                || a.starts_with("--query-")
                || a.starts_with("--format")
                || a.chars().all(|c| c.is_ascii_digit())
        }),
        "fuser" => !args.iter().any(|a| a.starts_with('-') && a.contains('k')),
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
        "sort" | "uniq" if args.iter().any(|a| a.starts_with("-o") || *a == "--output") => false,
        _ if PROGRAMS.contains(&program) => true,
        _ => match VERBS.iter().find(|(p, _)| *p == program) {
            Some((_, verbs)) => {
                verb.is_some_and(|v| verbs.contains(&v.to_ascii_lowercase().as_str()))
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
                    && !args
                        .iter()
                        .any(|a| ["--force", "-f", "--fix", "--delete", "--yes", "-y"].contains(a))
            }
        },
    }
}

/// Programs that change things whatever their first word is.
fn is_known_writer(program: &str) -> bool {
    [
        "rm", "mv", "cp", "dd", "mkfs", "kill", "pkill", "killall", "reboot", "shutdown", "chmod",
        "chown", "tee", "truncate", "sed", "awk", "perl", "python", "python3", "sh", "bash",
        "xargs", "sudo", "su", "make", "apt", "apt-get", "yum", "pip", "npm", "crontab",
        "iptables", "mount", "umount", "ln", "touch", "mkdir", "rmdir", "find", "env", "nohup",
        "timeout", "ssh", "scp", "rsync",
    ]
    .contains(&program)
}

/// A curl that only GETs or HEADs and writes nothing to a file.
fn curl_reads(args: &[&str]) -> bool {
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if ["-X", "--request"].contains(&a) {
            if !args
                .get(i + 1)
                .is_some_and(|m| ["GET", "HEAD"].contains(&m.to_ascii_uppercase().as_str()))
            {
                return false;
            }
            i += 1;
        } else if a.starts_with("-d")
            || a.starts_with("--data")
            || a.starts_with("-F")
            || a.starts_with("--form")
            || a.starts_with("-T")
            || a.starts_with("--upload")
            || a.starts_with("-o")
            || a.starts_with("--output")
            || a == "-O"
            || a.starts_with("--remote-name")
            || (a.starts_with("-X") && !["-XGET", "-XHEAD"].contains(&a))
        {
            return false;
        }
        i += 1;
    }
    true
}

/// A psql whose statement is a SELECT or SHOW calling no function outside a short list of
/// pure ones (a SELECT can call a function that writes).
fn psql_reads(args: &[&str]) -> bool {
    let Some(at) = args.iter().position(|a| *a == "-c" || *a == "--command") else {
        return false;
    };
    let Some(sql) = args.get(at + 1) else {
        return false;
    };
    sql_reads(sql)
}

pub fn sql_reads(sql: &str) -> bool {
    let lower = sql.trim().trim_end_matches(';').to_ascii_lowercase();
    if lower.contains(';') || !(lower.starts_with("select ") || lower.starts_with("show ")) {
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
    let bytes: Vec<char> = lower.chars().collect();
    let mut word = String::new();
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        let called = c == '(' || (c == ' ' && bytes.get(i + 1) == Some(&'('));
        if called && !word.is_empty() && !PURE.contains(&word.as_str()) {
            return false;
        }
        word.clear();
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
        ] {
            assert!(!argv_reads_only(argv), "{argv:?}");
        }
    }
}
