//! The incident record: notes, the timeline, resolving, and what a crash leaves behind.

use super::*;

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
