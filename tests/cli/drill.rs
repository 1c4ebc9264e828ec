//! Drills: a recorded scenario, no infrastructure, nothing sent.

use super::*;
use crate::support::action;

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
    // Nothing to mitigate: only the acknowledgement is rehearsed, and its expiry at the end.
    assert!(
        clear.stdout.contains(
            "done:     acknowledge_alert: would apply (drill): not sent\n            expire_acknowledgement: would apply (drill): not sent\n  messages:"
        ),
        "{}",
        clear.stdout
    );
    let missing = sb.run(&["drill", "error-budget", "--scenario", "nope"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("its scenarios: all-clear, db-pool-exhausted, driver-failure, gpu-saturation, gpu-saturation-relieved, nats-outage, queue-overflow"),
        "{}",
        missing.stderr
    );
}

/// A drill's wait polls as long as its scenario has a new reading to replay: once the last one is
/// replayed unmet, every later poll would read the same, and the wait ends as it would, unmet.
#[test]
fn a_drills_wait_ends_when_its_scenario_has_nothing_new_to_replay() {
    let sb = Sandbox::new();
    sb.write(
        "runbooks/slow-wait.yaml",
        r#"
id: slow-wait
title: A wait of ten minutes
severity: P3
steps:
  - id: watch
    checks:
      - id: level
        prometheus: level
    wait: { check: level, until: value < 1, every: 5s, timeout: 10m }
"#,
    );
    for (name, values) in [("never", "[9, 8, 7, 6]"), ("recovers", "[9, 8, 0.5, 0.2]")] {
        sb.write(
            &format!("runbooks/scenarios/slow-wait/{name}.yaml"),
            &format!("title: {name}\nchecks:\n  level: {{ values: {values}, millis: 10 }}\n"),
        );
    }
    let never = sb.run(&["drill", "slow-wait", "--scenario", "never"]);
    assert_eq!(never.code, 1, "{}{}", never.stdout, never.stderr);
    let timeline = sb.timeline();
    // The step's check read 9; the wait replays 8, 7, 6 and ends: not the 120 polls of the
    // real wait, each repeating 6.
    assert_eq!(events(&timeline, "wait_poll").len(), 3);
    assert_eq!(
        events(&timeline, "wait_finished")[0]["outcome"],
        "timed_out"
    );
    assert!(
        never.stdout.contains("polled 3×: 8 → 6, timed out"),
        "{}",
        never.stdout
    );

    let recovers = sb.run(&["drill", "slow-wait", "--scenario", "recovers"]);
    assert_eq!(recovers.code, 0, "{}{}", recovers.stdout, recovers.stderr);
    let timeline = sb.timeline();
    assert_eq!(events(&timeline, "wait_poll").len(), 2);
    assert_eq!(events(&timeline, "wait_finished")[0]["outcome"], "met");
}

#[test]
fn a_revert_is_offered_only_once_the_verification_it_waits_for_was_met() {
    let sb = Sandbox::new();
    let reverts = [
        "scale_back_gpu_workers",
        "scale_back_asr_workers",
        "scale_back_api_gateway",
        "expire_acknowledgement",
    ];
    // The error rate stays at 3.9%: the scale-up is rehearsed, nothing is scaled back.
    let failed = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "gpu-saturation",
        "--yes",
        "-o",
        "json",
    ]);
    let report = failed.json();
    assert_eq!(
        action(&report, "scale_gpu_workers")["decision"],
        "rehearsed"
    );
    for id in reverts.iter().chain(&["resume_uploads"]) {
        let held = action(&report, id);
        assert_eq!(held["decision"], "not_offered", "{id}: {held}");
        assert_eq!(held["unverified"], "verify-error-rate", "{id}: {held}");
        assert_eq!(
            held["reason"],
            "verification verify-error-rate was not met: its wait timed out"
        );
        assert!(held["plan"].is_null(), "{id}: {held}");
    }
    let timeline = sb.timeline();
    let held: Vec<&str> = events(&timeline, "action_not_offered")
        .iter()
        .filter(|e| e["unverified"] == "verify-error-rate")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(held.len(), 5, "{held:?}");
    // The terminal says why.
    let screen = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "gpu-saturation",
        "--yes",
    ]);
    assert!(
        screen.stdout.contains(
            "action scale_back_gpu_workers: verification verify-error-rate was not met: its wait timed out"
        ),
        "{}",
        screen.stdout
    );

    // The error rate comes back under budget: the same reverts are offered.
    let met = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "gpu-saturation-relieved",
        "--yes",
        "-o",
        "json",
    ]);
    let report = met.json();
    for id in reverts {
        let offered = action(&report, id);
        assert_eq!(offered["decision"], "rehearsed", "{id}: {offered}");
        assert!(offered["unverified"].is_null(), "{id}: {offered}");
    }
    // Back to the level before the incident.
    assert_eq!(
        action(&report, "scale_back_gpu_workers")["plan"]["body"]["spec"]["replicas"],
        5
    );

    // gpu-oom: the batch size is reduced, and put back only when GPU memory came back down.
    for (scenario, restored) in [("leaking-release", false), ("oom-spike", true)] {
        let ran = sb.run(&[
            "drill",
            "gpu-oom",
            "--scenario",
            scenario,
            "--yes",
            "-o",
            "json",
        ]);
        let report = ran.json();
        assert_eq!(
            action(&report, "reduce_batch_size")["decision"],
            "rehearsed"
        );
        let restore = action(&report, "restore_batch_size");
        if restored {
            assert_eq!(restore["decision"], "rehearsed", "{scenario}: {restore}");
        } else {
            assert_eq!(restore["decision"], "not_offered", "{scenario}: {restore}");
            assert_eq!(restore["unverified"], "monitor", "{scenario}: {restore}");
        }
    }
}

/// The playbook's "Secondary if no response": an escalation `unless: acknowledged` is not said
/// once the alert was acknowledged (rehearsed, in a drill), and the timeline says why; without
/// the acknowledgement it is said. An `if:` on the severity that does not hold withholds its own.
/// The deadline is 1s; the drill's wait replays 30 readings at its pace (150ms each), so the
/// deadline falls due while the run is still going.
#[test]
fn an_acknowledged_incident_does_not_escalate_for_no_response() {
    let sb = Sandbox::new();
    sb.write(
        "runbooks/no-response.yaml",
        r#"
id: no-response
title: An alert someone may acknowledge
severity: P1
params:
  ack: { default: true, help: whether the engineer acknowledges }
escalation:
  - { after: 1s, to: Secondary on-call engineer, unless: acknowledged }
  - { after: 1s, to: CTO, if: severity == P0 }
steps:
  - id: acknowledge
    actions:
      - id: ack_alert
        when: params.ack
        silence: { matchers: { alertname: Down }, duration: 1h, comment: acknowledged }
  - id: watch
    checks:
      - id: level
        prometheus: level
    wait: { check: level, until: value < 1, every: 5s, timeout: 10m }
"#,
    );
    let values: Vec<String> = (0..30).map(|i| (90 - i).to_string()).collect();
    sb.write(
        "runbooks/scenarios/no-response/slow.yaml",
        &format!(
            "title: slow\nchecks:\n  level: {{ values: [{}], millis: 10 }}\n",
            values.join(", ")
        ),
    );

    let acked = sb.run(&["drill", "no-response", "--scenario", "slow", "--yes"]);
    assert_eq!(acked.code, 1, "{}{}", acked.stdout, acked.stderr);
    let timeline = sb.timeline();
    assert!(
        events(&timeline, "escalation_due").is_empty(),
        "{:#?}",
        events(&timeline, "escalation_due")
    );
    let withheld = events(&timeline, "escalation_withheld");
    let secondary = withheld
        .iter()
        .find(|e| e["to"] == "Secondary on-call engineer")
        .expect("the secondary's escalation withheld");
    let why = secondary["why"].as_str().unwrap();
    assert!(
        why.starts_with("acknowledged at ") && why.ends_with(" (ack_alert)"),
        "{why}"
    );
    let cto = withheld
        .iter()
        .find(|e| e["to"] == "CTO")
        .expect("the CTO's withheld");
    assert_eq!(cto["why"], "only if severity == P0, and the severity is P1");
    assert!(
        acked
            .stdout
            .contains("no escalation to Secondary on-call engineer: acknowledged at"),
        "{}",
        acked.stdout
    );
    assert!(
        !acked.stdout.contains("escalate to Secondary"),
        "{}",
        acked.stdout
    );
    let shown = sb.run(&["timeline"]);
    assert!(
        shown
            .stdout
            .contains("no escalation to Secondary on-call engineer: acknowledged at"),
        "{}",
        shown.stdout
    );

    // Nobody acknowledged: the secondary is called.
    let silent = sb.run(&[
        "drill",
        "no-response",
        "--scenario",
        "slow",
        "--yes",
        "-p",
        "ack=false",
    ]);
    assert_eq!(silent.code, 1, "{}{}", silent.stdout, silent.stderr);
    let timeline = sb.timeline();
    let due = events(&timeline, "escalation_due");
    assert_eq!(due.len(), 1, "{due:#?}");
    assert_eq!(due[0]["to"], "Secondary on-call engineer");
    assert!(
        silent
            .stdout
            .contains("P1 response time passed: escalate to Secondary on-call engineer"),
        "{}",
        silent.stdout
    );
    let withheld = events(&timeline, "escalation_withheld");
    assert_eq!(withheld.len(), 1, "{withheld:#?}");
    assert_eq!(withheld[0]["to"], "CTO");
    // The header names each escalation's condition.
    assert!(
        silent
            .stdout
            .contains("Secondary on-call engineer (unless acknowledged)"),
        "{}",
        silent.stdout
    );
}

#[test]
fn scenario_record_takes_the_latest_live_incident_its_runbook_file_and_names_a_missing_folder() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.work().join("backlog.yaml"),
        "id: backlog-file\ntitle: A backlog\nseverity: P2\nsteps:\n  - id: look\n    title: Look\n    checks:\n      - id: backlog\n        shell: { command: \"echo 9\", number: true }\n        fail_if: value > 5\n",
    )
    .unwrap();
    let live = sb.run(&["run", "./backlog.yaml", "-o", "json"]);
    assert_eq!(live.code, 1, "{}", live.stderr);
    let live_id = live.json()["incident"].as_str().unwrap().to_string();
    // A rehearsal after it: not what `record` takes by default.
    let dry = sb.run(&["run", "./backlog.yaml", "--dry-run", "-o", "json"]);
    let dry_id = dry.json()["incident"].as_str().unwrap().to_string();
    assert_ne!(dry_id, live_id);

    // A folder that is not there is named, with what to do; nothing is written.
    let missing = sb.run(&["scenario", "record", "--to", "drills/backlog/last.yaml"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(
            "the folder drills/backlog does not exist; create it (mkdir -p drills/backlog)"
        ) && !missing.stderr.contains("os error"),
        "{}",
        missing.stderr
    );

    // No id: the live incident, with the runbook from its file; the drill replays it.
    let recorded = sb.run(&["scenario", "record", "--to", "last.yaml"]);
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    let file = std::fs::canonicalize(sb.work().join("backlog.yaml")).unwrap();
    assert!(
        recorded.stderr.contains(&format!(
            "of incident {live_id} in last.yaml; replay it: oncall drill {} --scenario last.yaml",
            file.display()
        )),
        "{}",
        recorded.stderr
    );
    let drill = sb.run(&[
        "drill",
        file.to_str().unwrap(),
        "--scenario",
        "last.yaml",
        "--yes",
        "-o",
        "json",
    ]);
    let replay = drill.json();
    assert_eq!(replay["mode"], "drill", "{}", drill.stderr);
    assert_eq!(observation(&replay, "backlog")["verdict"], "fail");
    assert_eq!(observation(&replay, "backlog")["value"], 9.0);

    // Named, a dry run is recorded too.
    let named = sb.run(&["scenario", "record", &dry_id]);
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert!(
        named.stdout.contains(&format!("Incident {dry_id}")),
        "{}",
        named.stdout
    );
}
