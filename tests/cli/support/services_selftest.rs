//! Self-tests of the real services the backends are tested against: each starts, answers, and
//! shows the state the backend tests rely on.

use super::alertmanager::Alertmanager;
use super::nats::Nats;
use super::postgres::{BLOCKED_SQL, Postgres};
use super::redis::{Redis, closed_port, silent_listener};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn services_postgres_statements_blocked_update_and_passwords() {
    let started = Instant::now();
    let pg = Postgres::start();
    eprintln!("postgres ready in {:?} at {}", started.elapsed(), pg.url);
    assert!(
        pg.url.starts_with("postgres://postgres@127.0.0.1:"),
        "{}",
        pg.url
    );

    // pg_stat_statements is loaded and created.
    assert_eq!(
        pg.psql("SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'"),
        "pg_stat_statements"
    );
    pg.psql("SELECT pg_sleep(0.01)");
    let calls =
        pg.psql("SELECT calls FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep%' LIMIT 1");
    assert_eq!(calls, "1", "pg_stat_statements rows: {calls:?}");

    // The lock scenario: a holder, an update blocked on it, pg_blocking_pids shows both.
    let scenario = Instant::now();
    let holder = pg.hold_row_lock();
    assert!(holder.pid > 0);
    assert!(pg.backend_exists(holder.pid));
    let mut update = pg.blocked_update();
    let blocked = pg.wait_until_blocked();
    eprintln!("lock scenario in place in {:?}", scenario.elapsed());
    assert_eq!(blocked.blocked_by, vec![holder.pid], "{blocked:?}");
    assert_eq!(blocked.query, BLOCKED_SQL);
    assert_ne!(blocked.pid, holder.pid);
    // As a check would join it back: the holder is idle in its transaction.
    let holder_row = pg.psql(&format!(
        "SELECT b.pid, b.state FROM pg_stat_activity w \
         JOIN pg_stat_activity b ON b.pid = ANY(pg_blocking_pids(w.pid)) WHERE w.pid = {}",
        blocked.pid
    ));
    assert_eq!(holder_row, format!("{}|idle in transaction", holder.pid));
    // Ending the holder lets the update through.
    assert_eq!(
        pg.psql(&format!("SELECT pg_terminate_backend({})", holder.pid)),
        "t"
    );
    pg.wait_backend_gone(holder.pid);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = update.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the blocked update never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert_eq!(pg.psql("SELECT state FROM jobs WHERE id = 1"), "waiting");
    drop(holder);

    // A role with a password: the right one connects, a wrong one is rejected.
    let url = pg.with_password("app", "secret");
    assert_eq!(
        url,
        format!("postgres://app:secret@127.0.0.1:{}/postgres", pg.port)
    );
    assert_eq!(
        pg.psql_as("app", "secret", "SELECT current_user"),
        Ok("app".into())
    );
    let err = pg
        .psql_as("app", "wrong", "SELECT 1")
        .expect_err("a wrong password is rejected");
    assert!(
        err.contains("password authentication failed for user \"app\""),
        "{err}"
    );
    eprintln!("postgres self-test in {:?}", started.elapsed());
}

#[test]
fn services_redis_queue_length_and_items() {
    let started = Instant::now();
    let redis = Redis::start();
    eprintln!("redis ready in {:?} at {}", started.elapsed(), redis.url);
    assert_eq!(redis.url, format!("redis://127.0.0.1:{}", redis.port));
    assert_eq!(redis.cli(&["PING"]), "PONG");
    redis.seed_queue("benchmark_queue", 1234);
    assert_eq!(redis.cli(&["LLEN", "benchmark_queue"]), "1234");
    assert_eq!(
        redis.cli(&["LRANGE", "benchmark_queue", "0", "1"]),
        "{\"job\":1,\"batch_size\":8}\n{\"job\":2,\"batch_size\":8}"
    );
    eprintln!("redis self-test in {:?}", started.elapsed());
}

#[test]
fn services_silent_listener_accepts_and_never_answers() {
    let (listener, port) = silent_listener();
    assert_eq!(listener.local_addr().unwrap().port(), port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).expect_err("no answer, no close");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    // Dropped: the connection is closed and the port refuses.
    drop(listener);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", closed_port())).is_err());
}

#[test]
fn services_nats_answers_with_its_version() {
    let started = Instant::now();
    let nats = Nats::start();
    eprintln!("nats ready in {:?} at {}", started.elapsed(), nats.url);
    let varz = nats.varz();
    let version = varz["version"].as_str().unwrap_or_default();
    assert!(version.starts_with("2."), "{varz:#}");
    assert_eq!(varz["port"], nats.port);
    // The client port speaks the NATS protocol: INFO first.
    let stream = TcpStream::connect(("127.0.0.1", nats.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO {"), "{line}");
    assert!(
        line.contains(&format!("\"version\":\"{version}\"")),
        "{line}"
    );
}

#[test]
fn services_alertmanager_lists_a_posted_alert() {
    let started = Instant::now();
    let am = Alertmanager::start();
    eprintln!(
        "alertmanager ready in {:?} at {}",
        started.elapsed(),
        am.url
    );
    assert_eq!(am.silences(), serde_json::json!([]));
    am.post_alert(
        "VideoProcessingErrorBudgetExhausted",
        &[("namespace", "video-processing"), ("severity", "critical")],
    );
    let alerts = am.alerts();
    let list = alerts.as_array().expect("an array of alerts");
    assert_eq!(list.len(), 1, "{alerts:#}");
    let alert = &list[0];
    assert_eq!(
        alert["labels"]["alertname"],
        "VideoProcessingErrorBudgetExhausted"
    );
    assert_eq!(alert["labels"]["namespace"], "video-processing");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    assert_eq!(alert["receivers"][0]["name"], "null");
    eprintln!("alertmanager self-test in {:?}", started.elapsed());
}
