//! `oncall drill --history`: past scored drills, by engineer and scenario.

use super::Setup;
use crate::engine::event::{EventKind, Mode};
use crate::view::{print_json, print_out};
use comfy_table::{Table, presets};
use serde_json::json;

pub fn history(setup: &Setup, runbook: Option<&str>) -> anyhow::Result<i32> {
    let store = setup.store();
    let mut rows = Vec::new();
    for id in store.list() {
        let Ok(events) = crate::timeline::read(&store.path(&id)) else {
            continue;
        };
        let Some((rb, user, at)) = events.iter().find_map(|e| match &e.kind {
            EventKind::IncidentOpened {
                runbook,
                user,
                mode: Mode::Drill,
                ..
            } => Some((runbook.clone(), user.clone(), e.ts)),
            _ => None,
        }) else {
            continue;
        };
        if runbook.is_some_and(|r| r != rb) {
            continue;
        }
        let Some(card) = events.iter().rev().find_map(|e| match &e.kind {
            card @ EventKind::DrillScored {
                not_scored: None, ..
            } => Some(card.clone()),
            _ => None,
        }) else {
            continue;
        };
        rows.push((id, rb, user, at, card));
    }
    if setup.json() {
        let items: Vec<_> = rows
            .iter()
            .map(|(id, rb, user, at, card)| {
                json!({ "incident": id, "runbook": rb, "engineer": user, "at": at, "score": card })
            })
            .collect();
        print_json(&json!(items))?;
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!(
            "no scored drills in {} (a drill is scored when an engineer answers it on a terminal, and its scenario names `correct:` or `harmful:` mitigations)",
            store.dir.display()
        );
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(vec!["WHEN", "ENGINEER", "RUNBOOK", "SCENARIO", "SCORE"]);
    for (_, rb, user, at, card) in &rows {
        let EventKind::DrillScored { scenario, .. } = card else {
            continue;
        };
        table.add_row(vec![
            at.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string(),
            user.clone(),
            rb.clone(),
            scenario.clone(),
            crate::view::score_line(card),
        ]);
    }
    print_out(&format!("{table}\n"))?;
    Ok(0)
}
