//! Backends: checks read the world, actions change it. A live run reads real systems; a drill
//! reads a scenario. Actions are planned the same way everywhere and applied only with an approval.

pub mod alertmanager;
pub mod docker;
pub mod gpu;
pub mod host;
pub mod http;
pub mod kinds;
pub mod kube;
pub mod nats;
pub mod notify;
pub mod pagerduty;
pub mod postgres;
pub mod prometheus;
pub mod reading;
pub mod redis;
pub mod scenario;
pub mod shell;

use crate::approval::Approval;
use crate::expr;
use crate::spec::S;
use kinds::CheckKind;
use reading::Reading;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// Why a check could not be read or an action could not be prepared or applied. Its text is the
/// cause in words: unreachable, timed out, not the expected API.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Prometheus(#[from] prometheus::Error),
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(transparent)]
    Shell(#[from] shell::Error),
    #[error(transparent)]
    Scenario(#[from] scenario::Error),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Docker(#[from] docker::Error),
    #[error(transparent)]
    Gpu(#[from] gpu::Error),
    #[error(transparent)]
    Host(#[from] host::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    #[error(transparent)]
    Redis(#[from] redis::Error),
    #[error(transparent)]
    Nats(#[from] nats::Error),
    #[error(transparent)]
    Alertmanager(#[from] alertmanager::Error),
    #[error(transparent)]
    Notify(#[from] notify::Error),
    #[error(transparent)]
    PagerDuty(#[from] pagerduty::Error),
    #[error("invalid {what}: {why}")]
    Spec { what: &'static str, why: String },
    #[error("template: {0}")]
    Template(#[from] expr::ExprError),
    /// An action applied with no live systems to apply it to.
    #[error("the action has no live system to act on")]
    NoSystems,
}

impl BackendError {
    /// Nothing for the action to do (nothing was scaled to scale back, no silence to expire):
    /// it is not offered, and that is not a failure.
    pub fn nothing_to_do(&self) -> bool {
        matches!(
            self,
            BackendError::Kube(kube::Error::NothingToRestore { .. })
                | BackendError::Alertmanager(alertmanager::Error::NothingToExpire)
                | BackendError::Notify(notify::Error::NoWebhook(_))
                | BackendError::PagerDuty(_)
                | BackendError::Gpu(gpu::Error::NothingToEnd(_))
        )
    }
}

/// A backend that gave no answer (refused, timed out, a name not resolved) or could not be used
/// at all (no kubeconfig, no NVIDIA driver): which system, and why. An answer that is an error
/// (not found, forbidden) is not this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoAnswer {
    /// `http://127.0.0.1:9090`, `postgres://db:5432`; None where it is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub cause: String,
    /// It could not be used at all (no kubeconfig, no NVIDIA driver), rather than not answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unusable: bool,
}

impl BackendError {
    pub fn no_answer(&self) -> Option<NoAnswer> {
        let at = |system: &str, cause: &str| NoAnswer {
            system: Some(system.to_string()),
            cause: cause.to_string(),
            unusable: false,
        };
        let unusable = |cause: String| NoAnswer {
            system: None,
            cause,
            unusable: true,
        };
        match self {
            BackendError::Prometheus(prometheus::Error::Unreachable(text))
            | BackendError::Http(http::Error::Unreachable(text))
            | BackendError::Alertmanager(alertmanager::Error::Unreachable(text)) => {
                Some(split_unreachable(text))
            }
            BackendError::Kube(kube::Error::Unreachable { server, cause })
            | BackendError::Postgres(postgres::Error::Unreachable { server, cause })
            | BackendError::Redis(redis::Error::Unreachable { server, cause })
            | BackendError::Nats(nats::Error::Unreachable { server, cause })
            | BackendError::Docker(docker::Error::Unreachable {
                host: server,
                cause,
            }) => Some(at(server, cause)),
            BackendError::Kube(kube::Error::Config(cause)) => Some(unusable(cause.clone())),
            BackendError::Gpu(e @ gpu::Error::NoDriver { .. }) => Some(unusable(e.to_string())),
            _ => None,
        }
    }
}

/// Where a `describe_reqwest` text says it went and why: `cannot reach URL: why`, `no answer from URL within T`.
fn split_unreachable(text: &str) -> NoAnswer {
    let origin = |url: &str| {
        url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_string())
    };
    if let Some(rest) = text.strip_prefix("cannot reach ")
        && let Some((url, why)) = rest.split_once(": ")
    {
        return NoAnswer {
            system: Some(origin(url)),
            cause: why.to_string(),
            unusable: false,
        };
    }
    if let Some(rest) = text.strip_prefix("no answer from ")
        && let Some((url, within)) = rest.split_once(" within ")
    {
        return NoAnswer {
            system: Some(origin(url)),
            cause: format!("no answer within {within}"),
            unusable: false,
        };
    }
    NoAnswer {
        system: None,
        cause: text.to_string(),
        unusable: false,
    }
}

/// Where checks get their readings from.
pub trait Reader {
    /// Reads one check.
    fn read(
        &self,
        id: &str,
        kind: &CheckKind,
        ctx: &Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reading, BackendError>>;

    /// Whether every further read of this check would give what the last one gave: a drill's
    /// scenario past its last value. A wait then knows its outcome without polling on.
    fn settled(&self, _id: &str) -> bool {
        false
    }
}

impl Reader for Live {
    async fn read(
        &self,
        _id: &str,
        kind: &CheckKind,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        kind.read(self, ctx, timeout).await
    }
}

/// The systems that need a client or a library, each made on first use.
pub struct Systems {
    pub kube: kube::Kube,
    pub docker: docker::DockerHost,
    pub gpu: gpu::Gpu,
    pub urls: ServiceUrls,
}

/// Connection URLs from the flags; a check's own `url` wins.
#[derive(Default, Clone)]
pub struct ServiceUrls {
    /// None: the PG* variables psql reads.
    pub postgres: Option<String>,
    pub redis: Option<String>,
    pub nats: Option<String>,
}

pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";
pub const DEFAULT_ALERTMANAGER: &str = "http://localhost:9093";

/// A spec's own URL (its values percent-encoded), else the flag's. Its password is masked
/// wherever it comes back.
fn url(
    spec: &Option<S<String>>,
    flag: Option<&String>,
    ctx: &Value,
) -> Result<Option<String>, BackendError> {
    let url = match spec {
        Some(url) => Some(expr::render_url(&url.value, ctx)?),
        None => flag.cloned(),
    };
    if let Some(url) = &url {
        crate::redact::register_url(url);
    }
    Ok(url)
}

fn alertmanager_url(ctx: &Value) -> String {
    ctx["endpoints"]["alertmanager"]
        .as_str()
        .unwrap_or(DEFAULT_ALERTMANAGER)
        .to_string()
}

fn matchers(
    spec: &std::collections::BTreeMap<String, S<String>>,
    render: &dyn Fn(&str) -> Result<String, BackendError>,
) -> Result<std::collections::BTreeMap<String, String>, BackendError> {
    spec.iter()
        .map(|(k, v)| Ok((k.clone(), render(&v.value)?)))
        .collect()
}

/// The real systems.
pub struct Live {
    pub client: reqwest::Client,
    pub prometheus_url: String,
    pub systems: std::sync::Arc<Systems>,
}

impl Live {
    pub fn new(prometheus_url: String, systems: std::sync::Arc<Systems>) -> Self {
        Live {
            client: http_client(),
            prometheus_url,
            systems,
        }
    }
}

fn duration(
    spec: &Option<S<String>>,
    what: &'static str,
) -> Result<Option<Duration>, BackendError> {
    spec.as_ref()
        .map(|d| crate::spec::parse_duration(&d.value))
        .transpose()
        .map_err(|why| BackendError::Spec { what, why })
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("oncall/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client has a fixed, valid configuration")
}

/// The exact request an action would send, for people and for the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub backend: String,
    /// One line: `POST http://gateway/api/jobs/clear-stuck`, or the shell command.
    pub request: String,
    /// The system it goes to where the request does not say (a Kubernetes context and its server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// The Kubernetes context when the config lists it as production: approving means typing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<String>,
    /// Why it would fail because what it changes is not there: said in the plan, and a live run
    /// does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The Kubernetes API server's answer to this write sent with dryRun=All (`--dry-run=server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerAnswer>,
    /// What changes, where it can be known: `replicas 5 → 10`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// What the action sets (`deployment/ns/name`), when a later action may restore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The target's value before this action: what `replicas: previous` restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
}

/// What the API server said to a write it validated and admitted without persisting.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerAnswer {
    pub accepted: bool,
    /// `deployment/x replicas → 10`, or why the server refused it.
    pub answer: String,
}

/// An action rendered against the observations so far: what would be sent, exactly.
pub struct Prepared {
    pub plan: Plan,
    request: Request,
    /// Another target the engineer may type at the prompt instead (a GPU kill's pid).
    pub pick: Option<crate::approval::Pick>,
}

impl Prepared {
    fn new(plan: Plan, request: Request) -> Prepared {
        Prepared {
            plan,
            request,
            pick: None,
        }
    }

    fn with_pick(mut self, pick: crate::approval::Pick) -> Prepared {
        self.pick = Some(pick);
        self
    }
}

enum Request {
    Http(http::Request),
    Shell(String),
    Kube(kube::Request),
    Exec(Box<kube::exec::Exec>),
    Docker(docker::Request, docker::Resolved),
    GpuKill(gpu::Kill),
    Cleanup(host::Cleanup),
    Postgres(postgres::Request),
    Alertmanager(alertmanager::Request),
}

/// What an action needs beyond its spec: the cluster (none in a drill or `show`) and what
/// earlier actions of this incident changed (for `replicas: previous`, `expire_silence`).
pub struct PlanContext<'a> {
    pub systems: Option<&'a Systems>,
    pub undo: &'a Undo,
    /// Replica counts by deployment where there is no cluster to ask (a drill's scenario).
    pub known_replicas: &'a std::collections::BTreeMap<String, i64>,
    /// Who runs oncall, for what a request records of its author (a silence's `createdBy`).
    pub user: &'a str,
    /// The runbook's messages by name, for a `notify` action to render.
    pub messages: &'a std::collections::BTreeMap<String, S<String>>,
    /// `--dry-run=server`: a Kubernetes write's plan carries the API server's answer to it sent
    /// with dryRun=All.
    pub server_dry_run: bool,
    /// The tables this run's checks have read so far, in the runbook's order: what a plan knows
    /// of a system it does not read itself (a drill's GPUs).
    pub readings: Vec<(&'a CheckKind, &'a reading::Table)>,
    /// The target the engineer typed at the prompt in place of the planned one (a GPU kill's pid).
    pub pick: Option<&'a str>,
}

/// What this incident's actions changed that a later action may undo: each target's value before
/// its first change, and the silences created and not yet expired. A resumed incident rebuilds
/// it from its timeline.
#[derive(Debug, Clone, Default)]
pub struct Undo {
    pub previous: std::collections::BTreeMap<String, Value>,
    pub silences: Vec<String>,
}

impl Undo {
    /// Keeps the value a plan replaces, the first time its target changes in this incident.
    pub fn planned(&mut self, plan: &Plan) {
        if let (Some(target), Some(before)) = (&plan.target, &plan.before) {
            self.previous
                .entry(target.clone())
                .or_insert_with(|| before.clone());
        }
    }

    pub fn applied(&mut self, effect: &Effect) {
        match effect {
            Effect::SilenceCreated { id } => self.silences.push(id.clone()),
            Effect::SilencesExpired { ids } => self.silences.retain(|s| !ids.contains(s)),
        }
    }
}

/// What an applied action left that a later one may undo, recorded with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    SilenceCreated { id: String },
    SilencesExpired { ids: Vec<String> },
}

/// An applied action's result in words, and what it left behind.
#[derive(Debug)]
pub struct Applied {
    pub detail: String,
    pub effect: Option<Effect>,
}

impl From<String> for Applied {
    fn from(detail: String) -> Applied {
        Applied {
            detail,
            effect: None,
        }
    }
}

impl Prepared {
    /// Sends the request. Only an approval opens this door.
    pub async fn apply(
        &self,
        _approval: Approval,
        client: &reqwest::Client,
        systems: Option<&Systems>,
        timeout: Duration,
    ) -> Result<Applied, BackendError> {
        let kube = systems.map(|s| &s.kube);
        let systems = || systems.ok_or(BackendError::NoSystems);
        Ok(match &self.request {
            Request::Http(request) => request.send(client, kube, timeout).await?.into(),
            Request::Shell(command) => shell::run_action(command, timeout).await?.into(),
            Request::Kube(request) => kube::apply(&systems()?.kube, request).await?.into(),
            Request::Exec(exec) => kube::exec::apply(&systems()?.kube, exec, timeout)
                .await?
                .into(),
            Request::Docker(request, resolved) => {
                docker::apply(&systems()?.docker, request, resolved)
                    .await?
                    .into()
            }
            Request::GpuKill(kill) => kill.apply().await?.into(),
            Request::Cleanup(cleanup) => cleanup.apply()?.into(),
            Request::Postgres(request) => postgres::apply(request).await?.into(),
            Request::Alertmanager(request) => alertmanager::apply(client, request, timeout).await?,
        })
    }
}

/// Bodies larger than this are not read further: an answer is for people, not a download.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A response body read up to `BODY_LIMIT`; `complete` is false when the rest was left unread.
pub struct Body {
    pub status: u16,
    pub text: String,
    pub complete: bool,
}

pub async fn read_body(mut response: reqwest::Response) -> Result<Body, reqwest::Error> {
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > BODY_LIMIT {
            bytes.extend_from_slice(&chunk[..BODY_LIMIT - bytes.len()]);
            return Ok(Body {
                status,
                text: String::from_utf8_lossy(&bytes).into_owned(),
                complete: false,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        complete: true,
    })
}

/// The cause of a failed request in words; the text of each backend's `Unreachable`.
pub fn describe_reqwest(err: &reqwest::Error, url: &str, timeout: Duration) -> String {
    let url = crate::redact::Redactor::default().text(url);
    if err.is_timeout() {
        return format!("no answer from {url} within {}", humanize(timeout));
    }
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let why = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
                _ => io.to_string(),
            };
            return format!("cannot reach {url}: {why}");
        }
        source = e.source();
    }
    if err.is_connect() {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            chain = format!("{chain}: {e}");
            source = e.source();
        }
        return format!("cannot reach {url}: {chain}");
    }
    if err.is_builder() {
        return format!("invalid URL '{url}': {err}");
    }
    format!("request to {url} failed: {err}")
}

pub fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) && ms < 120_000 {
        format!("{}s", ms / 1000)
    } else if ms < 120_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Shortens a body for an error message.
pub fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_is_told_from_an_answer_that_is_an_error() {
        let refused = BackendError::from(prometheus::Error::Unreachable(
            "cannot reach http://10.0.0.1:9090/api/v1/query?query=up: connection refused".into(),
        ));
        assert_eq!(
            refused.no_answer(),
            Some(NoAnswer {
                system: Some("http://10.0.0.1:9090".into()),
                cause: "connection refused".into(),
                unusable: false,
            })
        );
        let slow = BackendError::from(http::Error::Unreachable(
            "no answer from https://gw.example/health within 10s".into(),
        ));
        assert_eq!(
            slow.no_answer().map(|n| (n.system, n.cause)),
            Some((
                Some("https://gw.example".into()),
                "no answer within 10s".into()
            ))
        );
        let no_config = BackendError::from(kube::Error::Config("no kubeconfig".into()));
        assert_eq!(
            no_config.no_answer().map(|n| n.system),
            Some(None),
            "unusable, no system to name"
        );
        let forbidden = BackendError::from(kube::Error::Refused {
            code: 403,
            reason: "Forbidden".into(),
            message: "pods is forbidden".into(),
        });
        assert_eq!(forbidden.no_answer(), None, "an answer, though an error");
    }
}
