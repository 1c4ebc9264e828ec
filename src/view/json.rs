//! The machine-readable report of a run, built from its events.

use crate::engine::event::{Event, EventKind, Sink};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Collects events for the report printed when the run ends.
#[derive(Clone, Default)]
pub struct Collector {
    pub events: Arc<Mutex<Vec<Event>>>,
}

impl Collector {
    /// Prints the report of the events so far on stdout.
    pub fn print_report(&self, timeline: &std::path::Path) -> anyhow::Result<()> {
        let events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        super::print_json(&report(&events, Some(timeline)))
    }
}

impl Sink for Collector {
    fn emit(&mut self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

fn step_entry<'a>(steps: &'a mut Vec<Value>, id: &str) -> &'a mut Value {
    if let Some(i) = steps.iter().position(|s| s["id"] == id) {
        return &mut steps[i];
    }
    steps.push(json!({ "id": id, "status": "ran", "checks": [], "actions": [], "messages": [] }));
    steps.last_mut().expect("just pushed")
}

/// A wait's list of poll verdicts, made (with the wait's entry) at its first use.
fn wait_verdicts(wait: &mut Value) -> &mut Vec<Value> {
    if !wait["verdicts"].is_array() {
        wait["verdicts"] = json!([]);
    }
    wait["verdicts"]
        .as_array_mut()
        .expect("verdicts is an array")
}

fn action_entry<'a>(step: &'a mut Value, id: &str) -> &'a mut Value {
    let actions = step["actions"].as_array_mut().expect("actions is an array");
    if let Some(i) = actions.iter().position(|a| a["id"] == id) {
        return &mut actions[i];
    }
    actions.push(json!({ "id": id }));
    actions.last_mut().expect("just pushed")
}

/// One document: the incident, each step with its observations and actions, and the outcome.
pub fn report(events: &[Event], timeline: Option<&std::path::Path>) -> Value {
    let mut doc = json!({ "timeline": timeline.map(|p| p.display().to_string()) });
    let mut steps: Vec<Value> = Vec::new();
    for event in events {
        doc["incident"] = json!(event.incident);
        match &event.kind {
            EventKind::IncidentOpened {
                runbook,
                title,
                severity,
                mode,
                params,
                scenario,
                escalation,
                ..
            } => {
                doc["runbook"] = json!(runbook);
                doc["title"] = json!(title);
                doc["severity"] = json!(severity);
                doc["mode"] = json!(mode);
                doc["params"] = json!(params);
                doc["scenario"] = json!(scenario);
                doc["escalation"] = json!(escalation);
                doc["started"] = json!(event.ts);
            }
            EventKind::StepStarted { step, title, .. } => {
                step_entry(&mut steps, step)["title"] = json!(title);
            }
            EventKind::StepSkipped { step, reason } => {
                let s = step_entry(&mut steps, step);
                s["status"] = json!("skipped");
                s["reason"] = json!(reason);
            }
            EventKind::CheckFinished { step, observation } => {
                let s = step_entry(&mut steps, step);
                s["checks"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!(observation));
            }
            EventKind::ActionNotOffered {
                step,
                action,
                reason,
                unverified,
            } => {
                let a = action_entry(step_entry(&mut steps, step), action);
                a["decision"] = json!("not_offered");
                a["reason"] = json!(reason);
                if let Some(step) = unverified {
                    a["unverified"] = json!(step);
                }
            }
            EventKind::ActionPlanned {
                step,
                action,
                title,
                plan,
                ..
            } => {
                let a = action_entry(step_entry(&mut steps, step), action);
                a["title"] = json!(title);
                a["plan"] = json!(plan);
            }
            EventKind::ActionDecided {
                step,
                action,
                decision,
                by,
                user,
            } => {
                let a = action_entry(step_entry(&mut steps, step), action);
                a["decision"] = json!(decision);
                a["by"] = json!(by);
                if !user.is_empty() {
                    a["user"] = json!(user);
                }
            }
            EventKind::ActionFinished {
                step,
                action,
                ok,
                detail,
                millis,
                effect,
            } => {
                let a = action_entry(step_entry(&mut steps, step), action);
                a["result"] =
                    json!({ "ok": ok, "detail": detail, "millis": millis, "effect": effect });
            }
            EventKind::ActionUnconfirmed {
                step,
                action,
                started,
            } => {
                let a = action_entry(step_entry(&mut steps, step), action);
                a["may_have_been_applied_at"] = json!(started);
            }
            EventKind::Resumed {
                user,
                host,
                from_step,
                changed,
                took_over_from,
            } => {
                doc["resumed"] = json!({ "at": event.ts, "user": user, "host": host, "from_step": from_step, "changed": changed, "took_over_from": took_over_from });
            }
            EventKind::WaitPoll {
                step, observation, ..
            } => {
                let verdicts = wait_verdicts(&mut step_entry(&mut steps, step)["wait"]);
                verdicts.push(json!(observation.verdict));
            }
            EventKind::WaitFinished {
                step,
                check,
                outcome,
                elapsed_ms,
                value,
            } => {
                let wait = &mut step_entry(&mut steps, step)["wait"];
                // Beside the polls' verdicts, in order: the last is the check's verdict now.
                wait_verdicts(wait);
                wait["check"] = json!(check);
                wait["outcome"] = json!(outcome);
                wait["elapsed_ms"] = json!(elapsed_ms);
                wait["value"] = json!(value);
            }
            EventKind::Message { step, name, text } => {
                let s = step_entry(&mut steps, step);
                s["messages"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!({ "name": name, "text": text }));
            }
            EventKind::RunFinished { exit_code, outcome } => {
                doc["exit_code"] = json!(exit_code);
                doc["outcome"] = json!(outcome);
            }
            EventKind::Interrupted { signal, .. } => {
                doc["interrupted"] = json!(signal);
            }
            _ => {}
        }
    }
    doc["steps"] = Value::Array(steps);
    doc
}
