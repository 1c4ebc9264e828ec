//! Backends: checks read the world, actions change it. A live run reads real systems; a drill
//! reads a scenario. Actions are planned the same way everywhere and applied only with an approval.

pub mod alertmanager;
pub mod docker;
pub mod gpu;
pub mod host;
pub mod http;
pub mod kube;
pub mod nats;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod scenario;
pub mod shell;

use crate::engine::approval::Approval;
use crate::engine::event::Plan;
use crate::engine::observation::Reading;
use crate::expr;
use crate::runbook::{Action, Check};
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
    #[error("invalid {what}: {why}")]
    Spec { what: &'static str, why: String },
    #[error("template: {0}")]
    Template(#[from] expr::ExprError),
    /// A check or an action with none of the backends set: "check" or "action".
    #[error("the {0} has no backend")]
    NoBackend(&'static str),
}

impl BackendError {
    /// Nothing for the action to do (nothing was scaled to scale back, no silence to expire):
    /// it is not offered, and that is not a failure.
    pub fn nothing_to_do(&self) -> bool {
        matches!(
            self,
            BackendError::Kube(kube::Error::NothingToRestore { .. })
                | BackendError::Alertmanager(alertmanager::Error::NothingToExpire)
        )
    }
}

/// Where checks get their readings from.
pub trait Reader {
    /// Reads one check.
    fn read(
        &self,
        check: &Check,
        ctx: &Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reading, BackendError>>;
}

pub fn backend_name(check: &Check) -> &'static str {
    if check.prometheus.is_some() {
        "prometheus"
    } else if check.http.is_some() {
        "http"
    } else if check.shell.is_some() {
        "shell"
    } else if check.k8s_pods.is_some()
        || check.k8s_deployment.is_some()
        || check.k8s_logs.is_some()
        || check.k8s_events.is_some()
    {
        "kubernetes"
    } else if check.docker_containers.is_some()
        || check.docker_logs.is_some()
        || check.docker_stats.is_some()
    {
        "docker"
    } else if check.gpus.is_some() || check.gpu_processes.is_some() {
        "gpu"
    } else if pg_check(check).is_some() {
        "postgres"
    } else if check.redis_ping.is_some()
        || check.redis_list.is_some()
        || check.redis_memory.is_some()
    {
        "redis"
    } else if check.nats.is_some() {
        "nats"
    } else if check.alerts.is_some() {
        "alertmanager"
    } else {
        "host"
    }
}

/// The PostgreSQL check a check holds, if any.
fn pg_check(check: &Check) -> Option<(postgres::Kind, &crate::runbook::Pg)> {
    use postgres::Kind;
    [
        (Kind::Ready, &check.pg_ready),
        (Kind::Connections, &check.pg_connections),
        (Kind::LongQueries, &check.pg_long_queries),
        (Kind::Blocked, &check.pg_blocked),
        (Kind::SlowStatements, &check.pg_slow_statements),
        (Kind::Locks, &check.pg_locks),
    ]
    .into_iter()
    .find_map(|(kind, spec)| spec.as_ref().map(|s| (kind, s)))
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

const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";
const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";
pub const DEFAULT_ALERTMANAGER: &str = "http://localhost:9093";

/// A spec's own URL, else the flag's.
/// A spec's own URL (its values percent-encoded), else the flag's. Its password is masked
/// wherever it comes back.
fn url(
    spec: &Option<crate::runbook::S<String>>,
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
    spec: &std::collections::BTreeMap<String, crate::runbook::S<String>>,
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
    spec: &Option<crate::runbook::S<String>>,
    what: &'static str,
) -> Result<Option<Duration>, BackendError> {
    spec.as_ref()
        .map(|d| crate::runbook::parse_duration(&d.value))
        .transpose()
        .map_err(|why| BackendError::Spec { what, why })
}

fn docker_target(
    project: &Option<crate::runbook::S<String>>,
    service: &Option<crate::runbook::S<String>>,
    container: &Option<crate::runbook::S<String>>,
    label: &Option<crate::runbook::S<String>>,
    render: &dyn Fn(&str) -> Result<String, BackendError>,
) -> Result<docker::Target, BackendError> {
    let r =
        |o: &Option<crate::runbook::S<String>>| o.as_ref().map(|v| render(&v.value)).transpose();
    Ok(docker::Target {
        project: r(project)?,
        service: r(service)?,
        container: r(container)?,
        label: r(label)?,
    })
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("oncall/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client has a fixed, valid configuration")
}

impl Reader for Live {
    async fn read(
        &self,
        check: &Check,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        if let Some(query) = &check.prometheus {
            let query = expr::render(&query.value, ctx)?;
            Ok(prometheus::query(&self.client, &self.prometheus_url, &query, timeout).await?)
        } else if let Some(spec) = &check.http {
            Ok(http::check(&self.client, spec, ctx, timeout).await?)
        } else if let Some(spec) = &check.shell {
            let command = expr::render_shell(&spec.command.value, ctx)?;
            Ok(shell::check(&command, spec, timeout).await?)
        } else {
            let render = |text: &str| expr::render(text, ctx).map_err(BackendError::from);
            let systems = &self.systems;
            if let Some(spec) = &check.k8s_pods {
                kube::pods(&systems.kube, spec, &render).await
            } else if let Some(spec) = &check.k8s_deployment {
                kube::deployment(&systems.kube, spec, &render).await
            } else if let Some(spec) = &check.k8s_logs {
                kube::logs(&systems.kube, spec, &render, timeout).await
            } else if let Some(spec) = &check.k8s_events {
                kube::events(&systems.kube, spec, &render).await
            } else if let Some(spec) = &check.docker_containers {
                let target = docker_target(
                    &spec.project,
                    &spec.service,
                    &spec.container,
                    &spec.label,
                    &render,
                )?;
                docker::containers(&systems.docker, &target).await
            } else if let Some(spec) = &check.docker_logs {
                let target = docker_target(
                    &spec.project,
                    &spec.service,
                    &spec.container,
                    &spec.label,
                    &render,
                )?;
                let pattern =
                    regex::Regex::new(&spec.matches.value).map_err(|e| BackendError::Spec {
                        what: "matches",
                        why: e.to_string(),
                    })?;
                docker::logs(
                    &systems.docker,
                    &target,
                    duration(&spec.since, "since")?,
                    &pattern,
                    spec.keep.as_ref().map(|k| k.value),
                )
                .await
            } else if let Some(spec) = &check.docker_stats {
                let target = docker_target(
                    &spec.project,
                    &spec.service,
                    &spec.container,
                    &spec.label,
                    &render,
                )?;
                docker::stats(&systems.docker, &target).await
            } else if check.gpus.is_some() {
                gpu::devices(&systems.gpu).await
            } else if check.gpu_processes.is_some() {
                gpu::processes(&systems.gpu).await
            } else if let Some(spec) = &check.disk {
                host::disk(spec, &render)
            } else if check.memory.is_some() {
                Ok(host::memory()?)
            } else if check.load.is_some() {
                Ok(host::load().await?)
            } else if let Some(spec) = &check.dir_size {
                Ok(host::dir_size(&render(&spec.path.value)?)?)
            } else if let Some(spec) = &check.checksums {
                host::checksums(spec, &render)
            } else if let Some(spec) = &check.tcp {
                host::tcp(spec, &render, timeout).await
            } else if let Some((kind, spec)) = pg_check(check) {
                let config = postgres::config(
                    url(&spec.url, systems.urls.postgres.as_ref(), ctx)?.as_deref(),
                )?;
                postgres::check(
                    kind,
                    &config,
                    duration(&spec.older_than, "older_than")?,
                    spec.limit.as_ref().map(|l| l.value),
                )
                .await
            } else if let Some(spec) = check
                .redis_ping
                .as_ref()
                .or(check.redis_list.as_ref())
                .or(check.redis_memory.as_ref())
            {
                let url = url(&spec.url, systems.urls.redis.as_ref(), ctx)?
                    .unwrap_or_else(|| DEFAULT_REDIS.into());
                if check.redis_ping.is_some() {
                    redis::ping(&url).await
                } else if check.redis_list.is_some() {
                    let key = spec.key.as_ref().map(|k| render(&k.value)).transpose()?;
                    redis::list(&url, key.as_deref(), spec.first.as_ref().map(|f| f.value)).await
                } else {
                    redis::memory(&url).await
                }
            } else if let Some(spec) = &check.nats {
                let monitor = url(&spec.monitor, None, ctx)?;
                let url = url(&spec.url, systems.urls.nats.as_ref(), ctx)?
                    .unwrap_or_else(|| DEFAULT_NATS.into());
                nats::check(&url, monitor.as_deref(), &self.client, timeout).await
            } else if let Some(spec) = &check.alerts {
                alertmanager::check(
                    &self.client,
                    &alertmanager_url(ctx),
                    &matchers(&spec.matchers, &render)?,
                    timeout,
                )
                .await
            } else {
                Err(BackendError::NoBackend("check"))
            }
        }
    }
}

/// An action rendered against the observations so far: what would be sent, exactly.
pub struct Prepared {
    pub plan: Plan,
    request: Request,
}

enum Request {
    Http(http::Request),
    Shell(String),
    Kube(kube::Request),
    Docker(docker::Request, docker::Resolved),
    GpuKill(gpu::Kill),
    Cleanup(host::Cleanup),
    Postgres(postgres::Request),
    Alertmanager(alertmanager::Request),
}

/// What an action needs beyond its spec: the cluster (none in a drill or `show`) and the values
/// earlier actions of this incident replaced (for `replicas: previous`).
pub struct PlanContext<'a> {
    pub systems: Option<&'a Systems>,
    pub previous: &'a std::collections::BTreeMap<String, Value>,
    /// Replica counts by deployment where there is no cluster to ask (a drill's scenario).
    pub known_replicas: &'a std::collections::BTreeMap<String, i64>,
}

impl PlanContext<'_> {
    /// The namespace of an action that names none: the cluster's default, or `default` with no cluster.
    async fn namespace(
        &self,
        spec: &Option<crate::runbook::S<String>>,
        ctx: &Value,
    ) -> Result<String, BackendError> {
        match (spec, self.systems) {
            (Some(ns), _) => Ok(expr::render(&ns.value, ctx)?),
            (None, Some(systems)) => Ok(systems.kube.default_namespace().await?),
            (None, None) => Ok("default".into()),
        }
    }
}

pub async fn prepare(
    action: &Action,
    ctx: &Value,
    with: &PlanContext<'_>,
) -> Result<Prepared, BackendError> {
    let render = |text: &str| expr::render(text, ctx).map_err(BackendError::from);
    // A PostgreSQL action's connection: its own URL, else `--postgres-url`, else the PG* variables.
    let pg_config = |spec_url: &Option<crate::runbook::S<String>>| -> Result<tokio_postgres::Config, BackendError> {
        let flag = with.systems.and_then(|s| s.urls.postgres.as_ref());
        Ok(postgres::config(url(spec_url, flag, ctx)?.as_deref())?)
    };
    let request = if let Some(spec) = &action.http {
        let request = http::prepare(spec, ctx)?;
        return Ok(Prepared {
            plan: request.plan(),
            request: Request::Http(request),
        });
    } else if let Some(spec) = &action.shell {
        let command = expr::render_shell(&spec.command.value, ctx)?;
        // As `sh -c` will read it: quoting it once more would hide what runs (and any secret in it).
        let plan = Plan {
            backend: "shell".into(),
            request: command.clone(),
            ..Plan::default()
        };
        return Ok(Prepared {
            plan,
            request: Request::Shell(command),
        });
    } else if let Some(spec) = &action.k8s_scale {
        let (ns, name) = (
            with.namespace(&spec.namespace, ctx).await?,
            render(&spec.deployment.value)?,
        );
        let replicas = replicas(
            &spec.replicas.value,
            &kube::scale_target(&ns, &name),
            with.previous,
            &render,
        )?;
        kube::Request::Scale { ns, name, replicas }
    } else if let Some(spec) = &action.k8s_restart {
        let wait = spec
            .wait
            .as_ref()
            .map(|w| crate::runbook::parse_duration(&w.value))
            .transpose();
        let wait = wait.map_err(|why| kube::Error::Spec { what: "wait", why })?;
        kube::Request::Restart {
            ns: with.namespace(&spec.namespace, ctx).await?,
            name: render(&spec.deployment.value)?,
            patch: kube::restart_patch(jiff::Timestamp::now()),
            wait,
        }
    } else if let Some(spec) = &action.k8s_patch {
        kube::Request::Patch {
            ns: with.namespace(&spec.namespace, ctx).await?,
            kind: kube::PatchKind::parse(&spec.kind.value)?,
            name: render(&spec.name.value)?,
            patch: http::render_json(&spec.patch, ctx)?,
        }
    } else if let Some(spec) = &action.k8s_delete_pod {
        kube::Request::DeletePod {
            ns: with.namespace(&spec.namespace, ctx).await?,
            name: render(&spec.pod.value)?,
        }
    } else if let Some(spec) = &action.docker {
        let op = docker::Op::parse(&spec.op.value)?;
        let target = docker_target(
            &spec.project,
            &spec.service,
            &spec.container,
            &spec.label,
            &render,
        )?;
        let request = docker::Request::Containers {
            op,
            target,
            grace: duration(&spec.grace, "grace")?,
        };
        let (plan, resolved) = docker::plan(with.systems.map(|s| &s.docker), &request).await;
        return Ok(Prepared {
            plan,
            request: Request::Docker(request, resolved),
        });
    } else if action.docker_prune.is_some() {
        let (plan, resolved) =
            docker::plan(with.systems.map(|s| &s.docker), &docker::Request::Prune).await;
        return Ok(Prepared {
            plan,
            request: Request::Docker(docker::Request::Prune, resolved),
        });
    } else if let Some(spec) = &action.gpu_kill {
        let kill = gpu::kill_request(&render(&spec.pid.value)?, duration(&spec.grace, "grace")?)?;
        let plan = kill.plan(with.systems.map(|s| &s.gpu)).await;
        return Ok(Prepared {
            plan,
            request: Request::GpuKill(kill),
        });
    } else if let Some(spec) = &action.delete_files {
        let pattern = spec
            .pattern
            .as_ref()
            .map(|p| render(&p.value))
            .transpose()?;
        if with.systems.is_none() {
            // A drill (or `show`) does not read this machine's files: describe the request only.
            let dir = render(&spec.dir.value)?;
            let plan = host::describe_cleanup(
                &dir,
                pattern.as_deref(),
                spec.older_than.as_ref().map(|a| a.value.as_str()),
            );
            let cleanup = host::Cleanup {
                dir: dir.into(),
                files: Vec::new(),
            };
            return Ok(Prepared {
                plan,
                request: Request::Cleanup(cleanup),
            });
        }
        let cleanup = host::cleanup(
            &render(&spec.dir.value)?,
            pattern.as_deref(),
            duration(&spec.older_than, "older_than")?,
        )?;
        return Ok(Prepared {
            plan: cleanup.plan(),
            request: Request::Cleanup(cleanup),
        });
    } else if let Some(spec) = action.pg_cancel.as_ref().or(action.pg_terminate.as_ref()) {
        let config = pg_config(&spec.url)?;
        let column = spec.column.as_deref().unwrap_or("pid");
        let (plan, request) = postgres::backends(
            ctx,
            &spec.check.value,
            column,
            config,
            action.pg_cancel.is_some(),
        )?;
        return Ok(Prepared {
            plan,
            request: Request::Postgres(request),
        });
    } else if let Some(spec) = &action.pg_analyze {
        let config = pg_config(&spec.url)?;
        let (plan, request) = postgres::sql(config, "ANALYZE".into(), None);
        return Ok(Prepared {
            plan,
            request: Request::Postgres(request),
        });
    } else if let Some(spec) = &action.pg_reindex {
        let config = pg_config(&spec.url)?;
        let database = render(&spec.database.value)?;
        let warning = "REINDEX locks each table against writes while its indexes are rebuilt: run it when the load allows";
        let sql = format!("REINDEX DATABASE {}", quote_ident(&database));
        let (plan, request) = postgres::sql(config, sql, Some(warning));
        return Ok(Prepared {
            plan,
            request: Request::Postgres(request),
        });
    } else if let Some(spec) = &action.silence {
        let mut found = matchers(&spec.matchers, &render)?;
        if found.is_empty()
            && let Some(labels) = ctx["incident"]["alert"]["labels"].as_object()
        {
            found = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
        }
        let length = crate::runbook::parse_duration(&spec.duration.value).map_err(|why| {
            BackendError::Spec {
                what: "duration",
                why,
            }
        })?;
        let note = spec
            .comment
            .as_ref()
            .map(|c| render(&c.value))
            .transpose()?
            .unwrap_or_default();
        let comment = format!(
            "oncall incident {}: {note}",
            ctx["incident"]["id"].as_str().unwrap_or_default()
        )
        .trim_end_matches(": ")
        .to_string();
        let (plan, request) = alertmanager::silence(
            &alertmanager_url(ctx),
            found,
            length,
            comment,
            &crate::timeline::user(),
        )?;
        return Ok(Prepared {
            plan,
            request: Request::Alertmanager(request),
        });
    } else if action.expire_silence.is_some() {
        let (plan, request) = alertmanager::expire(&alertmanager_url(ctx))?;
        return Ok(Prepared {
            plan,
            request: Request::Alertmanager(request),
        });
    } else {
        return Err(BackendError::NoBackend("action"));
    };
    let request = request.checked()?;
    let plan = kube::plan(with.systems.map(|s| &s.kube), with.known_replicas, &request).await;
    Ok(Prepared {
        plan,
        request: Request::Kube(request),
    })
}

/// A PostgreSQL identifier, double-quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A replica count: a number, a template, or `previous` (the count before this incident's first scale).
fn replicas(
    spec: &crate::runbook::ScalarValue,
    target: &str,
    previous: &std::collections::BTreeMap<String, Value>,
    render: &dyn Fn(&str) -> Result<String, BackendError>,
) -> Result<i64, BackendError> {
    use crate::runbook::ScalarValue;
    let bad = |why: String| {
        BackendError::from(kube::Error::Spec {
            what: "replicas",
            why,
        })
    };
    match spec {
        ScalarValue::Int(n) if *n >= 0 => Ok(*n),
        ScalarValue::Text(word) if word == "previous" => {
            previous.get(target).and_then(Value::as_i64).ok_or_else(|| {
                kube::Error::NothingToRestore {
                    target: target.to_string(),
                }
                .into()
            })
        }
        ScalarValue::Text(template) => {
            let text = render(template)?;
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=crate::runbook::validate::MAX_REPLICAS).contains(n))
                .ok_or_else(|| bad(format!("'{text}' is not a replica count")))
        }
        other => Err(bad(format!("{other:?} is not a replica count"))),
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
    ) -> Result<String, BackendError> {
        let systems = || systems.ok_or(BackendError::NoBackend("live system"));
        Ok(match &self.request {
            Request::Http(request) => request.send(client, timeout).await?,
            Request::Shell(command) => shell::run_action(command, timeout).await?,
            Request::Kube(request) => kube::apply(&systems()?.kube, request).await?,
            Request::Docker(request, resolved) => {
                docker::apply(&systems()?.docker, request, resolved).await?
            }
            Request::GpuKill(kill) => kill.apply().await?,
            Request::Cleanup(cleanup) => cleanup.apply()?,
            Request::Postgres(request) => postgres::apply(request).await?,
            Request::Alertmanager(request) => alertmanager::apply(client, request, timeout).await?,
        })
    }
}

/// Bodies larger than this are not read further: an answer is for people, not a download.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A response body read up to `BODY_LIMIT`; `complete` is false when the rest was left unread.
pub struct Body {
    pub text: String,
    pub complete: bool,
}

pub async fn read_body(mut response: reqwest::Response) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > BODY_LIMIT {
            bytes.extend_from_slice(&chunk[..BODY_LIMIT - bytes.len()]);
            return Ok(Body {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                complete: false,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
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
