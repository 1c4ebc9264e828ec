//! Sharing what this machine wrote: the one way local events reach the store, used by every
//! command that reaches it, by `oncall store sync`, and in the background of a run.

use super::postgres::{Postgres, Settings};
use super::{Entry, StoreError, cursor};
use crate::engine::event::{Event, EventKind, Sink};
use crate::timeline;
use std::time::Duration;
use tokio::sync::mpsc;

/// Shares the events of one local timeline the store does not have yet, in the order they were
/// written; returns how many were sent.
pub async fn incident(
    pg: &mut Postgres,
    local: &timeline::Store,
    store: &str,
    id: &str,
) -> Result<usize, StoreError> {
    let from = cursor::read(local, store, id);
    let timeline::Tail { lines, end } = timeline::tail(&local.path(id), from)?;
    if end == from {
        return Ok(0);
    }
    let entries: Vec<Entry> = lines
        .into_iter()
        .filter_map(|(line, event)| event.map(|e| Entry::of_line(id, &line, e)))
        .collect();
    pg.append(id, &entries).await?;
    cursor::write(local, store, id, end).map_err(|source| {
        StoreError::Local(timeline::TimelineError::Write {
            path: local.base.join("shared").join(id),
            source,
        })
    })?;
    Ok(entries.len())
}

/// How long a finished run waits for its last events to reach the store before leaving them
/// to the next command.
const FINISH_WITHIN: Duration = Duration::from_secs(5);
/// How long one round of sharing may take before the store counts as not answering.
const ROUND_WITHIN: Duration = Duration::from_secs(10);
/// After the store did not answer, how long before a run tries it again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A run's events on their way to the store: the sink only wakes a background task, which
/// reads the fsynced timeline and shares it, so the engine never waits on the network.
pub struct Sharing {
    /// `true` says the run is over: share what is left, then stop.
    wake: mpsc::UnboundedSender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sharing {
    pub fn start(settings: Settings, local: timeline::Store, incident: String) -> Sharing {
        let (wake, mut woken) = mpsc::unbounded_channel::<bool>();
        let task = tokio::spawn(async move {
            let store = settings.identity();
            let mut pg: Option<Postgres> = None;
            let mut said = false;
            let mut down_since: Option<tokio::time::Instant> = None;
            while let Some(mut last) = woken.recv().await {
                while let Ok(more) = woken.try_recv() {
                    last |= more;
                }
                // The run's end is always worth one more try: what it shares then, no later
                // command has to.
                if !last && down_since.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                    continue;
                }
                let round = async {
                    let mut ids = vec![incident.clone()];
                    if pg.is_none() {
                        let conn = settings.connect().await?;
                        conn.check().await?;
                        pg = Some(conn);
                        // Newly reached: what earlier commands left waiting goes first.
                        ids = local.list();
                    }
                    let conn = pg.as_mut().expect("connected above");
                    for id in &ids {
                        self::incident(conn, &local, &store, id).await?;
                    }
                    Ok::<_, StoreError>(())
                };
                let result = match tokio::time::timeout(ROUND_WITHIN, round).await {
                    Ok(result) => result,
                    Err(_) => Err(StoreError::Unreachable {
                        store: settings.shown.clone(),
                        cause: format!("no answer within {}s", ROUND_WITHIN.as_secs()),
                    }),
                };
                match result {
                    Ok(_) => down_since = None,
                    Err(err) => {
                        pg = None;
                        down_since = Some(tokio::time::Instant::now());
                        if !said {
                            said = true;
                            eprintln!(
                                "warning: {err}; the run goes on, its events wait in the local timeline (`oncall store sync` shares them)"
                            );
                        }
                    }
                }
                if last {
                    break;
                }
            }
        });
        Sharing { wake, task }
    }

    /// The sink a run's recorder feeds, after the timeline's.
    pub fn sink(&self) -> ShareSink {
        ShareSink(self.wake.clone())
    }

    /// Shares what is left, waiting a few seconds at most; what is not shared by then waits.
    pub async fn finish(self) {
        let _ = self.wake.send(true);
        let _ = tokio::time::timeout(FINISH_WITHIN, self.task).await;
    }
}

/// Wakes the sharing task when an event was written.
#[derive(Clone)]
pub struct ShareSink(mpsc::UnboundedSender<bool>);

impl Sink for ShareSink {
    fn emit(&mut self, event: &Event) {
        if !matches!(event.kind, EventKind::CheckStarted { .. }) {
            let _ = self.0.send(false);
        }
    }
}
