//! `oncall note` and `oncall resolve`: add to an incident's timeline, during its run or after.

use super::Setup;
use crate::engine::event::{EventKind, NoteTag, Recorder};
use crate::timeline::{TimelineSink, user};

fn append(setup: &Setup, incident: Option<&str>, kinds: Vec<EventKind>) -> anyhow::Result<i32> {
    let store = setup.store();
    let (id, chosen) = match incident {
        Some(id) => (id.to_string(), None),
        None => {
            let open = store.latest_open_live().ok_or_else(|| {
                anyhow::anyhow!(
                    "no open live incident in {}; dry runs and drills take notes only when named: --incident ID (`oncall incidents` lists them)",
                    store.dir.display()
                )
            })?;
            (open.id.clone(), Some(open))
        }
    };
    // The same path as a run's events: bounded, then appended and fsynced in one write.
    let timeline = TimelineSink::new(store.append(&id)?);
    let recorder = Recorder::new(id.clone(), vec![Box::new(timeline)]);
    for kind in kinds {
        recorder.emit(kind);
    }
    if let Some(failure) = recorder.failure() {
        anyhow::bail!("nothing was recorded in {id}: {failure}");
    }
    match chosen {
        // Said in full when oncall chose: the engineer sees which incident took the words.
        Some(open) => eprintln!(
            "recorded in {id} (the latest open live incident: {}, {}, opened by {} at {})",
            open.runbook,
            open.status.as_str(),
            open.opened_by,
            open.opened_at
                .to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
        ),
        None => eprintln!("recorded in {id}"),
    }
    Ok(0)
}

pub fn note(setup: &Setup, args: &crate::cli::NoteArgs) -> anyhow::Result<i32> {
    let (text, tag) = args.tagged();
    if (args.owner.is_some() || args.due.is_some()) && tag != Some(NoteTag::ActionItem) {
        anyhow::bail!(
            "--owner and --due belong to an action item: oncall note --action-item \"what to do\" --owner NAME --due DATE"
        );
    }
    if text.trim().is_empty() {
        anyhow::bail!("the note is empty: oncall note \"what you saw or did\"");
    }
    append(
        setup,
        args.incident.as_deref(),
        vec![EventKind::Note {
            text,
            user: user(),
            tag,
            owner: args.owner.clone(),
            due: args.due.clone(),
        }],
    )
}

pub fn resolve(
    setup: &Setup,
    text: Option<&str>,
    root_cause: Option<&str>,
    incident: Option<&str>,
) -> anyhow::Result<i32> {
    let mut kinds: Vec<EventKind> = root_cause
        .filter(|t| !t.trim().is_empty())
        .map(|text| EventKind::Note {
            text: text.to_string(),
            user: user(),
            tag: Some(NoteTag::RootCause),
            owner: None,
            due: None,
        })
        .into_iter()
        .collect();
    kinds.push(EventKind::Resolved {
        text: text.unwrap_or("resolved").to_string(),
        user: user(),
    });
    append(setup, incident, kinds)
}
