//! NATS through async-nats: connect, round trip, server version and (from the monitoring
//! endpoint) the connection count: the runbook's "NATS connectivity".

use super::kinds::CheckSpec;
use super::reading::{Reading, number};
use super::{BackendError, DEFAULT_NATS, Live, url};
use crate::spec::S;
use crate::spec::validate::Validator;
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSpec {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// The monitoring endpoint (`http://nats:8222`) for the connection count.
    #[serde(default)]
    pub monitor: Option<S<String>>,
}

impl CheckSpec for NatsSpec {
    const BACKEND: &'static str = "nats";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        for field in self.url.iter().chain(&self.monitor) {
            v.template(field, "field");
        }
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let monitor = url(&self.monitor, None, ctx)?;
        let server = url(&self.url, live.systems.urls.nats.as_ref(), ctx)?
            .unwrap_or_else(|| DEFAULT_NATS.into());
        check(&server, monitor.as_deref(), &live.client, timeout).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach NATS at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("NATS: {0}")]
    Other(String),
}

/// Connects once, without reconnecting, and waits for the server's first answer.
async fn connect(url: &str, timeout: Duration) -> Result<async_nats::Client, Error> {
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .max_reconnects(Some(0));
    let nats =
        match tokio::time::timeout(timeout, async_nats::connect_with_options(url, options)).await {
            Ok(Ok(nats)) => nats,
            Ok(Err(e)) => {
                return Err(Error::Unreachable {
                    server: url.into(),
                    cause: e.to_string(),
                });
            }
            Err(_) => {
                return Err(Error::Unreachable {
                    server: url.into(),
                    cause: format!("no answer within {}", super::humanize(timeout)),
                });
            }
        };
    nats.flush()
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    Ok(nats)
}

/// Connects as a check would and gives the server's version: what `oncall doctor` asks. A
/// refused authorization is a failed connect, in NATS's words.
pub async fn version(url: &str, timeout: Duration) -> Result<String, super::BackendError> {
    let nats = connect(url, timeout).await?;
    Ok(nats.server_info().version)
}

pub async fn check(
    url: &str,
    monitor: Option<&str>,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<Reading, super::BackendError> {
    let started = Instant::now();
    let nats = connect(url, timeout).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let info = nats.server_info();
    let mut text = format!(
        "NATS {} at {}:{}, round trip incl. connect {ms:.1} ms",
        info.version, info.host, info.port
    );
    if let Some(monitor) = monitor {
        let varz = format!("{}/varz", monitor.trim_end_matches('/'));
        let body: serde_json::Value = client
            .get(&varz)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Error::Unreachable {
                server: varz.clone(),
                cause: super::describe_reqwest(&e, &varz, timeout),
            })?
            .json()
            .await
            .map_err(|e| Error::Other(format!("{varz}: {e}")))?;
        text.push_str(&format!(
            "; {} connections",
            body["connections"].as_i64().unwrap_or(0)
        ));
    }
    Ok(Reading {
        value: number((ms * 10.0).round() / 10.0),
        text: Some(text),
        ..Reading::default()
    })
}
