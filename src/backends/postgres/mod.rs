//! PostgreSQL through tokio-postgres: readiness, connections, long-running and blocked queries,
//! the slowest statements and ungranted locks as checks; cancelling or terminating backends,
//! ANALYZE and REINDEX as actions.

mod spec;

pub use spec::{
    Analyze, Blocked, Cancel, Connections, Locks, LongQueries, Pg, PgBackends, PgReindex, Ready,
    Reindex, SlowStatements, Terminate,
};

use super::reading::{Reading, Table, Verdict, number};
use super::{Plan, humanize};
use serde_json::Value;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, Config, NoTls};

const DEFAULT_LIMIT: usize = 10;
const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid PostgreSQL connection settings: {0}")]
    Config(String),
    #[error("cannot reach PostgreSQL at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("PostgreSQL refused the login at {server}: {message}")]
    Login { server: String, message: String },
    #[error(
        "pg_stat_statements is not installed in this database: add it to shared_preload_libraries and run CREATE EXTENSION pg_stat_statements"
    )]
    NoStatements,
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("check '{0}' has not run, so there are no backends to act on")]
    NoCheck(String),
}

/// Connection settings: a URL, or the PG* variables psql reads.
/// The connection: a URL or `key=value` string, else the PG* variables psql reads. Its password
/// is masked wherever it comes back.
pub fn config(url: Option<&str>) -> Result<Config, Error> {
    let config = read_config(url)?;
    if let Some(password) = config.get_password() {
        crate::redact::register(&String::from_utf8_lossy(password));
    }
    Ok(config)
}

fn read_config(url: Option<&str>) -> Result<Config, Error> {
    if let Some(url) = url {
        return Config::from_str(url).map_err(|e| Error::Config(e.to_string()));
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = Config::new();
    config.host(var("PGHOST").as_deref().unwrap_or("localhost"));
    if let Some(port) = var("PGPORT") {
        config.port(
            port.parse()
                .map_err(|_| Error::Config(format!("PGPORT '{port}' is not a port")))?,
        );
    }
    config.user(
        var("PGUSER")
            .or_else(|| var("USER"))
            .as_deref()
            .unwrap_or("postgres"),
    );
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    if let Some(db) = var("PGDATABASE") {
        config.dbname(db);
    }
    Ok(config)
}

/// `host:port` of the connection, for people.
pub fn server(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

fn describe(err: tokio_postgres::Error, server: &str) -> Error {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        return match code {
            "28P01" | "28000" => Error::Login {
                server: server.into(),
                message: db.message().into(),
            },
            "42P01" | "42883" if db.message().contains("pg_stat_statements") => Error::NoStatements,
            "55000" if db.message().contains("pg_stat_statements") => Error::NoStatements,
            _ => Error::Query(format!("{} ({code})", db.message())),
        };
    }
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let cause = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                _ => io.to_string(),
            };
            return Error::Unreachable {
                server: server.into(),
                cause,
            };
        }
        source = e.source();
    }
    Error::Unreachable {
        server: server.into(),
        cause: err.to_string(),
    }
}

async fn connect(config: &Config) -> Result<Client, Error> {
    let server = server(config);
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| describe(e, &server))?;
    // The connection drives the socket; it ends when the client is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// What a role may do on a server, as `oncall doctor` reads it (nothing is changed).
#[derive(Debug, Clone)]
pub struct Grants {
    /// `127.0.0.1:5432`
    pub server: String,
    pub version: String,
    pub user: String,
    pub database: String,
    pub superuser: bool,
    /// Sees every session's query in pg_stat_activity and pg_stat_statements (pg_read_all_stats,
    /// which pg_monitor includes).
    pub read_all_stats: bool,
    /// May cancel and end other roles' backends (pg_signal_backend).
    pub signal_backend: bool,
    /// Owns (or is a member of the owner of) the database: ANALYZE of every table, REINDEX DATABASE.
    pub owns_database: bool,
    /// pg_stat_statements can be read, or why not.
    pub statements: Result<(), String>,
}

/// Connects as a check would and reads the role's grants.
pub async fn grants(config: &Config) -> Result<Grants, super::BackendError> {
    let server = server(config);
    let client = connect(config).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_user::text, current_database()::text,
                    coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
                    pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
                    pg_has_role(current_user, 'pg_signal_backend', 'MEMBER'),
                    coalesce((SELECT pg_has_role(current_user, datdba, 'MEMBER') FROM pg_database
                              WHERE datname = current_database()), false)",
            &[],
        )
        .await
        .map_err(|e| describe(e, &server))?;
    let statements = match client
        .query("SELECT 1 FROM pg_stat_statements LIMIT 1", &[])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(describe(e, &server).to_string()),
    };
    Ok(Grants {
        server,
        version: row.get(0),
        user: row.get(1),
        database: row.get(2),
        superuser: row.get(3),
        read_all_stats: row.get(4),
        signal_backend: row.get(5),
        owns_database: row.get(6),
        statements,
    })
}

/// Runs a query whose columns are all cast to text, as rows of JSON values (numbers where they parse).
async fn rows(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    server: &str,
) -> Result<Vec<Vec<Value>>, Error> {
    let found = client
        .query(sql, params)
        .await
        .map_err(|e| describe(e, server))?;
    Ok(found
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| match row.get::<_, Option<String>>(i) {
                    Some(text) => cell_number(&text).unwrap_or_else(|| text.into()),
                    None => Value::Null,
                })
                .collect()
        })
        .collect())
}

/// A cell that is a plain integer or decimal (`4120.50`, not `1e5` or `NaN`) is a number, so a
/// runbook can compare it.
fn cell_number(text: &str) -> Option<Value> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    let (whole, fraction) = text.strip_prefix('-').unwrap_or(text).split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(whole) && digits(fraction)) {
        return None;
    }
    Some(number(text.parse().ok()?))
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Which PostgreSQL check.
#[derive(Clone, Copy)]
pub enum Kind {
    Ready,
    Connections,
    LongQueries,
    Blocked,
    SlowStatements,
    Locks,
}

pub async fn check(
    kind: Kind,
    config: &Config,
    older_than: Option<Duration>,
    limit: Option<usize>,
) -> Result<Reading, super::BackendError> {
    let server = server(config);
    let started = Instant::now();
    let client = connect(config).await?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT) as i64;
    let reading = match kind {
        Kind::Ready => {
            let version: String = client
                .query_one("SHOW server_version", &[])
                .await
                .map_err(|e| describe(e, &server))?
                .get(0);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            Reading {
                value: number((ms * 10.0).round() / 10.0),
                text: Some(format!(
                    "{server} accepting connections, PostgreSQL {version}"
                )),
                ..Reading::default()
            }
        }
        Kind::Connections => {
            let max: String = client
                .query_one("SHOW max_connections", &[])
                .await
                .map_err(|e| describe(e, &server))?
                .get(0);
            let max: i64 = max.parse().unwrap_or(0);
            let by_state = rows(&client, "SELECT coalesce(state, '(background)'), count(*)::text FROM pg_stat_activity GROUP BY 1 ORDER BY count(*) DESC, 1", &[], &server).await?;
            let total: i64 = by_state.iter().filter_map(|r| r[1].as_i64()).sum();
            let pct = if max == 0 {
                0.0
            } else {
                (total as f64 * 1000.0 / max as f64).round() / 10.0
            };
            let text = format!("{total} of max_connections {max} in use");
            // The value is the share of max_connections in use, so one threshold fits any server.
            Reading {
                value: number(pct),
                table: Some(Table::new(columns(&["state", "connections"]), by_state)),
                text: Some(text),
                verdict: None,
                took_ms: None,
            }
        }
        Kind::LongQueries => {
            let older = older_than.unwrap_or(DEFAULT_OLDER_THAN).as_secs_f64();
            let sql = "SELECT pid::text, date_trunc('second', now() - query_start)::text, state, left(regexp_replace(query, '\\s+', ' ', 'g'), 120)
                FROM pg_stat_activity
                WHERE state <> 'idle' AND pid <> pg_backend_pid() AND query_start < now() - make_interval(secs => $1)
                ORDER BY query_start LIMIT $2";
            let found = rows(&client, sql, &[&older, &limit], &server).await?;
            let n = found.len();
            let verdict = (n > 0).then(|| {
                (
                    Verdict::Warn,
                    format!(
                        "{n} quer(ies) active longer than {}",
                        humanize(Duration::from_secs_f64(older))
                    ),
                )
            });
            Reading {
                value: n.into(),
                table: Some(Table::new(
                    columns(&["pid", "duration", "state", "query"]),
                    found,
                )),
                text: None,
                verdict,
                took_ms: None,
            }
        }
        Kind::Blocked => {
            let sql = "SELECT a.pid::text, date_trunc('second', now() - a.query_start)::text, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120),
                    b.pid::text, left(regexp_replace(b.query, '\\s+', ' ', 'g'), 120), b.state
                FROM pg_stat_activity a
                CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS blocker(pid)
                JOIN pg_stat_activity b ON b.pid = blocker.pid
                ORDER BY a.query_start LIMIT $1";
            let found = rows(&client, sql, &[&limit], &server).await?;
            let n = found.len();
            let verdict = (n > 0).then(|| (Verdict::Warn, format!("{n} blocked quer(ies)")));
            let names = columns(&[
                "pid",
                "waiting",
                "query",
                "blocking pid",
                "blocking query",
                "blocking state",
            ]);
            Reading {
                value: n.into(),
                table: Some(Table::new(names, found)),
                text: None,
                verdict,
                took_ms: None,
            }
        }
        Kind::SlowStatements => {
            // server_version_num: 150004 for 15.4, 120017 for 12.17.
            let version: String = client
                .query_one("SHOW server_version_num", &[])
                .await
                .map_err(|e| describe(e, &server))?
                .get(0);
            let sql = slow_statements_sql(version.trim().parse().unwrap_or(0));
            let found = rows(&client, &sql, &[&limit], &server).await?;
            let n = found.len();
            Reading {
                value: n.into(),
                table: Some(Table::new(
                    columns(&["query", "calls", "mean ms", "total ms"]),
                    found,
                )),
                text: None,
                verdict: None,
                took_ms: None,
            }
        }
        Kind::Locks => {
            let sql = "SELECT l.pid::text, l.locktype, l.mode, coalesce(c.relname, l.relation::text, ''), coalesce(a.state, ''), left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120)
                FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE NOT l.granted LIMIT $1";
            let found = rows(&client, sql, &[&limit], &server).await?;
            let n = found.len();
            let verdict = (n > 0).then(|| (Verdict::Warn, format!("{n} ungranted lock(s)")));
            Reading {
                value: n.into(),
                table: Some(Table::new(
                    columns(&["pid", "locktype", "mode", "relation", "state", "query"]),
                    found,
                )),
                text: None,
                verdict,
                took_ms: None,
            }
        }
    };
    Ok(reading)
}

/// The playbook's `SELECT query, mean_time FROM pg_stat_statements ORDER BY mean_time DESC`, in the
/// columns of the server's pg_stat_statements: PostgreSQL 13 renamed `mean_time` and `total_time`
/// to `mean_exec_time` and `total_exec_time` (server_version_num 130000 and up).
fn slow_statements_sql(server_version_num: u32) -> String {
    let (mean, total) = if server_version_num >= 130_000 {
        ("mean_exec_time", "total_exec_time")
    } else {
        ("mean_time", "total_time")
    };
    format!(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 120), calls::text, round({mean}::numeric, 2)::text, round({total}::numeric, 1)::text
                FROM pg_stat_statements ORDER BY {mean} DESC LIMIT $1"
    )
}

/// An approved PostgreSQL change.
pub enum Request {
    /// `pg_cancel_backend` (cancel: true) or `pg_terminate_backend` of each pid.
    Backends {
        config: Config,
        pids: Vec<i64>,
        cancel: bool,
    },
    Sql {
        config: Config,
        sql: String,
    },
}

/// The backends a check found, as its rows name them: pid, and what each was doing.
pub fn backends(
    ctx: &Value,
    check: &str,
    column: &str,
    config: Config,
    cancel: bool,
) -> Result<(Plan, Request), Error> {
    let rows = ctx["checks"][check]["rows"]
        .as_array()
        .ok_or_else(|| Error::NoCheck(check.into()))?;
    let mut pids = Vec::new();
    let mut changes = Vec::new();
    for row in rows {
        let Some(pid) = row[column].as_i64() else {
            continue;
        };
        if pids.contains(&pid) {
            continue;
        }
        pids.push(pid);
        // A blocker's own duration is not in a pg_blocked row: only the waiter's is.
        let duration = if column == "pid" {
            row.get("duration")
                .or_else(|| row.get("waiting"))
                .and_then(Value::as_str)
                .unwrap_or("")
        } else {
            ""
        };
        let query_key = if column == "pid" {
            "query"
        } else {
            "blocking query"
        };
        let query = row.get(query_key).and_then(Value::as_str).unwrap_or("");
        let verb = if cancel {
            "cancel the query of"
        } else {
            "terminate"
        };
        changes.push(format!(
            "{verb} pid {pid} {}{query}",
            if duration.is_empty() {
                String::new()
            } else {
                format!("(running {duration}) ")
            }
        ));
    }
    let function = if cancel {
        "pg_cancel_backend"
    } else {
        "pg_terminate_backend"
    };
    let list = pids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let request = if pids.is_empty() {
        format!(
            "nothing to {}: check '{check}' found no backend",
            if cancel { "cancel" } else { "terminate" }
        )
    } else {
        format!("SELECT {function}(pid) FROM unnest(ARRAY[{list}]) AS pid")
    };
    let plan = Plan {
        backend: "postgres".into(),
        request,
        changes,
        ..Plan::default()
    };
    Ok((
        plan,
        Request::Backends {
            config,
            pids,
            cancel,
        },
    ))
}

pub fn sql(config: Config, sql: String, warning: Option<&str>) -> (Plan, Request) {
    let changes = warning.map(|w| vec![w.to_string()]).unwrap_or_default();
    (
        Plan {
            backend: "postgres".into(),
            request: sql.clone(),
            changes,
            ..Plan::default()
        },
        Request::Sql { config, sql },
    )
}

pub(super) async fn apply(request: &Request) -> Result<String, super::BackendError> {
    match request {
        Request::Backends {
            config,
            pids,
            cancel,
        } => {
            if pids.is_empty() {
                return Ok("no backend to act on".into());
            }
            let server = server(config);
            let client = connect(config).await?;
            let function = if *cancel {
                "pg_cancel_backend"
            } else {
                "pg_terminate_backend"
            };
            let mut done = Vec::new();
            for pid in pids {
                let pid32 = *pid as i32;
                let ok: bool = client
                    .query_one(&format!("SELECT {function}($1)"), &[&pid32])
                    .await
                    .map_err(|e| describe(e, &server))?
                    .get(0);
                done.push(format!("{pid} {}", if ok { "ok" } else { "gone already" }));
            }
            Ok(format!("{function}: {}", done.join(", ")))
        }
        Request::Sql { config, sql } => {
            let server = server(config);
            let client = connect(config).await?;
            let started = Instant::now();
            client
                .batch_execute(sql)
                .await
                .map_err(|e| describe(e, &server))?;
            Ok(format!("{sql} done in {}", humanize(started.elapsed())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cell_number as number;
    use super::slow_statements_sql;
    use serde_json::json;

    #[test]
    fn slow_statements_read_mean_time_before_13_and_mean_exec_time_from_13() {
        for old in [90_624, 110_022, 120_017, 129_999] {
            let sql = slow_statements_sql(old);
            assert!(sql.contains("round(mean_time::numeric"), "{old}: {sql}");
            assert!(sql.contains("ORDER BY mean_time DESC"), "{old}: {sql}");
            assert!(sql.contains("round(total_time::numeric"), "{old}: {sql}");
            assert!(!sql.contains("exec_time"), "{old}: {sql}");
        }
        for new in [130_000, 150_004, 170_002] {
            let sql = slow_statements_sql(new);
            assert!(sql.contains("ORDER BY mean_exec_time DESC"), "{new}: {sql}");
            assert!(
                sql.contains("round(total_exec_time::numeric"),
                "{new}: {sql}"
            );
        }
    }

    #[test]
    fn only_plain_integers_and_decimals_are_numbers() {
        assert_eq!(number("4120.50"), Some(json!(4120.5)));
        assert_eq!(number("-3"), Some(json!(-3)));
        assert_eq!(number("12"), Some(json!(12)));
        for text in [
            "1e5", "NaN", "inf", "1.", ".5", "00:07:12", "1.2.3", "SELECT 1", "",
        ] {
            assert_eq!(number(text), None, "{text}");
        }
    }
}
