//! The words for a second person's approval: the request, the answer, how the wait ended.
//! One place, so the run's screen, `follow` and `timeline` say the same.

use crate::engine::event::{ApprovalOutcome, EventKind};
use std::time::Duration;

/// The line of an approval event (without indent), or None for another event.
pub fn line(incident: &str, kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::ApprovalRequested {
            action,
            hash,
            user,
            timeout_ms,
            rehearsed: true,
            ..
        } => format!(
            "needs a second person: a live run waits here (up to {}) for anyone but {user} to run `oncall approve {incident} {action}` (plan {hash})",
            crate::backends::humanize(Duration::from_millis(*timeout_ms))
        ),
        EventKind::ApprovalRequested {
            action,
            hash,
            user,
            timeout_ms,
            ..
        } => format!(
            "needs a second person: anyone but {user} runs `oncall approve {incident} {action}` (plan {hash}; waits up to {})",
            crate::backends::humanize(Duration::from_millis(*timeout_ms))
        ),
        EventKind::ApprovalAnswered {
            action,
            hash,
            approved: true,
            user,
            host,
            ..
        } => format!("{user} on {host} approved {action} (plan {hash})"),
        EventKind::ApprovalAnswered {
            action,
            user,
            host,
            reason,
            ..
        } => format!("{user} on {host} rejected {action}: {reason}"),
        EventKind::ApprovalEnded {
            action,
            outcome,
            by,
            detail,
            ..
        } => match outcome {
            ApprovalOutcome::Approved => format!("{action} approved by {by}: sending"),
            ApprovalOutcome::Rejected => format!("{action} rejected by {by}: {detail}; skipped"),
            ApprovalOutcome::TimedOut => format!("{action}: {detail}; skipped"),
            ApprovalOutcome::Stopped => {
                format!("{action}: stopped waiting for a second approval; skipped")
            }
            ApprovalOutcome::PlanChanged => format!(
                "{action}: {by}'s approval does not count, the plan changed since ({detail}); asked again"
            ),
            ApprovalOutcome::NoStore => format!("{action}: {detail}; skipped"),
        },
        _ => return None,
    })
}

/// What the driver sees while it waits.
pub fn waiting(timeout_ms: u64) -> String {
    format!(
        "waiting for a second person's approval (up to {}) — Ctrl-C stops waiting",
        crate::backends::humanize(Duration::from_millis(timeout_ms))
    )
}
