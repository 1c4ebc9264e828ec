//! Performance figures for `oncall`, each printed beside its target. Plain Rust, no harness.
//!
//! 1. Parallel checks: the engine runs one step of 10 HTTP checks against a loopback server
//!    that answers after 200 ms; the whole run should take under 300 ms (about one check).
//! 2. Start-up: `oncall list` and `oncall validate` of the bundled runbooks (release build),
//!    20 runs each in a hermetic environment; each under 20 ms.
//! 3. Memory: peak RSS of `oncall run error-budget --yes` against a real Prometheus (the test
//!    harness's), measured with `wait4` on that child alone; under 30 MB.
//!
//! 4. The post-incident report: `oncall report` and `oncall message` of a real drill's timeline
//!    grown to 10,000 events (a long wait's polls), 10 runs each; under 1 s and 50 MB (by hand, the
//!    playbook's report takes an hour or more).
//!
//! Run with `cargo bench --bench engine` (or `just bench`). It always exits 0: a missed target
//! is marked MISSED in the table, it does not fail the run.

#[path = "../tests/cli/support/prometheus.rs"]
mod prometheus;
#[path = "../tests/cli/support/servers.rs"]
mod servers;
#[path = "support/table.rs"]
mod table;

use oncall::approval::Policy;
use oncall::backends::Live;
use oncall::backends::reading::Verdict;
use oncall::engine::event::{Event, EventKind, Recorder, Sink};
use oncall::engine::{Context, Engine, Interrupts, Pace, Settings};
use oncall::runbook::{Origin, Source, validate};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use table::{Row, print_table, row};

const ENGINE_RUNS: usize = 10;
const CLI_RUNS: usize = 20;

fn main() {
    let home = std::env::temp_dir().join(format!("oncall-bench-{}", std::process::id()));
    std::fs::create_dir_all(home.join("state")).expect("creating the bench's temp dir");
    let mut rows = Vec::new();
    parallel_checks(&mut rows);
    startup(&home, &mut rows);
    peak_memory(&home, &mut rows);
    report(&home, &mut rows);
    let _ = std::fs::remove_dir_all(&home);
    print_table(&rows, &[]);
}

/// Records each finished check's duration and verdict.
struct Finished(Arc<Mutex<Vec<(u64, Verdict)>>>);

impl Sink for Finished {
    fn emit(&mut self, event: &Event) {
        if let EventKind::CheckFinished { observation, .. } = &event.kind {
            let mut seen = self.0.lock().unwrap();
            seen.push((observation.millis, observation.verdict));
        }
    }
}

fn parallel_checks(rows: &mut Vec<Row>) {
    eprintln!("1. parallel checks: {ENGINE_RUNS} engine runs of 10 HTTP checks (200 ms each)…");
    let server = servers::SlowServer::start(
        Duration::from_millis(200),
        r#"{"status":"ok"}"#,
        "application/json",
    );
    let mut text = String::from("id: bench\ntitle: Bench\nseverity: P3\nsteps:\n");
    text.push_str("  - id: probe\n    checks:\n");
    for i in 0..10 {
        let url = &server.url;
        writeln!(
            text,
            "      - {{ id: c{i}, http: {{ url: \"{url}/health\" }} }}"
        )
        .unwrap();
    }
    let source = Source {
        name: "bench.yaml".into(),
        origin: Origin::Bundled,
        text,
    };
    let runbook = validate::load(&source).unwrap_or_else(|p| panic!("bench runbook: {p:?}"));
    // No Prometheus check: the URL is never used.
    let systems = Arc::new(oncall::backends::Systems {
        kube: oncall::backends::kube::Kube::new(None, None, &[]),
        docker: Default::default(),
        gpu: Default::default(),
        urls: Default::default(),
    });
    let reader = Live::new("http://127.0.0.1:9".into(), systems);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let (mut walls, mut slowest, mut ratios, mut not_ok) = (vec![], vec![], vec![], 0);
    for run in 0..=ENGINE_RUNS {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder::new("bench".into(), vec![Box::new(Finished(seen.clone()))]);
        let settings = Settings {
            policy: Policy::DryRun { server: false },
            default_timeout: Duration::from_secs(10),
            pace: Pace::RealTime,
            max_wait: None,
            systems: None,
            known_replicas: Default::default(),
            user: "bench".into(),
            lease: None,
            second: Default::default(),
        };
        let ctx = Context {
            params: Default::default(),
            endpoints: Default::default(),
            incident: serde_json::json!({}),
            checks: Default::default(),
            happened: Default::default(),
        };
        let interrupts = Arc::new(Interrupts::default());
        let engine = Engine::new(&runbook, &reader, settings, recorder, interrupts, ctx);
        let started = Instant::now();
        runtime.block_on(engine.run());
        let wall = ms(started.elapsed());
        if run == 0 {
            continue; // warm-up
        }
        let seen = seen.lock().unwrap();
        not_ok += seen.iter().filter(|(_, v)| *v != Verdict::Ok).count();
        let max_check = seen.iter().map(|(m, _)| *m).max().unwrap_or(0) as f64;
        walls.push(wall);
        slowest.push(max_check);
        ratios.push(wall / max_check.max(1.0));
    }
    let wall = median(&mut walls);
    let worst = max(&walls);
    rows.push(row(
        "10 parallel checks, wall (median)",
        format!("{wall:.1} ms"),
        "< 300 ms",
        Some(wall < 300.0),
    ));
    rows.push(row(
        "10 parallel checks, wall (max)",
        format!("{worst:.1} ms"),
        "< 300 ms",
        Some(worst < 300.0),
    ));
    rows.push(row(
        "  slowest check (median of runs)",
        format!("{:.0} ms", median(&mut slowest)),
        "≈ 200 ms",
        None,
    ));
    let ratio = median(&mut ratios);
    rows.push(row(
        "  wall / slowest check (median)",
        format!("{ratio:.2} (max {:.2})", max(&ratios)),
        "< 1.5",
        Some(ratio < 1.5),
    ));
    if not_ok > 0 {
        rows.push(row(
            "  checks not ok (should be 0)",
            not_ok.to_string(),
            "0",
            Some(false),
        ));
    }
}

/// The binary with a hermetic environment: a temp HOME, state dir and working folder.
fn oncall(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ONCALL_STATE_DIR", home.join("state"))
        .env("NO_COLOR", "1")
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn startup(home: &Path, rows: &mut Vec<Row>) {
    for command in ["list", "validate"] {
        eprintln!("2. start-up: {CLI_RUNS} runs of `oncall {command}`…");
        let mut times = Vec::new();
        let mut failed = 0;
        for run in 0..=CLI_RUNS {
            let started = Instant::now();
            let status = oncall(home, &[command]).status().expect("oncall starts");
            let elapsed = ms(started.elapsed());
            if run > 0 {
                times.push(elapsed);
                failed += usize::from(!status.success());
            }
        }
        let (p50, p90) = (median(&mut times), percentile(&times, 0.9));
        let figure = format!("oncall {command} (median / p90)");
        let mut measured = format!("{p50:.1} / {p90:.1} ms");
        if failed > 0 {
            write!(measured, " ({failed} runs failed)").unwrap();
        }
        let met = p50 < 20.0 && p90 < 20.0 && failed == 0;
        rows.push(row(&figure, measured, "< 20 ms", Some(met)));
    }
}

fn peak_memory(home: &Path, rows: &mut Vec<Row>) {
    const FIGURE: &str = "run error-budget --yes, peak RSS";
    let missing: Vec<&str> = ["/usr/bin/prometheus", "/usr/bin/promtool"]
        .into_iter()
        .filter(|bin| !Path::new(bin).exists())
        .collect();
    if !missing.is_empty() {
        let why = format!("skipped: {} not installed", missing.join(", "));
        rows.push(row(FIGURE, why, "< 30 MB", None));
        return;
    }
    eprintln!("3. memory: starting Prometheus, then `oncall run error-budget --yes`…");
    let prom = match std::panic::catch_unwind(prometheus::Prometheus::start) {
        Ok(prom) => prom,
        Err(_) => {
            let why = "skipped: Prometheus did not start (see above)".to_string();
            rows.push(row(FIGURE, why, "< 30 MB", None));
            return;
        }
    };
    let api = servers::RecordingServer::start();
    let (gateway, orchestrator) = (
        format!("api_gateway={}", api.url),
        format!("job_orchestrator={}", api.url),
    );
    let args = [
        "run",
        "error-budget",
        "--yes",
        "--max-wait",
        "2s",
        "--prometheus-url",
        &prom.url,
        "--endpoint",
        &gateway,
        "--endpoint",
        &orchestrator,
    ];
    let started = Instant::now();
    let (code, maxrss_kib) = wait_with_rusage(&mut oncall(home, &args));
    let wall = ms(started.elapsed());
    let mb = maxrss_kib as f64 / 1024.0;
    rows.push(row(
        FIGURE,
        format!("{mb:.1} MB"),
        "< 30 MB",
        Some(mb < 30.0),
    ));
    rows.push(row(
        "  its wall time / exit code",
        format!("{wall:.0} ms / {code}"),
        "(--max-wait 2s)",
        None,
    ));
}

const REPORT_EVENTS: usize = 10_000;

/// A drill's timeline with polls added to its first wait until it holds `REPORT_EVENTS` events.
fn grown_timeline(home: &Path) -> Option<String> {
    let status = oncall(
        home,
        &[
            "drill",
            "error-budget",
            "--scenario",
            "gpu-saturation",
            "--yes",
        ],
    )
    .status()
    .ok()?;
    if status.code() != Some(0) && status.code() != Some(1) {
        return None;
    }
    let dir = home.join("state/incidents");
    let path = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .next()?
        .path();
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .ok()?
        .lines()
        .map(str::to_string)
        .collect();
    let poll = lines
        .iter()
        .position(|l| l.contains(r#""event":"wait_poll""#))?;
    let extra = REPORT_EVENTS.saturating_sub(lines.len());
    let mut grown = lines[..poll].to_vec();
    grown.extend(std::iter::repeat_n(lines[poll].clone(), extra));
    grown.extend_from_slice(&lines[poll..]);
    std::fs::write(&path, grown.join("\n") + "\n").ok()?;
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

fn report(home: &Path, rows: &mut Vec<Row>) {
    eprintln!("4. report: a drill's timeline grown to {REPORT_EVENTS} events…");
    let Some(id) = grown_timeline(home) else {
        rows.push(row(
            "report of 10,000 events",
            "skipped: the drill failed".into(),
            "< 1 s, < 50 MB",
            None,
        ));
        return;
    };
    for (figure, args) in [
        (
            "oncall report, 10,000 events (median, peak RSS)",
            vec!["report", id.as_str()],
        ),
        (
            "oncall message, 10,000 events (median, peak RSS)",
            vec!["message", id.as_str(), "resolution_update"],
        ),
    ] {
        let mut times = Vec::new();
        let mut peak = 0;
        let mut failed = 0;
        for _ in 0..ENGINE_RUNS {
            let started = Instant::now();
            let (code, rss_kb) = wait_with_rusage(&mut oncall(home, &args));
            times.push(ms(started.elapsed()));
            peak = peak.max(rss_kb);
            failed += usize::from(code != 0);
        }
        let p50 = median(&mut times);
        let mut measured = format!("{p50:.0} ms, {:.1} MB", peak as f64 / 1024.0);
        if failed > 0 {
            write!(measured, " ({failed} runs failed)").unwrap();
        }
        let met = p50 < 1000.0 && peak < 50 * 1024 && failed == 0;
        rows.push(row(figure, measured, "< 1 s, < 50 MB", Some(met)));
    }
}

/// Runs the command and reaps it with `wait4`, which gives that child's own peak RSS (KiB on
/// Linux), unlike `getrusage(RUSAGE_CHILDREN)`, the maximum over every child waited for.
fn wait_with_rusage(cmd: &mut Command) -> (i32, u64) {
    let child = cmd.spawn().expect("oncall starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own un-reaped child; status and usage point to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert!(
            reaped == -1 && err.kind() == std::io::ErrorKind::Interrupted,
            "wait4: {err}"
        );
    }
    drop(child); // already reaped: dropping a std Child neither waits nor kills
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (code, usage.ru_maxrss as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sorts in place and returns the middle value.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, 0.5)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::MIN, f64::max)
}
