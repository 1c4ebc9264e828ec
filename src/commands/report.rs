//! `oncall report`: the post-incident report of an incident, as Markdown or JSON.

use super::Setup;
use crate::engine::event::Opening;
use crate::report::summary::{self, Counted, summarize};
use crate::report::{FromRunbook, Report, figures, markdown};
use crate::timeline::{self, Summary};
use crate::view::{print_json, print_out};

pub async fn run(setup: &Setup, incident: Option<&str>) -> anyhow::Result<i32> {
    let team = setup.team().await?;
    let (id, events) = team.incident(incident).await?;
    let summary = team
        .summary(&id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("incident {id} has no opening event"))?;
    let report = Report::build(&id, &events, summary.status, from_runbook(setup, &events))
        .ok_or_else(|| anyhow::anyhow!("incident {id} has no opening event"))?;
    if setup.json() {
        print_json(&serde_json::to_value(&report)?)?;
    } else {
        print_out(&markdown::render(&report))?;
    }
    Ok(0)
}

/// The runbook's `services:` and `users_impacted:`, when the runbook can still be found.
fn from_runbook(setup: &Setup, events: &[crate::engine::event::Event]) -> FromRunbook {
    let loaded = Opening::of(events).and_then(|o| super::resume::load_runbook(setup, &o).ok());
    match loaded {
        Some(loaded) => FromRunbook {
            services: loaded.runbook.services.clone(),
            users_impacted_check: loaded.runbook.users_impacted.map(|c| c.value),
        },
        None => FromRunbook::default(),
    }
}

/// `oncall report --summary`: the figures across incidents, from every timeline in the state folder.
pub fn summary(setup: &Setup, since: Option<std::time::Duration>) -> anyhow::Result<i32> {
    let store = setup.store();
    let since = since
        .map(|d| {
            let span = jiff::SignedDuration::try_from(d)?;
            jiff::Timestamp::now().checked_sub(span)
        })
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let mut counted = Vec::new();
    for id in store.list() {
        let events = match timeline::read(&store.path(&id)) {
            Ok(events) => events,
            Err(err) => {
                eprintln!("warning: {err}; passed over");
                continue;
            }
        };
        let Some(incident) = Summary::of(&id, &events, false) else {
            continue;
        };
        if since.is_some_and(|since| incident.opened_at < since) {
            continue;
        }
        counted.push(Counted {
            mode: incident.mode,
            runbook: incident.runbook,
            severity: incident.severity,
            figures: figures(&events),
        });
    }
    let summary = summarize(counted, since);
    if setup.json() {
        print_json(&serde_json::to_value(&summary)?)?;
    } else {
        print_out(&summary::render(&summary))?;
    }
    Ok(0)
}
