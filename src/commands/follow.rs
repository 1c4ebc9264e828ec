//! `oncall follow`: another responder's run, live, drawn by the same view as its own terminal
//! from the events the store (or this machine's timeline) holds.

use super::Setup;
use crate::engine::event::{EventKind, Sink};
use crate::store::Until;
use crate::timeline::{Listed, Status};
use crate::view::{self, terminal::TerminalView};
use std::io::Write;

pub async fn run(setup: &Setup, incident: Option<&str>, until: Until) -> anyhow::Result<i32> {
    let mut team = setup.team().await?;
    let id = match incident {
        Some(id) => id.to_string(),
        None => latest_running(&team).await?,
    };
    let json = setup.json();
    let mut terminal: Option<TerminalView> = None;
    let last = team
        .follow(&id, until, |event| {
            if json {
                let line = serde_json::to_string(event).expect("events always serialize");
                let mut out = std::io::stdout().lock();
                // A closed pipe ends nothing here: the follower may stop reading.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
                return;
            }
            let view = terminal.get_or_insert_with(|| {
                let steps = match &event.kind {
                    EventKind::IncidentOpened { steps, .. } => *steps,
                    _ => 0,
                };
                TerminalView::new(
                    Box::new(std::io::stdout()),
                    view::use_color(setup.global.color, view::stdout_is_terminal()),
                    view::Fit::new(setup.global.wide, false),
                    false,
                    None,
                    steps,
                )
            });
            view.emit(event);
        })
        .await?;
    Ok(match last.kind {
        EventKind::Interrupted { signal, .. } => {
            eprintln!(
                "the run of {id} was interrupted ({signal}): `oncall resume {id}` goes on with it"
            );
            1
        }
        _ => 0,
    })
}

/// The newest incident whose run goes on, else the newest.
async fn latest_running(team: &crate::store::Team) -> anyhow::Result<String> {
    let all = team.list().await?;
    let running = all.iter().rev().find_map(|l| match l {
        Listed::Summary(s) if s.status == Status::Running => Some(s.id.clone()),
        _ => None,
    });
    match running {
        Some(id) => Ok(id),
        None => Ok(team.latest().await?),
    }
}
