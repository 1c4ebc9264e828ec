//! The run's screen as a terminal shows it: every bundled drill in a real pty at 80 and 120
//! columns, read back through a terminal emulator (vt100): no line wider than the screen, every
//! pod, container and deployment name whole on one row, no spinner left behind after waits or
//! Ctrl-C; a snapshot of the queue-overflow drill at 80 columns.
use super::support::{ROWS, Sandbox, fixture, pty_sized, read_timeline};
use super::*;

/// The screen a command leaves behind once it ended, as a terminal `columns` wide shows it.
fn screen_after(sb: &Sandbox, args: &[&str], columns: u16) -> (vt100::Parser, i32) {
    let mut s = pty_sized(sb, args, columns);
    let bytes = s
        .expect(expectrl::Eof)
        .expect("the program ends")
        .as_bytes()
        .to_vec();
    let code = match s.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => code,
        other => panic!("ended by {other:?}"),
    };
    let mut parser = vt100::Parser::new(ROWS, columns, 0);
    parser.process(&bytes);
    if let Ok(dir) = std::env::var("ONCALL_TEST_SCREENS") {
        let name = args.join("_").replace('/', "_");
        let _ = std::fs::write(format!("{dir}/{name}-{columns}.raw"), &bytes);
    }
    (parser, code)
}

/// The screen's rows, as text.
fn rows(parser: &vt100::Parser, columns: u16) -> Vec<String> {
    parser.screen().rows(0, columns).collect()
}

/// Lines the terminal had to wrap because they are wider than the screen, except the text of a
/// message (shown as it is, for copying: the terminal wraps it softly and copies it whole) and a
/// line holding a token too long for any indented line (a URL, a path), which no layout can fit.
fn too_wide(parser: &vt100::Parser, columns: u16) -> Vec<String> {
    let screen = parser.screen();
    let texts = rows(parser, columns);
    let mut lines: Vec<(String, bool)> = Vec::new();
    let mut joined = String::new();
    let mut wrapped = false;
    for (row, text) in texts.iter().enumerate() {
        joined.push_str(text);
        if screen.row_wrapped(row as u16) {
            wrapped = true;
            continue;
        }
        lines.push((std::mem::take(&mut joined), wrapped));
        wrapped = false;
    }
    // A message stands between the two rules under its `…, to paste:` line (or a reminder's).
    let mut in_message = false;
    let mut opening = false;
    let mut bad = Vec::new();
    for (line, wrapped) in lines {
        let rule = line.starts_with("────") && line.chars().all(|c| c == '─');
        if rule && (opening || in_message) {
            in_message = opening;
            opening = false;
            continue;
        }
        opening = line.ends_with("to paste:") || (line.starts_with('⏰') && line.ends_with(':'));
        let unbreakable = line
            .split_whitespace()
            .any(|word| word.chars().count() > usize::from(columns) - 16);
        if wrapped && !in_message && !unbreakable {
            bad.push(line);
        }
    }
    bad
}

/// The identifiers a run's checks read: pods, containers, deployments, names.
fn identifiers(sb: &Sandbox) -> Vec<String> {
    let mut found = Vec::new();
    for event in read_timeline(&sb.incidents()[0]) {
        if event["event"] != "check_finished" {
            continue;
        }
        let table = &event["observation"]["table"];
        let Some(columns) = table["columns"].as_array() else {
            continue;
        };
        for (i, column) in columns.iter().enumerate() {
            if ["pod", "container", "deployment", "name"].contains(&column.as_str().unwrap()) {
                for row in table["rows"].as_array().unwrap().iter().take(20) {
                    if let Some(name) = row[i].as_str() {
                        found.push(name.to_string());
                    }
                }
            }
        }
    }
    found
}

const SPINNER: &[char] = &['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈'];

fn bundled_drills() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/scenarios");
    let mut drills = Vec::new();
    for runbook in std::fs::read_dir(&root).unwrap() {
        let runbook = runbook.unwrap().path();
        for scenario in std::fs::read_dir(&runbook).unwrap() {
            let scenario = scenario.unwrap().path();
            drills.push((
                runbook.file_name().unwrap().to_string_lossy().to_string(),
                scenario.file_stem().unwrap().to_string_lossy().to_string(),
            ));
        }
    }
    drills.sort();
    drills
}

fn every_drill_fits(columns: u16) {
    let drills = bundled_drills();
    assert!(drills.len() >= 10, "{drills:?}");
    let checked: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = drills
            .iter()
            .map(|(runbook, scenario)| {
                scope.spawn(move || {
                    let sb = Sandbox::new();
                    let args = [
                        "drill",
                        runbook.as_str(),
                        "--scenario",
                        scenario.as_str(),
                        "--yes",
                    ];
                    let (parser, code) = screen_after(&sb, &args, columns);
                    let what = format!("{runbook} {scenario} at {columns} columns");
                    assert!([0, 1, 3].contains(&code), "{what}: exit {code}");
                    let wide = too_wide(&parser, columns);
                    assert!(
                        wide.is_empty(),
                        "{what}: lines wider than the screen: {wide:#?}"
                    );
                    let text = rows(&parser, columns);
                    for name in identifiers(&sb) {
                        assert!(
                            text.iter().any(|row| row.contains(&name)),
                            "{what}: {name} is not whole on any row:\n{}",
                            text.join("\n")
                        );
                    }
                    let all = text.join("\n");
                    assert!(
                        !all.contains(SPINNER) && !all.contains("Ctrl-C stops waiting"),
                        "{what}: a spinner was left on the screen:\n{all}"
                    );
                    what
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(checked.len(), drills.len());
}

#[test]
fn every_bundled_drill_fits_80_columns() {
    every_drill_fits(80);
}

#[test]
fn every_bundled_drill_fits_120_columns() {
    every_drill_fits(120);
}

/// Times, dates, ids and durations vary from run to run; the layout around them does not.
fn normalize(text: &str) -> String {
    let rules = [
        (r"\d{8}-\d{4}-error-budget", "YYYYMMDD-HHMM-error-budget"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "TIMESTAMP"),
        (r"\b\d{2}:\d{2}\b", "HH:MM"),
        (r"\d+(\.\d+)?(ms|s)\b", "Ds"),
    ];
    let text = super::support::replace_all(text, &rules);
    // The timeline's path holds the test's temporary folder, which varies in length.
    text.lines()
        .map(str::trim_end)
        .take_while(|l| !l.starts_with("  timeline: "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

#[test]
fn the_queue_overflow_drill_at_80_columns() {
    let sb = Sandbox::new();
    let args = [
        "drill",
        "error-budget",
        "--scenario",
        "queue-overflow",
        "--yes",
    ];
    let (parser, code) = screen_after(&sb, &args, 80);
    assert_eq!(code, 1);
    insta::assert_snapshot!(
        "queue_overflow_80",
        normalize(&rows(&parser, 80).join("\n"))
    );
}

#[test]
fn ctrl_c_during_a_wait_leaves_no_spinner_behind() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let runbook = fixture("waits.yaml");
    let args = [
        "run",
        runbook.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
    ];
    let mut s = pty_sized(&sb, &args, 80);
    let mut bytes = s
        .expect("Ctrl-C stops waiting")
        .unwrap()
        .as_bytes()
        .to_vec();
    s.send([3u8]).unwrap();
    bytes.extend_from_slice(s.expect(expectrl::Eof).unwrap().as_bytes());
    let mut parser = vt100::Parser::new(ROWS, 80, 0);
    parser.process(&bytes);
    let all = rows(&parser, 80).join("\n");
    assert!(all.contains("stopped by the engineer"), "{all}");
    assert!(
        !all.contains(SPINNER) && !all.contains("Ctrl-C stops waiting"),
        "a spinner was left on the screen:\n{all}"
    );
}
