//! Kubernetes performance figures for `oncall`, each printed beside its target. Plain Rust, no
//! harness. Every figure runs the release-built binary as a child process against the stateful
//! fake API server of the tests (`tests/cli/support/kube.rs`) over loopback, reached through a
//! kubeconfig, in a hermetic environment (cleared env, temp HOME, state dir and working folder).
//! The fakes run in helper processes (this bench re-executed), not in the bench process: see
//! [`Fake`] for why that matters to the memory figure.
//!
//! 1. Pods: a namespace of 5,000 pods (`app=worker`, all running and ready) summarised by one
//!    `k8s_pods` check: wall time of the whole `oncall run FILE --output json --dry-run` and the
//!    check's own `millis`, median of 5 runs; under 1 s. The fake pages lists by 500, so that is
//!    10 list requests.
//! 2. Logs: 100 MB of logs (20 pods × 50,000 lines of 100 bytes, every 100th with ERROR, all within
//!    the last hour) scanned by one `k8s_logs` check: the child's own peak RSS (`wait4`), under
//!    50 MB; its wall time and MB/s (log bytes / wall time of the whole process); and the match
//!    count, which must be exact.
//! 3. Side by side: the seed's error-budget health check done with `kubectl` one command after the
//!    other (`get pods`, three `logs deployment/X --since=1h | grep`, each through `sh -c`), and
//!    the same step as one oncall step of four concurrent checks; median of 5 each (after a
//!    warm-up that fills kubectl's discovery cache), and the ratio. `kubectl logs deployment/X`
//!    reads one pod, as the seed does; oncall reads every pod of the deployment. When the
//!    `kubectl` on PATH is the Google Cloud SDK's version dispatcher, the versioned binary it
//!    would exec is timed directly too. Skipped when there is no `kubectl` on PATH.
//!
//! 4. The sweep at the physical limit: the seed's first look at an error-budget incident (three
//!    Prometheus queries with curl, `kubectl get pods`, the gateway's `/health` and `/health/db`
//!    with curl, three `kubectl logs deployment/X --since=1h | grep`), one command after the
//!    other, against the same nine reads as one oncall step, each through a loopback proxy that
//!    injects a round-trip time (0 and 50 ms; `benches/support/latency.rs`: a new connection
//!    costs one round trip, every request one more). Prometheus and the gateway are a fixed-answer
//!    HTTP server (what is measured is the waiting, not the query). Beside them the critical path:
//!    the longest chain of round trips the step needs, 4 (a connection, then the deployment, its
//!    pods, their logs), times the round-trip time. Median of 5 after a warm-up.
//!
//! 5. What reaching inside the cluster costs per check: an HTTP check direct, the same through
//!    the API server's service proxy, a command in a named pod through exec, and one in a
//!    deployment's first ready pod, each check's own `millis` (median of 5) and its requests
//!    to the API server, at 0 and 50 ms round trips through the latency proxy.
//!
//! Run with `cargo bench --bench kube` (or `just bench`). It always exits 0: a missed target is
//! marked MISSED in the table, it does not fail the run.

#[path = "../tests/cli/support/kube.rs"]
mod kube;
#[path = "support/latency.rs"]
mod latency;
#[path = "support/table.rs"]
mod table;

use kube::FakeKube;
use serde_json::Value;
use std::io::{BufRead as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use table::{Row, print_table, row};

/// Measured runs of each figure (after one warm-up run).
const RUNS: usize = 5;

/// Figure 1.
const PODS: usize = 5_000;

/// Figure 2: 20 pods × 50,000 lines × 100 bytes (newline included) = 100 MB.
const LOG_PODS: usize = 20;
const LOG_LINES: usize = 50_000;
const LINE_BYTES: usize = 100;
const ERROR_EVERY: usize = 100;
const LOG_RUNS: usize = 3;

/// Figure 3: the error-budget cluster of the seed.
const VIDEO: &str = "video-processing";
const VIDEO_LOG_LINES: usize = 3_000;

fn main() {
    if let Ok(cluster) = std::env::var(SERVE) {
        serve(&cluster);
        return;
    }
    let home = std::env::temp_dir().join(format!("oncall-kube-bench-{}", std::process::id()));
    std::fs::create_dir_all(home.join("state")).expect("creating the bench's temp dir");
    let mut rows = Vec::new();
    pods_summary(&home, &mut rows);
    log_scan(&home, &mut rows);
    side_by_side(&home, &mut rows);
    sweep(&home, &mut rows);
    per_check(&home, &mut rows);
    let _ = std::fs::remove_dir_all(&home);
    print_table(&rows, &[]);
}

// --- the fake, in a process of its own ----------------------------------------------------

/// Set (to a cluster name) in the helper process that serves a fake.
const SERVE: &str = "ONCALL_KUBE_BENCH_SERVE";
/// The folder where that helper writes its kubeconfig.
const SERVE_DIR: &str = "ONCALL_KUBE_BENCH_DIR";

/// A fake API server seeded with one of the clusters below, served by a copy of this bench
/// running as a helper process, never by the bench process itself.
///
/// Why: Linux carries a process's peak RSS across `exec` (the kernel keeps the high-water mark
/// of the memory it replaces), so a child forked from a process holding 150 MB of seeded logs
/// reports at least 150 MB in `wait4`, whatever it uses itself. The bench process therefore
/// stays small (see the `/bin/true` floor in the table) and the fakes live elsewhere.
struct Fake {
    child: std::process::Child,
    to: Option<std::process::ChildStdin>,
    from: std::io::BufReader<std::process::ChildStdout>,
    kubeconfig: PathBuf,
}

impl Fake {
    fn start(cluster: &str, dir: &Path) -> Fake {
        let mut child = Command::new(std::env::current_exe().expect("the bench's own path"))
            .env(SERVE, cluster)
            .env(SERVE_DIR, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the fake's helper process");
        let to = child.stdin.take();
        let mut from = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        from.read_line(&mut line)
            .expect("the helper's kubeconfig path");
        assert!(!line.trim().is_empty(), "the fake's helper process failed");
        Fake {
            child,
            to,
            from,
            kubeconfig: PathBuf::from(line.trim()),
        }
    }

    /// The kubeconfig's text, its server URL and the address behind it, for a proxy in front.
    fn server(&self) -> (String, String, std::net::SocketAddr) {
        let kubeconfig = std::fs::read_to_string(&self.kubeconfig).expect("the fake's kubeconfig");
        let server = kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .expect("a server in the kubeconfig")
            .trim_matches('"')
            .to_string();
        let addr = server
            .trim_start_matches("http://")
            .parse()
            .expect("the fake listens on an address");
        (kubeconfig, server, addr)
    }

    /// How many GET requests so far had a `/path?query` starting with `prefix`.
    fn gets(&mut self, prefix: &str) -> usize {
        let to = self.to.as_mut().expect("the helper's stdin");
        writeln!(to, "{prefix}").expect("asking the helper");
        to.flush().expect("asking the helper");
        let mut line = String::new();
        self.from.read_line(&mut line).expect("the helper's answer");
        line.trim().parse().expect("a count from the helper")
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        drop(self.to.take()); // the helper stops at the end of its stdin
        let _ = self.child.wait();
    }
}

/// The helper process: seeds the cluster, prints its kubeconfig path, then answers request
/// counts (one prefix a line) until its stdin ends.
fn serve(cluster: &str) {
    let dir = PathBuf::from(std::env::var_os(SERVE_DIR).expect("ONCALL_KUBE_BENCH_DIR"));
    let seeding = Instant::now();
    let kube = match cluster {
        "pods" => pods_cluster(),
        "logs" => logs_cluster(),
        "video" => {
            let kube = video_cluster();
            let gateway = latency::fixed_http();
            kube.proxy_to(
                "services",
                VIDEO,
                "api-gateway",
                "8080",
                &format!("http://{gateway}"),
            );
            kube.set_exec(
                VIDEO,
                EXEC_POD,
                &EXEC_ARGV,
                kube::ExecResult {
                    stdout: "535.104.05\n535.104.05\n".into(),
                    ..Default::default()
                },
            );
            kube
        }
        other => panic!("no cluster {other}"),
    };
    eprintln!(
        "   (fake `{cluster}` seeded in {:.1} s, in helper process {})",
        seeding.elapsed().as_secs_f64(),
        std::process::id()
    );
    let kubeconfig = kube.kubeconfig(&dir);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", kubeconfig.display());
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(prefix) = line else { break };
        let count = kube
            .requests()
            .iter()
            .filter(|(m, t)| m == "GET" && t.starts_with(&prefix))
            .count();
        let _ = writeln!(out, "{count}");
        let _ = out.flush();
    }
}

// --- running children ---------------------------------------------------------------------

/// What one child process did.
struct Ran {
    code: i32,
    /// Wall time from spawn to reaping, in ms.
    wall: f64,
    /// The child's own peak RSS in KiB (for `sh -c` pipelines: the largest process of it).
    maxrss_kib: u64,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or(Value::Null)
    }
}

/// The oncall binary in a hermetic environment, with KUBECONFIG pointing at a fake.
fn oncall(home: &Path, kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ONCALL_STATE_DIR", home.join("state"))
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", kubeconfig)
        .current_dir(home);
    cmd
}

/// Runs the command with stdout and stderr captured, and reaps it with `wait4`, which gives that
/// child's own peak RSS (KiB on Linux), unlike `getrusage(RUSAGE_CHILDREN)`, the maximum over
/// every child waited for (this process's own memory, the fake's, never counts).
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

/// Writes a runbook file of one step holding `checks` (YAML list items, already indented).
fn runbook(home: &Path, id: &str, checks: &str) -> PathBuf {
    let path = home.join(format!("{id}.yaml"));
    let text = format!(
        "id: {id}\ntitle: Benchmark {id}\nseverity: P3\nsteps:\n  - id: measure\n    title: Measure\n    checks:\n{checks}"
    );
    std::fs::write(&path, text).expect("writing the bench runbook");
    path
}

/// The first lines of a failed child's stderr, for the table.
fn first_error(ran: &Ran) -> String {
    let line = ran.stderr.lines().find(|l| !l.trim().is_empty());
    line.unwrap_or("no stderr").chars().take(100).collect()
}

// --- 1. pods ------------------------------------------------------------------------------

/// 5,000 running, ready pods `app=worker` in namespace `bench`.
fn pods_cluster() -> FakeKube {
    let kube = FakeKube::start();
    let labels = [("app", "worker"), ("component", "gpu-worker")];
    for i in 0..PODS {
        let name = format!("gpu-worker-7d4b9c8f5-{i:05}");
        let node = format!("gpu-node-{}", i % 50);
        let pod = FakeKube::pod(
            "bench", &name, &labels, "Running", true, 0, None, None, &node,
        );
        kube.add_pod(
            "bench",
            FakeKube::owned_by(pod, "ReplicaSet", "gpu-worker-7d4b9c8f5"),
        );
    }
    kube
}

fn pods_summary(home: &Path, rows: &mut Vec<Row>) {
    eprintln!("1. pods: seeding {PODS} pods in namespace bench…");
    let mut kube = Fake::start("pods", &home.join("pods"));
    let kubeconfig = kube.kubeconfig.clone();
    let file = runbook(
        home,
        "pods",
        "      - id: workers\n        k8s_pods: { namespace: bench, selector: app=worker }\n",
    );
    let file = file.to_str().expect("a UTF-8 temp path");
    let args = ["run", file, "--output", "json", "--dry-run"];

    eprintln!("   1 warm-up + {RUNS} runs of `oncall run pods.yaml --output json --dry-run`…");
    let (mut walls, mut millis, mut problems) = (vec![], vec![], vec![]);
    let mut pages = 0;
    for run_no in 0..=RUNS {
        const LISTS: &str = "/api/v1/namespaces/bench/pods?";
        let before = kube.gets(LISTS);
        let ran = run(&mut oncall(home, &kubeconfig, &args));
        let lists = kube.gets(LISTS) - before;
        let report = ran.json();
        let Some(obs) = check(&report, "workers") else {
            problems.push(format!(
                "exit {}, no report: {}",
                ran.code,
                first_error(&ran)
            ));
            continue;
        };
        if obs["verdict"] != "ok" || obs["value"].as_u64() != Some(PODS as u64) {
            problems.push(format!(
                "verdict {} value {} ({})",
                obs["verdict"], obs["value"], obs["note"]
            ));
        }
        if run_no == 0 {
            continue; // warm-up
        }
        pages = lists;
        walls.push(ran.wall);
        millis.push(obs["millis"].as_f64().unwrap_or(f64::NAN));
    }
    if walls.is_empty() {
        rows.push(row(
            "5,000 pods summarised, wall (median)",
            format!("failed: {}", problems.join("; ")),
            "< 1 s",
            Some(false),
        ));
        return;
    }
    let wall = median(&mut walls);
    rows.push(row(
        "5,000 pods summarised: oncall run, wall (median)",
        format!("{wall:.0} ms (max {:.0})", max(&walls)),
        "< 1 s",
        Some(wall < 1000.0),
    ));
    let own = median(&mut millis);
    rows.push(row(
        "  the k8s_pods check's own millis (median)",
        format!("{own:.0} ms"),
        "< 1 s",
        Some(own < 1000.0),
    ));
    rows.push(row(
        "  list requests per run (fake pages by 500)",
        pages.to_string(),
        "10",
        Some(pages == PODS.div_ceil(500)),
    ));
    if !problems.is_empty() {
        rows.push(row(
            "  wrong answers (should be none)",
            problems.join("; "),
            "ok, 5000",
            Some(false),
        ));
    }
}

// --- 2. logs ------------------------------------------------------------------------------

/// A 99-character log line (100 bytes with its newline); every `ERROR_EVERY`th one is an error.
fn log_line(pod: usize, i: usize) -> String {
    let text = if i.is_multiple_of(ERROR_EVERY) {
        format!(
            "level=ERROR pod=logger-{pod:02} seq={i:06} msg=\"CUDA error: out of memory while decoding chunk\""
        )
    } else {
        format!(
            "level=INFO pod=logger-{pod:02} seq={i:06} msg=\"transcoded chunk in 12 ms, queue depth 42\""
        )
    };
    format!("{text:<width$.width$}", width = LINE_BYTES - 1)
}

/// 20 pods `app=logger` in namespace `bench`, each with `LOG_LINES` lines of `LINE_BYTES`.
fn logs_cluster() -> FakeKube {
    let kube = FakeKube::start();
    let now = kube::now();
    for p in 0..LOG_PODS {
        let name = format!("logger-{p:02}");
        let pod = FakeKube::pod(
            "bench",
            &name,
            &[("app", "logger")],
            "Running",
            true,
            0,
            None,
            None,
            "node-1",
        );
        kube.add_pod("bench", pod);
        // Spread over the last hour, newest 5 minutes ago: all inside `since: 1h`.
        let lines = (0..LOG_LINES)
            .map(|i| {
                let ts = now - 3300 + (i * 3000 / LOG_LINES) as i64;
                (ts, log_line(p, i))
            })
            .collect();
        kube.set_logs("bench", &name, lines);
    }
    kube
}

fn log_scan(home: &Path, rows: &mut Vec<Row>) {
    let total_bytes = LOG_PODS * LOG_LINES * LINE_BYTES;
    let expected = LOG_PODS * LOG_LINES.div_ceil(ERROR_EVERY);
    eprintln!(
        "2. logs: seeding {LOG_PODS} pods × {LOG_LINES} lines ({:.0} MB) in the fake…",
        total_bytes as f64 / 1e6
    );
    let kube = Fake::start("logs", &home.join("logs"));
    let kubeconfig = kube.kubeconfig.clone();
    // What any child inherits from this process (Linux keeps the peak RSS across exec).
    let floor = run(&mut Command::new("true")).maxrss_kib as f64 * 1024.0 / 1e6;
    let file = runbook(
        home,
        "logs",
        "      - id: errors\n        timeout: 120s\n        k8s_logs: { namespace: bench, selector: app=logger, since: 1h, matches: ERROR }\n",
    );
    let file = file.to_str().expect("a UTF-8 temp path");
    let args = ["run", file, "--output", "json", "--dry-run"];

    eprintln!("   {LOG_RUNS} runs of `oncall run logs.yaml --output json --dry-run`…");
    let (mut walls, mut rates, mut rss, mut counts, mut problems) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..LOG_RUNS {
        let ran = run(&mut oncall(home, &kubeconfig, &args));
        let report = ran.json();
        let Some(obs) = check(&report, "errors") else {
            problems.push(format!(
                "exit {}, no report: {}",
                ran.code,
                first_error(&ran)
            ));
            continue;
        };
        let count = obs["value"].as_u64().unwrap_or(0);
        if obs["verdict"] != "ok" {
            problems.push(format!("verdict {} ({})", obs["verdict"], obs["note"]));
        }
        eprintln!(
            "   {:.0} ms, peak RSS {:.1} MiB, {count} matches",
            ran.wall,
            ran.maxrss_kib as f64 / 1024.0
        );
        counts.push(count);
        rates.push(total_bytes as f64 / 1e6 / (ran.wall / 1000.0));
        walls.push(ran.wall);
        rss.push(ran.maxrss_kib as f64 * 1024.0 / 1e6);
    }
    drop(kube);
    if walls.is_empty() {
        rows.push(row(
            "100 MB of logs, 20 pods: peak RSS",
            format!("failed: {}", problems.join("; ")),
            "< 50 MB",
            Some(false),
        ));
        return;
    }
    let peak = max(&rss);
    rows.push(row(
        "100 MB of logs, 20 pods: peak RSS (max of runs)",
        format!("{peak:.1} MB ({:.1} MiB)", peak * 1e6 / 1048576.0),
        "< 50 MB",
        Some(peak < 50.0),
    ));
    rows.push(row(
        "  floor: peak RSS of /bin/true run by the bench",
        format!("{floor:.1} MB"),
        "(report)",
        None,
    ));
    let rate = median(&mut rates);
    rows.push(row(
        "  scan rate, whole process (median)",
        format!("{rate:.0} MB/s"),
        "(report)",
        None,
    ));
    let wall = median(&mut walls);
    rows.push(row(
        "  wall time (median)",
        format!("{:.2} s", wall / 1000.0),
        "< 120 s timeout",
        Some(max(&walls) < 120_000.0),
    ));
    let exact = counts.iter().all(|&c| c == expected as u64);
    rows.push(row(
        "  matching lines reported",
        if exact {
            counts[0].to_string()
        } else {
            format!("{counts:?}")
        },
        &expected.to_string(),
        Some(exact),
    ));
    if !problems.is_empty() {
        rows.push(row(
            "  wrong answers (should be none)",
            problems.join("; "),
            "ok",
            Some(false),
        ));
    }
}

// --- 3. kubectl side by side ---------------------------------------------------------------

/// The seed's cluster: gpu-worker (5), asr-worker (3), api-gateway (3), with logs of
/// `VIDEO_LOG_LINES` lines a pod.
fn video_cluster() -> FakeKube {
    /// Name, replicas, labels (selector and pod template).
    type Deployment<'a> = (&'a str, usize, &'a [(&'a str, &'a str)]);
    let kube = FakeKube::start();
    let now = kube::now();
    let deployments: [Deployment; 3] = [
        (
            "gpu-worker",
            5,
            &[("app", "worker"), ("component", "gpu-worker")],
        ),
        (
            "asr-worker",
            3,
            &[("app", "worker"), ("component", "asr-worker")],
        ),
        ("api-gateway", 3, &[("app", "api-gateway")]),
    ];
    for (name, replicas, labels) in deployments {
        kube.add_deployment(VIDEO, name, replicas as i64, labels);
        let rs = format!("{name}-7d4b9c8f5");
        for r in 0..replicas {
            let pod_name = format!("{rs}-{r:05x}");
            let node = if name == "gpu-worker" {
                format!("gpu-node-{r}")
            } else {
                "cpu-node-1".to_string()
            };
            let pod = FakeKube::pod(
                VIDEO, &pod_name, labels, "Running", true, 0, None, None, &node,
            );
            kube.add_pod(VIDEO, FakeKube::owned_by(pod, "ReplicaSet", &rs));
            let lines = (0..VIDEO_LOG_LINES)
                .map(|i| {
                    let ts = now - 3300 + (i * 3000 / VIDEO_LOG_LINES) as i64;
                    let text = match (name, i % 50) {
                        ("gpu-worker", 0) => {
                            format!("ERROR CUDA error: out of memory (job {i})")
                        }
                        ("api-gateway", 0) => {
                            format!("POST /api/jobs/{i} 5xx upstream unavailable")
                        }
                        ("asr-worker", 0) => {
                            format!("WARN Timeout waiting for a GPU slot (job {i})")
                        }
                        ("asr-worker", 25) => format!("WARN Memory pressure at 91% (job {i})"),
                        _ => format!("INFO processed job {i} in 120 ms"),
                    };
                    (ts, text)
                })
                .collect();
            kube.set_logs(VIDEO, &pod_name, lines);
        }
    }
    kube
}

/// `'text'` for `sh -c`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A kubectl to time: how the table names it, the program, and its client version.
struct Kubectl {
    label: String,
    program: PathBuf,
    version: String,
}

fn client_version(program: &Path, home: &Path) -> Result<String, String> {
    let out = Command::new(program)
        .args(["version", "--client"])
        .env("HOME", home)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("{} does not run: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} version --client` failed ({})",
            program.display(),
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    Ok(first.trim_start_matches("Client Version: ").to_string())
}

/// `kubectl` as found on PATH; and when that is the Google Cloud SDK's version dispatcher (it
/// asks the server for its version, then execs `kubectl.1.MINOR` beside itself, one more process
/// and one more request per command), that versioned binary too, called directly, as a plain
/// kubectl install (Debian's kubernetes-client) would be.
fn kubectls(home: &Path) -> Result<Vec<Kubectl>, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .ok_or("no kubectl on PATH (Debian: apt-get install kubernetes-client)")?;
    let version = client_version(&found, home)?;
    let mut all = vec![];
    if version.contains("dispatcher") {
        let real = std::fs::canonicalize(&found).unwrap_or(found.clone());
        let minor = kube::GIT_VERSION
            .trim_start_matches('v')
            .rsplit_once('.')
            .map_or("1.30", |(minor, _)| minor);
        let direct = real.with_file_name(format!("kubectl.{minor}"));
        if let Ok(v) = client_version(&direct, home) {
            all.push(Kubectl {
                label: format!("kubectl.{minor} (direct)"),
                program: direct,
                version: v,
            });
        }
        all.push(Kubectl {
            label: "kubectl (gcloud dispatcher)".into(),
            program: found,
            version,
        });
    } else {
        all.push(Kubectl {
            label: "kubectl".into(),
            program: found,
            version,
        });
    }
    Ok(all)
}

/// One kubectl's runs of the seed's four commands.
struct KubectlRuns {
    commands: Vec<String>,
    sequence: Vec<f64>,
    per_command: Vec<Vec<f64>>,
    counts: Vec<usize>,
}

fn side_by_side(home: &Path, rows: &mut Vec<Row>) {
    const FIGURE: &str = "error-budget health check: kubectl / oncall";
    let kubectls = match kubectls(home) {
        Ok(k) => k,
        Err(why) => {
            rows.push(row(FIGURE, format!("skipped: {why}"), "(report)", None));
            return;
        }
    };
    let names: Vec<&str> = kubectls.iter().map(|k| k.label.as_str()).collect();
    eprintln!(
        "3. side by side: {} and oncall against the seed's cluster…",
        names.join(", ")
    );
    let dir = home.join("video");
    let kube = Fake::start("video", &dir);
    let kubeconfig = kube.kubeconfig.clone();
    let cache = dir.join("kube-cache");
    let mut runs: Vec<KubectlRuns> = kubectls
        .iter()
        .map(|k| {
            let bin = quote(&k.program);
            let flags = format!(
                "--kubeconfig {} --cache-dir {}",
                quote(&kubeconfig),
                quote(&cache)
            );
            let logs = |deployment: &str, grep: &str| {
                format!(
                    "{bin} logs -n {VIDEO} deployment/{deployment} --since=1h {flags} | grep {grep}"
                )
            };
            let commands = vec![
                format!("{bin} get pods -n {VIDEO} -l app=worker {flags}"),
                logs("gpu-worker", "ERROR"),
                logs("api-gateway", "\"5xx\""),
                logs("asr-worker", "-i \"timeout\\|memory\\|gpu\""),
            ];
            KubectlRuns {
                per_command: vec![vec![]; commands.len()],
                commands,
                sequence: vec![],
                counts: vec![],
            }
        })
        .collect();
    let sh = |command: &str| sh(home, command);
    let checks = format!(
        "      - id: workers\n        k8s_pods: {{ namespace: {VIDEO}, selector: app=worker }}\n\
         \x20     - id: gpu_worker_errors\n        k8s_logs: {{ namespace: {VIDEO}, deployment: gpu-worker, since: 1h, matches: ERROR }}\n\
         \x20     - id: api_gateway_5xx\n        k8s_logs: {{ namespace: {VIDEO}, deployment: api-gateway, since: 1h, matches: 5xx }}\n\
         \x20     - id: asr_worker_errors\n        k8s_logs: {{ namespace: {VIDEO}, deployment: asr-worker, since: 1h, matches: \"(?i)timeout|memory|gpu\" }}\n"
    );
    let file = runbook(home, "health", &checks);
    let file = file.to_str().expect("a UTF-8 temp path");
    let args = ["run", file, "--output", "json", "--dry-run"];
    let ids = [
        "workers",
        "gpu_worker_errors",
        "api_gateway_5xx",
        "asr_worker_errors",
    ];

    eprintln!("   1 warm-up + {RUNS} runs of each, alternating…");
    let mut oncall_walls = vec![];
    let mut oncall_counts = vec![];
    let mut problems = Vec::new();
    for run_no in 0..=RUNS {
        // Each kubectl, the seed's commands one after the other.
        for (k, runs) in kubectls.iter().zip(runs.iter_mut()) {
            let started = Instant::now();
            let mut counts = vec![];
            for (i, command) in runs.commands.iter().enumerate() {
                let ran = sh(command);
                // Every grep has matches here, so any non-zero exit is a failure.
                if ran.code != 0 {
                    problems.push(format!(
                        "{} command {} exit {}: {}",
                        k.label,
                        i + 1,
                        ran.code,
                        first_error(&ran)
                    ));
                }
                let lines = String::from_utf8_lossy(&ran.stdout).lines().count();
                // `get pods` prints a header line.
                counts.push(if i == 0 {
                    lines.saturating_sub(1)
                } else {
                    lines
                });
                if run_no > 0 {
                    runs.per_command[i].push(ran.wall);
                }
            }
            if run_no > 0 {
                runs.sequence.push(ms(started.elapsed()));
                runs.counts = counts;
            }
        }

        // oncall, the same step.
        let ran = run(&mut oncall(home, &kubeconfig, &args));
        let report = ran.json();
        let values: Vec<String> = ids
            .iter()
            .map(|id| match check(&report, id) {
                Some(obs) if obs["verdict"] == "ok" => obs["value"].to_string(),
                Some(obs) => format!("{} ({})", obs["verdict"], obs["note"]),
                None => "missing".into(),
            })
            .collect();
        if values.iter().any(|v| v.parse::<u64>().is_err()) {
            problems.push(format!(
                "oncall exit {}: {values:?} {}",
                ran.code,
                first_error(&ran)
            ));
        }
        if run_no == 0 {
            continue; // warm-up: fills kubectl's discovery cache
        }
        oncall_walls.push(ran.wall);
        oncall_counts = values;
    }
    drop(kube);
    let oncall_wall = median(&mut oncall_walls);
    rows.push(row(
        "error-budget health check, oncall: one step (median)",
        format!("{oncall_wall:.0} ms"),
        "(report)",
        None,
    ));
    rows.push(row(
        "  pods / matching lines, oncall (every pod)",
        format!("[{}]", oncall_counts.join(", ")),
        "",
        None,
    ));
    let steps = [
        "get pods",
        "logs gpu-worker | grep",
        "logs api-gateway | grep",
        "logs asr-worker | grep",
    ];
    for (k, runs) in kubectls.iter().zip(runs.iter_mut()) {
        let wall = median(&mut runs.sequence);
        rows.push(row(
            &format!(
                "error-budget health check, {}: 4 in sequence (median)",
                k.label
            ),
            format!("{wall:.0} ms"),
            "(report)",
            None,
        ));
        rows.push(row(
            &format!("  ratio {} / oncall", k.label),
            format!("{:.1}×", wall / oncall_wall),
            "(report)",
            None,
        ));
        for (step, walls) in steps.iter().zip(runs.per_command.iter_mut()) {
            rows.push(row(
                &format!("  {step} (median)"),
                format!("{:.0} ms", median(walls)),
                "",
                None,
            ));
        }
        rows.push(row(
            "  pods / matching lines (logs: first pod only)",
            format!("{:?}", runs.counts),
            "",
            None,
        ));
        rows.push(row("  client version", k.version.clone(), "", None));
    }
    failures(rows, std::mem::take(&mut problems));
}

// --- 4. the sweep with injected latency --------------------------------------------------

/// Round-trip times injected, in ms.
const SWEEP_RTTS: [u64; 2] = [0, 50];

/// Round trips on the longest chain of the step: a connection, the deployment (its selector),
/// its pods, their logs (read concurrently).
const CRITICAL_ROUND_TRIPS: u64 = 4;

fn sweep(home: &Path, rows: &mut Vec<Row>) {
    let kubectl = match kubectls(home) {
        Ok(all) => all.into_iter().next().expect("kubectls gives at least one"),
        Err(why) => {
            rows.push(row(
                "sweep with latency",
                format!("skipped: {why}"),
                "(report)",
                None,
            ));
            return;
        }
    };
    eprintln!(
        "4. the sweep through a latency proxy: the seed's commands, oncall, the critical path…"
    );
    let dir = home.join("sweep");
    std::fs::create_dir_all(&dir).expect("the sweep's folder");
    let kube = Fake::start("video", &dir);
    let (kubeconfig, server, kube_addr) = kube.server();
    let fixed = latency::fixed_http();
    let queries = [
        "sum(rate(video_processing_errors_total[1h]))/sum(rate(video_processing_total[1h]))*100",
        "sum(rate(video_processing_errors_total[1h])) by (error_type)",
        "sum(video_processing_queue_depth)",
    ];
    for rtt in SWEEP_RTTS {
        let delay = Duration::from_millis(rtt);
        let kube_proxy = latency::proxy(kube_addr, delay);
        let http = format!("http://{}", latency::proxy(fixed, delay));
        let config = dir.join(format!("kubeconfig-{rtt}ms"));
        std::fs::write(
            &config,
            kubeconfig.replace(&server, &format!("http://{kube_proxy}")),
        )
        .expect("writing the proxied kubeconfig");
        let cache = dir.join(format!("kube-cache-{rtt}ms"));
        let bin = quote(&kubectl.program);
        let flags = format!(
            "--kubeconfig {} --cache-dir {}",
            quote(&config),
            quote(&cache)
        );
        let curl = |url: String| format!("curl -sf -G {url}");
        let mut seed: Vec<String> = queries
            .iter()
            .map(|q| curl(format!("{http}/api/v1/query --data-urlencode 'query={q}'")))
            .collect();
        seed.push(format!("{bin} get pods -n {VIDEO} -l app=worker {flags}"));
        seed.push(curl(format!("{http}/health")));
        seed.push(curl(format!("{http}/health/db")));
        for (deployment, grep) in [
            ("gpu-worker", "ERROR"),
            ("api-gateway", "5xx"),
            ("asr-worker", "-i 'timeout\\|memory\\|gpu'"),
        ] {
            seed.push(format!(
                "{bin} logs -n {VIDEO} deployment/{deployment} --since=1h {flags} | grep {grep}"
            ));
        }
        let mut checks = String::new();
        for (i, q) in queries.iter().enumerate() {
            checks.push_str(&format!(
                "      - id: query_{i}\n        prometheus: '{q}'\n"
            ));
        }
        checks.push_str(&format!(
            "      - id: workers\n        k8s_pods: {{ namespace: {VIDEO}, selector: app=worker }}\n\
             \x20     - id: health\n        http: {{ url: '{http}/health', method: GET }}\n\
             \x20     - id: health_db\n        http: {{ url: '{http}/health/db', method: GET }}\n\
             \x20     - id: gpu_worker_errors\n        k8s_logs: {{ namespace: {VIDEO}, deployment: gpu-worker, since: 1h, matches: ERROR }}\n\
             \x20     - id: api_gateway_5xx\n        k8s_logs: {{ namespace: {VIDEO}, deployment: api-gateway, since: 1h, matches: 5xx }}\n\
             \x20     - id: asr_worker_errors\n        k8s_logs: {{ namespace: {VIDEO}, deployment: asr-worker, since: 1h, matches: \"(?i)timeout|memory|gpu\" }}\n"
        ));
        let file = runbook(home, &format!("sweep{rtt}"), &checks);
        let file = file.to_str().expect("a UTF-8 temp path");
        let args = [
            "run",
            file,
            "--output",
            "json",
            "--dry-run",
            "--prometheus-url",
            &http,
        ];

        let mut seed_walls = vec![];
        let mut oncall_walls = vec![];
        let mut problems = vec![];
        for run_no in 0..=RUNS {
            let started = Instant::now();
            for command in &seed {
                let ran = sh(home, command);
                if ran.code != 0 {
                    problems.push(format!(
                        "seed `{}` exit {}",
                        &command[..40.min(command.len())],
                        ran.code
                    ));
                }
            }
            let seed_wall = ms(started.elapsed());
            let ran = run(&mut oncall(home, &config, &args));
            let report = ran.json();
            let errors: Vec<String> = ["query_0", "workers", "health", "gpu_worker_errors"]
                .iter()
                .filter(|id| check(&report, id).is_none_or(|o| o["verdict"] == "error"))
                .map(|id| id.to_string())
                .collect();
            if !errors.is_empty() {
                problems.push(format!(
                    "oncall: {errors:?} did not read ({})",
                    first_error(&ran)
                ));
            }
            if run_no > 0 {
                seed_walls.push(seed_wall);
                oncall_walls.push(ran.wall);
            }
        }
        let seed_wall = median(&mut seed_walls);
        let oncall_wall = median(&mut oncall_walls);
        let critical = (CRITICAL_ROUND_TRIPS * rtt) as f64;
        rows.push(row(
            &format!("sweep at {rtt} ms round trip: seed, 9 commands in sequence (median)"),
            format!("{seed_wall:.0} ms"),
            "(report)",
            None,
        ));
        rows.push(row(
            &format!("sweep at {rtt} ms: oncall, one step of 9 checks (median)"),
            format!("{oncall_wall:.0} ms"),
            "(report)",
            None,
        ));
        rows.push(row(
            "  ratio seed / oncall",
            format!("{:.1}×", seed_wall / oncall_wall),
            "(report)",
            None,
        ));
        let against = if rtt == 0 {
            format!("critical path 0 ms; oncall's floor (start, read, exit) {oncall_wall:.0} ms")
        } else {
            format!(
                "critical path {critical:.0} ms ({CRITICAL_ROUND_TRIPS} round trips); oncall / critical {:.2}×, {:.0} ms above it",
                oncall_wall / critical,
                oncall_wall - critical
            )
        };
        rows.push(row(
            "  oncall against the critical path",
            against,
            "(report)",
            None,
        ));
        failures(rows, std::mem::take(&mut problems));
    }
    drop(kube);
}

/// A shell command line, as an engineer types it, in a clean environment.
fn sh(home: &Path, command: &str) -> Ran {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .current_dir(home);
    run(&mut cmd)
}

/// A row for what went wrong in a figure's runs, when anything did.
fn failures(rows: &mut Vec<Row>, mut problems: Vec<String>) {
    if !problems.is_empty() {
        problems.dedup();
        rows.push(row(
            "  failures (should be none)",
            problems.join("; "),
            "none",
            Some(false),
        ));
    }
}

// --- 5. proxy and exec, per check ------------------------------------------------------------

/// The first gpu-worker pod of the video cluster, and the command figure 5 runs in it.
const EXEC_POD: &str = "gpu-worker-7d4b9c8f5-00000";
const EXEC_ARGV: [&str; 3] = [
    "nvidia-smi",
    "--query-gpu=driver_version",
    "--format=csv,noheader",
];

fn per_check(home: &Path, rows: &mut Vec<Row>) {
    eprintln!("5. proxy and exec per check, at 0 and 50 ms round trips…");
    let dir = home.join("per-check");
    std::fs::create_dir_all(&dir).expect("the figure's folder");
    let mut kube = Fake::start("video", &dir);
    let (kubeconfig, server, kube_addr) = kube.server();
    let direct = latency::fixed_http();
    let argv = EXEC_ARGV
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let checks: [(&str, String, &str); 4] = [
        ("direct", String::new(), "GET /health"),
        (
            "proxy",
            format!("        http: {{ url: 'k8s://{VIDEO}/api-gateway:8080/health' }}\n"),
            "/api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/",
        ),
        (
            "exec_pod",
            format!(
                "        k8s_exec: {{ namespace: {VIDEO}, pod: {EXEC_POD}, command: [{argv}] }}\n"
            ),
            "/api/v1/namespaces/video-processing/pods/",
        ),
        (
            "exec_deployment",
            format!(
                "        k8s_exec: {{ namespace: {VIDEO}, deployment: gpu-worker, command: [{argv}] }}\n"
            ),
            "",
        ),
    ];
    for rtt in SWEEP_RTTS {
        let delay = Duration::from_millis(rtt);
        let kube_proxy = latency::proxy(kube_addr, delay);
        let http = format!("http://{}", latency::proxy(direct, delay));
        let config = dir.join(format!("kubeconfig-{rtt}ms"));
        std::fs::write(
            &config,
            kubeconfig.replace(&server, &format!("http://{kube_proxy}")),
        )
        .expect("writing the proxied kubeconfig");
        // One step each, one after the other, so each check's time is its own.
        let mut text = format!("id: per{rtt}\ntitle: Per check\nseverity: P3\nsteps:\n");
        for (id, kind, _) in &checks {
            let kind = if *id == "direct" {
                format!("        http: {{ url: '{http}/health' }}\n")
            } else {
                kind.clone()
            };
            text.push_str(&format!(
                "  - id: s_{id}\n    checks:\n      - id: {id}\n{kind}"
            ));
        }
        let file = dir.join(format!("per{rtt}.yaml"));
        std::fs::write(&file, text).expect("writing the runbook");
        let file = file.to_str().expect("a UTF-8 temp path");
        let args = ["run", file, "--output", "json", "--dry-run"];
        let mut millis: Vec<Vec<f64>> = vec![vec![]; checks.len()];
        let mut problems = vec![];
        let before = kube.gets("/");
        for run_no in 0..=RUNS {
            let ran = run(&mut oncall(home, &config, &args));
            let report = ran.json();
            for (i, (id, _, _)) in checks.iter().enumerate() {
                match check(&report, id) {
                    Some(o) if o["verdict"] == "ok" => {
                        if run_no > 0 {
                            millis[i].push(o["millis"].as_f64().unwrap_or(f64::NAN));
                        }
                    }
                    other => problems.push(format!("{id}: {other:?} {}", first_error(&ran))),
                }
            }
        }
        let per_run = (kube.gets("/") - before) as f64 / (RUNS + 1) as f64;
        let names = [
            "HTTP direct (1 request)",
            "HTTP through the API server's proxy (1 request to the API server)",
            "exec in a named pod (1 upgrade, then the stream)",
            "exec in a deployment's first ready pod (deployment, pods, upgrade)",
        ];
        for (name, walls) in names.iter().zip(millis.iter_mut()) {
            rows.push(row(
                &format!("per check at {rtt} ms round trip: {name} (median)"),
                format!("{:.0} ms", median(walls)),
                "(report)",
                None,
            ));
        }
        rows.push(row(
            &format!("  requests to the API server per run at {rtt} ms (3 checks)"),
            format!("{per_run:.0}"),
            "(report)",
            None,
        ));
        failures(rows, problems);
    }
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

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::MIN, f64::max)
}
