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
    // Room for the opening event and a little more: the first event is written, later ones fail.
    assert_eq!(sb.run(&["run", "quick"]).code, 0);
    let opening = std::fs::read_to_string(sb.incidents().pop().unwrap())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .len() as u64;
    let mut cmd = sb.command(&["run", "quick", "--new"]);
    // The file size limit stands in for a full disk: writes past it fail (EFBIG).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: opening + 100,
                rlim_max: opening + 100,
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

/// A tmpfs of a few pages mounted on a folder and filled to the last byte: a real full disk.
/// Unmounted when dropped, also when the test fails.
struct FullDisk(std::path::PathBuf);

impl FullDisk {
    fn mount(dir: &std::path::Path) -> FullDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount (the tests run as root, as scripts/test.sh does)");
        assert!(status.success(), "mounting a tmpfs needs root");
        let disk = FullDisk(dir.to_path_buf());
        std::fs::create_dir(dir.join("incidents")).unwrap();
        std::fs::set_permissions(
            dir.join("incidents"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        // Fill it: write until the file system says it is full.
        let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
        let chunk = [0u8; 1024];
        loop {
            match std::io::Write::write(&mut filler, &chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                    break;
                }
            }
        }
        disk
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_stops_the_run_before_anything_is_read_and_the_empty_incident_is_still_listed() {
    let sb = Sandbox::new();
    let api = crate::support::servers::RecordingServer::start();
    let book = format!(
        r#"
id: reads-and-writes
title: Reads, then writes
severity: P2
steps:
  - id: look
    checks:
      - id: health
        http: {{ url: "{url}/health" }}
  - id: act
    actions:
      - id: post
        http: {{ method: POST, url: "{url}/act" }}
"#,
        url = api.url
    );
    runbook(&sb, "reads-and-writes", &book);
    let _disk = FullDisk::mount(&sb.state());

    let out = sb.run(&["run", "reads-and-writes", "--yes"]);
    assert_eq!(out.code, 5, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the incident's first event could not be written")
            && out.stderr.contains("No space left on device")
            && out.stderr.contains("stopping before any check or action"),
        "{}",
        out.stderr
    );
    assert!(
        api.requests().is_empty(),
        "nothing read or sent: {:?}",
        api.requests()
    );

    // The empty timeline the run created is listed, as incomplete, in the table and in JSON.
    let listed = sb.run(&["incidents"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("-reads-and-writes"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(row.contains("timeline incomplete"), "{row}");
    assert!(
        listed
            .stderr
            .contains("timeline incomplete: no event could be read"),
        "{}",
        listed.stderr
    );
    let json = sb.run(&["incidents", "-o", "json"]).json();
    assert_eq!(json[0]["status"], "incomplete", "{json}");
    assert_eq!(json[0]["why"], "no event could be read", "{json}");
    let open = sb.run(&["incidents", "--open", "-o", "json"]).json();
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");
}

#[test]
fn a_symlinked_incidents_folder_is_refused_and_its_target_left_alone() {
    let sb = Sandbox::new();
    runbook(&sb, "quick", QUICK);
    let target = sb.work().join("elsewhere");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(sb.state()).unwrap();
    std::os::unix::fs::symlink(&target, sb.state().join("incidents")).unwrap();

    let ran = sb.run(&["run", "quick"]);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("refusing the state folder")
            && ran.stderr.contains("incidents")
            && ran.stderr.contains("it is a symlink"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stdout.contains("hello"),
        "no check ran: {}",
        ran.stdout
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the link's target is not touched");
    let noted = sb.run(&["note", "--incident", "x", "hello"]);
    assert_eq!(noted.code, 2, "{}", noted.stderr);
    assert!(noted.stderr.contains("it is a symlink"), "{}", noted.stderr);
    let listed = sb.run(&["incidents"]);
    assert!(
        listed.stderr.contains("it is a symlink"),
        "{}",
        listed.stderr
    );
}
