//! The report as Markdown, in the playbook's Post-Incident Report Template: its headings and its
//! tables, the facts filled in from the timeline, placeholders where only people can say.

use super::{Report, seconds};
use crate::engine::event::Mode;
use crate::timeline::Status;
use crate::view::duration;
use jiff::Timestamp;
use std::fmt::Write;

fn placeholder(what: &str) -> String {
    format!("_(to fill in: {what})_")
}

/// Text for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text for a list item or a paragraph: its lines kept together.
fn inline(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn local(ts: &Timestamp, format: &str) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime(format)
        .to_string()
}

fn list(out: &mut String, items: &[String], missing: &str) {
    if items.is_empty() {
        let _ = writeln!(out, "- {}", placeholder(missing));
    }
    for item in items {
        let _ = writeln!(out, "- {}", inline(item));
    }
}

/// One figure: the time it happened and how long after detection.
fn figure(out: &mut String, name: &str, at: Option<Timestamp>, after: Option<i64>, never: &str) {
    let text = match (at, after) {
        (Some(at), Some(after)) => format!(
            "{} ({} after detection)",
            local(&at, "%H:%M:%S"),
            duration(after)
        ),
        (Some(at), None) => local(&at, "%H:%M:%S"),
        _ => never.to_string(),
    };
    let _ = writeln!(out, "- **{name}**: {text}");
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let drill = if r.mode == Mode::Drill {
        " (drill)"
    } else {
        ""
    };
    let _ = writeln!(out, "# Incident Report: {}{drill}\n", inline(&r.title));
    match r.mode {
        Mode::Drill => {
            let _ = writeln!(
                out,
                "> This is a drill: a rehearsal on a recorded scenario. Nothing was sent to any system.\n"
            );
        }
        Mode::DryRun => {
            let _ = writeln!(
                out,
                "> This is a dry run: the checks ran for real, and no action was sent.\n"
            );
        }
        Mode::Live => {}
    }
    if r.status != Status::Resolved {
        let _ = writeln!(
            out,
            "> This incident is not resolved (it is {}): the figures are as of its last event.\n",
            r.status.as_str()
        );
    }

    let f = &r.figures;
    let _ = writeln!(out, "## Summary");
    let when = f
        .detected
        .map(|d| local(&d, "%Y-%m-%d %H:%M %Z"))
        .unwrap_or_default();
    let _ = writeln!(out, "- **Date/Time**: {when}");
    let so_far = if f.resolved.is_some() { "" } else { " so far" };
    let _ = writeln!(out, "- **Duration**: {}{so_far}", duration(f.duration_s));
    let _ = writeln!(out, "- **Severity**: {}", r.severity);
    let services = if r.services.is_empty() {
        placeholder("the services affected; a runbook's `services:` fills this")
    } else {
        r.services.join(", ")
    };
    let _ = writeln!(out, "- **Services Affected**: {services}");
    let users = match (&r.users_impacted, r.impact.first()) {
        (Some(value), _) => value.clone(),
        (None, Some(note)) => inline(note),
        (None, None) => placeholder("the users impacted; `oncall note --impact …`"),
    };
    let _ = writeln!(out, "- **Users Impacted**: {users}");
    let _ = writeln!(
        out,
        "- **Incident**: {} (runbook {}, opened by {})",
        r.incident, r.runbook, r.opened_by
    );
    figure(&mut out, "Detected", f.detected, None, "not known");
    figure(
        &mut out,
        "Acknowledged",
        f.acknowledged,
        f.time_to_acknowledge_s,
        "not acknowledged",
    );
    figure(
        &mut out,
        "First mitigation applied",
        f.first_mitigation,
        seconds(f.detected, f.first_mitigation),
        "none applied",
    );
    figure(
        &mut out,
        "Mitigated",
        f.mitigated,
        f.time_to_mitigate_s,
        "not verified (no wait met after a mitigation)",
    );
    figure(
        &mut out,
        "Resolved",
        f.resolved,
        f.time_to_resolve_s,
        "not resolved",
    );

    let _ = writeln!(out, "\n## Timeline");
    let _ = writeln!(out, "| Time | Action |");
    let _ = writeln!(out, "|------|--------|");
    for row in &r.timeline {
        let _ = writeln!(
            out,
            "| {} | {} |",
            local(&row.at, "%H:%M:%S"),
            cell(&row.event)
        );
    }

    let _ = writeln!(out, "\n## Root Cause");
    if r.root_cause.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            placeholder("the detailed analysis; `oncall note --root-cause …`")
        );
    }
    let causes: Vec<String> = r.root_cause.iter().map(|c| inline(c)).collect();
    if !causes.is_empty() {
        let _ = writeln!(out, "{}", causes.join("\n\n"));
    }

    let _ = writeln!(out, "\n## Impact Assessment");
    let _ = writeln!(
        out,
        "- Service availability: {}",
        placeholder("the percentage")
    );
    let user_impact = if r.impact.is_empty() {
        placeholder("a description; `oncall note --impact …`")
    } else {
        r.impact
            .iter()
            .map(|i| inline(i))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = writeln!(out, "- User impact: {user_impact}");
    let _ = writeln!(out, "- Business impact: {}", placeholder("a description"));

    let _ = writeln!(out, "\n## Response Evaluation");
    let _ = writeln!(out, "### What Went Well");
    list(&mut out, &r.went_well, "`oncall note --went-well …`");
    let _ = writeln!(out, "\n### Areas for Improvement");
    list(&mut out, &r.improve, "`oncall note --improve …`");

    let _ = writeln!(out, "\n## Action Items");
    let _ = writeln!(out, "| Item | Owner | Due Date | Status |");
    let _ = writeln!(out, "|------|-------|----------|--------|");
    if r.action_items.is_empty() {
        let _ = writeln!(
            out,
            "| {} | | | |",
            placeholder("`oncall note --action-item … --owner … --due …`")
        );
    }
    for item in &r.action_items {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&item.item),
            cell(item.owner.as_deref().unwrap_or("")),
            cell(item.due.as_deref().unwrap_or("")),
            item.status
        );
    }

    let _ = writeln!(out, "\n## Lessons Learned");
    if r.lessons.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            placeholder("the key takeaways; `oncall note --lesson …`")
        );
    }
    for lesson in &r.lessons {
        let _ = writeln!(out, "- {}", inline(lesson));
    }
    out
}
