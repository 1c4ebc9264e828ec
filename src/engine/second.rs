//! A second person's approval: an action that needs one is sent only after someone other than
//! the driver approved its exact plan (named by its hash) through the team store. The driver
//! asks, waits like a wait (Ctrl-C stops waiting, a timeout skips), and reads the plan again
//! right before sending: a plan that changed since does not count as approved.

use super::event::{ApprovalOutcome, EventKind};
use super::{Engine, Reader};
use crate::backends::Plan;
use crate::runbook::Action;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a request waits unless the config file says (`two_person: { timeout }`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How often the driver looks for an answer in the store.
const POLL: Duration = Duration::from_millis(250);

/// Which actions need a second person besides those marked `approval: two-person`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Every write to a production context.
    pub production: bool,
    /// Every action (the runbook's severity is one the config file lists).
    pub every_action: bool,
    pub timeout: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            production: false,
            every_action: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Rule {
    /// Whether the action needs a second person before its plan is known: what a run without
    /// a team store is refused for.
    pub fn applies_to(&self, action: &Action) -> bool {
        action.approval.is_some() || self.every_action
    }
}

/// The plan's name in an approval: what the other person saw, and what must still hold when
/// the request is sent.
pub fn plan_hash(plan: &Plan) -> String {
    let text = serde_json::to_string(plan).expect("plans always serialize");
    let digest = Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// What differs between the approved plan and the plan now, in words.
pub fn difference(approved: &Plan, now: &Plan) -> String {
    if approved.changes != now.changes && !now.changes.is_empty() {
        return format!(
            "approved: {}; now: {}",
            approved.changes.join(", "),
            now.changes.join(", ")
        );
    }
    if approved.request != now.request {
        return format!("approved: {}; now: {}", approved.request, now.request);
    }
    "its details differ".into()
}

impl<R: Reader> Engine<'_, R> {
    pub(super) fn needs_second(&self, action: &Action, plan: &Plan) -> bool {
        self.settings.second.applies_to(action)
            || (self.settings.second.production && plan.production.is_some())
    }

    /// How long a request for the action waits: its `approval_timeout`, else the config file's.
    pub(super) fn approval_timeout(&self, action: &str) -> Duration {
        self.runbook
            .steps
            .iter()
            .flat_map(|s| &s.actions)
            .find(|a| a.id.value == action)
            .and_then(|a| a.approval_timeout.as_ref())
            .and_then(|t| crate::spec::parse_duration(&t.value).ok())
            .unwrap_or(self.settings.second.timeout)
    }

    /// Asks another person to approve `plan` and waits for the answer; who approved it and the
    /// plan they saw, or None (rejected, timed out, stopped: recorded, and the action is skipped).
    pub(super) async fn second_approval(
        &mut self,
        step: &str,
        action: &str,
        title: &str,
        plan: &Plan,
    ) -> Option<(String, String)> {
        let hash = plan_hash(plan);
        let timeout = self.approval_timeout(action);
        let user = self.settings.user.clone();
        self.record(EventKind::ApprovalRequested {
            step: step.into(),
            action: action.into(),
            title: title.into(),
            hash: hash.clone(),
            user: user.clone(),
            host: crate::timeline::host(),
            timeout_ms: timeout.as_millis() as u64,
            rehearsed: false,
        });
        let mut approved_hash = String::new();
        let (outcome, by, detail) = match self.settings.lease.clone() {
            None => (
                ApprovalOutcome::NoStore,
                String::new(),
                "a second approval goes through the team store, and this run has none (--store)"
                    .to_string(),
            ),
            Some(gate) => {
                self.interrupts.waiting.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + timeout;
                let ended = loop {
                    if let Some(answer) = gate.answer(action, &hash, &user).await {
                        let by = format!("{} on {}", answer.user, answer.host);
                        approved_hash = answer.hash;
                        break if answer.approved {
                            (ApprovalOutcome::Approved, by, String::new())
                        } else {
                            (ApprovalOutcome::Rejected, by, answer.reason)
                        };
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break (
                            ApprovalOutcome::TimedOut,
                            String::new(),
                            format!(
                                "no second approval within {}",
                                crate::backends::humanize(timeout)
                            ),
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(POLL.min(left)) => {}
                        _ = self.interrupts.stop_wait.notified() => {
                            break (ApprovalOutcome::Stopped, String::new(), String::new());
                        }
                    }
                };
                self.interrupts.waiting.store(false, Ordering::SeqCst);
                ended
            }
        };
        // An approval of another plan than the one asked about is told when the plan is read
        // again before sending (it is asked again then), not here.
        if outcome == ApprovalOutcome::Approved && approved_hash != hash {
            return Some((by, approved_hash));
        }
        self.record(EventKind::ApprovalEnded {
            step: step.into(),
            action: action.into(),
            hash,
            outcome,
            by: by.clone(),
            detail,
        });
        (outcome == ApprovalOutcome::Approved).then_some((by, approved_hash))
    }
}

/// A request that waits for its answer.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub step: String,
    pub action: String,
    pub title: String,
    pub hash: String,
    pub user: String,
    pub host: String,
    pub asked: jiff::Timestamp,
    /// Who answered it already, and how (a rejection ends it; an approval of a plan that
    /// changed does not).
    pub answered: Vec<(String, bool)>,
}

/// The requests among an incident's events that the driver still waits on: asked, not ended.
pub fn waiting(events: &[crate::engine::event::Event]) -> Vec<Waiting> {
    let mut open: Vec<Waiting> = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::ApprovalRequested {
                step,
                action,
                title,
                hash,
                user,
                host,
                rehearsed: false,
                ..
            } => {
                open.retain(|w| w.action != *action);
                open.push(Waiting {
                    step: step.clone(),
                    action: action.clone(),
                    title: title.clone(),
                    hash: hash.clone(),
                    user: user.clone(),
                    host: host.clone(),
                    asked: event.ts,
                    answered: Vec::new(),
                });
            }
            EventKind::ApprovalAnswered {
                action,
                approved,
                user,
                ..
            } => {
                if let Some(w) = open.iter_mut().find(|w| w.action == *action) {
                    w.answered.push((user.clone(), *approved));
                }
            }
            EventKind::ApprovalEnded { action, .. } => open.retain(|w| w.action != *action),
            // A run that ended no longer waits on anything.
            EventKind::RunFinished { .. } | EventKind::Interrupted { .. } => open.clear(),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::Event;

    fn event(kind: EventKind) -> Event {
        Event {
            ts: jiff::Timestamp::now(),
            incident: "i".into(),
            kind,
        }
    }

    fn asked(action: &str, hash: &str) -> Event {
        event(EventKind::ApprovalRequested {
            step: "s".into(),
            action: action.into(),
            title: "T".into(),
            hash: hash.into(),
            user: "alice".into(),
            host: "a".into(),
            timeout_ms: 1000,
            rehearsed: false,
        })
    }

    fn answered(action: &str, user: &str, approved: bool) -> Event {
        event(EventKind::ApprovalAnswered {
            step: "s".into(),
            action: action.into(),
            hash: "h".into(),
            approved,
            user: user.into(),
            host: "b".into(),
            reason: String::new(),
        })
    }

    #[test]
    fn a_request_waits_until_its_wait_ends_and_counts_who_answered() {
        let mut events = vec![asked("restart", "h1"), answered("restart", "bob", true)];
        let open = waiting(&events);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].answered, [("bob".to_string(), true)]);
        events.push(event(EventKind::ApprovalEnded {
            step: "s".into(),
            action: "restart".into(),
            hash: "h1".into(),
            outcome: ApprovalOutcome::Approved,
            by: "bob on b".into(),
            detail: String::new(),
        }));
        assert!(waiting(&events).is_empty());
        // Asked again: a new request, nobody has answered it yet.
        events.push(asked("restart", "h2"));
        assert!(waiting(&events)[0].answered.is_empty());
        events.push(event(EventKind::Interrupted {
            signal: "SIGTERM".into(),
            killed: Vec::new(),
        }));
        assert!(
            waiting(&events).is_empty(),
            "a run that ended waits on nothing"
        );
    }

    #[test]
    fn the_answer_is_the_first_after_the_last_asking_by_someone_else() {
        use crate::store::share::{Request, answer};
        let events = vec![
            asked("restart", "h"),
            answered("restart", "bob", false),
            asked("restart", "h"),
            answered("restart", "alice", true),
            answered("other", "bob", true),
            answered("restart", "carol", true),
        ];
        let request = Request {
            action: "restart".into(),
            hash: "h".into(),
            user: "alice".into(),
        };
        let found = answer(&events, &request).unwrap();
        assert_eq!((found.user.as_str(), found.approved), ("carol", true));
        assert!(
            answer(
                &events[..2],
                &Request {
                    hash: "x".into(),
                    ..request
                }
            )
            .is_none()
        );
    }
}
