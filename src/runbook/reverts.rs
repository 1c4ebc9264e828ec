//! Reverts and their guards: an action that puts back what an earlier one changed (a scale back,
//! a restored setting, an expired silence) is offered only after a verification was met, so a
//! mitigation that did not work is not undone. What an action touches is its backend's to say
//! (`ActionSpec::touches`); this module compares the actions of a runbook in order.

use super::schema::{Action, Runbook, Step};
use crate::spec::S;
use crate::spec::validate::{Validator, closest};
use serde_json::Value;
use std::collections::BTreeMap;

/// Why an action is a revert.
enum Revert {
    /// It puts back what this incident changed by its nature (`replicas: previous`).
    ByNature(String),
    /// It sets what an earlier action set.
    Resets { earlier: String, target: String },
    /// The runbook says so (`reverts: true`).
    Marked,
}

impl Revert {
    fn words(&self) -> String {
        match self {
            Revert::ByNature(target) => format!("puts back {target}"),
            Revert::Resets { earlier, target } => {
                format!("puts back what '{earlier}' set ({target})")
            }
            Revert::Marked => "is marked `reverts: true`".into(),
        }
    }
}

fn revert(
    action: &Action,
    touched: &BTreeMap<String, String>,
    placeholder: &Value,
) -> Option<Revert> {
    let touches = action.kind.touches(placeholder);
    if let Some(restoring) = touches.iter().find(|t| t.restores) {
        return Some(Revert::ByNature(restoring.target.clone()));
    }
    let resets = touches.iter().find_map(|t| {
        touched.get(&t.target).map(|earlier| Revert::Resets {
            earlier: earlier.clone(),
            target: t.target.clone(),
        })
    });
    match &action.reverts {
        Some(flag) if flag.value => resets.or(Some(Revert::Marked)),
        // The author says it changes again, not back.
        Some(_) => None,
        None => resets,
    }
}

/// A revert with no `after:`: the action, why it is one, and the last step before it with a wait.
pub struct Unguarded {
    pub action: String,
    pub why: String,
    pub waited: Option<String>,
}

/// Checks every action's `after:` and `reverts:`, and that each revert has a guard.
pub fn check(v: &mut Validator, rb: &Runbook, placeholder: &Value) {
    walk(rb, placeholder, |step, action, found, waited| {
        if let Some(after) = &action.after {
            let earlier: Vec<&str> = rb.steps[..step]
                .iter()
                .map(|s| s.id.value.as_str())
                .collect();
            guard(v, after, &rb.steps, &earlier, waited);
        }
        if let (Some(flag), Some(Revert::ByNature(_))) = (&action.reverts, &found)
            && !flag.value
        {
            v.problem(
                flag,
                format!(
                    "`reverts: false` on action '{}', which {}: it is a revert by its nature",
                    action.id.value,
                    found.as_ref().map(Revert::words).unwrap_or_default()
                ),
                Some(format!("remove `reverts: false`; {}", hint(waited))),
            );
        } else if let Some(found) = found
            && action.after.is_none()
        {
            v.problem(
                &action.id,
                format!(
                    "action '{}' {}: it is a revert, and would be offered even when the mitigation did not work",
                    action.id.value,
                    found.words()
                ),
                Some(hint(waited)),
            );
        }
    });
}

/// The reverts that have no `after:` (what `check` refuses), for a tool that writes runbooks.
pub fn unguarded(rb: &Runbook, placeholder: &Value) -> Vec<Unguarded> {
    let mut found = Vec::new();
    walk(rb, placeholder, |_, action, revert, waited| {
        if let Some(revert) = revert
            && action.after.is_none()
            && !matches!(&action.reverts, Some(f) if !f.value)
        {
            found.push(Unguarded {
                action: action.id.value.clone(),
                why: revert.words(),
                waited: waited.last().map(|s| s.to_string()),
            });
        }
    });
    found
}

/// Each action in order, with the step it is in, whether it is a revert, and the earlier steps
/// with a wait.
fn walk<'r>(
    rb: &'r Runbook,
    placeholder: &Value,
    mut each: impl FnMut(usize, &'r Action, Option<Revert>, &[&'r str]),
) {
    // Earlier steps with a wait, and by target the first earlier action that set it.
    let mut waited: Vec<&str> = Vec::new();
    let mut touched: BTreeMap<String, String> = BTreeMap::new();
    for (index, step) in rb.steps.iter().enumerate() {
        for action in &step.actions {
            each(
                index,
                action,
                revert(action, &touched, placeholder),
                &waited,
            );
            for touch in action.kind.touches(placeholder) {
                touched
                    .entry(touch.target)
                    .or_insert_with(|| action.id.value.clone());
            }
        }
        if step.wait.is_some() {
            waited.push(&step.id.value);
        }
    }
}

/// What to write on a revert with no guard.
fn hint(waited: &[&str]) -> String {
    match waited.last() {
        Some(step) => format!(
            "add `after: {step}` (a step whose wait shows the mitigation worked) so it is offered only once that wait was met"
        ),
        None => "add a step with a `wait:` that shows the mitigation worked, before this one, and `after: THAT_STEP` on this action".into(),
    }
}

/// `after:` names an earlier step that has a wait.
fn guard(v: &mut Validator, after: &S<String>, all: &[Step], earlier: &[&str], waited: &[&str]) {
    let name = after.value.as_str();
    let waits = if waited.is_empty() {
        "no earlier step has a wait".to_string()
    } else {
        format!("steps with a wait before it: {}", waited.join(", "))
    };
    if waited.contains(&name) {
        return;
    }
    let message = if earlier.contains(&name) {
        format!("`after` names step '{name}', which has no wait: nothing says whether it was met")
    } else if all.iter().any(|s| s.id.value == name) {
        format!(
            "`after` names step '{name}', which is not before this action's step: its wait has not run when the action is offered"
        )
    } else {
        let near = closest(name, waited.iter().copied())
            .map(|near| format!("did you mean '{near}'? "))
            .unwrap_or_default();
        v.problem(
            after,
            format!("`after` names step '{name}', which the runbook does not have"),
            Some(format!("{near}{waits}")),
        );
        return;
    };
    v.problem(after, message, Some(waits));
}
