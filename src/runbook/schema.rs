//! The runbook file format: what a YAML runbook may say, field by field.
//!
//! Fields that later validation must point at are `Spanned`, so an error names the line and column.
//! Every struct denies unknown fields: a typo is an error, not a silently ignored setting.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub id: S<String>,
    pub title: String,
    pub severity: S<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Alert names this runbook handles.
    #[serde(default)]
    pub alerts: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// Named base URLs the runbook talks to, with defaults the config file and flags override.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Param>,
    #[serde(default)]
    pub escalation: Vec<Escalation>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub messages: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default)]
    pub default: Option<ScalarValue>,
    #[serde(default)]
    pub help: Option<String>,
    /// A secret never reaches the screen or the timeline.
    #[serde(default)]
    pub secret: bool,
}

/// A YAML scalar as a param default: numbers stay numbers so `value > params.budget_pct` compares numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after: S<String>,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Plain words shown with the step: what to look at, what the engineer decides.
    #[serde(default)]
    pub guidance: Option<String>,
    /// Expression: when false the step's actions are not offered and its wait does not run.
    #[serde(default)]
    pub when: Option<S<String>>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub wait: Option<Wait>,
    /// Names of `messages` rendered once the step's checks have run.
    #[serde(default)]
    pub messages: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub fail_if: Option<S<String>>,
    #[serde(default)]
    pub warn_if: Option<S<String>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    // Exactly one backend.
    #[serde(default)]
    pub prometheus: Option<S<String>>,
    #[serde(default)]
    pub http: Option<HttpCheck>,
    #[serde(default)]
    pub shell: Option<ShellSpec>,
    #[serde(default)]
    pub k8s_pods: Option<K8sPods>,
    #[serde(default)]
    pub k8s_deployment: Option<K8sDeployment>,
    #[serde(default)]
    pub k8s_logs: Option<K8sLogs>,
    #[serde(default)]
    pub k8s_events: Option<K8sEvents>,
    #[serde(default)]
    pub docker_containers: Option<DockerTarget>,
    #[serde(default)]
    pub docker_logs: Option<DockerLogs>,
    #[serde(default)]
    pub docker_stats: Option<DockerTarget>,
    #[serde(default)]
    pub gpus: Option<Gpus>,
    #[serde(default)]
    pub gpu_processes: Option<Gpus>,
    #[serde(default)]
    pub disk: Option<Disk>,
    #[serde(default)]
    pub memory: Option<Empty>,
    #[serde(default)]
    pub load: Option<Empty>,
    #[serde(default)]
    pub dir_size: Option<DirSize>,
    #[serde(default)]
    pub checksums: Option<Checksums>,
    #[serde(default)]
    pub tcp: Option<Tcp>,
    #[serde(default)]
    pub pg_ready: Option<Pg>,
    #[serde(default)]
    pub pg_connections: Option<Pg>,
    #[serde(default)]
    pub pg_long_queries: Option<Pg>,
    #[serde(default)]
    pub pg_blocked: Option<Pg>,
    #[serde(default)]
    pub pg_slow_statements: Option<Pg>,
    #[serde(default)]
    pub pg_locks: Option<Pg>,
    #[serde(default)]
    pub redis_ping: Option<RedisSpec>,
    #[serde(default)]
    pub redis_list: Option<RedisSpec>,
    #[serde(default)]
    pub redis_memory: Option<RedisSpec>,
    #[serde(default)]
    pub nats: Option<NatsSpec>,
    #[serde(default)]
    pub alerts: Option<AlertsSpec>,
}

/// A PostgreSQL check. `url` defaults to `--postgres-url`, then the PG* variables psql reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pg {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// `pg_long_queries`: active longer than this (default 5m).
    #[serde(default)]
    pub older_than: Option<S<String>>,
    /// Rows to keep (default 10).
    #[serde(default)]
    pub limit: Option<S<usize>>,
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSpec {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// The monitoring endpoint (`http://nats:8222`) for the connection count.
    #[serde(default)]
    pub monitor: Option<S<String>>,
}

/// Firing alerts in Alertmanager matching label matchers (`alertname: X`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    #[serde(default)]
    pub matchers: BTreeMap<String, S<String>>,
}

/// Containers by compose project (and service), by name, or by label.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerTarget {
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    /// `key=value`
    #[serde(default)]
    pub label: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerLogs {
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    #[serde(default)]
    pub label: Option<S<String>>,
    #[serde(default)]
    pub since: Option<S<String>>,
    pub matches: S<String>,
    #[serde(default)]
    pub keep: Option<S<usize>>,
}

/// NVIDIA GPUs through NVML; `library` overrides where libnvidia-ml.so.1 is loaded from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpus {}

/// A check that takes no settings: `memory: {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub paths: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSize {
    pub path: S<String>,
}

/// sha256 of files against a manifest in `sha256sum` format (`<hex>  <path>` per line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksums {
    pub manifest: S<String>,
    /// Folder the manifest's paths are relative to (default: the manifest's folder).
    #[serde(default)]
    pub root: Option<S<String>>,
}

/// A TCP connect with its latency: `host:port`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcp {
    pub address: S<String>,
}

/// Pods by namespace and label selector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sPods {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub selector: Option<S<String>>,
    /// Restarts above this warn (default 5).
    #[serde(default)]
    pub max_restarts: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sDeployment {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub name: S<String>,
}

/// Log lines of a deployment's (or a selector's) pods over a window, filtered by a regex.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sLogs {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub deployment: Option<S<String>>,
    #[serde(default)]
    pub selector: Option<S<String>>,
    /// How far back, e.g. `1h` (the default).
    #[serde(default)]
    pub since: Option<S<String>>,
    pub matches: S<String>,
    /// How many of the latest matching lines to keep (default 5).
    #[serde(default)]
    pub keep: Option<S<usize>>,
}

/// Warning events of a namespace, or of one object in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sEvents {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// `deployment/gpu-worker`, `pod/x`, or just a name.
    #[serde(default)]
    pub object: Option<S<String>>,
    #[serde(default)]
    pub since: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: S<String>,
    #[serde(default)]
    pub method: Option<S<String>>,
    /// Expected status codes; any other fails the check. Default: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Dotted path of a JSON field in the body to use as the value (`status`, `checks.db`).
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellSpec {
    /// A `sh -c` command line; template values in it are shell-quoted.
    pub command: S<String>,
    /// Check only: a regular expression; the value becomes the number of matching output lines.
    #[serde(default)]
    pub matches: Option<S<String>>,
    /// Check only: how many output lines (or matches) to keep in the observation.
    #[serde(default)]
    pub keep: Option<S<usize>>,
    /// Check only: the value is the number on the last output line (or match), not the count.
    #[serde(default)]
    pub number: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Expression: offer this action only when it holds (in addition to the step's `when`).
    #[serde(default)]
    pub when: Option<S<String>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub http: Option<HttpAction>,
    #[serde(default)]
    pub shell: Option<ShellSpec>,
    #[serde(default)]
    pub k8s_scale: Option<K8sScale>,
    #[serde(default)]
    pub k8s_restart: Option<K8sRestart>,
    #[serde(default)]
    pub k8s_patch: Option<K8sPatch>,
    #[serde(default)]
    pub k8s_delete_pod: Option<K8sDeletePod>,
    #[serde(default)]
    pub docker: Option<DockerAction>,
    #[serde(default)]
    pub docker_prune: Option<Empty>,
    #[serde(default)]
    pub gpu_kill: Option<GpuKill>,
    #[serde(default)]
    pub delete_files: Option<DeleteFiles>,
    #[serde(default)]
    pub pg_cancel: Option<PgBackends>,
    #[serde(default)]
    pub pg_terminate: Option<PgBackends>,
    #[serde(default)]
    pub pg_analyze: Option<Pg>,
    #[serde(default)]
    pub pg_reindex: Option<PgReindex>,
    #[serde(default)]
    pub silence: Option<Silence>,
    #[serde(default)]
    pub expire_silence: Option<Empty>,
}

/// Cancel or terminate the backends a check found: the pids in a column of its rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgBackends {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// The check whose rows name the backends (`pg_long_queries`, `pg_blocked`).
    pub check: S<String>,
    /// The column holding the pids (default `pid`; `blocking pid` to end what blocks).
    #[serde(default)]
    pub column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgReindex {
    #[serde(default)]
    pub url: Option<S<String>>,
    pub database: S<String>,
}

/// An Alertmanager silence: the seeds' "acknowledge".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Label matchers; default: the alert the run was opened from (`run --alert`).
    #[serde(default)]
    pub matchers: BTreeMap<String, S<String>>,
    pub duration: S<String>,
    #[serde(default)]
    pub comment: Option<S<String>>,
}

/// Restart, stop or start containers (every container of a compose service).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAction {
    /// `restart`, `stop` or `start`.
    pub op: S<String>,
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    #[serde(default)]
    pub label: Option<S<String>>,
    /// Seconds to wait for a stop before the kill (default 10).
    #[serde(default)]
    pub grace: Option<S<String>>,
}

/// End a process holding GPU memory: TERM, then KILL after `grace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuKill {
    pub pid: S<String>,
    #[serde(default)]
    pub grace: Option<S<String>>,
}

/// Delete the files in `dir` whose names match `pattern` (a glob: `vid-bench-*`) and that are
/// older than `older_than`; with no pattern, everything in `dir` (clearing a cache).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteFiles {
    pub dir: S<String>,
    #[serde(default)]
    pub pattern: Option<S<String>>,
    #[serde(default)]
    pub older_than: Option<S<String>>,
}

/// Scale a deployment through its scale subresource.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sScale {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub deployment: S<String>,
    /// A count, a template, or `previous`: the count before this incident's first scale of it.
    pub replicas: S<ScalarValue>,
}

/// `kubectl rollout restart`: a new restartedAt annotation on the pod template.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sRestart {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub deployment: S<String>,
    /// Wait up to this long for the rollout to finish.
    #[serde(default)]
    pub wait: Option<S<String>>,
}

/// A JSON merge patch of a deployment's or configmap's annotations, labels or data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sPatch {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// `deployment` or `configmap`.
    pub kind: S<String>,
    pub name: S<String>,
    pub patch: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sDeletePod {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub pod: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    pub method: S<String>,
    pub url: S<String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Id of a check of this or an earlier step, polled until `until` holds.
    pub check: S<String>,
    pub until: S<String>,
    #[serde(default)]
    pub every: Option<S<String>>,
    pub timeout: S<String>,
}

/// A drill scenario: canned observations for a runbook's checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, ScalarValue>,
    /// Replica counts of deployments when the scenario starts, for the plans of scale actions.
    #[serde(default)]
    pub deployments: BTreeMap<String, S<i64>>,
    pub checks: BTreeMap<String, ScenarioCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCheck {
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Successive values for a check that a wait polls; the last repeats.
    #[serde(default)]
    pub values: Vec<serde_json::Value>,
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub text: Option<String>,
    /// The check cannot reach its backend: this is the cause shown.
    #[serde(default)]
    pub error: Option<String>,
    /// What the backend itself would judge (`fail` for pods not ready), with why; thresholds still apply.
    #[serde(default)]
    pub verdict: Option<S<String>>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub millis: Option<S<u64>>,
}
