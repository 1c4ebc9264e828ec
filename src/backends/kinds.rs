//! The kinds of checks and actions: the key that names each in a runbook, and the spec type, in
//! its backend's module, that does the work. A kind is one line in `CheckKind` or `ActionKind`
//! below; everything else about it lives beside its backend. Every dispatch is a `match` the
//! macro writes once over the same list, so a spec type that lacks any part does not compile.

use super::{BackendError, Live, PlanContext, Prepared};
use crate::backends::reading::Reading;
use crate::spec::S;
use crate::spec::validate::Validator;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// A check kind: what its spec says, how it is validated, shown, read live, and replayed in a drill.
pub trait CheckSpec {
    /// The backend, as `show` and the events name it.
    const BACKEND: &'static str;
    /// Problems in the spec's own fields; `id` is its check's, for problems of the whole spec.
    fn validate(&self, id: &S<String>, v: &mut Validator);
    /// What it reads, for `show`, with templates filled in; None: the backend's name says it.
    fn describe(&self, _ctx: &Value) -> Option<String> {
        None
    }
    /// Reads the live system.
    fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reading, BackendError>>;
    /// A drill's canned reading, judged as the live backend would judge it (an HTTP status).
    fn replay(&self, _reading: &mut Reading) {}
}

/// An action kind: what its spec says, how it is validated, and how it becomes a plan and a
/// request (which `Prepared::apply` sends, with an approval). A drill and `show` prepare it with
/// no live systems: the plan then says what it can without reading them.
pub trait ActionSpec {
    fn validate(&self, id: &S<String>, v: &mut Validator);
    fn prepare(
        &self,
        ctx: &Value,
        with: &PlanContext<'_>,
    ) -> impl Future<Output = Result<Prepared, BackendError>>;
    /// What it sets that a later action could put back, with templates filled in from `ctx`
    /// (`validate` passes the params' defaults). None for an action that sets nothing lasting
    /// (a restart, a kill, a post): a second one of those undoes nothing.
    fn touches(&self, _ctx: &Value) -> Vec<Touch> {
        Vec::new()
    }
}

/// Something an action sets: two actions that touch the same target, the later one puts back (or
/// overrides) what the earlier one set, so `validate` asks it to wait for a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The thing set, in words two actions on it share: `deployment video-processing/gpu-worker replicas`.
    pub target: String,
    /// It puts back what this incident changed by its nature (`replicas: previous`, expiring the
    /// incident's silence), whatever came before it.
    pub restores: bool,
}

impl Touch {
    pub fn sets(target: String) -> Touch {
        Touch {
            target,
            restores: false,
        }
    }

    pub fn restores(target: String) -> Touch {
        Touch {
            target,
            restores: true,
        }
    }
}

/// A word that switches something one way, and the pair it belongs to: `maintenance-mode
/// disable` switches back what `maintenance-mode enable` switched.
pub fn switch_pair(word: &str) -> Option<String> {
    // Not start/stop, up/down: a stop and a start (or a down and an up) in one procedure is a
    // restart, not a mitigation and its undoing.
    const PAIRS: &[(&str, &str)] = &[
        ("enable", "disable"),
        ("on", "off"),
        ("pause", "resume"),
        ("suspend", "unsuspend"),
        ("cordon", "uncordon"),
    ];
    PAIRS
        .iter()
        .find(|(a, b)| word.eq_ignore_ascii_case(a) || word.eq_ignore_ascii_case(b))
        .map(|(a, b)| format!("{a}/{b}"))
}

/// Action kinds that acknowledge the incident rather than mitigate it.
pub const ACKNOWLEDGING: &[&str] = &["silence", "pagerduty"];
/// Action kinds that change nothing the incident is about: they acknowledge, undo an
/// acknowledgement, or tell people.
pub const NOT_MITIGATING: &[&str] = &["silence", "expire_silence", "pagerduty", "notify"];

/// A template filled in for people, or left as written when it does not render.
pub fn fill(text: &str, ctx: &Value) -> String {
    crate::expr::render(text, ctx).unwrap_or_else(|_| text.to_string())
}

/// Renders a spec's templates, as backends take them.
pub fn renderer(ctx: &Value) -> impl Fn(&str) -> Result<String, BackendError> + '_ {
    move |text: &str| crate::expr::render(text, ctx).map_err(BackendError::from)
}

/// The enum of a kind set, the keys that name its kinds, and reading one from a YAML map.
macro_rules! kinds {
    ($(#[$doc:meta])* $name:ident: $spec:ident { $($key:ident => $variant:ident($ty:ty),)+ }) => {
        $(#[$doc])*
        // A runbook holds a few dozen of these, read once: boxing the larger specs would buy nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug)]
        pub enum $name {
            $($variant($ty),)+
        }

        impl $name {
            /// The keys that name a kind, in the order hints list them.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),+];

            /// The key that names this kind in a runbook.
            pub fn key(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($key),)+
                }
            }

            /// Reads the value under `key` as the kind it names; None when it names none.
            pub fn read_value<'de, A: serde::de::MapAccess<'de>>(
                key: &str,
                map: &mut A,
            ) -> Result<Option<Self>, A::Error> {
                Ok(Some(match key {
                    $(stringify!($key) => Self::$variant(map.next_value()?),)+
                    _ => return Ok(None),
                }))
            }

            pub fn validate(&self, id: &S<String>, v: &mut Validator) {
                match self {
                    $(Self::$variant(spec) => <$ty as $spec>::validate(spec, id, v),)+
                }
            }
        }

        kinds!(@$spec $name { $($variant($ty),)+ });
    };

    (@CheckSpec $name:ident { $($variant:ident($ty:ty),)+ }) => {
        impl $name {
            pub fn backend(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$ty as CheckSpec>::BACKEND,)+
                }
            }

            pub fn describe(&self, ctx: &Value) -> Option<String> {
                match self {
                    $(Self::$variant(spec) => spec.describe(ctx),)+
                }
            }

            pub async fn read(
                &self,
                live: &Live,
                ctx: &Value,
                timeout: Duration,
            ) -> Result<Reading, BackendError> {
                match self {
                    $(Self::$variant(spec) => spec.read(live, ctx, timeout).await,)+
                }
            }

            pub fn replay(&self, reading: &mut Reading) {
                match self {
                    $(Self::$variant(spec) => spec.replay(reading),)+
                }
            }
        }
    };

    (@ActionSpec $name:ident { $($variant:ident($ty:ty),)+ }) => {
        impl $name {
            pub async fn prepare(
                &self,
                ctx: &Value,
                with: &PlanContext<'_>,
            ) -> Result<Prepared, BackendError> {
                match self {
                    $(Self::$variant(spec) => spec.prepare(ctx, with).await,)+
                }
            }

            pub fn touches(&self, ctx: &Value) -> Vec<Touch> {
                match self {
                    $(Self::$variant(spec) => spec.touches(ctx),)+
                }
            }
        }
    };
}

use super::{
    alertmanager, docker, gpu, host, http, kube, nats, notify, pagerduty, postgres, prometheus,
    redis, shell,
};

kinds! {
    /// What a check reads: one variant per kind, named in a runbook by its key.
    CheckKind: CheckSpec {
        prometheus => Prometheus(prometheus::Query),
        prometheus_range => PrometheusRange(prometheus::RangeQuery),
        http => Http(http::HttpCheck),
        shell => Shell(shell::ShellSpec),
        k8s_pods => K8sPods(kube::K8sPods),
        k8s_deployment => K8sDeployment(kube::K8sDeployment),
        k8s_logs => K8sLogs(kube::K8sLogs),
        k8s_events => K8sEvents(kube::K8sEvents),
        k8s_rollout_history => K8sRolloutHistory(kube::K8sRolloutHistory),
        k8s_exec => K8sExec(kube::K8sExec),
        docker_containers => DockerContainers(docker::Containers),
        docker_logs => DockerLogs(docker::DockerLogs),
        docker_stats => DockerStats(docker::Stats),
        gpus => Gpus(gpu::Gpus),
        gpu_processes => GpuProcesses(gpu::GpuProcesses),
        disk => Disk(host::Disk),
        memory => Memory(host::Memory),
        load => Load(host::Load),
        dir_size => DirSize(host::DirSize),
        log_files => LogFiles(host::LogFiles),
        checksums => Checksums(host::Checksums),
        tcp => Tcp(host::Tcp),
        pg_ready => PgReady(postgres::Ready),
        pg_connections => PgConnections(postgres::Connections),
        pg_long_queries => PgLongQueries(postgres::LongQueries),
        pg_blocked => PgBlocked(postgres::Blocked),
        pg_slow_statements => PgSlowStatements(postgres::SlowStatements),
        pg_locks => PgLocks(postgres::Locks),
        redis_ping => RedisPing(redis::Ping),
        redis_list => RedisList(redis::List),
        redis_memory => RedisMemory(redis::Memory),
        nats => Nats(nats::NatsSpec),
        alerts => Alerts(alertmanager::AlertsSpec),
    }
}

kinds! {
    /// What an action changes: one variant per kind, named in a runbook by its key.
    ActionKind: ActionSpec {
        http => Http(http::HttpAction),
        shell => Shell(shell::ShellSpec),
        k8s_scale => K8sScale(kube::K8sScale),
        k8s_restart => K8sRestart(kube::K8sRestart),
        k8s_patch => K8sPatch(kube::K8sPatch),
        k8s_delete_pod => K8sDeletePod(kube::K8sDeletePod),
        k8s_exec => K8sExec(kube::K8sExec),
        docker => Docker(docker::DockerAction),
        docker_prune => DockerPrune(docker::Prune),
        docker_scale => DockerScale(docker::Scale),
        gpu_kill => GpuKill(gpu::GpuKill),
        delete_files => DeleteFiles(host::DeleteFiles),
        pg_cancel => PgCancel(postgres::Cancel),
        pg_terminate => PgTerminate(postgres::Terminate),
        pg_analyze => PgAnalyze(postgres::Analyze),
        pg_reindex => PgReindex(postgres::Reindex),
        silence => Silence(alertmanager::Silence),
        expire_silence => ExpireSilence(alertmanager::ExpireSilence),
        notify => Notify(notify::Notify),
        pagerduty => PagerDuty(pagerduty::PagerDuty),
    }
}
