//! Small loopback HTTP/1.1 servers on std threads, each on a free 127.0.0.1 port, each
//! stopping (promptly, even mid-delay) when dropped. Every response carries
//! `Connection: close` and the connection is closed after it.
//!
//! - [`SlowServer`]: answers every request after a delay (for timeout tests).
//! - [`GarbageServer`]: answers 200 `text/html` `<html>not prometheus</html>`.
//! - [`RecordingServer`]: answers 200 `{"status":"ok"}` (or a status per path) and records
//!   every request.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string without the `?`, empty if none.
    pub query: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// State shared by the accept thread, the connection threads and the owner.
struct Shared {
    stop: AtomicBool,
    /// Paired with `wake` so delayed answers end as soon as the server stops.
    stopped: Mutex<bool>,
    wake: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits `delay` or until the server stops; true if it stopped.
    fn wait(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut stopped = self.stopped.lock().unwrap();
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self.wake.wait_timeout(stopped, deadline - now).unwrap().0;
        }
        true
    }
}

/// The common machinery: a listener, an accept thread, a thread per connection.
struct Server {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(delay: Duration, handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            workers: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept_shared.stopping() {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let shared = accept_shared.clone();
                    let handler = handler.clone();
                    let worker = std::thread::spawn(move || {
                        serve(stream, &shared, delay, &*handler);
                    });
                    let mut workers = accept_shared.workers.lock().unwrap();
                    workers.retain(|w| !w.is_finished());
                    workers.push(worker);
                }
            })
            .expect("spawning the accept thread");
        Server {
            url: format!("http://{addr}"),
            addr,
            shared,
            accept: Some(accept),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        *self.shared.stopped.lock().unwrap() = true;
        self.shared.wake.notify_all();
        // Unblock `accept` so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// Reads one request, waits `delay` (unless stopping), answers and closes.
fn serve(mut stream: TcpStream, shared: &Shared, delay: Duration, handler: &Handler) {
    let Ok(Some(request)) = read_request(&mut stream, shared) else {
        return;
    };
    if !delay.is_zero() && shared.wait(delay) {
        return;
    }
    let response = handler(&request);
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    // The client may have given up (timeout tests): write errors are expected then.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(response.body.as_bytes()))
        .and_then(|()| stream.flush());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// How long a connection may sit idle mid-request before it is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(10);

/// Reads bytes, checking the stop flag every 50 ms so a silent client cannot hold up a drop.
fn read_some(stream: &mut TcpStream, shared: &Shared, buf: &mut [u8]) -> io::Result<usize> {
    let idle_until = Instant::now() + IDLE_LIMIT;
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if shared.stopping() || Instant::now() >= idle_until {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Parses one HTTP/1.x request (body by `Content-Length` or chunked); `None` on a
/// connection closed before a full request line and headers.
fn read_request(stream: &mut TcpStream, shared: &Shared) -> io::Result<Option<Request>> {
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = read_some(stream, shared, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut rest = raw[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut request = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(stream, shared, rest)?;
    } else {
        let len: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = read_some(stream, shared, &mut buf)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&buf[..n]);
        }
        rest.truncate(len);
        request.body = rest;
    }
    Ok(Some(request))
}

fn read_chunked(stream: &mut TcpStream, shared: &Shared, mut raw: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut buf = [0u8; 8192];
    let mut pos = 0;
    loop {
        // Need a full size line.
        let line_end = loop {
            if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            let n = read_some(stream, shared, &mut buf)?;
            if n == 0 {
                return Ok(body);
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let line = String::from_utf8_lossy(&raw[pos..line_end]).into_owned();
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers are not needed; the connection is closed after the answer.
            return Ok(body);
        }
        while raw.len() < pos + size + 2 {
            let n = read_some(stream, shared, &mut buf)?;
            if n == 0 {
                return Ok(body);
            }
            raw.extend_from_slice(&buf[..n]);
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

/// Answers every request with `body` after `delay`. Dropping it ends pending delays at once.
pub struct SlowServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    server: Server,
}

impl SlowServer {
    pub fn start(delay: Duration, body: &'static str, content_type: &'static str) -> SlowServer {
        let server = Server::start(
            delay,
            Arc::new(move |_: &Request| Response {
                status: 200,
                content_type,
                body: body.to_string(),
            }),
        );
        SlowServer {
            url: server.url.clone(),
            server,
        }
    }
}

/// Answers every request 200 `text/html` `<html>not prometheus</html>`.
pub struct GarbageServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    server: Server,
}

impl GarbageServer {
    pub const BODY: &'static str = "<html>not prometheus</html>";

    pub fn start() -> GarbageServer {
        let server = Server::start(
            Duration::ZERO,
            Arc::new(|_: &Request| Response {
                status: 200,
                content_type: "text/html",
                body: GarbageServer::BODY.to_string(),
            }),
        );
        GarbageServer {
            url: server.url.clone(),
            server,
        }
    }
}

/// Answers every request `application/json`: `{"status":"ok"}` with 200 (or the status
/// configured for its path, with `{"status":"error"}` when that is not 2xx), and records it.
pub struct RecordingServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<Mutex<Vec<Request>>>,
    /// Paths whose requests are recorded and then left unanswered until released.
    held: Arc<(Mutex<Vec<String>>, Condvar)>,
    server: Server,
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.release();
    }
}

impl RecordingServer {
    pub fn start() -> RecordingServer {
        RecordingServer::with_status(&[])
    }

    /// Like `start`, with a status per path (the path without the query string), e.g.
    /// `RecordingServer::with_status(&[("/health", 503)])`.
    pub fn with_status(statuses: &[(&str, u16)]) -> RecordingServer {
        let statuses: HashMap<String, u16> =
            statuses.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler_log = log.clone();
        let held: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let handler_held = held.clone();
        let server = Server::start(
            Duration::ZERO,
            Arc::new(move |req: &Request| {
                handler_log.lock().unwrap().push(req.clone());
                let (paths, released) = &*handler_held;
                let mut paths = paths.lock().unwrap();
                while paths.contains(&req.path) {
                    paths = released.wait(paths).unwrap();
                }
                drop(paths);
                let status = statuses.get(&req.path).copied().unwrap_or(200);
                let body = if (200..300).contains(&status) {
                    r#"{"status":"ok"}"#
                } else {
                    r#"{"status":"error"}"#
                };
                Response {
                    status,
                    content_type: "application/json",
                    body: body.to_string(),
                }
            }),
        );
        RecordingServer {
            url: server.url.clone(),
            log,
            held,
            server,
        }
    }

    /// Requests to `path` from now on are recorded and never answered, until [`Self::release`]:
    /// a request that reached the server when its sender died.
    pub fn hold(&self, path: &str) {
        self.held.0.lock().unwrap().push(path.to_string());
    }

    /// Answers every held request, and those to come.
    pub fn release(&self) {
        self.held.0.lock().unwrap().clear();
        self.held.1.notify_all();
    }

    /// (method, path without query) of every request so far, in arrival order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    /// Every request so far in full (headers, query, body), in arrival order.
    pub fn recorded(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests used that method (case-insensitive).
    pub fn count_method(&self, m: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(m))
            .count()
    }
}

/// Answers every request 200 `application/json` with `{"echo": "<its headers, one per line>",
/// "payload": PAYLOAD}`, and records it: a server that repeats the credentials it was sent,
/// and says whatever the test wants besides.
pub struct EchoServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<Mutex<Vec<Request>>>,
    server: Server,
}

impl EchoServer {
    /// `payload` is raw JSON.
    pub fn start(payload: &str) -> EchoServer {
        let payload = payload.to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler_log = log.clone();
        let server = Server::start(
            Duration::ZERO,
            Arc::new(move |req: &Request| {
                handler_log.lock().unwrap().push(req.clone());
                let echo: String = req
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}\n"))
                    .collect();
                let echo = serde_json::to_string(&echo).unwrap();
                Response {
                    status: 200,
                    content_type: "application/json",
                    body: format!(r#"{{"echo": {echo}, "payload": {payload}}}"#),
                }
            }),
        );
        EchoServer {
            url: server.url.clone(),
            log,
            server,
        }
    }

    /// Every request so far in full, in arrival order.
    pub fn recorded(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}
