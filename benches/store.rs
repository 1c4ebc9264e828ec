//! Append throughput to the team store, against a real PostgreSQL the test harness starts
//! (`tests/cli/support/postgres.rs`, on loopback), through oncall's own store module:
//!
//! - **sync**: 10,000 events waiting in a local timeline shared by one `store sync` (one
//!   transaction, in order, each under its id and the incident's next sequence number);
//! - **note by note**: 500 events appended one at a time as `oncall note` does (fsynced in the
//!   local timeline, then one transaction in the store each).
//!
//! The issue sets no target for these; they are printed as measured. Run with
//! `cargo bench --bench store`.

#[path = "../tests/cli/support/postgres.rs"]
mod postgres;
#[path = "../tests/cli/support/process.rs"]
mod process;

use oncall::engine::event::{Event, EventKind};
use oncall::store::{Team, postgres::Settings};
use oncall::timeline;
use std::time::Instant;

const BATCH: usize = 10_000;
const ONE_BY_ONE: usize = 500;

fn note(incident: &str, n: usize) -> Event {
    Event {
        ts: jiff::Timestamp::now(),
        incident: incident.to_string(),
        kind: EventKind::Note {
            text: format!("note number {n}: what was seen, and what was done about it"),
            user: "bench".into(),
            tag: None,
            owner: None,
            due: None,
        },
    }
}

fn main() {
    let pg = postgres::Postgres::start();
    pg.psql("CREATE DATABASE oncall");
    let url = format!("postgres://postgres@127.0.0.1:{}/oncall", pg.port);
    let state = process::unique_dir("oncall-store-bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let settings = Settings::parse(&url).expect("the store's URL");
        let mut pg_store = settings.connect().await.expect("connecting");
        pg_store.migrate().await.expect("store init");
        let local = timeline::Store::new(Some(state.clone()));

        // A timeline written while the store was away.
        let now = jiff::Zoned::now();
        let (waiting, mut file) = local.create("waiting", &now).expect("an incident");
        for n in 0..BATCH {
            file.write(&note(&waiting, n)).expect("writing locally");
        }
        let mut team = Team {
            local,
            settings: Some(settings),
            shared: Some(pg_store),
        };
        let started = Instant::now();
        let sent = team.sync().await.expect("sync");
        let batch = started.elapsed();
        assert_eq!(sent, BATCH);

        let (noted, _) = team.local.create("noted", &now).expect("an incident");
        let started = Instant::now();
        for n in 0..ONE_BY_ONE {
            team.append(&noted, vec![note(&noted, n)])
                .await
                .expect("append");
        }
        let one_by_one = started.elapsed();
        assert_eq!(team.unshared(), 0, "everything was shared");

        let rate = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64();
        println!();
        println!("figure                                   measured");
        println!("-------------------------------------------------");
        println!(
            "store sync of {BATCH} waiting events      {:>8.0} events/s ({} ms)",
            rate(BATCH, batch),
            batch.as_millis()
        );
        println!(
            "note by note ({ONE_BY_ONE}, fsync + 1 tx each)   {:>8.0} events/s ({} ms)",
            rate(ONE_BY_ONE, one_by_one),
            one_by_one.as_millis()
        );
    });
    let _ = std::fs::remove_dir_all(&state);
}
