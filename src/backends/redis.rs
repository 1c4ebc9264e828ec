//! Redis through the redis crate: ping with latency, a list's length and head, memory use.

use super::kinds::CheckSpec;
use super::reading::{Reading, Table, number};
use super::{BackendError, DEFAULT_REDIS, Live, url};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{MAX_ROWS, S};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

const DEFAULT_FIRST: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// `redis_list`: the list to read.
    #[serde(default)]
    pub key: Option<S<String>>,
    /// `redis_list`: how many items from the head to show (default 10).
    #[serde(default)]
    pub first: Option<S<usize>>,
}

/// `redis_ping`: PING, with its latency.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Ping(pub RedisSpec);

/// `redis_list`: a list's length and its first items (a job queue).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct List(pub RedisSpec);

/// `redis_memory`: used memory against `maxmemory`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Memory(pub RedisSpec);

impl RedisSpec {
    fn validate(&self, v: &mut Validator) {
        for field in self.url.iter().chain(&self.key) {
            v.template(field, "field");
        }
    }

    /// The server: the spec's own URL, else `--redis-url`, else the local default.
    fn url(&self, live: &Live, ctx: &Value) -> Result<String, BackendError> {
        Ok(url(&self.url, live.systems.urls.redis.as_ref(), ctx)?
            .unwrap_or_else(|| DEFAULT_REDIS.into()))
    }
}

impl CheckSpec for Ping {
    const BACKEND: &'static str = "redis";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.0.validate(v);
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        ping(&self.0.url(live, ctx)?).await
    }
}

impl CheckSpec for List {
    const BACKEND: &'static str = "redis";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        v.count(self.0.first.as_ref(), "`first`", 1..=MAX_ROWS);
        if self.0.key.is_none() {
            v.problem(
                id,
                "redis_list needs a `key`".into(),
                Some("redis_list: { key: benchmark_queue }".into()),
            );
        }
        self.0.validate(v);
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        let url = self.0.url(live, ctx)?;
        let key = self
            .0
            .key
            .as_ref()
            .map(|k| expr::render(&k.value, ctx))
            .transpose()?;
        list(&url, key.as_deref(), self.0.first.as_ref().map(|f| f.value)).await
    }
}

impl CheckSpec for Memory {
    const BACKEND: &'static str = "redis";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.0.validate(v);
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        memory(&self.0.url(live, ctx)?).await
    }
}

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

/// The server's version, after a PING that proves the credentials are accepted: what `oncall
/// doctor` asks.
pub async fn version(url: &str) -> Result<String, super::BackendError> {
    let (mut conn, server) = connect(url).await?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| describe(e, &server))?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| describe(e, &server))?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map_or_else(|| "unknown".to_string(), |v| v.trim().to_string()))
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
        took_ms: None,
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
