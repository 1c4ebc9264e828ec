//! `oncall show`: a runbook as a readable checklist, each action with the exact request.

use super::run::Resolved;
use super::{Setup, print_json, print_out};
use crate::backends;
use crate::engine::event::Plan;
use crate::expr;
use crate::runbook::{self, Check, Loaded};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a check reads, with params and endpoints filled in as they would be for a run.
fn check_line(check: &Check, ctx: &serde_json::Value) -> String {
    let fill = |text: &str| expr::render(text, ctx).unwrap_or_else(|_| text.to_string());
    let what = if let Some(q) = &check.prometheus {
        format!("prometheus: {}", fill(&q.value))
    } else if let Some(h) = &check.http {
        format!(
            "{} {}",
            h.method.as_ref().map(|m| m.value.as_str()).unwrap_or("GET"),
            fill(&h.url.value)
        )
    } else if let Some(s) = &check.shell {
        let command =
            expr::render_shell(&s.command.value, ctx).unwrap_or_else(|_| s.command.value.clone());
        format!("shell: {command}")
    } else {
        let ns = |n: &Option<crate::runbook::S<String>>| {
            n.as_ref()
                .map_or("the default namespace".into(), |n| fill(&n.value))
        };
        let opt = |o: &Option<crate::runbook::S<String>>| o.as_ref().map(|o| fill(&o.value));
        if let Some(k) = &check.k8s_pods {
            let with = opt(&k.selector)
                .map(|s| format!(" with {s}"))
                .unwrap_or_default();
            format!("kubernetes: pods in {}{with}", ns(&k.namespace))
        } else if let Some(k) = &check.k8s_deployment {
            format!(
                "kubernetes: deployment/{} in {}",
                fill(&k.name.value),
                ns(&k.namespace)
            )
        } else if let Some(k) = &check.k8s_logs {
            let of = opt(&k.deployment)
                .map(|d| format!("deployment/{d}"))
                .or_else(|| opt(&k.selector))
                .unwrap_or_default();
            let since = k.since.as_ref().map_or("1h", |s| s.value.as_str());
            format!(
                "kubernetes: logs of {of} in {} since {since}, lines matching /{}/",
                ns(&k.namespace),
                k.matches.value
            )
        } else if let Some(k) = &check.k8s_events {
            let of = opt(&k.object)
                .map(|o| format!(" of {o}"))
                .unwrap_or_default();
            format!("kubernetes: warning events{of} in {}", ns(&k.namespace))
        } else {
            backends::backend_name(check).to_string()
        }
    };
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
        let previous = BTreeMap::new();
        let with = backends::PlanContext {
            systems: None,
            previous: &previous,
            known_replicas: &Default::default(),
        };
        let mut plans = BTreeMap::new();
        for action in rb.steps.iter().flat_map(|s| &s.actions) {
            let plan = backends::prepare(action, &ctx, &with)
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
                    .map(|a| json!({ "id": a.id.value, "title": a.title, "when": a.when.as_ref().map(|w| &w.value), "plan": plans[&a.id.value].as_ref().ok() }))
                    .collect();
                json!({
                    "id": s.id.value, "title": s.title, "when": s.when.as_ref().map(|w| &w.value),
                    "checks": s.checks.iter().map(|c| json!({ "id": c.id.value, "title": c.title, "backend": backends::backend_name(c) })).collect::<Vec<_>>(),
                    "actions": actions,
                    "wait": s.wait.as_ref().map(|w| json!({ "check": w.check.value, "until": w.until.value, "timeout": w.timeout.value })),
                })
            })
            .collect();
        let mut doc = json!({ "id": rb.id.value, "title": rb.title, "severity": rb.severity.value, "source": self.loaded.source.origin.to_string(), "params": values.params, "endpoints": values.endpoints, "steps": steps, "scenarios": self.scenarios });
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
                    "  {name} = {value}{}",
                    p.help
                        .as_ref()
                        .map(|h| format!("  # {h}"))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(out, "\nendpoints (--endpoint NAME=URL):");
        for (name, url) in &values.endpoints {
            let _ = writeln!(out, "  {name} = {}", url.as_str().unwrap_or_default());
        }
        if !rb.escalation.is_empty() {
            let _ = writeln!(out, "\nescalation:");
            for e in &rb.escalation {
                let _ = writeln!(out, "  after {}: {}", e.after.value, e.to);
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
