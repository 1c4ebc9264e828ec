//! The PostgreSQL kinds: what each says in a runbook, how it is checked, read and planned.

use super::Kind;
use crate::backends::kinds::{ActionSpec, CheckSpec};
use crate::backends::reading::Reading;
use crate::backends::{BackendError, Live, PlanContext, Prepared, Request, duration, url};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{MAX_ROWS, S, bounds};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// A PostgreSQL check. `url` defaults to `--postgres-url`, then the PG* variables psql reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pg {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// `pg_long_queries`: active longer than this (default 5m).
    #[serde(default)]
    pub older_than: Option<S<String>>,
    /// Rows to keep (default 10).
    #[serde(default)]
    pub limit: Option<S<usize>>,
}

/// Cancel or terminate the backends a check found: the pids in a column of its rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgBackends {
    #[serde(default)]
    pub url: Option<S<String>>,
    /// The check whose rows name the backends (`pg_long_queries`, `pg_blocked`).
    pub check: S<String>,
    /// The column holding the pids (default `pid`; `blocking pid` to end what blocks).
    #[serde(default)]
    pub column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgReindex {
    #[serde(default)]
    pub url: Option<S<String>>,
    pub database: S<String>,
}

/// The connection of a spec: its own URL, else `--postgres-url`, else the PG* variables.
fn config(
    spec: &Option<S<String>>,
    flag: Option<&String>,
    ctx: &Value,
) -> Result<tokio_postgres::Config, BackendError> {
    Ok(super::config(url(spec, flag, ctx)?.as_deref())?)
}

fn action_config(
    spec: &Option<S<String>>,
    ctx: &Value,
    with: &PlanContext<'_>,
) -> Result<tokio_postgres::Config, BackendError> {
    config(
        spec,
        with.systems.and_then(|s| s.urls.postgres.as_ref()),
        ctx,
    )
}

impl Pg {
    fn validate(&self, v: &mut Validator) {
        v.count(self.limit.as_ref(), "`limit`", 1..=MAX_ROWS);
        if let Some(age) = &self.older_than {
            v.duration(age, "`older_than`", bounds::AGE);
        }
        v.templates(&self.url, "field");
    }

    async fn read(&self, kind: Kind, live: &Live, ctx: &Value) -> Result<Reading, BackendError> {
        let config = config(&self.url, live.systems.urls.postgres.as_ref(), ctx)?;
        let older_than = duration(&self.older_than, "older_than")?;
        super::check(
            kind,
            &config,
            older_than,
            self.limit.as_ref().map(|l| l.value),
        )
        .await
    }
}

/// The PostgreSQL checks: each reads one view of the server with the same settings.
macro_rules! pg_checks {
    ($($(#[$doc:meta])* $name:ident => $kind:ident,)+) => {$(
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Pg);

        impl CheckSpec for $name {
            const BACKEND: &'static str = "postgres";

            fn validate(&self, _id: &S<String>, v: &mut Validator) {
                self.0.validate(v);
            }

            async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
                self.0.read(Kind::$kind, live, ctx).await
            }
        }
    )+};
}

pg_checks! {
    /// `pg_ready`: the server answers, with its version and latency.
    Ready => Ready,
    /// `pg_connections`: connections by state against `max_connections`.
    Connections => Connections,
    /// `pg_long_queries`: queries active longer than `older_than`.
    LongQueries => LongQueries,
    /// `pg_blocked`: queries waiting on a lock, with what blocks them.
    Blocked => Blocked,
    /// `pg_slow_statements`: the slowest statements from pg_stat_statements.
    SlowStatements => SlowStatements,
    /// `pg_locks`: locks not granted.
    Locks => Locks,
}

impl PgBackends {
    fn validate(&self, v: &mut Validator) {
        if !v.is_visible(&self.check.value) {
            v.problem(&self.check, format!("names check '{}', which is not defined in this or an earlier step", self.check.value), Some("name the check whose rows list the backends, e.g. a pg_long_queries or pg_blocked check".into()));
        }
        v.templates(&self.url, "field");
    }

    fn prepare(
        &self,
        ctx: &Value,
        with: &PlanContext<'_>,
        cancel: bool,
    ) -> Result<Prepared, BackendError> {
        let config = action_config(&self.url, ctx, with)?;
        let column = self.column.as_deref().unwrap_or("pid");
        let (plan, request) = super::backends(ctx, &self.check.value, column, config, cancel)?;
        Ok(Prepared::new(plan, Request::Postgres(request)))
    }
}

/// `pg_cancel`: cancel the queries of the backends a check found.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Cancel(pub PgBackends);

/// `pg_terminate`: end the backends a check found.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Terminate(pub PgBackends);

impl ActionSpec for Cancel {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.0.validate(v);
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        self.0.prepare(ctx, with, true)
    }
}

impl ActionSpec for Terminate {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.0.validate(v);
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        self.0.prepare(ctx, with, false)
    }
}

/// `pg_analyze`: refresh the planner's statistics.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Analyze(pub Pg);

impl ActionSpec for Analyze {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates(&self.0.url, "field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let config = action_config(&self.0.url, ctx, with)?;
        let (plan, request) = super::sql(config, "ANALYZE".into(), None);
        Ok(Prepared::new(plan, Request::Postgres(request)))
    }
}

/// `pg_reindex`: rebuild a database's indexes.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Reindex(pub PgReindex);

impl ActionSpec for Reindex {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates(self.0.url.iter().chain([&self.0.database]), "field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let config = action_config(&self.0.url, ctx, with)?;
        let database = expr::render(&self.0.database.value, ctx)?;
        let warning = "REINDEX locks each table against writes while its indexes are rebuilt: run it when the load allows";
        let sql = format!("REINDEX DATABASE {}", quote_ident(&database));
        let (plan, request) = super::sql(config, sql, Some(warning));
        Ok(Prepared::new(plan, Request::Postgres(request)))
    }
}

/// A PostgreSQL identifier, double-quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
