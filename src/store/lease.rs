//! One driver at a time: the lease on an incident, held through the store.
//!
//! Holding the lease is holding a session-level advisory lock on the incident, so PostgreSQL
//! itself ends it when the driver's session ends (a killed process at once, a partitioned one
//! once its keepalives go unanswered). The `leases` row says who holds it, from where, since
//! when, and its epoch: whoever takes the lease raises the epoch, and an action is sent only
//! after its intent was appended to the store in a transaction that found the driver's epoch
//! still current. A driver that lost its lease can therefore send nothing more, and whoever
//! took it over sees every action the other confirmed.

use super::postgres::{Postgres, cause, transient};
use super::{Entry, StoreError};
use std::time::Duration;

/// Who drives an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub since: jiff::Timestamp,
    pub epoch: i64,
}

impl Holder {
    /// `carol on host-c took INCIDENT over at 21:41:15`
    pub fn took_over(&self, incident: &str) -> String {
        format!(
            "{} on {} took {incident} over at {}",
            self.user,
            self.host,
            crate::view::clock_seconds(&self.since)
        )
    }

    /// `alice on host-a since 21:04:05`
    pub fn describe(&self) -> String {
        format!(
            "{} on {} since {}",
            self.user,
            self.host,
            crate::view::clock_seconds(&self.since)
        )
    }
}

/// What came of asking for the lease.
#[derive(Debug)]
pub enum Taken {
    /// This session drives the incident now, under `epoch`; `from` held it before and was
    /// taken over (only with `take_over`).
    Held { epoch: i64, from: Option<Holder> },
    /// Someone else drives it.
    DrivenBy(Holder),
}

/// How long a take-over waits for the other driver's session to end once told to.
const TAKE_OVER_WITHIN: Duration = Duration::from_secs(5);

/// The lease's lock key, and whether a session holds it, in SQL.
const KEY: &str = "hashtextextended($1, 11)";
pub(super) const HELD: &str = "EXISTS (
    SELECT 1 FROM pg_locks k
    WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid AND k.objsubid = 1
      AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND k.classid::text::bigint = (hashtextextended(l.incident, 11) >> 32) & 4294967295
      AND k.objid::text::bigint = hashtextextended(l.incident, 11) & 4294967295)";

impl Postgres {
    /// Takes the incident's lease for this session, as `user` on `host`. Held by a live
    /// session, it is refused, unless `take_over`: then that session is ended first (which
    /// needs the same role, or pg_signal_backend).
    pub async fn take_lease(
        &mut self,
        incident: &str,
        user: &str,
        host: &str,
        take_over: bool,
    ) -> Result<Taken, StoreError> {
        let deadline = tokio::time::Instant::now() + TAKE_OVER_WITHIN;
        let mut told: Option<Holder> = None;
        loop {
            let got: bool = self
                .client
                .query_one(&format!("SELECT pg_try_advisory_lock({KEY})"), &[&incident])
                .await
                .map_err(|e| self.query_error(e))?
                .get(0);
            if got {
                let row = self
                    .client
                    .query_one(
                        "INSERT INTO leases (incident, epoch, holder, host, since, backend_pid)
                         VALUES ($1, 1, $2, $3, now(), pg_backend_pid())
                         ON CONFLICT (incident) DO UPDATE
                         SET epoch = leases.epoch + 1, holder = $2, host = $3, since = now(),
                             backend_pid = pg_backend_pid()
                         RETURNING epoch",
                        &[&incident, &user, &host],
                    )
                    .await
                    .map_err(|e| self.query_error(e))?;
                return Ok(Taken::Held {
                    epoch: row.get(0),
                    from: told,
                });
            }
            let holder = self.leaseholder(incident, true).await?;
            let Some(holder) = holder else {
                // Its session took the lock and has not written the row yet: a moment.
                if tokio::time::Instant::now() > deadline {
                    return Err(StoreError::Query(format!(
                        "the lease on {incident} is held by a session that never said who it is"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if !take_over {
                return Ok(Taken::DrivenBy(holder));
            }
            if told.is_none() {
                self.end_session_of(incident, &holder).await?;
                told = Some(holder);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Query(format!(
                    "the session of {} did not end within {}s of being told to",
                    told.as_ref().map(Holder::describe).unwrap_or_default(),
                    TAKE_OVER_WITHIN.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the server notice within seconds that this session's client is gone (killed, or
    /// cut off), so the lease it holds ends with it. Ignored on a Unix socket.
    pub async fn keep_alive(&self) -> Result<(), StoreError> {
        self.client
            .batch_execute(
                "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1;
                 SET tcp_keepalives_count = 3",
            )
            .await
            .map_err(|e| self.query_error(e))
    }

    /// Who holds the incident's lease (`live`: only if its session still does), if anyone.
    pub async fn leaseholder(
        &self,
        incident: &str,
        live: bool,
    ) -> Result<Option<Holder>, StoreError> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT holder, host, since::text, epoch, {HELD} FROM leases l WHERE incident = $1"
                ),
                &[&incident],
            )
            .await
            .map_err(|e| self.query_error(e))?;
        let Some(row) = row else { return Ok(None) };
        if live && !row.get::<_, bool>(4) {
            return Ok(None);
        }
        let since: String = row.get(2);
        Ok(Some(Holder {
            user: row.get(0),
            host: row.get(1),
            since: super::postgres::parse_ts(&since)?,
            epoch: row.get(3),
        }))
    }

    /// Ends the session holding the lease described by `holder` (if it still does).
    async fn end_session_of(&self, incident: &str, holder: &Holder) -> Result<(), StoreError> {
        let ended = self
            .client
            .query_opt(
                "SELECT pg_terminate_backend(backend_pid) FROM leases WHERE incident = $1 AND epoch = $2",
                &[&incident, &holder.epoch],
            )
            .await;
        match ended {
            Ok(_) => Ok(()),
            Err(e) if transient(&e) => Err(self.query_error(e)),
            Err(e) => Err(StoreError::Query(format!(
                "cannot end the lease of {} ({}): the store's role needs to be the driver's role, or a member of pg_signal_backend",
                holder.describe(),
                cause(&e)
            ))),
        }
    }

    /// Appends `entries` (the intent of an action among them) only if `epoch` is still the
    /// lease's: true when appended. The lease row stays locked until the transaction ends, so a
    /// take-over waits for it and then sees the intent.
    pub async fn append_under_lease(
        &mut self,
        incident: &str,
        epoch: i64,
        entries: &[Entry],
    ) -> Result<bool, StoreError> {
        let shown = self.shown.clone();
        let err = |e: tokio_postgres::Error| super::postgres::store_error(&shown, e);
        let tx = self.client.transaction().await.map_err(err)?;
        let current: Option<i64> = tx
            .query_opt(
                "SELECT epoch FROM leases WHERE incident = $1 FOR SHARE",
                &[&incident],
            )
            .await
            .map_err(err)?
            .map(|row| row.get(0));
        if current != Some(epoch) {
            return Ok(false);
        }
        super::postgres::append_in(&tx, incident, entries)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
}
