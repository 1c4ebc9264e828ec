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
        let timeout = self.settings.second.timeout;
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
