//! Reminders while a run goes on: each escalation deadline that passes, and each status update
//! that falls due, is said on screen and recorded, whatever the run is doing then (checks, a
//! prompt, a wait).

use super::event::{Deadline, Event, EventKind, Recorder, Sink};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A status update every so often, naming the message to post.
pub struct Updates {
    pub every: Duration,
    pub message: Option<String>,
}

/// The messages as last rendered in this run: what an update reminder shows.
#[derive(Clone, Default)]
pub struct LatestMessages(Arc<Mutex<BTreeMap<String, String>>>);

impl Sink for LatestMessages {
    fn emit(&mut self, event: &Event) {
        if let EventKind::Message { name, text, .. } = &event.kind {
            let mut latest = self.0.lock().unwrap_or_else(|e| e.into_inner());
            latest.insert(name.clone(), text.clone());
        }
    }
}

/// The reminders of one run; dropping it (the run ended) stops them.
pub struct Reminders(Vec<tokio::task::JoinHandle<()>>);

impl Reminders {
    pub fn start(
        recorder: &Recorder,
        severity: String,
        mut deadlines: Vec<Deadline>,
        updates: Option<(Updates, LatestMessages)>,
    ) -> Reminders {
        deadlines.sort_by_key(|d| d.at);
        let escalations = {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                for deadline in deadlines {
                    let wait = deadline.at.duration_since(jiff::Timestamp::now());
                    if let Ok(wait) = Duration::try_from(wait) {
                        tokio::time::sleep(wait).await;
                    }
                    recorder.emit(EventKind::EscalationDue {
                        severity: severity.clone(),
                        to: deadline.to,
                        due: deadline.at,
                    });
                }
            })
        };
        let mut tasks = vec![escalations];
        if let Some((updates, latest)) = updates {
            let recorder = recorder.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(updates.every);
                ticks.tick().await; // the first tick is now: the incident has just opened
                loop {
                    ticks.tick().await;
                    let text = updates.message.as_ref().and_then(|name| {
                        let latest = latest.0.lock().unwrap_or_else(|e| e.into_inner());
                        latest.get(name).cloned()
                    });
                    recorder.emit(EventKind::UpdateDue {
                        message: updates.message.clone(),
                        text,
                    });
                }
            }));
        }
        Reminders(tasks)
    }
}

impl Drop for Reminders {
    fn drop(&mut self) {
        self.0.iter().for_each(|task| task.abort());
    }
}
