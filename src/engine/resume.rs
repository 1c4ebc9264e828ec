//! Taking up an incident where its run stopped: the step to start at, the findings so far, what
//! the actions changed, and which of that step's actions were applied or may have been.

use super::event::WaitOutcome;
use super::event::{Event, EventKind};
use super::observation::Observation;
use super::{Outcome, Prior, Resumption};
use crate::backends::{Plan, Undo};
use crate::runbook::Runbook;
use std::collections::BTreeMap;

/// Where a resumed run starts, with what the incident's timeline knows.
pub struct TakenUp {
    pub resumption: Resumption,
    /// The step it starts at.
    pub from_step: String,
    /// The last observation of each check.
    pub checks: BTreeMap<String, Observation>,
}

/// Reads an incident's events against the runbook it will go on with. The step it starts at is
/// the last one that started: it did not finish, or the run would have gone on or ended.
pub fn take_up(events: &[Event], runbook: &Runbook) -> Result<TakenUp, String> {
    let last_started = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::StepStarted { step, .. } => Some(step.clone()),
        _ => None,
    });
    let step = match &last_started {
        None => 0,
        Some(id) => runbook
            .steps
            .iter()
            .position(|s| &s.id.value == id)
            .ok_or_else(|| {
                format!(
                    "the incident stopped at step '{id}', which runbook '{}' no longer has",
                    runbook.id.value
                )
            })?,
    };
    let finished_after_last_step = events
        .iter()
        .rev()
        .take_while(|e| !matches!(e.kind, EventKind::StepStarted { .. }))
        .find_map(|e| match &e.kind {
            EventKind::RunFinished { exit_code, outcome } => Some((*exit_code, outcome.clone())),
            _ => None,
        });
    // A run that ended on its last step went through it, unless it stopped for an answer (4).
    if let Some((code, outcome)) = finished_after_last_step
        && code != 4
        && step + 1 == runbook.steps.len()
    {
        return Err(format!(
            "its run went through every step (exit {code}: {outcome}); nothing is left to resume. `oncall resolve` closes it"
        ));
    }
    let from_step = runbook.steps[step].id.value.clone();

    let mut undo = Undo::default();
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    let mut prior = BTreeMap::new();
    // What the steps before this one came to; this step's actions and wait are taken up again.
    let mut outcome = Outcome::default();
    for event in events {
        match &event.kind {
            EventKind::ActionPlanned { action, plan, .. } => {
                plans.insert(action.clone(), plan.clone());
            }
            EventKind::ActionStarted {
                step: in_step,
                action,
                ..
            } => {
                // It may have changed its target: what it replaced is the level to go back to.
                if let Some(plan) = plans.get(action) {
                    undo.planned(plan);
                }
                if *in_step == from_step {
                    prior.insert(action.clone(), Prior::Unconfirmed { started: event.ts });
                }
            }
            EventKind::ActionFinished {
                step: in_step,
                action,
                ok,
                effect,
                ..
            } => {
                if let Some(effect) = effect.as_ref().filter(|_| *ok) {
                    undo.applied(effect);
                }
                if !*ok && *in_step != from_step {
                    outcome.actions_failed += 1;
                }
                if *in_step == from_step {
                    if *ok {
                        prior.insert(action.clone(), Prior::Applied { at: event.ts });
                    } else {
                        prior.remove(action);
                    }
                }
            }
            EventKind::WaitFinished {
                step: in_step,
                outcome: waited,
                ..
            } if *in_step != from_step
                && !matches!(waited, WaitOutcome::Met | WaitOutcome::NotWaited) =>
            {
                outcome.waits_unmet += 1;
            }
            _ => {}
        }
    }
    Ok(TakenUp {
        resumption: Resumption {
            step,
            undo,
            prior,
            outcome,
        },
        from_step,
        checks: latest_observations(events),
    })
}

/// The last observation of each check: what the incident found so far.
pub fn latest_observations(events: &[Event]) -> BTreeMap<String, Observation> {
    let mut checks = BTreeMap::new();
    for event in events {
        if let EventKind::CheckFinished { observation, .. }
        | EventKind::WaitPoll { observation, .. } = &event.kind
        {
            checks.insert(observation.check.clone(), observation.clone());
        }
    }
    checks
}
