//! Drills: a recorded scenario, no infrastructure, nothing sent.

use super::*;

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
            .contains("its scenarios: all-clear, db-pool-exhausted, driver-failure, gpu-saturation, nats-outage, queue-overflow"),
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
