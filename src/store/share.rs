//! Sharing what this machine wrote: the one way local events reach the store, used by every
//! command that reaches it, by `oncall store sync`, and in the background of a run.

use super::lease::Taken;
use super::postgres::{Postgres, Settings};
use super::{Entry, StoreError, cursor};
use crate::engine::event::{Event, EventKind, Sink};
use crate::timeline::{self, host, user};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Shares the events of one local timeline the store does not have yet, in the order they were
/// written; returns how many were sent.
pub async fn incident(
    pg: &mut Postgres,
    local: &timeline::Store,
    store: &str,
    id: &str,
) -> Result<usize, StoreError> {
    Ok(shared(pg, local, store, id, None).await?.unwrap_or(0))
}

/// As [`incident`]; with `lease`, only while that epoch is still the incident's lease (None
/// when it is not: nothing was shared).
async fn shared(
    pg: &mut Postgres,
    local: &timeline::Store,
    store: &str,
    id: &str,
    lease: Option<i64>,
) -> Result<Option<usize>, StoreError> {
    let from = cursor::read(local, store, id);
    let timeline::Tail { lines, end } = timeline::tail(&local.path(id), from)?;
    let entries: Vec<Entry> = lines
        .into_iter()
        .filter_map(|(line, event)| event.map(|e| Entry::of_line(id, &line, e)))
        .collect();
    match lease {
        Some(epoch) => {
            if !pg.append_under_lease(id, epoch, &entries).await? {
                return Ok(None);
            }
        }
        None if end == from => return Ok(Some(0)),
        None => pg.append(id, &entries).await?,
    }
    if end != from {
        cursor::write(local, store, id, end).map_err(|source| {
            StoreError::Local(timeline::TimelineError::Write {
                path: local.base.join("shared").join(id),
                source,
            })
        })?;
    }
    Ok(Some(entries.len()))
}

/// How long a finished run waits for its last events to reach the store before leaving them
/// to the next command.
const FINISH_WITHIN: Duration = Duration::from_secs(5);
/// How long one round of sharing may take before the store counts as not answering.
const ROUND_WITHIN: Duration = Duration::from_secs(10);
/// After the store did not answer, how long before a run tries it again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long confirming the lease before an action may take: past it, the action is not sent.
const CONFIRM_WITHIN: Duration = Duration::from_secs(3);

/// Where a run stands with its incident's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The store was never reached and nothing of the incident was shared from here: nobody
    /// else can know of it, let alone drive it.
    Alone,
    /// This run drives it, under this epoch.
    Held(i64),
    /// It drove under this epoch on a session that ended (the store went away): it drives
    /// again only if nobody took the lease since.
    Dropped(i64),
    /// It does not drive: why.
    Lost(String),
}

/// What the engine asks of the task, besides sharing.
enum Ask {
    /// An event was written (`true`: the run is over: share what is left, then stop).
    Share(bool),
    /// The epoch to write an action's intent under, if the run may send it.
    Ready(oneshot::Sender<Result<Option<i64>, String>>),
    /// The intent is written locally: share it under that epoch, if it is still the lease's.
    Confirm(Option<i64>, oneshot::Sender<Result<(), String>>),
    /// Another person's answer to the last request for this action and plan, if any yet.
    Answer(Request, oneshot::Sender<Option<Answer>>),
}

/// A request for a second approval, as the driver made it.
pub struct Request {
    pub action: String,
    pub hash: String,
    /// Who asked: their own answer does not count.
    pub user: String,
}

/// Someone's answer to a request, naming the plan they saw.
#[derive(Debug, Clone)]
pub struct Answer {
    pub approved: bool,
    pub hash: String,
    pub user: String,
    pub host: String,
    pub reason: String,
}

/// The answer to `request` among an incident's events: the first, after the request's last
/// asking, by someone other than who asked (whatever plan they saw: the driver compares).
pub fn answer(events: &[Event], request: &Request) -> Option<Answer> {
    let asked = events.iter().rposition(|e| {
        matches!(&e.kind, EventKind::ApprovalRequested { action, hash, rehearsed: false, .. }
            if *action == request.action && *hash == request.hash)
    })?;
    events[asked..].iter().find_map(|e| match &e.kind {
        EventKind::ApprovalAnswered {
            action,
            hash,
            approved,
            user,
            host,
            reason,
            ..
        } if *action == request.action && *user != request.user => Some(Answer {
            approved: *approved,
            hash: hash.clone(),
            user: user.clone(),
            host: host.clone(),
            reason: reason.clone(),
        }),
        _ => None,
    })
}

/// A run's events on their way to the store, and the run's lease on its incident: the sink
/// only wakes a background task, which reads the fsynced timeline and shares it, so the engine
/// never waits on the network except right before sending an action ([`Gate`]).
pub struct Sharing {
    asks: mpsc::UnboundedSender<Ask>,
    task: tokio::task::JoinHandle<()>,
}

struct Steward {
    settings: Settings,
    store: String,
    local: timeline::Store,
    incident: String,
    pg: Option<Postgres>,
    standing: Standing,
    said: bool,
    down_since: Option<tokio::time::Instant>,
}

impl Sharing {
    /// `pg`: the session that already holds the lease (a resumed run), as `standing` says.
    pub fn start(
        settings: Settings,
        local: timeline::Store,
        incident: String,
        pg: Option<Postgres>,
        standing: Standing,
    ) -> Sharing {
        let (asks, mut asked) = mpsc::unbounded_channel::<Ask>();
        let mut steward = Steward {
            store: settings.identity(),
            settings,
            local,
            incident,
            pg,
            standing,
            said: false,
            down_since: None,
        };
        let task = tokio::spawn(async move {
            while let Some(ask) = asked.recv().await {
                match ask {
                    Ask::Share(mut last) => {
                        let mut later = Vec::new();
                        while let Ok(more) = asked.try_recv() {
                            match more {
                                Ask::Share(l) => last |= l,
                                other => later.push(other),
                            }
                        }
                        steward.share(last).await;
                        for ask in later {
                            steward.answer(ask).await;
                        }
                        if last {
                            break;
                        }
                    }
                    other => steward.answer(other).await,
                }
            }
        });
        Sharing { asks, task }
    }

    /// The sink a run's recorder feeds, after the timeline's.
    pub fn sink(&self) -> ShareSink {
        ShareSink(self.asks.clone())
    }

    /// What the engine asks before it sends an action.
    pub fn gate(&self) -> Gate {
        Gate(self.asks.clone())
    }

    /// Shares what is left, waiting a few seconds at most; what is not shared by then waits.
    /// The lease ends with the task's session.
    pub async fn finish(self) {
        let _ = self.asks.send(Ask::Share(true));
        let _ = tokio::time::timeout(FINISH_WITHIN, self.task).await;
    }
}

impl Steward {
    async fn share(&mut self, last: bool) {
        // The run's end is always worth one more try: what it shares then, no later command has to.
        if !last && self.down_since.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return;
        }
        let result = match tokio::time::timeout(ROUND_WITHIN, self.round()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unreachable {
                store: self.settings.shown.clone(),
                cause: format!("no answer within {}s", ROUND_WITHIN.as_secs()),
            }),
        };
        if let Err(err) = result {
            self.away(&err);
        }
    }

    /// The store stopped answering: the lease, if held, went with the session.
    fn away(&mut self, err: &StoreError) {
        self.pg = None;
        self.down_since = Some(tokio::time::Instant::now());
        if let Standing::Held(epoch) = self.standing {
            self.standing = Standing::Dropped(epoch);
        }
        if !self.said {
            self.said = true;
            eprintln!(
                "warning: {err}; the run goes on, its events wait in the local timeline (`oncall store sync` shares them)"
            );
        }
    }

    /// Reaches the store if need be (taking the lease again, before sharing anything of the
    /// incident), then shares what waits.
    async fn round(&mut self) -> Result<(), StoreError> {
        let mut ids = vec![self.incident.clone()];
        if self.pg.is_none() {
            let conn = self.settings.connect().await?;
            conn.check().await?;
            conn.keep_alive().await?;
            self.pg = Some(conn);
            self.regain().await?;
            // Newly reached: what earlier commands left waiting goes first.
            ids = self.local.list();
        }
        let pg = self.pg.as_mut().expect("connected above");
        for id in &ids {
            incident(pg, &self.local, &self.store, id).await?;
        }
        self.down_since = None;
        Ok(())
    }

    /// Takes the lease on a session newly reached, where the run may drive.
    async fn regain(&mut self) -> Result<(), StoreError> {
        let pg = self.pg.as_mut().expect("connected");
        let id = &self.incident;
        if let Standing::Dropped(epoch) = self.standing
            && let Some(now) = pg.leaseholder(id, false).await?
            && now.epoch != epoch
        {
            self.standing = Standing::Lost(now.took_over(id));
            return Ok(());
        }
        if matches!(self.standing, Standing::Alone | Standing::Dropped(_)) {
            self.standing = match pg.take_lease(id, &user(), &host(), false).await? {
                Taken::Held { epoch, .. } => Standing::Held(epoch),
                Taken::DrivenBy(holder) => {
                    Standing::Lost(format!("{} drives {id} now", holder.describe()))
                }
            };
        }
        Ok(())
    }

    async fn answer(&mut self, ask: Ask) {
        match ask {
            Ask::Share(last) => self.share(last).await,
            Ask::Ready(reply) => {
                if matches!(self.standing, Standing::Alone | Standing::Dropped(_)) {
                    let result = match tokio::time::timeout(CONFIRM_WITHIN, self.round()).await {
                        Ok(result) => result,
                        Err(_) => Err(StoreError::Unreachable {
                            store: self.settings.shown.clone(),
                            cause: format!("no answer within {}s", CONFIRM_WITHIN.as_secs()),
                        }),
                    };
                    if let Err(err) = result {
                        self.away(&err);
                    }
                }
                let _ = reply.send(match &self.standing {
                    Standing::Alone => Ok(None),
                    Standing::Held(epoch) => Ok(Some(*epoch)),
                    Standing::Dropped(_) => Err(self.unconfirmed()),
                    Standing::Lost(why) => Err(why.clone()),
                });
            }
            Ask::Confirm(lease, reply) => {
                let _ = reply.send(self.confirm(lease).await);
            }
            Ask::Answer(request, reply) => {
                if self.pg.is_none() {
                    self.share(false).await;
                }
                let found = match &self.pg {
                    Some(pg) => {
                        match tokio::time::timeout(CONFIRM_WITHIN, pg.read(&self.incident, 0)).await
                        {
                            Ok(Ok(events)) => answer(&events, &request),
                            _ => None,
                        }
                    }
                    None => None,
                };
                let _ = reply.send(found);
            }
        }
    }

    /// Shares an action's intent under `lease`, if it is still this run's.
    async fn confirm(&mut self, lease: Option<i64>) -> Result<(), String> {
        let epoch = match (&self.standing, lease) {
            (Standing::Alone, None) => return Ok(()),
            (Standing::Held(held), Some(epoch)) if *held == epoch => epoch,
            (Standing::Lost(why), _) => return Err(why.clone()),
            _ => return Err(self.unconfirmed()),
        };
        let pg = self.pg.as_mut().expect("a held lease has its session");
        let shared = tokio::time::timeout(
            CONFIRM_WITHIN,
            shared(pg, &self.local, &self.store, &self.incident, Some(epoch)),
        )
        .await;
        match shared {
            Ok(Ok(Some(_))) => Ok(()),
            Ok(Ok(None)) => {
                let id = &self.incident;
                let why = match pg.leaseholder(id, false).await {
                    Ok(Some(holder)) => holder.took_over(id),
                    _ => format!("another responder took {id} over"),
                };
                self.standing = Standing::Lost(why.clone());
                Err(why)
            }
            Ok(Err(err)) => {
                self.away(&err);
                Err(self.unconfirmed())
            }
            Err(_) => {
                self.away(&StoreError::Unreachable {
                    store: self.settings.shown.clone(),
                    cause: format!("no answer within {}s", CONFIRM_WITHIN.as_secs()),
                });
                Err(self.unconfirmed())
            }
        }
    }

    fn unconfirmed(&self) -> String {
        format!(
            "the store {} does not answer, so this run cannot confirm it still drives {id} (another responder may have taken it over); `oncall resume {id} --store ''` goes on alone, without the team",
            self.settings.shown,
            id = self.incident
        )
    }
}

/// Asked by the engine right before it sends an action.
#[derive(Clone)]
pub struct Gate(mpsc::UnboundedSender<Ask>);

impl Gate {
    /// The lease's epoch to write the action's intent under (None: the run is alone with an
    /// incident nobody else knows of), or why the run may not send it.
    pub async fn ready(&self) -> Result<Option<i64>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.0.send(Ask::Ready(reply));
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Once the intent is written locally: whether the action may be sent now, its intent in
    /// the store under a lease still this run's.
    pub async fn confirm(&self, lease: Option<i64>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.0.send(Ask::Confirm(lease, reply));
        answer.await.unwrap_or_else(|_| Err(gone()))
    }
}

impl Gate {
    /// Another person's answer to the request for `action`'s plan `hash`, if there is one yet.
    pub async fn answer(&self, action: &str, hash: &str, asker: &str) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            action: action.into(),
            hash: hash.into(),
            user: asker.into(),
        };
        let _ = self.0.send(Ask::Answer(request, reply));
        answer.await.ok().flatten()
    }
}

fn gone() -> String {
    "the run's link to the team store ended".into()
}

/// Wakes the sharing task when an event was written.
#[derive(Clone)]
pub struct ShareSink(mpsc::UnboundedSender<Ask>);

impl Sink for ShareSink {
    fn emit(&mut self, event: &Event) {
        if !matches!(event.kind, EventKind::CheckStarted { .. }) {
            let _ = self.0.send(Ask::Share(false));
        }
    }
}
