//! `oncall show`: a runbook as a readable checklist, each action with the exact request.

use super::Setup;
use super::run::Resolved;
use crate::backends::{Plan, PlanContext};
use crate::runbook::{self, Check, Loaded};
use crate::view::{print_json, print_out};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a check reads, with params and endpoints filled in as they would be for a run.
fn check_line(check: &Check, ctx: &serde_json::Value) -> String {
    let what = check
        .kind
        .describe(ctx)
        .unwrap_or_else(|| check.kind.backend().to_string());
    let mut line = format!(
        "[ ] {} — {what}",
        check.title.as_deref().unwrap_or(&check.id.value)
    );
    if let Some(f) = &check.fail_if {
        let _ = write!(line, "\n        fail if {}", f.value);
    }
    if let Some(w) = &check.warn_if {
        let _ = write!(line, "\n        warn if {}", w.value);
    }
    line
}

pub async fn run(setup: &Setup, id: &str) -> anyhow::Result<i32> {
    let config = setup.config()?;
    let loaded = runbook::resolve(&setup.catalog(), id)?;
    let values =
        super::run::resolve_values(setup, &config, &loaded.runbook, None, None, &[], false)?;
    let scenarios: Vec<String> = runbook::scenarios(&loaded.runbook.id.value, &setup.search)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let shown = Shown::new(&loaded, &values, scenarios).await;
    if setup.json() {
        print_json(&shown.json())?;
    } else {
        print_out(&shown.text())?;
    }
    Ok(0)
}

/// A runbook as `show` presents it: params and endpoints filled in, each action's plan as it
/// would be sent (without reading a cluster: `show` has nothing to do with one).
pub struct Shown<'a> {
    loaded: &'a Loaded,
    values: &'a Resolved,
    scenarios: Vec<String>,
    ctx: serde_json::Value,
    plans: BTreeMap<String, Result<Plan, String>>,
}

impl<'a> Shown<'a> {
    pub async fn new(
        loaded: &'a Loaded,
        values: &'a Resolved,
        scenarios: Vec<String>,
    ) -> Shown<'a> {
        let rb = &loaded.runbook;
        let ctx = json!({ "params": values.params, "endpoints": values.endpoints, "checks": {}, "incident": {"id": "INCIDENT", "severity": rb.severity.value} });
        let undo = crate::backends::Undo::default();
        let user = crate::timeline::user();
        let with = PlanContext {
            systems: None,
            undo: &undo,
            known_replicas: &Default::default(),
            user: &user,
            messages: &rb.messages,
            server_dry_run: false,
            readings: Vec::new(),
            pick: None,
        };
        let mut plans = BTreeMap::new();
        for action in rb.steps.iter().flat_map(|s| &s.actions) {
            let plan = action
                .kind
                .prepare(&ctx, &with)
                .await
                .map(|p| p.plan)
                .map_err(|e| e.to_string());
            plans.insert(action.id.value.clone(), plan);
        }
        Shown {
            loaded,
            values,
            scenarios,
            ctx,
            plans,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let (rb, values, plans) = (&self.loaded.runbook, self.values, &self.plans);
        let steps: Vec<_> = rb
            .steps
            .iter()
            .map(|s| {
                let actions: Vec<_> = s
                    .actions
                    .iter()
                    .map(|a| json!({ "id": a.id.value, "kind": a.kind.key(), "title": a.title, "when": a.when.as_ref().map(|w| &w.value), "plan": plans[&a.id.value].as_ref().ok() }))
                    .collect();
                json!({
                    "id": s.id.value, "title": s.title, "when": s.when.as_ref().map(|w| &w.value),
                    "checks": s.checks.iter().map(|c| json!({ "id": c.id.value, "kind": c.kind.key(), "title": c.title, "backend": c.kind.backend() })).collect::<Vec<_>>(),
                    "actions": actions,
                    "wait": s.wait.as_ref().map(|w| json!({ "check": w.check.value, "until": w.until.value, "timeout": w.timeout.value })),
                })
            })
            .collect();
        let escalation: Vec<_> = rb
            .escalation
            .iter()
            .map(|e| json!({ "after": e.after.value, "to": e.to, "unless": e.unless.as_ref().map(|u| &u.value), "if": e.only_if.as_ref().map(|c| &c.value) }))
            .collect();
        let mut doc = json!({ "id": rb.id.value, "title": rb.title, "severity": rb.severity.value, "source": self.loaded.source.origin.to_string(), "params": values.params, "endpoints": values.endpoints, "escalation": escalation, "steps": steps, "scenarios": self.scenarios });
        // Params the runbook's source does not give: the team's own values (`team: true`).
        doc["team_params"] = json!(
            rb.params
                .iter()
                .filter(|(_, p)| p.is_team())
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        );
        doc["updates"] = json!(rb.updates.as_ref().map(
            |u| json!({ "every": u.every.value, "message": u.message.as_ref().map(|m| &m.value) })
        ));
        crate::redact::global().value(&mut doc);
        doc
    }

    pub fn text(&self) -> String {
        let (rb, values, plans, ctx) = (&self.loaded.runbook, self.values, &self.plans, &self.ctx);
        let mut out = String::new();
        let respond = runbook::response_time(&rb.severity.value).unwrap_or("?");
        let _ = writeln!(
            out,
            "{} — {}\n{} (respond within {respond}) · {}",
            rb.id.value, rb.title, rb.severity.value, self.loaded.source.origin
        );
        if let Some(d) = &rb.description {
            let _ = writeln!(out, "{}", d.trim());
        }
        if !rb.alerts.is_empty() {
            let _ = writeln!(out, "alerts: {}", rb.alerts.join(", "));
        }
        if !rb.params.is_empty() {
            let _ = writeln!(out, "\nparams (-p NAME=VALUE):");
            for (name, p) in &rb.params {
                let value = values
                    .params
                    .get(name)
                    .map(crate::engine::observation::display)
                    .unwrap_or_else(|| "(required: -p NAME=VALUE)".replace("NAME", name));
                let _ = writeln!(
                    out,
                    "  {name} = {value}{}{}",
                    if p.is_team() { "  [team]" } else { "" },
                    p.help
                        .as_ref()
                        .map(|h| format!("  # {h}"))
                        .unwrap_or_default()
                );
            }
            if rb.params.values().any(|p| p.is_team()) {
                let _ = writeln!(
                    out,
                    "  [team]: the team's own value, not from the runbook's source: set it for your service"
                );
            }
        }
        let _ = writeln!(out, "\nendpoints (--endpoint NAME=URL):");
        for (name, url) in &values.endpoints {
            let _ = writeln!(out, "  {name} = {}", url.as_str().unwrap_or_default());
        }
        if let Some(u) = &rb.updates {
            let _ = writeln!(
                out,
                "\nupdates: every {}{}",
                u.every.value,
                u.message
                    .as_ref()
                    .map(|m| format!(", post message {}", m.value))
                    .unwrap_or_default()
            );
        }
        if !rb.escalation.is_empty() {
            let _ = writeln!(out, "\nescalation:");
            for e in &rb.escalation {
                let when = crate::engine::reminders::conditions(
                    e.unless.as_ref().map(|u| u.value.as_str()),
                    e.only_if.as_ref().map(|c| c.value.as_str()),
                );
                let _ = writeln!(out, "  after {}: {}{when}", e.after.value, e.to);
            }
        }
        for (i, step) in rb.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "\n{}. {}",
                i + 1,
                step.title.as_deref().unwrap_or(&step.id.value)
            );
            if let Some(when) = &step.when {
                let _ = writeln!(out, "   only when {}", when.value);
            }
            if let Some(g) = &step.guidance {
                for l in g.trim().lines() {
                    let _ = writeln!(out, "   {l}");
                }
            }
            for check in &step.checks {
                let _ = writeln!(out, "   {}", check_line(check, ctx));
            }
            for action in &step.actions {
                let _ = writeln!(
                    out,
                    "   [?] {} (asks first)",
                    action.title.as_deref().unwrap_or(&action.id.value)
                );
                if let Some(when) = &action.when {
                    let _ = writeln!(out, "       only when {}", when.value);
                }
                match &plans[&action.id.value] {
                    Ok(plan) => {
                        for l in plan.request.lines() {
                            let _ = writeln!(out, "       {l}");
                        }
                        if let Some(body) = &plan.body {
                            let _ = writeln!(out, "       {body}");
                        }
                        for change in &plan.changes {
                            let _ = writeln!(out, "       {change}");
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "       (request depends on observations: {e})");
                    }
                }
            }
            if let Some(w) = &step.wait {
                let every = w.every.as_ref().map(|e| e.value.as_str()).unwrap_or("30s");
                let _ = writeln!(
                    out,
                    "   [~] wait: poll {} every {every} until {} (up to {})",
                    w.check.value, w.until.value, w.timeout.value
                );
            }
            for m in &step.messages {
                let _ = writeln!(out, "   [✉] message: {}", m.value);
            }
        }
        if !self.scenarios.is_empty() {
            let _ = writeln!(out, "\ndrill scenarios: {}", self.scenarios.join(", "));
        }
        out
    }
}
