//! Escalation reminders: while a run goes on, each escalation deadline that passes is said on
//! screen and recorded, whatever the run is doing then (checks, a prompt, a wait).

use super::event::{Deadline, EventKind, Recorder};

/// The reminders of one run; dropping it (the run ended) stops them.
pub struct Reminders(tokio::task::JoinHandle<()>);

impl Reminders {
    pub fn start(recorder: Recorder, severity: String, deadlines: Vec<Deadline>) -> Reminders {
        let mut deadlines = deadlines;
        deadlines.sort_by_key(|d| d.at);
        Reminders(tokio::spawn(async move {
            for deadline in deadlines {
                let wait = deadline.at.duration_since(jiff::Timestamp::now());
                if let Ok(wait) = std::time::Duration::try_from(wait) {
                    tokio::time::sleep(wait).await;
                }
                recorder.emit(EventKind::EscalationDue {
                    severity: severity.clone(),
                    to: deadline.to,
                    due: deadline.at,
                });
            }
        }))
    }
}

impl Drop for Reminders {
    fn drop(&mut self) {
        self.0.abort();
    }
}
