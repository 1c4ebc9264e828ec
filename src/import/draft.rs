//! The runbook an import builds, and its YAML: every check and action with a comment that names
//! the Markdown line it came from, and a `review:` line where a human should look.

use super::yaml::{Y, comment, flow, scalar, text_field};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Draft {
    pub source: String,
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_note: String,
    pub description: Option<String>,
    pub alerts: Vec<String>,
    pub params: BTreeMap<String, Param>,
    pub endpoints: BTreeMap<String, Param>,
    pub escalation: Vec<Escalation>,
    pub steps: Vec<Step>,
    pub messages: Vec<(String, String)>,
    /// Credentials the page wrote, each a secret param (not written: only their names are).
    pub secrets: Vec<Secret>,
}

/// An escalation level: after how long, to whom, and the condition the page states.
#[derive(Debug, Default, Clone)]
pub struct Escalation {
    pub after: String,
    pub to: String,
    /// "if no response" → `acknowledged`, "if unresolved" → `resolved`.
    pub unless: Option<&'static str>,
    /// "if critical business impact" → `severity == P0`.
    pub only_if: Option<&'static str>,
}

/// A credential of the page and the secret param it became.
#[derive(Debug, Clone)]
pub struct Secret {
    pub value: String,
    pub param: String,
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Default, Clone)]
pub struct Param {
    pub default: Option<String>,
    pub help: String,
    pub secret: bool,
}

#[derive(Debug, Default)]
pub struct Step {
    pub id: String,
    pub title: String,
    /// The heading above this one, if any (not written: folding guidance reads it).
    pub parent: Option<String>,
    pub line: usize,
    pub guidance: Vec<String>,
    pub checks: Vec<Item>,
    pub actions: Vec<Item>,
    pub wait: Option<Wait>,
    pub messages: Vec<String>,
}

/// A check or an action: its kind's key and spec.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub title: Option<String>,
    /// The source: `line 23: kubectl get pods -n video-processing -l app=worker`.
    pub from: String,
    /// What a reviewer should look at, if anything.
    pub review: Option<String>,
    pub kind: &'static str,
    pub spec: Y,
    pub unit: Option<String>,
    /// An action's `after:`: the step whose wait it waits for (a revert).
    pub after: Option<String>,
}

#[derive(Debug)]
pub struct Wait {
    pub check: String,
    pub until: String,
    pub every: String,
    pub from: String,
}

impl Draft {
    /// The credentials the page wrote, to mask wherever its text is repeated.
    pub fn secret_values(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.value.as_str()).collect()
    }

    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# Imported by `oncall import` from {}.\n",
            comment(&self.source)
        ));
        out.push_str(
            "# Each check and action names the line it came from; `review:` marks what a human should look at.\n",
        );
        out.push_str(&format!("id: {}\n", scalar(&self.id)));
        out.push_str(&format!("title: {}\n", scalar(&self.title)));
        out.push_str(&format!(
            "severity: {}    # {}\n",
            scalar(&self.severity),
            comment(&self.severity_note)
        ));
        if let Some(description) = &self.description {
            text_field(&mut out, 0, "description", description);
        }
        if !self.alerts.is_empty() {
            let alerts: Vec<Y> = self.alerts.iter().map(Y::str).collect();
            out.push_str(&format!("alerts: {}\n", flow(&Y::Seq(alerts))));
        }
        for (key, params) in [("params", &self.params), ("endpoints", &self.endpoints)] {
            if params.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{key}:\n"));
            for (name, param) in params {
                out.push_str(&format!("  {}:\n", scalar(name)));
                if let Some(default) = &param.default {
                    out.push_str(&format!("    default: {}\n", scalar(default)));
                }
                if param.secret {
                    out.push_str("    secret: true\n");
                }
                out.push_str(&format!("    help: {}\n", scalar(&comment(&param.help))));
            }
        }
        if !self.escalation.is_empty() {
            out.push_str("\nescalation:\n");
            // "If no response" needs an action that acknowledges; without one it is said as a
            // comment for the reviewer, and the level is a plain timer.
            let acknowledges = self
                .steps
                .iter()
                .flat_map(|s| &s.actions)
                .any(|a| crate::backends::kinds::ACKNOWLEDGING.contains(&a.kind));
            for e in &self.escalation {
                let mut conditions = String::new();
                if let Some(only_if) = e.only_if {
                    conditions.push_str(&format!(", if: {only_if}"));
                }
                match e.unless {
                    Some("acknowledged") if !acknowledges => out.push_str(
                        "  # review: called if no response; add a `silence` or `pagerduty` action that acknowledges, then `unless: acknowledged`\n",
                    ),
                    Some(unless) => conditions.push_str(&format!(", unless: {unless}")),
                    None => {}
                }
                out.push_str(&format!(
                    "  - {{ after: {}, to: {}{conditions} }}\n",
                    scalar(&e.after),
                    scalar(&e.to)
                ));
            }
        }
        out.push_str("\nsteps:\n");
        for step in &self.steps {
            step.write(&mut out);
        }
        if !self.messages.is_empty() {
            out.push_str("\nmessages:\n");
            for (name, text) in &self.messages {
                text_field(&mut out, 2, name, text);
            }
        }
        out
    }
}

impl Step {
    fn write(&self, out: &mut String) {
        out.push_str(&format!("  # line {}\n", self.line));
        out.push_str(&format!("  - id: {}\n", scalar(&self.id)));
        out.push_str(&format!("    title: {}\n", scalar(&self.title)));
        if !self.guidance.is_empty() {
            text_field(out, 4, "guidance", &self.guidance.join("\n"));
        }
        for (key, items) in [("checks", &self.checks), ("actions", &self.actions)] {
            if items.is_empty() {
                continue;
            }
            out.push_str(&format!("    {key}:\n"));
            for item in items {
                item.write(out);
            }
        }
        if let Some(wait) = &self.wait {
            out.push_str(&format!("    # {}\n", comment(&wait.from)));
            if wait.until == "false" {
                out.push_str("    # review: the page watched this with no end; the wait polls until you stop it (Ctrl-C) or 30m pass: write the level it should reach (until: value < 1)\n");
            }
            out.push_str(&format!(
                "    wait: {{ check: {}, until: {}, every: {}, timeout: 30m }}\n",
                scalar(&wait.check),
                scalar(&wait.until),
                scalar(&wait.every)
            ));
        }
        if !self.messages.is_empty() {
            let names: Vec<Y> = self.messages.iter().map(Y::str).collect();
            out.push_str(&format!("    messages: {}\n", flow(&Y::Seq(names))));
        }
        out.push('\n');
    }
}

impl Item {
    fn write(&self, out: &mut String) {
        out.push_str(&format!("      # {}\n", comment(&self.from)));
        if let Some(review) = &self.review {
            out.push_str(&format!("      # review: {}\n", comment(review)));
        }
        out.push_str(&format!("      - id: {}\n", scalar(&self.id)));
        if let Some(title) = &self.title {
            out.push_str(&format!("        title: {}\n", scalar(title)));
        }
        if let Some(after) = &self.after {
            out.push_str(&format!("        after: {}\n", scalar(after)));
        }
        out.push_str(&format!("        {}: {}\n", self.kind, flow(&self.spec)));
        if let Some(unit) = &self.unit {
            out.push_str(&format!("        unit: {}\n", scalar(unit)));
        }
    }
}
