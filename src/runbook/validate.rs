//! Runbook validation: the runbook's own structure (ids, steps, references between them,
//! conditions, waits, messages), and each check's and action's kind through its backend.

use super::schema::*;
use super::{Source, response_time};
use crate::expr::Kind;
use crate::spec::validate::{
    Declared, NO_LOCALS, Problem, Scope, THRESHOLD_LOCALS, Validator, WAIT_LOCALS, join,
};
use crate::spec::{MAX_REPLICAS, S, ScalarValue, bounds, parse_duration};
use std::collections::{BTreeMap, BTreeSet};

/// The longest id, title, unit, help text and guidance.
const MAX_ID: usize = 64;
const MAX_TITLE: usize = 200;
const MAX_UNIT: usize = 24;
const MAX_HELP: usize = 1000;
const MAX_PROSE: usize = 8 * 1024;

/// Parses and validates a runbook.
pub fn load(source: &Source) -> Result<Runbook, Vec<Problem>> {
    let mut runbook: Runbook = source.parse().map_err(|p| vec![p])?;
    let problems = check_runbook(source, &runbook);
    if problems.is_empty() {
        runbook.mask_url_passwords();
        Ok(runbook)
    } else {
        Err(problems)
    }
}

/// Parses and validates a scenario against its runbook.
pub fn load_scenario(source: &Source, runbook: &Runbook) -> Result<Scenario, Vec<Problem>> {
    let scenario: Scenario = source.parse().map_err(|p| vec![p])?;
    let mut v = Validator::new(&source.name, &source.text, Declared::default());
    for name in scenario.params.keys() {
        if !runbook.params.contains_key(name) {
            v.problem_at(
                1,
                1,
                format!(
                    "scenario sets param '{name}' that runbook '{}' does not declare",
                    runbook.id.value
                ),
                None,
            );
        }
    }
    let endpoints = runbook.endpoint_names();
    for (name, url) in &scenario.endpoints {
        if !endpoints.contains(name.as_str()) {
            let hint = crate::spec::validate::closest(name, endpoints.iter().copied())
                .map(|near| format!("did you mean '{near}'?"));
            v.problem(
                url,
                format!(
                    "scenario sets endpoint '{name}', which runbook '{}' neither declares nor posts to",
                    runbook.id.value
                ),
                hint,
            );
        } else if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
            v.problem(
                url,
                format!("endpoint '{name}' is not an http:// or https:// URL"),
                None,
            );
        }
    }
    for count in scenario.deployments.values() {
        v.count(Some(count), "replica count", 0..=MAX_REPLICAS);
    }
    for canned in scenario.checks.values() {
        v.count(canned.millis.as_ref(), "`millis`", 0..=60_000);
        if let Some(verdict) = &canned.verdict
            && crate::backends::reading::parse_verdict(&verdict.value).is_none()
        {
            v.problem(
                verdict,
                format!("verdict '{}' is not one of ok, warn, fail", verdict.value),
                Some("a backend that cannot be reached is `error: \"cause\"`".into()),
            );
        }
    }
    for id in scenario.checks.keys() {
        if runbook.check(id).is_none() {
            v.problem_at(
                1,
                1,
                format!(
                    "scenario gives a result for check '{id}', which runbook '{}' does not have",
                    runbook.id.value
                ),
                Some(format!(
                    "its checks: {}",
                    runbook
                        .steps_checks()
                        .map(|(_, c)| c.id.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    if let Some(expect) = &scenario.expect {
        expectations(&mut v, expect, runbook);
    }
    let actions: Vec<&str> = runbook
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .map(|a| a.id.value.as_str())
        .collect();
    for at in scenario.correct.iter().chain(&scenario.harmful) {
        if !actions.contains(&at.value.as_str()) {
            let hint = crate::spec::validate::closest(&at.value, actions.iter().copied())
                .map(|near| format!("did you mean '{near}'?"));
            v.problem(
                at,
                format!(
                    "scores action '{}', which runbook '{}' does not have",
                    at.value, runbook.id.value
                ),
                hint,
            );
        }
    }
    if let Some(target) = &scenario.target {
        v.duration(target, "`target`", crate::spec::bounds::WAIT);
    }
    if v.problems.is_empty() {
        Ok(scenario)
    } else {
        Err(v.problems)
    }
}

/// Every name an expectation uses is one the runbook has (with "did you mean"), and every
/// verdict one there is.
fn expectations(v: &mut Validator, expect: &crate::runbook::Expect, runbook: &Runbook) {
    let steps: Vec<&str> = runbook.steps.iter().map(|s| s.id.value.as_str()).collect();
    let actions: Vec<&str> = runbook
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .map(|a| a.id.value.as_str())
        .collect();
    let checks: Vec<&str> = runbook
        .steps_checks()
        .map(|(_, c)| c.id.value.as_str())
        .collect();
    let messages: Vec<&str> = runbook.messages.keys().map(String::as_str).collect();
    let mut known = |at: &S<String>, what: &str, names: &[&str]| {
        if !names.contains(&at.value.as_str()) {
            let hint = match crate::spec::validate::closest(&at.value, names.iter().copied()) {
                Some(near) => format!("did you mean '{near}'?"),
                None => format!("its {what}s: {}", names.join(", ")),
            };
            v.problem(
                at,
                format!(
                    "expects {what} '{}', which runbook '{}' does not have",
                    at.value, runbook.id.value
                ),
                Some(hint),
            );
        }
    };
    for at in expect.steps_run.iter().chain(&expect.steps_skipped) {
        known(at, "step", &steps);
    }
    for at in expect.offered.iter().chain(&expect.not_offered) {
        known(at, "action", &actions);
    }
    for (id, verdict) in &expect.verdicts {
        let at = S::new(id.clone(), verdict.referenced, verdict.defined);
        known(&at, "check", &checks);
    }
    for (name, texts) in &expect.messages {
        if let Some(first) = texts.first() {
            let at = S::new(name.clone(), first.referenced, first.defined);
            known(&at, "message", &messages);
        }
    }
    for verdict in expect.verdicts.values() {
        if !matches!(verdict.value.as_str(), "ok" | "warn" | "fail" | "error") {
            v.problem(
                verdict,
                format!(
                    "verdict '{}' is not one of ok, warn, fail, error",
                    verdict.value
                ),
                None,
            );
        }
    }
}

/// A text the runbook shows (titles, units, guidance): it appears on the screen and in
/// events, so it is held to a size that fits them. Reported at its owner's id.
fn text(v: &mut Validator, owner: &S<String>, field: &str, text: Option<&str>, max: usize) {
    if let Some(text) = text
        && text.chars().count() > max
    {
        v.problem(
            owner,
            format!(
                "`{field}` of '{}' is {} characters long",
                owner.value,
                text.chars().count()
            ),
            Some(format!("it may be at most {max} characters")),
        );
    }
}

fn check_id(v: &mut Validator, at: &S<String>, what: &str, seen: &mut BTreeMap<String, u64>) {
    let id = &at.value;
    if id.len() > MAX_ID {
        v.problem(
            at,
            format!(
                "{what} id '{}…' is {} characters long",
                id.chars().take(20).collect::<String>(),
                id.chars().count()
            ),
            Some(format!(
                "an id may be at most {MAX_ID} characters; it stands in every event"
            )),
        );
        return;
    }
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        v.problem(
            at,
            format!("{what} id '{id}' may only use letters, digits, '-' and '_'"),
            None,
        );
    } else if (what == "check" || what == "action") && id.contains('-') {
        v.problem(
            at,
            format!(
                "{what} id '{id}' is used in expressions as checks.{id}: use '_' instead of '-'"
            ),
            Some(format!("rename it to '{}'", id.replace('-', "_"))),
        );
    }
    if let Some(line) = seen.insert(id.clone(), at.referenced.line()) {
        v.problem(
            at,
            format!("duplicate {what} id '{id}'"),
            Some(format!(
                "'{id}' is already used on line {line}; ids must be unique in a runbook"
            )),
        );
    }
}

/// An escalation's `unless:` is one word of a closed list, its `if:` a comparison of the severity.
fn escalation_conditions(v: &mut Validator, rb: &Runbook, esc: &Escalation) {
    use crate::backends::kinds::ACKNOWLEDGING;
    use crate::engine::reminders::{Fact, severity_holds};
    let acknowledges = rb
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .any(|a| ACKNOWLEDGING.contains(&a.kind.key()));
    if let Some(unless) = &esc.unless
        && Fact::parse(&unless.value) == Some(Fact::Acknowledged)
        && !acknowledges
    {
        v.problem(
            unless,
            "escalation `unless: acknowledged`, but no action of this runbook acknowledges: it would always be said".into(),
            Some("add a `silence` or `pagerduty` action that acknowledges the alert, or drop the condition".into()),
        );
    }
    if let Some(unless) = &esc.unless
        && Fact::parse(&unless.value).is_none()
    {
        let words: Vec<String> = Fact::WORDS
            .iter()
            .map(|(word, _, means)| format!("{word} ({means})"))
            .collect();
        let near = crate::spec::validate::closest(
            &unless.value,
            Fact::WORDS.iter().map(|(word, _, _)| *word),
        )
        .map(|near| format!("did you mean '{near}'? "))
        .unwrap_or_default();
        v.problem(
            unless,
            format!(
                "escalation `unless: {}` is not a condition oncall knows",
                unless.value
            ),
            Some(format!(
                "{near}`unless:` takes one of: {}",
                words.join(", ")
            )),
        );
    }
    if let Some(only_if) = &esc.only_if
        && let Err(why) = severity_holds(&only_if.value, "P0")
    {
        v.problem(
            only_if,
            format!("escalation `if`: {why}"),
            Some("`if:` compares the incident's severity: severity == P0 (or !=, <=, >=, <, >, with P0..P3; P0 is the most severe)".into()),
        );
    }
}

/// An endpoint's default may be built from params (`k8s://{{ params.namespace }}/api:8080`), so
/// it follows them; it may read nothing else (it is settled before any check runs), and no secret
/// (a URL is shown and recorded).
fn endpoint_default(v: &mut Validator, rb: &Runbook, name: &str, endpoint: &Param) {
    let Some(default) = &endpoint.default else {
        return;
    };
    let ScalarValue::Text(text) = &default.value else {
        return;
    };
    if !text.contains("{{") && !text.contains("{%") {
        return;
    }
    let at = S::new(text.clone(), default.referenced, default.defined);
    let what = format!("default of endpoint '{name}'");
    let scope = Scope {
        checks: &BTreeSet::new(),
        locals: NO_LOCALS,
    };
    v.names(&at, Kind::Template, &scope, &what);
    let Ok(names) = crate::expr::referenced_names(text, Kind::Template) else {
        return;
    };
    for read in names {
        let mut parts = read.split('.');
        let (root, param) = (parts.next().unwrap_or_default(), parts.next());
        match param {
            Some(p) if root == "params" => {
                if rb.params.get(p).is_some_and(|p| p.secret) {
                    v.problem(
                        default,
                        format!("{what} reads the secret param '{p}': an endpoint's URL is shown and recorded"),
                        Some("give the secret to the check or action that needs it (a header), not to the URL".into()),
                    );
                }
            }
            // `names` said already that no check can be read here.
            _ if root == "checks" => {}
            _ => v.problem(
                default,
                format!("{what} reads '{read}': an endpoint's default may read params only, as it is settled before any check runs"),
                Some("e.g. k8s://{{ params.namespace }}/api-gateway:8080".into()),
            ),
        }
    }
}

fn check_runbook(source: &Source, rb: &Runbook) -> Vec<Problem> {
    let declared = declared(rb);
    let placeholder = declared.placeholder.clone();
    let mut v = Validator::new(&source.name, &source.text, declared);
    if response_time(&rb.severity.value).is_none() {
        v.problem(
            &rb.severity,
            format!(
                "severity '{}' is not one of P0, P1, P2, P3",
                rb.severity.value
            ),
            Some("P0 critical (15 min), P1 high (1 h), P2 medium (4 h), P3 low (24 h)".into()),
        );
    }
    let mut ids = BTreeMap::new();
    check_id(&mut v, &rb.id, "runbook", &mut ids);
    text(&mut v, &rb.id, "title", Some(&rb.title), MAX_TITLE);
    text(
        &mut v,
        &rb.id,
        "description",
        rb.description.as_deref(),
        MAX_PROSE,
    );
    for (name, param) in rb.params.iter().chain(&rb.endpoints) {
        text(
            &mut v,
            &rb.id,
            &format!("help of {name}"),
            param.help.as_deref(),
            MAX_HELP,
        );
    }
    for esc in &rb.escalation {
        text(&mut v, &esc.after, "to", Some(&esc.to), MAX_TITLE);
    }
    for (name, endpoint) in &rb.endpoints {
        endpoint_default(&mut v, rb, name, endpoint);
    }
    for (name, param) in rb.params.iter().filter(|(_, p)| p.secret) {
        short_secret(&mut v, name, param.default.as_ref());
    }
    for (name, param) in &rb.params {
        team_param(&mut v, name, param);
    }
    for (name, endpoint) in &rb.endpoints {
        if let Some(team) = &endpoint.team {
            v.problem(
                team,
                format!("endpoint '{name}' has `team:`, which only params take"),
                Some("an endpoint's URL is always the team's: remove `team:`".into()),
            );
        }
    }
    for name in rb.params.keys().chain(rb.endpoints.keys()) {
        if name.len() > MAX_ID || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            v.problem_at(
                1,
                1,
                format!(
                    "param or endpoint name '{}' may only use letters, digits and '_', at most {MAX_ID} of them",
                    name.chars().take(MAX_ID).collect::<String>()
                ),
                Some("templates read it as params.NAME".into()),
            );
        }
    }
    for esc in &rb.escalation {
        v.duration(&esc.after, "escalation `after`", bounds::ESCALATION);
        escalation_conditions(&mut v, rb, esc);
    }
    if let Some(updates) = &rb.updates {
        v.duration(&updates.every, "updates `every`", bounds::UPDATES);
        if let Some(name) = &updates.message
            && !rb.messages.contains_key(&name.value)
        {
            v.problem(
                name,
                format!(
                    "updates name message '{}', which is not under `messages:`",
                    name.value
                ),
                Some(format!(
                    "messages: {}",
                    join(&rb.messages.keys().cloned().collect())
                )),
            );
        }
    }
    let all: BTreeSet<String> = rb.steps_checks().map(|(_, c)| c.id.value.clone()).collect();
    if let Some(check) = &rb.users_impacted
        && !all.contains(&check.value)
    {
        v.problem(
            check,
            format!(
                "users_impacted names check '{}', which no step has",
                check.value
            ),
            Some(format!("checks: {}", join(&all.iter().cloned().collect()))),
        );
    }
    for (name, text) in &rb.messages {
        v.names(
            text,
            Kind::Template,
            &Scope {
                checks: &all,
                locals: NO_LOCALS,
            },
            &format!("message '{name}'"),
        );
    }
    let mut step_ids = BTreeMap::new();
    let mut check_ids = BTreeMap::new();
    let mut action_ids = BTreeMap::new();
    let mut earlier: BTreeSet<String> = BTreeSet::new();
    if rb.steps.is_empty() {
        v.problem(
            &rb.id,
            "the runbook has no steps".into(),
            Some("add `steps:` with at least one check".into()),
        );
    }
    for step in &rb.steps {
        check_id(&mut v, &step.id, "step", &mut step_ids);
        text(&mut v, &step.id, "title", step.title.as_deref(), MAX_TITLE);
        text(
            &mut v,
            &step.id,
            "guidance",
            step.guidance.as_deref(),
            MAX_PROSE,
        );
        for check in &step.checks {
            text(
                &mut v,
                &check.id,
                "title",
                check.title.as_deref(),
                MAX_TITLE,
            );
            text(&mut v, &check.id, "unit", check.unit.as_deref(), MAX_UNIT);
        }
        for action in &step.actions {
            text(
                &mut v,
                &action.id,
                "title",
                action.title.as_deref(),
                MAX_TITLE,
            );
        }
        let before = earlier.clone();
        for check in &step.checks {
            check_id(&mut v, &check.id, "check", &mut check_ids);
            earlier.insert(check.id.value.clone());
        }
        if let Some(when) = &step.when {
            let scope = Scope {
                checks: &earlier,
                locals: NO_LOCALS,
            };
            v.names(when, Kind::Expression, &scope, "`when`");
        }
        for check in &step.checks {
            validate_check(&mut v, check, &before);
        }
        for action in &step.actions {
            check_id(&mut v, &action.id, "action", &mut action_ids);
            validate_action(&mut v, action, &earlier);
        }
        if let Some(wait) = &step.wait {
            if !earlier.contains(&wait.check.value) {
                v.problem(
                    &wait.check,
                    format!(
                        "wait polls check '{}', which is not defined in this or an earlier step",
                        wait.check.value
                    ),
                    Some(format!(
                        "checks defined so far: {}",
                        earlier.iter().cloned().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
            v.names(
                &wait.until,
                Kind::Expression,
                &Scope {
                    checks: &earlier,
                    locals: WAIT_LOCALS,
                },
                "wait `until`",
            );
            v.duration(&wait.timeout, "wait `timeout`", bounds::WAIT);
            if let Some(every) = &wait.every {
                // Below the range, say why: the backend would be hammered.
                if parse_duration(&every.value).is_ok_and(|d| d < bounds::WAIT_EVERY.min) {
                    v.problem(
                        every,
                        format!("wait `every` of {} would hammer the backend", every.value),
                        Some("poll at most every 100ms; 30s suits most waits".into()),
                    );
                } else {
                    v.duration(every, "wait `every`", bounds::WAIT_EVERY);
                }
            }
        }
        for name in &step.messages {
            if !rb.messages.contains_key(&name.value) {
                v.problem(
                    name,
                    format!(
                        "step names message '{}', which is not under `messages:`",
                        name.value
                    ),
                    Some(format!(
                        "messages: {}",
                        join(&rb.messages.keys().cloned().collect())
                    )),
                );
            }
        }
        if step.checks.is_empty()
            && step.actions.is_empty()
            && step.wait.is_none()
            && step.messages.is_empty()
            && step.guidance.is_none()
        {
            v.problem(
                &step.id,
                format!("step '{}' does nothing", step.id.value),
                Some("give it checks, actions, a wait, messages or guidance".into()),
            );
        }
    }
    super::reverts::check(&mut v, rb, &placeholder);
    v.problems
}

/// The reverts of a runbook that have no `after:` yet.
pub fn unguarded_reverts(rb: &Runbook) -> Vec<super::reverts::Unguarded> {
    super::reverts::unguarded(rb, &declared(rb).placeholder)
}

/// What the runbook declares, with param and endpoint defaults to trial-render templates with.
fn declared(rb: &Runbook) -> Declared {
    fn defaults(
        map: &BTreeMap<String, Param>,
        fallback: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        map.iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    p.default
                        .as_ref()
                        .map_or_else(|| fallback.into(), |d| d.value.to_json()),
                )
            })
            .collect()
    }
    Declared {
        params: rb.params.keys().cloned().collect(),
        endpoints: rb.endpoints.keys().cloned().collect(),
        checks: rb.steps_checks().map(|(_, c)| c.id.value.clone()).collect(),
        actions: rb
            .steps
            .iter()
            .flat_map(|s| &s.actions)
            .map(|a| a.id.value.clone())
            .collect(),
        messages: rb.messages.keys().cloned().collect(),
        placeholder: serde_json::json!({
            "params": defaults(&rb.params, "x"),
            "endpoints": defaults(&rb.endpoints, "http://x"),
            "checks": {},
            "incident": {},
            "actions": {},
        }),
    }
}

fn validate_check(v: &mut Validator, check: &Check, visible: &BTreeSet<String>) {
    v.visible = visible.clone();
    check.kind.validate(&check.id, v);
    let thresholds = Scope {
        checks: visible,
        locals: THRESHOLD_LOCALS,
    };
    for cond in [&check.fail_if, &check.warn_if].into_iter().flatten() {
        v.names(cond, Kind::Expression, &thresholds, "threshold");
    }
    if let Some(timeout) = &check.timeout {
        v.duration(timeout, "check `timeout`", bounds::TIMEOUT);
    }
}

fn validate_action(v: &mut Validator, action: &Action, visible: &BTreeSet<String>) {
    v.visible = visible.clone();
    action.kind.validate(&action.id, v);
    if let Some(when) = &action.when {
        let scope = Scope {
            checks: visible,
            locals: NO_LOCALS,
        };
        v.names(when, Kind::Expression, &scope, "`when`");
    }
    if let Some(timeout) = &action.timeout {
        v.duration(timeout, "action `timeout`", bounds::ACTION_TIMEOUT);
    }
    if let Some(timeout) = &action.approval_timeout {
        v.duration(timeout, "`approval_timeout`", bounds::WAIT);
        if action.approval.is_none() {
            v.problem(
                timeout,
                format!(
                    "`approval_timeout` on action '{}', which needs no second approval",
                    action.id.value
                ),
                Some("add `approval: two-person`, or remove `approval_timeout`".into()),
            );
        }
    }
}

/// `team: true` marks a value the runbook's source does not give: it needs the value the team chose
/// (a default) and words that say so (help), and a secret is never shown, so it cannot be marked.
fn team_param(v: &mut Validator, name: &str, param: &Param) {
    let Some(team) = param.team.as_ref().filter(|t| t.value) else {
        return;
    };
    if param.default.is_none() {
        v.problem(
            team,
            format!("param '{name}' is the team's (`team: true`) but has no default"),
            Some("give the value the team chose as `default:`".into()),
        );
    }
    if param.help.as_deref().is_none_or(|h| h.trim().is_empty()) {
        v.problem(
            team,
            format!("param '{name}' is the team's (`team: true`) but has no help"),
            Some(
                "say in `help:` what it is and that the team sets it (the source gives no value)"
                    .into(),
            ),
        );
    }
    if param.secret {
        v.problem(
            team,
            format!("param '{name}' is both secret and the team's"),
            Some("`team: true` marks a threshold `show` displays; a secret is never displayed: remove one".into()),
        );
    }
}

/// A secret's default as short as a common word could not be masked reliably: `run` refuses it,
/// so `validate` does too.
fn short_secret(v: &mut Validator, name: &str, default: Option<&S<ScalarValue>>) {
    let Some(default) = default else { return };
    let chars = match &default.value {
        ScalarValue::Text(text) => text.chars().count(),
        other => other.to_json().to_string().chars().count(),
    };
    if chars > 0 && chars < crate::redact::MIN_SECRET {
        v.problem(
            default,
            format!(
                "param '{name}' is secret, but its default has {chars} character(s): too short to mask reliably wherever it appears"
            ),
            Some(format!(
                "a secret needs at least {} characters; or leave the default out and pass it with -p {name}=VALUE",
                crate::redact::MIN_SECRET
            )),
        );
    }
}
