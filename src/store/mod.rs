//! Where incidents are kept: the local timelines, and with `--store`, the team's PostgreSQL.
//!
//! Both are a [`Log`]: append, read from a sequence number, list. Commands use a [`Team`],
//! which writes locally first (fsynced, as without a store), then shares what this machine
//! wrote with the store, and reads the store when there is one; no command asks which is in use.
//! What was shared is a byte offset per incident timeline ([`cursor`]), written after the store
//! confirmed, so a crash or an unreachable store only delays sharing: the next command that
//! reaches the store, or `oncall store sync`, sends the rest in order, each event once (its id
//! is derived from its line).

pub mod cursor;
mod follow;
pub mod lease;
pub mod postgres;
pub mod share;
mod tls;

pub use follow::Until;

use crate::engine::event::Event;
use crate::timeline::{self, Listed, Summary};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Settings(String),
    #[error("the store {store} does not answer ({cause})")]
    Unreachable { store: String, cause: String },
    /// It answered, and refused: a wrong password, a certificate not trusted.
    #[error("the store {store} refused the connection ({cause})")]
    Refused { store: String, cause: String },
    #[error(
        "the store {0} has no oncall schema yet: run `oncall store init` (once, as a role that may create tables)"
    )]
    NotInitialized(String),
    #[error(
        "the store {store} has schema version {found}, newer than this oncall knows ({known}): upgrade oncall",
        known = postgres::SCHEMA_VERSION
    )]
    TooNew { store: String, found: i32 },
    #[error("the store: {0}")]
    Query(String),
    #[error(transparent)]
    Local(#[from] timeline::TimelineError),
}

/// An event as the store keeps it: with its id, and who shared it from where.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub event: Event,
    pub user: String,
    pub host: String,
}

impl Entry {
    /// The event of a timeline line. Its id is the line's digest: reading the line again gives
    /// the same id, so sharing it again adds nothing.
    pub fn of_line(incident: &str, line: &str, event: Event) -> Entry {
        let mut hash = Sha256::new();
        hash.update(incident.as_bytes());
        hash.update(b"\n");
        hash.update(line.as_bytes());
        let id = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Entry {
            id,
            event,
            user: timeline::user(),
            host: timeline::host(),
        }
    }
}

/// What every store does.
pub trait Log {
    /// Appends events to an incident, in order, each once.
    fn append(
        &mut self,
        incident: &str,
        entries: &[Entry],
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// An incident's events after the `from`th (0: all of them), in order.
    fn read(
        &self,
        incident: &str,
        from: i64,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>>;
    /// Every incident, oldest first.
    fn list(&self) -> impl Future<Output = Result<Vec<Listed>, StoreError>>;
    /// Returns when the incident may have new events, or after `within` at the latest: what a
    /// follower waits on before it reads from its sequence number again.
    fn changed(&mut self, incident: &str, within: Duration) -> impl Future<Output = ()>;
}

impl Log for timeline::Store {
    async fn append(&mut self, incident: &str, entries: &[Entry]) -> Result<(), StoreError> {
        let mut file = self.join(incident)?;
        for entry in entries {
            file.write(&entry.event)?;
        }
        Ok(())
    }

    async fn read(&self, incident: &str, from: i64) -> Result<Vec<Event>, StoreError> {
        let events = timeline::read(&self.path(incident))?;
        Ok(events.into_iter().skip(from.max(0) as usize).collect())
    }

    async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(self.summaries())
    }

    /// A local timeline says nothing when it grows: it is polled.
    async fn changed(&mut self, _incident: &str, within: Duration) {
        tokio::time::sleep(within).await
    }
}

impl Log for postgres::Postgres {
    async fn append(&mut self, incident: &str, entries: &[Entry]) -> Result<(), StoreError> {
        postgres::Postgres::append(self, incident, entries).await
    }

    async fn read(&self, incident: &str, from: i64) -> Result<Vec<Event>, StoreError> {
        postgres::Postgres::read(self, incident, from).await
    }

    async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(postgres::Postgres::list(self)
            .await?
            .into_iter()
            .map(Listed::Summary)
            .collect())
    }

    async fn changed(&mut self, incident: &str, within: Duration) {
        postgres::Postgres::changed(self, incident, within).await
    }
}

/// Where the team's store is: `--store`, `ONCALL_STORE`, else `store:` in the config file.
pub fn configured(
    flag: Option<&str>,
    config: Option<&str>,
) -> Result<Option<postgres::Settings>, StoreError> {
    flag.or(config)
        .filter(|url| !url.trim().is_empty())
        .map(postgres::Settings::parse)
        .transpose()
}

/// The local timelines and, when configured and answering, the team's store.
pub struct Team {
    pub local: timeline::Store,
    pub settings: Option<postgres::Settings>,
    /// The store, once reached.
    pub shared: Option<postgres::Postgres>,
}

impl Team {
    /// Reaches the store, if one is configured. A store that does not answer is said once, and
    /// the command goes on with the local timelines; one that is not set up (or set up by a
    /// newer oncall) is an error.
    pub async fn open(
        local: timeline::Store,
        settings: Option<postgres::Settings>,
    ) -> Result<Team, StoreError> {
        let mut team = Team {
            local,
            settings,
            shared: None,
        };
        let Some(settings) = &team.settings else {
            return Ok(team);
        };
        let reached = async {
            let pg = settings.connect().await?;
            pg.check().await?;
            Ok::<_, StoreError>(pg)
        };
        match reached.await {
            Ok(pg) => {
                team.shared = Some(pg);
            }
            Err(err @ StoreError::Unreachable { .. }) => {
                eprintln!(
                    "warning: {err}; working from the local timelines, events wait there to be shared"
                );
                return Ok(team);
            }
            Err(err) => return Err(err),
        }
        Ok(team)
    }

    /// As `open`, then shares what waits locally: what every command that reaches the store does.
    pub async fn reach(
        local: timeline::Store,
        settings: Option<postgres::Settings>,
    ) -> Result<Team, StoreError> {
        let mut team = Team::open(local, settings).await?;
        match team.sync().await {
            Ok(_) => Ok(team),
            Err(err @ StoreError::Unreachable { .. }) => {
                eprintln!(
                    "warning: {err}; working from the local timelines, events wait there to be shared"
                );
                team.shared = None;
                Ok(team)
            }
            Err(err) => Err(err),
        }
    }

    /// How many local events wait to be shared (all of them, for a store never reached).
    pub fn unshared(&self) -> usize {
        let Some(settings) = &self.settings else {
            return 0;
        };
        let store = settings.identity();
        self.local
            .list()
            .iter()
            .map(|id| cursor::waiting(&self.local, &store, id))
            .sum()
    }

    /// Shares every local event not yet shared, incident by incident, each in order; returns
    /// how many were sent.
    pub async fn sync(&mut self) -> Result<usize, StoreError> {
        let (Some(pg), Some(settings)) = (self.shared.as_mut(), self.settings.as_ref()) else {
            return Ok(0);
        };
        let mut sent = 0;
        for id in self.local.list() {
            sent += share::incident(pg, &self.local, &settings.identity(), &id).await?;
        }
        Ok(sent)
    }

    /// Appends events to an incident: to the local timeline first (fsynced), then to the store.
    /// A store that stops answering leaves them waiting locally, said once.
    pub async fn append(&mut self, incident: &str, events: Vec<Event>) -> Result<(), StoreError> {
        // Their ids come from their lines, once written: `share` reads them back.
        let entries: Vec<Entry> = events
            .into_iter()
            .map(|event| Entry {
                id: String::new(),
                event,
                user: timeline::user(),
                host: timeline::host(),
            })
            .collect();
        Log::append(&mut self.local, incident, &entries).await?;
        if let (Some(pg), Some(settings)) = (self.shared.as_mut(), self.settings.as_ref()) {
            match share::incident(pg, &self.local, &settings.identity(), incident).await {
                Ok(_) => {}
                Err(err @ StoreError::Unreachable { .. }) => {
                    eprintln!("warning: {err}; the events wait in the local timeline");
                    self.shared = None;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Every incident: the store's and the local ones it does not have, oldest first. A run
    /// going on here is `running` whatever the store last heard.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let local = Log::list(&self.local).await?;
        let Some(pg) = &self.shared else {
            return Ok(local);
        };
        let mut all = Log::list(pg).await?;
        let running: Vec<String> = local
            .iter()
            .filter_map(|l| match l {
                Listed::Summary(s) if s.status == timeline::Status::Running => Some(s.id.clone()),
                _ => None,
            })
            .collect();
        for listed in all.iter_mut() {
            if let Listed::Summary(s) = listed
                && running.contains(&s.id)
            {
                s.status = timeline::Status::Running;
            }
        }
        let known: Vec<String> = all.iter().map(|l| id_of(l).to_string()).collect();
        all.extend(
            local
                .into_iter()
                .filter(|l| !known.iter().any(|k| k == id_of(l))),
        );
        all.sort_by_cached_key(|l| match l {
            Listed::Summary(s) => (Some(s.opened_at), s.id.clone()),
            Listed::Incomplete { id, .. } => (None, id.clone()),
        });
        Ok(all)
    }

    /// Whether the incident is here or in the store.
    pub async fn has(&self, incident: &str) -> Result<bool, StoreError> {
        self.local.refuse_linked_folder()?;
        // A symlink or a pipe there is this machine's to refuse when it is opened.
        if std::fs::symlink_metadata(self.local.path(incident)).is_ok() {
            return Ok(true);
        }
        match &self.shared {
            Some(pg) => pg.has(incident).await,
            None => Ok(false),
        }
    }

    /// An incident's events: the store's when it has the incident (everyone's notes, in the
    /// store's one order), else the local timeline's; and where they were read.
    pub async fn events(&self, incident: &str) -> Result<(Vec<Event>, String), StoreError> {
        if let (Some(pg), Some(settings)) = (&self.shared, &self.settings) {
            let events = Log::read(pg, incident, 0).await?;
            if !events.is_empty() {
                return Ok((events, settings.shown.clone()));
            }
        }
        let path = self.local.path(incident);
        let events = Log::read(&self.local, incident, 0).await?;
        Ok((events, path.display().to_string()))
    }

    /// The incident named, or else the newest live one, and its events.
    pub async fn incident(
        &self,
        incident: Option<&str>,
    ) -> Result<(String, Vec<Event>), StoreError> {
        let id = match incident {
            Some(id) => id.to_string(),
            None => {
                self.latest_live(false)
                    .await?
                    .ok_or_else(|| timeline::TimelineError::NoLiveIncident(self.local.dir.clone()))?
                    .id
            }
        };
        let (events, _) = self.events(&id).await?;
        Ok((id, events))
    }

    /// The newest incident, of any mode: what `timeline` shows by default.
    pub async fn latest(&self) -> Result<String, StoreError> {
        match self.list().await?.pop() {
            Some(listed) => Ok(id_of(&listed).to_string()),
            None => Err(timeline::TimelineError::NoIncidents(self.local.dir.clone()).into()),
        }
    }

    /// The newest live incident, resolved or not (`report`); with `open`, not resolved
    /// (where `note` and `resolve` go).
    pub async fn latest_live(&self, open: bool) -> Result<Option<Summary>, StoreError> {
        Ok(self.list().await?.into_iter().rev().find_map(|l| match l {
            Listed::Summary(s)
                if s.mode == crate::engine::event::Mode::Live && (!open || s.unresolved()) =>
            {
                Some(s)
            }
            _ => None,
        }))
    }

    /// An incident's summary, as `incidents` lists it.
    pub async fn summary(&self, incident: &str) -> Result<Option<Summary>, StoreError> {
        Ok(self.list().await?.into_iter().find_map(|l| match l {
            Listed::Summary(s) if s.id == incident => Some(s),
            _ => None,
        }))
    }
}

fn id_of(listed: &Listed) -> &str {
    match listed {
        Listed::Summary(s) => &s.id,
        Listed::Incomplete { id, .. } => id,
    }
}
