//! A real Redis for tests, one per [`Redis::start`], on a free 127.0.0.1 port, no persistence;
//! killed, and its folder removed, on drop. Also the fault helpers every backend's tests use:
//! [`silent_listener`] (a server that accepts but never answers) and [`closed_port`] (a server
//! that is down).
//!
//! The server is spawned from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG`, so it goes when the test process goes, even if killed.
//! Self-contained (std, libc): benches can include it.
#![allow(dead_code)]

use super::process::{free_port, run_bounded, spawn_tied, tail, unique_dir};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";
const READY_WITHIN: Duration = Duration::from_secs(20);
const COMMAND_WITHIN: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(10);
/// Items per `RPUSH` in [`Redis::seed_queue`] (bounded argv).
const PUSH_CHUNK: usize = 500;

/// A running Redis. Killed, and its folder removed, on drop.
pub struct Redis {
    /// `redis://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    /// Holds `redis.log` (and would hold dumps; persistence is off).
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts `redis-server` and returns once it answers `PING`. Panics with its log otherwise.
    pub fn start() -> Redis {
        assert!(
            Path::new(REDIS_SERVER).exists() && Path::new(REDIS_CLI).exists(),
            "{REDIS_SERVER} or {REDIS_CLI} not found: install the Debian package `redis-server` \
             (scripts/test.sh does this), e.g. `apt-get install -y --no-install-recommends redis-server`"
        );
        let dir = unique_dir("oncall-redis");
        let mut redis = Redis {
            url: String::new(),
            port: 0,
            dir: dir.clone(),
            child: None,
        };
        let log_path = dir.join("redis.log");
        let deadline = Instant::now() + READY_WITHIN;
        // The free port can be taken between our probe and the server's bind: retry on that.
        for attempt in 1.. {
            let port = free_port();
            redis.port = port;
            redis.url = format!("redis://127.0.0.1:{port}");
            let log = fs::File::create(&log_path).expect("creating redis.log");
            let mut cmd = Command::new(REDIS_SERVER);
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--logfile", "", "--dir"])
                .arg(&dir)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log handle"))
                .stderr(log);
            redis.child = Some(
                spawn_tied(cmd, libc::SIGKILL)
                    .unwrap_or_else(|e| panic!("starting {REDIS_SERVER}: {e}")),
            );
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if let Some(child) = redis.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    redis.child = None;
                    let log = tail(&log_path);
                    if attempt < 4 && log.contains("already in use") {
                        break;
                    }
                    panic!("redis-server exited before it was ready ({status}); its log:\n{log}");
                }
                let last = match ping(addr) {
                    Ok(reply) if reply.starts_with("+PONG") => return redis,
                    Ok(reply) => format!("PING answered {reply:?}"),
                    Err(e) => format!("PING: {e}"),
                };
                assert!(
                    Instant::now() < deadline,
                    "redis-server on port {port} not ready within {READY_WITHIN:?} ({last}); its log:\n{}",
                    tail(&log_path)
                );
                std::thread::sleep(POLL_EVERY);
            }
        }
        unreachable!()
    }

    /// `redis-cli -h 127.0.0.1 -p PORT ARGS...`: its stdout without the final newline (raw
    /// replies, as redis-cli prints them when not on a terminal: `25`, `PONG`, one item a line).
    /// Panics if redis-cli fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(REDIS_CLI);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .env_remove("REDISCLI_AUTH");
        let out = run_bounded(cmd, COMMAND_WITHIN, None)
            .unwrap_or_else(|e| panic!("redis-cli {}: {e}", args.join(" ")));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "redis-cli {} failed ({}):\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.strip_suffix('\n').unwrap_or(&stdout).to_string()
    }

    /// `RPUSH`es `n` items onto the list `key`: `{"job":1,"batch_size":8}` ...
    /// `{"job":N,"batch_size":8}`, in that order (so `LINDEX key 0` is job 1).
    pub fn seed_queue(&self, key: &str, n: usize) {
        let items: Vec<String> = (1..=n)
            .map(|i| format!(r#"{{"job":{i},"batch_size":8}}"#))
            .collect();
        for chunk in items.chunks(PUSH_CHUNK) {
            let mut args = vec!["RPUSH", key];
            args.extend(chunk.iter().map(String::as_str));
            self.cli(&args);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A listener that accepts connections and never writes a byte (nor closes them): a server
/// that hangs. Deref to the [`TcpListener`]. Dropping it closes the listener and every
/// accepted connection.
pub struct SilentListener {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Deref for SilentListener {
    type Target = TcpListener;
    fn deref(&self) -> &TcpListener {
        &self.listener
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A server on 127.0.0.1 that accepts every connection and never answers, and its port.
/// Keep the first value alive for as long as the server should hang.
pub fn silent_listener() -> (SilentListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let accepting = listener.try_clone().expect("cloning the listener");
    accepting
        .set_nonblocking(true)
        .expect("making the listener non-blocking");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("oncall-test-silent-{port}"))
        .spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                match accepting.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
        .expect("spawning the silent listener's thread");
    (
        SilentListener {
            listener,
            stop,
            thread: Some(thread),
        },
        port,
    )
}

/// A port on 127.0.0.1 with nothing listening (a moment ago): a server that is down.
pub fn closed_port() -> u16 {
    free_port()
}

/// Sends `PING` over RESP; the first reply line.
fn ping(addr: SocketAddr) -> std::io::Result<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
