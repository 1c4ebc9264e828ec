//! Proves the test harness in `tests/support/` works: a real Prometheus with the backfilled
//! data, and the fake HTTP servers. Cheap (about a second), and documents the harness.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::prometheus::{Prometheus, url_encode};
use super::servers::{GarbageServer, RecordingServer, SlowServer};

/// Sends one HTTP/1.1 request and returns (status, body). `timeout` bounds every read.
fn request(
    url: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let host = url.strip_prefix("http://").expect("http:// URL");
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// The first `"value":[<ts>,"<number>"]` in a Prometheus JSON answer, with its labels.
fn values(json: &str) -> Vec<(String, f64)> {
    json.split("{\"metric\":")
        .skip(1)
        .map(|part| {
            let (metric, rest) = part.split_once(",\"value\":[").expect("a value");
            let number = rest.split('"').nth(1).expect("a quoted number");
            (metric.to_string(), number.parse().expect("a float"))
        })
        .collect()
}

#[test]
fn prometheus_serves_the_backfilled_data() {
    let started = Instant::now();
    let prom = Prometheus::start();
    eprintln!(
        "prometheus ready at {} in {:?}",
        prom.url,
        started.elapsed()
    );

    let expr = "sum(rate(video_processing_errors_total[1h])) / sum(rate(video_processing_total[1h])) * 100";
    let path = format!("/api/v1/query?query={}", url_encode(expr));
    let (status, body) = request(&prom.url, "GET", &path, "", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200, "{body}");
    let v = values(&body);
    assert_eq!(v.len(), 1, "{body}");
    assert!(
        (2.99..=3.01).contains(&v[0].1),
        "error rate {} in {body}",
        v[0].1
    );

    let by_type =
        values(&prom.query("sum(rate(video_processing_errors_total[1h])) by (error_type)"));
    let rate = |t: &str| {
        by_type
            .iter()
            .find(|(m, _)| m.contains(&format!("\"error_type\":\"{t}\"")))
            .unwrap_or_else(|| panic!("no {t} in {by_type:?}"))
            .1
    };
    assert!((rate("timeout") - 2.0 / 15.0).abs() < 1e-3, "{by_type:?}");
    assert!((rate("gpu_oom") - 1.0 / 15.0).abs() < 1e-3, "{by_type:?}");

    for (expr, want) in [
        ("sum(video_processing_queue_depth)", 2000.0),
        ("max(nvidia_gpu_utilization)", 97.0),
        ("avg(nvidia_gpu_utilization)", 95.0),
        (
            "container_memory_usage_bytes{container=\"gpu-worker\"}",
            8e9,
        ),
        (
            "rate(container_cpu_usage_seconds_total{container=\"gpu-worker\"}[5m])",
            1.0,
        ),
        (
            "sum(rate(video_processing_success_total[1h])) / sum(rate(video_processing_total[1h]))",
            0.97,
        ),
    ] {
        let v = values(&prom.query(expr));
        assert_eq!(v.len(), 1, "{expr}: {v:?}");
        assert!(
            (v[0].1 - want).abs() < want * 1e-6,
            "{expr}: {} != {want}",
            v[0].1
        );
    }

    let dir = prom.dir.clone();
    drop(prom);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn slow_server_answers_late_and_stops_promptly() {
    let slow = SlowServer::start(
        Duration::from_millis(300),
        "{\"ok\":true}",
        "application/json",
    );
    let t = Instant::now();
    let (status, body) = request(&slow.url, "GET", "/x", "", Duration::from_secs(5)).unwrap();
    assert_eq!((status, body.as_str()), (200, "{\"ok\":true}"));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );

    // A client with a shorter timeout gives up.
    let err = request(&slow.url, "GET", "/x", "", Duration::from_millis(50)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );

    // Drop while a request waits out a long delay: it must not wait for the delay.
    let slow = SlowServer::start(Duration::from_secs(30), "late", "text/plain");
    let host = slow.url.strip_prefix("http://").unwrap().to_string();
    let mut pending = TcpStream::connect(&host).unwrap();
    write!(pending, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    // And one that connects but never sends a request.
    let _silent = TcpStream::connect(&host).unwrap();
    let t = Instant::now();
    drop(slow);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
}

#[test]
fn garbage_server_answers_html() {
    let garbage = GarbageServer::start();
    let (status, body) = request(
        &garbage.url,
        "GET",
        "/api/v1/query?query=up",
        "",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "<html>not prometheus</html>")
    );
}

#[test]
fn recording_server_records_requests() {
    let rec = RecordingServer::with_status(&[("/health", 503)]);
    let timeout = Duration::from_secs(5);
    let silence = r#"{"matchers":[{"name":"alertname","value":"X","isRegex":false}]}"#;
    assert_eq!(
        request(&rec.url, "POST", "/api/v2/silences", silence, timeout).unwrap(),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    assert_eq!(
        request(&rec.url, "GET", "/health?verbose=1", "", timeout).unwrap(),
        (503, r#"{"status":"error"}"#.to_string())
    );
    assert_eq!(
        rec.requests(),
        vec![
            ("POST".to_string(), "/api/v2/silences".to_string()),
            ("GET".to_string(), "/health".to_string()),
        ]
    );
    assert_eq!(rec.count_method("POST"), 1);
    assert_eq!(rec.count_method("get"), 1);
    let recorded = rec.recorded();
    assert_eq!(recorded[0].body_text(), silence);
    assert_eq!(recorded[0].header("Content-Type"), Some("application/json"));
    assert_eq!(recorded[1].query, "verbose=1");

    // A chunked body (what some clients send for streamed bodies) is decoded too.
    let host = rec.url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "PUT /chunked HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(rec.recorded()[2].body_text(), "hello world");
    assert_eq!(rec.count_method("PUT"), 1);
}
