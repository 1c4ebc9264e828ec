//! `oncall incidents`: one line per incident, with where it stands.

use super::Setup;
use crate::engine::event::Mode;
use crate::timeline::Listed;
use crate::view::{print_json, print_out};
use comfy_table::{Table, presets};
use serde_json::json;

/// `--open`: the live incidents not resolved, the ones that may still need someone. Dry runs
/// and drills are rehearsals: the full list shows them.
pub async fn run(setup: &Setup, open: bool) -> anyhow::Result<i32> {
    let team = setup.team().await?;
    let mut incidents = team.list().await?;
    if open {
        // An incomplete one may still need someone: it stays.
        incidents.retain(|l| match l {
            Listed::Summary(s) => s.mode == Mode::Live && s.unresolved(),
            Listed::Incomplete { .. } => true,
        });
    }
    let now = jiff::Timestamp::now();
    if setup.json() {
        let items: Vec<_> = incidents
            .iter()
            .map(|l| match l {
                Listed::Summary(s) => json!({
                    "id": s.id,
                    "status": s.status,
                    "mode": s.mode,
                    "runbook": s.runbook,
                    "title": s.title,
                    "severity": s.severity,
                    "opened_by": s.opened_by,
                    "driver": s.driver,
                    "host": s.host,
                    "opened_at": s.opened_at,
                    "age_seconds": now.duration_since(s.opened_at).as_secs().max(0),
                    "last_step": s.last_step.as_ref().map(|(id, title)| json!({ "id": id, "title": title })),
                }),
                Listed::Incomplete { id, why } => {
                    json!({ "id": id, "status": "incomplete", "why": why })
                }
            })
            .collect();
        print_json(&json!(items))?;
        return Ok(0);
    }
    if incidents.is_empty() {
        let what = if open { "open live " } else { "" };
        eprintln!("no {what}incidents in {}", setup.store().dir.display());
        return Ok(0);
    }
    // Who drives each, and from where, matters once incidents are shared.
    let team = team.settings.is_some();
    let mut table = Table::new();
    let mut header = vec!["INCIDENT", "STATUS", "MODE", "SEV", "BY"];
    if team {
        header.push("DRIVER");
    }
    header.extend(["AGE", "LAST STEP"]);
    table.load_preset(presets::NOTHING).set_header(header);
    for l in &incidents {
        table.add_row(match l {
            Listed::Summary(s) => {
                let mut row = vec![
                    s.id.clone(),
                    s.status.as_str().to_string(),
                    crate::view::json_name(&s.mode),
                    s.severity.clone(),
                    s.opened_by.clone(),
                ];
                if team {
                    row.push(format!("{}@{}", s.driver, s.host));
                }
                row.push(crate::view::age(now.duration_since(s.opened_at).as_secs()));
                row.push(
                    s.last_step
                        .as_ref()
                        .map(|(id, _)| id.clone())
                        .unwrap_or_default(),
                );
                row
            }
            Listed::Incomplete { id, .. } => vec![id.clone(), "timeline incomplete".into()],
        });
    }
    let text = table.to_string();
    let text: String = text.lines().map(|l| format!("{}\n", l.trim())).collect();
    print_out(&text)?;
    for l in &incidents {
        if let Listed::Incomplete { id, why } = l {
            eprintln!("{id}: timeline incomplete: {why}");
        }
    }
    Ok(0)
}
