//! What the incident's actions came to and what the engineer said of its cause, as messages read
//! them (`actions.ID`, `incident.applied`, `incident.root_cause`, `incident.duration`). A run folds
//! its own events into it as it goes; `oncall message` folds the timeline's: the same fold, so a
//! message re-rendered later reads what the screen read.

use super::event::{Event, EventKind, NoteTag, WaitOutcome};
use crate::approval::DecisionKind;
use crate::backends::kinds::NOT_MITIGATING;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One action as messages see it: `actions.scale_up.status == "applied"`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ActionRecord {
    pub title: String,
    /// Its kind: `k8s_scale`, `silence`, ...
    pub kind: String,
    /// `planned`, `applied`, `failed`, `skipped`, `aborted`, `not_offered`, `would_send`,
    /// `rehearsed`, ...: the decision's name until a result replaces it.
    pub status: String,
    /// The result in words (`HTTP 202`, `replicas 5 → 10`), or why it was not offered.
    pub result: Option<String>,
    /// When it was applied or decided, `10:42`.
    pub at: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Happened {
    actions: BTreeMap<String, ActionRecord>,
    /// Action ids in the order they were applied.
    applied: Vec<String>,
    root_cause: Option<String>,
    resolved: Option<Timestamp>,
    /// By step: how its wait ended last, or None when the step was skipped (its wait never ran).
    waits: BTreeMap<String, Option<WaitOutcome>>,
}

impl Happened {
    pub fn of(events: &[Event]) -> Happened {
        let mut happened = Happened::default();
        for event in events {
            happened.absorb(event.ts, &event.kind);
        }
        happened
    }

    pub fn absorb(&mut self, ts: Timestamp, kind: &EventKind) {
        let at = Some(crate::view::clock(&ts));
        match kind {
            EventKind::ActionPlanned {
                action,
                title,
                kind,
                ..
            } => {
                let record = self.actions.entry(action.clone()).or_default();
                record.title = title.clone();
                record.kind = kind.clone();
                record.status = "planned".into();
            }
            EventKind::ActionNotOffered { action, reason, .. } => {
                let record = self.actions.entry(action.clone()).or_default();
                record.status = "not_offered".into();
                record.result = Some(reason.clone());
            }
            EventKind::ActionDecided {
                action, decision, ..
            } => {
                let record = self.actions.entry(action.clone()).or_default();
                if *decision != DecisionKind::Approved {
                    record.status = crate::view::json_name(decision);
                    record.at = at;
                }
            }
            EventKind::ActionFinished {
                action, ok, detail, ..
            } => {
                let record = self.actions.entry(action.clone()).or_default();
                record.status = if *ok { "applied" } else { "failed" }.into();
                record.result = Some(detail.clone());
                record.at = at;
                if *ok {
                    self.applied.push(action.clone());
                }
            }
            EventKind::Note {
                text,
                tag: Some(NoteTag::RootCause),
                ..
            } => self.root_cause = Some(text.clone()),
            EventKind::Resolved { .. } => self.resolved = self.resolved.or(Some(ts)),
            EventKind::WaitFinished { step, outcome, .. } => {
                self.waits.insert(step.clone(), Some(*outcome));
            }
            EventKind::StepSkipped { step, .. } => {
                self.waits.insert(step.clone(), None);
            }
            _ => {}
        }
    }

    /// Whether the wait of a step was met in this incident (this run, or one it resumes); when
    /// not, why, in words for the timeline and the screen.
    pub fn verification(&self, step: &str) -> Result<(), String> {
        let why = match self.waits.get(step) {
            Some(Some(WaitOutcome::Met)) => return Ok(()),
            Some(Some(WaitOutcome::TimedOut)) => "its wait timed out",
            Some(Some(WaitOutcome::Stopped)) => "its wait was stopped by the engineer",
            // Nothing was sent, so nothing recovered: only a first poll that meets it counts.
            Some(Some(WaitOutcome::NotWaited)) => {
                "a dry run polls once, and that poll did not meet it"
            }
            Some(None) => "its step was skipped",
            None => "its wait did not run",
        };
        Err(format!("verification {step} was not met: {why}"))
    }

    /// `actions`, as templates read it.
    pub fn actions(&self) -> Value {
        json!(self.actions)
    }

    /// Adds what happened to the `incident` a template reads: `applied` (in order, each with its
    /// id, title, kind, result and time), `mitigations` (those of them that change the system, not
    /// an acknowledgement or a notification), `root_cause`, and `duration` from `started` to
    /// resolution or `now`.
    pub fn fill_incident(&self, incident: &mut Value, now: Timestamp) {
        let Value::Object(fields) = incident else {
            return;
        };
        let applied: Vec<(&String, &ActionRecord)> = self
            .applied
            .iter()
            .filter_map(|id| Some((id, self.actions.get(id)?)))
            .collect();
        let entry = |(id, r): &(&String, &ActionRecord)| json!({ "id": id, "title": r.title, "kind": r.kind, "result": r.result, "at": r.at });
        let mitigations: Vec<Value> = applied
            .iter()
            .filter(|(_, r)| !NOT_MITIGATING.contains(&r.kind.as_str()))
            .map(entry)
            .collect();
        let applied: Vec<Value> = applied.iter().map(entry).collect();
        let started = fields
            .get("started")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok());
        let duration = started.map(|started| {
            let end = self.resolved.unwrap_or(now);
            crate::view::duration(end.duration_since(started).as_secs())
        });
        fields.insert("applied".into(), json!(applied));
        fields.insert("mitigations".into(), json!(mitigations));
        fields.insert("root_cause".into(), json!(self.root_cause));
        fields.insert("duration".into(), json!(duration));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Plan;

    fn at(seconds: i64, kind: EventKind) -> Event {
        Event {
            ts: Timestamp::from_second(1_764_000_000 + seconds).unwrap(),
            incident: "i".into(),
            kind,
        }
    }

    fn planned(action: &str, title: &str, kind: &str) -> EventKind {
        EventKind::ActionPlanned {
            step: "s".into(),
            action: action.into(),
            title: title.into(),
            kind: kind.into(),
            plan: Plan::default(),
        }
    }

    fn finished(action: &str, ok: bool, detail: &str) -> EventKind {
        EventKind::ActionFinished {
            step: "s".into(),
            action: action.into(),
            ok,
            detail: detail.into(),
            millis: 3,
            effect: None,
        }
    }

    fn decided(action: &str, decision: DecisionKind) -> EventKind {
        EventKind::ActionDecided {
            step: "s".into(),
            action: action.into(),
            decision,
            by: "prompt".into(),
            user: "ana".into(),
        }
    }

    #[test]
    fn applied_actions_in_order_with_results_failures_and_skips_apart() {
        let events = vec![
            at(0, planned("ack", "Acknowledge", "silence")),
            at(0, finished("ack", true, "silence 1 created")),
            at(0, planned("scale", "Scale up", "k8s_scale")),
            at(1, decided("scale", DecisionKind::Approved)),
            at(2, finished("scale", true, "replicas 5 → 10")),
            at(3, planned("restart", "Restart", "k8s_restart")),
            at(4, decided("restart", DecisionKind::Skipped)),
            at(5, planned("clear", "Clear stuck jobs", "http")),
            at(6, decided("clear", DecisionKind::Approved)),
            at(7, finished("clear", false, "HTTP 500")),
            at(
                600,
                EventKind::Note {
                    text: "a bad deploy".into(),
                    user: "ana".into(),
                    tag: Some(NoteTag::RootCause),
                    owner: None,
                    due: None,
                },
            ),
        ];
        let happened = Happened::of(&events);
        let actions = happened.actions();
        assert_eq!(actions["scale"]["status"], "applied");
        assert_eq!(actions["scale"]["result"], "replicas 5 → 10");
        assert_eq!(actions["restart"]["status"], "skipped");
        assert_eq!(actions["clear"]["status"], "failed");
        let mut incident = json!({ "started": "2025-11-24T16:00:00Z" });
        let now = Timestamp::from_second(1_764_000_000 + 754).unwrap();
        happened.fill_incident(&mut incident, now);
        let applied = incident["applied"].as_array().unwrap();
        assert_eq!(applied.len(), 2, "{applied:?}");
        assert_eq!(applied[0]["title"], "Acknowledge");
        assert_eq!(applied[1]["title"], "Scale up");
        let mitigations = incident["mitigations"].as_array().unwrap();
        assert_eq!(mitigations.len(), 1, "{mitigations:?}");
        assert_eq!(mitigations[0]["result"], "replicas 5 → 10");
        assert_eq!(incident["root_cause"], "a bad deploy");
        assert_eq!(incident["duration"], "12m 34s");
    }

    #[test]
    fn a_resolved_incident_lasts_until_its_resolution() {
        let events = vec![at(
            90,
            EventKind::Resolved {
                text: "fixed".into(),
                user: "ana".into(),
            },
        )];
        let mut incident = json!({ "started": "2025-11-24T16:00:00Z" });
        let much_later = Timestamp::from_second(1_764_000_000 + 86_400).unwrap();
        Happened::of(&events).fill_incident(&mut incident, much_later);
        assert_eq!(incident["duration"], "1m 30s");
        assert_eq!(incident["root_cause"], Value::Null);
    }
}
