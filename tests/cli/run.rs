//! Runs against the real systems: verdicts, mitigations, dry runs, unreachable backends, shell
//! checks and actions, conditions, interruptions.

use super::*;

#[test]
fn error_budget_reports_the_error_rate_verdict_and_rows_from_prometheus() {
    let prom = Prometheus::start();
    let api = RecordingServer::start();
    let kube = kubernetes::video_cluster();
    // A healthy worker set, so nothing but the thresholds decides the verdicts.
    assert!(kube.remove("/api/v1/namespaces/video-processing/pods/gpu-worker-b"));
    let sb = kubernetes::sandbox(&kube);
    // A budget of 5% keeps the 3% error rate under it, so the verification wait holds at once.
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
        ],
    );
    let ran = sb.run(&strs(&args));
    let report = ran.json();
    assert_eq!(observation(&report, "error_rate")["verdict"], "fail");
    assert_eq!(observation(&report, "queue_depth")["verdict"], "fail");
    // The alert's 24h window (the data covers two hours of it) and when errors started.
    let day = observation(&report, "error_rate_24h");
    assert_eq!(day["verdict"], "fail", "{day:#}");
    assert!(
        (day["value"].as_f64().unwrap() - 3.0).abs() < 0.01,
        "{day:#}"
    );
    let started = observation(&report, "errors_started");
    let ago = started["value"].as_f64().unwrap();
    assert!((105.0..=121.0).contains(&ago), "{started:#}");
    // gpu_oom is a third of the errors: not "GPU issues" at the 60% share.
    let gpu = observation(&report, "gpu_error_share");
    assert!(
        (gpu["value"].as_f64().unwrap() - 100.0 / 3.0).abs() < 0.1,
        "{gpu:#}"
    );
    let skipped = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "mitigate-gpu")
        .expect("mitigate-gpu in the report");
    assert_eq!(skipped["status"], "skipped", "{skipped:#}");
    // Recent changes: the fake cluster's deployments own no ReplicaSet, and it has no events.
    assert_eq!(observation(&report, "rollouts_gpu_worker")["value"], 0);
    assert_eq!(observation(&report, "warning_events")["verdict"], "ok");
    // Thresholds apply per GPU: 97% and 93% are both over 90%.
    let gpus = observation(&report, "gpu_utilization");
    assert_eq!(
        gpus["table"]["verdicts"],
        serde_json::json!(["fail", "fail"]),
        "{gpus:#}"
    );
    assert!(
        gpus["reason"]
            .as_str()
            .unwrap()
            .ends_with(", in 2 of 2 rows"),
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
fn a_backend_that_does_not_answer_is_said_once_with_what_to_check() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    // A password in the URL: masked wherever the system is named.
    let with_password = closed.replace("http://", "http://admin:hunter2secret@");
    let api = RecordingServer::start();
    // No kubeconfig either: the cluster cannot be used.
    let sb = Sandbox::new().env("COLUMNS", "120");
    let ran = sb.run(&strs(&error_budget_args(
        &with_password,
        &api.url,
        &["--dry-run"],
    )));
    assert!(!ran.stdout.contains("hunter2secret"), "{}", ran.stdout);
    let timeline = serde_json::to_string(&sb.timeline()).unwrap();
    assert!(
        !timeline.contains("hunter2secret"),
        "the timeline keeps it masked"
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    let said = format!(
        "Prometheus at {closed} is unreachable: connection refused; check --prometheus-url"
    );
    assert_eq!(ran.stdout.matches(&said).count(), 1, "{}", ran.stdout);
    assert_eq!(
        ran.stdout
            .matches("The Kubernetes API cannot be used: ")
            .count(),
        1,
        "{}",
        ran.stdout
    );
    let rows: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.contains(" error ") && l.contains(" ms "))
        .collect();
    assert!(rows.len() >= 8, "{}", ran.stdout);
    for row in &rows {
        assert!(row.ends_with("unreachable (said above)"), "{row}");
    }
    // A step whose condition reads a check that could not be measured says so.
    assert!(
        ran.stdout
            .contains("skipped gpu_utilization could not be measured (cannot reach"),
        "{}",
        ran.stdout
    );
    assert!(
        !ran.stdout
            .contains("condition not met: checks.gpu_utilization"),
        "{}",
        ran.stdout
    );

    let report = sb
        .run(&strs(&error_budget_args(
            &with_password,
            &api.url,
            &["--dry-run", "--new", "-o", "json"],
        )))
        .json();
    let rate = observation(&report, "error_rate");
    assert_eq!(rate["no_answer"]["system"], closed.as_str(), "{rate:#}");
    assert_eq!(rate["no_answer"]["cause"], "connection refused", "{rate:#}");
    assert_eq!(
        observation(&report, "api_gateway_health")["no_answer"],
        Value::Null,
        "the gateway answered"
    );
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
            .starts_with("rate could not be measured (cannot reach http://127.0.0.1:"),
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
fn a_dry_run_polls_a_wait_once_and_goes_on_and_a_drill_names_the_runbooks_wait() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let waits = fixture("waits.yaml");
    let ran = sb.run(&["run", waits.to_str().unwrap(), "-e", &endpoint, "--dry-run"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("would wait for value == 999 (up to 5m); now 200 (dry run: nothing was sent, so it goes on)"),
        "{}",
        ran.stdout
    );
    let timeline = sb.timeline();
    assert_eq!(
        events(&timeline, "wait_poll").len(),
        1,
        "one poll, not five minutes of them"
    );
    assert_eq!(
        events(&timeline, "wait_finished")[0]["outcome"],
        "not_waited"
    );
    assert_eq!(
        events(&timeline, "check_finished").len(),
        2,
        "the run went on to the next step"
    );

    let sb = Sandbox::new();
    let drill = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "queue-overflow",
        "--yes",
    ]);
    assert_eq!(drill.code, 1, "{}", drill.stderr);
    let timeline = sb.timeline();
    let started = &events(&timeline, "wait_started")[0];
    assert_eq!(started["runbook_timeout_ms"], 30 * 60 * 1000, "{started}");
}

#[test]
fn a_prometheus_range_query_says_when_a_condition_first_held() {
    let prom = Prometheus::start();
    let sb = Sandbox::new();
    // The backfilled data: a steady 3% error rate over the last two hours, and nothing before.
    sb.write(
        "started.yaml",
        "id: started\ntitle: When did errors start?\nseverity: P3\nparams:\n  budget_pct: { default: 1 }\nsteps:\n  - id: s\n    checks:\n      - id: started\n        prometheus_range:\n          query: sum(rate(video_processing_errors_total[5m])) / sum(rate(video_processing_total[5m])) * 100 > {{ params.budget_pct }}\n          since: 24h\n          step: 5m\n      - id: by_type\n        prometheus_range: { query: 'sum by (error_type) (rate(video_processing_errors_total[5m]))', since: 3h, step: 1m }\n      - id: never\n        prometheus_range: { query: 'sum(rate(video_processing_errors_total[5m])) / sum(rate(video_processing_total[5m])) * 100 > 50' }\n",
    );
    let ran = sb.run(&[
        "run",
        "started.yaml",
        "--prometheus-url",
        &prom.url,
        "--output",
        "json",
    ]);
    let report = ran.json();
    let started = observation(&report, "started");
    assert_eq!(started["verdict"], "ok", "{started:#}");
    let ago = started["value"].as_f64().expect("minutes ago");
    assert!(
        (105.0..=121.0).contains(&ago),
        "the data begins two hours ago, the first 5m rate a step or two later: {started:#}"
    );
    let text = started["text"].as_str().unwrap();
    assert!(
        text.starts_with("first at ") && text.contains(&format!("({ago} min ago), last at ")),
        "{text}"
    );
    let row = &started["table"]["rows"][0];
    assert!(row[2].as_u64().unwrap() >= 20, "a point every 5m: {row}");
    assert!((row[3].as_f64().unwrap() - 3.0).abs() < 0.01, "max {row}");

    let by_type = observation(&report, "by_type");
    assert_eq!(
        by_type["table"]["columns"],
        serde_json::json!(["error_type", "first", "last", "points", "max", "value"])
    );
    assert_eq!(by_type["table"]["rows"].as_array().unwrap().len(), 2);

    let never = observation(&report, "never");
    assert_eq!(never["verdict"], "warn");
    assert_eq!(
        never["reason"],
        "no data: the query had no point in the range"
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[test]
fn a_range_query_of_too_many_points_or_bad_promql_does_not_validate() {
    let sb = Sandbox::new();
    sb.write(
        "bad-range.yaml",
        "id: bad-range\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: fine_grained\n        prometheus_range: { query: up, since: 30d, step: 1m }\n      - id: broken\n        prometheus_range: { query: 'sum(rate(x[5m]' }\n",
    );
    let ran = sb.run(&["validate", "bad-range.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    let out = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        out.contains("43200 points per series: Prometheus answers at most 11000"),
        "{out}"
    );
    assert!(out.contains("invalid PromQL"), "{out}");
}
