//! Reminders while a run goes on: each escalation deadline that passes, and each status update
//! that falls due, is said on screen and recorded, whatever the run is doing then (checks, a
//! prompt, a wait).

use super::event::{Deadline, Event, EventKind, Recorder, Sink, WaitOutcome};
use crate::approval::DecisionKind;
use crate::backends::kinds::{ACKNOWLEDGING, NOT_MITIGATING};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads the incident's events, from each place that holds them (its local timeline, the team's
/// store), when a deadline with a condition falls due.
pub type History =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, Vec<Vec<Event>>> + Send + Sync>;

/// What an escalation's `unless:` waits for: a fact of the incident, read from its timeline when
/// the reminder falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// An acknowledging action (a silence, a PagerDuty acknowledgement) was applied, or
    /// rehearsed in a drill: someone responded.
    Acknowledged,
    /// A mitigation was applied and a wait after it was met.
    Mitigated,
    /// `oncall resolve` closed the incident.
    Resolved,
}

impl Fact {
    /// Each word `unless:` takes, with what it means, for `validate`'s hint and the README.
    pub const WORDS: &[(&str, Fact, &str)] = &[
        (
            "acknowledged",
            Fact::Acknowledged,
            "a silence or PagerDuty acknowledgement was applied",
        ),
        (
            "mitigated",
            Fact::Mitigated,
            "a mitigation was applied and its wait met",
        ),
        ("resolved", Fact::Resolved, "the incident was resolved"),
    ];

    pub fn parse(word: &str) -> Option<Fact> {
        Fact::WORDS
            .iter()
            .find(|(w, _, _)| *w == word.trim())
            .map(|(_, fact, _)| *fact)
    }

    pub fn word(self) -> &'static str {
        Fact::WORDS
            .iter()
            .find(|(_, fact, _)| *fact == self)
            .map_or("", |(w, _, _)| w)
    }
}

/// The comparisons `if:` takes, longest first so `<=` is not read as `<`.
const OPERATORS: &[&str] = &["==", "!=", "<=", ">=", "<", ">"];

/// `severity == P0` (or `!=`, `<=`, `>=`, `<`, `>`; P0 is the most severe, so `severity <= P1` is
/// P0 or P1): whether the incident's severity satisfies it, or why the text is not one.
pub fn severity_holds(condition: &str, severity: &str) -> Result<bool, String> {
    let level = |text: &str| {
        let text = text.trim();
        text.strip_prefix('P')
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n <= 3 && text.len() == 2)
    };
    let rest = condition
        .trim()
        .strip_prefix("severity")
        .ok_or_else(|| format!("'{condition}' is not a condition on the severity"))?
        .trim_start();
    let op = OPERATORS
        .iter()
        .find(|op| rest.starts_with(**op))
        .ok_or_else(|| {
            format!("'{condition}' compares the severity with no ==, !=, <=, >=, < or >")
        })?;
    let wanted = level(&rest[op.len()..])
        .ok_or_else(|| format!("'{condition}' compares the severity with something not P0..P3"))?;
    let Some(actual) = level(severity) else {
        return Ok(false);
    };
    Ok(match *op {
        "==" => actual == wanted,
        "!=" => actual != wanted,
        "<=" => actual <= wanted,
        ">=" => actual >= wanted,
        "<" => actual < wanted,
        _ => actual > wanted,
    })
}

/// What the incident's timeline says of the facts escalations wait on, with when and by what.
#[derive(Debug, Default)]
pub struct Standing {
    acknowledged: Option<String>,
    mitigated: Option<String>,
    resolved: Option<String>,
}

impl Standing {
    pub fn of(events: &[Event]) -> Standing {
        let mut standing = Standing::default();
        let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
        let mut mitigation: Option<&str> = None;
        for event in events {
            let at = crate::view::clock(&event.ts);
            // Applied live, or rehearsed in a drill (which rehearses the whole incident); a dry
            // run's "would send" acknowledges nothing.
            let done = match &event.kind {
                EventKind::ActionPlanned { action, kind, .. } => {
                    kinds.insert(action, kind);
                    None
                }
                EventKind::ActionFinished {
                    action, ok: true, ..
                } => Some(action.as_str()),
                EventKind::ActionDecided {
                    action,
                    decision: DecisionKind::Rehearsed,
                    ..
                } => Some(action.as_str()),
                EventKind::WaitFinished {
                    outcome: WaitOutcome::Met,
                    ..
                } => {
                    if let Some(action) = mitigation
                        && standing.mitigated.is_none()
                    {
                        standing.mitigated = Some(format!("mitigated at {at} ({action})"));
                    }
                    None
                }
                EventKind::Resolved { user, .. } if standing.resolved.is_none() => {
                    standing.resolved = Some(format!("resolved at {at} by {user}"));
                    None
                }
                _ => None,
            };
            let Some(action) = done else {
                continue;
            };
            let kind = kinds.get(action).copied().unwrap_or_default();
            if ACKNOWLEDGING.contains(&kind) && standing.acknowledged.is_none() {
                standing.acknowledged = Some(format!("acknowledged at {at} ({action})"));
            }
            if !NOT_MITIGATING.contains(&kind) {
                mitigation = mitigation.or(Some(action));
            }
        }
        standing
    }

    /// What either says: the local timeline holds what this machine did before it is shared,
    /// the store what other machines did (a `resolve` from another laptop).
    pub fn or(self, other: Standing) -> Standing {
        Standing {
            acknowledged: self.acknowledged.or(other.acknowledged),
            mitigated: self.mitigated.or(other.mitigated),
            resolved: self.resolved.or(other.resolved),
        }
    }

    fn holds(&self, fact: Fact) -> Option<&str> {
        match fact {
            Fact::Acknowledged => self.acknowledged.as_deref(),
            Fact::Mitigated => self.mitigated.as_deref(),
            Fact::Resolved => self.resolved.as_deref(),
        }
    }
}

/// A deadline's conditions in words, for the header and `show`: ` (unless acknowledged)`.
pub fn conditions(unless: Option<&str>, only_if: Option<&str>) -> String {
    let words: Vec<String> = only_if
        .map(|c| format!("if {c}"))
        .into_iter()
        .chain(unless.map(|u| format!("unless {u}")))
        .collect();
    if words.is_empty() {
        String::new()
    } else {
        format!(" ({})", words.join(", "))
    }
}

/// Why a deadline that fell due is not said (its condition no longer holds), or None to say it.
pub fn withheld(deadline: &Deadline, standing: &Standing, severity: &str) -> Option<String> {
    if let Some(condition) = &deadline.only_if {
        match severity_holds(condition, severity) {
            Ok(true) => {}
            Ok(false) => {
                return Some(format!(
                    "only if {condition}, and the severity is {severity}"
                ));
            }
            // `validate` refuses it; a timeline written by hand still says it.
            Err(_) => {}
        }
    }
    standing.holds(deadline.unless?).map(str::to_string)
}

/// A status update every so often, naming the message to post.
pub struct Updates {
    pub every: Duration,
    pub message: Option<String>,
}

/// The messages as last rendered in this run: what an update reminder shows.
#[derive(Clone, Default)]
pub struct LatestMessages(Arc<Mutex<BTreeMap<String, String>>>);

impl Sink for LatestMessages {
    fn emit(&mut self, event: &Event) {
        if let EventKind::Message { name, text, .. } = &event.kind {
            let mut latest = self.0.lock().unwrap_or_else(|e| e.into_inner());
            latest.insert(name.clone(), text.clone());
        }
    }
}

/// The reminders of one run; dropping it (the run ended) stops them.
pub struct Reminders(Vec<tokio::task::JoinHandle<()>>);

impl Reminders {
    /// `history`: the incident's events, read when a deadline falls due for what its condition
    /// waits on (this run's events, an earlier run's, a `resolve` from another terminal).
    pub fn start(
        recorder: &Recorder,
        severity: String,
        mut deadlines: Vec<Deadline>,
        history: History,
        updates: Option<(Updates, LatestMessages)>,
    ) -> Reminders {
        deadlines.sort_by_key(|d| d.at);
        let escalations = {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                for deadline in deadlines {
                    let wait = deadline.at.duration_since(jiff::Timestamp::now());
                    if let Ok(wait) = Duration::try_from(wait) {
                        tokio::time::sleep(wait).await;
                    }
                    let why = if deadline.unless.is_some() || deadline.only_if.is_some() {
                        let standing = history()
                            .await
                            .iter()
                            .map(|events| Standing::of(events))
                            .fold(Standing::default(), Standing::or);
                        withheld(&deadline, &standing, &severity)
                    } else {
                        None
                    };
                    match why {
                        Some(why) => recorder.emit(EventKind::EscalationWithheld {
                            severity: severity.clone(),
                            to: deadline.to,
                            due: deadline.at,
                            why,
                        }),
                        None => recorder.emit(EventKind::EscalationDue {
                            severity: severity.clone(),
                            to: deadline.to,
                            due: deadline.at,
                        }),
                    };
                }
            })
        };
        let mut tasks = vec![escalations];
        if let Some((updates, latest)) = updates {
            let recorder = recorder.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(updates.every);
                ticks.tick().await; // the first tick is now: the incident has just opened
                loop {
                    ticks.tick().await;
                    let text = updates.message.as_ref().and_then(|name| {
                        let latest = latest.0.lock().unwrap_or_else(|e| e.into_inner());
                        latest.get(name).cloned()
                    });
                    recorder.emit(EventKind::UpdateDue {
                        message: updates.message.clone(),
                        text,
                    });
                }
            }));
        }
        Reminders(tasks)
    }
}

impl Drop for Reminders {
    fn drop(&mut self) {
        self.0.iter().for_each(|task| task.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Plan;

    fn at(seconds: i64, kind: EventKind) -> Event {
        Event {
            ts: jiff::Timestamp::from_second(1_764_000_000 + seconds).unwrap(),
            incident: "i".into(),
            kind,
        }
    }

    fn planned(action: &str, kind: &str) -> EventKind {
        EventKind::ActionPlanned {
            step: "s".into(),
            action: action.into(),
            title: action.into(),
            kind: kind.into(),
            plan: Plan::default(),
        }
    }

    fn finished(action: &str, ok: bool) -> EventKind {
        EventKind::ActionFinished {
            step: "s".into(),
            action: action.into(),
            ok,
            detail: String::new(),
            millis: 1,
            effect: None,
        }
    }

    fn deadline(unless: Option<Fact>, only_if: Option<&str>) -> Deadline {
        Deadline {
            at: jiff::Timestamp::from_second(1_764_000_000).unwrap(),
            to: "Secondary".into(),
            unless,
            only_if: only_if.map(str::to_string),
        }
    }

    #[test]
    fn severity_conditions_compare_levels_p0_first() {
        assert_eq!(severity_holds("severity == P0", "P0"), Ok(true));
        assert_eq!(severity_holds("severity==P0", "P1"), Ok(false));
        assert_eq!(severity_holds("severity <= P1", "P0"), Ok(true));
        assert_eq!(severity_holds("severity <= P1", "P2"), Ok(false));
        assert_eq!(severity_holds("severity > P1", "P3"), Ok(true));
        assert_eq!(severity_holds("severity != P2", "P2"), Ok(false));
        assert!(severity_holds("impact == high", "P0").is_err());
        assert!(severity_holds("severity = P0", "P0").is_err());
        assert!(severity_holds("severity == P10", "P0").is_err());
        assert!(severity_holds("severity == critical", "P0").is_err());
    }

    #[test]
    fn a_failed_or_missing_acknowledgement_does_not_withhold_the_escalation() {
        let events = vec![
            at(0, planned("ack", "silence")),
            at(1, finished("ack", false)),
            at(2, planned("scale", "k8s_scale")),
            at(3, finished("scale", true)),
        ];
        let standing = Standing::of(&events);
        assert_eq!(
            withheld(&deadline(Some(Fact::Acknowledged), None), &standing, "P1"),
            None
        );
        // Applied, but no wait was met after it: not mitigated yet.
        assert_eq!(
            withheld(&deadline(Some(Fact::Mitigated), None), &standing, "P1"),
            None
        );
    }

    #[test]
    fn an_applied_acknowledgement_a_met_wait_and_a_resolution_withhold_theirs() {
        let events = vec![
            at(0, planned("page_ack", "pagerduty")),
            at(60, finished("page_ack", true)),
            at(70, planned("scale", "k8s_scale")),
            at(80, finished("scale", true)),
            at(
                90,
                EventKind::WaitFinished {
                    step: "verify".into(),
                    check: "error_rate".into(),
                    outcome: WaitOutcome::Met,
                    elapsed_ms: 1,
                    value: serde_json::Value::Null,
                },
            ),
            at(
                120,
                EventKind::Resolved {
                    text: "fixed".into(),
                    user: "alice".into(),
                },
            ),
        ];
        let standing = Standing::of(&events);
        let ack = withheld(&deadline(Some(Fact::Acknowledged), None), &standing, "P1").unwrap();
        assert!(ack.starts_with("acknowledged at "), "{ack}");
        assert!(ack.ends_with("(page_ack)"), "{ack}");
        let mitigated = withheld(&deadline(Some(Fact::Mitigated), None), &standing, "P1").unwrap();
        assert!(mitigated.ends_with("(scale)"), "{mitigated}");
        let resolved = withheld(&deadline(Some(Fact::Resolved), None), &standing, "P1").unwrap();
        assert!(resolved.ends_with("by alice"), "{resolved}");
        // `if:` is checked first: a P1 incident never calls the P0-only level.
        assert_eq!(
            withheld(&deadline(None, Some("severity == P0")), &standing, "P1").as_deref(),
            Some("only if severity == P0, and the severity is P1")
        );
        assert_eq!(
            withheld(&deadline(None, Some("severity == P0")), &standing, "P0"),
            None
        );
    }
}
