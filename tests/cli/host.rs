//! Host checks and the cleanup action, on temporary folders.
use super::support::{Sandbox, events, observation};
use super::*;

fn touch_days_ago(path: &std::path::Path, days: u32) {
    let status = std::process::Command::new("touch")
        .arg("-d")
        .arg(format!("{days} days ago"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn checksums_find_a_mismatch_and_cleanup_deletes_exactly_what_it_planned() {
    let sb = Sandbox::new();
    let models = sb.work().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("a.bin"), b"weights a").unwrap();
    std::fs::write(models.join("b.bin"), b"weights b, corrupted").unwrap();
    // sha256 of "weights a" and of "weights b" (not of what b.bin now holds).
    let sum = |text: &str| {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut out.stdin.as_ref().unwrap(), text.as_bytes()).unwrap();
        String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()[..64].to_string()
    };
    std::fs::write(
        models.join("manifest.sha256"),
        format!(
            "{}  a.bin\n{}  b.bin\n{}  c.bin\n",
            sum("weights a"),
            sum("weights b"),
            sum("c")
        ),
    )
    .unwrap();
    let tmp = sb.work().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for name in [
        "vid-bench-old-1",
        "vid-bench-old-2",
        "vid-bench-new",
        "other-old",
    ] {
        std::fs::write(tmp.join(name), vec![b'x'; 1000]).unwrap();
    }
    for name in ["vid-bench-old-1", "vid-bench-old-2", "other-old"] {
        touch_days_ago(&tmp.join(name), 2);
    }
    sb.write(
        "host.yaml",
        &format!(
            "id: host\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: models\n        checksums: {{ manifest: {m} }}\n      - id: disk\n        disk: {{ paths: [{w}] }}\n      - id: mem\n        memory: {{}}\n      - id: cpu\n        load: {{}}\n      - id: cache\n        dir_size: {{ path: {t} }}\n    actions:\n      - id: clean_tmp\n        delete_files: {{ dir: {t}, pattern: \"vid-bench-*\", older_than: 1d }}\n",
            m = models.join("manifest.sha256").display(),
            w = sb.work().display(),
            t = tmp.display()
        ),
    );
    let dry = sb
        .run(&["run", "host.yaml", "--dry-run", "--output", "json"])
        .json();
    let models_check = observation(&dry, "models");
    assert_eq!(models_check["verdict"], "fail");
    assert_eq!(
        models_check["reason"],
        "checksum failed: b.bin (mismatch), c.bin (missing)"
    );
    assert_eq!(models_check["value"], 2);
    let disk = observation(&dry, "disk");
    let used = disk["value"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&used), "{disk:#}");
    assert!(observation(&dry, "mem")["value"].as_f64().unwrap() > 0.0);
    assert!(
        observation(&dry, "cpu")["table"]["rows"][0][3]
            .as_u64()
            .unwrap()
            >= 1,
        "at least one CPU"
    );
    assert_eq!(
        observation(&dry, "cache")["table"]["rows"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        4,
        "a dry run deletes nothing"
    );

    let applied = sb.run(&["run", "host.yaml", "--yes"]);
    assert!(
        applied.stderr.is_empty() || !applied.stderr.contains("error"),
        "{}",
        applied.stderr
    );
    let timeline = sb.timeline();
    let planned = events(&timeline, "action_planned")
        .first()
        .unwrap_or_else(|| panic!("{}\n{timeline:#?}", applied.stdout))["plan"]["changes"]
        .clone();
    let listed: Vec<String> = planned
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].contains("vid-bench-old-1 (1000 B)") && listed[1].contains("vid-bench-old-2"),
        "{listed:?}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["other-old", "vid-bench-new"],
        "exactly the planned files are gone"
    );
    assert!(
        events(&timeline, "action_finished")[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("deleted 2 entries")
    );
}

#[test]
fn tcp_reports_latency_or_refusal() {
    let api = RecordingServer::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let open = api.url.trim_start_matches("http://").to_string();
    let sb = Sandbox::new();
    sb.write("tcp.yaml", &format!("id: tcp\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: up\n        tcp: {{ address: \"{open}\" }}\n        unit: ms\n      - id: down\n        tcp: {{ address: \"{closed}\" }}\n"));
    let report = sb.run(&["run", "tcp.yaml", "--output", "json"]).json();
    let up = observation(&report, "up");
    assert_eq!(up["verdict"], "ok");
    assert!(up["value"].as_f64().unwrap() < 1000.0);
    let down = observation(&report, "down");
    assert_eq!(
        down["reason"],
        format!("cannot connect to {closed}: connection refused")
    );
}

#[test]
fn log_files_counts_the_matching_lines_of_the_files_a_glob_names_and_keeps_the_latest() {
    let sb = Sandbox::new();
    let logs = sb.work().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("a.log"), "ok\nERROR one\nERROR two\n").unwrap();
    std::fs::write(logs.join("b.log"), "ERROR three\r\nwarn\nERROR four").unwrap();
    std::fs::write(logs.join("c.txt"), "ERROR not a log\n").unwrap();
    sb.write(
        "logs.yaml",
        &format!(
            "id: logs\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: errors\n        log_files: {{ paths: [\"{d}/*.log\"], matches: \"^ERROR\", keep: 3 }}\n        fail_if: value > 3\n      - id: gone\n        log_files: {{ paths: [\"{d}/missing.log\"], matches: x }}\n",
            d = logs.display()
        ),
    );
    let report = sb
        .run(&["run", "logs.yaml", "--dry-run", "--output", "json"])
        .json();
    let errors = observation(&report, "errors");
    assert_eq!(
        (&errors["value"], &errors["verdict"]),
        (&4.into(), &"fail".into()),
        "{errors:#}"
    );
    let a = logs.join("a.log").display().to_string();
    let b = logs.join("b.log").display().to_string();
    assert_eq!(
        errors["table"]["rows"],
        serde_json::json!([[a, "ERROR two"], [b, "ERROR three"], [b, "ERROR four"]]),
        "the latest three, in order, without line ends"
    );
    let gone = observation(&report, "gone");
    assert_eq!(gone["verdict"], "error");
    assert!(
        gone["reason"].as_str().unwrap().contains("missing.log"),
        "{gone:#}"
    );

    sb.write(
        "bad.yaml",
        "id: bad\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: errors\n        log_files: { paths: [\"/var/*/app.log\"], matches: \"(\" }\n",
    );
    let bad = sb.run(&["validate", "bad.yaml"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stdout
            .contains("'/var/*/app.log' has a wildcard in a folder's name"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("invalid regular expression"),
        "{}",
        bad.stdout
    );
}
