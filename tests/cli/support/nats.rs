//! A real NATS server for tests, one per [`Nats::start`], on free 127.0.0.1 ports (client and
//! monitoring), killed on drop.
//!
//! The server is spawned from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG`, so it goes when the test process goes, even if killed.
//! Self-contained (std, libc, serde_json): benches can include it.
#![allow(dead_code)]

use super::process::{free_port, spawn_tied, tail, unique_dir};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian installs it in sbin, which a non-root PATH may lack.
const NATS_SERVER: &str = "/usr/sbin/nats-server";
const READY_WITHIN: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(10);

/// A running nats-server. Killed, and its folder removed, on drop.
pub struct Nats {
    /// `nats://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    /// `http://127.0.0.1:MPORT`, the monitoring endpoints (`/healthz`, `/varz`, `/connz`).
    pub monitor_url: String,
    pub monitor_port: u16,
    /// Holds `nats.log`.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Nats {
    /// Starts `nats-server -a 127.0.0.1 -p PORT -m MPORT` and returns once `/healthz` answers
    /// 200. Panics with its log otherwise.
    pub fn start() -> Nats {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} not found: install the Debian package `nats-server` \
             (scripts/test.sh does this), e.g. `apt-get install -y --no-install-recommends nats-server`"
        );
        let dir = unique_dir("oncall-nats");
        let mut nats = Nats {
            url: String::new(),
            port: 0,
            monitor_url: String::new(),
            monitor_port: 0,
            dir: dir.clone(),
            child: None,
        };
        let log_path = dir.join("nats.log");
        let deadline = Instant::now() + READY_WITHIN;
        // Free ports can be taken between our probe and the server's bind: retry on that.
        for attempt in 1.. {
            let (port, monitor_port) = (free_port(), free_port());
            if port == monitor_port {
                continue;
            }
            nats.port = port;
            nats.monitor_port = monitor_port;
            nats.url = format!("nats://127.0.0.1:{port}");
            nats.monitor_url = format!("http://127.0.0.1:{monitor_port}");
            let log = fs::File::create(&log_path).expect("creating nats.log");
            let mut cmd = Command::new(NATS_SERVER);
            cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(["-m", &monitor_port.to_string()])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log handle"))
                .stderr(log);
            nats.child = Some(
                spawn_tied(cmd, libc::SIGKILL)
                    .unwrap_or_else(|e| panic!("starting {NATS_SERVER}: {e}")),
            );
            loop {
                if let Some(child) = nats.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    nats.child = None;
                    let log = tail(&log_path);
                    if attempt < 4 && log.contains("already in use") {
                        break;
                    }
                    panic!("nats-server exited before it was ready ({status}); its log:\n{log}");
                }
                let last = match nats.get("/healthz") {
                    Ok((200, _)) => return nats,
                    Ok((code, body)) => format!("/healthz answered {code}: {body}"),
                    Err(e) => format!("/healthz: {e}"),
                };
                assert!(
                    Instant::now() < deadline,
                    "nats-server not ready within {READY_WITHIN:?} ({last}); its log:\n{}",
                    tail(&log_path)
                );
                std::thread::sleep(POLL_EVERY);
            }
        }
        unreachable!()
    }

    /// GET on the monitoring port: status code and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(SocketAddr::from(([127, 0, 0, 1], self.monitor_port)), path)
    }

    /// `/varz` parsed (`version`, `connections`, `server_id`...). Panics if it does not answer.
    pub fn varz(&self) -> Value {
        self.monitor_json("/varz")
    }

    /// `/connz` parsed (`num_connections`, `connections`...). Panics if it does not answer.
    pub fn connz(&self) -> Value {
        self.monitor_json("/connz")
    }

    fn monitor_json(&self, path: &str) -> Value {
        match self.get(path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}")),
            Ok((code, body)) => panic!("GET {}{path} answered {code}: {body}", self.monitor_url),
            Err(e) => panic!("GET {}{path}: {e}", self.monitor_url),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A minimal HTTP/1.0 GET: status code and body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
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
