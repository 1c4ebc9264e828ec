//! `oncall note` and `oncall resolve`: add to an incident's timeline after the run.

use super::Setup;
use crate::engine::event::{Event, EventKind};
use crate::timeline::user;

fn append(setup: &Setup, incident: Option<&str>, kind: EventKind) -> anyhow::Result<i32> {
    let store = setup.store();
    let id = match incident {
        Some(id) => id.to_string(),
        None => store.latest_open()?.ok_or_else(|| {
            anyhow::anyhow!(
                "no open incident in {}; name one with --incident ID (`oncall timeline --list`)",
                store.dir.display()
            )
        })?,
    };
    let mut timeline = store.append(&id)?;
    timeline.write(&Event {
        ts: jiff::Timestamp::now(),
        incident: id.clone(),
        kind,
    })?;
    eprintln!("recorded in {id}");
    Ok(0)
}

pub fn note(setup: &Setup, text: &str, incident: Option<&str>) -> anyhow::Result<i32> {
    if text.trim().is_empty() {
        anyhow::bail!("the note is empty: oncall note \"what you saw or did\"");
    }
    append(
        setup,
        incident,
        EventKind::Note {
            text: text.to_string(),
            user: user(),
        },
    )
}

pub fn resolve(setup: &Setup, text: Option<&str>, incident: Option<&str>) -> anyhow::Result<i32> {
    append(
        setup,
        incident,
        EventKind::Resolved {
            text: text.unwrap_or("resolved").to_string(),
            user: user(),
        },
    )
}
