//! Events: everything the engine does, in order. The timeline, the terminal view and the JSON
//! output are all sinks of the same stream.

use super::observation::Observation;
use crate::approval::DecisionKind;
use crate::backends::{Effect, Plan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub ts: jiff::Timestamp,
    pub incident: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Live,
    DryRun,
    Drill,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deadline {
    pub at: jiff::Timestamp,
    pub to: String,
    /// Not said once this holds (the runbook's `unless:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<super::reminders::Fact>,
    /// Said only if this holds (the runbook's `if:`, `severity == P0`).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub only_if: Option<String>,
}

/// What a note says, for the section of the report it belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteTag {
    RootCause,
    Impact,
    WentWell,
    Improve,
    ActionItem,
    Lesson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    Met,
    TimedOut,
    Stopped,
    /// A dry run polled once and went on: nothing was sent, so nothing can recover.
    NotWaited,
}

/// How the driver's wait for a second person's approval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    Approved,
    Rejected,
    TimedOut,
    /// Ctrl-C: the engineer stopped waiting.
    Stopped,
    /// Approved, but the plan read again right before sending is not the one approved.
    PlanChanged,
    /// There is no team store (or it does not answer) to ask through.
    NoStore,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    IncidentOpened {
        runbook: String,
        title: String,
        severity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_time: Option<String>,
        mode: Mode,
        origin: String,
        params: serde_json::Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<String>,
        escalation: Vec<Deadline>,
        user: String,
        /// How many steps the runbook has (0 in timelines written before this field).
        #[serde(default)]
        steps: usize,
        /// The endpoints the run used, for a resumed run.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        endpoints: serde_json::Map<String, Value>,
        /// The alert the run was opened from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<Value>,
        /// What the runbook was when the incident opened, so a resumed run knows it is the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<crate::runbook::Digest>,
        /// The systems the run talks to, by backend: which cluster (context, server, namespace),
        /// which Prometheus, Alertmanager and Docker host. None in a drill.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        targets: std::collections::BTreeMap<String, String>,
        /// `--dry-run=server`: Kubernetes writes were sent with dryRun=All (nothing persisted).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        server_dry_run: bool,
    },
    /// A later run took up this incident where it stopped.
    Resumed {
        user: String,
        host: String,
        from_step: String,
        /// The parts of the runbook that changed since the incident opened, when `--force` went on.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<String>,
        /// The driver whose lease `--take-over` ended (`alice on host-a since 21:04:05`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took_over_from: Option<String>,
    },
    StepStarted {
        step: String,
        /// Its place in the runbook, from 1 (0 in timelines written before this field).
        #[serde(default)]
        number: usize,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guidance: Option<String>,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    CheckStarted {
        step: String,
        check: String,
        title: String,
    },
    CheckFinished {
        step: String,
        observation: Observation,
    },
    ActionNotOffered {
        step: String,
        action: String,
        reason: String,
        /// The step whose wait the action is guarded by (`after:`) when that wait was not met.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unverified: Option<String>,
    },
    ActionPlanned {
        step: String,
        action: String,
        title: String,
        /// The action's kind (`silence`, `k8s_scale`, ...): the report tells acknowledgement from mitigation.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        kind: String,
        plan: Plan,
    },
    ActionDecided {
        step: String,
        action: String,
        decision: DecisionKind,
        /// How the decision was made: `prompt`, `--yes`, `--dry-run`, `drill`.
        by: String,
        /// Who made it (timelines written before this field have none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        user: String,
    },
    /// Written before the request is sent, so a crash leaves the intent on record.
    ActionStarted {
        step: String,
        action: String,
        /// The epoch of the incident's lease in the team store it was sent under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<i64>,
    },
    ActionFinished {
        step: String,
        action: String,
        ok: bool,
        detail: String,
        millis: u64,
        /// What it left that a later action may undo (a silence it created).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect: Option<Effect>,
    },
    /// An action a killed run started and never saw the result of: it may have been applied.
    /// Offered again only on an explicit answer.
    ActionUnconfirmed {
        step: String,
        action: String,
        started: jiff::Timestamp,
    },
    WaitStarted {
        step: String,
        check: String,
        until: String,
        every_ms: u64,
        timeout_ms: u64,
        /// The runbook's own timeout, where the run waits otherwise (a drill's compressed polls).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runbook_timeout_ms: Option<u64>,
        /// A dry run polls once and goes on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        once: bool,
    },
    WaitPoll {
        step: String,
        observation: Observation,
        elapsed_ms: u64,
        met: bool,
    },
    WaitFinished {
        step: String,
        check: String,
        outcome: WaitOutcome,
        elapsed_ms: u64,
        value: Value,
    },
    Message {
        step: String,
        name: String,
        text: String,
    },
    Note {
        text: String,
        user: String,
        /// Where the report puts it: root cause, what went well, an action item, ...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<NoteTag>,
        /// An action item's owner and due date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<String>,
    },
    Interrupted {
        signal: String,
        /// Commands still running that were killed on the way out: their outcome is unknown.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        killed: Vec<u32>,
    },
    RunFinished {
        exit_code: i32,
        outcome: String,
    },
    /// A drill's score card: the scenario's right and harmful mitigations against the decisions.
    DrillScored {
        scenario: String,
        /// Why it is not scored (`--yes`, no terminal); None when it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_scored: Option<String>,
        #[serde(default)]
        right_approved: Vec<String>,
        #[serde(default)]
        harmful_approved: Vec<String>,
        #[serde(default)]
        right_skipped: Vec<String>,
        /// From the drill's start to the first right mitigation approved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_right_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_ms: Option<u64>,
    },
    /// The driver approved an action that needs a second person: the run waits for someone
    /// else's `oncall approve` of this exact plan (`hash`). A drill only rehearses it.
    ApprovalRequested {
        step: String,
        action: String,
        title: String,
        hash: String,
        user: String,
        host: String,
        timeout_ms: u64,
        #[serde(default, skip_serializing_if = "is_false")]
        rehearsed: bool,
    },
    /// Another person's answer to a request, naming the plan they saw (`oncall approve`,
    /// `oncall reject` with its reason).
    ApprovalAnswered {
        step: String,
        action: String,
        hash: String,
        approved: bool,
        user: String,
        host: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// How the driver's wait for a second approval ended; `by`: who answered.
    ApprovalEnded {
        step: String,
        action: String,
        hash: String,
        outcome: ApprovalOutcome,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The engineer asked to run the step's checks again before deciding on an action.
    Rechecked {
        step: String,
        action: String,
    },
    /// A status update is due (the runbook's `updates: { every }`), with the message to post
    /// as it was last rendered in this run.
    UpdateDue {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// An escalation deadline passed while the run was going on.
    EscalationDue {
        severity: String,
        to: String,
        due: jiff::Timestamp,
    },
    /// An escalation deadline passed, but its condition no longer held: not said, and why
    /// (`acknowledged at 10:42 (ack_alert)`).
    EscalationWithheld {
        severity: String,
        to: String,
        due: jiff::Timestamp,
        why: String,
    },
    Resolved {
        text: String,
        user: String,
    },
}

/// What an incident recorded when it opened.
pub struct Opening {
    pub event: Event,
    pub runbook: String,
    pub origin: String,
    pub title: String,
    pub severity: String,
    pub params: serde_json::Map<String, Value>,
    pub endpoints: serde_json::Map<String, Value>,
    pub alert: Option<Value>,
    pub digest: Option<crate::runbook::Digest>,
    pub escalation: Vec<Deadline>,
}

impl Opening {
    pub fn of(events: &[Event]) -> Option<Opening> {
        events.iter().find_map(|event| match &event.kind {
            EventKind::IncidentOpened {
                runbook,
                origin,
                title,
                severity,
                params,
                endpoints,
                alert,
                digest,
                escalation,
                ..
            } => Some(Opening {
                event: event.clone(),
                runbook: runbook.clone(),
                origin: origin.clone(),
                title: title.clone(),
                severity: severity.clone(),
                params: params.clone(),
                endpoints: endpoints.clone(),
                alert: alert.clone(),
                digest: digest.clone(),
                escalation: escalation.clone(),
            }),
            _ => None,
        })
    }
}

/// A consumer of events.
pub trait Sink: Send {
    fn emit(&mut self, event: &Event);

    /// Why this sink lost events, if it did: the first failure.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Stamps, bounds, redacts and fans out events. Cloned into the Ctrl-C handler so an
/// interruption is recorded through the same path.
#[derive(Clone)]
pub struct Recorder {
    incident: String,
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
}

impl Recorder {
    pub fn new(incident: String, sinks: Vec<Box<dyn Sink>>) -> Self {
        Recorder {
            incident,
            sinks: Arc::new(Mutex::new(sinks)),
        }
    }

    pub fn incident(&self) -> &str {
        &self.incident
    }

    /// The first event a sink lost (the timeline could not be written), if any.
    pub fn failure(&self) -> Option<String> {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks.iter().find_map(|s| s.failure())
    }

    /// Returns the event as the sinks got it: stamped, bounded, redacted.
    pub fn emit(&self, mut kind: EventKind) -> Event {
        let redactor = crate::redact::global();
        kind.outside_data(&mut |slot| match slot {
            Slot::Text(text) => {
                bound_text(text);
                redactor.string(text);
            }
            Slot::Value(value) => {
                bound(value, 0);
                redactor.value(value);
            }
        });
        let event = Event {
            ts: jiff::Timestamp::now(),
            incident: self.incident.clone(),
            kind,
        };
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            sink.emit(&event);
        }
        event
    }
}

/// A place in an event that holds values from outside: params, what a system answered, output,
/// rendered text, an engineer's note. Redaction masks these and bounding cuts them; the event's
/// name, ids, verdicts, the runbook's words and the tool's own words are never touched.
pub enum Slot<'a> {
    Text(&'a mut String),
    Value(&'a mut Value),
}

impl Observation {
    fn outside_data(&mut self, f: &mut dyn FnMut(Slot)) {
        f(Slot::Value(&mut self.value));
        if let Some(table) = &mut self.table {
            table
                .rows
                .iter_mut()
                .flatten()
                .for_each(|cell| f(Slot::Value(cell)));
        }
        for text in [&mut self.text, &mut self.reason].into_iter().flatten() {
            f(Slot::Text(text));
        }
        if let Some(no_answer) = &mut self.no_answer {
            f(Slot::Text(&mut no_answer.cause));
            if let Some(system) = &mut no_answer.system {
                f(Slot::Text(system));
            }
        }
    }
}

impl EventKind {
    pub fn outside_data(&mut self, f: &mut dyn FnMut(Slot)) {
        match self {
            EventKind::IncidentOpened {
                params,
                endpoints,
                alert,
                ..
            } => params
                .values_mut()
                .chain(endpoints.values_mut())
                .chain(alert.as_mut())
                .for_each(|v| f(Slot::Value(v))),
            EventKind::CheckFinished { observation, .. }
            | EventKind::WaitPoll { observation, .. } => observation.outside_data(f),
            EventKind::ActionPlanned { plan, .. } => {
                f(Slot::Text(&mut plan.request));
                plan.changes.iter_mut().for_each(|c| f(Slot::Text(c)));
                for value in [&mut plan.body, &mut plan.before].into_iter().flatten() {
                    f(Slot::Value(value));
                }
                for text in [&mut plan.target, &mut plan.on, &mut plan.missing]
                    .into_iter()
                    .flatten()
                {
                    f(Slot::Text(text));
                }
                if let Some(server) = &mut plan.server {
                    f(Slot::Text(&mut server.answer));
                }
            }
            // A skip reason may quote a check's error (what a system answered).
            EventKind::StepSkipped { reason: text, .. }
            | EventKind::ActionNotOffered { reason: text, .. }
            | EventKind::ActionFinished { detail: text, .. }
            | EventKind::Message { text, .. }
            | EventKind::Note { text, .. }
            | EventKind::Resolved { text, .. } => f(Slot::Text(text)),
            // A reason typed by the other person, and what the answer said.
            EventKind::ApprovalAnswered { reason: text, .. }
            | EventKind::ApprovalEnded { detail: text, .. } => f(Slot::Text(text)),
            EventKind::UpdateDue { text, .. } => text.iter_mut().for_each(|t| f(Slot::Text(t))),
            EventKind::WaitFinished { value, .. } => f(Slot::Value(value)),
            // The runbook's words and the tool's own.
            EventKind::StepStarted { .. }
            | EventKind::CheckStarted { .. }
            | EventKind::ActionDecided { .. }
            | EventKind::ActionStarted { .. }
            | EventKind::ActionUnconfirmed { .. }
            | EventKind::Resumed { .. }
            | EventKind::WaitStarted { .. }
            | EventKind::Interrupted { .. }
            | EventKind::EscalationDue { .. }
            | EventKind::EscalationWithheld { .. }
            | EventKind::Rechecked { .. }
            | EventKind::ApprovalRequested { .. }
            | EventKind::RunFinished { .. }
            | EventKind::DrillScored { .. } => {}
        }
    }
}

/// How deep a stored value may nest, counted from the value (an event adds a few levels): well inside what a JSON reader
/// accepts (serde_json stops at 128), so what is written can always be read back.
pub const MAX_DEPTH: usize = 32;
/// The longest text stored whole.
pub const MAX_TEXT: usize = 256 * 1024;

fn bound_text(s: &mut String) {
    if s.len() > MAX_TEXT {
        let cut = s.floor_char_boundary(MAX_TEXT);
        let more = s.len() - cut;
        s.truncate(cut);
        s.push_str(&format!("…[cut: {more} more bytes]"));
    }
}

/// Cuts what is nested too deep or too long, leaving a visible marker.
fn bound(value: &mut Value, depth: usize) {
    match value {
        Value::String(s) => bound_text(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            *value = Value::String(format!("[cut: nested deeper than {MAX_DEPTH} levels]"));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| bound(v, depth + 1)),
        Value::Object(map) => map.values_mut().for_each(|v| bound(v, depth + 1)),
        _ => {}
    }
}
