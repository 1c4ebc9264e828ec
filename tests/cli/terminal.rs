//! In a real pseudo-terminal: prompts, Ctrl-C at a prompt and during a wait.
use super::support::{Sandbox, events, fixture, pty, pty_exit_code};
use super::*;

#[test]
fn approve_skip_and_abort_are_each_recorded() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let mut s = pty(
        &sb,
        &[
            "run",
            fixture("three-actions.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
        ],
    );
    s.expect("First action? [y]es apply / [s]kip / [r]e-check / [a]bort run:")
        .unwrap();
    s.send_line("y").unwrap();
    s.expect("Second action? [y]es apply / [s]kip / [r]e-check / [a]bort run:")
        .unwrap();
    s.send_line("s").unwrap();
    s.expect("Third action? [y]es apply / [s]kip / [r]e-check / [a]bort run:")
        .unwrap();
    s.send_line("a").unwrap();
    assert_eq!(pty_exit_code(&mut s), 4);
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
    let mut s = pty(
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
    assert_eq!(pty_exit_code(&mut s), 130);
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
    let mut s = pty(
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
    assert_eq!(pty_exit_code(&mut s), 1, "a wait that did not hold exits 1");
    let timeline = sb.timeline();
    assert_eq!(events(&timeline, "wait_finished")[0]["outcome"], "stopped");
    assert_eq!(
        events(&timeline, "check_finished").last().unwrap()["observation"]["check"],
        "later"
    );
    assert!(api.requests().iter().any(|(_, p)| p == "/later"));
}

#[test]
fn recheck_at_a_prompt_runs_the_checks_again_before_asking_again() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let runbook = sb.write(
        "recheck.yaml",
        "id: recheck\ntitle: Re-check before deciding\nseverity: P2\nendpoints:\n  api: { default: \"http://127.0.0.1:9\" }\nsteps:\n  - id: fix\n    title: Fix it\n    checks:\n      - id: health\n        title: Gateway health\n        http: { url: \"{{ endpoints.api }}/health\" }\n    actions:\n      - id: restart\n        title: Restart the gateway\n        http: { method: POST, url: \"{{ endpoints.api }}/restart\" }\n",
    );
    let endpoint = format!("api={}", api.url);
    let mut s = pty(
        &sb,
        &["run", runbook.to_str().unwrap(), "--endpoint", &endpoint],
    );
    let prompt = "Restart the gateway? [y]es apply / [s]kip / [r]e-check / [a]bort run:";
    s.expect(prompt).unwrap();
    s.send_line("r").unwrap();
    s.expect("re-checking before deciding").unwrap();
    s.expect("Gateway health").unwrap();
    s.expect(prompt).unwrap();
    s.send_line("y").unwrap();
    assert_eq!(pty_exit_code(&mut s), 0);
    assert_eq!(
        api.requests(),
        vec![
            ("GET".to_string(), "/health".to_string()),
            ("GET".to_string(), "/health".to_string()),
            ("POST".to_string(), "/restart".to_string()),
        ],
        "the check ran twice, then the approved request was sent once"
    );
    let timeline = sb.timeline();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let rechecked = kinds.iter().position(|k| *k == "rechecked").unwrap();
    assert_eq!(
        kinds.iter().filter(|k| **k == "check_finished").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "action_planned").count(),
        2,
        "planned again after the re-check: {kinds:?}"
    );
    let decided = kinds.iter().position(|k| *k == "action_decided").unwrap();
    assert!(rechecked < decided, "{kinds:?}");
    assert_eq!(events(&timeline, "action_decided").len(), 1);
    assert_eq!(timeline[rechecked]["action"], "restart");
}
