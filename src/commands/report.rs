//! `oncall report`: the post-incident report of an incident, as Markdown or JSON.

use super::Setup;
use crate::engine::event::{EventKind, Mode};
use crate::report::{FromRunbook, Report, markdown};
use crate::timeline::{self, TimelineError};
use crate::view::{print_json, print_out};

pub fn run(setup: &Setup, incident: Option<&str>) -> anyhow::Result<i32> {
    let store = setup.store();
    let id = match incident {
        Some(id) => id.to_string(),
        None => store
            .list()
            .into_iter()
            .rev()
            .filter_map(|id| store.summary(&id))
            .find(|s| s.mode == Mode::Live)
            .map(|s| s.id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no live incident in {}; name a drill or a dry run: `oncall report ID` (`oncall incidents` lists them)",
                    store.dir.display()
                )
            })?,
    };
    let path = store.path(&id);
    if !path.exists() {
        return Err(TimelineError::NoSuchIncident(id).into());
    }
    let events = timeline::read(&path)?;
    let summary = store
        .summary(&id)
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
    let Some(id) = events.iter().find_map(|e| match &e.kind {
        EventKind::IncidentOpened {
            runbook, origin, ..
        } => Some(if std::path::Path::new(origin).is_file() {
            origin.clone()
        } else {
            runbook.clone()
        }),
        _ => None,
    }) else {
        return FromRunbook::default();
    };
    match crate::runbook::resolve(&setup.catalog(), &id) {
        Ok(loaded) => FromRunbook {
            services: loaded.runbook.services.clone(),
            users_impacted_check: loaded.runbook.users_impacted.map(|c| c.value),
        },
        Err(_) => FromRunbook::default(),
    }
}
