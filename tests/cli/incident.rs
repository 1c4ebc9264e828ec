//! The incident record: notes, the timeline, resolving, and what a crash leaves behind.

use super::*;

/// Runs the three-actions fixture against a recording server: a dry run, or with `--yes`.
fn three_actions(sb: &Sandbox, api: &RecordingServer, flag: &str) -> String {
    let endpoint = format!("api={}", api.url);
    let fixture = fixture("three-actions.yaml");
    let ran = sb.run(&[
        "run",
        fixture.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        flag,
    ]);
    assert!(
        ran.code == 0 || ran.code == 1,
        "{}{}",
        ran.stdout,
        ran.stderr
    );
    let newest = sb.incidents().pop().unwrap();
    newest.file_stem().unwrap().to_string_lossy().to_string()
}

#[test]
fn note_timeline_and_resolve_work_on_the_latest_open_live_incident() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let dry = three_actions(&sb, &api, "--dry-run");
    assert!(dry.ends_with("-three-actions"), "{dry}");

    // A dry run rehearses: a note goes to it only when named.
    let refused = sb.run(&["note", "rolled back the config by hand"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no open live incident")
            && refused.stderr.contains("--incident ID"),
        "{}",
        refused.stderr
    );
    let named = sb.run(&["note", "--incident", &dry, "rehearsal went fine"]);
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert!(named.stderr.contains(&format!("recorded in {dry}")));

    let live = three_actions(&sb, &api, "--yes");
    assert_ne!(live, dry);
    // A later dry run does not take the live incident's notes either.
    let later_dry = three_actions(&sb, &api, "--dry-run");
    let note = sb.run(&["note", "rolled back the config by hand"]);
    assert_eq!(note.code, 0, "{}", note.stderr);
    assert!(
        note.stderr.contains(&format!(
            "recorded in {live} (the latest open live incident: three-actions, open, opened by tester at"
        )),
        "{}",
        note.stderr
    );
    let shown = sb.run(&["timeline", &live]);
    assert!(
        shown
            .stdout
            .contains("note by tester: rolled back the config by hand"),
        "{}",
        shown.stdout
    );
    // Who approved, beside how.
    assert!(
        shown.stdout.contains("approved by tester (--yes)"),
        "{}",
        shown.stdout
    );
    let json = sb.run(&["timeline", &live, "--output", "json"]).json();
    let events = json.as_array().unwrap();
    assert_eq!(events.last().unwrap()["event"], "note");
    let decided: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "action_decided")
        .collect();
    assert!(!decided.is_empty());
    assert!(decided.iter().all(|e| e["user"] == "tester"), "{decided:?}");
    let later = sb.run(&["timeline", &later_dry]);
    assert!(!later.stdout.contains("note by"), "{}", later.stdout);

    let resolved = sb.run(&["resolve", "config rolled back"]);
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    assert!(resolved.stderr.contains(&format!("recorded in {live}")));
    let again = sb.run(&["note", "too late"]);
    assert_eq!(
        again.code, 2,
        "a resolved incident takes no more notes by default"
    );
    assert!(
        again.stderr.contains("no open live incident"),
        "{}",
        again.stderr
    );
    // Resolved once: a second resolve says when and by whom, and records nothing.
    let before = sb.timeline().len();
    let twice = sb.run(&["resolve", "--incident", &live, "again"]);
    assert_eq!(twice.code, 2, "{}", twice.stderr);
    assert!(
        twice
            .stderr
            .contains(&format!("incident {live} was already resolved at "))
            && twice
                .stderr
                .contains("by tester (config rolled back): nothing recorded"),
        "{}",
        twice.stderr
    );
    assert_eq!(sb.timeline().len(), before);

    let path = sb.incidents()[0].clone();
    let mode = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "only its owner may read a timeline"
    );
}

/// The account's name, as the system knows it.
fn account() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn with_no_user_variables_the_record_names_the_account() {
    let sb = Sandbox::new().env("ONCALL_USER", "");
    let api = RecordingServer::start();
    let live = three_actions(&sb, &api, "--yes");
    let json = sb.run(&["timeline", &live, "--output", "json"]).json();
    let events = json.as_array().unwrap();
    let account = account();
    assert!(!account.is_empty() && account != "unknown");
    assert_eq!(events[0]["user"], account.as_str(), "{}", events[0]);
    let decided = events
        .iter()
        .find(|e| e["event"] == "action_decided")
        .unwrap();
    assert_eq!(decided["user"], account.as_str());
}

#[test]
fn incidents_shows_where_each_one_stands() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let drill = sb.run(&["drill", "error-budget", "--scenario", "all-clear"]);
    assert_eq!(drill.code, 0, "{}", drill.stderr);
    let dry = three_actions(&sb, &api, "--dry-run");
    let resolved = three_actions(&sb, &api, "--yes");
    assert_eq!(
        sb.run(&["resolve", "--incident", &resolved, "fixed"]).code,
        0
    );
    let open = three_actions(&sb, &api, "--yes");

    // A run in its wait is running; once SIGKILLed, it is interrupted.
    let waits = fixture("waits.yaml");
    let mut child = sb
        .command(&[
            "run",
            waits.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let path = support::wait_for_file_containing(
        || {
            sb.incidents()
                .into_iter()
                .find(|p| p.to_string_lossy().contains("-waits"))
        },
        "\"wait_poll\"",
        Duration::from_secs(20),
    );
    let waiting = path.file_stem().unwrap().to_string_lossy().to_string();
    let status = |id: &str| -> (String, String) {
        let listed = sb.run(&["incidents", "-o", "json"]).json();
        let found = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
            .clone();
        (
            found["status"].as_str().unwrap().to_string(),
            found["mode"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(status(&waiting), ("running".into(), "live".into()));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(status(&waiting), ("interrupted".into(), "live".into()));
    assert_eq!(status(&dry), ("open".into(), "dry-run".into()));
    assert_eq!(status(&resolved), ("resolved".into(), "live".into()));
    assert_eq!(status(&open), ("open".into(), "live".into()));
    let drill_id = sb
        .incidents()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .find(|id| id.ends_with("-error-budget"))
        .unwrap();
    assert_eq!(status(&drill_id), ("open".into(), "drill".into()));

    let listed = sb.run(&["incidents", "-o", "json"]).json();
    let killed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == waiting.as_str())
        .unwrap()
        .clone();
    assert_eq!(killed["opened_by"], "tester");
    assert_eq!(killed["last_step"]["id"], "watch");
    assert_eq!(killed["runbook"], "waits");

    // As a table, and only the live ones not resolved with --open.
    let table = sb.run(&["incidents"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&waiting))
        .unwrap();
    assert!(
        row.contains("interrupted")
            && row.contains("live")
            && row.contains("tester")
            && row.contains("watch"),
        "{row}"
    );
    let open_only = sb.run(&["incidents", "--open"]);
    let ids: Vec<&str> = open_only
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![open.as_str(), waiting.as_str()],
        "{}",
        open_only.stdout
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
        "--yes",
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

#[test]
fn an_escalation_deadline_that_passes_during_a_wait_is_said_and_recorded() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let runbook = std::fs::read_to_string(fixture("waits.yaml"))
        .unwrap()
        .replace(
            "severity: P3\n",
            "severity: P0\nescalation:\n  - { after: 2s, to: Primary on-call engineer }\n  - { after: 1h, to: Engineering manager }\n",
        );
    let path = sb.write("escalating.yaml", &runbook);
    let ran = sb.run(&[
        "run",
        path.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
        "--max-wait",
        "4s",
    ]);
    assert!(
        ran.stdout
            .contains("P0 response time passed: escalate to Primary on-call engineer"),
        "{}",
        ran.stdout
    );
    assert!(
        !ran.stderr.contains("Engineering manager: escalate"),
        "{}",
        ran.stderr
    );
    let timeline = support::read_timeline(&sb.incidents().pop().unwrap());
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let due = kinds
        .iter()
        .position(|k| *k == "escalation_due")
        .expect("an escalation_due event");
    let started = kinds.iter().position(|k| *k == "wait_started").unwrap();
    let finished = kinds.iter().position(|k| *k == "wait_finished").unwrap();
    assert!(
        started < due && due < finished,
        "during the wait: {kinds:?}"
    );
    assert_eq!(timeline[due]["to"], "Primary on-call engineer");
    assert_eq!(timeline[due]["severity"], "P0");
    assert_eq!(kinds.iter().filter(|k| **k == "escalation_due").count(), 1);
    let shown = sb.run(&["timeline"]);
    assert!(
        shown
            .stdout
            .contains("P0 response time passed: escalate to Primary on-call engineer")
    );
}

#[test]
fn a_status_update_falls_due_on_its_cadence_with_the_message_to_post() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let runbook = std::fs::read_to_string(fixture("waits.yaml"))
        .unwrap()
        .replace(
            "steps:\n",
            "updates: { every: 2s, message: status }\nmessages:\n  status: \"Still investigating: status check is {{ checks.status.verdict }}\"\nsteps:\n",
        )
        .replace(
            "    wait: {",
            "    messages: [status]\n    wait: {",
        );
    let path = sb.write("updating.yaml", &runbook);
    assert_eq!(sb.run(&["validate", path.to_str().unwrap()]).code, 0);
    let ran = sb.run(&[
        "run",
        path.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
        "--max-wait",
        "5s",
    ]);
    assert!(
        ran.stdout
            .contains("post the status update (message 'status')")
            && ran
                .stdout
                .contains("\nStill investigating: status check is"),
        "{}",
        ran.stdout
    );
    let timeline = support::read_timeline(&sb.incidents().pop().unwrap());
    let due: Vec<_> = timeline
        .iter()
        .filter(|e| e["event"] == "update_due")
        .collect();
    assert!(
        (1..=3).contains(&due.len()),
        "every 2s for about 5s: {due:?}"
    );
    assert_eq!(due[0]["message"], "status");
    assert!(
        due[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Still investigating: status check is"),
        "{}",
        due[0]
    );

    // A cadence naming a message the runbook does not have is refused where it stands.
    let broken = sb.write(
        "broken.yaml",
        &runbook.replace("message: status }", "message: stauts }"),
    );
    let refused = sb.run(&["validate", broken.to_str().unwrap()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stdout
            .contains("updates name message 'stauts', which is not under `messages:`"),
        "{}",
        refused.stdout
    );
}
