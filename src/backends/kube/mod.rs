//! Kubernetes through kube-rs: pods, deployments, rollout history, logs, events and commands in
//! pods as checks;
//! scale, rollout restart, merge patches, pod deletion and commands in pods as actions; HTTP to
//! services through the API server's proxy. The kubeconfig is inferred as kubectl
//! does (KUBECONFIG, contexts, exec plugins, tokens, certificates, in-cluster).

pub mod exec;
pub mod proxy;
mod spec;

pub use exec::K8sExec;
pub use spec::{
    K8sDeletePod, K8sDeployment, K8sEvents, K8sLogs, K8sPatch, K8sPods, K8sRestart,
    K8sRolloutHistory, K8sScale,
};

use super::reading::{Reading, Table, Verdict};
use super::{Plan, humanize};
use crate::spec::{S, parse_duration};
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::OnceCell;

const PAGE: u32 = 500;
/// Rows kept in a pods table: the troubled pods first. The counts cover every pod.
const POD_ROWS: usize = 100;
const DEFAULT_MAX_RESTARTS: i64 = 5;
const DEFAULT_SINCE: Duration = Duration::from_secs(3600);
const DEFAULT_KEEP: usize = 5;

/// Why `--context` names nothing, with the contexts the kubeconfig has; None when it does have it.
fn unknown_context(context: &str) -> Option<String> {
    let config = kube::config::Kubeconfig::read().ok()?;
    let names: Vec<String> = config.contexts.iter().map(|c| c.name.clone()).collect();
    if names.iter().any(|n| n == context) {
        return None;
    }
    Some(format!(
        "the kubeconfig has no context '{context}'{}; its contexts: {}",
        crate::spec::validate::did_you_mean(context, &names),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the Kubernetes configuration: {0}; set KUBECONFIG or pass --context")]
    Config(String),
    #[error("cannot reach the Kubernetes API at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("the Kubernetes API refused it ({code} {reason}): {message}")]
    Refused {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("not found: {message}")]
    NotFound { message: String },
    #[error("the Kubernetes API answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("Kubernetes request failed: {0}")]
    Other(String),
    #[error("invalid {what}: {why}")]
    Spec { what: &'static str, why: String },
    #[error("nothing to go back to: {target} was not scaled earlier in this incident")]
    NothingToRestore { target: String },
    #[error("rollout of deployment {name} did not finish within {}: {state}", humanize(*.after))]
    RolloutUnfinished {
        name: String,
        after: Duration,
        state: String,
    },
    #[error("{0}")]
    NoReadyPod(String),
    #[error("the command could not run: {0}")]
    NotStarted(String),
    #[error("{pod} did not finish within {}: timed out, the stream was closed", humanize(*.after))]
    ExecTimedOut { pod: String, after: Duration },
    #[error("exited with {}: {stderr}", status.map_or("no status".to_string(), |c| format!("status {c}")))]
    ExecFailed { status: Option<i32>, stderr: String },
}

/// A Kubernetes client made on first use, so runbooks without Kubernetes never read a kubeconfig.
pub struct Kube {
    context: Option<String>,
    namespace: Option<String>,
    client: OnceCell<Result<Clients, String>>,
    /// The config's `production_contexts`.
    production: globset::GlobSet,
    /// `describe`, read from the kubeconfig once: every plan of the run names the same cluster.
    described: std::sync::OnceLock<Described>,
    /// Services and pods the API server's proxy answered 404 for in this run (`service
    /// video/api-gateway`), with its words: a plan of a request to one would fail.
    not_found: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

/// The API clients of one cluster, and its default namespace and server.
struct Clients {
    client: kube::Client,
    /// Without kube's retries on 503: through the proxy a 503 is the service's own answer.
    proxy: kube::Client,
    namespace: String,
    server: String,
}

/// Which cluster, in words, the context's name, and that name again when it is a production one.
#[derive(Clone)]
struct Described {
    text: String,
    context: Option<String>,
    production: Option<String>,
}

impl Kube {
    /// Why the `--context` given is not one the kubeconfig has (with "did you mean" and the
    /// contexts it has), for commands to refuse before they open anything.
    pub fn unknown_context(&self) -> Option<String> {
        unknown_context(self.context.as_deref()?)
    }

    /// `production`: context patterns (`prod-*`) for which a write asks for the context's name;
    /// the config file checked them when it was read, and one that does not parse matches nothing.
    pub fn new(context: Option<String>, namespace: Option<String>, production: &[String]) -> Kube {
        let mut patterns = globset::GlobSetBuilder::new();
        for pattern in production {
            if let Ok(glob) = globset::Glob::new(pattern) {
                patterns.add(glob);
            }
        }
        Kube {
            context,
            namespace,
            client: OnceCell::new(),
            production: patterns
                .build()
                .unwrap_or_else(|_| globset::GlobSet::empty()),
            described: std::sync::OnceLock::new(),
            not_found: Default::default(),
        }
    }

    async fn connect(&self) -> Result<Clients, String> {
        // The context every plan names (and the production gate checks) is the one written to:
        // read once, so a `kubectl config use-context` meanwhile cannot move the writes.
        let context = self.context.clone().or(self.described().context);
        let config = match &context {
            Some(context) => {
                let options = kube::config::KubeConfigOptions {
                    context: Some(context.clone()),
                    ..Default::default()
                };
                kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| unknown_context(context).unwrap_or_else(|| e.to_string()))?
            }
            None => kube::Config::infer().await.map_err(|e| e.to_string())?,
        };
        let server = config.cluster_url.to_string();
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let mut no_retry = config.clone();
        no_retry.default_retry = false;
        let proxy = kube::Client::try_from(no_retry).map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        Ok(Clients {
            client,
            proxy,
            namespace,
            server,
        })
    }

    /// Which cluster this is, as the kubeconfig says, without connecting:
    /// `context prod-eu (https://10.0.0.1:6443), default namespace video`. What a plan and the
    /// header name.
    pub fn describe(&self) -> String {
        self.described().text
    }

    /// The context's name when the config lists it as production: approving a write there
    /// means typing it.
    pub fn production_context(&self) -> Option<String> {
        self.described().production
    }

    fn described(&self) -> Described {
        self.described
            .get_or_init(|| self.read_description())
            .clone()
    }

    fn read_description(&self) -> Described {
        let plain = |text: &str| Described {
            text: text.into(),
            context: None,
            production: None,
        };
        let config = match kube::config::Kubeconfig::read() {
            Ok(config) => config,
            Err(_) if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                return plain("in-cluster (the pod's service account)");
            }
            Err(e) => return plain(&format!("no kubeconfig ({e})")),
        };
        let Some(name) = self.context.clone().or(config.current_context.clone()) else {
            return plain("the kubeconfig has no current context");
        };
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.clone());
        let server = context
            .as_ref()
            .and_then(|c| config.clusters.iter().find(|k| k.name == c.cluster))
            .and_then(|k| k.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .unwrap_or_else(|| "no server".into());
        let namespace = self
            .namespace
            .clone()
            .or(context.and_then(|c| c.namespace))
            .unwrap_or_else(|| "default".into());
        crate::redact::register_url(&server);
        let production = self.production.is_match(&name).then(|| name.clone());
        let mark = if production.is_some() {
            ", a production context: a write is approved by typing its name"
        } else {
            ""
        };
        Described {
            text: crate::redact::global().text(&format!(
                "context {name} ({server}), default namespace {namespace}{mark}"
            )),
            context: Some(name),
            production,
        }
    }

    /// The namespace used where a runbook names none: `--namespace`, else the kubeconfig's.
    pub async fn default_namespace(&self) -> Result<String, Error> {
        Ok(self.client().await?.1)
    }

    /// The client, the default namespace and the server URL.
    async fn client(&self) -> Result<(kube::Client, String, String), Error> {
        let clients = self.clients().await?;
        Ok((
            clients.client.clone(),
            clients.namespace.clone(),
            clients.server.clone(),
        ))
    }

    /// The API server's proxy answered that this service or pod does not exist (with its
    /// words), or None: it reached it.
    pub fn proxied_not_found(&self, target: &str, message: Option<String>) {
        let mut seen = self.not_found.lock().unwrap_or_else(|e| e.into_inner());
        match message {
            Some(message) => seen.insert(target.to_string(), message),
            None => seen.remove(target),
        };
    }

    /// Whether the proxy answered 404 for this service or pod earlier in the run, in its words.
    pub fn proxied_missing(&self, target: &str) -> Option<String> {
        let seen = self.not_found.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(target).cloned()
    }

    /// The client for the proxy subresource, the default namespace and the server URL.
    async fn proxy_client(&self) -> Result<(kube::Client, String, String), Error> {
        let clients = self.clients().await?;
        Ok((
            clients.proxy.clone(),
            clients.namespace.clone(),
            clients.server.clone(),
        ))
    }

    async fn clients(&self) -> Result<&Clients, Error> {
        match self.client.get_or_init(|| self.connect()).await {
            Ok(clients) => Ok(clients),
            Err(e) => Err(Error::Config(e.clone())),
        }
    }
}

/// One permission a runbook needs, as `kubectl auth can-i VERB RESOURCE[/SUB] -n NS` asks it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: &'static str,
    /// `""` for the core group, `apps` for deployments.
    pub group: &'static str,
    pub resource: &'static str,
    /// `""`, or `scale`, `log`, `exec`, `proxy`.
    pub subresource: &'static str,
    /// None: the context's default namespace.
    pub namespace: Option<String>,
}

impl Access {
    pub fn new(
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        subresource: &'static str,
        namespace: Option<String>,
    ) -> Access {
        Access {
            verb,
            group,
            resource,
            subresource,
            namespace,
        }
    }

    /// The same question through kubectl: `kubectl auth can-i patch deployments.apps
    /// --subresource=scale -n video-processing`.
    pub fn kubectl(&self, namespace: &str) -> String {
        let group = prefixed(".", self.group);
        let sub = prefixed(" --subresource=", self.subresource);
        format!(
            "kubectl auth can-i {} {}{group}{sub} -n {namespace}",
            self.verb, self.resource
        )
    }

    /// `patch deployments.apps/scale in video-processing`, with the namespace the review asked.
    pub fn describe(&self, namespace: &str) -> String {
        let group = prefixed(".", self.group);
        let sub = prefixed("/", self.subresource);
        format!("{} {}{group}{sub} in {namespace}", self.verb, self.resource)
    }
}

/// The API server's answer to a SelfSubjectAccessReview.
#[derive(Debug, Clone)]
pub struct CanI {
    pub allowed: bool,
    /// The namespace asked about (the default one when the runbook names none).
    pub namespace: String,
    /// Why, when the server says (RBAC's reason, an evaluation error).
    pub reason: Option<String>,
}

impl Kube {
    /// The API server's version (`/version`): `v1.30.0`.
    pub async fn server_version(&self) -> Result<String, Error> {
        let (client, _, server) = self.client().await?;
        let info = client
            .apiserver_version()
            .await
            .map_err(|e| describe(e, &server))?;
        Ok(info.git_version)
    }

    /// Whether this context's credentials may do it: a SelfSubjectAccessReview, as `kubectl auth
    /// can-i` sends it. Creating the review is a question; it changes nothing in the cluster.
    pub async fn can_i(&self, access: &Access) -> Result<CanI, Error> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let (client, default_ns, server) = self.client().await?;
        let namespace = match &access.namespace {
            Some(ns) => object_name(ns.clone(), "namespace")?,
            None => default_ns,
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(access.verb.into()),
                    group: Some(access.group.into()),
                    resource: Some(access.resource.into()),
                    subresource: (!access.subresource.is_empty())
                        .then(|| access.subresource.into()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(client)
            .create(&kube::api::PostParams::default(), &review)
            .await
            .map_err(|e| describe(e, &server))?;
        let status = answer.status.unwrap_or_default();
        Ok(CanI {
            allowed: status.allowed && !status.denied.unwrap_or(false),
            namespace,
            reason: status
                .reason
                .filter(|r| !r.is_empty())
                .or(status.evaluation_error.filter(|r| !r.is_empty())),
        })
    }
}

/// The cause of a failed request in words: unreachable, refused with the server's message, missing.
fn describe(err: kube::Error, server: &str) -> Error {
    match err {
        kube::Error::Api(status) => {
            api_error(status.code, status.reason.clone(), status.message.clone())
        }
        other => {
            let mut source: Option<&dyn std::error::Error> = Some(&other);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    let cause = match io.kind() {
                        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                        std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
                        _ => io.to_string(),
                    };
                    return Error::Unreachable {
                        server: server.to_string(),
                        cause,
                    };
                }
                source = e.source();
            }
            match other {
                kube::Error::HyperError(e) => Error::Unreachable {
                    server: server.to_string(),
                    cause: e.to_string(),
                },
                kube::Error::Service(e) => Error::Unreachable {
                    server: server.to_string(),
                    cause: e.to_string(),
                },
                e => Error::Other(e.to_string()),
            }
        }
    }
}

/// The API server's answer that is an error, by its code: refused (RBAC), not found, or other.
fn api_error(code: u16, reason: String, message: String) -> Error {
    match code {
        401 | 403 => Error::Refused {
            code,
            reason,
            message,
        },
        404 => Error::NotFound { message },
        _ => Error::Api {
            code,
            reason,
            message,
        },
    }
}

/// A rendered namespace, or the default one.
fn namespace(
    spec: &Option<S<String>>,
    render: &dyn Fn(&str) -> Result<String, super::BackendError>,
    default: &str,
) -> Result<String, super::BackendError> {
    match spec {
        Some(ns) => Ok(object_name(render(&ns.value)?, "namespace")?),
        None => Ok(default.to_string()),
    }
}

/// A name as Kubernetes allows it (RFC 1123: lower-case letters, digits, `-` and `.`). kube-rs
/// puts names into request paths as they are, and an event's into a field selector: a value
/// with `/`, `..` or `,` would change which object a request reaches.
fn object_name(name: String, what: &'static str) -> Result<String, Error> {
    check_name(&name, what)?;
    Ok(name)
}

fn check_name(name: &str, what: &'static str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .split('.')
            .all(|part| !part.is_empty() && !part.starts_with('-') && !part.ends_with('-'));
    if valid {
        Ok(())
    } else {
        Err(Error::Spec {
            what,
            why: format!(
                "'{name}' is not a Kubernetes name: lower-case letters, digits, '-' and '.', at most 253"
            ),
        })
    }
}

impl Request {
    /// Every name and namespace of the request, checked before it is planned or sent.
    pub fn checked(self) -> Result<Request, Error> {
        let (Request::Scale { ns, name, .. }
        | Request::Restart { ns, name, .. }
        | Request::Patch { ns, name, .. }
        | Request::DeletePod { ns, name }) = &self;
        check_name(ns, "namespace")?;
        check_name(name, "name")?;
        Ok(self)
    }
}

type Render<'a> = &'a dyn Fn(&str) -> Result<String, super::BackendError>;

fn since(spec: &Option<S<String>>) -> Result<Duration, Error> {
    match spec {
        Some(s) => parse_duration(&s.value).map_err(|why| Error::Spec { what: "since", why }),
        None => Ok(DEFAULT_SINCE),
    }
}

async fn list_pods(
    api: &Api<Pod>,
    selector: Option<&str>,
    server: &str,
) -> Result<Vec<Pod>, Error> {
    let mut pods = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    loop {
        let page = api.list(&params).await.map_err(|e| describe(e, server))?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        pods.extend(page.items);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(pods),
        }
    }
}

fn age(created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let Some(created) = created else {
        return String::new();
    };
    let secs = jiff::Timestamp::now()
        .duration_since(created.0)
        .as_secs()
        .max(0) as u64;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One pod's summary: (row, ready, waiting reason).
fn pod_row(pod: &Pod) -> (Vec<Value>, bool, Option<String>, i64) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Unknown".into());
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let total = pod
        .spec
        .as_ref()
        .map(|s| s.containers.len())
        .unwrap_or(statuses.len())
        .max(statuses.len());
    let ready_count = statuses.iter().filter(|c| c.ready).count();
    let restarts: i64 = statuses.iter().map(|c| c.restart_count as i64).sum();
    let waiting = statuses.iter().find_map(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
    });
    let last = statuses.iter().find_map(|c| {
        c.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.reason.clone())
    });
    let ready =
        phase == "Succeeded" || (phase == "Running" && ready_count == total && waiting.is_none());
    let shown_phase = waiting.clone().unwrap_or(phase);
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let row = vec![
        name.into(),
        shown_phase.into(),
        format!("{ready_count}/{total}").into(),
        restarts.into(),
        last.map(Value::from).unwrap_or(Value::Null),
        age(pod.metadata.creation_timestamp.as_ref()).into(),
        node.into(),
    ];
    (row, ready, waiting, restarts)
}

pub async fn pods(
    kube: &Kube,
    spec: &K8sPods,
    render: Render<'_>,
) -> Result<Reading, super::BackendError> {
    let (client, default_ns, server) = kube.client().await?;
    let ns = namespace(&spec.namespace, render, &default_ns)?;
    let selector = spec
        .selector
        .as_ref()
        .map(|s| render(&s.value))
        .transpose()?;
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let pods = list_pods(&api, selector.as_deref(), &server).await?;
    let max_restarts = spec
        .max_restarts
        .as_ref()
        .map_or(DEFAULT_MAX_RESTARTS, |m| m.value);
    let mut rows: Vec<(u8, Vec<Value>)> = Vec::with_capacity(pods.len());
    let (mut not_ready, mut crashing, mut restarting) = (Vec::new(), Vec::new(), Vec::new());
    for pod in &pods {
        let (row, ready, waiting, restarts) = pod_row(pod);
        let name = row[0].as_str().unwrap_or_default().to_string();
        let crash = waiting.as_deref() == Some("CrashLoopBackOff");
        if crash {
            crashing.push(name.clone());
        }
        if !ready {
            not_ready.push(name.clone());
        }
        if restarts > max_restarts {
            restarting.push(name);
        }
        // Troubled pods sort first so a long list still shows them.
        let rank = if crash {
            0
        } else if !ready {
            1
        } else if restarts > max_restarts {
            2
        } else {
            3
        };
        rows.push((rank, row));
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1[0].as_str().cmp(&b.1[0].as_str()))
    });
    let total = pods.len();
    let ready = total - not_ready.len();
    let columns = [
        "pod",
        "status",
        "ready",
        "restarts",
        "last termination",
        "age",
        "node",
    ]
    .map(String::from)
    .to_vec();
    let kept: Vec<Vec<Value>> = rows.into_iter().take(POD_ROWS).map(|(_, r)| r).collect();
    let mut text = format!("{ready} of {total} pods ready");
    if total > POD_ROWS {
        text.push_str(&format!("; showing {POD_ROWS} rows, troubled pods first"));
    }
    let where_ = selector.map(|s| format!(" with {s}")).unwrap_or_default();
    let verdict = if total == 0 {
        Some((Verdict::Fail, format!("no pods in {ns}{where_}")))
    } else if !crashing.is_empty() {
        Some((
            Verdict::Fail,
            format!("CrashLoopBackOff: {}", list(&crashing)),
        ))
    } else if !not_ready.is_empty() {
        Some((Verdict::Fail, format!("not ready: {}", list(&not_ready))))
    } else if !restarting.is_empty() {
        Some((
            Verdict::Warn,
            format!("more than {max_restarts} restarts: {}", list(&restarting)),
        ))
    } else {
        None
    };
    Ok(Reading {
        value: ready.into(),
        table: Some(Table::new(columns, kept)),
        text: Some(text),
        verdict,
        took_ms: None,
    })
}

fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    match names.len() {
        n if n > 5 => format!("{} and {} more", shown.join(", "), n - 5),
        _ => shown.join(", "),
    }
}

pub async fn deployment(
    kube: &Kube,
    spec: &K8sDeployment,
    render: Render<'_>,
) -> Result<Reading, super::BackendError> {
    let (client, default_ns, server) = kube.client().await?;
    let ns = namespace(&spec.namespace, render, &default_ns)?;
    let name = object_name(render(&spec.name.value)?, "name")?;
    let api: Api<Deployment> = Api::namespaced(client, &ns);
    let deployment = api.get(&name).await.map_err(|e| describe(e, &server))?;
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1) as i64;
    let status = deployment.status.clone().unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or(0) as i64;
    let ready = status.ready_replicas.unwrap_or(0) as i64;
    let available = status.available_replicas.unwrap_or(0) as i64;
    let progressing = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Progressing");
    let stalled = progressing
        .as_ref()
        .is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    let rollout = if stalled {
        "stalled"
    } else if updated < desired || ready < desired {
        "progressing"
    } else {
        "complete"
    };
    let images: Vec<String> = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
        .unwrap_or_default();
    let columns = [
        "desired",
        "updated",
        "ready",
        "available",
        "rollout",
        "images",
    ]
    .map(String::from)
    .to_vec();
    let row = vec![
        desired.into(),
        updated.into(),
        ready.into(),
        available.into(),
        rollout.into(),
        images.join(", ").into(),
    ];
    let verdict = if stalled {
        let why = progressing.and_then(|c| c.message).unwrap_or_default();
        Some((
            Verdict::Fail,
            format!("rollout stalled: {why}")
                .trim_end_matches(": ")
                .to_string(),
        ))
    } else if desired > 0 && available == 0 {
        Some((
            Verdict::Fail,
            format!("none of {desired} replicas available"),
        ))
    } else if ready < desired {
        Some((
            Verdict::Warn,
            format!("{ready} of {desired} replicas ready"),
        ))
    } else {
        None
    };
    let text = format!("{ready}/{desired} ready, rollout {rollout}");
    Ok(Reading {
        value: ready.into(),
        table: Some(Table::new(columns, vec![row])),
        text: Some(text),
        verdict,
        took_ms: None,
    })
}

/// Revisions created within this window are recent changes, unless the check says otherwise.
const DEFAULT_HISTORY_SINCE: Duration = Duration::from_secs(24 * 3600);

/// `kubectl rollout history deployment/NAME`, read-only: the ReplicaSets the deployment controls
/// (its selector, then the controller reference), newest revision first. `value` is how many
/// revisions were created within `since`; any warns, as a recent change to look at.
pub async fn rollout_history(
    kube: &Kube,
    spec: &K8sRolloutHistory,
    render: Render<'_>,
) -> Result<Reading, super::BackendError> {
    let (client, default_ns, server) = kube.client().await?;
    let ns = namespace(&spec.namespace, render, &default_ns)?;
    let name = object_name(render(&spec.deployment.value)?, "deployment")?;
    let window = match &spec.since {
        Some(s) => parse_duration(&s.value).map_err(|why| Error::Spec { what: "since", why })?,
        None => DEFAULT_HISTORY_SINCE,
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = deployments
        .get(&name)
        .await
        .map_err(|e| describe(e, &server))?;
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let selector = selector_of(deployment, &name)?;
    let api: Api<ReplicaSet> = Api::namespaced(client, &ns);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| describe(e, &server))?;
    let cutoff = jiff::Timestamp::now()
        - jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::ZERO);
    let mut revisions: Vec<(i64, bool, Vec<Value>)> = list
        .items
        .into_iter()
        .filter(|rs| {
            // Controlled by this deployment: by uid as kubectl matches (by name where the
            // deployment has none), so another one's with the same labels is left out.
            rs.metadata.owner_references.iter().flatten().any(|o| {
                o.kind == "Deployment"
                    && o.name == name
                    && o.controller.unwrap_or(false)
                    && (uid.is_empty() || o.uid == uid)
            })
        })
        .map(|rs| {
            let annotation = |key: &str| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(key))
                    .cloned()
                    .unwrap_or_default()
            };
            let revision: i64 = annotation("deployment.kubernetes.io/revision")
                .parse()
                .unwrap_or(0);
            let created = rs.metadata.creation_timestamp.as_ref();
            let recent = created.is_some_and(|t| t.0 >= cutoff);
            let images: Vec<String> = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default();
            let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let ready = rs
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let row = vec![
                revision.into(),
                rs.metadata.name.clone().unwrap_or_default().into(),
                age(created).into(),
                images.join(", ").into(),
                format!("{ready}/{desired}").into(),
                annotation("kubernetes.io/change-cause").into(),
            ];
            (revision, recent, row)
        })
        .collect();
    revisions.sort_by_key(|r| std::cmp::Reverse(r.0));
    let recent = revisions.iter().filter(|r| r.1).count();
    let text = match revisions.first() {
        Some((rev, _, row)) => format!(
            "revision {rev} current ({}, created {} ago), {} revision(s) kept",
            row[1].as_str().unwrap_or_default(),
            row[2].as_str().unwrap_or_default(),
            revisions.len()
        ),
        None => format!("deployment/{name} owns no ReplicaSet"),
    };
    let verdict = (recent > 0).then(|| {
        (
            Verdict::Warn,
            format!(
                "{recent} revision(s) created in the last {}",
                spec.since.as_ref().map_or("24h", |s| s.value.as_str())
            ),
        )
    });
    let columns = [
        "revision",
        "replicaset",
        "age",
        "images",
        "ready",
        "change-cause",
    ]
    .map(String::from)
    .to_vec();
    let rows = revisions
        .into_iter()
        .take(POD_ROWS)
        .map(|(_, _, r)| r)
        .collect();
    Ok(Reading {
        value: recent.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict,
        took_ms: None,
    })
}

/// The label selector of a deployment's pods.
async fn deployment_selector(
    client: kube::Client,
    ns: &str,
    name: &str,
    server: &str,
) -> Result<String, Error> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let deployment = api.get(name).await.map_err(|e| describe(e, server))?;
    selector_of(deployment, name)
}

/// The `matchLabels` of a deployment, as a label selector.
fn selector_of(deployment: Deployment, name: &str) -> Result<String, Error> {
    let labels = deployment
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default();
    if labels.is_empty() {
        return Err(Error::Spec {
            what: "deployment",
            why: format!("{name} has no matchLabels selector"),
        });
    }
    Ok(labels
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

struct PodLog {
    pod: String,
    matches: usize,
    lines: usize,
    last: VecDeque<String>,
    /// The check's timeout came first: the counts cover what was read by then.
    stopped: bool,
}

/// Streams one pod's log line by line: memory stays bounded by `keep` lines, however long the log.
async fn scan_log(
    api: &Api<Pod>,
    pod: String,
    since: Duration,
    pattern: &regex::Regex,
    keep: usize,
    deadline: tokio::time::Instant,
    server: &str,
) -> Result<PodLog, Error> {
    let params = LogParams {
        since_seconds: Some(since.as_secs().max(1) as i64),
        ..LogParams::default()
    };
    let mut log = PodLog {
        pod,
        matches: 0,
        lines: 0,
        last: VecDeque::with_capacity(keep.min(64)),
        stopped: false,
    };
    let Ok(stream) = tokio::time::timeout_at(deadline, api.log_stream(&log.pod, &params)).await
    else {
        log.stopped = true;
        return Ok(log);
    };
    let mut lines = stream.map_err(|e| describe(e, server))?.lines();
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.next()).await {
            Ok(Some(line)) => {
                line.map_err(|e| Error::Other(format!("reading the log of {}: {e}", log.pod)))?
            }
            Ok(None) => break,
            Err(_) => {
                log.stopped = true;
                break;
            }
        };
        log.lines += 1;
        if pattern.is_match(&line) {
            log.matches += 1;
            if log.last.len() == keep {
                log.last.pop_front();
            }
            log.last.push_back(line);
        }
    }
    Ok(log)
}

/// How many pods' logs are read at once.
const LOG_STREAMS: usize = 16;

pub async fn logs(
    kube: &Kube,
    spec: &K8sLogs,
    render: Render<'_>,
    timeout: Duration,
) -> Result<Reading, super::BackendError> {
    // Stop reading a little before the check's timeout, to report what was counted by then.
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(timeout.saturating_sub((timeout / 10).min(Duration::from_millis(500))))
        .unwrap_or(now + Duration::from_secs(3600));
    let (client, default_ns, server) = kube.client().await?;
    let ns = namespace(&spec.namespace, render, &default_ns)?;
    let pattern = regex::Regex::new(&spec.matches.value).map_err(|e| Error::Spec {
        what: "pattern",
        why: e.to_string(),
    })?;
    let since = since(&spec.since)?;
    let keep = spec.keep.as_ref().map_or(DEFAULT_KEEP, |k| k.value).max(1);
    let selector = match (&spec.deployment, &spec.selector) {
        (Some(d), _) => {
            let name = object_name(render(&d.value)?, "deployment")?;
            deployment_selector(client.clone(), &ns, &name, &server).await?
        }
        (None, Some(s)) => render(&s.value)?,
        (None, None) => {
            return Err(Error::Spec {
                what: "k8s_logs",
                why: "give a deployment or a selector".into(),
            }
            .into());
        }
    };
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let pods = list_pods(&api, Some(&selector), &server).await?;
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let scans = names
        .into_iter()
        .map(|pod| scan_log(&api, pod, since, &pattern, keep, deadline, &server));
    // Every pod at once would open thousands of streams on a big deployment: a few at a time.
    let mut logs: Vec<PodLog> = futures_util::stream::iter(scans)
        .buffer_unordered(LOG_STREAMS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    logs.sort_by(|a, b| b.matches.cmp(&a.matches).then_with(|| a.pod.cmp(&b.pod)));
    let total: usize = logs.iter().map(|l| l.matches).sum();
    let columns = ["pod", "matches", "last match"].map(String::from).to_vec();
    let rows = logs
        .iter()
        .map(|l| {
            vec![
                l.pod.clone().into(),
                l.matches.into(),
                l.last
                    .back()
                    .cloned()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            ]
        })
        .collect();
    let latest: Vec<String> = logs
        .iter()
        .flat_map(|l| l.last.iter().map(move |line| format!("{}: {line}", l.pod)))
        .take(keep)
        .collect();
    let text = if latest.is_empty() {
        format!(
            "no line matches /{}/ in {} pod(s) over {}",
            spec.matches.value,
            logs.len(),
            humanize(since)
        )
    } else {
        latest.join("\n")
    };
    let stopped = logs.iter().filter(|l| l.stopped).count();
    let verdict = (stopped > 0).then(|| {
        let read: usize = logs.iter().map(|l| l.lines).sum();
        (Verdict::Warn, format!("stopped at the timeout in {stopped} of {} pods after {read} lines: the counts are partial", logs.len()))
    });
    Ok(Reading {
        value: total.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict,
        took_ms: None,
    })
}

pub async fn events(
    kube: &Kube,
    spec: &K8sEvents,
    render: Render<'_>,
) -> Result<Reading, super::BackendError> {
    let (client, default_ns, server) = kube.client().await?;
    let ns = namespace(&spec.namespace, render, &default_ns)?;
    let since = since(&spec.since)?;
    let mut fields = vec!["type=Warning".to_string()];
    if let Some(object) = &spec.object {
        let object = render(&object.value)?;
        match object.split_once('/') {
            Some((kind, name)) => {
                let name = object_name(name.to_string(), "object")?;
                if !kind.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(Error::Spec {
                        what: "object",
                        why: format!("'{kind}' is not a kind of object"),
                    }
                    .into());
                }
                fields.push(format!("involvedObject.kind={}", kind_name(kind)));
                fields.push(format!("involvedObject.name={name}"));
            }
            None => {
                let object = object_name(object, "object")?;
                fields.push(format!("involvedObject.name={object}"))
            }
        }
    }
    let api: Api<Event> = Api::namespaced(client, &ns);
    let list = api
        .list(&ListParams::default().fields(&fields.join(",")))
        .await
        .map_err(|e| describe(e, &server))?;
    let cutoff = jiff::Timestamp::now()
        - jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::ZERO);
    let mut recent: Vec<(jiff::Timestamp, Vec<Value>)> = list
        .items
        .into_iter()
        .filter_map(|e| {
            let seen = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))?;
            (seen >= cutoff).then(|| {
                let object = format!(
                    "{}/{}",
                    e.involved_object
                        .kind
                        .clone()
                        .unwrap_or_default()
                        .to_lowercase(),
                    e.involved_object.name.clone().unwrap_or_default()
                );
                let row = vec![
                    age(e.last_timestamp.as_ref()).into(),
                    object.into(),
                    e.reason.clone().unwrap_or_default().into(),
                    e.count.unwrap_or(1).into(),
                    e.message.clone().unwrap_or_default().into(),
                ];
                (seen, row)
            })
        })
        .collect();
    recent.sort_by_key(|r| std::cmp::Reverse(r.0));
    let count = recent.len();
    let columns = ["ago", "object", "reason", "count", "message"]
        .map(String::from)
        .to_vec();
    let verdict = (count > 0).then(|| {
        (
            Verdict::Warn,
            format!("{count} warning event(s) in {}", humanize(since)),
        )
    });
    let rows = recent.into_iter().take(POD_ROWS).map(|(_, r)| r).collect();
    Ok(Reading {
        value: count.into(),
        table: Some(Table::new(columns, rows)),
        text: None,
        verdict,
        took_ms: None,
    })
}

fn kind_name(kind: &str) -> String {
    match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deploy" | "deployments" => "Deployment".into(),
        "pod" | "pods" | "po" => "Pod".into(),
        "configmap" | "cm" | "configmaps" => "ConfigMap".into(),
        "replicaset" | "rs" => "ReplicaSet".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// A Kubernetes mutation, rendered and ready to send once approved.
pub enum Request {
    Scale {
        ns: String,
        name: String,
        replicas: i64,
    },
    Restart {
        ns: String,
        name: String,
        patch: Value,
        wait: Option<Duration>,
    },
    Patch {
        ns: String,
        kind: PatchKind,
        name: String,
        patch: Value,
    },
    DeletePod {
        ns: String,
        name: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Deployment,
    ConfigMap,
}

impl PatchKind {
    pub fn parse(kind: &str) -> Result<PatchKind, Error> {
        match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deploy" => Ok(PatchKind::Deployment),
            "configmap" | "cm" => Ok(PatchKind::ConfigMap),
            other => Err(Error::Spec {
                what: "kind",
                why: format!("'{other}': patch a deployment or a configmap"),
            }),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            PatchKind::Deployment => "deployment",
            PatchKind::ConfigMap => "configmap",
        }
    }

    fn path(self, ns: &str, name: &str) -> String {
        match self {
            PatchKind::Deployment => format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
            PatchKind::ConfigMap => format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
        }
    }
}

/// The key under which a scale's earlier replica count is remembered for `replicas: previous`.
pub fn scale_target(ns: &str, name: &str) -> String {
    format!("deployment/{ns}/{name}")
}

/// Reads what an action would change, for its plan; without a cluster (a drill) the plan shows the request alone.
/// `known_replicas` stands in for the cluster in a drill: the scenario's replica counts by deployment.
pub async fn plan(
    kube: Option<&Kube>,
    known_replicas: &std::collections::BTreeMap<String, i64>,
    request: &Request,
) -> Plan {
    let mut plan = Plan {
        backend: "kubernetes".into(),
        ..Plan::default()
    };
    match request {
        Request::Scale { ns, name, replicas } => {
            plan.request =
                format!("PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale (merge)");
            plan.body = Some(json!({ "spec": { "replicas": replicas } }));
            plan.target = Some(scale_target(ns, name));
            let current = match kube {
                Some(kube) => match within(current_replicas(kube, ns, name)).await {
                    Read::Found(count) => Some(count),
                    Read::Missing => {
                        plan.missing = Some(format!(
                            "deployment {name} not found in {ns}: this action would fail"
                        ));
                        None
                    }
                    Read::Unknown => None,
                },
                None => known_replicas.get(name).copied(),
            };
            plan.before = current.map(Value::from);
            let from = current.map_or("?".to_string(), |c| c.to_string());
            plan.changes
                .push(format!("deployment/{name} replicas {from} → {replicas}"));
        }
        Request::Restart {
            ns,
            name,
            patch,
            wait,
        } => {
            plan.request =
                format!("PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name} (strategic merge)");
            plan.body = Some(patch.clone());
            let pods = match kube {
                Some(kube) => match within(current_replicas(kube, ns, name)).await {
                    Read::Found(count) => format!("its {count} pod(s)"),
                    Read::Missing => {
                        plan.missing = Some(format!(
                            "deployment {name} not found in {ns}: this action would fail"
                        ));
                        "its pods".into()
                    }
                    Read::Unknown => "its pods".into(),
                },
                None => known_replicas
                    .get(name)
                    .map_or("its pods".into(), |count| format!("its {count} pod(s)")),
            };
            plan.changes.push(format!(
                "deployment/{name}: new pods replace {pods}, as `kubectl rollout restart`"
            ));
            if let Some(wait) = wait {
                plan.changes.push(format!(
                    "then wait up to {} for the rollout to finish",
                    humanize(*wait)
                ));
            }
        }
        Request::Patch {
            ns,
            kind,
            name,
            patch,
        } => {
            plan.request = format!("PATCH {} (merge)", kind.path(ns, name));
            plan.body = Some(patch.clone());
            let current = match kube {
                Some(kube) => match within(current_object(kube, *kind, ns, name)).await {
                    Read::Found(object) => Some(object),
                    Read::Missing => {
                        plan.missing = Some(format!(
                            "{} {name} not found in {ns}: this action would fail",
                            kind.noun()
                        ));
                        None
                    }
                    Read::Unknown => None,
                },
                None => None,
            };
            plan.changes = match &current {
                Some(object) => diff(Some(object), patch, ""),
                // Without the object (a drill, `show`), only the new values are known.
                None => diff(None, patch, "")
                    .into_iter()
                    .map(|c| c.replace(": (unset) → ", " → "))
                    .collect(),
            };
            if *kind == PatchKind::Deployment && !patch["spec"]["template"].is_null() {
                plan.changes.push(format!(
                    "changes the pod template: every pod of deployment/{name} is replaced, as a rollout restart does"
                ));
            }
        }
        Request::DeletePod { ns, name } => {
            plan.request = format!("DELETE /api/v1/namespaces/{ns}/pods/{name}");
            if let Some(kube) = kube
                && let Ok((client, _, _)) = kube.client().await
                && let Read::Missing =
                    within(async { Read::of(Api::<Pod>::namespaced(client, ns).get(name).await) })
                        .await
            {
                plan.missing = Some(format!(
                    "pod {name} not found in {ns}: this action would fail"
                ));
            }
            plan.changes.push(format!(
                "pod/{name} is deleted; its controller starts a new one"
            ));
        }
    }
    plan
}

/// How long a plan waits for what it reads (and for a server dry run's answer).
pub(crate) const PLAN_READ: Duration = Duration::from_secs(5);

/// A plan's read, or Unknown when the API server does not answer in time: the plan goes on
/// without it rather than hanging.
async fn within<T>(read: impl std::future::Future<Output = Read<T>>) -> Read<T> {
    tokio::time::timeout(PLAN_READ, read)
        .await
        .unwrap_or(Read::Unknown)
}

/// What a plan read of the object it changes.
enum Read<T> {
    Found(T),
    /// The API server answered 404: the action would fail.
    Missing,
    /// No answer, or another error: the plan says what it can without it.
    Unknown,
}

impl<T> Read<T> {
    fn of(result: Result<T, kube::Error>) -> Read<T> {
        match result {
            Ok(found) => Read::Found(found),
            Err(kube::Error::Api(status)) if status.is_not_found() => Read::Missing,
            Err(_) => Read::Unknown,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Read<U> {
        match self {
            Read::Found(found) => Read::Found(f(found)),
            Read::Missing => Read::Missing,
            Read::Unknown => Read::Unknown,
        }
    }
}

async fn current_replicas(kube: &Kube, ns: &str, name: &str) -> Read<i64> {
    let Ok((client, _, _)) = kube.client().await else {
        return Read::Unknown;
    };
    let api: Api<Deployment> = Api::namespaced(client, ns);
    match Read::of(api.get_scale(name).await) {
        Read::Found(scale) => match scale.spec.and_then(|s| s.replicas) {
            Some(replicas) => Read::Found(i64::from(replicas)),
            None => Read::Unknown,
        },
        Read::Missing => Read::Missing,
        Read::Unknown => Read::Unknown,
    }
}

async fn current_object(kube: &Kube, kind: PatchKind, ns: &str, name: &str) -> Read<Value> {
    let Ok((client, _, _)) = kube.client().await else {
        return Read::Unknown;
    };
    let read = match kind {
        PatchKind::Deployment => {
            Read::of(Api::<Deployment>::namespaced(client, ns).get(name).await)
                .map(|d| serde_json::to_value(d).ok())
        }
        PatchKind::ConfigMap => Read::of(Api::<ConfigMap>::namespaced(client, ns).get(name).await)
            .map(|c| serde_json::to_value(c).ok()),
    };
    match read {
        Read::Found(Some(object)) => Read::Found(object),
        Read::Missing => Read::Missing,
        Read::Found(None) | Read::Unknown => Read::Unknown,
    }
}

/// The fields a merge patch changes, `path: old → new`.
pub fn diff(current: Option<&Value>, patch: &Value, path: &str) -> Vec<String> {
    match patch {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff(current.and_then(|c| c.get(key)), value, &child)
            })
            .collect(),
        new => {
            let old = match current {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None if current.is_none() => "(unset)".into(),
                None => String::new(),
            };
            let new = match new {
                Value::Null => "(removed)".to_string(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            vec![format!("{path}: {old} → {new}")]
        }
    }
}

/// Sends an approved mutation; the caller holds the approval.
pub(super) async fn apply(kube: &Kube, request: &Request) -> Result<String, super::BackendError> {
    let (client, _, server) = kube.client().await?;
    let params = PatchParams::default();
    match request {
        Request::Scale { ns, name, replicas } => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let before = api
                .get_scale(name)
                .await
                .map_err(|e| describe(e, &server))?;
            let from = before
                .spec
                .and_then(|s| s.replicas)
                .map_or("?".to_string(), |r| r.to_string());
            let patch = json!({ "spec": { "replicas": replicas } });
            let after = api
                .patch_scale(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| describe(e, &server))?;
            let to = after
                .spec
                .and_then(|s| s.replicas)
                .map_or("?".to_string(), |r| r.to_string());
            Ok(format!("deployment/{name} replicas {from} → {to}"))
        }
        Request::Restart {
            ns,
            name,
            patch,
            wait,
        } => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let patched = api
                .patch(name, &params, &Patch::Strategic(patch))
                .await
                .map_err(|e| describe(e, &server))?;
            let generation = patched.metadata.generation.unwrap_or(0);
            match wait {
                None => Ok(format!("deployment/{name} restarted")),
                Some(wait) => wait_rollout(&api, name, generation, *wait, &server).await,
            }
        }
        Request::Patch {
            ns,
            kind,
            name,
            patch,
        } => {
            merge_patch(client, *kind, ns, name, &params, patch)
                .await
                .map_err(|e| describe(e, &server))?;
            Ok(format!("{} patched", kind.path(ns, name)))
        }
        Request::DeletePod { ns, name } => {
            let api: Api<Pod> = Api::namespaced(client, ns);
            api.delete(name, &DeleteParams::default())
                .await
                .map_err(|e| describe(e, &server))?;
            Ok(format!("pod/{name} deleted"))
        }
    }
}

/// A JSON merge patch of a deployment or a configmap.
async fn merge_patch(
    client: kube::Client,
    kind: PatchKind,
    ns: &str,
    name: &str,
    params: &PatchParams,
    patch: &Value,
) -> Result<(), kube::Error> {
    match kind {
        PatchKind::Deployment => Api::<Deployment>::namespaced(client, ns)
            .patch(name, params, &Patch::Merge(patch))
            .await
            .map(|_| ()),
        PatchKind::ConfigMap => Api::<ConfigMap>::namespaced(client, ns)
            .patch(name, params, &Patch::Merge(patch))
            .await
            .map(|_| ()),
    }
}

/// Sends a mutation with dryRun=All: the API server validates and admits it and persists
/// nothing. No approval is needed for that, and none is asked; a restart's rollout is not waited for.
pub(super) async fn server_dry_run(kube: &Kube, request: &Request) -> Option<super::ServerAnswer> {
    let answer = async {
        let (client, _, server) = kube.client().await?;
        let params = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        let refused = |e| describe(e, &server);
        Ok::<_, Error>(match request {
            Request::Scale { ns, name, replicas } => {
                let patch = json!({ "spec": { "replicas": replicas } });
                let after = Api::<Deployment>::namespaced(client, ns)
                    .patch_scale(name, &params, &Patch::Merge(&patch))
                    .await
                    .map_err(refused)?;
                let to = after
                    .spec
                    .and_then(|s| s.replicas)
                    .map_or("?".to_string(), |r| r.to_string());
                format!("deployment/{name} replicas → {to}")
            }
            Request::Restart {
                ns, name, patch, ..
            } => {
                let after = Api::<Deployment>::namespaced(client, ns)
                    .patch(name, &params, &Patch::Strategic(patch))
                    .await
                    .map_err(refused)?;
                let generation = after.metadata.generation.unwrap_or(0);
                format!("deployment/{name} restarts its pods (generation {generation})")
            }
            Request::Patch {
                ns,
                kind,
                name,
                patch,
            } => {
                merge_patch(client, *kind, ns, name, &params, patch)
                    .await
                    .map_err(refused)?;
                format!("{} {name} patched", kind.noun())
            }
            Request::DeletePod { ns, name } => {
                let delete = DeleteParams {
                    dry_run: true,
                    ..DeleteParams::default()
                };
                Api::<Pod>::namespaced(client, ns)
                    .delete(name, &delete)
                    .await
                    .map_err(refused)?;
                format!("pod/{name} deleted")
            }
        })
    };
    // No answer in time: the plan says so and goes on (None), neither accepted nor refused.
    match tokio::time::timeout(PLAN_READ, answer).await.ok()? {
        Ok(answer) => Some(super::ServerAnswer {
            accepted: true,
            answer,
        }),
        Err(e) => Some(super::ServerAnswer {
            accepted: false,
            answer: e.to_string(),
        }),
    }
}

/// Polls until the new pods are all updated and available, as `kubectl rollout status` does.
async fn wait_rollout(
    api: &Api<Deployment>,
    name: &str,
    generation: i64,
    wait: Duration,
    server: &str,
) -> Result<String, super::BackendError> {
    let started = std::time::Instant::now();
    loop {
        let d = api.get(name).await.map_err(|e| describe(e, server))?;
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = d.status.unwrap_or_default();
        let (updated, available) = (
            status.updated_replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
        );
        let observed = status.observed_generation.unwrap_or(0) >= generation;
        if observed && updated >= desired && available >= desired {
            return Ok(format!(
                "deployment/{name} restarted; rollout finished in {}",
                humanize(started.elapsed())
            ));
        }
        if started.elapsed() >= wait {
            let state = format!("{updated} of {desired} updated, {available} available");
            return Err(Error::RolloutUnfinished {
                name: name.into(),
                after: wait,
                state,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_secs(2).min(wait.saturating_sub(started.elapsed())))
            .await;
    }
}

/// The restart patch `kubectl rollout restart` sends.
pub fn restart_patch(now: jiff::Timestamp) -> Value {
    json!({ "spec": { "template": { "metadata": { "annotations": { "kubectl.kubernetes.io/restartedAt": now.to_string() } } } } })
}

/// `prefix` and `text`, or nothing for no text.
fn prefixed(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_service_found_missing_is_there_again_once_it_answers() {
        let kube = Kube::new(None, None, &[]);
        let target = "service video/api-gateway";
        assert_eq!(kube.proxied_missing(target), None);
        kube.proxied_not_found(target, Some("services \"api-gateway\" not found".into()));
        assert_eq!(
            kube.proxied_missing(target).as_deref(),
            Some("services \"api-gateway\" not found")
        );
        assert_eq!(kube.proxied_missing("service video/nats"), None);
        // A re-check that reaches it: the plan no longer says it would fail.
        kube.proxied_not_found(target, None);
        assert_eq!(kube.proxied_missing(target), None);
    }

    #[test]
    fn diff_names_each_changed_field_with_old_and_new() {
        let current = json!({ "data": { "DB_MAX_CONNECTIONS": "20", "OTHER": "x" } });
        let patch = json!({ "data": { "DB_MAX_CONNECTIONS": "50", "NEW": "1" } });
        assert_eq!(
            diff(Some(&current), &patch, ""),
            vec!["data.DB_MAX_CONNECTIONS: 20 → 50", "data.NEW: (unset) → 1"]
        );
    }
}
