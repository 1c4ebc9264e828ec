//! End-to-end tests of the oncall binary against real services on loopback.

mod support;
mod trust;

use serde_json::Value;
use std::time::Duration;
use support::prometheus::Prometheus;
use support::servers::{GarbageServer, RecordingServer, SlowServer};
use support::{Sandbox, events, fixture, observation};

/// The error-budget runbook against a real Prometheus and a recording gateway.
fn error_budget_args<'a>(prom: &'a str, api: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "error-budget".into(),
        "--prometheus-url".into(),
        prom.into(),
        "--endpoint".into(),
        format!("api_gateway={api}"),
        "--endpoint".into(),
        format!("job_orchestrator={api}"),
        // The acknowledgement's silence goes to the recording server too.
        "--alertmanager-url".into(),
        api.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn error_budget_reports_the_error_rate_verdict_and_rows_from_prometheus() {
    let prom = Prometheus::start();
    let api = RecordingServer::start();
    let kube = kubernetes::video_cluster();
    // A healthy worker set, so nothing but the thresholds decides the verdicts.
    assert!(kube.remove("/api/v1/namespaces/video-processing/pods/gpu-worker-b"));
    let sb = kubernetes::sandbox(&kube);
    // A budget of 5% keeps the 3% error rate under it, so the verification wait holds at once.
    let nats = support::nats::Nats::start();
    let nats_endpoint = format!("nats={}", nats.url);
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--yes",
            "--output",
            "json",
            "-p",
            "budget_pct=5",
            "-p",
            "gpu_fail_pct=99",
            "--endpoint",
            &nats_endpoint,
        ],
    );
    let ran = sb.run(&strs(&args));
    let report = ran.json();

    let rate = observation(&report, "error_rate");
    let value = rate["value"].as_f64().expect("a numeric error rate");
    assert!((value - 3.0).abs() < 0.01, "error rate {value}");
    assert_eq!(
        rate["verdict"], "warn",
        "3% is over half of a 5% budget: {rate:#}"
    );
    assert_eq!(rate["unit"], "%");

    let by_type = observation(&report, "errors_by_type");
    let table = &by_type["table"];
    assert_eq!(table["columns"], serde_json::json!(["error_type", "value"]));
    let mut rows: Vec<(String, f64)> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_f64().unwrap()))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "gpu_oom");
    assert!((rows[0].1 - 1.0 / 15.0).abs() < 1e-3, "{rows:?}");
    assert_eq!(rows[1].0, "timeout");
    assert!((rows[1].1 - 2.0 / 15.0).abs() < 1e-3, "{rows:?}");

    let queue = observation(&report, "queue_depth");
    assert_eq!(queue["value"].as_f64(), Some(2000.0));
    assert_eq!(observation(&report, "api_gateway_health")["verdict"], "ok");
    let waited = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s.get("wait"))
        .expect("the verification wait ran");
    assert_eq!(waited["outcome"], "met");
    // The rendered internal update carries the live value.
    let text = report.to_string();
    assert!(
        text.contains("Current error rate: 3.0%") || text.contains("Current error rate: 3%"),
        "{text}"
    );
    assert_eq!(ran.code, 0, "warnings only: {}", ran.stderr);
    assert_eq!(report["exit_code"], 0);
}

#[test]
fn failing_error_rate_offers_mitigations_and_yes_applies_them() {
    let prom = Prometheus::start();
    let api = RecordingServer::start();
    let kube = kubernetes::video_cluster();
    let sb = kubernetes::sandbox(&kube);
    let nats = support::nats::Nats::start();
    let nats_endpoint = format!("nats={}", nats.url);
    // Budget 1%: the 3% error rate fails; timeouts are 2/3 of errors; a queue limit of 1500 overflows.
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--yes",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
            "--endpoint",
            &nats_endpoint,
        ],
    );
    let ran = sb.run(&strs(&args));
    let report = ran.json();
    assert_eq!(observation(&report, "error_rate")["verdict"], "fail");
    assert_eq!(observation(&report, "queue_depth")["verdict"], "fail");
    // Thresholds apply per GPU: 97% and 93% are both over 90%.
    let gpus = observation(&report, "gpu_utilization");
    assert_eq!(
        gpus["table"]["verdicts"],
        serde_json::json!(["fail", "fail"]),
        "{gpus:#}"
    );
    assert!(
        gpus["reason"].as_str().unwrap().ends_with("(2 of 2 rows)"),
        "{gpus:#}"
    );
    let posts: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "POST")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        posts,
        vec![
            "/api/v2/silences",
            "/api/jobs/clear-stuck",
            "/api/jobs/prioritize"
        ],
        "acknowledged, then both mitigations"
    );
    let timeline = sb.timeline();
    let decided = events(&timeline, "action_decided");
    assert!(
        decided.len() >= 2 && decided.iter().all(|e| e["decision"] == "approved"),
        "{decided:?}"
    );
    // Intent is on record before the result.
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let started = kinds.iter().position(|k| *k == "action_started").unwrap();
    let finished = kinds.iter().position(|k| *k == "action_finished").unwrap();
    assert!(started < finished);
    let wait = events(&timeline, "wait_finished");
    assert_eq!(wait[0]["outcome"], "timed_out");
    assert_eq!(ran.code, 1, "a failed check exits 1: {}", ran.stderr);
}

#[test]
fn dry_run_sends_no_mutation_to_the_server() {
    let prom = Prometheus::start();
    let api = RecordingServer::start();
    let kube = kubernetes::video_cluster();
    let sb = kubernetes::sandbox(&kube);
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--dry-run",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
        ],
    );
    let ran = sb.run(&strs(&args));
    let report = ran.json();
    let decisions: Vec<Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap().clone())
        .collect();
    let http: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["plan"]["backend"] == "http")
        .collect();
    assert_eq!(
        http.len(),
        2,
        "both HTTP mitigations were offered: {decisions:#?}"
    );
    for d in &http {
        assert!(
            d["plan"]["request"].as_str().unwrap().starts_with("POST "),
            "{d}"
        );
    }
    for d in decisions.iter().filter(|d| d["decision"] != "not_offered") {
        assert_eq!(d["decision"], "would_send", "{d}");
    }
    assert!(kube.mutating_requests().is_empty());
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        assert_eq!(
            api.count_method(method),
            0,
            "{method} reached the server: {:?}",
            api.requests()
        );
    }
    assert!(
        api.count_method("GET") >= 2,
        "the health checks did run for real"
    );
    assert!(ran.stdout.contains("would_send"));
}

#[test]
fn unreachable_slow_and_garbage_prometheus_give_errors_with_causes() {
    let slow = SlowServer::start(Duration::from_secs(5), "{}", "application/json");
    let garbage = GarbageServer::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let api = RecordingServer::start();
    for (prom, cause) in [
        (closed.as_str(), "connection refused"),
        (slow.url.as_str(), "no answer from"),
        (
            garbage.url.as_str(),
            "is not the Prometheus API (HTTP 200, text/html: <html>not prometheus</html>)",
        ),
    ] {
        let sb = Sandbox::new();
        let args = error_budget_args(
            prom,
            &api.url,
            &[
                "--yes",
                "--output",
                "json",
                "--timeout",
                "1s",
                "--max-wait",
                "1s",
            ],
        );
        let ran = sb.run(&strs(&args));
        let report = ran.json();
        let rate = observation(&report, "error_rate");
        assert_eq!(rate["verdict"], "error", "{prom}: {rate:#}");
        assert!(
            rate["reason"].as_str().unwrap().contains(cause),
            "{prom}: {rate:#}"
        );
        assert!(
            rate["millis"].as_u64().unwrap() < 1500,
            "stayed within its 1s timeout: {rate:#}"
        );
        // The run went on: later steps ran, and the HTTP checks against the live gateway are ok.
        assert_eq!(observation(&report, "api_gateway_health")["verdict"], "ok");
        assert_eq!(
            ran.code, 3,
            "a backend could not be reached: {}",
            ran.stderr
        );
    }
}

#[test]
fn prometheus_rejecting_a_query_reports_its_own_message() {
    let prom = Prometheus::start();
    let sb = Sandbox::new();
    // Valid to the parser oncall uses, refused by this server: a function Prometheus 2.42 lacks.
    sb.write(
        "bad-query.yaml",
        "id: bad-query\ntitle: A query the server refuses\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: q\n        prometheus: 'sort_by_label(video_processing_queue_depth, \"queue\")'\n",
    );
    let ran = sb.run(&[
        "run",
        "bad-query.yaml",
        "--prometheus-url",
        &prom.url,
        "--output",
        "json",
    ]);
    let report = ran.json();
    let q = observation(&report, "q");
    assert_eq!(q["verdict"], "error");
    assert!(
        q["reason"]
            .as_str()
            .unwrap()
            .contains("Prometheus rejected the query (HTTP 400, bad_data)"),
        "{q:#}"
    );
}

#[test]
fn no_terminal_and_no_flag_stops_before_the_first_prompt() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let ran = sb.run(&[
        "run",
        fixture("three-actions.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(ran.code, 4, "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("needs an answer, and there is no terminal"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("--yes"));
    assert_eq!(api.requests().len(), 0, "nothing after the stop ran");
    let timeline = sb.timeline();
    assert_eq!(
        events(&timeline, "action_decided")[0]["decision"],
        "no_terminal"
    );
    assert_eq!(events(&timeline, "run_finished")[0]["exit_code"], 4);
}

#[test]
fn shell_checks_quote_params_and_kill_on_timeout_and_secrets_stay_hidden() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let hostile = "$(touch pwned); o'k";
    let param = format!("name={hostile}");
    let ran = sb.run(&[
        "run",
        fixture("shell-and-secrets.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "-p",
        &param,
        "--yes",
        "--output",
        "json",
    ]);
    let report = ran.json();
    assert!(
        !sb.work().join("pwned").exists(),
        "a param was executed by the shell"
    );
    let lines = observation(&report, "lines_with_o");
    assert_eq!(
        lines["value"], 3,
        "the hostile value is one literal line with an o, then one and two: {lines:#}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.work().join("marker.txt")).unwrap(),
        hostile
    );
    let slow = observation(&report, "slow_shell");
    assert_eq!(slow["verdict"], "error");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 300ms"),
        "{slow:#}"
    );
    let token = observation(&report, "with_token");
    assert_eq!(
        (&token["value"], &token["verdict"]),
        (&Value::from("ok"), &Value::from("ok")),
        "the JSON field is the value: {token:#}"
    );
    // The real token reached the server, and neither the screen nor the timeline.
    let sent = api.recorded();
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer s3cr3t-token-value")
    );
    let timeline_text = std::fs::read_to_string(sb.incidents().pop().unwrap()).unwrap();
    for (what, text) in [
        ("stdout", &ran.stdout),
        ("stderr", &ran.stderr),
        ("timeline", &timeline_text),
    ] {
        for secret in ["s3cr3t-token-value", "918273", "pa'ss", r"pa'\''ss"] {
            assert!(
                !text.contains(secret),
                "the secret {secret} reached the {what}"
            );
        }
    }
    assert!(timeline_text.contains("\"pin\":\"***\""), "{timeline_text}");
    assert!(
        timeline_text.contains("true *** ***"),
        "the plan of log_in is masked: {timeline_text}"
    );
    assert!(
        timeline_text.contains("\"token\":\"***\""),
        "{timeline_text}"
    );
}

#[test]
fn url_passwords_never_reach_the_screen_or_timeline() {
    let sb = Sandbox::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let prom = format!("http://admin:hunter2@127.0.0.1:{closed}");
    sb.write("p.yaml", "id: p\ntitle: P\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: up\n        prometheus: up\n");
    let ran = sb.run(&[
        "run",
        "p.yaml",
        "--prometheus-url",
        &prom,
        "--output",
        "json",
    ]);
    let timeline = std::fs::read_to_string(sb.incidents().pop().unwrap()).unwrap();
    assert!(ran.stdout.contains("admin:***@"), "{}", ran.stdout);
    for text in [&ran.stdout, &ran.stderr, &timeline] {
        assert!(!text.contains("hunter2"));
    }
}

#[test]
fn drill_needs_no_infrastructure_and_applies_nothing() {
    let sb = Sandbox::new();
    let ran = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "queue-overflow",
        "--output",
        "json",
    ]);
    let report = ran.json();
    assert_eq!(report["mode"], "drill");
    assert_eq!(report["scenario"], "queue-overflow");
    assert_eq!(observation(&report, "queue_depth")["verdict"], "fail");
    let timeline = sb.timeline();
    let decided = events(&timeline, "action_decided");
    assert!(!decided.is_empty());
    assert!(
        decided.iter().all(|e| e["decision"] == "rehearsed"),
        "{decided:?}"
    );
    assert!(
        events(&timeline, "action_started").is_empty(),
        "a drill never applies"
    );
    assert_eq!(events(&timeline, "wait_finished")[0]["outcome"], "met");

    let clear = sb.run(&["drill", "error-budget", "--scenario", "all-clear"]);
    assert_eq!(clear.code, 0, "{}", clear.stdout);
    // Nothing to mitigate: only the acknowledgement is rehearsed.
    assert!(
        clear
            .stdout
            .contains("done:     acknowledge_alert: would apply (drill): not sent\n  timeline:"),
        "{}",
        clear.stdout
    );
    let missing = sb.run(&["drill", "error-budget", "--scenario", "nope"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("its scenarios: all-clear, gpu-saturation, queue-overflow"),
        "{}",
        missing.stderr
    );
}

#[test]
fn list_show_and_validate_the_bundled_runbooks() {
    let sb = Sandbox::new();
    let list = sb.run(&["list", "--output", "json"]);
    let items = list.json();
    let eb = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "error-budget")
        .expect("error-budget is bundled");
    assert_eq!(eb["severity"], "P0");
    assert_eq!(eb["source"], "bundled");
    let text = sb.run(&["list"]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("error-budget") && l.contains("P0") && l.ends_with("bundled")),
        "{}",
        text.stdout
    );

    let show = sb.run(&["show", "error-budget"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains(
            "POST http://api-gateway.video-processing.svc.cluster.local:8080/api/jobs/clear-stuck"
        ),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("drill scenarios: all-clear, gpu-saturation, queue-overflow")
    );

    let validate = sb.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);

    // A user runbook with the same id overrides the bundled one.
    sb.write("runbooks/error-budget.yaml", "id: error-budget\ntitle: Ours\nseverity: P1\nsteps:\n  - id: s\n    guidance: read the dashboard\n");
    let list = sb.run(&["list", "--output", "json"]).json();
    let eb = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "error-budget")
        .unwrap();
    assert_eq!(eb["title"], "Ours");
    assert_eq!(eb["source"], "runbooks/error-budget.yaml");
}

#[test]
fn note_timeline_and_resolve_work_on_the_latest_open_incident() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let ran = sb.run(&[
        "run",
        fixture("three-actions.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--dry-run",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    let id = sb.incidents()[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(id.ends_with("-three-actions"), "{id}");

    let note = sb.run(&["note", "rolled back the config by hand"]);
    assert_eq!(note.code, 0, "{}", note.stderr);
    let shown = sb.run(&["timeline"]);
    assert!(
        shown
            .stdout
            .contains("note by tester: rolled back the config by hand"),
        "{}",
        shown.stdout
    );
    let json = sb.run(&["timeline", &id, "--output", "json"]).json();
    assert_eq!(json.as_array().unwrap().last().unwrap()["event"], "note");

    assert_eq!(sb.run(&["resolve", "config rolled back"]).code, 0);
    let again = sb.run(&["note", "too late"]);
    assert_eq!(
        again.code, 2,
        "a resolved incident takes no more notes by default"
    );
    assert!(
        again.stderr.contains("no open incident"),
        "{}",
        again.stderr
    );

    let path = sb.incidents()[0].clone();
    let mode = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "only its owner may read a timeline"
    );
}

mod terminal {
    //! In a real pseudo-terminal: prompts, Ctrl-C at a prompt and during a wait.
    use super::support::{Sandbox, events, fixture};
    use super::*;
    use expectrl::{Eof, Session, WaitStatus};

    fn spawn(sb: &Sandbox, args: &[&str]) -> Session {
        let mut cmd = sb.command(args);
        cmd.env("TERM", "xterm-256color");
        let mut session = Session::spawn(cmd).expect("spawn in a pty");
        session.set_expect_timeout(Some(Duration::from_secs(20)));
        session
    }

    fn exit_code(session: &mut Session) -> i32 {
        session.expect(Eof).expect("the program ends");
        match session.get_process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("ended by {other:?}"),
        }
    }

    #[test]
    fn approve_skip_and_abort_are_each_recorded() {
        let api = RecordingServer::start();
        let sb = Sandbox::new();
        let endpoint = format!("api={}", api.url);
        let mut s = spawn(
            &sb,
            &[
                "run",
                fixture("three-actions.yaml").to_str().unwrap(),
                "--endpoint",
                &endpoint,
            ],
        );
        s.expect("First action? [y]es apply / [s]kip / [a]bort run:")
            .unwrap();
        s.send_line("y").unwrap();
        s.expect("Second action? [y]es apply / [s]kip / [a]bort run:")
            .unwrap();
        s.send_line("s").unwrap();
        s.expect("Third action? [y]es apply / [s]kip / [a]bort run:")
            .unwrap();
        s.send_line("a").unwrap();
        assert_eq!(exit_code(&mut s), 4);
        assert_eq!(
            api.requests(),
            vec![("POST".to_string(), "/first".to_string())]
        );
        let timeline = sb.timeline();
        let decided: Vec<(&str, &str)> = events(&timeline, "action_decided")
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap(),
                    e["decision"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            decided,
            vec![
                ("first", "approved"),
                ("second", "skipped"),
                ("third", "aborted")
            ]
        );
        assert_eq!(events(&timeline, "action_finished")[0]["ok"], true);
        assert!(
            events(&timeline, "check_finished").is_empty(),
            "the run stopped at the abort"
        );
    }

    #[test]
    fn ctrl_c_at_a_prompt_aborts_with_130_and_is_recorded() {
        let api = RecordingServer::start();
        let sb = Sandbox::new();
        let endpoint = format!("api={}", api.url);
        let mut s = spawn(
            &sb,
            &[
                "run",
                fixture("three-actions.yaml").to_str().unwrap(),
                "--endpoint",
                &endpoint,
            ],
        );
        s.expect("First action?").unwrap();
        s.send(expectrl::ControlCode::EndOfText).unwrap();
        assert_eq!(exit_code(&mut s), 130);
        assert!(api.requests().is_empty());
        let timeline = sb.timeline();
        let last = timeline.last().unwrap();
        assert_eq!(last["event"], "interrupted");
        assert_eq!(last["signal"], "SIGINT");
    }

    #[test]
    fn ctrl_c_during_a_wait_ends_the_wait_and_the_run_goes_on() {
        let api = RecordingServer::start();
        let sb = Sandbox::new();
        let endpoint = format!("api={}", api.url);
        let mut s = spawn(
            &sb,
            &[
                "run",
                fixture("waits.yaml").to_str().unwrap(),
                "--endpoint",
                &endpoint,
            ],
        );
        s.expect("waiting for status").unwrap();
        s.send(expectrl::ControlCode::EndOfText).unwrap();
        s.expect("stopped by the engineer").unwrap();
        s.expect("After the wait").unwrap();
        assert_eq!(exit_code(&mut s), 1, "a wait that did not hold exits 1");
        let timeline = sb.timeline();
        assert_eq!(events(&timeline, "wait_finished")[0]["outcome"], "stopped");
        assert_eq!(
            events(&timeline, "check_finished").last().unwrap()["observation"]["check"],
            "later"
        );
        assert!(api.requests().iter().any(|(_, p)| p == "/later"));
    }
}

#[test]
fn kill_9_during_a_wait_leaves_a_timeline_that_parses_to_the_last_event() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let mut child = sb
        .command(&[
            "run",
            fixture("waits.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Two polls on record means the process is inside the wait.
    let path = support::wait_for_file_containing(
        || sb.incidents().pop(),
        "\"elapsed_ms\"",
        Duration::from_secs(20),
    );
    let polled = || {
        std::fs::read_to_string(&path)
            .unwrap()
            .matches("\"wait_poll\"")
            .count()
    };
    let started = std::time::Instant::now();
    while polled() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the wait did not poll twice"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "the last event was written whole");
    let timeline = support::read_timeline(&path);
    let last = timeline.last().unwrap();
    assert!(
        last["event"] == "wait_poll" || last["event"] == "wait_started",
        "{last}"
    );
    assert!(events(&timeline, "run_finished").is_empty());
    assert_eq!(timeline[0]["event"], "incident_opened");
}

#[test]
fn validate_points_at_each_problem_with_a_hint() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-field.yaml",
            "id: unknown-field\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fial_if: value > 1\n",
            "unknown-field.yaml:9:9: unknown field `fial_if`, expected one of id, title, unit, fail_if, warn_if, timeout, prometheus, http, shell, k8s_pods, k8s_deployment, k8s_logs, k8s_events, docker_containers, docker_logs, docker_stats, gpus, gpu_processes, disk, memory, load, dir_size, checksums, tcp, pg_ready, pg_connections, pg_long_queries, pg_blocked, pg_slow_statements, pg_locks, redis_ping, redis_list, redis_memory, nats, alerts\n  hint: did you mean `fail_if`?",
        ),
        (
            "duplicate.yaml",
            "id: duplicate\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n      - id: c\n        prometheus: up\n",
            "duplicate.yaml:9:13: duplicate check id 'c'\n  hint: 'c' is already used on line 7; ids must be unique in a runbook",
        ),
        (
            "missing-check.yaml",
            "id: missing-check\ntitle: T\nseverity: P1\nparams:\n  limit: { default: 3 }\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n  - id: t\n    when: checks.gpu_util.value > params.limit\n    guidance: scale up\n",
            "missing-check.yaml:12:11: `when` names check 'gpu_util', which does not exist here\n  hint: checks it can read here: c",
        ),
        (
            "missing-param.yaml",
            "id: missing-param\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fail_if: value > params.budget\n",
            "missing-param.yaml:9:18: threshold names param 'budget', which the runbook does not declare",
        ),
        (
            "bad-template.yaml",
            "id: bad-template\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        http: { url: \"http://x/{{ params.x \" }\n",
            "bad-template.yaml:8:42: url: unexpected end of input, expected end of variable block",
        ),
        (
            "bad-promql.yaml",
            "id: bad-promql\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: sum(rate(x[5m]) by (job)\n",
            "bad-promql.yaml:8:21: invalid PromQL: unclosed left parenthesis",
        ),
        (
            "bad-duration.yaml",
            "id: bad-duration\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        timeout: soon\n",
            "bad-duration.yaml:9:18: check `timeout`: 'soon' is not a duration\n  hint: write a duration such as 30s, 15m, 1h or 1h30m",
        ),
        (
            "bad-expression.yaml",
            "id: bad-expression\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fail_if: \"value >> 3\"\n",
            "bad-expression.yaml:9:26: threshold: unexpected `>`",
        ),
        (
            "post-check.yaml",
            "id: post-check\ntitle: T\nseverity: P5\nsteps:\n  - id: s\n    checks:\n      - id: c\n        http: { url: \"http://x/\", method: POST }\n    wait: { check: nope, until: value < 1, timeout: 5m }\n",
            "post-check.yaml:3:11: severity 'P5' is not one of P0, P1, P2, P3",
        ),
        (
            "not-yaml.yaml",
            "id: x\ntitle: [unclosed\n",
            "not-yaml.yaml:2:8: ",
        ),
        ("empty.yaml", "", "empty.yaml:"),
    ];
    for (name, text, expected) in cases {
        sb.write(name, text);
        let ran = sb.run(&["validate", name]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.starts_with(expected),
            "{name}:\nexpected: {expected}\nactual:   {}",
            ran.stdout
        );
        assert!(!ran.stderr.contains("panicked"), "{name}: {}", ran.stderr);
    }
    let post = sb.run(&["validate", "post-check.yaml"]);
    assert!(
        post.stdout
            .contains("post-check.yaml:8:43: a check only reads: method 'POST' is not allowed"),
        "{}",
        post.stdout
    );
    assert!(post.stdout.contains("post-check.yaml:9:20: wait polls check 'nope', which is not defined in this or an earlier step"));
    // `run` refuses an invalid runbook with the same words, before opening an incident.
    let run = sb.run(&["run", "duplicate.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("duplicate.yaml:9:13: duplicate check id 'c'"),
        "{}",
        run.stderr
    );
    assert!(sb.incidents().is_empty());
}

#[test]
fn completions_are_current_and_complete_runbook_ids() {
    let sb = Sandbox::new();
    for (shell, file) in [
        ("bash", "oncall.bash"),
        ("zsh", "_oncall"),
        ("fish", "oncall.fish"),
        ("elvish", "oncall.elv"),
        ("powershell", "_oncall.ps1"),
    ] {
        let generated = sb.run(&["completions", shell]).stdout;
        let committed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("completions")
                .join(file),
        )
        .unwrap();
        assert_eq!(
            generated, committed,
            "completions/{file} is stale: run `just completions`"
        );
    }
    // Tab after `oncall run e`: the bundled id, and a user runbook from ./runbooks.
    sb.write(
        "runbooks/etcd-slow.yaml",
        "id: etcd-slow\ntitle: etcd is slow\nseverity: P2\nsteps:\n  - id: s\n    guidance: look\n",
    );
    for sub in ["run", "show", "drill"] {
        let mut cmd = sb.command(&["--", "oncall", sub, "e"]);
        cmd.env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "2")
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_IFS", "\n");
        let out = cmd.output().unwrap();
        let candidates: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            candidates,
            vec!["error-budget", "etcd-slow"],
            "after `oncall {sub} e`"
        );
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let sb = Sandbox::new();
    let help = sb.run(&["--help"]);
    assert_eq!(help.code, 0);
    insta::assert_snapshot!("help", help.stdout);
    let run_help = sb.run(&["run", "--help"]);
    insta::assert_snapshot!("run_help", run_help.stdout);
    let bad = sb.run(&["run"]);
    assert_eq!(bad.code, 2, "bad usage exits 2");
}

#[test]
fn the_config_file_names_endpoints_and_sets_params_and_flags_win() {
    let api = RecordingServer::start();
    let other = RecordingServer::start();
    let sb = Sandbox::new();
    let config = sb.root.join("config/oncall/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "endpoints:\n  api: {}\nparams:\n  name: from-config\n",
            api.url
        ),
    )
    .unwrap();
    let fixture = fixture("shell-and-secrets.yaml");
    let report = sb
        .run(&[
            "run",
            fixture.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
        ])
        .json();
    assert_eq!(report["params"]["name"], "from-config");
    assert_eq!(api.requests().len(), 1, "the config's endpoint was used");

    let endpoint = format!("api={}", other.url);
    let report = sb
        .run(&[
            "run",
            fixture.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
            "-e",
            &endpoint,
            "-p",
            "name=from-flag",
        ])
        .json();
    assert_eq!(report["params"]["name"], "from-flag");
    assert_eq!(
        other.requests().len(),
        1,
        "--endpoint overrides the config file"
    );

    let unknown = sb.run(&["run", fixture.to_str().unwrap(), "-p", "nmae=x"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("runbook 'shell-and-secrets' has no param 'nmae'; its params: name, password, pin, token"),
        "{}",
        unknown.stderr
    );

    std::fs::write(&config, "endpoint:\n  api: http://x\n").unwrap();
    let bad = sb.run(&["list"]);
    let bad_run = sb.run(&["run", fixture.to_str().unwrap(), "--dry-run"]);
    assert_eq!(bad.code, 0, "list does not need the config");
    assert_eq!(bad_run.code, 2);
    assert!(
        bad_run
            .stderr
            .contains("config.yaml:1:1: unknown field `endpoint`"),
        "{}",
        bad_run.stderr
    );
    assert!(
        bad_run.stderr.contains("did you mean `endpoints`?"),
        "{}",
        bad_run.stderr
    );
}

#[test]
fn a_condition_on_a_check_with_no_value_is_not_met() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    // `none < 1` holds in MiniJinja: an unreachable Prometheus must not look like a low error rate.
    sb.write(
        "scale-down.yaml",
        "id: scale-down\ntitle: T\nseverity: P3\nendpoints:\n  api: { default: http://127.0.0.1:9 }\nsteps:\n  - id: look\n    checks:\n      - id: rate\n        prometheus: up\n      - id: disk\n        shell: { command: \"printf 'Use%%\\\\n 87%%\\\\n'\", number: true }\n        fail_if: value > 80\n  - id: act\n    when: checks.rate.value < 1\n    actions:\n      - id: scale_down\n        http: { method: POST, url: \"{{ endpoints.api }}/scale-down\" }\n",
    );
    let endpoint = format!("api={}", api.url);
    let ran = sb.run(&[
        "run",
        "scale-down.yaml",
        "--prometheus-url",
        &closed,
        "-e",
        &endpoint,
        "--yes",
        "--output",
        "json",
    ]);
    let report = ran.json();
    let act = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "act")
        .unwrap();
    assert_eq!(act["status"], "skipped");
    assert!(
        act["reason"]
            .as_str()
            .unwrap()
            .starts_with("checks.rate.value has no value"),
        "{act:#}"
    );
    assert_eq!(api.count_method("POST"), 0);
    let disk = observation(&report, "disk");
    assert_eq!(
        (disk["value"].as_f64(), &disk["verdict"]),
        (Some(87.0), &Value::from("fail")),
        "{disk:#}"
    );
}

#[test]
fn an_interrupted_run_kills_the_shell_action_it_started() {
    let sb = Sandbox::new();
    sb.write(
        "slow-action.yaml",
        "id: slow-action\ntitle: T\nseverity: P3\nsteps:\n  - id: act\n    actions:\n      - id: slow\n        shell: { command: \"sleep 1.5 && touch marker\" }\n",
    );
    let mut child = sb
        .command(&["run", "slow-action.yaml", "--yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_file_containing(
        || sb.incidents().pop(),
        "\"action_started\"",
        Duration::from_secs(20),
    );
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let timeline = sb.timeline();
    let last = timeline.last().unwrap();
    assert_eq!(last["event"], "interrupted");
    assert_eq!(last["killed"].as_array().map(Vec::len), Some(1), "{last}");
    // Past the moment the action would have finished: it must not have.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        !sb.work().join("marker").exists(),
        "the action outlived oncall"
    );
}

#[test]
fn a_torn_last_event_is_left_out_and_notes_still_append() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    sb.run(&[
        "run",
        fixture("three-actions.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--dry-run",
    ]);
    let path = sb.incidents().pop().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"ts\":\"2026-11-22T03:01:00Z\",\"inc").unwrap();
    let shown = sb.run(&["timeline"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stderr.contains("cut short"), "{}", shown.stderr);
    assert_eq!(sb.run(&["note", "after the crash"]).code, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("after the crash") && last.starts_with('{'),
        "{last}"
    );
    let events = sb.run(&["timeline", "--output", "json"]).json();
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["text"],
        "after the crash"
    );
}

mod kubernetes {
    //! The Kubernetes backend against a stateful fake API server reached through a kubeconfig.
    use super::support::kube::FakeKube;
    use super::support::{Sandbox, events, observation};
    use super::*;

    const NS: &str = "video-processing";

    /// The pipeline of the seed: workers (one crash-looping), the gateway, NATS, logs and a configmap.
    pub(super) fn video_cluster() -> FakeKube {
        let kube = FakeKube::start();
        kube.add_deployment(
            NS,
            "gpu-worker",
            5,
            &[("app", "worker"), ("component", "gpu-worker")],
        );
        kube.add_deployment(
            NS,
            "asr-worker",
            3,
            &[("app", "worker"), ("component", "asr-worker")],
        );
        kube.add_deployment(NS, "api-gateway", 3, &[("app", "api-gateway")]);
        kube.add_deployment(NS, "nats", 3, &[("app", "nats")]);
        let gpu = [("app", "worker"), ("component", "gpu-worker")];
        kube.add_pod(
            NS,
            FakeKube::pod(
                NS,
                "gpu-worker-a",
                &gpu,
                "Running",
                true,
                0,
                None,
                None,
                "gpu-node-1",
            ),
        );
        kube.add_pod(
            NS,
            FakeKube::pod(
                NS,
                "gpu-worker-b",
                &gpu,
                "Running",
                false,
                7,
                Some("OOMKilled"),
                Some("CrashLoopBackOff"),
                "gpu-node-2",
            ),
        );
        let asr = [("app", "worker"), ("component", "asr-worker")];
        kube.add_pod(
            NS,
            FakeKube::pod(
                NS,
                "asr-worker-a",
                &asr,
                "Running",
                true,
                0,
                None,
                None,
                "cpu-node-1",
            ),
        );
        kube.add_pod(
            NS,
            FakeKube::pod(
                NS,
                "api-gateway-a",
                &[("app", "api-gateway")],
                "Running",
                true,
                0,
                None,
                None,
                "cpu-node-1",
            ),
        );
        let now = support::kube::now();
        kube.set_logs(
            NS,
            "gpu-worker-a",
            vec![
                (now - 7200, "ERROR too old to count".into()),
                (now - 60, "ERROR CUDA error: out of memory".into()),
                (now - 30, "INFO done".into()),
            ],
        );
        kube.set_logs(
            NS,
            "gpu-worker-b",
            vec![(now - 90, "ERROR worker crashed".into())],
        );
        kube.set_logs(
            NS,
            "api-gateway-a",
            vec![
                (now - 50, "POST /api/jobs 5xx upstream timeout".into()),
                (now - 40, "GET /health 200".into()),
            ],
        );
        kube.set_logs(
            NS,
            "asr-worker-a",
            vec![
                (now - 20, "WARN Timeout waiting for GPU slot".into()),
                (now - 10, "INFO ok".into()),
            ],
        );
        kube.add_configmap(NS, "api-gateway-config", &[("DB_MAX_CONNECTIONS", "20")]);
        kube
    }

    pub(super) fn sandbox(kube: &FakeKube) -> Sandbox {
        let sb = Sandbox::new();
        let config = kube.kubeconfig(&sb.root);
        sb.env("KUBECONFIG", config.to_str().unwrap())
    }

    fn replicas(kube: &FakeKube, name: &str) -> i64 {
        let d = kube
            .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}"))
            .unwrap();
        d["spec"]["replicas"].as_i64().unwrap()
    }

    #[test]
    fn error_budget_reads_the_cluster_scales_up_on_approval_and_back_to_the_level_before() {
        let prom = Prometheus::start();
        let kube = video_cluster();
        let api = RecordingServer::with_status(&[("/health/db", 503)]);
        let nats = support::nats::Nats::start();
        let nats_endpoint = format!("nats={}", nats.url);
        let sb = sandbox(&kube);
        let args = error_budget_args(
            &prom.url,
            &api.url,
            &[
                "--yes",
                "--output",
                "json",
                "-p",
                "queue_fail=1500",
                "--max-wait",
                "1s",
                "--endpoint",
                &nats_endpoint,
            ],
        );
        let report = sb.run(&strs(&args)).json();

        let pods = observation(&report, "worker_pods");
        assert_eq!(pods["verdict"], "fail", "{pods:#}");
        assert!(
            pods["reason"]
                .as_str()
                .unwrap()
                .contains("CrashLoopBackOff: gpu-worker-b"),
            "{pods:#}"
        );
        let rows = pods["table"]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "the app=worker pods: {pods:#}");
        assert_eq!(rows[0][0], "gpu-worker-b", "troubled pods first");
        assert_eq!(
            (&rows[0][2], &rows[0][3], &rows[0][4]),
            (
                &Value::from("0/1"),
                &Value::from(7),
                &Value::from("OOMKilled")
            )
        );
        assert_eq!(pods["value"], 2, "ready pods");

        // Log searches over the last hour: the two-hour-old line does not count.
        assert_eq!(observation(&report, "gpu_worker_errors")["value"], 2);
        assert_eq!(observation(&report, "api_gateway_5xx")["value"], 1);
        assert_eq!(observation(&report, "asr_worker_errors")["value"], 1);
        assert_eq!(observation(&report, "nats_deployment")["verdict"], "ok");

        // Scaled up to 10 on approval, then back to the 5 recorded before the incident.
        let timeline = sb.timeline();
        let finished: Vec<(String, String)> = events(&timeline, "action_finished")
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let detail = |id: &str| {
            finished
                .iter()
                .find(|(a, _)| a == id)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("{id} not applied: {finished:?}"))
        };
        assert_eq!(
            detail("scale_gpu_workers"),
            "deployment/gpu-worker replicas 5 → 10"
        );
        assert_eq!(
            detail("scale_back_gpu_workers"),
            "deployment/gpu-worker replicas 10 → 5"
        );
        assert_eq!(
            detail("scale_back_asr_workers"),
            "deployment/asr-worker replicas 5 → 3"
        );
        assert_eq!(replicas(&kube, "gpu-worker"), 5);
        let scales: Vec<Value> = kube
            .recorded()
            .into_iter()
            .filter(|r| r.method == "PATCH" && r.target().contains("/deployments/gpu-worker/scale"))
            .map(|r| r.body_json()["spec"]["replicas"].clone())
            .collect();
        assert_eq!(
            scales,
            vec![Value::from(10), Value::from(5)],
            "the fake really saw 10, then 5"
        );

        // Rollout restart as kubectl does it, the DB pool patch, and pause/resume of uploads.
        let gpu = kube
            .get(&format!(
                "/apis/apps/v1/namespaces/{NS}/deployments/gpu-worker"
            ))
            .unwrap();
        assert!(
            gpu["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .is_string()
        );
        assert!(
            detail("restart_gpu_workers").contains("rollout finished"),
            "{finished:?}"
        );
        let cm = kube
            .get(&format!(
                "/api/v1/namespaces/{NS}/configmaps/api-gateway-config"
            ))
            .unwrap();
        assert_eq!(cm["data"]["DB_MAX_CONNECTIONS"], "50");
        let planned = events(&timeline, "action_planned");
        let pool = planned
            .iter()
            .find(|e| e["action"] == "increase_db_pool")
            .unwrap();
        assert_eq!(
            pool["plan"]["changes"],
            serde_json::json!(["data.DB_MAX_CONNECTIONS: 20 → 50"])
        );
        let gateway = kube
            .get(&format!(
                "/apis/apps/v1/namespaces/{NS}/deployments/api-gateway"
            ))
            .unwrap();
        assert_eq!(
            gateway["spec"]["template"]["metadata"]["annotations"]["pause-uploads"],
            "false"
        );
        let restart_nats = events(&timeline, "step_skipped")
            .iter()
            .any(|e| e["step"] == "mitigate-nats");
        assert!(
            restart_nats,
            "NATS is healthy, so its restart is not offered"
        );
    }

    #[test]
    fn dry_run_of_every_kubernetes_step_sends_only_gets() {
        let prom = Prometheus::start();
        let kube = video_cluster();
        let api = RecordingServer::with_status(&[("/health/db", 503)]);
        let sb = sandbox(&kube);
        let args = error_budget_args(
            &prom.url,
            &api.url,
            &[
                "--dry-run",
                "--output",
                "json",
                "-p",
                "queue_fail=1500",
                "--max-wait",
                "1s",
            ],
        );
        let report = sb.run(&strs(&args)).json();
        let would_send: Vec<String> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap().clone())
            .filter(|a| a["decision"] == "would_send" && a["plan"]["backend"] == "kubernetes")
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        for id in [
            "scale_gpu_workers",
            "restart_gpu_workers",
            "pause_uploads",
            "increase_db_pool",
            "resume_uploads",
            "scale_back_gpu_workers",
        ] {
            assert!(
                would_send.contains(&id.to_string()),
                "{id} was not planned: {would_send:?}"
            );
        }
        assert!(
            kube.mutating_requests().is_empty(),
            "{:?}",
            kube.mutating_requests()
        );
        assert!(kube.requests().iter().all(|(m, _)| m == "GET"));
        assert_eq!(replicas(&kube, "gpu-worker"), 5);
    }

    #[test]
    fn faults_give_clear_errors_and_the_run_goes_on() {
        let sb = Sandbox::new();
        sb.write(
            "k.yaml",
            "id: k\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: pods\n        k8s_pods: { namespace: video-processing, selector: app=worker }\n      - id: missing\n        k8s_deployment: { namespace: video-processing, name: missing }\n    actions:\n      - id: scale\n        k8s_scale: { namespace: video-processing, deployment: gpu-worker, replicas: 10 }\n  - id: after\n    checks:\n      - id: nats\n        k8s_deployment: { namespace: video-processing, name: nats }\n",
        );
        // Down: nothing listens where the kubeconfig points.
        let down = {
            let kube = FakeKube::start();
            let config = kube.kubeconfig(&sb.root);
            drop(kube);
            config
        };
        let ran = Sandbox::new().env("KUBECONFIG", down.to_str().unwrap());
        std::fs::copy(sb.work().join("k.yaml"), ran.work().join("k.yaml")).unwrap();
        let report = ran
            .run(&["run", "k.yaml", "--yes", "--output", "json"])
            .json();
        let pods = observation(&report, "pods");
        assert_eq!(pods["verdict"], "error");
        assert!(
            pods["reason"]
                .as_str()
                .unwrap()
                .contains("cannot reach the Kubernetes API at http://127.0.0.1:"),
            "{pods:#}"
        );
        assert!(
            pods["reason"]
                .as_str()
                .unwrap()
                .ends_with("connection refused"),
            "{pods:#}"
        );
        assert_eq!(
            observation(&report, "nats")["verdict"],
            "error",
            "the run went on to the next step"
        );

        // Forbidden scale and a missing deployment, against a live fake.
        let kube = video_cluster();
        kube.fail("PATCH", "/scale", 403, "deployments.apps \"gpu-worker\" is forbidden: User \"oncall\" cannot patch resource \"deployments/scale\"");
        let live = sandbox(&kube);
        std::fs::copy(sb.work().join("k.yaml"), live.work().join("k.yaml")).unwrap();
        let ran = live.run(&["run", "k.yaml", "--yes", "--output", "json"]);
        let report = ran.json();
        let missing = observation(&report, "missing");
        assert_eq!(missing["verdict"], "error");
        assert_eq!(
            missing["reason"],
            "not found: deployments.apps \"missing\" not found"
        );
        let timeline = live.timeline();
        let scale = events(&timeline, "action_finished")[0];
        assert_eq!(scale["ok"], false);
        assert!(scale["detail"].as_str().unwrap().starts_with("the Kubernetes API refused it (403 Forbidden): deployments.apps \"gpu-worker\" is forbidden"), "{scale}");
        assert_eq!(
            observation(&report, "nats")["verdict"],
            "ok",
            "the run went on after the refusal"
        );
        assert_eq!(replicas(&kube, "gpu-worker"), 5);

        // Slow: every answer takes longer than the check's timeout.
        kube.set_delay(Duration::from_secs(3));
        let report = live
            .run(&[
                "run",
                "k.yaml",
                "--dry-run",
                "--output",
                "json",
                "--timeout",
                "1s",
            ])
            .json();
        let pods = observation(&report, "pods");
        assert_eq!(pods["verdict"], "error");
        assert_eq!(pods["reason"], "no answer within 1s");
    }

    #[test]
    fn warning_events_are_counted_and_a_pod_is_deleted_only_when_approved() {
        let kube = video_cluster();
        let old = support::kube::now() - 7200;
        let ts = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_string();
        kube.add_event(NS, serde_json::json!({"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}, "count": 12}));
        kube.add_event(NS, serde_json::json!({"type": "Normal", "reason": "Pulled", "message": "image pulled", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}}));
        kube.add_event(NS, serde_json::json!({"type": "Warning", "reason": "FailedMount", "message": "old news", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}, "lastTimestamp": ts(old)}));
        let sb = sandbox(&kube);
        sb.write(
            "evict.yaml",
            "id: evict\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: warnings\n        k8s_events: { namespace: video-processing, object: pod/gpu-worker-b, since: 1h }\n    actions:\n      - id: delete_crashing\n        when: checks.warnings.value > 0\n        k8s_delete_pod: { namespace: video-processing, pod: gpu-worker-b }\n",
        );
        let pod = format!("/api/v1/namespaces/{NS}/pods/gpu-worker-b");
        let dry = sb
            .run(&["run", "evict.yaml", "--dry-run", "--output", "json"])
            .json();
        let warnings = observation(&dry, "warnings");
        assert_eq!(
            (&warnings["value"], &warnings["verdict"]),
            (&Value::from(1), &Value::from("warn")),
            "{warnings:#}"
        );
        assert_eq!(warnings["table"]["rows"][0][2], "BackOff");
        assert!(kube.get(&pod).is_some(), "a dry run deletes nothing");
        sb.run(&["run", "evict.yaml", "--yes"]);
        assert!(kube.get(&pod).is_none(), "approved, the pod is gone");
        assert!(
            kube.mutating_requests()
                .iter()
                .any(|(m, p)| m == "DELETE" && p.starts_with(&pod))
        );
    }
}

mod host {
    //! Host checks and the cleanup action, on temporary folders.
    use super::support::{Sandbox, events, observation};
    use super::*;

    fn touch_days_ago(path: &std::path::Path, days: u32) {
        let status = std::process::Command::new("touch")
            .arg("-d")
            .arg(format!("{days} days ago"))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn checksums_find_a_mismatch_and_cleanup_deletes_exactly_what_it_planned() {
        let sb = Sandbox::new();
        let models = sb.work().join("models");
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join("a.bin"), b"weights a").unwrap();
        std::fs::write(models.join("b.bin"), b"weights b, corrupted").unwrap();
        // sha256 of "weights a" and of "weights b" (not of what b.bin now holds).
        let sum = |text: &str| {
            let out = std::process::Command::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut out.stdin.as_ref().unwrap(), text.as_bytes()).unwrap();
            String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()[..64].to_string()
        };
        std::fs::write(
            models.join("manifest.sha256"),
            format!(
                "{}  a.bin\n{}  b.bin\n{}  c.bin\n",
                sum("weights a"),
                sum("weights b"),
                sum("c")
            ),
        )
        .unwrap();
        let tmp = sb.work().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        for name in [
            "vid-bench-old-1",
            "vid-bench-old-2",
            "vid-bench-new",
            "other-old",
        ] {
            std::fs::write(tmp.join(name), vec![b'x'; 1000]).unwrap();
        }
        for name in ["vid-bench-old-1", "vid-bench-old-2", "other-old"] {
            touch_days_ago(&tmp.join(name), 2);
        }
        sb.write(
            "host.yaml",
            &format!(
                "id: host\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: models\n        checksums: {{ manifest: {m} }}\n      - id: disk\n        disk: {{ paths: [{w}] }}\n      - id: mem\n        memory: {{}}\n      - id: cpu\n        load: {{}}\n      - id: cache\n        dir_size: {{ path: {t} }}\n    actions:\n      - id: clean_tmp\n        delete_files: {{ dir: {t}, pattern: \"vid-bench-*\", older_than: 1d }}\n",
                m = models.join("manifest.sha256").display(),
                w = sb.work().display(),
                t = tmp.display()
            ),
        );
        let dry = sb
            .run(&["run", "host.yaml", "--dry-run", "--output", "json"])
            .json();
        let models_check = observation(&dry, "models");
        assert_eq!(models_check["verdict"], "fail");
        assert_eq!(
            models_check["reason"],
            "checksum failed: b.bin (mismatch), c.bin (missing)"
        );
        assert_eq!(models_check["value"], 2);
        let disk = observation(&dry, "disk");
        let used = disk["value"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&used), "{disk:#}");
        assert!(observation(&dry, "mem")["value"].as_f64().unwrap() > 0.0);
        assert!(
            observation(&dry, "cpu")["table"]["rows"][0][3]
                .as_u64()
                .unwrap()
                >= 1,
            "at least one CPU"
        );
        assert_eq!(
            observation(&dry, "cache")["table"]["rows"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            4,
            "a dry run deletes nothing"
        );

        let applied = sb.run(&["run", "host.yaml", "--yes"]);
        assert!(
            applied.stderr.is_empty() || !applied.stderr.contains("error"),
            "{}",
            applied.stderr
        );
        let timeline = sb.timeline();
        let planned = events(&timeline, "action_planned")
            .first()
            .unwrap_or_else(|| panic!("{}\n{timeline:#?}", applied.stdout))["plan"]["changes"]
            .clone();
        let listed: Vec<String> = planned
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed[0].contains("vid-bench-old-1 (1000 B)") && listed[1].contains("vid-bench-old-2"),
            "{listed:?}"
        );
        let mut left: Vec<String> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["other-old", "vid-bench-new"],
            "exactly the planned files are gone"
        );
        assert!(
            events(&timeline, "action_finished")[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with("deleted 2 entries")
        );
    }

    #[test]
    fn tcp_reports_latency_or_refusal() {
        let api = RecordingServer::start();
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let open = api.url.trim_start_matches("http://").to_string();
        let sb = Sandbox::new();
        sb.write("tcp.yaml", &format!("id: tcp\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: up\n        tcp: {{ address: \"{open}\" }}\n        unit: ms\n      - id: down\n        tcp: {{ address: \"{closed}\" }}\n"));
        let report = sb.run(&["run", "tcp.yaml", "--output", "json"]).json();
        let up = observation(&report, "up");
        assert_eq!(up["verdict"], "ok");
        assert!(up["value"].as_f64().unwrap() < 1000.0);
        let down = observation(&report, "down");
        assert_eq!(
            down["reason"],
            format!("cannot connect to {closed}: connection refused")
        );
    }
}

mod docker {
    //! The Docker backend against a private dockerd and a compose project of busybox containers.
    use super::support::docker::ComposeProject;
    use super::support::{Sandbox, events, observation};
    use super::*;

    fn runbook(project: &str) -> String {
        format!(
            "id: compose\ntitle: T\nseverity: P0\nsteps:\n  - id: look\n    checks:\n      - id: containers\n        docker_containers: {{ project: {project} }}\n      - id: oom_lines\n        docker_logs: {{ project: {project}, service: trainer, since: 1h, matches: \"CUDA error: out of memory\" }}\n      - id: usage\n        docker_stats: {{ project: {project}, service: benchmark }}\n    actions:\n      - id: restart_benchmark\n        docker: {{ op: restart, project: {project}, service: benchmark, grace: 1s }}\n"
        )
    }

    #[test]
    fn containers_logs_and_stats_are_read_and_restart_only_when_approved() {
        let project = ComposeProject::up("oncallrun");
        let host = project.docker_host().host;
        let sb = Sandbox::new().env("DOCKER_HOST", &host);
        sb.write("compose.yaml", &runbook(&project.name));
        let before = project.started_at("benchmark");

        let report = sb
            .run(&["run", "compose.yaml", "--dry-run", "--output", "json"])
            .json();
        let containers = observation(&report, "containers");
        assert_eq!(containers["verdict"], "fail", "{containers:#}");
        let reason = containers["reason"].as_str().unwrap();
        assert!(
            reason.contains("trainer exited (137)") && reason.contains("api unhealthy"),
            "{reason}"
        );
        let rows = containers["table"]["rows"].as_array().unwrap();
        let row = |svc: &str| {
            rows.iter()
                .find(|r| r[0] == svc)
                .unwrap_or_else(|| panic!("{svc}: {rows:?}"))
                .clone()
        };
        assert_eq!(
            (&row("benchmark")[2], &row("benchmark")[3]),
            (&Value::from("running"), &Value::from("healthy"))
        );
        assert_eq!(
            (&row("trainer")[2], &row("trainer")[4]),
            (&Value::from("exited"), &Value::from(137))
        );
        assert_eq!(row("api")[3], "unhealthy");
        assert_eq!(containers["value"], 1);
        let oom = observation(&report, "oom_lines");
        assert_eq!(oom["value"], 1, "{oom:#}");
        let usage = observation(&report, "usage");
        assert_eq!(
            usage["table"]["rows"].as_array().unwrap().len(),
            1,
            "{usage:#}"
        );
        assert_eq!(
            project.started_at("benchmark"),
            before,
            "a dry run restarts nothing"
        );
        let plan = &report["steps"][0]["actions"][0]["plan"];
        assert!(
            plan["changes"][0].as_str().unwrap().starts_with("restart "),
            "{plan:#}"
        );

        let ran = sb.run(&["run", "compose.yaml", "--yes"]);
        assert_ne!(
            project.started_at("benchmark"),
            before,
            "restarted: {}",
            ran.stdout
        );
        let timeline = sb.timeline();
        let finished = events(&timeline, "action_finished");
        assert_eq!(finished[0]["ok"], true, "{finished:?}");
        assert!(
            finished[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with("restarted "),
            "{finished:?}"
        );
    }

    #[test]
    fn an_unreachable_daemon_is_an_error_in_words() {
        let sb = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        sb.write("compose.yaml", &runbook("nothing"));
        let report = sb
            .run(&["run", "compose.yaml", "--dry-run", "--output", "json"])
            .json();
        let containers = observation(&report, "containers");
        assert_eq!(containers["verdict"], "error");
        assert!(
            containers["reason"]
                .as_str()
                .unwrap()
                .starts_with("cannot reach the Docker daemon (unix:///nonexistent/docker.sock)"),
            "{containers:#}"
        );
    }
}

mod gpu {
    //! The GPU backend against a fake libnvidia-ml.so.1 loaded through nvml-wrapper.
    use super::support::nvml::{MODE_ENV, PIDS_ENV, fake_nvml_lib};
    use super::support::{Sandbox, events, observation};

    const RUNBOOK: &str = "id: gpus\ntitle: T\nseverity: P1\nsteps:\n  - id: look\n    checks:\n      - id: gpus\n        gpus: {}\n        fail_if: value > 95\n      - id: procs\n        gpu_processes: {}\n    actions:\n      - id: end_biggest\n        when: checks.gpus.verdict == \"fail\"\n        gpu_kill: { pid: \"{{ (checks.procs.rows | first).pid }}\", grace: 2s }\n";

    fn sandbox(mode: &str) -> Sandbox {
        let sb = Sandbox::new()
            .env(MODE_ENV, mode)
            .env("ONCALL_NVML_LIBRARY", fake_nvml_lib().to_str().unwrap());
        sb.write("gpus.yaml", RUNBOOK);
        sb
    }

    #[test]
    fn a_full_gpu_fails_and_its_biggest_process_is_ended_on_approval() {
        let mut victim = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap();
        let sb = sandbox("two_gpus").env(PIDS_ENV, &victim.id().to_string());
        let report = sb
            .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
            .json();
        let gpus = observation(&report, "gpus");
        assert_eq!(gpus["verdict"], "fail");
        assert_eq!(gpus["table"]["verdicts"], serde_json::json!(["fail", "ok"]));
        assert!(
            gpus["text"]
                .as_str()
                .unwrap()
                .starts_with("driver 550.54.15, 2 GPU(s)"),
            "{gpus:#}"
        );
        let procs = observation(&report, "procs");
        assert_eq!(procs["value"], 1);
        assert_eq!(procs["table"]["rows"][0][1], victim.id());
        assert_eq!(procs["table"]["rows"][0][2], "python3 train.py");
        let plan = &report["steps"][0]["actions"][0]["plan"];
        assert_eq!(
            plan["changes"][0],
            format!(
                "ends pid {} (python3 train.py) holding 50.0 GiB on GPU 0",
                victim.id()
            )
        );
        assert!(
            victim.try_wait().unwrap().is_none(),
            "a dry run ends nothing"
        );

        sb.run(&["run", "gpus.yaml", "--yes"]);
        let status = victim.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
        let timeline = sb.timeline();
        assert!(
            events(&timeline, "action_finished")[0]["detail"]
                .as_str()
                .unwrap()
                .contains("ended after SIGTERM")
        );
    }

    #[test]
    fn no_driver_a_failing_driver_and_no_devices_are_errors_in_words() {
        let sb = Sandbox::new().env("ONCALL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
        sb.write("gpus.yaml", RUNBOOK);
        let report = sb
            .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
            .json();
        assert!(
            observation(&report, "gpus")["reason"]
                .as_str()
                .unwrap()
                .starts_with("no NVIDIA driver on this host")
        );
        let report = sandbox("init_fails")
            .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
            .json();
        assert_eq!(
            observation(&report, "gpus")["reason"],
            "the NVIDIA driver did not start: NVIDIA driver is not loaded"
        );
        let report = sandbox("no_devices")
            .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
            .json();
        assert_eq!(
            observation(&report, "gpus")["reason"],
            "the NVIDIA driver reports no GPU"
        );
    }
}

mod data_stores {
    //! PostgreSQL, Redis, NATS and Alertmanager, each a real server on loopback.
    use super::support::alertmanager::Alertmanager;
    use super::support::nats::Nats;
    use super::support::postgres::Postgres;
    use super::support::redis::{Redis, closed_port, silent_listener};
    use super::support::{Sandbox, events, observation};
    use super::*;

    const BLOCKERS: &str = "id: blockers\ntitle: T\nseverity: P1\nsteps:\n  - id: look\n    checks:\n      - id: ready\n        pg_ready: {}\n      - id: blocked\n        pg_blocked: {}\n      - id: connections\n        pg_connections: {}\n      - id: slow\n        pg_slow_statements: { limit: 3 }\n      - id: locks\n        pg_locks: {}\n  - id: end\n    when: checks.blocked.value > 0\n    actions:\n      - id: terminate_holder\n        pg_terminate: { check: blocked, column: blocking pid }\n";

    #[test]
    fn blocked_queries_are_found_and_the_holder_terminated_only_on_approval() {
        let pg = Postgres::start();
        let holder = pg.hold_row_lock();
        let mut waiter = pg.blocked_update();
        let blocked = pg.wait_until_blocked();
        assert_eq!(blocked.blocked_by, vec![holder.pid]);
        let sb = Sandbox::new().env("ONCALL_POSTGRES_URL", &pg.url);
        sb.write("blockers.yaml", BLOCKERS);

        let dry = sb
            .run(&["run", "blockers.yaml", "--dry-run", "--output", "json"])
            .json();
        let found = observation(&dry, "blocked");
        assert_eq!(found["value"], 1, "{found:#}");
        let row = &found["table"]["rows"][0];
        assert_eq!(row[0], i64::from(blocked.pid));
        assert_eq!(row[3], i64::from(holder.pid), "the blocking pid");
        assert!(row[2].as_str().unwrap().contains("UPDATE jobs"), "{row}");
        assert!(
            observation(&dry, "ready")["text"]
                .as_str()
                .unwrap()
                .contains("PostgreSQL 15")
        );
        assert!(observation(&dry, "connections")["value"].as_f64().unwrap() > 0.0);
        assert_eq!(
            observation(&dry, "slow")["verdict"],
            "ok",
            "pg_stat_statements is there"
        );
        assert!(observation(&dry, "locks")["value"].as_u64().unwrap() >= 1);
        let plan = &dry["steps"][1]["actions"][0]["plan"];
        assert_eq!(
            plan["request"],
            format!(
                "SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[{}]) AS pid",
                holder.pid
            )
        );
        assert!(pg.backend_exists(holder.pid), "a dry run ends nothing");

        sb.run(&["run", "blockers.yaml", "--yes"]);
        pg.wait_backend_gone(holder.pid);
        // With the holder gone the blocked update goes through and its psql ends.
        assert!(waiter.wait().unwrap().success());
        assert!(
            !pg.backend_exists(holder.pid),
            "the holder is gone from pg_stat_activity"
        );
        let timeline = sb.timeline();
        assert!(
            events(&timeline, "action_finished")[0]["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{} ok", holder.pid))
        );
    }

    #[test]
    fn wrong_password_server_down_and_a_silent_server_are_errors_within_the_timeout() {
        let pg = Postgres::start();
        let wrong = pg.url_with("app", "not-the-password");
        let _app = pg.with_password("app", "right-password");
        let (_silent, silent_port) = silent_listener();
        for (url, cause) in [
            (wrong.clone(), "PostgreSQL refused the login at 127.0.0.1"),
            (
                format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port()),
                "connection refused",
            ),
            (
                format!("postgres://postgres@127.0.0.1:{silent_port}/postgres"),
                "no answer within 1s",
            ),
        ] {
            let sb = Sandbox::new().env("ONCALL_POSTGRES_URL", &url);
            sb.write("blockers.yaml", BLOCKERS);
            let ran = sb.run(&[
                "run",
                "blockers.yaml",
                "--dry-run",
                "--output",
                "json",
                "--timeout",
                "1s",
            ]);
            let ready = observation(&ran.json(), "ready").clone();
            assert_eq!(ready["verdict"], "error", "{url}: {ready:#}");
            assert!(
                ready["reason"].as_str().unwrap().contains(cause),
                "{url}: {ready:#}"
            );
            assert!(ready["millis"].as_u64().unwrap() < 1500);
            assert!(
                !ran.stdout.contains("not-the-password"),
                "the password stays off the screen"
            );
            assert_eq!(ran.code, 3);
        }
    }

    #[test]
    fn redis_queue_nats_and_their_faults() {
        let redis = Redis::start();
        redis.seed_queue("benchmark_queue", 1234);
        let nats = Nats::start();
        let sb = Sandbox::new();
        sb.write(
            "stores.yaml",
            &format!(
                "id: stores\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: ping\n        redis_ping: {{ url: \"{r}\" }}\n      - id: queue\n        redis_list: {{ url: \"{r}\", key: benchmark_queue, first: 3 }}\n        warn_if: value > 1000\n      - id: memory\n        redis_memory: {{ url: \"{r}\" }}\n      - id: nats\n        nats: {{ url: \"{n}\", monitor: \"{m}\" }}\n      - id: redis_down\n        redis_ping: {{ url: \"redis://127.0.0.1:{c}\" }}\n      - id: nats_down\n        nats: {{ url: \"nats://127.0.0.1:{c}\" }}\n",
                r = redis.url,
                n = nats.url,
                m = nats.monitor_url,
                c = closed_port()
            ),
        );
        let report = sb
            .run(&["run", "stores.yaml", "--output", "json", "--timeout", "2s"])
            .json();
        let queue = observation(&report, "queue");
        assert_eq!(
            (&queue["value"], &queue["verdict"]),
            (&Value::from(1234), &Value::from("warn"))
        );
        assert_eq!(queue["table"]["rows"][0][1], "{\"job\":1,\"batch_size\":8}");
        assert_eq!(queue["table"]["rows"].as_array().unwrap().len(), 3);
        assert_eq!(observation(&report, "ping")["verdict"], "ok");
        assert!(observation(&report, "memory")["value"].as_f64().unwrap() > 0.0);
        let n = observation(&report, "nats");
        assert!(n["text"].as_str().unwrap().starts_with("NATS 2."), "{n:#}");
        assert!(
            n["text"].as_str().unwrap().ends_with("1 connections"),
            "{n:#}"
        );
        assert!(
            observation(&report, "redis_down")["reason"]
                .as_str()
                .unwrap()
                .contains("connection refused")
        );
        assert!(
            observation(&report, "nats_down")["reason"]
                .as_str()
                .unwrap()
                .starts_with("cannot reach NATS at nats://127.0.0.1:")
        );
    }

    #[test]
    fn alerts_open_their_runbook_and_the_silence_exists_only_when_approved() {
        let am = Alertmanager::start();
        am.post_alert(
            "PostgresSlowQueries",
            &[("severity", "warning"), ("database", "vid_bench")],
        );
        let sb = Sandbox::new().env("ONCALL_ALERTMANAGER_URL", &am.url);
        let listed = sb.run(&["alerts", "--output", "json"]).json();
        assert_eq!(listed[0]["alert"], "PostgresSlowQueries");
        assert_eq!(
            listed[0]["runbook"], "db-performance",
            "the bundled runbook that lists it"
        );
        let text = sb.run(&["alerts"]);
        assert!(
            text.stdout
                .lines()
                .any(|l| l.contains("PostgresSlowQueries") && l.contains("db-performance")),
            "{}",
            text.stdout
        );

        // Only the acknowledge step, against a database that is not there.
        let args = [
            "run",
            "--alert",
            "PostgresSlowQueries",
            "--postgres-url",
            "postgres://postgres@127.0.0.1:9/x",
            "--max-wait",
            "1s",
        ];
        let mut dry: Vec<&str> = args.to_vec();
        dry.extend(["--dry-run", "--output", "json"]);
        let report = sb.run(&dry).json();
        assert_eq!(report["runbook"], "db-performance");
        assert_eq!(
            report["params"]["database"], "vid_bench",
            "filled from the alert's label"
        );
        assert_eq!(
            am.silences().as_array().unwrap().len(),
            0,
            "a dry run creates no silence"
        );

        let mut yes: Vec<&str> = args.to_vec();
        yes.push("--yes");
        sb.run(&yes);
        let silences = am.silences();
        let silence = silences
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["matchers"][0]["value"] == "PostgresSlowQueries")
            .expect("the silence exists");
        assert_eq!(silence["createdBy"], "tester");
        let incident = sb
            .incidents()
            .pop()
            .unwrap()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            silence["comment"].as_str().unwrap().contains(&incident),
            "{silence:#}"
        );
        assert_eq!(silence["matchers"][0]["value"], "PostgresSlowQueries");
        // The resolve step expired it again, on approval.
        let timeline = sb.timeline();
        let expired = events(&timeline, "action_finished")
            .into_iter()
            .find(|e| e["action"] == "expire_acknowledgement")
            .cloned();
        assert_eq!(expired.expect("expired")["ok"], true);
        assert!(
            am.silences()
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"]["state"] == "expired")
        );
    }
}

#[test]
fn the_gpu_oom_runbook_finds_the_full_gpu_and_offers_to_end_its_process() {
    let mut victim = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let sb = Sandbox::new()
        .env(support::nvml::MODE_ENV, "two_gpus")
        .env(support::nvml::PIDS_ENV, &victim.id().to_string())
        .env(
            "ONCALL_NVML_LIBRARY",
            support::nvml::fake_nvml_lib().to_str().unwrap(),
        );
    let report = sb
        .run(&[
            "run",
            "gpu-oom",
            "--dry-run",
            "--output",
            "json",
            "--timeout",
            "2s",
            "--max-wait",
            "1s",
        ])
        .json();
    let gpus = observation(&report, "gpus");
    assert_eq!(gpus["verdict"], "fail", "{gpus:#}");
    assert_eq!(gpus["table"]["verdicts"][0], "fail", "GPU 0 at 99%");
    let procs = observation(&report, "gpu_procs");
    assert_eq!(procs["table"]["rows"][0][1], victim.id());
    let end = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap().clone())
        .find(|a| a["id"] == "end_gpu_process")
        .expect("offered");
    assert_eq!(end["decision"], "would_send", "{end:#}");
    assert!(
        end["plan"]["changes"][0]
            .as_str()
            .unwrap()
            .contains(&format!("pid {} (python3 train.py)", victim.id())),
        "{end:#}"
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "a dry run ends nothing"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
}
