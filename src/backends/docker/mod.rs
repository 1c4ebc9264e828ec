//! Docker through bollard (DOCKER_HOST or the default socket, API version negotiated): containers,
//! their logs and one-shot stats as checks; restart, stop, start and pruning as actions.

mod scale;
mod spec;

pub use spec::{Containers, DockerAction, DockerLogs, DockerTarget, Prune, Scale, Stats};

use super::host::bytes;
use super::reading::{Reading, Table, Verdict, number};
use super::{Plan, humanize};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, ListImagesOptions, LogsOptions,
    RemoveContainerOptions, RemoveImageOptions, RestartContainerOptions, StartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::OnceCell;

const DEFAULT_SINCE: Duration = Duration::from_secs(3600);
const DEFAULT_KEEP: usize = 5;
const DEFAULT_GRACE: Duration = Duration::from_secs(10);
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the Docker daemon ({host}): {cause}")]
    Unreachable { host: String, cause: String },
    #[error("the Docker daemon answered {code}: {message}")]
    Api { code: u16, message: String },
    #[error("Docker: {0}")]
    Other(String),
    #[error("no container matches {0}")]
    NoContainer(String),
    #[error("invalid {what}: {why}")]
    Spec { what: &'static str, why: String },
}

/// A Docker client made on first use.
#[derive(Default)]
pub struct DockerHost {
    client: OnceCell<Result<Docker, String>>,
}

fn host_name() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn describe(err: bollard::errors::Error) -> Error {
    use bollard::errors::Error as E;
    match err {
        E::DockerResponseServerError {
            status_code,
            message,
        } => Error::Api {
            code: status_code,
            message,
        },
        E::RequestTimeoutError => Error::Unreachable {
            host: host_name(),
            cause: "timed out".into(),
        },
        other => {
            let text = other.to_string();
            let mut source: Option<&dyn std::error::Error> = Some(&other);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return Error::Unreachable {
                        host: host_name(),
                        cause: io.to_string(),
                    };
                }
                source = e.source();
            }
            if text.contains("connect") || text.contains("No such file") {
                Error::Unreachable {
                    host: host_name(),
                    cause: text,
                }
            } else {
                Error::Other(text)
            }
        }
    }
}

impl DockerHost {
    async fn client(&self) -> Result<Docker, Error> {
        let got = self
            .client
            .get_or_init(|| async {
                let docker =
                    Docker::connect_with_defaults().map_err(|e| describe(e).to_string())?;
                // The daemon may be older than bollard's default API version.
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| describe(e).to_string())
            })
            .await;
        got.clone().map_err(|cause| Error::Unreachable {
            host: host_name(),
            cause,
        })
    }
}

/// The daemon's version and API version (`docker version`): what `oncall doctor` asks.
pub async fn version(host: &DockerHost) -> Result<String, Error> {
    let docker = host.client().await?;
    let v = docker.version().await.map_err(describe)?;
    Ok(format!(
        "Docker {} (API {})",
        v.version.unwrap_or_else(|| "?".into()),
        v.api_version.unwrap_or_else(|| "?".into())
    ))
}

/// Which containers: a compose project (and service), a name, or a label.
pub struct Target {
    pub project: Option<String>,
    pub service: Option<String>,
    pub container: Option<String>,
    pub label: Option<String>,
}

impl Target {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.project {
            parts.push(format!("project {p}"));
        }
        if let Some(s) = &self.service {
            parts.push(format!("service {s}"));
        }
        if let Some(c) = &self.container {
            parts.push(format!("container {c}"));
        }
        if let Some(l) = &self.label {
            parts.push(format!("label {l}"));
        }
        parts.join(", ")
    }
}

struct Container {
    id: String,
    name: String,
    service: String,
    /// Its compose replica number (0 outside compose).
    number: u32,
}

async fn find(docker: &Docker, target: &Target) -> Result<Vec<Container>, Error> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    let mut labels = Vec::new();
    if let Some(p) = &target.project {
        labels.push(format!("{COMPOSE_PROJECT}={p}"));
    }
    if let Some(s) = &target.service {
        labels.push(format!("{COMPOSE_SERVICE}={s}"));
    }
    if let Some(l) = &target.label {
        labels.push(l.clone());
    }
    if !labels.is_empty() {
        filters.insert("label".into(), labels);
    }
    if let Some(c) = &target.container {
        filters.insert("name".into(), vec![c.clone()]);
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = docker
        .list_containers(Some(options))
        .await
        .map_err(describe)?;
    let mut found: Vec<Container> = list
        .into_iter()
        .map(|c| {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let labels = c.labels.unwrap_or_default();
            let service = labels
                .get(COMPOSE_SERVICE)
                .cloned()
                .unwrap_or_else(|| name.clone());
            let number = labels
                .get(scale::NUMBER)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Container {
                id: c.id.unwrap_or_default(),
                name,
                service,
                number,
            }
        })
        .filter(|c| target.container.as_ref().is_none_or(|want| &c.name == want))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn since_unix(since: Duration) -> i32 {
    (jiff::Timestamp::now().as_second() - since.as_secs() as i64).max(0) as i32
}

fn uptime(started: &str) -> String {
    let Ok(started) = started.parse::<jiff::Timestamp>() else {
        return String::new();
    };
    if started.as_second() <= 0 {
        return String::new();
    }
    let secs = jiff::Timestamp::now()
        .duration_since(started)
        .as_secs()
        .max(0) as u64;
    humanize(Duration::from_secs(secs))
}

/// `docker-compose ps`: service, state, health, exit code, restarts, uptime. Down, unhealthy or
/// exited with an error fails; the value is how many are running and not unhealthy.
pub async fn containers(
    host: &DockerHost,
    target: &Target,
) -> Result<Reading, super::BackendError> {
    let docker = host.client().await?;
    let found = find(&docker, target).await?;
    if found.is_empty() {
        return Err(Error::NoContainer(target.describe()).into());
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut good = 0;
    for c in &found {
        let inspect = docker
            .inspect_container(&c.id, None::<InspectContainerOptions>)
            .await
            .map_err(describe)?;
        let state = inspect.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let health = state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let exit = state.exit_code.unwrap_or(0);
        let running = state.running.unwrap_or(false);
        let oom = state.oom_killed.unwrap_or(false);
        let up = if running {
            uptime(state.started_at.as_deref().unwrap_or_default())
        } else {
            String::new()
        };
        if running && health != "unhealthy" {
            good += 1;
        } else {
            let why = if health == "unhealthy" {
                "unhealthy".to_string()
            } else if oom {
                format!("{status}, OOM-killed")
            } else {
                format!("{status} ({exit})")
            };
            bad.push(format!("{} {why}", c.service));
        }
        rows.push(vec![
            c.service.clone().into(),
            c.name.clone().into(),
            status.into(),
            if health.is_empty() || health == "none" {
                Value::Null
            } else {
                health.into()
            },
            exit.into(),
            inspect.restart_count.unwrap_or(0).into(),
            up.into(),
        ]);
    }
    let columns = [
        "service",
        "container",
        "state",
        "health",
        "exit code",
        "restarts",
        "uptime",
    ]
    .map(String::from)
    .to_vec();
    let verdict = (!bad.is_empty()).then(|| (Verdict::Fail, bad.join("; ")));
    let text = format!("{good} of {} running and healthy", found.len());
    Ok(Reading {
        value: good.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict,
        took_ms: None,
    })
}

/// `docker-compose logs`: matching lines per container over a window, streamed with bounded memory.
pub async fn logs(
    host: &DockerHost,
    target: &Target,
    since: Option<Duration>,
    pattern: &regex::Regex,
    keep: Option<usize>,
) -> Result<Reading, super::BackendError> {
    let docker = host.client().await?;
    let found = find(&docker, target).await?;
    if found.is_empty() {
        return Err(Error::NoContainer(target.describe()).into());
    }
    let keep = keep.unwrap_or(DEFAULT_KEEP).max(1);
    let since = since.unwrap_or(DEFAULT_SINCE);
    let mut rows = Vec::new();
    let mut latest: VecDeque<String> = VecDeque::new();
    let mut total = 0usize;
    for c in &found {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            since: since_unix(since),
            ..Default::default()
        };
        let mut stream = docker.logs(&c.id, Some(options));
        let (mut matches, mut last, mut partial) = (0usize, None::<String>, Vec::<u8>::new());
        let mut on_line = |line: &[u8], matches: &mut usize, last: &mut Option<String>| {
            let line = String::from_utf8_lossy(line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            if pattern.is_match(&line) {
                *matches += 1;
                if latest.len() == keep {
                    latest.pop_front();
                }
                latest.push_back(format!("{}: {line}", c.service));
                *last = Some(line);
            }
        };
        while let Some(chunk) = stream.next().await {
            let bytes = match chunk.map_err(describe)? {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message } => message,
                LogOutput::StdIn { .. } => continue,
            };
            partial.extend_from_slice(&bytes);
            while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                on_line(&line, &mut matches, &mut last);
            }
        }
        if !partial.is_empty() {
            on_line(&partial, &mut matches, &mut last);
        }
        total += matches;
        rows.push(vec![
            c.service.clone().into(),
            c.name.clone().into(),
            matches.into(),
            last.map(Value::from).unwrap_or(Value::Null),
        ]);
    }
    let columns = ["service", "container", "matches", "last match"]
        .map(String::from)
        .to_vec();
    let text = if latest.is_empty() {
        format!(
            "no line matches /{}/ over {}",
            pattern.as_str(),
            humanize(since)
        )
    } else {
        latest.into_iter().collect::<Vec<_>>().join("\n")
    };
    Ok(Reading {
        value: total.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict: None,
        took_ms: None,
    })
}

/// `docker stats --no-stream`: CPU % and memory used and limit; each row's value is memory in percent.
pub async fn stats(host: &DockerHost, target: &Target) -> Result<Reading, super::BackendError> {
    let docker = host.client().await?;
    let found = find(&docker, target).await?;
    // Each sample takes about a second: read every container at once, as `docker stats` does.
    let samples = futures_util::future::join_all(found.iter().map(|c| {
        let docker = docker.clone();
        async move {
            let options = StatsOptions {
                stream: false,
                one_shot: false,
            };
            docker.stats(&c.id, Some(options)).next().await
        }
    }))
    .await;
    let mut rows = Vec::new();
    for (c, sample) in found.iter().zip(samples) {
        let Some(stats) = sample else { continue };
        let stats = stats.map_err(describe)?;
        let cpu = stats.cpu_stats.unwrap_or_default();
        let pre = stats.precpu_stats.unwrap_or_default();
        let total = |s: &bollard::models::ContainerCpuStats| {
            s.cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0) as f64
        };
        let cpu_delta = total(&cpu) - total(&pre);
        let system_delta =
            cpu.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
        let cpus = cpu.online_cpus.unwrap_or(1).max(1) as f64;
        let cpu_pct = if system_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / system_delta * cpus * 100.0
        } else {
            0.0
        };
        let memory = stats.memory_stats.unwrap_or_default();
        let (used, limit) = (memory.usage.unwrap_or(0), memory.limit.unwrap_or(0));
        let mem_pct = if limit == 0 {
            0.0
        } else {
            used as f64 * 100.0 / limit as f64
        };
        rows.push(vec![
            c.service.clone().into(),
            c.name.clone().into(),
            number((cpu_pct * 10.0).round() / 10.0),
            bytes(used).into(),
            bytes(limit).into(),
            number((mem_pct * 10.0).round() / 10.0),
        ]);
    }
    let columns = ["service", "container", "cpu %", "memory", "limit", "value"]
        .map(String::from)
        .to_vec();
    Ok(Reading {
        value: Value::Null,
        table: Some(Table::new(columns, rows)),
        text: Some(format!("{} running container(s)", found.len())),
        verdict: None,
        took_ms: None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Restart,
    Stop,
    Start,
}

impl Op {
    pub fn parse(op: &str) -> Result<Op, Error> {
        match op {
            "restart" => Ok(Op::Restart),
            "stop" => Ok(Op::Stop),
            "start" => Ok(Op::Start),
            other => Err(Error::Spec {
                what: "op",
                why: format!("'{other}': use restart, stop or start"),
            }),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Op::Restart => "restart",
            Op::Stop => "stop",
            Op::Start => "start",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Op::Restart => "restarted",
            Op::Stop => "stopped",
            Op::Start => "started",
        }
    }
}

/// A Docker mutation, rendered. Containers are resolved when it is planned, so the plan names
/// them and the approval covers exactly those.
pub enum Request {
    Containers {
        op: Op,
        target: Target,
        grace: Option<Duration>,
    },
    Prune,
    Scale {
        target: Target,
        replicas: u32,
        grace: Option<Duration>,
    },
}

/// What a request will touch, found at planning time.
pub struct Resolved {
    containers: Vec<(String, String)>,
    images: Vec<(String, String)>,
    scale: scale::Change,
}

pub async fn plan(host: Option<&DockerHost>, request: &Request) -> (Plan, Resolved) {
    let mut resolved = Resolved {
        containers: vec![],
        images: vec![],
        scale: scale::Change::default(),
    };
    let mut plan = Plan {
        backend: "docker".into(),
        ..Plan::default()
    };
    let docker = match host {
        Some(host) => host.client().await.ok(),
        None => None,
    };
    match request {
        Request::Containers { op, target, grace } => {
            let grace = grace.unwrap_or(DEFAULT_GRACE);
            plan.request = format!(
                "POST /containers/{{id}}/{} (t={}s) for {}",
                op.word(),
                grace.as_secs(),
                target.describe()
            );
            if let Some(docker) = &docker
                && let Ok(found) = find(docker, target).await
            {
                for c in found {
                    plan.changes
                        .push(format!("{} {} ({})", op.word(), c.name, c.service));
                    resolved.containers.push((c.id, c.name));
                }
            }
            if plan.changes.is_empty() {
                plan.changes.push(format!(
                    "{} every container of {}",
                    op.word(),
                    target.describe()
                ));
            }
        }
        Request::Scale {
            target, replicas, ..
        } => {
            plan.request = format!(
                "POST /containers/create and /containers/{{id}}/start, or /containers/{{id}}/stop and DELETE /containers/{{id}}, for {}",
                target.describe()
            );
            let (lines, change) = scale::plan(docker.as_ref(), target, *replicas).await;
            plan.changes = lines;
            resolved.scale = change;
        }
        Request::Prune => {
            plan.request = "DELETE /containers/{id} for each stopped container; DELETE /images/{id} for each dangling image".into();
            if let Some(docker) = &docker {
                let mut filters = HashMap::new();
                filters.insert(
                    "status".to_string(),
                    vec![
                        "exited".to_string(),
                        "created".to_string(),
                        "dead".to_string(),
                    ],
                );
                let options = ListContainersOptions {
                    all: true,
                    size: true,
                    filters: Some(filters),
                    ..Default::default()
                };
                let mut space = 0i64;
                for c in docker
                    .list_containers(Some(options))
                    .await
                    .unwrap_or_default()
                {
                    let name = c
                        .names
                        .unwrap_or_default()
                        .first()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default();
                    let size = c.size_rw.unwrap_or(0);
                    space += size;
                    plan.changes.push(format!(
                        "remove container {name} ({})",
                        bytes(size.max(0) as u64)
                    ));
                    resolved.containers.push((c.id.unwrap_or_default(), name));
                }
                let mut filters = HashMap::new();
                filters.insert("dangling".to_string(), vec!["true".to_string()]);
                let options = ListImagesOptions {
                    filters: Some(filters),
                    ..Default::default()
                };
                for i in docker.list_images(Some(options)).await.unwrap_or_default() {
                    space += i.size;
                    let short =
                        i.id.trim_start_matches("sha256:")
                            .chars()
                            .take(12)
                            .collect::<String>();
                    plan.changes.push(format!(
                        "remove dangling image {short} ({})",
                        bytes(i.size.max(0) as u64)
                    ));
                    resolved.images.push((i.id.clone(), short));
                }
                plan.changes
                    .push(format!("about {} reclaimed", bytes(space.max(0) as u64)));
            }
        }
    }
    (plan, resolved)
}

/// Sends an approved request to exactly what its plan listed.
pub(super) async fn apply(
    host: &DockerHost,
    request: &Request,
    resolved: &Resolved,
) -> Result<String, super::BackendError> {
    let docker = host.client().await?;
    match request {
        Request::Containers { op, target, grace } => {
            if resolved.containers.is_empty() {
                return Err(Error::NoContainer(target.describe()).into());
            }
            let t = grace.unwrap_or(DEFAULT_GRACE).as_secs() as i32;
            for (id, _) in &resolved.containers {
                match op {
                    Op::Restart => {
                        docker
                            .restart_container(
                                id,
                                Some(RestartContainerOptions {
                                    t: Some(t),
                                    ..Default::default()
                                }),
                            )
                            .await
                    }
                    Op::Stop => {
                        docker
                            .stop_container(
                                id,
                                Some(StopContainerOptions {
                                    t: Some(t),
                                    ..Default::default()
                                }),
                            )
                            .await
                    }
                    Op::Start => {
                        docker
                            .start_container(id, None::<StartContainerOptions>)
                            .await
                    }
                }
                .map_err(describe)?;
            }
            let names: Vec<&str> = resolved.containers.iter().map(|c| c.1.as_str()).collect();
            Ok(format!("{} {}", op.done(), names.join(", ")))
        }
        Request::Scale { target, grace, .. } => {
            let t = grace.unwrap_or(DEFAULT_GRACE).as_secs() as i32;
            Ok(scale::apply(&docker, target, &resolved.scale, t).await?)
        }
        Request::Prune => {
            for (id, _) in &resolved.containers {
                docker
                    .remove_container(id, None::<RemoveContainerOptions>)
                    .await
                    .map_err(describe)?;
            }
            for (id, _) in &resolved.images {
                docker
                    .remove_image(id, None::<RemoveImageOptions>, None)
                    .await
                    .map_err(describe)?;
            }
            Ok(format!(
                "removed {} container(s) and {} image(s)",
                resolved.containers.len(),
                resolved.images.len()
            ))
        }
    }
}
