//! Redis through the redis crate: ping with latency, a list's length and head, memory use.

use crate::engine::observation::{Reading, Table, number};
use redis::AsyncCommands;
use std::time::Instant;

const DEFAULT_FIRST: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach Redis at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("Redis refused: {0}")]
    Refused(String),
    #[error("Redis: {0}")]
    Other(String),
    #[error("redis_list needs a `key`")]
    NoKey,
}

fn describe(err: redis::RedisError, server: &str) -> Error {
    if err.is_connection_refusal() || err.is_io_error() || err.is_connection_dropped() {
        let cause = if err.is_connection_refusal() {
            "connection refused".to_string()
        } else {
            err.to_string()
        };
        return Error::Unreachable {
            server: server.into(),
            cause,
        };
    }
    match err.kind() {
        redis::ErrorKind::AuthenticationFailed => Error::Refused(err.to_string()),
        _ => Error::Other(err.to_string()),
    }
}

async fn connect(url: &str) -> Result<(redis::aio::MultiplexedConnection, String), Error> {
    let client = redis::Client::open(url).map_err(|e| Error::Other(e.to_string()))?;
    let server = client.get_connection_info().addr().to_string();
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| describe(e, &server))?;
    Ok((connection, server))
}

/// PING: the value is the round trip in ms.
pub async fn ping(url: &str) -> Result<Reading, super::BackendError> {
    let started = Instant::now();
    let (mut conn, server) = connect(url).await?;
    let answer: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| describe(e, &server))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Reading {
        value: number((ms * 100.0).round() / 100.0),
        text: Some(format!("{server} answered {answer}")),
        ..Reading::default()
    })
}

/// LLEN and LRANGE 0 N-1: the value is the list's length; rows are its first items.
pub async fn list(
    url: &str,
    key: Option<&str>,
    first: Option<usize>,
) -> Result<Reading, super::BackendError> {
    let key = key.ok_or(Error::NoKey)?;
    let (mut conn, server) = connect(url).await?;
    let len: i64 = conn.llen(key).await.map_err(|e| describe(e, &server))?;
    let first = first.unwrap_or(DEFAULT_FIRST).max(1) as isize;
    let items: Vec<String> = conn
        .lrange(key, 0, first - 1)
        .await
        .map_err(|e| describe(e, &server))?;
    let rows = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| vec![i.into(), item.into()])
        .collect();
    Ok(Reading {
        value: len.into(),
        table: Some(Table::new(vec!["index".into(), "item".into()], rows)),
        text: Some(format!("{key}: {len} items")),
        verdict: None,
    })
}

/// INFO memory: the value is used memory in MiB; the text compares it with maxmemory.
pub async fn memory(url: &str) -> Result<Reading, super::BackendError> {
    let (mut conn, server) = connect(url).await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .map_err(|e| describe(e, &server))?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let used: f64 = field("used_memory").parse().unwrap_or(0.0);
    let max = field("maxmemory_human");
    let text = format!(
        "used {} (peak {}), maxmemory {}",
        field("used_memory_human"),
        field("used_memory_peak_human"),
        if max == "0B" { "unlimited".into() } else { max }
    );
    Ok(Reading {
        value: number((used / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        text: Some(text),
        ..Reading::default()
    })
}
