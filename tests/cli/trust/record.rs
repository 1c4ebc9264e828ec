//! The record: every writer appends, no file is followed through a symlink, a failed write is
//! said out loud, and what a server answers can neither break the timeline nor the terminal.

use super::{finish, runbook, spawn};
use crate::support::servers::EchoServer;
use crate::support::{Sandbox, events, read_timeline, wait_for_file_containing};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Waits until a file appears; each poll of its check is a write to the timeline.
const WAIT_FOR_FLAG: &str = r#"
id: wait-for-flag
title: Waits until a file appears
severity: P3
params:
  flag: { default: "flag" }
steps:
  - id: wait
    checks:
      - id: flag
        shell: { command: "test -e {{ params.flag }} && echo 1 || echo 0", number: true }
    wait: { check: flag, until: "value == 1", every: 100ms, timeout: 60s }
"#;

const QUICK: &str = r#"
id: quick
title: One quick check
severity: P3
steps:
  - id: look
    checks:
      - id: hello
        shell: { command: "echo hello" }
"#;

#[test]
fn notes_written_during_a_run_are_kept_whole_and_in_order() {
    let sb = Sandbox::new();
    runbook(&sb, "wait-for-flag", WAIT_FOR_FLAG);
    let flag = sb.work().join("flag");
    let param = format!("flag={}", flag.display());
    let run = spawn(&sb, &["run", "wait-for-flag", "-p", &param]);
    let timeline = wait_for_file_containing(
        || sb.incidents().pop(),
        "\"wait_poll\"",
        Duration::from_secs(30),
    );
    // A long note: on the old main the run's next event overwrote it and left its tail as a broken line.
    let long = format!("long note {}", "x".repeat(20_000));
    for text in ["first note", long.as_str(), "third note"] {
        let noted = sb.run(&["note", text]);
        assert_eq!(noted.code, 0, "{}", noted.stderr);
    }
    let resolved = sb.run(&["resolve", "fixed by hand"]);
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    std::fs::write(&flag, "").unwrap();
    let (code, _, stderr) = finish(run, Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");

    // Every line parses (read_timeline panics on one that does not), and all is there in order.
    let all = read_timeline(&timeline);
    let kinds: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        all.iter()
            .position(pred)
            .unwrap_or_else(|| panic!("missing event in {kinds:?}"))
    };
    let first = at(&|e| e["text"] == "first note");
    let second = at(&|e| e["text"] == long.as_str());
    let third = at(&|e| e["text"] == "third note");
    let resolved = at(&|e| e["event"] == "resolved");
    let waited = at(&|e| e["event"] == "wait_started");
    let finished = at(&|e| e["event"] == "run_finished");
    assert!(waited < first && first < second && second < third && third < resolved);
    assert!(resolved < finished, "{kinds:?}");
    assert!(
        all[resolved + 1..]
            .iter()
            .any(|e| e["event"] == "wait_poll"),
        "the run kept writing after the notes: {kinds:?}"
    );
    let shown = sb.run(&["timeline"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("note by tester: third note"));
}

#[test]
fn incident_files_are_never_followed_and_open_folders_are_tightened() {
    let sb = Sandbox::new();
    runbook(&sb, "quick", QUICK);
    assert_eq!(sb.run(&["run", "quick"]).code, 0);
    let incidents = sb.state().join("incidents");

    // A symlink planted at an incident's path: the file it points to is left alone.
    let victim = sb.write("victim.txt", "untouched\n");
    std::os::unix::fs::symlink(&victim, incidents.join("planted.jsonl")).unwrap();
    let noted = sb.run(&["note", "--incident", "planted", "hello"]);
    assert_eq!(noted.code, 2, "{}", noted.stderr);
    assert!(
        noted.stderr.contains("not a regular file"),
        "{}",
        noted.stderr
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    // A pipe does not make a writer or the incident list wait forever.
    let fifo = std::ffi::CString::new(incidents.join("pipe.jsonl").to_str().unwrap()).unwrap();
    // SAFETY: a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let noted = sb.run(&["note", "--incident", "pipe", "hello"]);
    assert_eq!(noted.code, 2, "{}", noted.stderr);
    assert!(
        noted.stderr.contains("not a regular file"),
        "{}",
        noted.stderr
    );
    let listed = sb.run(&["incidents"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("-quick"), "{}", listed.stdout);

    // Folders others can write are tightened before anything is written, and the engineer is told.
    for dir in [sb.state(), incidents.clone()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let noted = sb.run(&["note", "checked the folders"]);
    assert_eq!(noted.code, 0, "{}", noted.stderr);
    for dir in [sb.state(), incidents] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        assert!(
            noted
                .stderr
                .contains(&format!("others could write {}", dir.display())),
            "{}",
            noted.stderr
        );
    }
    let last = sb.timeline().pop().unwrap();
    assert_eq!(last["text"], "checked the folders");
}

#[test]
fn a_timeline_that_cannot_be_written_is_said_and_exits_5() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    runbook(&sb, "quick", QUICK);
    let mut cmd = sb.command(&["run", "quick"]);
    // The file size limit stands in for a full disk: writes past it fail (EFBIG).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 500,
                rlim_max: 500,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cannot write the timeline") && stderr.contains("incomplete"),
        "shown when it happens: {stderr}"
    );
    assert!(
        stdout.contains("the timeline is incomplete: cannot write the timeline"),
        "{stdout}"
    );
    assert!(stdout.contains("(INCOMPLETE"), "{stdout}");
}

#[test]
fn one_unreadable_line_never_stops_timeline_note_or_the_list() {
    let sb = Sandbox::new();
    runbook(&sb, "quick", QUICK);
    assert_eq!(sb.run(&["run", "quick"]).code, 0);
    let path = sb.incidents().pop().unwrap();
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("this is not json\n");
    text.push_str(&format!(
        "{{\"ts\":\"2026-11-29T03:00:00Z\",\"incident\":\"x\",\"event\":\"note\",\"text\":{deep},\"user\":\"x\"}}\n"
    ));
    text.push_str("{\"ts\":\"2026-11-29T03:00:00Z\",\"event\":\"no_such_event\"}\n");
    std::fs::write(&path, text).unwrap();

    let shown = sb.run(&["timeline"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("check hello ok"), "{}", shown.stdout);
    for line in [5, 6, 7] {
        let at = format!("{}:{line}:", path.display());
        assert!(shown.stderr.contains(&at), "{at} in {}", shown.stderr);
    }
    let noted = sb.run(&["note", "still writable"]);
    assert_eq!(noted.code, 0, "{}", noted.stderr);
    let shown = sb.run(&["timeline"]);
    assert!(shown.stdout.contains("note by tester: still writable"));
    let listed = sb.run(&["incidents"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("-quick"));
}

#[test]
fn a_monitored_server_cannot_poison_the_record_or_the_terminal() {
    // 126 levels: the answer parses (127 with its envelope), but stored whole inside an event
    // it would pass the 128 levels a JSON reader accepts, and the timeline could not be read.
    let deep = EchoServer::start(&format!("{}1{}", "{\"a\":".repeat(126), "}".repeat(126)));
    let text = EchoServer::start(&format!(
        r#"{{"title": "\u001b]0;owned\u0007\u001b[2J\u001b[31mred\u009b2J done", "big": "{}"}}"#,
        "y".repeat(300 * 1024)
    ));
    let sb = Sandbox::new();
    runbook(
        &sb,
        "poison",
        r#"
id: poison
title: A server that answers too much
severity: P3
endpoints:
  deep: {}
  text: {}
steps:
  - id: look
    checks:
      - id: deep
        http: { url: "{{ endpoints.deep }}/x", json: payload }
      - id: title
        http: { url: "{{ endpoints.text }}/x", json: payload.title }
      - id: big
        http: { url: "{{ endpoints.text }}/x", json: payload.big }
"#,
    );
    let deep_endpoint = format!("deep={}", deep.url);
    let text_endpoint = format!("text={}", text.url);
    let ran = sb.run(&[
        "run",
        "poison",
        "--endpoint",
        &deep_endpoint,
        "--endpoint",
        &text_endpoint,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stdout.contains('\u{1b}') && !ran.stdout.contains('\u{9b}'));

    let timeline = sb.timeline();
    let value = |check: &str| {
        events(&timeline, "check_finished")
            .into_iter()
            .find(|e| e["observation"]["check"] == check)
            .map(|e| e["observation"]["value"].clone())
            .unwrap()
    };
    assert!(
        value("deep")
            .to_string()
            .contains("[cut: nested deeper than 32 levels]"),
        "{}",
        value("deep")
    );
    let big = value("big");
    let big = big.as_str().unwrap();
    assert!(
        big.len() < 260 * 1024 && big.ends_with("more bytes]"),
        "{}",
        big.len()
    );
    // The file holds no raw control character a `cat` would obey.
    let raw = std::fs::read_to_string(sb.incidents().pop().unwrap()).unwrap();
    assert!(!raw.contains('\u{1b}') && !raw.contains('\u{9b}'));

    for format in ["text", "json"] {
        let shown = sb.run(&["timeline", "--output", format]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(
            !shown.stdout.contains('\u{1b}') && !shown.stdout.contains('\u{9b}'),
            "{format}"
        );
    }
    let shown = sb.run(&["timeline"]);
    assert!(
        shown.stdout.contains("red\u{FFFD}2J done"),
        "{}",
        shown.stdout
    );
    let noted = sb.run(&["note", "read it all"]);
    assert_eq!(noted.code, 0, "{}", noted.stderr);
}
