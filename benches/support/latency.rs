//! Injected latency for the benches: a loopback TCP proxy that delays what the client sends,
//! and a small HTTP server with fixed answers (a gateway's `/health`, Prometheus's query API).
//!
//! The proxy models a network with round-trip time `rtt`: a new connection costs one round trip
//! before its first byte arrives (the TCP handshake), and every chunk the client sends reaches
//! the server `rtt` after it was sent (the request's way there and the answer's way back,
//! folded into one direction). Chunks keep their order and are not delayed behind each other:
//! a request written in two parts costs one round trip, not two.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Starts a proxy on 127.0.0.1 in front of `upstream`; returns its address. It serves until the
/// process ends.
pub fn proxy(upstream: SocketAddr, rtt: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the latency proxy");
    let addr = listener.local_addr().expect("the proxy's address");
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            thread::spawn(move || relay(client, upstream, rtt));
        }
    });
    addr
}

fn relay(client: TcpStream, upstream: SocketAddr, rtt: Duration) {
    let accepted = Instant::now();
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut from_client), Ok(mut to_server), Ok(mut from_server), Ok(mut to_client)) = (
        client.try_clone(),
        server.try_clone(),
        server.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    let (chunks, delayed) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    // Client → queue, each chunk stamped with when it may reach the server.
    thread::spawn(move || {
        // The handshake's round trip: nothing arrives before it is over.
        let open = accepted + rtt;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_client.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = chunks.send(None);
                    return;
                }
                Ok(n) => {
                    let due = Instant::now().max(open) + rtt;
                    if chunks.send(Some((due, buf[..n].to_vec()))).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // Queue → server, each chunk when it is due.
    thread::spawn(move || {
        while let Ok(Some((due, bytes))) = delayed.recv() {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to_server.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    // Server → client, as it comes.
    let _ = std::io::copy(&mut from_server, &mut to_client);
    let _ = to_client.shutdown(Shutdown::Write);
}

/// An HTTP/1.1 server with fixed answers: `/health` and `/health/db` (a gateway) and
/// `/api/v1/query` (one sample, as Prometheus answers an instant query). Keep-alive, so a client
/// pays its connection once; it serves until the process ends.
pub fn fixed_http() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fixed HTTP server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        // One request: its head (these clients send GETs without a body).
        let end = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..end]).to_string();
        pending.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let (status, body) = if path.starts_with("/api/v1/query") {
            (
                "200 OK",
                format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{now},"0.5"]}}]}}}}"#
                ),
            )
        } else if path == "/health" || path == "/health/db" {
            ("200 OK", r#"{"status":"ok"}"#.to_string())
        } else {
            ("404 Not Found", r#"{"error":"not found"}"#.to_string())
        };
        let close = head.to_ascii_lowercase().contains("connection: close");
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if stream.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}
