//! The team store on PostgreSQL: an incidents table and one log of events per incident, in
//! plain SQL through tokio-postgres. The schema is the migrations under `migrations/`.

use super::lease::HELD;
use super::tls::{self, SslMode};
use super::{Entry, StoreError};
use crate::engine::event::{Event, EventKind};
use crate::timeline::{Status, Summary};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// The migrations, in order: version, SQL. A new one is appended, never edited.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_team.sql")),
    (2, include_str!("../../migrations/0002_lease.sql")),
];

/// The schema version this oncall writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// How long connecting may take unless the URL says (`connect_timeout`): a store that does not
/// answer must not hold up a run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the store is, as read from its URL.
#[derive(Debug, Clone)]
pub struct Settings {
    config: Config,
    ssl: SslMode,
    root_cert: Option<PathBuf>,
    /// The URL with its password masked: what oncall says the store is.
    pub shown: String,
}

impl Settings {
    /// Reads a `postgres://` URL. Its password is registered with the redactor first, so no
    /// error about it can show it.
    pub fn parse(text: &str) -> Result<Settings, StoreError> {
        crate::redact::register_url(text);
        let shown = crate::redact::url_passwords(text.trim());
        let mut url = url::Url::parse(text.trim()).map_err(|e| {
            StoreError::Settings(format!(
                "the store '{shown}' is not a URL ({e}): write postgres://ROLE@HOST:PORT/DATABASE (the password, if any, after ROLE and a colon)"
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(StoreError::Settings(format!(
                "the store '{shown}' is not a PostgreSQL URL: write postgres://ROLE@HOST:PORT/DATABASE (the password, if any, after ROLE and a colon)"
            )));
        }
        // tokio-postgres knows only disable/prefer/require: oncall reads the TLS settings itself.
        let mut ssl = SslMode::Disable;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => ssl = SslMode::parse(&value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        url.query_pairs_mut().clear().extend_pairs(&kept);
        if kept.is_empty() {
            url.set_query(None);
        }
        let mut config = Config::from_str(url.as_str())
            .map_err(|e| StoreError::Settings(format!("the store '{shown}': {e}")))?;
        if let Some(password) = config.get_password() {
            crate::redact::register(&String::from_utf8_lossy(password));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("oncall");
        config.ssl_mode(match ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(Settings {
            config,
            ssl,
            root_cert,
            shown,
        })
    }

    /// What tells one store from another (host, port, database), for what was shared where.
    pub fn identity(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("");
        format!("postgres://{host}:{port}/{db}")
    }

    /// Connects, bounded by the connect timeout (and once more overall, for a TLS handshake
    /// that never ends).
    pub async fn connect(&self) -> Result<Postgres, StoreError> {
        let bound = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT)
            * 2;
        let (notify, notices) = tokio::sync::mpsc::unbounded_channel();
        let attempt = async {
            match self.ssl {
                SslMode::Disable => {
                    let (client, connection) = self.config.connect(NoTls).await?;
                    drive(connection, notify);
                    Ok(client)
                }
                mode => {
                    let tls = tls::connector(mode, self.root_cert.as_deref())
                        .map_err(|e| ConnectError::Settings(e.to_string()))?;
                    let (client, connection) = self.config.connect(tls).await?;
                    drive(connection, notify);
                    Ok(client)
                }
            }
        };
        let client = match tokio::time::timeout(bound, attempt).await {
            Ok(Ok(client)) => client,
            Ok(Err(ConnectError::Settings(why))) => return Err(StoreError::Settings(why)),
            Ok(Err(ConnectError::Postgres(e))) => return Err(self.unreachable(&e)),
            Err(_) => {
                return Err(StoreError::Unreachable {
                    store: self.shown.clone(),
                    cause: format!("no answer within {}s", bound.as_secs()),
                });
            }
        };
        Ok(Postgres {
            client,
            shown: self.shown.clone(),
            notices,
        })
    }

    fn unreachable(&self, err: &tokio_postgres::Error) -> StoreError {
        let store = self.shown.clone();
        let cause = cause(err);
        if !transient(err) || tls_refused(err) {
            StoreError::Refused { store, cause }
        } else {
            StoreError::Unreachable { store, cause }
        }
    }
}

/// Runs the connection's socket until it ends, passing on the ids of incidents whose events
/// were appended (a NOTIFY on [`CHANNEL`], heard once this session LISTENs).
fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notify: tokio::sync::mpsc::UnboundedSender<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = notify.send(n.payload().to_string());
            }
        }
    });
}

/// Where appends are announced; the payload is only the incident's id (NOTIFY payloads are
/// small and lost while a follower is disconnected: it always catches up by sequence number).
const CHANNEL: &str = "oncall_events";

enum ConnectError {
    Settings(String),
    Postgres(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConnectError::Postgres(e)
    }
}

/// Whether the error says the server is not there, or not there for now (starting, shutting
/// down, out of connections): what waiting cures, unlike a refused login or a bad query.
pub(super) fn transient(err: &tokio_postgres::Error) -> bool {
    match err.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            err.is_closed()
                || ["57", "08", "53"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
    }
}

/// Whether the TLS handshake failed on what it was shown (a certificate not trusted), not on
/// the network.
fn tls_refused(err: &tokio_postgres::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// An error in words: the server's message, or the innermost cause (refused, timed out).
pub(super) fn cause(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut source: Option<&dyn std::error::Error> = Some(err);
    let mut last = err.to_string();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last
}

/// A connection to the store.
pub struct Postgres {
    pub(super) client: Client,
    pub(super) shown: String,
    /// Incidents announced on [`CHANNEL`], once this session LISTENs.
    notices: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// A failed query in words: the store not answering (what waiting cures), or the query refused.
pub(super) fn store_error(shown: &str, err: tokio_postgres::Error) -> StoreError {
    if transient(&err) {
        return StoreError::Unreachable {
            store: shown.to_string(),
            cause: cause(&err),
        };
    }
    StoreError::Query(cause(&err))
}

impl Postgres {
    pub(super) fn query_error(&self, err: tokio_postgres::Error) -> StoreError {
        store_error(&self.shown, err)
    }

    /// The schema version, or None for a database oncall has not set up.
    pub async fn version(&self) -> Result<Option<i32>, StoreError> {
        let row = self
            .client
            .query_one("SELECT to_regclass('oncall_migrations') IS NOT NULL", &[])
            .await
            .map_err(|e| self.query_error(e))?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        let row = self
            .client
            .query_one("SELECT max(version) FROM oncall_migrations", &[])
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(row.get::<_, Option<i32>>(0))
    }

    /// Ready for use: set up, and not by a newer oncall.
    pub async fn check(&self) -> Result<i32, StoreError> {
        match self.version().await? {
            None => Err(StoreError::NotInitialized(self.shown.clone())),
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::TooNew {
                store: self.shown.clone(),
                found: v,
            }),
            Some(v) => Ok(v),
        }
    }

    /// Creates or migrates the schema in one transaction; returns (before, after).
    pub async fn migrate(&mut self) -> Result<(Option<i32>, i32), StoreError> {
        let shown = self.shown.clone();
        let err = |e: tokio_postgres::Error| StoreError::Query(cause(&e));
        let tx = self.client.transaction().await.map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS oncall_migrations (
                 version int PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );
             LOCK TABLE oncall_migrations IN EXCLUSIVE MODE;",
        )
        .await
        .map_err(err)?;
        let before: Option<i32> = tx
            .query_one("SELECT max(version) FROM oncall_migrations", &[])
            .await
            .map_err(err)?
            .get(0);
        if let Some(found) = before.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StoreError::TooNew {
                store: shown,
                found,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| Some(*v) > before) {
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Query(format!("migration {version:04}: {}", cause(&e))))?;
            tx.execute(
                "INSERT INTO oncall_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok((before, SCHEMA_VERSION))
    }

    /// Appends events to an incident in the order given, each at most once (by its id), under
    /// the next sequence numbers. Appenders of one incident take turns, so every reader sees one
    /// order.
    pub async fn append(&mut self, incident: &str, entries: &[Entry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let shown = self.shown.clone();
        let err = |e: tokio_postgres::Error| store_error(&shown, e);
        let tx = self.client.transaction().await.map_err(err)?;
        append_in(&tx, incident, entries).await.map_err(err)?;
        tx.commit().await.map_err(err)
    }

    /// From now on, hears which incidents get new events.
    pub async fn listen(&self) -> Result<(), StoreError> {
        self.client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| self.query_error(e))
    }

    /// Waits until `incident` may have new events (it was announced) or `within` passed.
    pub async fn changed(&mut self, incident: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.notices.recv()).await {
                Ok(Some(id)) if id == incident => return,
                Ok(Some(_)) => continue,
                // The session ended: polling it is, until the caller sees the error.
                Ok(None) => return tokio::time::sleep_until(deadline).await,
                Err(_) => return,
            }
        }
    }

    /// An incident's events from sequence number `from` on (0: all), in order.
    pub async fn read(&self, incident: &str, from: i64) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT body::text FROM events WHERE incident = $1 AND seq > $2 ORDER BY seq",
                &[&incident, &from],
            )
            .await
            .map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let text: String = row.get(0);
                serde_json::from_str(&text).map_err(|e| {
                    StoreError::Query(format!("an event of {incident} in the store: {e}"))
                })
            })
            .collect()
    }

    /// Whether the store holds any event of the incident, without reading them.
    pub async fn has(&self, incident: &str) -> Result<bool, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events WHERE incident = $1)",
                &[&incident],
            )
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(row.get(0))
    }

    /// Every incident in the store, oldest first. Its driver is whoever holds its lease, else
    /// who drove it last; a run whose driver's session ended is no longer running.
    pub async fn list(&self) -> Result<Vec<Summary>, StoreError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT i.id, i.runbook, i.title, i.severity, i.mode, i.opened_by,
                            i.opened_at::text,
                            CASE WHEN i.status = 'running' AND NOT coalesce(d.held, false)
                                 THEN 'interrupted' ELSE i.status END,
                            CASE WHEN d.held THEN d.holder ELSE i.driver END,
                            CASE WHEN d.held THEN d.host ELSE i.driver_host END,
                            i.last_step
                     FROM incidents i
                     LEFT JOIN LATERAL (SELECT l.holder, l.host, {HELD} AS held
                                        FROM leases l WHERE l.incident = i.id) d ON true
                     ORDER BY i.opened_at, i.id"
                ),
                &[],
            )
            .await
            .map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let opened_at: String = row.get(6);
                let word = |i: usize| serde_json::Value::String(row.get(i));
                let bad = |what: &str| {
                    StoreError::Query(format!("an incident in the store has an unknown {what}"))
                };
                let last_step: Option<String> = row.get(10);
                Ok(Summary {
                    id: row.get(0),
                    runbook: row.get(1),
                    title: row.get(2),
                    severity: row.get(3),
                    mode: serde_json::from_value(word(4)).map_err(|_| bad("mode"))?,
                    opened_by: row.get(5),
                    opened_at: parse_ts(&opened_at)?,
                    status: serde_json::from_value::<Status>(word(7)).map_err(|_| bad("status"))?,
                    driver: row.get(8),
                    host: row.get(9),
                    last_step: last_step.map(|s| (s, String::new())),
                })
            })
            .collect()
    }
}

/// Appends events to an incident within a transaction: see [`Postgres::append`].
pub(super) async fn append_in(
    tx: &tokio_postgres::Transaction<'_>,
    incident: &str,
    entries: &[Entry],
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        &[&incident],
    )
    .await?;
    let mut seq: i64 = tx
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM events WHERE incident = $1",
            &[&incident],
        )
        .await?
        .get(0);
    let insert = tx
        .prepare(
            "INSERT INTO events (incident, seq, event_id, ts, user_name, host, kind, body)
             VALUES ($1, $2, $3, $4::text::timestamptz, $5, $6, $7, $8::text::jsonb)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .await?;
    for entry in entries {
        let body = serde_json::to_string(&entry.event).expect("events always serialize");
        let kind = kind_name(&entry.event.kind);
        let ts = entry.event.ts.to_string();
        let added = tx
            .execute(
                &insert,
                &[
                    &incident,
                    &(seq + 1),
                    &entry.id,
                    &ts,
                    &entry.user,
                    &entry.host,
                    &kind,
                    &body,
                ],
            )
            .await?;
        if added == 0 {
            continue;
        }
        seq += 1;
        keep_incident(tx, incident, entry).await?;
    }
    // Delivered at commit, to every session that LISTENs.
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &incident])
        .await?;
    Ok(())
}

/// PostgreSQL prints `2026-12-04 19:00:00.123+00`; jiff reads it once the offset has minutes.
pub(super) fn parse_ts(text: &str) -> Result<jiff::Timestamp, StoreError> {
    let fixed = match text.rfind(['+', '-']) {
        Some(i) if text.len() - i == 3 => format!("{text}:00"),
        _ => text.to_string(),
    };
    fixed
        .replace(' ', "T")
        .parse()
        .map_err(|e| StoreError::Query(format!("a time in the store ('{text}'): {e}")))
}

/// The event's name as the timeline writes it (`note`, `run_finished`).
fn kind_name(kind: &EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Keeps the incident's row current with an event just appended: its opening, who drives it,
/// where it stands.
async fn keep_incident(
    tx: &tokio_postgres::Transaction<'_>,
    incident: &str,
    entry: &Entry,
) -> Result<(), tokio_postgres::Error> {
    let set_status = "UPDATE incidents SET status = $2 WHERE id = $1 AND status <> 'resolved'";
    match &entry.event.kind {
        EventKind::IncidentOpened {
            runbook,
            title,
            severity,
            mode,
            user,
            ..
        } => {
            let mode = crate::view::json_name(mode);
            let ts = entry.event.ts.to_string();
            tx.execute(
                "INSERT INTO incidents (id, runbook, title, severity, mode, opened_by, opened_at,
                                        opened_host, status, driver, driver_host)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8, 'running', $6, $8)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &incident,
                    runbook,
                    title,
                    severity,
                    &mode,
                    user,
                    &ts,
                    &entry.host,
                ],
            )
            .await?;
        }
        EventKind::Resumed { user, host, .. } => {
            tx.execute(
                "UPDATE incidents SET driver = $2, driver_host = $3 WHERE id = $1",
                &[&incident, user, host],
            )
            .await?;
            tx.execute(set_status, &[&incident, &"running"]).await?;
        }
        EventKind::StepStarted { step, .. } => {
            tx.execute(
                "UPDATE incidents SET last_step = $2 WHERE id = $1",
                &[&incident, step],
            )
            .await?;
        }
        EventKind::RunFinished { .. } => {
            tx.execute(set_status, &[&incident, &"open"]).await?;
        }
        EventKind::Interrupted { .. } => {
            tx.execute(set_status, &[&incident, &"interrupted"]).await?;
        }
        EventKind::Resolved { .. } => {
            tx.execute(
                "UPDATE incidents SET status = 'resolved' WHERE id = $1",
                &[&incident],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_read_with_its_tls_settings_and_shown_without_its_password() {
        let s = Settings::parse(
            "postgres://team:pa55-w0rd-x@db.internal:6543/oncall?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=7",
        )
        .unwrap();
        assert_eq!(s.ssl, SslMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        assert!(!s.shown.contains("pa55-w0rd-x"), "{}", s.shown);
        assert_eq!(s.identity(), "postgres://db.internal:6543/oncall");
        assert_eq!(crate::redact::global().text("got pa55-w0rd-x"), "got ***");
        let plain = Settings::parse("postgresql://team@127.0.0.1/oncall").unwrap();
        assert_eq!(plain.ssl, SslMode::Disable);
        assert_eq!(plain.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }

    #[test]
    fn what_is_not_a_store_url_is_named() {
        let err = |url: &str| Settings::parse(url).unwrap_err().to_string();
        assert!(
            err("mysql://u:hunter-22@h/db")
                .contains("'mysql://u:***@h/db' is not a PostgreSQL URL")
        );
        assert!(err("postgres://h/db?sslmode=verify-ca").contains("use sslmode=verify-full"));
        assert!(err("postgres://h/db?sslmode=maybe").contains("disable, require or verify-full"));
        assert!(err("not a url").contains("is not a URL"));
    }

    #[test]
    fn times_read_back_as_postgresql_prints_them() {
        let t = parse_ts("2026-12-04 19:00:00.123+00").unwrap();
        assert_eq!(t.to_string(), "2026-12-04T19:00:00.123Z");
        let t = parse_ts("2026-12-04 20:30:00+05:30").unwrap();
        assert_eq!(t.to_string(), "2026-12-04T15:00:00Z");
        assert!(parse_ts("yesterday").is_err());
    }
}
