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
    // The database cannot be read, so the verify wait is never met: the resolve step does not
    // expire the silence (the incident is not over), and says why.
    let timeline = sb.timeline();
    let held = events(&timeline, "action_not_offered")
        .into_iter()
        .find(|e| e["action"] == "expire_acknowledgement")
        .cloned()
        .expect("held back");
    assert_eq!(held["unverified"], "verify");
    assert_eq!(
        held["reason"],
        "verification verify was not met: its wait timed out"
    );
    assert!(
        events(&timeline, "action_started")
            .iter()
            .all(|e| e["action"] != "expire_acknowledgement")
    );
    assert!(
        am.silences()
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"]["state"] == "active")
    );
}

#[test]
fn alerts_list_the_most_severe_first_and_fit_the_width() {
    let am = Alertmanager::start();
    am.post_alert("DiskFillingUp", &[("severity", "info")]);
    am.post_alert("PostgresSlowQueries", &[("severity", "warning")]);
    am.post_alert(
        "VideoProcessingErrorBudgetExhausted",
        &[("severity", "critical")],
    );
    let sb = Sandbox::new()
        .env("ONCALL_ALERTMANAGER_URL", &am.url)
        .env("COLUMNS", "70");
    let listed = sb.run(&["alerts", "--output", "json"]).json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "VideoProcessingErrorBudgetExhausted",
            "PostgresSlowQueries",
            "DiskFillingUp"
        ]
    );
    let text = sb.run(&["alerts"]).stdout;
    for line in text.lines() {
        assert!(
            line.chars().count() <= 70,
            "wider than COLUMNS=70: {line:?}\n{text}"
        );
    }
    assert!(
        text.contains("VideoProcessingErrorBudgetExhausted"),
        "the alert's name is whole: {text}"
    );
}

#[test]
fn alerts_with_alertmanager_down_exit_3_as_the_readme_says() {
    let port = closed_port();
    let sb = Sandbox::new().env(
        "ONCALL_ALERTMANAGER_URL",
        &format!("http://127.0.0.1:{port}"),
    );
    let ran = sb.run(&["alerts"]);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(ran.stderr.contains("connection refused"), "{}", ran.stderr);
}

#[test]
fn the_acknowledgement_silences_the_alert_that_opened_the_run() {
    let am = Alertmanager::start();
    am.post_alert("PostgresTooManyConnections", &[("severity", "warning")]);
    let sb = Sandbox::new().env("ONCALL_ALERTMANAGER_URL", &am.url);
    let ran = sb.run(&[
        "run",
        "--alert",
        "PostgresTooManyConnections",
        "--postgres-url",
        "postgres://postgres@127.0.0.1:9/x",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert!(
        ran.stderr.contains(
            "opened from alert PostgresTooManyConnections {severity=warning} firing since"
        ),
        "the header names the alert: {}",
        ran.stderr
    );
    let report = ran.json();
    let acknowledge = report["steps"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "acknowledge_alert")
        .cloned()
        .expect("the acknowledgement is planned");
    assert_eq!(
        acknowledge["plan"]["body"]["matchers"][0]["value"], "PostgresTooManyConnections",
        "{acknowledge:#}"
    );
    assert!(
        acknowledge["plan"]["changes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "no active silence has these matchers now"
            )),
        "{acknowledge:#}"
    );

    // Someone acknowledged it meanwhile: the plan reads their silence (current → new).
    let mut theirs = acknowledge["plan"]["body"].clone();
    theirs["createdBy"] = serde_json::json!("alice");
    let (code, body) = am
        .request("POST", "/api/v2/silences", Some(&theirs.to_string()))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let again = sb.run(&[
        "run",
        "--alert",
        "PostgresTooManyConnections",
        "--new",
        "--postgres-url",
        "postgres://postgres@127.0.0.1:9/x",
        "--dry-run",
    ]);
    assert!(
        again
            .stdout
            .contains(&format!("already silenced by {id} (by alice) until")),
        "{}",
        again.stdout
    );
}

#[test]
fn an_acknowledged_alert_is_listed_with_its_incident_and_still_opens_its_runbook() {
    let am = Alertmanager::start();
    am.post_alert("PostgresSlowQueries", &[("severity", "warning")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let silence = serde_json::json!({
        "matchers": [{ "name": "alertname", "value": "PostgresSlowQueries", "isRegex": false, "isEqual": true }],
        "startsAt": super::support::alertmanager::rfc3339(now),
        "endsAt": super::support::alertmanager::rfc3339(now + 3600),
        "createdBy": "alice",
        "comment": "oncall incident 20261122-0826-db-performance: investigating",
    });
    let (code, body) = am
        .request("POST", "/api/v2/silences", Some(&silence.to_string()))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    // Alertmanager marks the alert silenced on its next pass over the silences.
    let sb = Sandbox::new().env("ONCALL_ALERTMANAGER_URL", &am.url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let listed = loop {
        let listed = sb.run(&["alerts", "--output", "json"]).json();
        if !listed[0]["acknowledged"].is_null() || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(listed[0]["alert"], "PostgresSlowQueries", "{listed:#}");
    assert_eq!(
        listed[0]["acknowledged"]["incident"], "20261122-0826-db-performance",
        "{listed:#}"
    );
    let text = sb.run(&["alerts"]).stdout;
    assert!(text.contains("by 20261122-0826-db-performance"), "{text}");
    let opened = sb.run(&[
        "run",
        "--alert",
        "PostgresSlowQueries",
        "--postgres-url",
        "postgres://postgres@127.0.0.1:9/x",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(
        opened.json()["runbook"],
        "db-performance",
        "{}",
        opened.stderr
    );
}

#[test]
fn the_escalation_clock_of_a_run_opened_from_an_alert_starts_when_the_alert_fired() {
    let am = Alertmanager::start();
    // Firing for 20 minutes: the 15-minute deadline of a P0 passed before the run opened.
    am.post_alert_started("LongFiring", &[("severity", "critical")], 20 * 60);
    let sb = Sandbox::new().env("ONCALL_ALERTMANAGER_URL", &am.url);
    let marker = sb.root.join("marker");
    let fixture = super::support::fixture("escalate-alert.yaml");
    let param = format!("marker={}", marker.display());
    let child = sb
        .command(&[
            "run",
            fixture.to_str().unwrap(),
            "--alert",
            "LongFiring",
            "-p",
            &param,
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Said at once, while the run still waits: not after 15 minutes of it.
    let path = super::support::wait_for_file_containing(
        || sb.incidents().pop(),
        "\"escalation_due\"",
        Duration::from_secs(30),
    );
    std::fs::write(&marker, "1").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let timeline = super::support::read_timeline(&path);
    let opened = &events(&timeline, "incident_opened")[0];
    let started: jiff::Timestamp = opened["alert"]["starts_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let due = events(&timeline, "escalation_due");
    assert_eq!(due.len(), 1, "only the 15-minute one has passed: {due:?}");
    assert_eq!(due[0]["to"], "Primary on-call engineer");
    let at: jiff::Timestamp = due[0]["due"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, started + jiff::SignedDuration::from_mins(15));
    // The 30-minute one counts from the alert too: ten minutes from now, not thirty.
    let second: jiff::Timestamp = opened["escalation"][1]["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(second, started + jiff::SignedDuration::from_mins(30));
    assert!(
        stdout.contains("P0 response time passed: escalate to Primary on-call engineer"),
        "{stdout}"
    );
}
