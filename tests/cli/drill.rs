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
