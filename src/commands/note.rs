//! `oncall note` and `oncall resolve`: add to an incident's timeline, during its run or after,
//! on this machine or (with a store) on another responder's incident.

use super::Setup;
use crate::engine::event::{Event, EventKind, NoteTag, Recorder, Sink};
use crate::timeline::user;
use std::sync::{Arc, Mutex};

/// Keeps the events a recorder stamped, bounded and redacted, for the team to append.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Event>>>);

impl Sink for Kept {
    fn emit(&mut self, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

async fn append(
    setup: &Setup,
    incident: Option<&str>,
    kinds: Vec<EventKind>,
) -> anyhow::Result<i32> {
    let mut team = setup.team().await?;
    let (id, chosen) = match incident {
        Some(id) if !team.has(id).await? => {
            return Err(crate::timeline::TimelineError::NoSuchIncident(id.to_string()).into());
        }
        Some(id) => (id.to_string(), None),
        None => {
            let open = team.latest_live(true).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no open live incident in {}; dry runs and drills take notes only when named: --incident ID (`oncall incidents` lists them)",
                    team.local.dir.display()
                )
            })?;
            (open.id.clone(), Some(open))
        }
    };
    // The same path as a run's events: bounded and redacted, then appended and fsynced here
    // first, then shared.
    let kept = Kept::default();
    let recorder = Recorder::new(id.clone(), vec![Box::new(kept.clone())]);
    for kind in kinds {
        recorder.emit(kind);
    }
    let events = std::mem::take(&mut *kept.0.lock().unwrap_or_else(|e| e.into_inner()));
    team.append(&id, events)
        .await
        .map_err(|e| anyhow::anyhow!("nothing was recorded in {id}: {e}"))?;
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

pub async fn note(setup: &Setup, args: &crate::cli::NoteArgs) -> anyhow::Result<i32> {
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
    .await
}

pub async fn resolve(
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
    if let Some(id) = incident {
        refuse_resolved_again(setup, id).await?;
    }
    kinds.push(EventKind::Resolved {
        text: text.unwrap_or("resolved").to_string(),
        user: user(),
    });
    append(setup, incident, kinds).await
}

/// An incident is resolved once: a second `resolve` says when and by whom, and records nothing.
async fn refuse_resolved_again(setup: &Setup, id: &str) -> anyhow::Result<()> {
    let team = setup.team().await?;
    if !team.has(id).await? {
        return Ok(());
    }
    let (events, _) = team.events(id).await?;
    let resolved = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Resolved { user, text } => Some((e.ts, user, text)),
        _ => None,
    });
    if let Some((at, by, text)) = resolved {
        anyhow::bail!(
            "incident {id} was already resolved at {} by {by} ({text}): nothing recorded; `oncall note --incident {id}` adds to it",
            crate::view::clock_seconds(&at)
        );
    }
    Ok(())
}
