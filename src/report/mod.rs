//! The post-incident report: the playbook's template filled from an incident's timeline. The
//! figures follow Rootly's incident timestamps and durations (started/detected, acknowledged,
//! mitigated, resolved; each duration counted from detection).

pub mod markdown;
pub mod summary;

use crate::backends::kinds::{ACKNOWLEDGING, NOT_MITIGATING};
use crate::backends::reading::Verdict;
use crate::engine::event::{Event, EventKind, Mode, NoteTag, WaitOutcome};
use crate::engine::observation::Observation;
use crate::timeline::Status;
use crate::view::polls::Polls;
use crate::view::{duration, json_name};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Report {
    pub incident: String,
    pub title: String,
    pub runbook: String,
    pub severity: String,
    pub mode: Mode,
    pub status: Status,
    pub opened_by: String,
    pub services: Vec<String>,
    /// The value of the runbook's `users_impacted` check, if it has one and it was read.
    pub users_impacted: Option<String>,
    pub figures: Figures,
    pub timeline: Vec<Row>,
    pub root_cause: Vec<String>,
    pub impact: Vec<String>,
    pub went_well: Vec<String>,
    pub improve: Vec<String>,
    pub action_items: Vec<ActionItem>,
    pub lessons: Vec<String>,
}

/// When each milestone happened, and how long after detection.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Figures {
    /// The alert's `startsAt` when the run came from an alert, else when the incident opened.
    pub detected: Option<Timestamp>,
    /// The acknowledging action applied (a silence), else the first decision on an action.
    pub acknowledged: Option<Timestamp>,
    /// The first applied action that is not an acknowledgement.
    pub first_mitigation: Option<Timestamp>,
    /// The first wait whose condition was met after the first mitigation: the fix verified.
    pub mitigated: Option<Timestamp>,
    pub resolved: Option<Timestamp>,
    pub time_to_acknowledge_s: Option<i64>,
    pub time_to_mitigate_s: Option<i64>,
    pub time_to_resolve_s: Option<i64>,
    /// Detection to resolution, or to the last event while it is open.
    pub duration_s: i64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub at: Timestamp,
    pub event: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ActionItem {
    pub item: String,
    pub owner: Option<String>,
    pub due: Option<String>,
    pub status: String,
}

/// What the runbook adds that the timeline does not hold.
#[derive(Debug, Default)]
pub struct FromRunbook {
    pub services: Vec<String>,
    pub users_impacted_check: Option<String>,
}

pub(super) fn seconds(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<i64> {
    Some(to?.duration_since(from?).as_secs())
}

pub fn figures(events: &[Event]) -> Figures {
    let Some(first) = events.first() else {
        return Figures::default();
    };
    let alert_start = events.iter().find_map(|e| match &e.kind {
        EventKind::IncidentOpened { alert, .. } => alert
            .as_ref()
            .and_then(|a| a["starts_at"].as_str())
            .and_then(|s| s.parse::<Timestamp>().ok()),
        _ => None,
    });
    let detected = Some(alert_start.unwrap_or(first.ts));
    let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
    let mut acknowledged = None;
    let mut first_decision = None;
    let mut first_mitigation = None;
    let mut mitigated = None;
    let mut resolved = None;
    for event in events {
        match &event.kind {
            EventKind::ActionPlanned { action, kind, .. } => {
                kinds.insert(action, kind);
            }
            EventKind::ActionDecided { .. } => {
                first_decision = first_decision.or(Some(event.ts));
            }
            EventKind::ActionFinished {
                action, ok: true, ..
            } => {
                let kind = kinds.get(action.as_str()).copied().unwrap_or_default();
                if ACKNOWLEDGING.contains(&kind) {
                    acknowledged = acknowledged.or(Some(event.ts));
                }
                if !NOT_MITIGATING.contains(&kind) {
                    first_mitigation = first_mitigation.or(Some(event.ts));
                }
            }
            EventKind::WaitFinished {
                outcome: WaitOutcome::Met,
                ..
            } if first_mitigation.is_some() => {
                mitigated = mitigated.or(Some(event.ts));
            }
            EventKind::Resolved { .. } => resolved = resolved.or(Some(event.ts)),
            _ => {}
        }
    }
    let acknowledged = acknowledged.or(first_decision);
    let end = resolved.or(events.last().map(|e| e.ts));
    Figures {
        detected,
        acknowledged,
        first_mitigation,
        mitigated,
        resolved,
        time_to_acknowledge_s: seconds(detected, acknowledged),
        time_to_mitigate_s: seconds(detected, mitigated),
        time_to_resolve_s: seconds(detected, resolved),
        duration_s: seconds(detected, end).unwrap_or(0).max(0),
    }
}

impl Report {
    /// None for a timeline with no opening event.
    pub fn build(
        id: &str,
        events: &[Event],
        status: Status,
        runbook: FromRunbook,
    ) -> Option<Report> {
        let (title, runbook_id, severity, mode, opened_by) =
            events.iter().find_map(|e| match &e.kind {
                EventKind::IncidentOpened {
                    title,
                    runbook,
                    severity,
                    mode,
                    user,
                    ..
                } => Some((
                    title.clone(),
                    runbook.clone(),
                    severity.clone(),
                    *mode,
                    user.clone(),
                )),
                _ => None,
            })?;
        let mut report = Report {
            incident: id.to_string(),
            title,
            runbook: runbook_id,
            severity,
            mode,
            status,
            opened_by,
            services: runbook.services,
            users_impacted: None,
            figures: figures(events),
            timeline: Vec::new(),
            root_cause: Vec::new(),
            impact: Vec::new(),
            went_well: Vec::new(),
            improve: Vec::new(),
            action_items: Vec::new(),
            lessons: Vec::new(),
        };
        let mut titles: BTreeMap<String, String> = BTreeMap::new();
        let mut offered: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut findings: BTreeMap<String, BTreeMap<String, Observation>> = BTreeMap::new();
        let mut polls: Option<Polls> = None;
        for event in events {
            let row = match &event.kind {
                EventKind::IncidentOpened { user, mode, .. } => Some(format!(
                    "Incident opened by {user} ({}), runbook {}",
                    json_name(mode),
                    report.runbook
                )),
                EventKind::Resumed {
                    user,
                    host,
                    from_step,
                    took_over_from,
                    ..
                } => Some(match took_over_from {
                    Some(from) => format!(
                        "Resumed by {user} on {host} from step {from_step}, taking it over from {from}"
                    ),
                    None => format!("Resumed by {user} on {host} from step {from_step}"),
                }),
                EventKind::CheckFinished { step, observation } => {
                    if Some(&observation.check) == runbook.users_impacted_check.as_ref() {
                        report.users_impacted = Some(observation.display_value());
                    }
                    findings
                        .entry(step.clone())
                        .or_default()
                        .insert(observation.check.clone(), observation.clone());
                    matches!(
                        observation.verdict,
                        Verdict::Fail | Verdict::Warn | Verdict::Error
                    )
                    .then(|| finding(observation))
                }
                // Who answered a request for a second approval, and what the driver's run did.
                kind @ (EventKind::ApprovalAnswered { .. } | EventKind::ApprovalEnded { .. }) => {
                    crate::view::approval::line(&event.incident, kind)
                }
                EventKind::ActionPlanned { action, title, .. } => {
                    titles.insert(action.clone(), title.clone());
                    offered.insert(action.clone(), event.ts);
                    None
                }
                EventKind::ActionDecided {
                    step,
                    action,
                    decision,
                    by,
                    user,
                } => {
                    let title = titles.get(action).unwrap_or(action);
                    let after = offered
                        .get(action)
                        .map(|t| {
                            format!(
                                ", {} after it was offered",
                                duration(event.ts.duration_since(*t).as_secs())
                            )
                        })
                        .unwrap_or_default();
                    let who = if user.is_empty() {
                        by.clone()
                    } else {
                        format!("{user} ({by})")
                    };
                    // The step's own findings; for a step without checks, what failed so far.
                    let own = findings.get(step);
                    let seen: Vec<&Observation> = match own {
                        Some(own) => own.values().collect(),
                        None => findings
                            .values()
                            .flat_map(|f| f.values())
                            .filter(|o| matches!(o.verdict, Verdict::Fail | Verdict::Error))
                            .collect(),
                    };
                    let on: Vec<String> = seen
                        .iter()
                        .map(|o| {
                            format!("{} {} {}", o.check, o.verdict.as_str(), o.display_value())
                        })
                        .collect();
                    let on = if on.is_empty() {
                        String::new()
                    } else {
                        format!("; on {}", on.join(", "))
                    };
                    Some(format!(
                        "{title}: {} by {who}{after}{on}",
                        json_name(decision).replace('_', " ")
                    ))
                }
                EventKind::ActionFinished {
                    action, ok, detail, ..
                } => {
                    let title = titles.get(action).unwrap_or(action);
                    let result = if *ok { "applied" } else { "failed" };
                    Some(format!("{title}: {result}: {detail}"))
                }
                EventKind::ActionUnconfirmed {
                    action, started, ..
                } => Some(format!(
                    "{}: may have been applied at {} (no result recorded)",
                    titles.get(action).unwrap_or(action),
                    crate::view::clock_seconds(started)
                )),
                EventKind::WaitStarted { .. } => {
                    polls = Some(Polls::default());
                    None
                }
                EventKind::WaitPoll { observation, .. } => {
                    if let Some(p) = polls.as_mut() {
                        p.poll(observation);
                    }
                    None
                }
                EventKind::WaitFinished { check, outcome, .. } => {
                    let p = polls.take().unwrap_or_default();
                    let range = match (&p.first, &p.last) {
                        (Some(a), Some(b)) if a != b => format!(" from {a} to {b}"),
                        (Some(a), _) => format!(" at {a}"),
                        _ => String::new(),
                    };
                    let end = crate::view::polls::ended(*outcome);
                    Some(format!(
                        "Polled {check} {}×{range}, {end} at {}",
                        p.count,
                        crate::view::clock_seconds(&event.ts)
                    ))
                }
                EventKind::Note {
                    text,
                    user,
                    tag,
                    owner,
                    due,
                } => {
                    let section = match tag {
                        None => None,
                        Some(NoteTag::RootCause) => Some(&mut report.root_cause),
                        Some(NoteTag::Impact) => Some(&mut report.impact),
                        Some(NoteTag::WentWell) => Some(&mut report.went_well),
                        Some(NoteTag::Improve) => Some(&mut report.improve),
                        Some(NoteTag::Lesson) => Some(&mut report.lessons),
                        Some(NoteTag::ActionItem) => {
                            report.action_items.push(ActionItem {
                                item: text.clone(),
                                owner: owner.clone(),
                                due: due.clone(),
                                status: "open".into(),
                            });
                            None
                        }
                    };
                    match section {
                        Some(section) => {
                            section.push(text.clone());
                            None
                        }
                        None if tag.is_none() => Some(format!("Note by {user}: {text}")),
                        None => None,
                    }
                }
                EventKind::EscalationDue { severity, to, .. } => {
                    Some(format!("{severity} response time passed: escalate to {to}"))
                }
                EventKind::EscalationWithheld { to, why, .. } => {
                    Some(format!("No escalation to {to}: {why}"))
                }
                EventKind::Interrupted { signal, .. } => {
                    Some(format!("Run interrupted ({signal})"))
                }
                EventKind::RunFinished { exit_code, outcome } => {
                    Some(format!("Run finished: {outcome} (exit {exit_code})"))
                }
                EventKind::Resolved { text, user } => Some(format!("Resolved by {user}: {text}")),
                EventKind::Rechecked { action, .. } => Some(format!(
                    "Checks run again before deciding on {}",
                    titles.get(action).unwrap_or(action)
                )),
                _ => None,
            };
            if let Some(event_text) = row {
                report.timeline.push(Row {
                    at: event.ts,
                    event: event_text,
                });
            }
        }
        Some(report)
    }
}

fn finding(o: &Observation) -> String {
    let reason = o
        .reason
        .as_ref()
        .map(|r| format!(" — {r}"))
        .unwrap_or_default();
    format!(
        "Check {}: {} {}{reason}",
        o.title,
        o.verdict.as_str(),
        o.display_value()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::DecisionKind;
    use crate::backends::Plan;
    use serde_json::json;

    const T0: i64 = 1_764_000_000;

    fn at(seconds: i64, kind: EventKind) -> Event {
        Event {
            ts: Timestamp::from_second(T0 + seconds).unwrap(),
            incident: "i".into(),
            kind,
        }
    }

    fn opened(alert: Option<serde_json::Value>) -> EventKind {
        EventKind::IncidentOpened {
            runbook: "rb".into(),
            title: "T".into(),
            severity: "P1".into(),
            response_time: None,
            mode: Mode::Live,
            origin: "bundled".into(),
            params: Default::default(),
            scenario: None,
            escalation: Vec::new(),
            user: "alice".into(),
            steps: 3,
            endpoints: Default::default(),
            alert,
            digest: None,
            targets: Default::default(),
            server_dry_run: false,
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

    fn decided(action: &str) -> EventKind {
        EventKind::ActionDecided {
            step: "s".into(),
            action: action.into(),
            decision: DecisionKind::Approved,
            by: "prompt".into(),
            user: "alice".into(),
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

    fn wait(outcome: WaitOutcome) -> EventKind {
        EventKind::WaitFinished {
            step: "s".into(),
            check: "c".into(),
            outcome,
            elapsed_ms: 1,
            value: json!(1),
        }
    }

    fn resolved() -> EventKind {
        EventKind::Resolved {
            text: "fixed".into(),
            user: "alice".into(),
        }
    }

    fn ts(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(T0 + seconds).unwrap())
    }

    #[test]
    fn figures_count_from_the_alert_start_through_acknowledgement_mitigation_and_resolution() {
        let alert = json!({ "name": "A", "starts_at": Timestamp::from_second(T0 - 120).unwrap().to_string() });
        let events = vec![
            at(0, opened(Some(alert))),
            at(10, planned("ack", "silence")),
            at(30, decided("ack")),
            at(31, finished("ack", true)),
            at(40, planned("scale", "k8s_scale")),
            at(50, decided("scale")),
            at(52, finished("scale", false)),
            at(60, planned("restart", "k8s_restart")),
            at(70, decided("restart")),
            at(75, finished("restart", true)),
            at(200, wait(WaitOutcome::TimedOut)),
            at(400, wait(WaitOutcome::Met)),
            at(900, resolved()),
        ];
        assert_eq!(
            figures(&events),
            Figures {
                detected: ts(-120),
                acknowledged: ts(31),
                first_mitigation: ts(75),
                mitigated: ts(400),
                resolved: ts(900),
                time_to_acknowledge_s: Some(151),
                time_to_mitigate_s: Some(520),
                time_to_resolve_s: Some(1020),
                duration_s: 1020,
            }
        );
    }

    #[test]
    fn without_an_acknowledging_action_the_first_decision_acknowledges() {
        let events = vec![
            at(0, opened(None)),
            at(5, planned("scale", "k8s_scale")),
            at(20, decided("scale")),
            at(21, finished("scale", true)),
        ];
        let f = figures(&events);
        assert_eq!((f.detected, f.acknowledged), (ts(0), ts(20)));
        assert_eq!(f.time_to_acknowledge_s, Some(20));
    }

    #[test]
    fn never_mitigated_and_still_open_leave_those_figures_empty() {
        // A wait met before any mitigation verifies nothing; no decision means no acknowledgement.
        let events = vec![at(0, opened(None)), at(60, wait(WaitOutcome::Met))];
        let f = figures(&events);
        assert_eq!(
            (f.acknowledged, f.first_mitigation, f.mitigated, f.resolved),
            (None, None, None, None)
        );
        assert_eq!(
            (f.time_to_mitigate_s, f.time_to_resolve_s, f.duration_s),
            (None, None, 60)
        );
    }

    #[test]
    fn tagged_notes_land_in_their_sections_and_waits_are_one_row() {
        let note = |text: &str, tag| EventKind::Note {
            text: text.into(),
            user: "bob".into(),
            tag,
            owner: Some("carol".into()).filter(|_| tag == Some(NoteTag::ActionItem)),
            due: None,
        };
        let poll = |value: i64| EventKind::WaitPoll {
            step: "s".into(),
            observation: Observation {
                check: "c".into(),
                title: "c".into(),
                backend: "http".into(),
                verdict: Verdict::Ok,
                value: json!(value),
                unit: None,
                table: None,
                text: None,
                reason: None,
                no_answer: None,
                millis: 1,
            },
            elapsed_ms: 1,
            met: value == 1,
        };
        let events = vec![
            at(0, opened(None)),
            at(
                1,
                EventKind::WaitStarted {
                    step: "s".into(),
                    check: "c".into(),
                    until: "value == 1".into(),
                    every_ms: 1,
                    timeout_ms: 1,
                    runbook_timeout_ms: None,
                    once: false,
                },
            ),
            at(2, poll(3)),
            at(3, poll(2)),
            at(4, poll(1)),
            at(5, wait(WaitOutcome::Met)),
            at(6, note("driver leak", Some(NoteTag::RootCause))),
            at(7, note("fast sweep", Some(NoteTag::WentWell))),
            at(8, note("pin it", Some(NoteTag::ActionItem))),
            at(9, note("by hand", None)),
        ];
        let r = Report::build("i", &events, Status::Open, FromRunbook::default()).unwrap();
        assert_eq!(r.root_cause, vec!["driver leak"]);
        assert_eq!(r.went_well, vec!["fast sweep"]);
        assert_eq!(
            r.action_items,
            vec![ActionItem {
                item: "pin it".into(),
                owner: Some("carol".into()),
                due: None,
                status: "open".into()
            }]
        );
        let rows: Vec<&str> = r.timeline.iter().map(|r| r.event.as_str()).collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(
            rows[1].starts_with("Polled c 3× from 3 to 1, met at "),
            "{rows:?}"
        );
        assert_eq!(rows[2], "Note by bob: by hand");
    }
}
