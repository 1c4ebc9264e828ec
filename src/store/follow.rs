//! Following an incident as it is written: its events in order, from the first, until its run
//! ends or it is resolved.

use super::{Log, StoreError, Team};
use crate::engine::event::{Event, EventKind};
use crate::timeline;
use std::time::Duration;

/// Where a follower stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The run being followed ends (`run_finished` or `interrupted`).
    Finished,
    /// The incident is resolved.
    Resolved,
}

/// The most a follower waits before it reads again, even without being told of new events.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

impl Team {
    /// Hands an incident's events to `show` in order, from the first, as they are appended,
    /// until `until`; returns the last event. Reads the store when it has the incident
    /// (woken by its announcements, catching up by sequence number), else polls the local
    /// timeline.
    pub async fn follow(
        &mut self,
        incident: &str,
        until: Until,
        mut show: impl FnMut(&Event),
    ) -> Result<Event, StoreError> {
        let here = std::fs::symlink_metadata(self.local.path(incident)).is_ok();
        let shared = match &self.shared {
            Some(pg) => !Log::read(pg, incident, 0).await?.is_empty(),
            // A store that does not answer yet: follow it once it does, unless this machine
            // has the incident.
            None => self.settings.is_some() && !here,
        };
        if !shared && !here {
            return Err(timeline::TimelineError::NoSuchIncident(incident.to_string()).into());
        }
        if shared && let Some(pg) = &self.shared {
            pg.listen().await?;
        }
        let mut seen = 0i64;
        let mut said = false;
        loop {
            let round = async {
                let events = match (&self.shared, shared) {
                    (Some(pg), true) => Log::read(pg, incident, seen).await?,
                    (None, true) => {
                        return Err(StoreError::Unreachable {
                            store: self
                                .settings
                                .as_ref()
                                .map(|s| s.shown.clone())
                                .unwrap_or_default(),
                            cause: "not connected".into(),
                        });
                    }
                    (_, false) => Log::read(&self.local, incident, seen).await?,
                };
                Ok::<_, StoreError>(events)
            };
            let events = match round.await {
                Ok(events) => events,
                // A dropped connection loses nothing: once the store answers again, the
                // follower reads on from the last sequence number it showed.
                Err(err @ StoreError::Unreachable { .. }) if shared => {
                    if !said {
                        eprintln!("warning: {err}; following again once it answers");
                        said = true;
                    }
                    self.shared = None;
                    tokio::time::sleep(FOLLOW_POLL).await;
                    if let Some(settings) = &self.settings
                        && let Ok(pg) = settings.connect().await
                        && pg.listen().await.is_ok()
                    {
                        self.shared = Some(pg);
                    }
                    continue;
                }
                Err(err) => return Err(err),
            };
            seen += events.len() as i64;
            for (i, event) in events.iter().enumerate() {
                show(event);
                // A run that finished and was resumed since goes on: follow the resumed one.
                let resumed_later = events[i + 1..]
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Resumed { .. }));
                if ends(event, until) && !resumed_later {
                    return Ok(event.clone());
                }
            }
            match (&mut self.shared, shared) {
                (Some(pg), true) => Log::changed(pg, incident, FOLLOW_POLL).await,
                (None, true) => tokio::time::sleep(FOLLOW_POLL).await,
                (_, false) => Log::changed(&mut self.local, incident, FOLLOW_POLL).await,
            }
        }
    }
}

fn ends(event: &Event, until: Until) -> bool {
    match until {
        Until::Finished => matches!(
            event.kind,
            EventKind::RunFinished { .. } | EventKind::Interrupted { .. }
        ),
        Until::Resolved => matches!(event.kind, EventKind::Resolved { .. }),
    }
}
