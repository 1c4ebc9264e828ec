//! `oncall run` and `oncall drill`: one engine, live or on a scenario.

use super::Setup;
use super::resume::Choice;
use crate::approval::Policy;
use crate::backends::{
    Live, Reader, ServiceUrls, Systems, gpu::Gpu, kube::Kube, scenario::ScenarioReader,
};
use crate::config::{Config, key_value};
use crate::engine::event::{Deadline, Event, EventKind, Mode, Recorder, Sink};
use crate::engine::reminders::{Fact, LatestMessages, Reminders, Updates};
use crate::engine::{
    Context, Engine, Interrupts, Pace, Resumption, Settings, incident_value, second,
};
use crate::runbook::{self, Digest, Loaded, Origin, Runbook, validate};
use crate::spec::ScalarValue;
use crate::spec::validate::ProblemList;
use crate::timeline::{Timeline, TimelineSink, user};
use crate::view::{self, json::Collector, terminal::TerminalView};
use serde_json::{Map, Value, json};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PROMETHEUS: &str = "http://localhost:9090";
/// The longest param value, from any source: what goes into queries, URLs and commands.
const MAX_PARAM: usize = 64 * 1024;
/// How long a due escalation waits for the team's store to say what other machines recorded.
const STORE_READ: Duration = Duration::from_secs(5);
/// How long one wait interval takes in a drill.
const DRILL_TICK: Duration = Duration::from_millis(150);

/// `ONCALL_DRILL_PACE=instant`, which `oncall test` sets for its drills (no one watches them):
/// checks take no time and a wait's polls follow each other at once.
fn instant_drill() -> bool {
    std::env::var("ONCALL_DRILL_PACE").is_ok_and(|p| p == "instant")
}

/// A drill's pause between a wait's polls: 150ms, slow enough for an engineer to follow.
fn drill_tick() -> Duration {
    if instant_drill() {
        Duration::from_millis(1)
    } else {
        DRILL_TICK
    }
}

pub struct Request<'a> {
    pub runbook: Option<&'a str>,
    pub params: &'a [String],
    /// Opened from a firing alert: its runbook, and params from its labels.
    pub alert: Option<&'a str>,
    pub mode: Mode,
    pub yes: bool,
    /// `--dry-run=server`: Kubernetes writes go to the API server with dryRun=All.
    pub server_dry_run: bool,
    pub scenario: Option<&'a str>,
    pub timeout: Duration,
    pub max_wait: Option<Duration>,
    /// `--new`: start a new incident even when one of this runbook is open.
    pub new: bool,
}

/// Params and endpoints after defaults, config, scenario and flags. Secret params are registered
/// with the process's redactor on the way.
pub struct Resolved {
    pub params: Map<String, Value>,
    pub endpoints: Map<String, Value>,
}

pub fn resolve_values(
    setup: &Setup,
    config: &Config,
    rb: &Runbook,
    scenario: Option<&runbook::Scenario>,
    alert_labels: Option<&std::collections::BTreeMap<String, String>>,
    flags: &[String],
    require_all: bool,
) -> anyhow::Result<Resolved> {
    let mut params = Map::new();
    for (name, param) in &rb.params {
        let value = config
            .params
            .get(name)
            .or(param.default.as_ref().map(|d| &d.value))
            .map(ScalarValue::to_json);
        if let Some(value) = value {
            params.insert(name.clone(), value);
        }
    }
    if let Some(ns) = &setup.global.namespace
        && rb.params.contains_key("namespace")
    {
        params.insert("namespace".into(), json!(ns));
    }
    // An alert's labels fill the params of the same names (`namespace`, `service`, ...).
    for (name, value) in alert_labels.into_iter().flatten() {
        if rb.params.contains_key(name) {
            params.insert(name.clone(), ScalarValue::parse(value).to_json());
        }
    }
    for (name, value) in scenario.into_iter().flat_map(|s| &s.params) {
        params.insert(name.clone(), value.to_json());
    }
    for flag in flags {
        let (name, value) = key_value(flag).map_err(|e| anyhow::anyhow!("-p {e}"))?;
        if !rb.params.contains_key(&name) {
            anyhow::bail!(
                "-p {name}: runbook '{}' has no param '{name}'; its params: {}",
                rb.id.value,
                rb.params.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        params.insert(name, ScalarValue::parse(&value).to_json());
    }
    for (name, value) in &params {
        let size = value.as_str().map_or(0, str::len);
        if size > MAX_PARAM {
            anyhow::bail!(
                "param '{name}' is {size} bytes long: a param holds at most {} KiB (a name, a namespace, a number)",
                MAX_PARAM / 1024
            );
        }
    }
    // A param whose default is a number takes one: `budget_pct=two` would break every threshold
    // that reads it, later and less clearly. (Not yes/no: YAML 1.1 reads `n` as false.)
    for (name, value) in &params {
        let Some(param) = rb.params.get(name) else {
            continue;
        };
        let Some(default) = param.default.as_ref().map(|d| &d.value) else {
            continue;
        };
        let numeric = matches!(default, ScalarValue::Int(_) | ScalarValue::Float(_));
        if numeric && !value.is_number() {
            let shown = match value.as_str() {
                _ if param.secret => crate::redact::MASK.to_string(),
                Some(text) if text.chars().count() > 40 => {
                    format!("{}…", text.chars().take(40).collect::<String>())
                }
                Some(text) => text.to_string(),
                None => value.to_string(),
            };
            anyhow::bail!(
                "param '{name}' takes a number (its default is {}), not '{shown}'",
                default.to_json()
            );
        }
    }
    let missing: Vec<&String> = rb
        .params
        .keys()
        .filter(|k| !params.contains_key(*k))
        .collect();
    if require_all && !missing.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("-p {m}=VALUE"))
            .collect::<Vec<_>>()
            .join(" ");
        anyhow::bail!("runbook '{}' needs a value for: {list}", rb.id.value);
    }
    for (name, _) in rb.params.iter().filter(|(_, p)| p.secret) {
        let Some(value) = params.get(name) else {
            continue;
        };
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        // An empty secret is one not given: the action that needs it says so.
        if value.is_empty() {
            continue;
        }
        if value.chars().count() < crate::redact::MIN_SECRET {
            anyhow::bail!(
                "param '{name}' is secret, but its value has {} character(s): too short to mask reliably wherever it appears; a secret needs at least {}",
                value.chars().count(),
                crate::redact::MIN_SECRET
            );
        }
        crate::redact::register(&value);
    }

    let mut endpoints = Map::new();
    endpoints.insert("prometheus".into(), json!(DEFAULT_PROMETHEUS));
    endpoints.insert(
        "alertmanager".into(),
        json!(crate::backends::DEFAULT_ALERTMANAGER),
    );
    for (name, endpoint) in &rb.endpoints {
        if let Some(default) = endpoint.default.as_ref().map(|d| &d.value) {
            let value = match default {
                // A default built from params (`k8s://{{ params.namespace }}/api-gateway:8080`)
                // follows them: `-n video` moves the service it reaches with the reads and
                // writes. Each value is percent-encoded, so it cannot change the URL's shape.
                ScalarValue::Text(url) if url.contains("{{") || url.contains("{%") => {
                    let ctx = json!({ "params": params });
                    let url = crate::expr::render_url(url, &ctx).map_err(|e| {
                        anyhow::anyhow!("endpoint '{name}': its default {url}: {e}")
                    })?;
                    json!(url)
                }
                other => other.to_json(),
            };
            // Flags and the config file registered theirs when they were read (`Setup`).
            if let Some(url) = value.as_str() {
                crate::redact::register_url(url);
            }
            endpoints.insert(name.clone(), value);
        }
    }
    for (name, url) in &config.endpoints {
        endpoints.insert(name.clone(), json!(url));
    }
    for (name, url) in scenario.into_iter().flat_map(|s| &s.endpoints) {
        endpoints.insert(name.clone(), json!(url.value));
    }
    if let Some(url) = &setup.global.prometheus_url {
        endpoints.insert("prometheus".into(), json!(url));
    }
    if let Some(url) = &setup.global.alertmanager_url {
        endpoints.insert("alertmanager".into(), json!(url));
    }
    for flag in &setup.global.endpoints {
        let (name, url) = key_value(flag).map_err(|e| anyhow::anyhow!("--endpoint {e}"))?;
        endpoints.insert(name, json!(url));
    }
    // A webhook's URL is its credential, kept off the screen and out of the timeline from the start.
    for name in rb.posted_endpoints() {
        if let Some(url) = endpoints.get(name).and_then(Value::as_str) {
            crate::redact::register_webhook(url);
        }
    }
    for name in rb.endpoints.keys() {
        if !endpoints.contains_key(name) {
            anyhow::bail!(
                "endpoint '{name}' has no URL: pass --endpoint {name}=URL or set it under `endpoints:` in the config file"
            );
        }
    }
    Ok(Resolved { params, endpoints })
}

fn policy(mode: Mode, yes: bool, server: bool) -> Policy {
    let terminal = std::io::stdin().is_terminal();
    match mode {
        Mode::Drill => Policy::Drill {
            ask: terminal && !yes,
        },
        Mode::DryRun => Policy::DryRun { server },
        Mode::Live if yes => Policy::AssumeYes,
        Mode::Live if terminal => Policy::Prompt,
        Mode::Live => Policy::NoTerminal,
    }
}

/// Alertmanager's base URL: the flag, an `--endpoint alertmanager=`, the config file, or the default.
pub fn alertmanager_base(setup: &Setup, config: &Config) -> String {
    let from_flags = setup
        .global
        .endpoints
        .iter()
        .filter_map(|e| key_value(e).ok())
        .find(|(k, _)| k == "alertmanager")
        .map(|(_, v)| v);
    setup
        .global
        .alertmanager_url
        .clone()
        .or(from_flags)
        .or_else(|| config.endpoints.get("alertmanager").cloned())
        .unwrap_or_else(|| crate::backends::DEFAULT_ALERTMANAGER.into())
}

/// The firing alert a run is opened from.
async fn firing_alert(
    setup: &Setup,
    config: &Config,
    name: &str,
) -> anyhow::Result<crate::backends::alertmanager::Alert> {
    let base = alertmanager_base(setup, config);
    let matchers = std::collections::BTreeMap::from([("alertname".to_string(), name.to_string())]);
    // Silenced too: a second responder opens the runbook of an alert someone acknowledged.
    let alerts = crate::backends::alertmanager::firing(
        &crate::backends::http_client(),
        &base,
        &matchers,
        crate::backends::alertmanager::Which::All,
        Duration::from_secs(10),
    )
    .await?;
    alerts.into_iter().next().ok_or_else(|| {
        anyhow::anyhow!(
            "no firing alert named {name} in Alertmanager at {base}; `oncall alerts` lists them"
        )
    })
}

pub async fn run(setup: &Setup, req: Request<'_>) -> anyhow::Result<i32> {
    let config = setup.config()?;
    let catalog = setup.catalog();
    let alert = match req.alert {
        Some(name) => Some(firing_alert(setup, &config, name).await?),
        None => None,
    };
    let id = match (req.runbook, &alert) {
        (Some(id), _) => id.to_string(),
        (None, Some(alert)) => catalog.for_alert(&alert.name).ok_or_else(|| {
            anyhow::anyhow!(
                "no runbook handles alert {}: add it to a runbook's `alerts:`",
                alert.name
            )
        })?,
        (None, None) => anyhow::bail!(
            "which runbook? `oncall run RUNBOOK` or `oncall run --alert NAME`; `oncall list` shows them"
        ),
    };
    let Loaded {
        runbook: rb,
        source,
    } = runbook::resolve(&catalog, &id)?;
    let scenario = match req.mode {
        Mode::Drill => Some(pick_scenario(setup, &rb, req.scenario)?),
        _ => None,
    };
    let values = resolve_values(
        setup,
        &config,
        &rb,
        scenario.as_ref().map(|(_, s)| s),
        alert.as_ref().map(|a| &a.labels),
        req.params,
        true,
    )?;
    if req.mode == Mode::Live
        && !req.new
        && let Some((open, holder)) = super::resume::open_incident_of(setup, &rb).await?
    {
        match super::resume::second_responder(setup, &open, holder.as_ref(), &rb) {
            Choice::New => {}
            Choice::Quit(code) => return Ok(code),
            Choice::Follow => {
                return super::follow::run(setup, Some(&open.id), crate::store::Until::Finished)
                    .await;
            }
            Choice::Resume => {
                let resume = super::resume::Request {
                    incident: Some(&open.id),
                    params: req.params,
                    yes: req.yes,
                    force: false,
                    take_over: false,
                    timeout: req.timeout,
                    max_wait: req.max_wait,
                };
                return super::resume::run(setup, resume).await;
            }
        }
    }
    let shared = setup.store_settings()?;
    if req.mode == Mode::Live {
        refuse_second_without_store(setup, &rb, shared.is_some())?;
    }
    // A drill reads no cluster; a run that would read one with a context the kubeconfig lacks
    // would only collect errors.
    if req.mode != Mode::Drill
        && let Some(why) = kube(setup, &config).unknown_context()
    {
        anyhow::bail!("{why}: nothing was opened");
    }
    let store = setup.store();
    let now = jiff::Zoned::now();
    let (incident, timeline) = store.create(&rb.id.value, &now)?;
    let screen = Screen::new(
        setup,
        &rb,
        incident.clone(),
        timeline,
        None,
        &[],
        shared.map(Driving::new),
    );

    // The response time counts from when the alert fired, not from when the run opened: a
    // deadline already past is said at once. A start in the future (a skewed clock) counts from now.
    let clock_from = alert
        .as_ref()
        .and_then(|a| a.starts_at.parse::<jiff::Timestamp>().ok())
        .filter(|t| *t < now.timestamp())
        .unwrap_or_else(|| now.timestamp());
    let escalation = rb
        .escalation
        .iter()
        .filter_map(|e| {
            let after = crate::spec::parse_duration(&e.after.value).ok()?;
            let at = clock_from
                .checked_add(jiff::SignedDuration::try_from(after).ok()?)
                .ok()?;
            Some(Deadline {
                at,
                to: e.to.clone(),
                unless: e.unless.as_ref().and_then(|u| Fact::parse(&u.value)),
                only_if: e.only_if.as_ref().map(|c| c.value.trim().to_string()),
            })
        })
        .collect::<Vec<_>>();
    let alert = alert
        .as_ref()
        .map(|a| json!({ "name": a.name, "labels": a.labels, "summary": a.summary, "starts_at": a.starts_at }));
    let origin = match &source.origin {
        // Absolute, so `oncall resume` finds the same file from any folder.
        Origin::File(path) => std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string(),
        Origin::Bundled => source.origin.to_string(),
    };
    // One cluster for the run: the header names the context its plans and writes use.
    let cluster = kube(setup, &config);
    let opened = EventKind::IncidentOpened {
        runbook: rb.id.value.clone(),
        title: rb.title.clone(),
        severity: rb.severity.value.clone(),
        response_time: runbook::response_time(&rb.severity.value).map(str::to_string),
        mode: req.mode,
        origin,
        params: values.params.clone(),
        scenario: scenario.as_ref().map(|(name, _)| name.clone()),
        escalation: escalation.clone(),
        user: user(),
        steps: rb.steps.len(),
        endpoints: values.endpoints.clone(),
        alert: alert.clone(),
        digest: Some(Digest::of(&source.text)),
        targets: targets(&cluster, &rb, &values.endpoints, req.mode),
        server_dry_run: req.server_dry_run,
    };
    // Started when the timeline says it opened, so a message re-rendered later reads the same.
    let opened = screen.recorder.emit(opened);
    let incident_fields = incident_value(&incident, &opened.kind, opened.ts);
    let ctx = Context {
        params: values.params,
        endpoints: values.endpoints,
        incident: incident_fields,
        checks: Default::default(),
        happened: Default::default(),
    };
    let known_replicas = scenario
        .as_ref()
        .map(|(_, s)| {
            s.deployments
                .iter()
                .map(|(name, count)| (name.clone(), count.value))
                .collect()
        })
        .unwrap_or_default();
    let how = How {
        mode: req.mode,
        yes: req.yes,
        kube: cluster,
        server_dry_run: req.server_dry_run,
        timeout: req.timeout,
        max_wait: req.max_wait,
    };
    screen
        .run(
            setup,
            &rb,
            how,
            escalation,
            ctx,
            scenario.map(|(_, s)| (s, known_replicas)),
            None,
        )
        .await
}

/// The systems a run of this runbook talks to, by backend, for the header and the record: the
/// Kubernetes context with its server and namespace, the Prometheus and Alertmanager URLs, the
/// Docker host. A drill talks to none.
pub fn targets(
    kube: &Kube,
    rb: &Runbook,
    endpoints: &Map<String, Value>,
    mode: Mode,
) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    if mode == Mode::Drill {
        return found;
    }
    let checks = rb.steps_checks().map(|(_, c)| c.kind.backend());
    let actions = rb.steps.iter().flat_map(|s| &s.actions).map(|a| {
        let key = a.kind.key();
        match key {
            k if k.starts_with("k8s_") => "kubernetes",
            "silence" | "expire_silence" => "alertmanager",
            "docker" | "docker_prune" => "docker",
            other => other,
        }
    });
    let used: std::collections::BTreeSet<&str> = checks.chain(actions).collect();
    let url = |name: &str| {
        endpoints
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if used.contains("kubernetes") {
        found.insert("kubernetes".into(), kube.describe());
    }
    for name in ["prometheus", "alertmanager"] {
        if used.contains(name) {
            found.insert(name.into(), url(name));
        }
    }
    if used.contains("docker") {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        found.insert("docker".into(), host);
    }
    // A URL's password is masked here as everywhere.
    let redactor = crate::redact::global();
    found.values_mut().for_each(|v| *v = redactor.text(v));
    found
}

/// The cluster of `--context` (else the kubeconfig's current one), with the config's production contexts.
pub fn kube(setup: &Setup, config: &Config) -> Kube {
    Kube::new(
        setup.global.context.clone(),
        setup.global.namespace.clone(),
        &config.production_contexts,
    )
}

/// How a run goes: its mode, whether `--yes` approves, its timeouts.
pub struct How {
    pub mode: Mode,
    pub yes: bool,
    /// The run's cluster (made on first use, read once for every plan).
    pub kube: Kube,
    pub server_dry_run: bool,
    pub timeout: Duration,
    pub max_wait: Option<Duration>,
}

/// The systems checks read and actions change, as the flags and the config file name them.
pub fn systems(setup: &Setup, kube: Kube) -> Arc<Systems> {
    Arc::new(Systems {
        kube,
        docker: Default::default(),
        gpu: Gpu {
            library: setup.global.nvml_library.clone(),
        },
        urls: ServiceUrls {
            postgres: setup.global.postgres_url.clone(),
            redis: setup.global.redis_url.clone(),
            nats: setup.global.nats_url.clone(),
        },
    })
}

/// Which actions of this runbook need a second person's approval, from the config file (whose
/// timeout was checked when it was read).
pub fn second_rule(config: &Config, rb: &Runbook) -> second::Rule {
    let two = &config.two_person;
    second::Rule {
        production: two.production,
        every_action: two.severities.contains(&rb.severity.value),
        timeout: two
            .timeout
            .as_deref()
            .and_then(|t| crate::spec::parse_duration(t).ok())
            .unwrap_or(second::DEFAULT_TIMEOUT),
    }
}

/// A live run whose actions need a second person's approval cannot get it without the team
/// store: refused before anything runs.
pub fn refuse_second_without_store(setup: &Setup, rb: &Runbook, store: bool) -> anyhow::Result<()> {
    let rule = second_rule(&setup.config()?, rb);
    if store {
        return Ok(());
    }
    if let Some(action) = rb
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .find(|a| rule.applies_to(a))
    {
        anyhow::bail!(
            "action '{}' of runbook '{}' needs a second person's approval, which goes through the team store, and none is configured: give --store postgres://…, set ONCALL_STORE or write store: in the config file (or rehearse it with `oncall drill` or --dry-run)",
            action.id.value,
            rb.id.value
        );
    }
    Ok(())
}

/// The team's store a run shares its events with and drives its incident through: the
/// session holding the lease already (a resumed run), or none yet.
pub struct Driving {
    pub settings: crate::store::postgres::Settings,
    pub session: Option<crate::store::postgres::Postgres>,
    pub standing: crate::store::share::Standing,
}

impl Driving {
    /// A new incident's: nobody else knows of it, the lease is taken when the store is reached.
    pub fn new(settings: crate::store::postgres::Settings) -> Driving {
        Driving {
            settings,
            session: None,
            standing: crate::store::share::Standing::Alone,
        }
    }
}

/// A run's screen and record once it has an incident: what a new run and a resumed one share.
pub struct Screen {
    pub recorder: Recorder,
    collector: Collector,
    latest_messages: LatestMessages,
    timeline_path: std::path::PathBuf,
    json_out: bool,
    /// With a store: the run's events on their way there, in the background.
    sharing: Option<crate::store::share::Sharing>,
    /// With a store: where it is, for what due escalations read of other machines' events.
    shared: Option<crate::store::postgres::Settings>,
}

impl Screen {
    /// `shown_first`: an event for the screen only, before the rest (a resumed incident's opening).
    /// `before`: a resumed incident's events so far, not shown, for a summary of the whole incident.
    /// `store`: the team's store the events are shared with, read before the incident was opened
    /// (a wrong URL stops the command before it writes anything).
    pub fn new(
        setup: &Setup,
        rb: &Runbook,
        incident: String,
        timeline: Timeline,
        shown_first: Option<&Event>,
        before: &[Event],
        store: Option<Driving>,
    ) -> Screen {
        let timeline_path = timeline.path.clone();
        let shared = store.as_ref().map(|d| d.settings.clone());
        let sharing = store.map(|d| {
            crate::store::share::Sharing::start(
                d.settings,
                setup.store(),
                incident.clone(),
                d.session,
                d.standing,
            )
        });
        let json_out = setup.json();
        let out: Box<dyn std::io::Write + Send> = if json_out {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        let out_is_terminal = if json_out {
            view::stderr_is_terminal()
        } else {
            view::stdout_is_terminal()
        };
        let mut terminal = TerminalView::new(
            out,
            view::use_color(setup.global.color, out_is_terminal),
            view::Fit::new(setup.global.wide, json_out),
            view::stderr_is_terminal(),
            Some(timeline_path.clone()),
            rb.steps.len(),
        );
        if let Some(event) = shown_first {
            terminal.emit(event);
        }
        terminal.remember(before);
        let collector = Collector::default();
        let latest_messages = LatestMessages::default();
        let mut sinks: Vec<Box<dyn Sink>> = vec![
            Box::new(TimelineSink::new(timeline)),
            Box::new(terminal),
            Box::new(latest_messages.clone()),
        ];
        if json_out {
            sinks.push(Box::new(collector.clone()));
        }
        // After the timeline's sink: an event is shared only once it is fsynced here.
        if let Some(sharing) = &sharing {
            sinks.insert(1, Box::new(sharing.sink()));
        }
        Screen {
            recorder: Recorder::new(incident, sinks),
            collector,
            latest_messages,
            timeline_path,
            json_out,
            sharing,
            shared,
        }
    }

    /// Runs the steps with reminders and Ctrl-C handling: on a scenario (with its replica
    /// counts) or on the live systems, from the start or where a resumed run takes up.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        self,
        setup: &Setup,
        rb: &Runbook,
        how: How,
        deadlines: Vec<Deadline>,
        ctx: Context,
        scenario: Option<(runbook::Scenario, std::collections::BTreeMap<String, i64>)>,
        resumption: Option<Resumption>,
    ) -> anyhow::Result<i32> {
        // Nothing is read or sent for an incident whose record could not even begin.
        if let Some(why) = self.recorder.failure() {
            eprintln!(
                "error: the incident's first event could not be written ({why}): stopping before any check or action; free space or choose another --state-dir, then run it again"
            );
            return Ok(crate::engine::EXIT_TIMELINE_INCOMPLETE);
        }
        let updates = rb.updates.as_ref().and_then(|u| {
            let every = crate::spec::parse_duration(&u.every.value).ok()?;
            let message = u.message.as_ref().map(|m| m.value.clone());
            Some((Updates { every, message }, self.latest_messages.clone()))
        });
        let reminders = Reminders::start(
            &self.recorder,
            rb.severity.value.clone(),
            deadlines,
            self.history(),
            updates,
        );
        let interrupts = Arc::new(Interrupts::default());
        self.watch_signals(&interrupts);

        let systems = systems(setup, how.kube);
        let drill = how.mode == Mode::Drill;
        let settings = Settings {
            policy: policy(how.mode, how.yes, how.server_dry_run),
            default_timeout: how.timeout,
            pace: if drill {
                Pace::Compressed(drill_tick())
            } else {
                Pace::RealTime
            },
            max_wait: how.max_wait,
            // A drill never talks to a cluster, not even to read.
            systems: (!drill).then(|| systems.clone()),
            known_replicas: scenario
                .as_ref()
                .map(|(_, known)| known.clone())
                .unwrap_or_default(),
            user: user(),
            // Only what a live run sends needs the incident's lease.
            lease: self
                .sharing
                .as_ref()
                .filter(|_| how.mode == Mode::Live)
                .map(|s| s.gate()),
            second: second_rule(&setup.config()?, rb),
        };
        let recorder = self.recorder.clone();
        let policy = settings.policy;
        let mut scoring = None;
        let code = match scenario {
            Some((scenario, _)) => {
                scoring = Some(Scoring::of(&scenario));
                let reader = ScenarioReader::new(scenario.checks);
                let reader = if instant_drill() {
                    reader.instant()
                } else {
                    reader
                };
                let engine = Engine::new(rb, &reader, settings, recorder, interrupts, ctx);
                drive(engine, resumption).await
            }
            None => {
                let prometheus = ctx.endpoints["prometheus"]
                    .as_str()
                    .unwrap_or(DEFAULT_PROMETHEUS)
                    .to_string();
                let reader = Live::new(prometheus, systems);
                let engine = Engine::new(rb, &reader, settings, recorder, interrupts, ctx);
                drive(engine, resumption).await
            }
        };
        drop(reminders);
        if let Some(scoring) = scoring.filter(|s| !s.correct.is_empty() || !s.harmful.is_empty()) {
            let card = scoring.card(policy, &self.timeline_path);
            self.recorder.emit(card);
        }
        if let Some(sharing) = self.sharing {
            sharing.finish().await;
        }
        if self.json_out {
            self.collector.print_report(&self.timeline_path)?;
        }
        Ok(code)
    }

    /// Where a due escalation reads what its condition waits on: the local timeline, and the
    /// team's store when there is one (what other machines recorded: a `resolve` from Bob's
    /// laptop). A store that does not answer within a few seconds is left out: the reminder is
    /// not held up for it.
    fn history(&self) -> crate::engine::reminders::History {
        let path = self.timeline_path.clone();
        let shared = self
            .shared
            .clone()
            .map(|settings| (settings, self.recorder.incident().to_string()));
        Arc::new(move || {
            let path = path.clone();
            let shared = shared.clone();
            Box::pin(async move {
                let mut all = vec![crate::timeline::read(&path).unwrap_or_default()];
                if let Some((settings, incident)) = shared {
                    let read = async {
                        let pg = settings.connect().await.ok()?;
                        crate::store::Log::read(&pg, &incident, 0).await.ok()
                    };
                    if let Ok(Some(events)) = tokio::time::timeout(STORE_READ, read).await {
                        all.push(events);
                    }
                }
                all
            })
        })
    }

    /// Ctrl-C during a wait stops the wait; otherwise Ctrl-C and SIGTERM record the interruption
    /// (and the JSON report so far) and end the process.
    fn watch_signals(&self, interrupts: &Arc<Interrupts>) {
        let on_signal = {
            let recorder = self.recorder.clone();
            let interrupts = interrupts.clone();
            let collector = self.collector.clone();
            let timeline_path = self.timeline_path.clone();
            let json_out = self.json_out;
            move |signal: &str, code: i32| {
                if signal == "SIGINT" && interrupts.interrupt_wait() {
                    return;
                }
                let killed = crate::backends::shell::kill_running();
                recorder.emit(EventKind::Interrupted {
                    signal: signal.into(),
                    killed,
                });
                if json_out {
                    let _ = collector.print_report(&timeline_path);
                }
                std::process::exit(code);
            }
        };
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => on_signal("SIGINT", 130),
                    _ = term.recv() => on_signal("SIGTERM", 143),
                }
            }
        });
    }
}

/// What a scenario scores: its right and harmful mitigations and the target time.
struct Scoring {
    correct: Vec<String>,
    harmful: Vec<String>,
    target: Option<Duration>,
}

impl Scoring {
    fn of(scenario: &runbook::Scenario) -> Scoring {
        Scoring {
            correct: scenario.correct.iter().map(|s| s.value.clone()).collect(),
            harmful: scenario.harmful.iter().map(|s| s.value.clone()).collect(),
            target: scenario
                .target
                .as_ref()
                .and_then(|t| crate::spec::parse_duration(&t.value).ok()),
        }
    }

    /// The card, from the decisions the timeline holds. Only a drill someone answers is scored.
    fn card(&self, policy: Policy, timeline: &std::path::Path) -> EventKind {
        let events = crate::timeline::read(timeline).unwrap_or_default();
        let scenario = events.iter().find_map(|e| match &e.kind {
            EventKind::IncidentOpened { scenario, .. } => scenario.clone(),
            _ => None,
        });
        let (mut right_approved, mut harmful_approved, mut right_skipped) =
            (vec![], vec![], vec![]);
        let mut first_right_ms = None;
        let scored = matches!(policy, Policy::Drill { ask: true });
        let started = events.first().map(|e| e.ts);
        for event in events.iter().filter(|_| scored) {
            if let EventKind::ActionDecided {
                action, decision, ..
            } = &event.kind
            {
                let approved = *decision == crate::approval::DecisionKind::Rehearsed;
                let skipped = *decision == crate::approval::DecisionKind::Skipped;
                if self.correct.contains(action) && approved {
                    right_approved.push(action.clone());
                    if first_right_ms.is_none()
                        && let Some(started) = started
                    {
                        first_right_ms =
                            Some(event.ts.duration_since(started).as_millis().max(0) as u64);
                    }
                }
                if self.correct.contains(action) && skipped {
                    right_skipped.push(action.clone());
                }
                if self.harmful.contains(action) && approved {
                    harmful_approved.push(action.clone());
                }
            }
        }
        EventKind::DrillScored {
            scenario: scenario.unwrap_or_default(),
            not_scored: (!scored).then(|| {
                "no one answered (--yes, or no terminal): a drill is scored when an engineer decides"
                    .into()
            }),
            right_approved,
            harmful_approved,
            right_skipped,
            first_right_ms,
            target_ms: self.target.map(|t| t.as_millis() as u64),
        }
    }
}

async fn drive<R: Reader>(engine: Engine<'_, R>, resumption: Option<Resumption>) -> i32 {
    match resumption {
        Some(from) => engine.resuming(from).run().await,
        None => engine.run().await,
    }
}

fn pick_scenario(
    setup: &Setup,
    rb: &Runbook,
    name: Option<&str>,
) -> anyhow::Result<(String, runbook::Scenario)> {
    // A file: a recorded incident, or a scenario not in a runbook folder.
    if let Some(file) = name.filter(|n| {
        (n.ends_with(".yaml") || n.ends_with(".yml")) && std::path::Path::new(n).is_file()
    }) {
        let source = runbook::Source::read(std::path::Path::new(file))
            .map_err(|e| anyhow::anyhow!("cannot read the scenario {file}: {e}"))?;
        let scenario = validate::load_scenario(&source, rb).map_err(ProblemList)?;
        let stem = std::path::Path::new(file)
            .file_stem()
            .map_or(file.to_string(), |s| s.to_string_lossy().into_owned());
        return Ok((stem, scenario));
    }
    let available = runbook::scenarios(&rb.id.value, &setup.search);
    let names = || {
        available
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match name {
        Some(name) => available.iter().find(|s| s.name == name).ok_or_else(|| {
            let all: Vec<String> = available.iter().map(|s| s.name.clone()).collect();
            anyhow::anyhow!(
                "runbook '{}' has no scenario '{name}'{}; its scenarios: {}",
                rb.id.value,
                crate::spec::validate::did_you_mean(name, &all),
                names()
            )
        })?,
        None => available.first().ok_or_else(|| {
            anyhow::anyhow!(
                "runbook '{}' has no drill scenarios: add one at runbooks/scenarios/{}/NAME.yaml",
                rb.id.value,
                rb.id.value
            )
        })?,
    };
    let scenario = validate::load_scenario(&chosen.source, rb).map_err(ProblemList)?;
    Ok((chosen.name.clone(), scenario))
}
