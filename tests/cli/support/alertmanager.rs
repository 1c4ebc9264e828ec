//! A real Alertmanager (0.25, API v2) for tests, one per [`Alertmanager::start`], on a free
//! 127.0.0.1 port with no clustering and a single `null` receiver (nothing is ever sent
//! anywhere); killed, and its folder removed, on drop.
//!
//! Trap: without `--cluster.listen-address=` (empty) Alertmanager binds 0.0.0.0:9094 for gossip
//! and waits for peers; with it, it is a lone instance ready in about 0.2 s.
//!
//! The server is spawned from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG`, so it goes when the test process goes, even if killed.
//! Self-contained (std, libc, serde_json): benches can include it.
#![allow(dead_code)]

use super::process::{free_port, spawn_tied, tail, unique_dir};
use serde_json::{Map, Value, json};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const READY_WITHIN: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The configuration: every alert goes to the `null` receiver, which sends nothing.
pub const CONFIG: &str = "route:
  receiver: 'null'
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: 'null'
";

/// A running Alertmanager. Killed, and its folder removed, on drop.
pub struct Alertmanager {
    /// `http://127.0.0.1:PORT`, no trailing slash; the API is under `/api/v2`.
    pub url: String,
    pub port: u16,
    /// Holds `alertmanager.yml`, `data/` and `alertmanager.log`.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Alertmanager {
    /// Starts Alertmanager and returns once `/-/ready` answers 200. Panics with its log
    /// otherwise.
    pub fn start() -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} not found: install the Debian package `prometheus-alertmanager` \
             (scripts/test.sh does this), e.g. \
             `apt-get install -y --no-install-recommends prometheus-alertmanager`"
        );
        let dir = unique_dir("oncall-alertmanager");
        let mut am = Alertmanager {
            url: String::new(),
            port: 0,
            dir: dir.clone(),
            child: None,
        };
        let config = dir.join("alertmanager.yml");
        fs::write(&config, CONFIG).expect("writing alertmanager.yml");
        let log_path = dir.join("alertmanager.log");
        let deadline = Instant::now() + READY_WITHIN;
        // The free port can be taken between our probe and the server's bind: retry on that.
        for attempt in 1.. {
            let port = free_port();
            am.port = port;
            am.url = format!("http://127.0.0.1:{port}");
            let log = fs::File::create(&log_path).expect("creating alertmanager.log");
            let mut cmd = Command::new(ALERTMANAGER);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Empty: no gossip listener on 0.0.0.0:9094, no waiting for peers.
                .arg("--cluster.listen-address=")
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log handle"))
                .stderr(log);
            am.child = Some(
                spawn_tied(cmd, libc::SIGKILL)
                    .unwrap_or_else(|e| panic!("starting {ALERTMANAGER}: {e}")),
            );
            loop {
                if let Some(child) = am.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    am.child = None;
                    let log = tail(&log_path);
                    if attempt < 4 && log.contains("already in use") {
                        break;
                    }
                    panic!("alertmanager exited before it was ready ({status}); its log:\n{log}");
                }
                let last = match am.request("GET", "/-/ready", None) {
                    Ok((200, _)) => return am,
                    Ok((code, body)) => format!("/-/ready answered {code}: {}", body.trim()),
                    Err(e) => format!("/-/ready: {e}"),
                };
                assert!(
                    Instant::now() < deadline,
                    "alertmanager at {} not ready within {READY_WITHIN:?} ({last}); its log:\n{}",
                    am.url,
                    tail(&log_path)
                );
                std::thread::sleep(POLL_EVERY);
            }
        }
        unreachable!()
    }

    /// Posts one firing alert (`POST /api/v2/alerts`): label `alertname=NAME` plus `labels`,
    /// annotation `summary`, `startsAt` now and `endsAt` in an hour. Panics unless it is
    /// accepted.
    pub fn post_alert(&self, name: &str, labels: &[(&str, &str)]) {
        self.post_alert_started(name, labels, 0);
    }

    /// `post_alert` of an alert that started firing `ago` seconds ago (`startsAt`).
    pub fn post_alert_started(&self, name: &str, labels: &[(&str, &str)], ago: u64) {
        let mut all = Map::new();
        all.insert("alertname".into(), Value::from(name));
        for (k, v) in labels {
            all.insert((*k).into(), Value::from(*v));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock before 1970")
            .as_secs();
        let body = json!([{
            "labels": all,
            "annotations": { "summary": format!("{name} (posted by the test)") },
            "startsAt": rfc3339(now - ago),
            "endsAt": rfc3339(now + 3600),
        }]);
        let (code, text) = self
            .request("POST", "/api/v2/alerts", Some(&body.to_string()))
            .unwrap_or_else(|e| panic!("POST {}/api/v2/alerts: {e}", self.url));
        assert_eq!(
            code, 200,
            "POST {}/api/v2/alerts answered {code}: {text}",
            self.url
        );
    }

    /// `GET /api/v2/alerts`: every alert Alertmanager holds (firing, silenced or not).
    pub fn alerts(&self) -> Value {
        self.get_json("/api/v2/alerts")
    }

    /// `GET /api/v2/silences`: every silence (active, pending and expired).
    pub fn silences(&self) -> Value {
        self.get_json("/api/v2/silences")
    }

    /// A GET of an API path, parsed; panics unless it answers 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        match self.request("GET", path, None) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("GET {}{path} is not JSON ({e}): {body}", self.url)),
            Ok((code, body)) => panic!("GET {}{path} answered {code}: {body}", self.url),
            Err(e) => panic!("GET {}{path}: {e}", self.url),
        }
    }

    /// A minimal HTTP/1.0 request (JSON body if any): status code and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let timeout = Duration::from_secs(5);
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        stream.write_all(request.as_bytes())?;
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
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}
