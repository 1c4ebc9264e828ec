//! A real Prometheus for tests, started on a free 127.0.0.1 port with deterministic data
//! backfilled by `promtool tsdb create-blocks-from openmetrics`, killed on drop.
//!
//! Data: one sample every 15 s over the two hours ending "now" (so gauges are not stale):
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `video_processing_total` | | +100 per 15 s |
//! | `video_processing_errors_total` | `error_type="timeout"` / `"gpu_oom"` | +2 / +1 per 15 s |
//! | `video_processing_success_total` | | +97 per 15 s |
//! | `video_processing_queue_depth` | `queue="asr"` / `"gpu"` | 1200 / 800 |
//! | `nvidia_gpu_utilization` | `gpu="0"` / `"1"` | 97 / 93 |
//! | `container_memory_usage_bytes` | `container="gpu-worker"` | 8e9 |
//! | `container_cpu_usage_seconds_total` | `container="gpu-worker"` | +15 per 15 s |
//!
//! So the error rate `sum(rate(video_processing_errors_total[1h])) /
//! sum(rate(video_processing_total[1h])) * 100` is 3 (within float error, compare with a
//! tolerance), and by `error_type` the error rates are 0.1333/s (timeout) and 0.0667/s (gpu_oom).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
/// Overall deadline for Prometheus to be ready and to answer a query with the backfilled data.
const DEADLINE: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(25);
/// How much history is backfilled, and the sample interval, in seconds.
const HISTORY_SECS: u64 = 2 * 60 * 60;
const STEP_SECS: u64 = 15;
/// Query that must return data before `start` returns (blocks can load after `/-/ready`).
const PROBE_QUERY: &str = "sum(video_processing_queue_depth)";

/// A running Prometheus. Killed, and its temp dir removed, on drop.
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// The temp dir holding the data file, the config, the TSDB and `prometheus.log`.
    pub dir: PathBuf,
    addr: SocketAddr,
    child: Option<Child>,
}

impl Prometheus {
    /// Backfills the data, starts Prometheus and returns once it is ready and the backfilled
    /// data is queryable. Panics with a clear message (and the tail of Prometheus' log) if
    /// the binaries are missing or it does not get ready within 20 s.
    pub fn start() -> Prometheus {
        Prometheus::start_with_rules("")
    }

    /// Like [`Prometheus::start`], with `rules` (the text of a rule file: `groups: …`) loaded as
    /// its rule file when it is not empty.
    pub fn start_with_rules(rules: &str) -> Prometheus {
        for bin in [PROMETHEUS, PROMTOOL] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: install the Debian package `prometheus` \
                 (scripts/test.sh does this), e.g. `apt-get install -y --no-install-recommends prometheus`"
            );
        }
        let dir = unique_temp_dir("oncall-prometheus");
        // From here on the guard removes `dir` (and kills the child) even if we panic.
        let mut prom = Prometheus {
            url: String::new(),
            dir: dir.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
        };

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock before 1970")
            .as_secs();
        let data = dir.join("data.om");
        fs::write(&data, openmetrics(now)).expect("writing the OpenMetrics file");
        let tsdb = dir.join("tsdb");
        let out = Command::new(PROMTOOL)
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&data)
            .arg(&tsdb)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {PROMTOOL}: {e}"));
        assert!(
            out.status.success(),
            "promtool tsdb create-blocks-from openmetrics failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let config = dir.join("prometheus.yml");
        let mut text =
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs: []\n"
                .to_string();
        if !rules.is_empty() {
            let file = dir.join("rules.yml");
            fs::write(&file, rules).expect("writing the rule file");
            text.push_str(&format!("rule_files: [\"{}\"]\n", file.display()));
        }
        fs::write(&config, text).expect("writing the Prometheus config");

        let deadline = Instant::now() + DEADLINE;
        // The free port can be taken between our probe and Prometheus' bind: retry on that.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            prom.addr = SocketAddr::from(([127, 0, 0, 1], port));
            prom.url = format!("http://127.0.0.1:{port}");
            let log_path = dir.join("prometheus.log");
            let log = fs::File::create(&log_path).expect("creating prometheus.log");
            let child = Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log file handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {PROMETHEUS}: {e}"));
            prom.child = Some(child);
            match prom.wait_ready(deadline) {
                Ok(()) => return prom,
                Err(Exited(status)) => {
                    let log = tail(&log_path);
                    if attempt < 3 && log.contains("address already in use") {
                        continue;
                    }
                    panic!(
                        "prometheus exited before it was ready ({status}); its log ends with:\n{log}"
                    );
                }
                Err(TimedOut(what)) => panic!(
                    "prometheus at {} not ready within {DEADLINE:?}: {what}; its log ends with:\n{}",
                    prom.url,
                    tail(&log_path)
                ),
            }
        }
    }

    /// Runs an instant query and returns the raw JSON body (whatever the status code).
    pub fn query(&self, promql: &str) -> String {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        match http_get(self.addr, &path) {
            Ok((_, body)) => body,
            Err(e) => panic!("GET {}{path}: {e}", self.url),
        }
    }

    /// Polls `/-/ready` then the probe query until both answer, the child exits or the
    /// deadline passes.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), NotReady> {
        let probe = format!("/api/v1/query?query={}", url_encode(PROBE_QUERY));
        let mut last = String::from("nothing tried yet");
        let mut ready = false;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("waiting for prometheus"))
            {
                self.child = None;
                return Err(Exited(status.to_string()));
            }
            if !ready {
                match http_get(self.addr, "/-/ready") {
                    Ok((200, _)) => ready = true,
                    Ok((code, body)) => last = format!("/-/ready answered {code}: {}", body.trim()),
                    Err(e) => last = format!("/-/ready: {e}"),
                }
            }
            if ready {
                match http_get(self.addr, &probe) {
                    // A non-empty vector: `"result":[{"metric":{},"value":[...]}]`.
                    Ok((200, body)) if body.contains("\"result\":[{") => return Ok(()),
                    Ok((code, body)) => {
                        last = format!("{PROBE_QUERY} answered {code} with no data: {body}")
                    }
                    Err(e) => last = format!("{PROBE_QUERY}: {e}"),
                }
            }
            if Instant::now() >= deadline {
                return Err(TimedOut(last));
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum NotReady {
    Exited(String),
    TimedOut(String),
}
use NotReady::{Exited, TimedOut};

/// The OpenMetrics text backfilled into the TSDB: samples every 15 s, ending at `now`
/// (seconds since the epoch).
fn openmetrics(now: u64) -> String {
    let start = now - HISTORY_SECS;
    let steps = HISTORY_SECS / STEP_SECS; // 480 intervals, 481 samples
    let mut out = String::with_capacity(512 * 1024);
    // (family, type, [(labels, base value, increment per step)])
    type Series<'a> = (&'a str, u64, u64);
    let families: [(&str, &str, &[Series]); 7] = [
        ("video_processing", "counter", &[("", 0, 100)]),
        (
            "video_processing_errors",
            "counter",
            &[
                ("error_type=\"timeout\"", 0, 2),
                ("error_type=\"gpu_oom\"", 0, 1),
            ],
        ),
        ("video_processing_success", "counter", &[("", 0, 97)]),
        (
            "video_processing_queue_depth",
            "gauge",
            &[("queue=\"asr\"", 1200, 0), ("queue=\"gpu\"", 800, 0)],
        ),
        (
            "nvidia_gpu_utilization",
            "gauge",
            &[("gpu=\"0\"", 97, 0), ("gpu=\"1\"", 93, 0)],
        ),
        (
            "container_memory_usage_bytes",
            "gauge",
            &[("container=\"gpu-worker\"", 8_000_000_000, 0)],
        ),
        (
            "container_cpu_usage_seconds",
            "counter",
            &[("container=\"gpu-worker\"", 0, 15)],
        ),
    ];
    for (family, kind, series) in families {
        let _ = writeln!(out, "# TYPE {family} {kind}");
        let name = if kind == "counter" {
            format!("{family}_total")
        } else {
            family.to_string()
        };
        for (labels, base, inc) in series {
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            for i in 0..=steps {
                let _ = writeln!(
                    out,
                    "{name}{labels} {} {}",
                    base + inc * i,
                    start + i * STEP_SECS
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
        .port()
}

fn unique_temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The last 40 lines of a file, for panic messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A minimal HTTP/1.0 GET over a std `TcpStream`: returns the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {head:?}"),
            )
        })?;
    Ok((code, body.to_string()))
}
