//! The team store against a real PostgreSQL the test harness starts
//! (`tests/cli/support/postgres.rs`, on loopback, run with `fsync=off` and
//! `synchronous_commit=off`), through oncall's own store module.
//!
//! Append throughput:
//!
//! - **sync**: 10,000 events waiting in a local timeline shared by one `store sync` (one
//!   transaction, in order, each under its id and the incident's next sequence number);
//! - **note by note**: 500 events appended one at a time as `oncall note` does (fsynced in the
//!   local timeline, then one transaction in the store each).
//!
//! The issue sets no target for these; they are printed as measured.
//!
//! **Follow latency**: the time from an event written by the driver to its line in a follower's
//! `oncall follow`, p50, p99 and max; target p99 under 100 ms. The bench is the driver: it opens an
//! incident (`incident_opened`) and writes to it through `Team::append` (fsynced in the local
//! timeline, then shared by `share::incident` in one transaction, as `oncall note` does; a run's
//! background sharing task calls the same `share::incident`, woken after each event reached its
//! timeline). The follower is the real binary, `oncall follow ID -o json --store URL`, in a
//! hermetic environment of its own (its own HOME, config and state folder, as the CLI tests'
//! sandbox sets one up), so it reads the store, woken by `LISTEN`. A thread reads its stdout and
//! timestamps each line as it arrives. Once it printed the opening (it listens from before it read
//! it), 300 notes are appended one by one, each timed from just before its `Team::append` to the
//! arrival of its line (matched by the note's text). Each note is written only once the previous
//! one's line arrived, so the figure is the latency of one event, not a queue behind others. A
//! `run_finished` ends the run; the bench fails if the follower did not exit 0, or did not print
//! every note exactly once, in order. Beside it, what a follower does without `LISTEN` (a
//! transaction-pooling proxy): read again every `FOLLOW_POLL` (src/store/follow.rs, read from the
//! source, not measured), the most a line can wait then.
//!
//! Run with `cargo bench --bench store`. A missed target is marked MISSED in the table, it does
//! not fail the run (a follower that loses, repeats or reorders an event does).

#[path = "../tests/cli/support/postgres.rs"]
mod postgres;
#[path = "../tests/cli/support/process.rs"]
mod process;
#[path = "support/table.rs"]
mod table;

use oncall::engine::event::{Event, EventKind, Mode};
use oncall::store::{Team, postgres::Settings};
use oncall::timeline;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use table::{print_table, row};

const BATCH: usize = 10_000;
const ONE_BY_ONE: usize = 500;
/// Notes timed from the driver's write to the follower's line.
const FOLLOWED: usize = 300;
/// The target for the follower's p99.
const FOLLOW_P99: Duration = Duration::from_millis(100);
/// How long the bench waits for one line of the follower before it calls the event lost (the
/// follower reads again at least every `FOLLOW_POLL`, so a late line is a lost one).
const LINE_WITHIN: Duration = Duration::from_secs(10);

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

/// What a run writes first: what `oncall follow` starts from.
fn opened(incident: &str) -> Event {
    Event {
        ts: jiff::Timestamp::now(),
        incident: incident.to_string(),
        kind: EventKind::IncidentOpened {
            runbook: "followed".into(),
            title: "A run followed from another machine".into(),
            severity: "P2".into(),
            response_time: None,
            mode: Mode::Live,
            origin: "benches/store.rs".into(),
            params: serde_json::Map::new(),
            scenario: None,
            escalation: Vec::new(),
            user: "bench".into(),
            steps: 0,
            endpoints: serde_json::Map::new(),
            alert: None,
            digest: None,
            targets: Default::default(),
            server_dry_run: false,
        },
    }
}

/// What a run writes last: where `oncall follow` stops (exit 0).
fn finished(incident: &str) -> Event {
    Event {
        ts: jiff::Timestamp::now(),
        incident: incident.to_string(),
        kind: EventKind::RunFinished {
            exit_code: 0,
            outcome: "all checks ok".into(),
        },
    }
}

fn main() {
    let pg = postgres::Postgres::start();
    pg.psql("CREATE DATABASE oncall");
    let url = format!("postgres://postgres@127.0.0.1:{}/oncall", pg.port);
    let state = process::unique_dir("oncall-store-bench");
    let machine = process::unique_dir("oncall-store-bench-follower");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut rows = Vec::new();
    let mut team = runtime.block_on(async {
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

        let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
        rows.push(row(
            &format!("store sync of {BATCH} waiting events"),
            format!(
                "{:.0} events/s ({} ms)",
                rate(BATCH, batch),
                batch.as_millis()
            ),
            "",
            None,
        ));
        rows.push(row(
            &format!("note by note ({ONE_BY_ONE}, fsync + 1 tx each)"),
            format!(
                "{:.0} events/s ({} ms)",
                rate(ONE_BY_ONE, one_by_one),
                one_by_one.as_millis()
            ),
            "",
            None,
        ));
        team
    });

    eprintln!("follow: {FOLLOWED} notes, each to the line of `oncall follow -o json`…");
    let followed = follow_latency(&runtime, &mut team, &url, &machine);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut latencies: Vec<f64> = followed.latencies.iter().map(|d| ms(*d)).collect();
    latencies.sort_by(f64::total_cmp);
    let mut appends: Vec<f64> = followed.appends.iter().map(|d| ms(*d)).collect();
    appends.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    rows.push(row(
        &format!("follow: write to follower's line, p50 ({FOLLOWED})"),
        format!("{:.1} ms", percentile(&latencies, 0.5)),
        "",
        None,
    ));
    rows.push(row(
        &format!("follow: write to follower's line, p99 ({FOLLOWED})"),
        format!("{p99:.1} ms"),
        &format!("< {} ms", FOLLOW_P99.as_millis()),
        Some(p99 < ms(FOLLOW_P99)),
    ));
    rows.push(row(
        &format!("follow: write to follower's line, max ({FOLLOWED})"),
        format!("{:.1} ms", latencies[latencies.len() - 1]),
        "",
        None,
    ));
    rows.push(row(
        "the driver's Team::append call, p50",
        format!("{:.1} ms", percentile(&appends, 0.5)),
        "",
        None,
    ));
    let poll = follow_poll();
    rows.push(row(
        "follow without LISTEN: a line waits up to",
        format!("{} ms", poll.as_millis()),
        "",
        None,
    ));
    let early = followed
        .latencies
        .iter()
        .zip(&followed.appends)
        .filter(|(line, append)| line < append)
        .count();
    let notes = [
        format!(
            "follow: each note written once the previous one's line arrived; {early} of \
             {FOLLOWED} lines arrived before the driver's append returned (after the store \
             confirmed, it still writes and fsyncs its shared offset)"
        ),
        format!(
            "follow without LISTEN (a transaction-pooling proxy): the follower reads again every \
             {} ms (FOLLOW_POLL in src/store/follow.rs, from the code, not measured)",
            poll.as_millis()
        ),
    ];
    print_table(&rows, &notes);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&machine);
}

/// Per note: from just before the driver's `Team::append` to its line in the follower, and how
/// long the append itself took.
struct Followed {
    latencies: Vec<Duration>,
    appends: Vec<Duration>,
}

/// The driver (this process) writes a run; `oncall follow` on another machine (`root`: its
/// home, config and state) prints it.
fn follow_latency(
    runtime: &tokio::runtime::Runtime,
    team: &mut Team,
    url: &str,
    root: &Path,
) -> Followed {
    let now = jiff::Zoned::now();
    // Held, as a run holds its incident, until the run finished.
    let (id, held) = team.local.create("followed", &now).expect("an incident");
    runtime
        .block_on(team.append(&id, vec![opened(&id)]))
        .expect("opening the incident");
    let mut follower = Follower::start(url, root, &id);

    // Ready once it printed the opening: it LISTENs from before its first read.
    let (first, _) = follower.next("the incident_opened event");
    if first["event"] != "incident_opened" {
        follower.fail(&format!("its first line is not the opening: {first}"));
    }

    let mut followed = Followed {
        latencies: Vec::with_capacity(FOLLOWED),
        appends: Vec::with_capacity(FOLLOWED),
    };
    for n in 0..FOLLOWED {
        let event = note(&id, n);
        let EventKind::Note { text, .. } = &event.kind else {
            unreachable!("a note")
        };
        let text = text.clone();
        let started = Instant::now();
        runtime
            .block_on(team.append(&id, vec![event]))
            .expect("append");
        followed.appends.push(started.elapsed());
        // The next line must be this note: a note missing, repeated or out of order fails here.
        let (line, at) = follower.next(&format!("note {n}"));
        if line["event"] != "note" || line["text"] != text.as_str() {
            follower.fail(&format!("expected note {n} ({text:?}), got {line}"));
        }
        followed.latencies.push(at.duration_since(started));
    }

    runtime
        .block_on(team.append(&id, vec![finished(&id)]))
        .expect("finishing the run");
    drop(held);
    let (last, _) = follower.next("the run_finished event");
    if last["event"] != "run_finished" {
        follower.fail(&format!("expected run_finished, got {last}"));
    }
    follower.exits_0();
    assert_eq!(team.unshared(), 0, "everything was shared");
    followed
}

/// `oncall follow ID -o json` running, its stdout read line by line on a thread.
struct Follower {
    child: Child,
    /// Each line of its stdout, with when it arrived.
    lines: mpsc::Receiver<(String, Instant)>,
    stderr: Option<JoinHandle<String>>,
}

impl Follower {
    /// In a hermetic environment of its own, as the CLI tests' sandbox sets up a machine: no
    /// inherited HOME or ONCALL_*, its own config and state folders.
    fn start(url: &str, root: &Path, incident: &str) -> Follower {
        for sub in ["home", "state", "work", "config"] {
            std::fs::create_dir_all(root.join(sub)).expect("the follower's folders");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
        cmd.args(["follow", incident, "-o", "json", "--store", url])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_STATE_HOME", root.join("home/.local/state"))
            .env("ONCALL_STATE_DIR", root.join("state"))
            .env("ONCALL_USER", "follower")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .current_dir(root.join("work"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Killed with this process, should the bench panic.
        let mut child = process::spawn_tied(cmd, libc::SIGKILL).expect("oncall follow starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((line, Instant::now())).is_err() {
                    break;
                }
            }
        });
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Follower {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Its next line, as JSON, and when it arrived.
    fn next(&mut self, waiting_for: &str) -> (Value, Instant) {
        match self.lines.recv_timeout(LINE_WITHIN) {
            Ok((line, at)) => match serde_json::from_str(&line) {
                Ok(value) => (value, at),
                Err(e) => self.fail(&format!("a line that is not JSON ({e}): {line}")),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => self.fail(&format!(
                "no line within {LINE_WITHIN:?}, waiting for {waiting_for}"
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.fail(&format!("its output ended, waiting for {waiting_for}"))
            }
        }
    }

    /// It ends by itself, with exit code 0 and nothing more printed.
    fn exits_0(mut self) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the follower") {
                break status;
            }
            if started.elapsed() > LINE_WITHIN {
                self.fail(&format!("still running {LINE_WITHIN:?} after run_finished"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match self.lines.recv_timeout(LINE_WITHIN) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Ok((line, _)) => self.fail(&format!("a line after run_finished: {line}")),
            Err(mpsc::RecvTimeoutError::Timeout) => self.fail("its stdout stayed open"),
        }
        if !status.success() {
            self.fail(&format!("it exited with {status}"));
        }
    }

    /// Ends the bench, with what the follower said on stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        panic!("oncall follow: {why}\nits stderr:\n{stderr}");
    }
}

/// The most a follower waits before it reads again without being told of new events: all it
/// has where `LISTEN` is not available. `FOLLOW_POLL` is private to src/store/follow.rs, so it
/// is read from the source: the figure printed is the code's.
fn follow_poll() -> Duration {
    let source = include_str!("../src/store/follow.rs");
    let value = source
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("const FOLLOW_POLL: Duration = Duration::")
        })
        .expect("src/store/follow.rs defines FOLLOW_POLL as a Duration");
    let (unit, n) = value
        .trim_end_matches(");")
        .split_once('(')
        .expect("Duration::from_UNIT(N)");
    let n: u64 = n.parse().expect("FOLLOW_POLL is a whole number");
    match unit {
        "from_secs" => Duration::from_secs(n),
        "from_millis" => Duration::from_millis(n),
        other => panic!("FOLLOW_POLL is Duration::{other}, which this bench does not read"),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
