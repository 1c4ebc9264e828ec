//! Docker performance figures for `oncall`, each printed beside its target. Plain Rust, no
//! harness. Every figure runs real processes against a real (private) dockerd: the test
//! harness's (`tests/cli/support/docker.rs`: `ONCALL_TEST_DOCKER_HOST`, or a dockerd of its own,
//! which needs root), with one docker-compose project on it (`benchmark` healthy, `trainer`
//! exited 137 after a CUDA OOM line, `api` unhealthy).
//!
//! Side by side, in one run against the same daemon and project, median of 5 after a warm-up:
//!
//! - the playbook's Scenario 1 investigation done by hand, one command after the other:
//!   `docker-compose -p NAME ps`, `docker-compose -p NAME logs --tail=50 benchmark` and
//!   `docker stats --no-stream` of the project's running containers (the working folder is the
//!   project's, `DOCKER_HOST` points at the daemon);
//! - the same step in oncall: `oncall run FILE --dry-run --output json` of a runbook holding one
//!   step with `docker_containers`, `docker_logs` (benchmark, `since: 1h`) and `docker_stats` of
//!   the project, in a hermetic environment (cleared env, temp HOME and state dir, `DOCKER_HOST`);
//!
//! and the ratio of the two wall times. Both stats read CPU % as the difference of two samples
//! the daemon takes about 1 s apart (`stream=false` without `one-shot`), so both sides are
//! bounded below by that second; the same comparison without stats on either side (`ps` +
//! `logs` by hand, a second runbook without `docker_stats`) shows where the rest of the time
//! goes. Each child's own peak RSS comes from `wait4`.
//!
//! Run with `cargo bench --bench docker`. It always exits 0: a missed target is marked MISSED in
//! the table, it does not fail the run; with no Docker to be had, the figures say skipped.

#[path = "../tests/cli/support/docker.rs"]
mod docker;
#[path = "support/table.rs"]
mod table;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use table::{Row, print_table, row};

/// Measured runs of each side (after one warm-up run).
const RUNS: usize = 5;

fn main() {
    let home = std::env::temp_dir().join(format!("oncall-docker-bench-{}", std::process::id()));
    std::fs::create_dir_all(home.join("state")).expect("creating the bench's temp dir");
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    scenario_one(&home, &mut rows, &mut notes);
    let _ = std::fs::remove_dir_all(&home);
    print_table(&rows, &notes);
}

// --- running children ---------------------------------------------------------------------

/// What one child process did.
struct Ran {
    code: i32,
    /// Wall time from spawn to reaping, in ms.
    wall: f64,
    /// The child's own peak RSS in KiB.
    maxrss_kib: u64,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or(Value::Null)
    }

    fn mb(&self) -> f64 {
        self.maxrss_kib as f64 * 1024.0 / 1e6
    }
}

/// A hermetic environment: cleared env, PATH, a temp HOME, `DOCKER_HOST`, working folder `cwd`.
fn hermetic(program: &str, home: &Path, host: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", host)
        .current_dir(cwd);
    cmd
}

/// The oncall binary in a hermetic environment with its own state dir.
fn oncall(home: &Path, host: &str, args: &[&str]) -> Command {
    let mut cmd = hermetic(env!("CARGO_BIN_EXE_oncall"), home, host, home);
    cmd.args(args).env("ONCALL_STATE_DIR", home.join("state"));
    cmd
}

/// Runs the command with stdout and stderr captured, and reaps it with `wait4`, which gives that
/// child's own peak RSS (KiB on Linux), unlike `getrusage(RUSAGE_CHILDREN)`, the maximum over
/// every child waited for.
fn run(cmd: &mut Command) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the command starts");
    let mut err = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let mut stdout = Vec::new();
    let _ = child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut stdout);
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
    let wall = ms(started.elapsed());
    drop(child); // already reaped: dropping a std Child neither waits nor kills
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    Ran {
        code,
        wall,
        maxrss_kib: usage.ru_maxrss as u64,
        stdout,
        stderr: errors.join().unwrap_or_default(),
    }
}

/// The observation of check `id` in a `--output json` report.
fn check<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["steps"]
        .as_array()?
        .iter()
        .filter_map(|s| s["checks"].as_array())
        .flatten()
        .find(|c| c["check"] == id)
}

/// How many table rows an observation has.
fn table_rows(obs: &Value) -> usize {
    obs["table"]["rows"].as_array().map_or(0, Vec::len)
}

/// Writes a runbook file of one step holding `checks` (YAML list items, already indented).
fn runbook(home: &Path, id: &str, checks: &str) -> PathBuf {
    let path = home.join(format!("{id}.yaml"));
    let text = format!(
        "id: {id}\ntitle: Benchmark {id}\nseverity: P0\nsteps:\n  - id: investigate\n    title: Investigation steps\n    checks:\n{checks}"
    );
    std::fs::write(&path, text).expect("writing the bench runbook");
    path
}

/// The first line of a failed child's stderr, for the table.
fn first_error(ran: &Ran) -> String {
    let line = ran.stderr.lines().find(|l| !l.trim().is_empty());
    line.unwrap_or("no stderr").chars().take(100).collect()
}

/// Whether `program` is a file in one of PATH's folders.
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// The first line of `program ARGS` (a version), or "?".
fn version(program: &str, args: &[&str], home: &Path, host: &str) -> String {
    let mut cmd = hermetic(program, home, host, home);
    cmd.args(args);
    let ran = run(&mut cmd);
    let text = String::from_utf8_lossy(&ran.stdout);
    match text.lines().next() {
        Some(line) if ran.code == 0 => line.trim().to_string(),
        _ => "?".into(),
    }
}

// --- Scenario 1 side by side --------------------------------------------------------------

/// Check ids of the oncall step, in the order of the hand-typed commands.
const IDS: [&str; 3] = ["containers", "benchmark_logs", "usage"];

/// Walls and peak RSS of one side of the comparison, over the measured runs.
#[derive(Default)]
struct Side {
    /// The whole sequence (or process), ms.
    full: Vec<f64>,
    /// Without stats, ms.
    no_stats: Vec<f64>,
    /// Each command (or each check's own `millis`), ms.
    parts: [Vec<f64>; 3],
    /// Peak RSS per command (or per process), MB, warm-up included.
    rss: [f64; 3],
}

fn scenario_one(home: &Path, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    const FIGURE: &str = "Scenario 1 investigation: docker-compose / oncall";
    // dockerd only when there is no daemon handed over by scripts/test.sh.
    let own_daemon = std::env::var_os(docker::HOST_ENV).is_none_or(|h| h.is_empty());
    let missing: Vec<&str> = ["docker", "docker-compose", "dockerd"]
        .into_iter()
        .filter(|p| !on_path(p) && (*p != "dockerd" || own_daemon))
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "skipped: {} not installed (Debian: docker.io docker-compose)",
            missing.join(", ")
        );
        rows.push(row(FIGURE, why, "(report)", None));
        return;
    }
    eprintln!("Scenario 1: a private dockerd and a compose project on it…");
    let setup = Instant::now();
    let project = match std::panic::catch_unwind(|| docker::ComposeProject::up("bench")) {
        Ok(project) => project,
        Err(_) => {
            let why = "skipped: no Docker daemon or project (see above; root needed)".to_string();
            rows.push(row(FIGURE, why, "(report)", None));
            return;
        }
    };
    eprintln!(
        "   project {} up in {:.1} s",
        project.name,
        setup.elapsed().as_secs_f64()
    );
    let host = project.docker_host().host;
    let name = project.name.clone();

    // `docker stats` without names shows every running container of the daemon, which may be
    // shared with tests: name the project's running containers, as `docker stats` would list
    // them (resolved once, outside the timings).
    let label = format!("label=com.docker.compose.project={name}");
    let running: Vec<String> = project
        .docker_host()
        .run(&["ps", "-q", "--filter", &label])
        .lines()
        .map(str::to_string)
        .collect();

    let compose = |args: &[&str]| {
        let mut cmd = hermetic("docker-compose", home, &host, &project.dir);
        cmd.arg("-p").arg(&name).args(args);
        run(&mut cmd)
    };
    let stats = || {
        let mut cmd = hermetic("docker", home, &host, &project.dir);
        cmd.args(["stats", "--no-stream"]).args(&running);
        run(&mut cmd)
    };
    let commands = [
        format!("docker-compose -p {name} ps"),
        format!("docker-compose -p {name} logs --tail=50 benchmark"),
        format!("docker stats --no-stream ({} running)", running.len()),
    ];

    let containers = format!(
        "      - id: {}\n        docker_containers: {{ project: {name} }}\n",
        IDS[0]
    );
    let logs = format!(
        "      - id: {}\n        docker_logs: {{ project: {name}, service: benchmark, since: 1h, matches: \".\" }}\n",
        IDS[1]
    );
    let usage = format!(
        "      - id: {}\n        docker_stats: {{ project: {name} }}\n",
        IDS[2]
    );
    let full = runbook(home, "scenario-one", &format!("{containers}{logs}{usage}"));
    let no_stats = runbook(
        home,
        "scenario-one-no-stats",
        &format!("{containers}{logs}"),
    );
    let args = |file: &Path| {
        let file = file.to_str().expect("a UTF-8 temp path").to_string();
        [
            "run".to_string(),
            file,
            "--dry-run".into(),
            "--output".into(),
            "json".into(),
        ]
    };
    let (full_args, no_stats_args) = (args(&full), args(&no_stats));

    eprintln!("   1 warm-up + {RUNS} runs of each side, alternating…");
    let (mut hand, mut tool) = (Side::default(), Side::default());
    let mut problems = Vec::new();
    let mut answers = (String::new(), String::new());
    for run_no in 0..=RUNS {
        let measured = run_no > 0;

        // By hand: the playbook's commands one after the other.
        let started = Instant::now();
        let ps = compose(&["ps"]);
        let log = compose(&["logs", "--tail=50", "benchmark"]);
        let before_stats = ms(started.elapsed());
        let st = stats();
        let sequence = ms(started.elapsed());
        for (i, ran) in [&ps, &log, &st].into_iter().enumerate() {
            if ran.code != 0 {
                problems.push(format!(
                    "`{}` exit {}: {}",
                    commands[i],
                    ran.code,
                    first_error(ran)
                ));
            }
            hand.rss[i] = hand.rss[i].max(ran.mb());
            if measured {
                hand.parts[i].push(ran.wall);
            }
        }
        let ps_text = String::from_utf8_lossy(&ps.stdout);
        let listed = ps_text.lines().filter(|l| l.starts_with(&name)).count();
        let stats_text = String::from_utf8_lossy(&st.stdout);
        let sampled = stats_text.lines().skip(1).count();
        answers.0 = format!("{listed} listed, {sampled} with stats");
        if listed != 3 || sampled != running.len() {
            problems.push(format!("by hand: {}", answers.0));
        }
        if measured {
            hand.full.push(sequence);
            hand.no_stats.push(before_stats);
        }

        // oncall: the same step, then the same step without stats.
        let ran = run(&mut oncall(
            home,
            &host,
            &full_args.each_ref().map(|s| s.as_str()),
        ));
        tool.rss[0] = tool.rss[0].max(ran.mb());
        let report = ran.json();
        let obs: Vec<Option<&Value>> = IDS.iter().map(|id| check(&report, id)).collect();
        match obs.as_slice() {
            [Some(c), Some(l), Some(s)] => {
                // api unhealthy and trainer exited: the containers check fails, 1 of 3 is good.
                let good = c["verdict"] == "fail"
                    && c["value"] == 1
                    && table_rows(c) == 3
                    && l["verdict"] == "ok"
                    && l["value"].is_u64()
                    && s["verdict"] == "ok"
                    && table_rows(s) >= running.len();
                answers.1 = format!(
                    "{} of {} good ({}), {} log lines, {} with stats",
                    c["value"],
                    table_rows(c),
                    c["verdict"].as_str().unwrap_or("?"),
                    l["value"],
                    table_rows(s)
                );
                if !good {
                    problems.push(format!(
                        "oncall: {} / logs {} ({}) / stats {} ({})",
                        answers.1, l["verdict"], l["reason"], s["verdict"], s["reason"]
                    ));
                }
                if measured {
                    for (part, o) in tool.parts.iter_mut().zip([c, l, s]) {
                        part.push(o["millis"].as_f64().unwrap_or(f64::NAN));
                    }
                }
            }
            _ => problems.push(format!(
                "oncall exit {}, no report: {}",
                ran.code,
                first_error(&ran)
            )),
        }
        let lean = run(&mut oncall(
            home,
            &host,
            &no_stats_args.each_ref().map(|s| s.as_str()),
        ));
        tool.rss[1] = tool.rss[1].max(lean.mb());
        let lean_report = lean.json();
        if check(&lean_report, IDS[0]).is_none() || check(&lean_report, IDS[1]).is_none() {
            problems.push(format!(
                "oncall without stats exit {}, no report: {}",
                lean.code,
                first_error(&lean)
            ));
        }
        if measured {
            tool.full.push(ran.wall);
            tool.no_stats.push(lean.wall);
        }
    }
    // What any child inherits from this process (Linux keeps the peak RSS across exec).
    let floor = run(&mut Command::new("true")).mb();
    let versions = [
        version("docker-compose", &["version", "--short"], home, &host),
        version(
            "docker",
            &["version", "--format", "{{.Client.Version}}"],
            home,
            &host,
        ),
        version(
            "docker",
            &["version", "--format", "{{.Server.Version}}"],
            home,
            &host,
        ),
    ];
    drop(project);

    let hand_full = median(&mut hand.full);
    let tool_full = median(&mut tool.full);
    let hand_lean = median(&mut hand.no_stats);
    let tool_lean = median(&mut tool.no_stats);
    rows.push(row(
        "Scenario 1 by hand: ps, logs, stats in sequence (median)",
        format!("{hand_full:.0} ms"),
        "(report)",
        None,
    ));
    for (command, walls) in commands.iter().zip(hand.parts.iter_mut()) {
        rows.push(row(
            &format!("  {command}"),
            format!("{:.0} ms", median(walls)),
            "",
            None,
        ));
    }
    rows.push(row(
        "Scenario 1 in oncall: one step, 3 checks (median)",
        format!("{tool_full:.0} ms"),
        "(report)",
        None,
    ));
    let kinds = ["docker_containers", "docker_logs", "docker_stats"];
    for (kind, millis) in kinds.iter().zip(tool.parts.iter_mut()) {
        rows.push(row(
            &format!("  {kind}: the check's own millis"),
            format!("{:.0} ms", median(millis)),
            "",
            None,
        ));
    }
    rows.push(row(
        "  ratio by hand / oncall",
        format!("{:.2}×", hand_full / tool_full),
        "(report)",
        None,
    ));
    rows.push(row(
        "Without stats, by hand: ps, logs (median)",
        format!("{hand_lean:.0} ms"),
        "(report)",
        None,
    ));
    rows.push(row(
        "Without stats, oncall: one step, 2 checks (median)",
        format!("{tool_lean:.0} ms"),
        "(report)",
        None,
    ));
    rows.push(row(
        "  ratio by hand / oncall",
        format!("{:.2}×", hand_lean / tool_lean),
        "(report)",
        None,
    ));
    rows.push(row(
        "Peak RSS: oncall, 3 checks / 2 checks (max of runs)",
        format!("{:.1} / {:.1} MB", tool.rss[0], tool.rss[1]),
        "(report)",
        None,
    ));
    rows.push(row(
        "  docker-compose ps / logs; docker stats",
        format!(
            "{:.1} / {:.1}; {:.1} MB",
            hand.rss[0], hand.rss[1], hand.rss[2]
        ),
        "",
        None,
    ));
    rows.push(row(
        "  floor: /bin/true run by the bench",
        format!("{floor:.1} MB"),
        "",
        None,
    ));
    rows.push(row("Answers by hand", answers.0, "", None));
    rows.push(row("Answers in oncall", answers.1, "", None));
    rows.push(row(
        "Versions: docker-compose / docker client / dockerd",
        versions.join(" / "),
        "",
        None,
    ));
    problems.dedup();
    rows.push(row(
        "Failures or wrong answers",
        if problems.is_empty() {
            "none".into()
        } else {
            problems.join("; ")
        },
        "none",
        Some(problems.is_empty()),
    ));
    notes.push(
        "`docker stats --no-stream` and oncall's docker_stats both read CPU % from two samples \
         the daemon takes ~1 s apart, so both sides are bounded below by about 1 s; the rows \
         without stats show the rest."
            .into(),
    );
    notes.push(format!(
        "By hand, stats names the project's {} running containers (what plain `docker stats` \
         lists); oncall's docker_stats reads every container of the project, stopped ones too.",
        running.len()
    ));
    notes.push(
        "The playbook's `docker-compose logs --tail=50 benchmark` reads the last 50 lines; \
         oncall's docker_logs reads the last hour (`since: 1h`) and counts matching lines."
            .into(),
    );
}

// --- numbers ------------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sorts in place and returns the middle value (NaN for none).
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}
