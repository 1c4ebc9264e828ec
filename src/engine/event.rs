//! Events: everything the engine does, in order. The timeline, the terminal view and the JSON
//! output are all sinks of the same stream.

use super::observation::Observation;
use crate::redact::Redactor;
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
}

/// The exact request an action would send, for people and for the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub backend: String,
    /// One line: `POST http://gateway/api/jobs/clear-stuck`, or the shell command.
    pub request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approved,
    Skipped,
    Aborted,
    /// Dry-run: shown as it would be sent, not sent.
    WouldSend,
    /// Drill: the engineer's rehearsed answer; nothing is ever sent.
    Rehearsed,
    /// No terminal to ask and no `--yes`: the run stops here.
    NoTerminal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    Met,
    TimedOut,
    Stopped,
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
    },
    StepStarted {
        step: String,
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
    },
    ActionPlanned {
        step: String,
        action: String,
        title: String,
        plan: Plan,
    },
    ActionDecided {
        step: String,
        action: String,
        decision: DecisionKind,
        by: String,
    },
    /// Written before the request is sent, so a crash leaves the intent on record.
    ActionStarted {
        step: String,
        action: String,
    },
    ActionFinished {
        step: String,
        action: String,
        ok: bool,
        detail: String,
        millis: u64,
    },
    WaitStarted {
        step: String,
        check: String,
        until: String,
        every_ms: u64,
        timeout_ms: u64,
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
    Resolved {
        text: String,
        user: String,
    },
}

/// A consumer of events.
pub trait Sink: Send {
    fn emit(&mut self, event: &Event);
}

/// Stamps, redacts and fans out events. Cloned into the Ctrl-C handler so an interruption is
/// recorded through the same path.
#[derive(Clone)]
pub struct Recorder {
    incident: String,
    redactor: Redactor,
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
}

impl Recorder {
    pub fn new(incident: String, redactor: Redactor, sinks: Vec<Box<dyn Sink>>) -> Self {
        Recorder {
            incident,
            redactor,
            sinks: Arc::new(Mutex::new(sinks)),
        }
    }

    pub fn incident(&self) -> &str {
        &self.incident
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn emit(&self, kind: EventKind) {
        let event = Event {
            ts: jiff::Timestamp::now(),
            incident: self.incident.clone(),
            kind,
        };
        let event = self.redact(event);
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            sink.emit(&event);
        }
    }

    /// The event with every secret masked. One that cannot be masked is withheld, never sent raw.
    fn redact(&self, event: Event) -> Event {
        let withheld = |event: &Event| Event {
            ts: event.ts,
            incident: event.incident.clone(),
            kind: EventKind::Note {
                text: "(an event was withheld: its secrets could not be masked)".into(),
                user: "oncall".into(),
            },
        };
        let Ok(original) = serde_json::to_value(&event) else {
            return withheld(&event);
        };
        let mut clean = original.clone();
        self.redactor.value(&mut clean);
        if clean == original {
            return event;
        }
        serde_json::from_value(clean).unwrap_or_else(|_| withheld(&event))
    }
}
