//! SQL, in `psql -c "…"` or written bare in a shell fence: the PostgreSQL checks oncall has for
//! pg_stat_activity, pg_stat_statements and pg_locks, and the actions for terminating or
//! cancelling backends, ANALYZE and REINDEX DATABASE.

use super::local::postgres_url;
use super::{Args, Ctx, Mapped, Native};
use crate::import::shell::Word;
use crate::import::yaml::Y;

const KEYWORDS: &[&str] = &[
    "select", "with", "analyze", "analyse", "reindex", "vacuum", "show", "explain", "update",
    "delete", "insert", "alter", "drop", "truncate", "create", "grant", "revoke",
];

/// Whether a line of a shell fence is SQL rather than a command.
pub fn is_statement(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first.chars().all(|c| c.is_ascii_uppercase() || c == ';')
        && KEYWORDS.contains(&first.trim_end_matches(';').to_ascii_lowercase().as_str())
}

/// A bare statement: against the server the page named before, or the configured one.
pub fn statement(text: &str, ctx: &mut Ctx) -> Option<Mapped> {
    let url = postgres_url(&Args::default(), ctx);
    map(text, url)
}

/// `psql [-h H] [-p P] [-U U] [-d D] -c "SQL"`.
pub fn psql(words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    if !filters.is_empty() {
        return None;
    }
    const WITH_VALUE: &[&str] = &[
        "-c",
        "--command",
        "-h",
        "--host",
        "-p",
        "--port",
        "-U",
        "--username",
        "-d",
        "--dbname",
    ];
    // Output formatting, which a native check replaces.
    const FORMAT: &[&str] = &["-x", "-t", "-A", "-q"];
    let args = Args::read(words, WITH_VALUE);
    let known: Vec<&str> = WITH_VALUE.iter().chain(FORMAT).copied().collect();
    if !args.others(&known).is_empty() || args.pos.len() > 1 {
        return None;
    }
    let sql = args.get(&["-c", "--command"])?.to_string();
    let mut args = args;
    let url = match args.pos.first().cloned() {
        // `psql postgres://app@db/app -c …`: the connection string is the endpoint.
        Some(conn) if conn.contains("://") => {
            let found = crate::import::secret::in_text(&conn);
            Some(Y::Str(if found.is_empty() {
                ctx.endpoint(
                    "postgres",
                    &conn,
                    "The PostgreSQL server the page's commands reached".into(),
                )
            } else {
                // Its password a secret param: the URL is written with the param in its place.
                let found: Vec<_> = found.iter().collect();
                ctx.with_secrets(&conn, &found, "", |_, s| super::literal(s))
            }))
        }
        Some(db) => {
            args.flags.push(("-d".into(), db));
            postgres_url(&args, ctx)
        }
        None => postgres_url(&args, ctx),
    };
    map(&sql, url)
}

/// The statement's native form, if oncall has one.
fn map(sql: &str, url: Option<Y>) -> Option<Mapped> {
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.contains(';') {
        return None;
    }
    let lower = sql
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let with_url = |entries: Vec<(&str, Option<Y>)>| {
        let mut map = vec![("url", url.clone())];
        map.extend(entries);
        Y::Map(
            map.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                .collect(),
        )
    };
    let older = older_than(&lower);
    for (function, kind) in [
        ("pg_terminate_backend", "pg_terminate"),
        ("pg_cancel_backend", "pg_cancel"),
    ] {
        if lower.contains(function) {
            if !lower.contains("from pg_stat_activity") {
                return None;
            }
            let mut helper = Native::check(
                "pg_long_queries",
                "long_queries",
                with_url(vec![("older_than", older.clone().map(Y::Str))]),
            );
            helper.helper = true;
            let verb = kind.trim_start_matches("pg_");
            let action = Native::action(kind, format!("{verb}_long_queries"), with_url(vec![("check", Some(Y::str("")))]))
                .review("the backends the page's WHERE chose are those of the long_queries check before it: check its rows before approving");
            return Some(Mapped::Native {
                items: vec![helper, action],
                every: None,
            });
        }
    }
    if lower == "analyze" || lower == "analyse" {
        return Some(Mapped::one(Native::action(
            "pg_analyze",
            "analyze",
            with_url(vec![]),
        )));
    }
    if let Some(db) = lower.strip_prefix("reindex database ") {
        let db = db.trim();
        if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        return Some(Mapped::one(Native::action(
            "pg_reindex",
            format!("reindex_{db}"),
            with_url(vec![("database", Some(Y::str(db)))]),
        )));
    }
    if !lower.starts_with("select ") {
        return None;
    }
    let limit = lower
        .rsplit_once(" limit ")
        .and_then(|(_, n)| n.trim().parse::<i64>().ok())
        .map(|n| Y::Int(n.clamp(1, crate::spec::MAX_ROWS as i64)));
    let from = |table: &str| lower.contains(&format!("from {table}"));
    let (kind, name, spec) = if from("pg_stat_statements") {
        (
            "pg_slow_statements",
            "slow_statements",
            with_url(vec![("limit", limit)]),
        )
    } else if from("pg_locks") {
        ("pg_locks", "ungranted_locks", with_url(vec![]))
    } else if from("pg_stat_activity") && lower.starts_with("select count(*) from") {
        ("pg_connections", "connections", with_url(vec![]))
    } else if from("pg_stat_activity") {
        (
            "pg_long_queries",
            "active_queries",
            with_url(vec![("older_than", older.map(Y::Str))]),
        )
    } else {
        return None;
    };
    let mut item = Native::check(kind, name, spec);
    if kind == "pg_connections" {
        item.unit = Some("%".into());
    }
    if kind == "pg_long_queries" && !lower.contains("interval") {
        item = item.review("oncall lists the active queries running longer than 5m: give older_than to see shorter ones");
    }
    Some(Mapped::one(item))
}

/// `interval '5 minutes'` as `5m`.
fn older_than(sql: &str) -> Option<String> {
    let (_, rest) = sql.split_once("interval '")?;
    let (amount, _) = rest.split_once('\'')?;
    let mut words = amount.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    let unit = match words.next().unwrap_or("seconds").trim_end_matches('s') {
        "second" | "sec" => "s",
        "minute" | "min" => "m",
        "hour" => "h",
        "day" => "d",
        _ => return None,
    };
    Some(format!("{n}{unit}"))
}
