//! The engine: runs a runbook's steps in order, each step's checks concurrently, offers the
//! actions that fit, waits, and emits an event for everything. It knows nothing of terminals.

pub mod event;
pub mod happened;
pub mod observation;
pub mod reminders;
pub mod resume;
pub mod second;

use crate::approval::{Decision, DecisionKind, Policy};
use crate::backends::Undo;
use crate::backends::reading::{Reading, Verdict};
use crate::backends::{self, Reader};
use crate::expr;
use crate::runbook::{Action, Check, Runbook, Step};
use crate::spec::parse_duration;
use event::{ApprovalOutcome, EventKind, Recorder, WaitOutcome};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use happened::Happened;
use observation::Observation;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
// The runtime's clock: the same as the system's, and one a paused runtime (the fuzz harness) controls.
use tokio::sync::Notify;
use tokio::time::Instant;

pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_WAIT_EVERY: Duration = Duration::from_secs(30);
/// The exit code of a run whose timeline could not be written whole (disk full, permissions):
/// the most pressing, since the record the engineer relies on has a gap.
pub const EXIT_TIMELINE_INCOMPLETE: i32 = 5;

/// How fast waits go: for real, or compressed for a drill.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    RealTime,
    /// Each wait interval takes this long instead, and a wait's timeout allows as many polls.
    Compressed(Duration),
}

/// Ctrl-C during a wait stops the wait; the signal handler tells the engine through this.
#[derive(Default)]
pub struct Interrupts {
    waiting: AtomicBool,
    stop_wait: Notify,
}

impl Interrupts {
    /// True when the interruption was taken by a wait (the run goes on).
    pub fn interrupt_wait(&self) -> bool {
        if self.waiting.load(Ordering::SeqCst) {
            self.stop_wait.notify_one();
            true
        } else {
            false
        }
    }
}

/// The values templates and conditions read.
pub struct Context {
    pub params: serde_json::Map<String, Value>,
    pub endpoints: serde_json::Map<String, Value>,
    pub incident: Value,
    pub checks: BTreeMap<String, Observation>,
    /// What the actions came to and what was said of the cause, for messages.
    pub happened: Happened,
}

impl Context {
    pub fn to_value(&self) -> Value {
        let checks: serde_json::Map<String, Value> = self
            .checks
            .iter()
            .map(|(k, o)| (k.clone(), o.context()))
            .collect();
        let mut incident = self.incident.clone();
        self.happened
            .fill_incident(&mut incident, jiff::Timestamp::now());
        json!({
            "params": self.params, "endpoints": self.endpoints, "incident": incident,
            "checks": checks, "actions": self.happened.actions(),
        })
    }
}

/// The `incident` templates read, before what happened is added to it.
pub fn incident_value(id: &str, opened: &EventKind, started: jiff::Timestamp) -> Value {
    let EventKind::IncidentOpened {
        runbook,
        title,
        severity,
        alert,
        ..
    } = opened
    else {
        return json!({ "id": id, "started": started });
    };
    json!({
        "id": id, "severity": severity, "started": started, "runbook": runbook,
        "title": title, "alert": alert,
    })
}

pub struct Settings {
    pub policy: Policy,
    pub default_timeout: Duration,
    pub pace: Pace,
    /// The engineer's cap on any wait.
    pub max_wait: Option<Duration>,
    /// The systems actions change; none in a drill.
    pub systems: Option<Arc<backends::Systems>>,
    /// A drill's replica counts by deployment, for its plans.
    pub known_replicas: BTreeMap<String, i64>,
    /// Who runs oncall, for what a request records of its author.
    pub user: String,
    /// With a team store, a live run sends an action only while it holds its incident's lease.
    pub lease: Option<crate::store::share::Gate>,
    /// Which actions need a second person's approval besides `approval: two-person`.
    pub second: second::Rule,
}

/// The id a rehearsed acknowledgement's silence stands under, for the expiry planned after it.
pub const REHEARSED_SILENCE: &str = "SILENCE_ID";

/// What a run came to, for the exit code.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub aborted: bool,
    pub stopped_for_terminal: bool,
    pub actions_failed: usize,
    pub waits_unmet: usize,
    /// Stopped at an action a killed run may have applied, left for an explicit answer.
    pub unconfirmed: bool,
    /// Actions whose target was not there (a deployment or configmap the API server does not have).
    pub targets_missing: usize,
    /// Kubernetes writes the API server refused in a server-side dry run.
    pub refused: usize,
    /// Stopped because the run no longer drives its incident (or cannot confirm it does): why.
    pub not_driving: Option<String>,
}

pub struct Engine<'a, R: Reader> {
    runbook: &'a Runbook,
    reader: &'a R,
    settings: Settings,
    recorder: Recorder,
    interrupts: Arc<Interrupts>,
    client: reqwest::Client,
    pub ctx: Context,
    outcome: Outcome,
    /// What this incident's actions changed: the level before the incident, the silences.
    undo: Undo,
    /// Where a resumed run starts (0: the first step), and what it knows of that step's actions.
    first_step: usize,
    prior: BTreeMap<String, Prior>,
}

/// What a resumed run knows of an action of the step it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    /// Applied with success: not offered again.
    Applied { at: jiff::Timestamp },
    /// Started, with no result recorded: it may have been applied.
    Unconfirmed { started: jiff::Timestamp },
}

/// Where a resumed run takes up its incident.
pub struct Resumption {
    /// The index of the step it starts at.
    pub step: usize,
    pub undo: Undo,
    /// By action id, for that step's actions.
    pub prior: BTreeMap<String, Prior>,
    /// What the steps before it came to (failed actions, unmet waits): the exit code covers
    /// the whole incident.
    pub outcome: Outcome,
}

enum Flow {
    Continue,
    Stop,
}

/// What came of offering an action once.
enum Offered {
    Done(Flow),
    /// The engineer asked to re-check before deciding.
    Recheck,
    /// The engineer typed another target (a pid from the table) to plan instead.
    Picked(String),
}

impl<'a, R: Reader> Engine<'a, R> {
    pub fn new(
        runbook: &'a Runbook,
        reader: &'a R,
        settings: Settings,
        recorder: Recorder,
        interrupts: Arc<Interrupts>,
        ctx: Context,
    ) -> Self {
        Engine {
            runbook,
            reader,
            settings,
            recorder,
            interrupts,
            client: backends::http_client(),
            ctx,
            outcome: Outcome::default(),
            undo: Undo::default(),
            first_step: 0,
            prior: BTreeMap::new(),
        }
    }

    /// Takes up an incident where it stopped, with what its actions changed.
    pub fn resuming(mut self, from: Resumption) -> Self {
        self.first_step = from.step;
        self.undo = from.undo;
        self.prior = from.prior;
        self.outcome = from.outcome;
        self
    }

    /// Runs every step (from where a resumed run starts) and returns the exit code (also
    /// recorded as `run_finished`).
    pub async fn run(mut self) -> i32 {
        let runbook = self.runbook;
        for (index, step) in runbook.steps.iter().enumerate().skip(self.first_step) {
            if let Flow::Stop = self.step(index + 1, step).await {
                break;
            }
        }
        let (mut code, mut outcome) = exit_code(&self.ctx.checks, &self.outcome);
        if let Some(failure) = self.recorder.failure() {
            code = EXIT_TIMELINE_INCOMPLETE;
            outcome = format!("the timeline is incomplete: {failure}; {outcome}");
        }
        self.record(EventKind::RunFinished {
            exit_code: code,
            outcome,
        });
        code
    }

    async fn step(&mut self, number: usize, step: &Step) -> Flow {
        let step_id = step.id.value.clone();
        self.record(EventKind::StepStarted {
            step: step_id.clone(),
            number,
            title: step.title.clone().unwrap_or_else(|| step_id.clone()),
            guidance: step.guidance.clone(),
        });
        // A condition on earlier observations is decided before this step's checks run.
        let own: Vec<&str> = step.checks.iter().map(|c| c.id.value.as_str()).collect();
        if let Some(when) = &step.when
            && !reads_any(&when.value, &own)
            && let Some(reason) = self.unmet(&when.value)
        {
            self.record(EventKind::StepSkipped {
                step: step_id,
                reason,
            });
            return Flow::Continue;
        }
        self.run_checks(&step_id, &step.checks).await;
        if let Some(when) = &step.when
            && let Some(reason) = self.unmet(&when.value)
        {
            self.record(EventKind::StepSkipped {
                step: step_id,
                reason,
            });
            return Flow::Continue;
        }
        for name in &step.messages {
            let template = &self.runbook.messages[&name.value].value;
            let text = expr::render_message(&name.value, template, &self.ctx.to_value());
            self.record(EventKind::Message {
                step: step_id.clone(),
                name: name.value.clone(),
                text,
            });
        }
        for action in &step.actions {
            if let Flow::Stop = self.action(step, action).await {
                return Flow::Stop;
            }
        }
        if let Some(wait) = &step.wait {
            self.wait(&step_id, wait).await;
        }
        Flow::Continue
    }

    /// Records an event, and keeps what messages read of it.
    fn record(&mut self, kind: EventKind) {
        let event = self.recorder.emit(kind);
        self.ctx.happened.absorb(event.ts, &event.kind);
    }

    /// None when the condition holds; otherwise why the step or action is skipped.
    fn unmet(&self, condition: &str) -> Option<String> {
        // MiniJinja orders none below every number, so `checks.x.value < 1` would hold for a check
        // that errored or never ran. A condition on a value that is not there is not met.
        let why = |id: &str| match self.ctx.checks.get(id) {
            None => format!("{id} did not run (its step was skipped)"),
            Some(o) if o.verdict == Verdict::Error => format!(
                "{id} could not be measured ({})",
                o.reason.as_deref().unwrap_or("no answer")
            ),
            Some(_) => format!("{id} had no value (no data)"),
        };
        if let Some(missing) = self.missing_value(condition) {
            return Some(format!("{}: {condition}", why(&missing)));
        }
        match expr::condition(condition, &self.ctx.to_value()) {
            Ok(true) => None,
            // Not met because a check it reads could not be measured is not "all is well".
            Ok(false) => Some(match self.unmeasured(condition) {
                Some(id) => format!("{}: {condition}", why(&id)),
                None => format!("condition not met: {condition}"),
            }),
            Err(err) => Some(format!(
                "condition could not be evaluated ({err}): {condition}"
            )),
        }
    }

    /// The first check a condition reads that errored or did not run.
    fn unmeasured(&self, condition: &str) -> Option<String> {
        self.first_check_read(condition, |_, o| {
            o.is_none_or(|o| o.verdict == Verdict::Error)
        })
    }

    /// The first check whose `checks.X.value` a condition reads and that has no value.
    fn missing_value(&self, condition: &str) -> Option<String> {
        self.first_check_read(condition, |field, o| {
            field == Some("value") && o.is_none_or(|o| o.value.is_null())
        })
    }

    /// The first check a condition reads (`checks.ID` or `checks.ID.FIELD`) for which `matches`
    /// holds, given the field read and the check's observation (None: it did not run).
    fn first_check_read(
        &self,
        condition: &str,
        matches: impl Fn(Option<&str>, Option<&Observation>) -> bool,
    ) -> Option<String> {
        let names = expr::referenced_names(condition, expr::Kind::Expression).ok()?;
        names.into_iter().find_map(|name| {
            let mut parts = name.split('.');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("checks"), Some(id), field) if matches(field, self.ctx.checks.get(id)) => {
                    Some(id.to_string())
                }
                _ => None,
            }
        })
    }

    async fn run_checks(&mut self, step: &str, checks: &[Check]) {
        for check in checks {
            self.record(EventKind::CheckStarted {
                step: step.into(),
                check: check.id.value.clone(),
                title: title(check),
            });
        }
        let ctx = self.ctx.to_value();
        let mut running: FuturesUnordered<_> = checks
            .iter()
            .map(|check| self.observe(check, &ctx))
            .collect();
        let mut done = Vec::new();
        while let Some(observation) = running.next().await {
            self.recorder.emit(EventKind::CheckFinished {
                step: step.into(),
                observation: observation.clone(),
            });
            done.push(observation);
        }
        drop(running);
        for observation in done {
            self.ctx
                .checks
                .insert(observation.check.clone(), observation);
        }
    }

    fn timeout(&self, check: &Check) -> Duration {
        check
            .timeout
            .as_ref()
            .and_then(|t| parse_duration(&t.value).ok())
            .unwrap_or(self.settings.default_timeout)
    }

    /// Runs one check within its timeout and judges it by the runbook's thresholds.
    async fn observe(&self, check: &Check, ctx: &Value) -> Observation {
        let timeout = self.timeout(check);
        let started = Instant::now();
        // The backends honour the timeout themselves; this is the backstop that keeps a run moving.
        let read = tokio::time::timeout(
            timeout + Duration::from_millis(250),
            self.reader.read(&check.id.value, &check.kind, ctx, timeout),
        )
        .await;
        let millis = started.elapsed().as_millis() as u64;
        let mut observation = Observation {
            check: check.id.value.clone(),
            title: title(check),
            backend: check.kind.backend().into(),
            verdict: Verdict::Ok,
            value: Value::Null,
            unit: check.unit.clone(),
            table: None,
            text: None,
            reason: None,
            no_answer: None,
            millis,
        };
        match read {
            Err(_) => {
                let cause = format!("no answer within {}", backends::humanize(timeout));
                observation.verdict = Verdict::Error;
                observation.reason = Some(cause.clone());
                observation.no_answer = Some(backends::NoAnswer {
                    system: None,
                    cause,
                    unusable: false,
                });
            }
            Ok(Err(cause)) => {
                observation.verdict = Verdict::Error;
                observation.reason = Some(cause.to_string());
                observation.no_answer = cause.no_answer();
            }
            Ok(Ok(mut reading)) => {
                let (verdict, reason) = judge(check, &mut reading, ctx);
                observation.verdict = verdict;
                observation.reason = reason;
                observation.value = reading.value;
                observation.table = reading.table;
                observation.text = reading.text;
                observation.millis = reading.took_ms.unwrap_or(millis);
            }
        }
        observation
    }

    /// Offers one action: plans it, asks, and applies it with an approval. A re-check runs the
    /// step's checks again and plans and asks once more.
    /// A target typed at the prompt (another pid) is planned in place of the runbook's, recorded
    /// as a plan of its own, and asked about again.
    async fn action(&mut self, step: &Step, action: &Action) -> Flow {
        let mut pick = None;
        loop {
            match self.offer(&step.id.value, action, pick.as_deref()).await {
                Offered::Done(flow) => return flow,
                Offered::Picked(target) => pick = Some(target),
                Offered::Recheck => {
                    self.record(EventKind::Rechecked {
                        step: step.id.value.clone(),
                        action: action.id.value.clone(),
                    });
                    self.run_checks(&step.id.value, &step.checks).await;
                }
            }
        }
    }

    /// The tables the checks read so far, in the runbook's order, with their kinds.
    fn readings(&self) -> Vec<(&'a backends::kinds::CheckKind, &backends::reading::Table)> {
        let runbook = self.runbook;
        runbook
            .steps_checks()
            .filter_map(|(_, check)| {
                let table = self.ctx.checks.get(&check.id.value)?.table.as_ref()?;
                Some((&check.kind, table))
            })
            .collect()
    }

    /// The action planned against the systems as they are now.
    async fn prepare(
        &self,
        action: &Action,
        pick: Option<&str>,
    ) -> Result<backends::Prepared, backends::BackendError> {
        let with = backends::PlanContext {
            systems: self.settings.systems.as_deref(),
            undo: &self.undo,
            known_replicas: &self.settings.known_replicas,
            user: &self.settings.user,
            messages: &self.runbook.messages,
            server_dry_run: matches!(
                self.settings.policy,
                crate::approval::Policy::DryRun { server: true }
            ),
            readings: self.readings(),
            pick,
        };
        action.kind.prepare(&self.ctx.to_value(), &with).await
    }

    /// An action whose request could not be prepared (`what`) failed.
    fn unprepared(
        &mut self,
        step: &str,
        action: String,
        what: &str,
        err: backends::BackendError,
    ) -> Offered {
        self.outcome.actions_failed += 1;
        self.not_offered(step, action, None, format!("cannot prepare {what}: {err}"))
    }

    /// Records why an action is not offered; the run goes on.
    fn not_offered(
        &mut self,
        step: &str,
        action: String,
        unverified: Option<String>,
        reason: String,
    ) -> Offered {
        self.record(EventKind::ActionNotOffered {
            step: step.into(),
            action,
            unverified,
            reason,
        });
        Offered::Done(Flow::Continue)
    }

    /// Records that an action is not offered because the run does not drive its incident, and
    /// stops: what follows is the driver's to do.
    fn not_driving(&mut self, step: &str, action: String, why: String) -> Offered {
        self.not_offered(step, action, None, format!("not sent: {why}"));
        self.outcome.not_driving = Some(why);
        Offered::Done(Flow::Stop)
    }

    async fn offer(&mut self, step: &str, action: &Action, pick: Option<&str>) -> Offered {
        let id = action.id.value.clone();
        let prior = self.prior.get(&id).copied();
        match prior {
            Some(Prior::Applied { at }) => {
                return self.not_offered(
                    step,
                    id,
                    None,
                    format!(
                        "applied at {} before the run stopped: not offered again",
                        crate::view::clock_seconds(&at)
                    ),
                );
            }
            Some(Prior::Unconfirmed { started }) => {
                self.record(EventKind::ActionUnconfirmed {
                    step: step.into(),
                    action: id.clone(),
                    started,
                });
            }
            None => {}
        }
        // A revert waits for the verification of what it undoes: a mitigation that did not work
        // is not taken back (nor its acknowledgement).
        if let Some(after) = &action.after
            && let Err(reason) = self.ctx.happened.verification(&after.value)
        {
            return self.not_offered(step, id, Some(after.value.clone()), reason);
        }
        if let Some(when) = &action.when
            && let Some(reason) = self.unmet(&when.value)
        {
            return self.not_offered(step, id, None, reason);
        }
        let prepared = match self.prepare(action, pick).await {
            Ok(prepared) => prepared,
            Err(err) if err.nothing_to_do() => {
                return self.not_offered(step, id, None, err.to_string());
            }
            Err(err) => return self.unprepared(step, id, "the request", err),
        };
        let title = action.title.clone().unwrap_or_else(|| id.clone());
        self.record(EventKind::ActionPlanned {
            step: step.into(),
            action: id.clone(),
            title: title.clone(),
            kind: action.kind.key().into(),
            plan: prepared.plan.clone(),
        });
        if prepared.plan.server.as_ref().is_some_and(|s| !s.accepted) {
            self.outcome.refused += 1;
        }
        // What it changes is not there: it would fail. A rehearsal shows it; a live run does not send it.
        if let Some(missing) = &prepared.plan.missing {
            self.outcome.targets_missing += 1;
            let rehearsal = matches!(
                self.settings.policy,
                crate::approval::Policy::DryRun { .. } | crate::approval::Policy::Drill { .. }
            );
            if !rehearsal {
                return self.not_offered(step, id, None, format!("not sent: {missing}"));
            }
        }
        // Nobody is asked to approve what this run may not send.
        if let Some(gate) = &self.settings.lease
            && let Err(why) = gate.ready().await
        {
            return self.not_driving(step, id, why);
        }
        let policy = self.settings.policy;
        let production = prepared.plan.production.as_deref();
        let decision = if let Some(Prior::Unconfirmed { .. }) = prior {
            policy
                .decide_unconfirmed(
                    format!("  → {title} again (it may have been applied)?"),
                    production,
                    prepared.pick.clone(),
                )
                .await
        } else {
            policy
                .decide(format!("  → {title}?"), production, prepared.pick.clone())
                .await
        };
        let kind = match &decision {
            Decision::Recheck => return Offered::Recheck,
            Decision::Pick(target) => return Offered::Picked(target.clone()),
            Decision::Apply(_) => DecisionKind::Approved,
            Decision::Other(kind) => *kind,
        };
        self.record(EventKind::ActionDecided {
            step: step.into(),
            action: id.clone(),
            decision: kind,
            // The name typed (or not, under --yes) is part of an approval only.
            by: self
                .settings
                .policy
                .by(production.filter(|_| kind == DecisionKind::Approved)),
            user: self.settings.user.clone(),
        });
        let mut prepared = prepared;
        if self.needs_second(action, &prepared.plan) {
            match &decision {
                Decision::Apply(_) => {
                    let Some((by, approved)) = self
                        .second_approval(step, &id, &title, &prepared.plan)
                        .await
                    else {
                        return Offered::Done(Flow::Continue);
                    };
                    // What is sent is what both approved: read again right before sending.
                    let asked = second::plan_hash(&prepared.plan);
                    match self.prepare(action, pick).await {
                        Ok(now)
                            if second::plan_hash(&now.plan) == approved && approved == asked =>
                        {
                            prepared = now;
                        }
                        Ok(now) => {
                            self.record(EventKind::ApprovalEnded {
                                step: step.into(),
                                action: id.clone(),
                                hash: second::plan_hash(&now.plan),
                                outcome: ApprovalOutcome::PlanChanged,
                                by,
                                detail: second::difference(&prepared.plan, &now.plan),
                            });
                            return Offered::Recheck;
                        }
                        Err(err) => {
                            return self.unprepared(step, id, "it again after its approval", err);
                        }
                    }
                }
                Decision::Other(DecisionKind::Rehearsed) => {
                    self.record(EventKind::ApprovalRequested {
                        step: step.into(),
                        action: id.clone(),
                        title: title.clone(),
                        hash: second::plan_hash(&prepared.plan),
                        user: self.settings.user.clone(),
                        host: crate::timeline::host(),
                        timeout_ms: self.approval_timeout(&id).as_millis() as u64,
                        rehearsed: true,
                    });
                }
                _ => {}
            }
        }
        Offered::Done(match decision {
            Decision::Apply(approval) => {
                let lease = match &self.settings.lease {
                    Some(gate) => match gate.ready().await {
                        Ok(epoch) => epoch,
                        Err(why) => return self.not_driving(step, id, why),
                    },
                    None => None,
                };
                self.record(EventKind::ActionStarted {
                    step: step.into(),
                    action: id.clone(),
                    lease,
                });
                // The intent reaches the store before the request leaves, under a lease still
                // this run's: whoever takes the incident over sees it.
                if let Some(gate) = &self.settings.lease
                    && let Err(why) = gate.confirm(lease).await
                {
                    self.record(EventKind::ActionFinished {
                        step: step.into(),
                        action: id,
                        ok: false,
                        detail: format!("not sent: {why}"),
                        millis: 0,
                        effect: None,
                    });
                    self.outcome.not_driving = Some(why);
                    return Offered::Done(Flow::Stop);
                }
                let timeout = action
                    .timeout
                    .as_ref()
                    .and_then(|t| parse_duration(&t.value).ok())
                    .unwrap_or(DEFAULT_ACTION_TIMEOUT);
                let started = Instant::now();
                let result = prepared
                    .apply(
                        approval,
                        &self.client,
                        self.settings.systems.as_deref(),
                        timeout,
                    )
                    .await;
                let millis = started.elapsed().as_millis() as u64;
                let (ok, detail, effect) = match result {
                    Ok(applied) => {
                        self.undo.planned(&prepared.plan);
                        if let Some(effect) = &applied.effect {
                            self.undo.applied(effect);
                        }
                        (true, applied.detail, applied.effect)
                    }
                    Err(err) => {
                        self.outcome.actions_failed += 1;
                        (false, err.to_string(), None)
                    }
                };
                self.prior.remove(&id);
                self.record(EventKind::ActionFinished {
                    step: step.into(),
                    action: id,
                    ok,
                    detail,
                    millis,
                    effect,
                });
                Flow::Continue
            }
            Decision::Other(DecisionKind::Aborted) => {
                self.outcome.aborted = true;
                Flow::Stop
            }
            Decision::Other(DecisionKind::NoTerminal) => {
                self.outcome.stopped_for_terminal = true;
                Flow::Stop
            }
            // What comes next may depend on whether it happened: only an engineer can say.
            Decision::Other(DecisionKind::Unconfirmed) => {
                self.outcome.unconfirmed = true;
                Flow::Stop
            }
            Decision::Other(DecisionKind::WouldSend | DecisionKind::Rehearsed) => {
                // A rehearsal remembers too, so its restore step shows the same plan a live run
                // would: the level before a scale, and the silence an acknowledgement creates.
                self.undo.planned(&prepared.plan);
                if action.kind.key() == "silence" && kind == DecisionKind::Rehearsed {
                    self.undo.applied(&backends::Effect::SilenceCreated {
                        id: REHEARSED_SILENCE.into(),
                    });
                }
                Flow::Continue
            }
            Decision::Other(_) | Decision::Recheck | Decision::Pick(_) => Flow::Continue,
        })
    }

    async fn wait(&mut self, step: &str, wait: &crate::runbook::Wait) {
        let Some(check) = self.runbook.check(&wait.check.value) else {
            return;
        };
        let every = wait
            .every
            .as_ref()
            .and_then(|e| parse_duration(&e.value).ok())
            .unwrap_or(DEFAULT_WAIT_EVERY);
        let mut timeout = parse_duration(&wait.timeout.value).unwrap_or(Duration::from_secs(1800));
        if let Some(cap) = self.settings.max_wait {
            timeout = timeout.min(cap);
        }
        let as_written = timeout;
        // A dry run sent nothing, so nothing can recover: it polls once and says what it would wait for.
        let once = matches!(self.settings.policy, crate::approval::Policy::DryRun { .. });
        let (every, timeout) = match self.settings.pace {
            Pace::RealTime => (every, timeout),
            // As many polls as the real wait would make, capped so a drill always ends; a drill's
            // wait also ends once its scenario has nothing new to replay (see below).
            Pace::Compressed(tick) => (
                tick,
                tick.mul_f64((timeout.as_secs_f64() / every.as_secs_f64()).min(1000.0)),
            ),
        };
        let replayed = matches!(self.settings.pace, Pace::Compressed(_));
        // Ctrl-C belongs to the wait from the moment the engineer can see it.
        self.interrupts.waiting.store(true, Ordering::SeqCst);
        self.record(EventKind::WaitStarted {
            step: step.into(),
            check: check.id.value.clone(),
            until: wait.until.value.clone(),
            every_ms: every.as_millis() as u64,
            timeout_ms: timeout.as_millis() as u64,
            runbook_timeout_ms: (as_written != timeout).then_some(as_written.as_millis() as u64),
            once,
        });
        let started = Instant::now();
        let outcome = loop {
            let ctx = self.ctx.to_value();
            let polled = tokio::select! {
                observation = self.observe(check, &ctx) => Some(observation),
                _ = self.interrupts.stop_wait.notified() => None,
            };
            let Some(observation) = polled else {
                break WaitOutcome::Stopped;
            };
            let ctx = self.ctx.to_value();
            let met = observation.verdict != Verdict::Error
                && wait_met(&wait.until.value, &observation, ctx);
            self.record(EventKind::WaitPoll {
                step: step.into(),
                observation: observation.clone(),
                elapsed_ms: started.elapsed().as_millis() as u64,
                met,
            });
            self.ctx.checks.insert(check.id.value.clone(), observation);
            if met {
                break WaitOutcome::Met;
            }
            if once {
                break WaitOutcome::NotWaited;
            }
            // Every later poll would read the same: the wait would run out its time unmet.
            if replayed && self.reader.settled(&check.id.value) {
                break WaitOutcome::TimedOut;
            }
            let Some(remaining) = timeout
                .checked_sub(started.elapsed())
                .filter(|r| !r.is_zero())
            else {
                break WaitOutcome::TimedOut;
            };
            tokio::select! {
                _ = tokio::time::sleep(every.min(remaining)) => {}
                _ = self.interrupts.stop_wait.notified() => break WaitOutcome::Stopped,
            }
        };
        self.interrupts.waiting.store(false, Ordering::SeqCst);
        if !matches!(outcome, WaitOutcome::Met | WaitOutcome::NotWaited) {
            self.outcome.waits_unmet += 1;
        }
        let value = self
            .ctx
            .checks
            .get(&check.id.value)
            .map(|o| o.value.clone())
            .unwrap_or_default();
        self.record(EventKind::WaitFinished {
            step: step.into(),
            check: check.id.value.clone(),
            outcome,
            elapsed_ms: started.elapsed().as_millis() as u64,
            value,
        });
    }
}

/// A wait's condition on a poll: on its value, or, for a check with a value per row (GPUs,
/// disks), on every row's. A missing value never satisfies it: `none < 1` holds in MiniJinja.
fn wait_met(until: &str, observation: &Observation, mut ctx: Value) -> bool {
    let values: Vec<Value> = match (&observation.value, &observation.table) {
        (Value::Null, Some(table)) => match table.column("value") {
            Some(col) => table.rows.iter().map(|r| r[col].clone()).collect(),
            None => Vec::new(),
        },
        (Value::Null, None) => Vec::new(),
        (value, _) => vec![value.clone()],
    };
    !values.is_empty()
        && values.into_iter().all(|value| {
            !value.is_null() && {
                ctx["value"] = value;
                expr::condition(until, &ctx).unwrap_or(false)
            }
        })
}

fn title(check: &Check) -> String {
    check
        .title
        .clone()
        .unwrap_or_else(|| check.id.value.clone())
}

/// Whether a condition reads any of the given checks.
fn reads_any(condition: &str, checks: &[&str]) -> bool {
    expr::referenced_names(condition, expr::Kind::Expression)
        .map(|names| {
            names.iter().any(|n| {
                n.strip_prefix("checks.").is_some_and(|rest| {
                    checks.contains(&rest.split('.').next().unwrap_or_default())
                })
            })
        })
        .unwrap_or(true)
}

/// Applies `fail_if` and `warn_if`: to the value, or to each row of a vector with no single value.
fn judge(check: &Check, reading: &mut Reading, ctx: &Value) -> (Verdict, Option<String>) {
    let (mut verdict, mut reason) = match &reading.verdict {
        Some((v, why)) => (*v, Some(why.clone())),
        None => (Verdict::Ok, None),
    };
    let per_row = reading.value.is_null()
        && reading
            .table
            .as_ref()
            .is_some_and(|t| t.column("value").is_some() && !t.rows.is_empty());
    let subjects: Vec<(Value, serde_json::Map<String, Value>)> = if per_row {
        let table = reading.table.as_ref().expect("per_row implies a table");
        let value_col = table
            .column("value")
            .expect("per_row implies a value column");
        table
            .rows
            .iter()
            .map(|row| {
                let labels = table
                    .columns
                    .iter()
                    .zip(row)
                    .filter(|(c, _)| *c != "value")
                    .map(|(c, v)| (c.clone(), v.clone()))
                    .collect();
                (row[value_col].clone(), labels)
            })
            .collect()
    } else if reading.value.is_null() {
        // MiniJinja orders none below every number, so `none < 1` would hold: do not compare.
        if reading.verdict.is_none() && (check.fail_if.is_some() || check.warn_if.is_some()) {
            verdict = Verdict::Warn;
            reason = Some("no value to compare (no data, or NaN)".into());
        }
        Vec::new()
    } else {
        vec![(reading.value.clone(), serde_json::Map::new())]
    };
    // Each row takes the first level whose condition holds; the check takes the worst row.
    let rows = subjects.len();
    let mut levels: Vec<(Verdict, String)> = Vec::with_capacity(rows);
    for (value, labels) in subjects {
        let mut local = ctx.clone();
        local["value"] = value;
        local["labels"] = Value::Object(labels);
        let mut level = (Verdict::Ok, String::new());
        for (candidate, condition) in [
            (Verdict::Fail, &check.fail_if),
            (Verdict::Warn, &check.warn_if),
        ] {
            let Some(condition) = condition else { continue };
            match expr::condition(&condition.value, &local) {
                Ok(true) => {
                    // The verdict says which threshold held; the words say what it compared.
                    level = (
                        candidate,
                        expr::with_values(&condition.value, &local, &check.unit),
                    )
                }
                Ok(false) => continue,
                Err(err) => {
                    level = (
                        Verdict::Error,
                        format!(
                            "threshold could not be evaluated ({err}): {}",
                            condition.value
                        ),
                    )
                }
            }
            break;
        }
        levels.push(level);
    }
    if let Some(worst) = levels.iter().map(|l| l.0).max()
        && worst > verdict
    {
        let at_worst = levels.iter().filter(|l| l.0 == worst).count();
        let why = levels
            .iter()
            .find(|l| l.0 == worst)
            .map(|l| l.1.clone())
            .unwrap_or_default();
        verdict = worst;
        reason = Some(if per_row {
            format!("{why}, in {at_worst} of {rows} rows")
        } else {
            why
        });
    }
    if per_row && let Some(table) = reading.table.as_mut() {
        table.verdicts = levels.into_iter().map(|l| l.0).collect();
    }
    (verdict, reason)
}

/// Exit codes, most pressing first: 4 declined or no terminal, 3 a check could not be read, 1 a
/// check failed (or an action failed, or a wait ran out), 0 all well. The words name every cause.
pub fn exit_code(checks: &BTreeMap<String, Observation>, outcome: &Outcome) -> (i32, String) {
    let mut code = 0;
    let mut causes: Vec<String> = Vec::new();
    let mut cause = |c: i32, words: String| {
        code = code.max(c);
        causes.push(words);
    };
    if outcome.stopped_for_terminal {
        cause(
            4,
            "stopped: an action needs an answer and there is no terminal".into(),
        );
    }
    if outcome.aborted {
        cause(4, "aborted by the engineer".into());
    }
    if let Some(why) = &outcome.not_driving {
        cause(
            4,
            format!("stopped: this run does not drive the incident ({why})"),
        );
    }
    if outcome.unconfirmed {
        cause(4, "stopped: an action may have been applied before the run was cut off; resume without --yes to decide".into());
    }
    let errored: Vec<&Observation> = checks
        .values()
        .filter(|o| o.verdict == Verdict::Error)
        .collect();
    let unreachable = errored.iter().filter(|o| o.no_answer.is_some()).count();
    let answered = errored.len() - unreachable;
    if unreachable > 0 {
        cause(
            3,
            format!("{unreachable} check(s) could not reach their backend"),
        );
    }
    if answered > 0 {
        cause(3, format!("{answered} check(s) got an error for an answer"));
    }
    let fails = checks
        .values()
        .filter(|o| o.verdict == Verdict::Fail)
        .count();
    if fails > 0 {
        cause(1, format!("{fails} check(s) failed"));
    }
    if outcome.actions_failed > 0 {
        cause(1, format!("{} action(s) failed", outcome.actions_failed));
    }
    if outcome.waits_unmet > 0 {
        cause(1, format!("{} wait(s) ended unmet", outcome.waits_unmet));
    }
    if outcome.targets_missing > 0 {
        cause(
            1,
            format!("{} action target(s) not found", outcome.targets_missing),
        );
    }
    if outcome.refused > 0 {
        cause(
            1,
            format!(
                "{} action(s) refused by the API server (dry run)",
                outcome.refused
            ),
        );
    }
    if causes.is_empty() {
        return (0, "all checks ok".into());
    }
    (code, causes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observation with the reason and the no-answer classification `error` gives it.
    fn observed(
        id: &str,
        verdict: Verdict,
        reason: &str,
        error: Option<backends::BackendError>,
    ) -> (String, Observation) {
        let observation = Observation {
            check: id.into(),
            title: id.into(),
            backend: "kube".into(),
            verdict,
            value: Value::Null,
            unit: None,
            table: None,
            text: None,
            reason: Some(reason.into()),
            no_answer: error.and_then(|e| e.no_answer()),
            millis: 1,
        };
        (id.into(), observation)
    }

    #[test]
    fn the_headline_names_every_cause_and_tells_no_answer_from_an_error_answer() {
        let checks: BTreeMap<String, Observation> = [
            observed(
                "pods",
                Verdict::Error,
                "not found: deployments.apps \"x\" not found",
                Some(
                    backends::kube::Error::NotFound {
                        message: "x".into(),
                    }
                    .into(),
                ),
            ),
            observed(
                "rate",
                Verdict::Error,
                "cannot reach http://p:9090: connection refused",
                Some(
                    backends::prometheus::Error::Unreachable(
                        "cannot reach http://p:9090/api/v1/query: connection refused".into(),
                    )
                    .into(),
                ),
            ),
            observed(
                "queue",
                Verdict::Fail,
                "18450 jobs > 5000 jobs (queue_fail)",
                None,
            ),
        ]
        .into_iter()
        .collect();
        let outcome = Outcome {
            actions_failed: 1,
            waits_unmet: 1,
            ..Outcome::default()
        };
        assert_eq!(
            exit_code(&checks, &outcome),
            (
                3,
                "1 check(s) could not reach their backend, 1 check(s) got an error for an answer, 1 check(s) failed, 1 action(s) failed, 1 wait(s) ended unmet".to_string()
            )
        );
        let aborted = Outcome {
            aborted: true,
            ..Outcome::default()
        };
        let (code, words) = exit_code(&checks, &aborted);
        assert_eq!(code, 4);
        assert!(
            words.starts_with("aborted by the engineer, 1 check(s) could not reach"),
            "{words}"
        );
        assert_eq!(
            exit_code(&BTreeMap::new(), &Outcome::default()),
            (0, "all checks ok".into())
        );
    }
}
