//! `oncall doctor [RUNBOOK]`: a pre-flight. Reaches every system a runbook's checks and actions
//! use, with the credentials a run would use (the same flags, variables, config file and
//! kubeconfig), and says per system whether it answers, whether those credentials may do what the
//! runbook needs (where the system can tell without doing it), and its version. It only reads:
//! no action is planned against a live system, none is sent. A Kubernetes permission is asked
//! with a SelfSubjectAccessReview, as `kubectl auth can-i` asks it.
//!
//! What each kind needs is one exhaustive `match` over `CheckKind` and `ActionKind` below: a new
//! kind does not compile until doctor knows what it reaches.

use super::Setup;
use super::run::{DEFAULT_PROMETHEUS, resolve_values};
use crate::backends::kinds::{ActionKind, CheckKind};
use crate::backends::kube::Access;
use crate::backends::kube::proxy;
use crate::backends::{self, BackendError, Systems, http::Via};
use crate::runbook::{self, Runbook};
use crate::spec::S;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub struct Request<'a> {
    /// None: every runbook oncall knows (bundled, config dir, `--runbook-path`, `./runbooks`).
    pub runbook: Option<&'a str>,
    pub params: &'a [String],
    /// How long each system may take to answer.
    pub timeout: Duration,
}

/// Something a runbook needs beyond an answer, asked of the system that would be asked to do it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    Kube(Access),
    /// Every session's query in pg_stat_activity (long, blocked queries, locks, connections).
    PgActivity,
    /// pg_stat_statements installed and readable.
    PgStatements,
    /// pg_cancel_backend / pg_terminate_backend of other roles' backends.
    PgSignal(&'static str),
    /// ANALYZE of the whole database.
    PgAnalyze,
    /// REINDEX DATABASE of this one.
    PgReindex(String),
    /// Silences created (Alertmanager has no permissions to ask about).
    Silence,
    /// An alert the runbook answers (`alerts:`), loaded as an alerting rule in Prometheus.
    AlertRule(String),
    /// A program a shell command starts, found on this host.
    Program(String),
    /// An action that waits for a second person's approval, which needs the team store.
    SecondPerson(String),
}

/// One system to reach: who needs it and what for.
#[derive(Default)]
struct Use {
    runbooks: BTreeSet<String>,
    wants: BTreeSet<Want>,
}

/// A backend and its target: a base URL, a server, or `""` for the one of its kind (the
/// kubeconfig's cluster, the PG* variables' server).
type Key = (&'static str, String);

#[derive(Default)]
struct Needs {
    by: BTreeMap<Key, Use>,
    /// What could not be known before a run (a template that reads a check's result).
    unchecked: Vec<String>,
}

impl Needs {
    fn add(&mut self, backend: &'static str, target: String, runbook: &str) -> &mut Use {
        let entry = self.by.entry((backend, target)).or_default();
        entry.runbooks.insert(runbook.to_string());
        entry
    }

    fn kube(&mut self, runbook: &str, access: Access) {
        self.add("kubernetes", String::new(), runbook)
            .wants
            .insert(Want::Kube(access));
    }
}

/// What the runbook's templates render from before any check has run.
struct Scope<'a> {
    runbook: &'a str,
    /// The runbook's `alerts:`.
    alerts: &'a [String],
    ctx: &'a Value,
    setup: &'a Setup,
}

type Found = Result<(), String>;

impl Scope<'_> {
    fn render(&self, t: &S<String>) -> Result<String, String> {
        crate::expr::render(&t.value, self.ctx).map_err(|e| e.to_string())
    }

    fn url(&self, t: &S<String>) -> Result<String, String> {
        let url = crate::expr::render_url(&t.value, self.ctx).map_err(|e| e.to_string())?;
        crate::redact::register_url(&url);
        Ok(url)
    }

    fn namespace(&self, ns: &Option<S<String>>) -> Result<Option<String>, String> {
        ns.as_ref()
            .map(|n| self.render(n))
            .transpose()
            .map(|n| n.filter(|n| !n.is_empty()))
    }

    fn endpoint(&self, name: &str) -> Option<String> {
        self.ctx["endpoints"][name]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    }

    fn postgres(&self, needs: &mut Needs, url: &Option<S<String>>, want: Want) -> Found {
        let url = match url {
            Some(u) => self.url(u)?,
            None => self.setup.global.postgres_url.clone().unwrap_or_default(),
        };
        needs.add("postgres", url, self.runbook).wants.insert(want);
        Ok(())
    }

    fn redis(&self, needs: &mut Needs, url: &Option<S<String>>) -> Found {
        let url = match url {
            Some(u) => self.url(u)?,
            None => self
                .setup
                .global
                .redis_url
                .clone()
                .unwrap_or_else(|| backends::DEFAULT_REDIS.into()),
        };
        needs.add("redis", url, self.runbook);
        Ok(())
    }

    /// A URL reached directly, or through the API server's proxy (which needs its own permission).
    fn http(&self, needs: &mut Needs, via: Via, method: &str) {
        match via {
            Via::Direct(url) => {
                needs.add("http", origin(&url), self.runbook);
            }
            Via::Proxy(target) => {
                let verb = match method {
                    "GET" | "HEAD" => "get",
                    "POST" => "create",
                    "PUT" => "update",
                    "PATCH" => "patch",
                    "DELETE" => "delete",
                    _ => "create",
                };
                let resource = match target.kind {
                    proxy::Kind::Service => "services",
                    proxy::Kind::Pod => "pods",
                };
                needs.kube(
                    self.runbook,
                    Access::new(verb, "", resource, "proxy", target.namespace.clone()),
                );
            }
        }
    }

    /// A base URL (Prometheus): `k8s://` ones go through the API server's proxy.
    fn base<'n>(&self, needs: &'n mut Needs, backend: &'static str, base: String) -> &'n mut Use {
        if let Some(Ok(target)) = proxy::Target::parse(&base) {
            needs.kube(
                self.runbook,
                Access::new("get", "", "services", "proxy", target.namespace.clone()),
            );
        }
        needs.add(backend, base, self.runbook)
    }

    /// The playbook's "verify alerting rules": each alert the runbook answers is a rule loaded
    /// in the Prometheus it reads, so the page that opens it can come at all.
    fn alert_rules(&self, needs: &mut Needs, alerts: &[String]) {
        if alerts.is_empty() {
            return;
        }
        let base = self
            .endpoint("prometheus")
            .unwrap_or_else(|| DEFAULT_PROMETHEUS.into());
        let usage = self.base(needs, "prometheus", base);
        for alert in alerts {
            usage.wants.insert(Want::AlertRule(alert.clone()));
        }
    }

    fn check(&self, needs: &mut Needs, kind: &CheckKind) -> Found {
        let rb = self.runbook;
        let a = Access::new;
        match kind {
            CheckKind::Prometheus(_) | CheckKind::PrometheusRange(_) => {
                let base = self
                    .endpoint("prometheus")
                    .unwrap_or_else(|| DEFAULT_PROMETHEUS.into());
                self.base(needs, "prometheus", base);
                self.alert_rules(needs, self.alerts);
            }
            CheckKind::Http(spec) => {
                let via = spec.via(self.ctx).map_err(|e| e.to_string())?;
                self.http(needs, via, &spec.method());
            }
            CheckKind::Shell(spec) => self.shell(needs, &spec.command),
            CheckKind::Disk(_)
            | CheckKind::Memory(_)
            | CheckKind::Load(_)
            | CheckKind::DirSize(_)
            | CheckKind::LogFiles(_)
            | CheckKind::Checksums(_) => {}
            CheckKind::K8sPods(spec) => {
                needs.kube(
                    rb,
                    a("list", "", "pods", "", self.namespace(&spec.namespace)?),
                );
            }
            CheckKind::K8sDeployment(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                needs.kube(rb, a("get", "apps", "deployments", "", ns));
            }
            CheckKind::K8sLogs(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                if spec.deployment.is_some() {
                    needs.kube(rb, a("get", "apps", "deployments", "", ns.clone()));
                }
                needs.kube(rb, a("list", "", "pods", "", ns.clone()));
                needs.kube(rb, a("get", "", "pods", "log", ns));
            }
            CheckKind::K8sRolloutHistory(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                needs.kube(rb, a("get", "apps", "deployments", "", ns.clone()));
                needs.kube(rb, a("list", "apps", "replicasets", "", ns));
            }
            CheckKind::K8sEvents(spec) => {
                needs.kube(
                    rb,
                    a("list", "", "events", "", self.namespace(&spec.namespace)?),
                );
            }
            CheckKind::K8sExec(spec) => self.exec(needs, spec)?,
            CheckKind::DockerContainers(_)
            | CheckKind::DockerLogs(_)
            | CheckKind::DockerStats(_) => {
                needs.add("docker", docker_host(), rb);
            }
            CheckKind::Gpus(_) | CheckKind::GpuProcesses(_) => {
                needs.add("gpu", self.nvml(), rb);
            }
            CheckKind::Tcp(spec) => {
                needs.add("tcp", self.render(&spec.address)?, rb);
            }
            CheckKind::PgReady(spec) => self.postgres(needs, &spec.0.url, Want::PgActivity)?,
            CheckKind::PgConnections(spec) => {
                self.postgres(needs, &spec.0.url, Want::PgActivity)?
            }
            CheckKind::PgLongQueries(spec) => {
                self.postgres(needs, &spec.0.url, Want::PgActivity)?
            }
            CheckKind::PgBlocked(spec) => self.postgres(needs, &spec.0.url, Want::PgActivity)?,
            CheckKind::PgLocks(spec) => self.postgres(needs, &spec.0.url, Want::PgActivity)?,
            CheckKind::PgSlowStatements(spec) => {
                self.postgres(needs, &spec.0.url, Want::PgStatements)?
            }
            CheckKind::RedisPing(spec) => self.redis(needs, &spec.0.url)?,
            CheckKind::RedisList(spec) => self.redis(needs, &spec.0.url)?,
            CheckKind::RedisMemory(spec) => self.redis(needs, &spec.0.url)?,
            CheckKind::Nats(spec) => {
                let url = match &spec.url {
                    Some(u) => self.url(u)?,
                    None => self
                        .setup
                        .global
                        .nats_url
                        .clone()
                        .unwrap_or_else(|| backends::DEFAULT_NATS.into()),
                };
                needs.add("nats", url, rb);
                if let Some(monitor) = &spec.monitor {
                    needs.add("http", origin(&self.url(monitor)?), rb);
                }
            }
            CheckKind::Alerts(_) => {
                needs.add("alertmanager", self.alertmanager(), rb);
            }
        }
        Ok(())
    }

    fn action(&self, needs: &mut Needs, kind: &ActionKind) -> Found {
        let rb = self.runbook;
        let a = Access::new;
        match kind {
            ActionKind::Http(spec) => {
                let via = spec.via(self.ctx).map_err(|e| e.to_string())?;
                self.http(needs, via, &spec.method.value.to_ascii_uppercase());
            }
            ActionKind::Shell(spec) => self.shell(needs, &spec.command),
            ActionKind::DeleteFiles(_) => {}
            ActionKind::K8sScale(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                needs.kube(rb, a("get", "apps", "deployments", "scale", ns.clone()));
                needs.kube(rb, a("patch", "apps", "deployments", "scale", ns));
            }
            ActionKind::K8sRestart(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                needs.kube(rb, a("get", "apps", "deployments", "", ns.clone()));
                needs.kube(rb, a("patch", "apps", "deployments", "", ns));
            }
            ActionKind::K8sPatch(spec) => {
                let ns = self.namespace(&spec.namespace)?;
                let (group, resource) = match spec.kind.value.to_ascii_lowercase().as_str() {
                    "configmap" | "configmaps" | "cm" => ("", "configmaps"),
                    _ => ("apps", "deployments"),
                };
                needs.kube(rb, a("get", group, resource, "", ns.clone()));
                needs.kube(rb, a("patch", group, resource, "", ns));
            }
            ActionKind::K8sDeletePod(spec) => {
                needs.kube(
                    rb,
                    a("delete", "", "pods", "", self.namespace(&spec.namespace)?),
                );
            }
            ActionKind::K8sExec(spec) => self.exec(needs, spec)?,
            ActionKind::Docker(_) | ActionKind::DockerPrune(_) | ActionKind::DockerScale(_) => {
                needs.add("docker", docker_host(), rb);
            }
            ActionKind::GpuKill(_) => {
                needs.add("gpu", self.nvml(), rb);
            }
            ActionKind::PgCancel(spec) => {
                self.postgres(needs, &spec.0.url, Want::PgSignal("pg_cancel"))?
            }
            ActionKind::PgTerminate(spec) => {
                self.postgres(needs, &spec.0.url, Want::PgSignal("pg_terminate"))?
            }
            ActionKind::PgAnalyze(spec) => self.postgres(needs, &spec.0.url, Want::PgAnalyze)?,
            ActionKind::PgReindex(spec) => {
                let database = self.render(&spec.0.database)?;
                self.postgres(needs, &spec.0.url, Want::PgReindex(database))?
            }
            ActionKind::Silence(_) => {
                needs
                    .add("alertmanager", self.alertmanager(), rb)
                    .wants
                    .insert(Want::Silence);
            }
            ActionKind::ExpireSilence(_) => {
                needs
                    .add("alertmanager", self.alertmanager(), rb)
                    .wants
                    .insert(Want::Silence);
            }
            ActionKind::Notify(spec) => {
                // Without a webhook the action is not offered: nothing to reach.
                if let Some(url) = self.endpoint(&spec.endpoint.value) {
                    crate::redact::register_webhook(&url);
                    needs.add("http", origin(&url), rb);
                }
            }
            ActionKind::PagerDuty(spec) => {
                // Without a routing key the action is not offered: nothing to reach.
                let key = self.render(&spec.routing_key).unwrap_or_default();
                if !key.is_empty() {
                    let base = self
                        .endpoint("pagerduty")
                        .unwrap_or_else(|| "https://events.pagerduty.com".into());
                    needs.add("http", origin(&base), rb);
                }
            }
        }
        Ok(())
    }

    fn exec(&self, needs: &mut Needs, spec: &backends::kube::K8sExec) -> Found {
        let rb = self.runbook;
        let ns = self.namespace(&spec.namespace)?;
        if spec.deployment.is_some() {
            needs.kube(
                rb,
                Access::new("get", "apps", "deployments", "", ns.clone()),
            );
        }
        if spec.pod.is_some() {
            needs.kube(rb, Access::new("get", "", "pods", "", ns.clone()));
        } else {
            needs.kube(rb, Access::new("list", "", "pods", "", ns.clone()));
        }
        needs.kube(rb, Access::new("create", "", "pods", "exec", ns));
        Ok(())
    }

    /// The programs a `sh -c` command starts must be on this host's PATH.
    fn shell(&self, needs: &mut Needs, command: &S<String>) {
        let usage = needs.add("shell", "this host (sh -c)".into(), self.runbook);
        for program in programs(&command.value) {
            usage.wants.insert(Want::Program(program));
        }
    }

    fn alertmanager(&self) -> String {
        self.endpoint("alertmanager")
            .unwrap_or_else(|| backends::DEFAULT_ALERTMANAGER.into())
    }

    fn nvml(&self) -> String {
        self.setup
            .global
            .nvml_library
            .as_ref()
            .map_or("libnvidia-ml.so.1".into(), |p| p.display().to_string())
    }
}

/// The programs a shell command line starts, as far as its text tells: the first word of each
/// command of its lists, pipelines and substitutions, leaving out what the shell runs itself
/// (keywords, builtins) and whatever a value, a variable or a glob makes. What cannot be told
/// this way is left out rather than guessed.
fn programs(command: &str) -> Vec<String> {
    // Words that start a command and run the next word: skip them and look at the next.
    const PREFIX: &[&str] = &[
        "if", "then", "else", "elif", "while", "until", "do", "!", "{", "time", "sudo", "nohup",
        "exec", "command", "nice", "env",
    ];
    // Words after which the rest of the segment tells nothing reliable.
    const OPAQUE: &[&str] = &[
        "for", "case", "in", "esac", "fi", "done", "}", "cd", "echo", "test", "[", "[[", "true",
        "false", "exit", "export", "read", "printf", "set", "unset", "type", "eval", "local",
        "return", "shift", "trap", "wait", ":", ".", "source", "ulimit", "umask", "timeout",
        "xargs", "let", "alias", "break", "continue", "getopts", "hash", "pwd", "readonly",
        "times", "kill",
    ];
    let plain = |w: &str| {
        !w.is_empty()
            && !w.bytes().all(|b| b.is_ascii_digit())
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_./+-".contains(&b))
    };
    // A template's value is one word (quoted by the template layer), whatever its expression holds.
    let mut command = command.to_string();
    for (open, close) in [("{{", "}}"), ("{%", "%}")] {
        while let Some(start) = command.find(open) {
            let end = command[start..]
                .find(close)
                .map_or(command.len(), |e| start + e + close.len());
            command.replace_range(start..end, "$");
        }
    }
    // A quoted string is one argument, whatever it holds (an awk program, a SQL statement).
    let mut unquoted = String::with_capacity(command.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in command.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                unquoted.push('"');
            }
            None => unquoted.push(c),
        }
    }
    let mut found = Vec::new();
    for segment in unquoted.split(['|', '&', ';', '\n', '(', ')', '`']) {
        let mut words = segment.split_whitespace();
        let program = loop {
            match words.next() {
                Some(w) if PREFIX.contains(&w) => continue,
                Some(w) if w.contains('=') && plain(&w[..w.find('=').unwrap_or(0)]) => continue,
                Some(w) if OPAQUE.contains(&w) || !plain(w) => break None,
                other => break other,
            }
        };
        if let Some(program) = program
            && !found.iter().any(|f| f == program)
        {
            found.push(program.to_string());
        }
    }
    found
}

/// Where a program would be found: its path when it names one, else the first on PATH.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runs = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return runs(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| runs(p))
}

/// The team's store: it answers, its schema is this oncall's; and each action that waits for a
/// second person's approval has it (a live run refuses one without a store).
async fn team_store(
    settings: Option<&crate::store::postgres::Settings>,
    usage: &Use,
    timeout: Duration,
) -> Report {
    let seconds = usage.wants.iter().filter_map(|w| match w {
        Want::SecondPerson(what) => Some(what),
        _ => None,
    });
    let Some(settings) = settings else {
        let mut report = Report::new("store", "none configured".into(), usage);
        for what in seconds {
            report.item(
                format!("second-person approval of {what}"),
                false,
                Some("needs the team store (--store, ONCALL_STORE or store: in the config file): a live run refuses the runbook without one (exit 2)".into()),
            );
        }
        return report.judged();
    };
    let mut report = Report::new("store", settings.shown.clone(), usage);
    let answer = tokio::time::timeout(timeout, async {
        let pg = settings.connect().await?;
        pg.check().await
    })
    .await;
    let failed = |mut report: Report, reachable: bool, cause: String| {
        report.reachable = reachable;
        report.status = if reachable {
            Status::Error
        } else {
            Status::Unreachable
        };
        report.cause = Some(cause);
        report
    };
    match answer {
        Ok(Ok(schema)) => report.version = Some(format!("schema {schema}")),
        Ok(Err(err @ crate::store::StoreError::Unreachable { .. })) => {
            return failed(report, false, err.to_string());
        }
        Ok(Err(err)) => return failed(report, true, err.to_string()),
        Err(_) => {
            return failed(
                report,
                false,
                format!(
                    "no answer from the store within {}",
                    backends::humanize(timeout)
                ),
            );
        }
    }
    for what in seconds {
        report.item(format!("second-person approval of {what}"), true, None);
    }
    report.judged()
}

fn shell_report(target: String, usage: &Use) -> Report {
    let mut report = Report::new("shell", target, usage);
    for want in &usage.wants {
        if let Want::Program(program) = want {
            match on_path(program) {
                Some(path) => report.item(format!("{program} ({})", path.display()), true, None),
                None => report.item(
                    program.clone(),
                    false,
                    Some(if program.contains('/') {
                        "not an executable file on this host".into()
                    } else {
                        "not found on this host's PATH".into()
                    }),
                ),
            }
        }
    }
    report.judged()
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// `https://hooks.slack.com` of a URL: a webhook's path is its credential, and a GET of the
/// origin is the only request that asks nothing of the service.
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_string())
}

/// How a system answered, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    /// It answers, and everything asked of it is allowed.
    Ok,
    /// It answers, but something the runbook needs is not allowed (or not there).
    Denied,
    /// It answered with an error (401, 403 on a read, not the expected API).
    Error,
    /// No answer (refused, timed out, unknown host), or it cannot be used here (no kubeconfig,
    /// no NVIDIA driver).
    Unreachable,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Denied => "denied",
            Status::Error => "error",
            Status::Unreachable => "unreachable",
        }
    }
}

/// One permission or capability asked of a system.
#[derive(Debug, Serialize)]
struct Item {
    what: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

/// What one system said.
#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    target: String,
    runbooks: Vec<String>,
    status: Status,
    reachable: bool,
    /// None: nothing to ask of it, or it did not answer.
    authorized: Option<bool>,
    version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

impl Report {
    fn new(backend: &'static str, target: String, usage: &Use) -> Report {
        Report {
            backend,
            target,
            runbooks: usage.runbooks.iter().cloned().collect(),
            status: Status::Ok,
            reachable: true,
            authorized: None,
            version: None,
            checks: Vec::new(),
            cause: None,
            notes: Vec::new(),
        }
    }

    fn failed(mut self, err: &BackendError) -> Report {
        self.reachable = err.no_answer().is_none();
        self.status = if self.reachable {
            Status::Error
        } else {
            Status::Unreachable
        };
        self.cause = Some(err.to_string());
        self
    }

    fn item(&mut self, what: String, allowed: bool, why: Option<String>) {
        self.checks.push(Item { what, allowed, why });
    }

    /// Each alert the runbooks answer, looked up among Prometheus's alerting rules.
    async fn rules(
        mut self,
        usage: &Use,
        systems: &Systems,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Report {
        let alerts: Vec<&String> = usage
            .wants
            .iter()
            .filter_map(|w| match w {
                Want::AlertRule(name) => Some(name),
                _ => None,
            })
            .collect();
        if alerts.is_empty() {
            return self;
        }
        let target = self.target.clone();
        let rules = within(
            timeout,
            &target,
            backends::prometheus::alert_rules(client, &systems.kube, &target, timeout),
        )
        .await;
        let rules = match rules {
            Ok(rules) => rules,
            Err(e) => return self.failed(&e),
        };
        for alert in alerts {
            let what = format!("alerting rule {alert} is loaded");
            match rules.get(alert) {
                Some((health, _)) if health == "ok" || health == "unknown" => {
                    self.item(what, true, None)
                }
                Some((health, error)) => self.item(
                    what,
                    false,
                    Some(format!(
                        "its health is {health}{}",
                        error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                    )),
                ),
                None => self.item(
                    what,
                    false,
                    Some(format!(
                        "Prometheus has no alerting rule named {alert}: the page that opens this runbook cannot fire"
                    )),
                ),
            }
        }
        self.judged()
    }

    /// Authorized when every item is allowed; denied otherwise.
    fn judged(mut self) -> Report {
        if self.status == Status::Ok && !self.checks.is_empty() {
            let all = self.checks.iter().all(|i| i.allowed);
            self.authorized = Some(all);
            if !all {
                self.status = Status::Denied;
            }
        }
        self
    }
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(backends::http::Error::Unreachable(format!(
            "no answer from {what} within {}",
            backends::humanize(timeout)
        ))
        .into()),
    }
}

async fn probe(
    key: &Key,
    usage: &Use,
    systems: &Systems,
    client: &reqwest::Client,
    timeout: Duration,
) -> Report {
    let (backend, target) = (key.0, key.1.clone());
    match backend {
        "kubernetes" => kubernetes(usage, systems, timeout).await,
        "prometheus" => {
            let report = Report::new(backend, target.clone(), usage);
            let got = within(
                timeout,
                &target,
                backends::prometheus::version(client, &systems.kube, &target, timeout),
            )
            .await;
            match got {
                Ok(v) => Report {
                    version: Some(v),
                    ..report
                },
                Err(e) => return report.failed(&e),
            }
            .rules(usage, systems, client, timeout)
            .await
        }
        "alertmanager" => {
            let mut report = Report::new(backend, target.clone(), usage);
            let got = within(timeout, &target, async {
                Ok(backends::alertmanager::version(client, &target, timeout).await?)
            })
            .await;
            match got {
                Ok(v) => {
                    report.version = Some(v);
                    if usage.wants.contains(&Want::Silence) {
                        report.notes.push("silences can be read; whether this client may create them cannot be asked without creating one (Alertmanager has no permissions of its own: an authenticating proxy in front would decide)".into());
                    }
                    report
                }
                Err(e) => report.failed(&e),
            }
        }
        "postgres" => postgres(target, usage, timeout).await,
        "redis" => {
            let report = Report::new(backend, target.clone(), usage);
            match within(timeout, &target, backends::redis::version(&target)).await {
                Ok(v) => Report {
                    version: Some(format!("Redis {v}")),
                    authorized: Some(true),
                    ..report
                },
                Err(e) => report.failed(&e),
            }
        }
        "nats" => {
            let report = Report::new(backend, target.clone(), usage);
            match within(timeout, &target, backends::nats::version(&target, timeout)).await {
                Ok(v) => Report {
                    version: Some(format!("NATS {v}")),
                    authorized: Some(true),
                    ..report
                },
                Err(e) => report.failed(&e),
            }
        }
        "docker" => {
            let report = Report::new(backend, target.clone(), usage);
            let got = within(timeout, &target, async {
                Ok(backends::docker::version(&systems.docker).await?)
            })
            .await;
            match got {
                Ok(v) => Report {
                    version: Some(v),
                    authorized: Some(true),
                    ..report
                },
                Err(e) => report.failed(&e),
            }
        }
        "gpu" => {
            let report = Report::new(backend, target.clone(), usage);
            match within(timeout, &target, backends::gpu::driver(&systems.gpu)).await {
                Ok(v) => Report {
                    version: Some(v),
                    ..report
                },
                Err(e) => report.failed(&e),
            }
        }
        "tcp" => {
            let report = Report::new(backend, target.clone(), usage);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(_)) => report,
                Ok(Err(e)) => Report {
                    status: Status::Unreachable,
                    reachable: false,
                    cause: Some(format!("cannot connect to {target}: {e}")),
                    ..report
                },
                Err(_) => Report {
                    status: Status::Unreachable,
                    reachable: false,
                    cause: Some(format!(
                        "no answer from {target} within {}",
                        backends::humanize(timeout)
                    )),
                    ..report
                },
            }
        }
        "shell" => shell_report(target, usage),
        _ => http(target, usage, client, timeout).await,
    }
}

/// An HTTP origin: any answer is an answer (what a check's path answers is the check's business);
/// the `Server` header, when it says, is the version.
async fn http(target: String, usage: &Use, client: &reqwest::Client, timeout: Duration) -> Report {
    let report = Report::new("http", target.clone(), usage);
    match client.get(&target).timeout(timeout).send().await {
        Ok(response) => {
            let server = response
                .headers()
                .get(reqwest::header::SERVER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Report {
                version: server,
                notes: vec![format!("answers HTTP {}", response.status().as_u16())],
                ..report
            }
        }
        Err(e) => Report {
            status: Status::Unreachable,
            reachable: false,
            cause: Some(backends::describe_reqwest(&e, &target, timeout)),
            ..report
        },
    }
}

async fn kubernetes(usage: &Use, systems: &Systems, timeout: Duration) -> Report {
    let kube = &systems.kube;
    let mut report = Report::new("kubernetes", kube.describe(), usage);
    let version = within(timeout, "the Kubernetes API", async {
        Ok(kube.server_version().await?)
    })
    .await;
    match version {
        Ok(v) => report.version = Some(v),
        Err(e) => return report.failed(&e),
    }
    let asks = usage.wants.iter().filter_map(|w| match w {
        Want::Kube(access) => Some(access),
        _ => None,
    });
    for access in asks {
        let answer = within(timeout, "the Kubernetes API", async {
            Ok(kube.can_i(access).await?)
        })
        .await;
        match answer {
            Ok(can) => {
                let why = can.reason.or_else(|| {
                    (!can.allowed).then(|| {
                        format!(
                            "the API server says no to this context's user (`{}` asks the same)",
                            access.kubectl(&can.namespace)
                        )
                    })
                });
                report.item(access.describe(&can.namespace), can.allowed, why)
            }
            Err(e) => return report.failed(&e),
        }
    }
    report.judged()
}

async fn postgres(url: String, usage: &Use, timeout: Duration) -> Report {
    let config = match backends::postgres::config((!url.is_empty()).then_some(url.as_str())) {
        Ok(config) => config,
        Err(e) => return Report::new("postgres", url, usage).failed(&BackendError::from(e)),
    };
    let server = backends::postgres::server(&config);
    let user = config.get_user().unwrap_or("?").to_string();
    let mut report = Report::new("postgres", format!("{user}@{server}"), usage);
    let grants = match within(timeout, &server, backends::postgres::grants(&config)).await {
        Ok(g) => g,
        Err(e) => return report.failed(&e),
    };
    report.version = Some(format!("PostgreSQL {}", grants.version));
    report.target = format!("{}@{}/{}", grants.user, grants.server, grants.database);
    let sees_all = grants.superuser || grants.read_all_stats;
    for want in &usage.wants {
        match want {
            Want::PgActivity => report.item(
                "read every session's query in pg_stat_activity".into(),
                sees_all,
                (!sees_all).then(|| format!("role {} sees only its own sessions' queries: GRANT pg_read_all_stats (or pg_monitor) TO {}", grants.user, grants.user)),
            ),
            Want::PgStatements => {
                let why = grants.statements.clone().err().or_else(|| {
                    (!sees_all).then(|| format!("role {} sees only its own statements: GRANT pg_read_all_stats (or pg_monitor) TO {}", grants.user, grants.user))
                });
                report.item("read pg_stat_statements".into(), why.is_none(), why)
            }
            Want::PgSignal(kind) => {
                let can = grants.superuser || grants.signal_backend;
                report.item(
                    format!("{kind}: signal other roles' backends"),
                    can,
                    (!can).then(|| format!("role {} may only cancel or end its own backends: GRANT pg_signal_backend TO {}", grants.user, grants.user)),
                )
            }
            Want::PgAnalyze => {
                let can = grants.superuser || grants.owns_database;
                report.item(
                    format!("pg_analyze: ANALYZE every table of {}", grants.database),
                    can,
                    (!can).then(|| format!("role {} neither owns database {} nor is a superuser: ANALYZE skips the tables it does not own", grants.user, grants.database)),
                )
            }
            Want::PgReindex(database) => {
                let here = *database == grants.database;
                let can = here && (grants.superuser || grants.owns_database);
                let why = if !here {
                    Some(format!("REINDEX DATABASE works only on the database connected to ({}), not {database}", grants.database))
                } else if !can {
                    Some(format!("role {} neither owns database {database} nor is a superuser", grants.user))
                } else {
                    None
                };
                report.item(format!("pg_reindex: REINDEX DATABASE {database}"), can, why)
            }
            Want::Kube(_)
            | Want::Silence
            | Want::AlertRule(_)
            | Want::Program(_)
            | Want::SecondPerson(_) => {}
        }
    }
    report.judged()
}

pub async fn run(setup: &Setup, req: Request<'_>) -> anyhow::Result<i32> {
    let config = setup.config()?;
    let catalog = setup.catalog();
    let mut invalid: Vec<String> = Vec::new();
    let runbooks: Vec<Runbook> = match req.runbook {
        Some(id) => vec![runbook::resolve(&catalog, id)?.runbook],
        None => {
            if !req.params.is_empty() {
                anyhow::bail!(
                    "-p sets a param of one runbook: `oncall doctor RUNBOOK -p KEY=VALUE`"
                );
            }
            for problem in &catalog.broken {
                invalid.push(problem.to_string());
            }
            let mut valid = Vec::new();
            for loaded in catalog.runbooks.values() {
                match runbook::resolve(&catalog, &loaded.runbook.id.value) {
                    Ok(l) => valid.push(l.runbook),
                    Err(e) => invalid.push(format!(
                        "runbook {} does not validate ({}): {e}",
                        loaded.runbook.id.value, loaded.source.origin
                    )),
                }
            }
            valid
        }
    };
    for problem in &invalid {
        eprintln!("error: {problem}\nhint: `oncall validate` lists every problem");
    }
    let mut needs = Needs::default();
    // The team's store, when one is configured: every run shares its incident there.
    let store = setup.store_settings()?;
    if let Some(settings) = &store {
        for rb in &runbooks {
            needs.add("store", settings.shown.clone(), &rb.id.value);
        }
    }
    for rb in &runbooks {
        let values = resolve_values(setup, &config, rb, None, None, req.params, false)?;
        let ctx = json!({
            "params": values.params, "endpoints": values.endpoints, "checks": {},
            "incident": { "id": "doctor", "severity": rb.severity.value, "runbook": rb.id.value },
        });
        let scope = Scope {
            runbook: &rb.id.value,
            alerts: &rb.alerts,
            ctx: &ctx,
            setup,
        };
        for (_, check) in rb.steps_checks() {
            if let Err(why) = scope.check(&mut needs, &check.kind) {
                needs.unchecked.push(format!(
                    "{}: check {} cannot be placed before a run: {why}",
                    rb.id.value, check.id.value
                ));
            }
        }
        let second = super::run::second_rule(&config, rb);
        for action in rb.steps.iter().flat_map(|s| &s.actions) {
            if second.applies_to(action) {
                let target = store.as_ref().map_or(String::new(), |s| s.shown.clone());
                needs
                    .add("store", target, &rb.id.value)
                    .wants
                    .insert(Want::SecondPerson(format!(
                        "{}: {}",
                        rb.id.value, action.id.value
                    )));
            }
            if let Err(why) = scope.action(&mut needs, &action.kind) {
                needs.unchecked.push(format!(
                    "{}: action {} cannot be placed before a run: {why}",
                    rb.id.value, action.id.value
                ));
            }
        }
    }
    let systems = super::run::systems(setup, super::run::kube(setup, &config));
    let client = backends::http_client();
    let reports = futures_util::future::join_all(needs.by.iter().map(|(key, usage)| async {
        match key.0 {
            "store" => team_store(store.as_ref(), usage, req.timeout).await,
            _ => probe(key, usage, &systems, &client, req.timeout).await,
        }
    }))
    .await;
    let mut code = exit_code(&reports);
    // A runbook `run` would refuse: 2, unless a system did not answer.
    if !invalid.is_empty() && code < 2 {
        code = 2;
    }
    if setup.json() {
        let doc = json!({
            "runbooks": runbooks.iter().map(|r| r.id.value.clone()).collect::<Vec<_>>(),
            "ok": code == 0,
            "exit_code": code,
            "backends": reports,
            "unchecked": needs.unchecked,
            "invalid": invalid,
        });
        crate::view::print_json(&doc)?;
    } else {
        crate::view::print_out(&text(&runbooks, &reports, &needs.unchecked))?;
    }
    Ok(code)
}

/// 3 when a system did not answer or answered with an error, else 1 when something the
/// runbook needs is not allowed, else 0.
fn exit_code(reports: &[Report]) -> i32 {
    match reports.iter().map(|r| r.status).max() {
        Some(Status::Unreachable | Status::Error) => 3,
        Some(Status::Denied) => 1,
        _ => 0,
    }
}

fn text(runbooks: &[Runbook], reports: &[Report], unchecked: &[String]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str(&format!(
            "{} reach(es) no system: nothing to check\n",
            runbooks
                .iter()
                .map(|r| r.id.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let width = |f: &dyn Fn(&Report) -> usize, min: usize| {
        reports.iter().map(f).max().unwrap_or(0).max(min)
    };
    let wb = width(&|r| r.backend.len(), 7);
    let ws = width(&|r| r.status.word().len(), 6);
    let wv = width(
        &|r| r.version.as_deref().map_or(1, |v| v.chars().count()),
        7,
    );
    if !reports.is_empty() {
        out.push_str(&format!(
            "{:wb$}  {:ws$}  {:wv$}  TARGET\n",
            "BACKEND", "STATUS", "VERSION"
        ));
    }
    for r in reports {
        out.push_str(&format!(
            "{:wb$}  {:ws$}  {:wv$}  {}\n",
            r.backend,
            r.status.word(),
            r.version.as_deref().unwrap_or("-"),
            r.target
        ));
        if runbooks.len() > 1 {
            out.push_str(&format!("  used by {}\n", r.runbooks.join(", ")));
        }
        if let Some(cause) = &r.cause {
            out.push_str(&format!("  {cause}\n"));
        }
        for item in &r.checks {
            let mark = if item.allowed { "allowed" } else { "DENIED " };
            out.push_str(&format!("  {mark}  {}", item.what));
            if let Some(why) = item.why.as_ref().filter(|_| !item.allowed) {
                out.push_str(&format!(": {why}"));
            }
            out.push('\n');
        }
        for note in &r.notes {
            out.push_str(&format!("  {note}\n"));
        }
    }
    for note in unchecked {
        out.push_str(&format!("not checked: {note}\n"));
    }
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.status != Status::Ok)
        .map(|r| format!("{} {}", r.backend, r.status.word()))
        .collect();
    if !reports.is_empty() {
        if bad.is_empty() {
            out.push_str(&format!(
                "ready: every system the runbook(s) use answers ({})\n",
                reports.len()
            ));
        } else {
            out.push_str(&format!(
                "not ready: {} of {} system(s): {}\n",
                bad.len(),
                reports.len(),
                bad.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::programs;

    #[test]
    fn programs_are_the_first_words_of_each_command() {
        assert_eq!(
            programs("docker-compose -f {{ params.file }} ps | grep -c Up"),
            ["docker-compose", "grep"]
        );
        assert_eq!(
            programs(
                "dropdb --if-exists x && createdb x && pg_restore -d x $(ls -t {{ params.dir }}/*.dump | head -1) 2>&1"
            ),
            ["dropdb", "createdb", "pg_restore", "ls", "head"]
        );
        assert_eq!(
            programs("LC_ALL=C sudo /usr/sbin/nginx -t; echo done"),
            ["/usr/sbin/nginx"]
        );
        // What a value or a variable makes, and loops, are left out rather than guessed.
        assert_eq!(
            programs("$TOOL --x; {{ params.cmd }}; for f in *; do rm $f; done"),
            ["rm"]
        );
        assert_eq!(
            programs("journalctl -u app | awk '{ n++; max = int($1) } END { print n }' | sort -n"),
            ["journalctl", "awk", "sort"]
        );
        assert_eq!(
            programs("if test -f /x; then systemctl restart app; fi"),
            ["systemctl"]
        );
    }
}
