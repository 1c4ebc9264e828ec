//! Where each incident stands, read from its timeline: open, running, interrupted or resolved,
//! with its mode, runbook, who opened it and the last step it reached.

use super::{Store, open_regular, read};
use crate::engine::event::{Event, EventKind, Mode};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its run is going on now (its process holds the timeline).
    Running,
    /// Its run finished, and it is not resolved.
    Open,
    /// Its run was killed or cut off: no `run_finished`, or an `interrupted` event.
    Interrupted,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Open => "open",
            Status::Interrupted => "interrupted",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub status: Status,
    pub mode: Mode,
    pub runbook: String,
    pub title: String,
    pub severity: String,
    pub opened_by: String,
    pub opened_at: jiff::Timestamp,
    /// The id and title of the last step that started.
    pub last_step: Option<(String, String)>,
    /// Who runs it: who opened it, or who resumed it last.
    pub driver: String,
    /// The host the driver runs it from.
    pub host: String,
}

impl Summary {
    /// A summary of an incident's events; None for a timeline that does not open an incident.
    pub fn of(id: &str, events: &[Event], running: bool) -> Option<Summary> {
        let first = events
            .iter()
            .find(|e| matches!(e.kind, EventKind::IncidentOpened { .. }))?;
        let EventKind::IncidentOpened {
            runbook,
            title,
            severity,
            mode,
            user,
            ..
        } = &first.kind
        else {
            return None;
        };
        let has = |f: fn(&EventKind) -> bool| events.iter().any(|e| f(&e.kind));
        let status = if has(|k| matches!(k, EventKind::Resolved { .. })) {
            Status::Resolved
        } else if running {
            Status::Running
        } else if has(|k| matches!(k, EventKind::Interrupted { .. }))
            || !has(|k| matches!(k, EventKind::RunFinished { .. }))
        {
            Status::Interrupted
        } else {
            Status::Open
        };
        let last_step = events.iter().rev().find_map(|e| match &e.kind {
            EventKind::StepStarted { step, title, .. } => Some((step.clone(), title.clone())),
            _ => None,
        });
        let (driver, host) = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Resumed { user, host, .. } => Some((user.clone(), host.clone())),
                _ => None,
            })
            .unwrap_or_else(|| (user.clone(), super::host()));
        Some(Summary {
            driver,
            host,
            id: id.to_string(),
            status,
            mode: *mode,
            runbook: runbook.clone(),
            title: title.clone(),
            severity: severity.clone(),
            opened_by: user.clone(),
            opened_at: first.ts,
            last_step,
        })
    }

    /// Not resolved: a note or `resolve` may still go to it.
    pub fn unresolved(&self) -> bool {
        self.status != Status::Resolved
    }
}

/// An incident as `oncall incidents` lists it: its summary, or why its timeline says too little
/// for one (empty after a full disk, unreadable, no opening event). Such an incident is still
/// listed: someone may have worked on it.
pub enum Listed {
    Summary(Summary),
    Incomplete { id: String, why: String },
}

impl Store {
    /// Every incident, oldest first.
    pub fn summaries(&self) -> Vec<Listed> {
        self.list()
            .into_iter()
            .map(|id| {
                let path = self.path(&id);
                let why = match read(&path) {
                    Ok(events) => match Summary::of(&id, &events, running(&path)) {
                        Some(summary) => return Listed::Summary(summary),
                        None if events.is_empty() => "no event could be read".to_string(),
                        None => "no incident_opened event".to_string(),
                    },
                    Err(err) => err.to_string(),
                };
                Listed::Incomplete { id, why }
            })
            .collect()
    }

    pub fn summary(&self, id: &str) -> Option<Summary> {
        let path = self.path(id);
        match read(&path) {
            Ok(events) => Summary::of(id, &events, running(&path)),
            Err(err) => {
                eprintln!("warning: {err}; passed over");
                None
            }
        }
    }

    /// The newest live incident, resolved or not: what `report` and `message` read by default.
    pub fn latest_live(&self) -> Result<Summary, super::TimelineError> {
        self.list()
            .into_iter()
            .rev()
            .filter_map(|id| self.summary(&id))
            .find(|s| s.mode == Mode::Live)
            .ok_or_else(|| super::TimelineError::NoLiveIncident(self.dir.clone()))
    }

    /// The newest live incident that is not resolved: where `note` and `resolve` go by default.
    /// Dry runs and drills rehearse; they take notes only when named. Read newest first, so the
    /// usual case reads one timeline.
    pub fn latest_open_live(&self) -> Option<Summary> {
        self.list()
            .into_iter()
            .rev()
            .filter_map(|id| self.summary(&id))
            .find(|s| s.mode == Mode::Live && s.unresolved())
    }
}

/// Whether a run holds this timeline now: it keeps a lock on it while it runs, and the kernel
/// drops the lock when the process ends, however it ends.
pub(super) fn running(path: &std::path::Path) -> bool {
    let Ok(file) = open_regular(path, OpenOptions::new().read(true)) else {
        return false;
    };
    !hold(&file)
}

/// Takes the lock that says a run holds this timeline (see `running`), for as long as the file
/// stays open; false when another process holds it.
pub(super) fn hold(file: &std::fs::File) -> bool {
    // SAFETY: flock on a descriptor the caller keeps open.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    taken || std::io::Error::last_os_error().raw_os_error() != Some(libc::EWOULDBLOCK)
}
