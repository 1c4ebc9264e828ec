//! `oncall report`: the playbook's post-incident template filled from a timeline, tagged notes in
//! their sections, read back with a real Markdown parser.
use super::support::Sandbox;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

/// The headings of the playbook's Post-Incident Report Template, in order.
const TEMPLATE: &[(HeadingLevel, &str)] = &[
    (HeadingLevel::H2, "Summary"),
    (HeadingLevel::H2, "Timeline"),
    (HeadingLevel::H2, "Root Cause"),
    (HeadingLevel::H2, "Impact Assessment"),
    (HeadingLevel::H2, "Response Evaluation"),
    (HeadingLevel::H3, "What Went Well"),
    (HeadingLevel::H3, "Areas for Improvement"),
    (HeadingLevel::H2, "Action Items"),
    (HeadingLevel::H2, "Lessons Learned"),
];

/// Headings (with the level) and, after each, whether a table came before the next heading.
fn outline(markdown: &str) -> Vec<(HeadingLevel, String, bool)> {
    let mut out: Vec<(HeadingLevel, String, bool)> = Vec::new();
    let mut heading: Option<(HeadingLevel, String)> = None;
    for event in Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
            Event::Text(text) | Event::Code(text) if heading.is_some() => {
                heading.as_mut().unwrap().1.push_str(&text)
            }
            Event::End(TagEnd::Heading(_)) => {
                let (level, text) = heading.take().unwrap();
                out.push((level, text, false));
            }
            Event::Start(Tag::Table(_)) => {
                if let Some(last) = out.last_mut() {
                    last.2 = true;
                }
            }
            _ => {}
        }
    }
    out
}

/// Times, dates and durations vary from run to run; the words around them do not.
fn normalize(text: &str) -> String {
    let rules = [
        (r"\d{8}-\d{4}-", "YYYYMMDD-HHMM-"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "YYYY-MM-DD HH:MM"),
        (r"\d{2}:\d{2}:\d{2}", "HH:MM:SS"),
        (r"\b\d+h \d+m\b", "D"),
        (r"\b\d+m \d+s\b", "D"),
        (r"\b\d+s\b", "D"),
        (r"\d+×", "N×"),
    ];
    super::support::replace_all(text, &rules)
}

#[test]
fn a_drills_report_has_the_templates_headings_and_tables_and_the_tagged_notes() {
    let sb = Sandbox::new();
    let drill = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "gpu-saturation",
        "--yes",
    ]);
    assert!(drill.code == 0 || drill.code == 1, "{}", drill.stderr);
    let id = sb.incidents()[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    for note in [
        vec!["--root-cause", "GPU driver 535 leaks memory under load"],
        vec!["--went-well", "the sweep found the OOMs in seconds"],
        vec!["--improve", "page the GPU owner sooner"],
        vec![
            "--action-item",
            "pin the driver | everywhere",
            "--owner",
            "alice",
            "--due",
            "2026-12-15",
        ],
        vec!["--lesson", "watch GPU memory, not only errors"],
        vec!["--impact", "uploads failed for about 5% of users"],
        vec!["restarted gpu-worker-3 by hand"],
    ] {
        let mut args = vec!["note", "--incident", &id];
        args.extend(note);
        let ran = sb.run(&args);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
    }
    let refused = sb.run(&["note", "--incident", &id, "--owner", "bob", "x"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("--owner and --due belong to an action item")
    );

    let open = sb.run(&["report", &id]);
    assert_eq!(open.code, 0, "{}", open.stderr);
    assert!(
        open.stdout
            .contains("> This incident is not resolved (it is open)"),
        "{}",
        open.stdout
    );
    assert!(
        sb.run(&[
            "resolve",
            "--incident",
            &id,
            "--root-cause",
            "and a bad rollout",
            "fixed"
        ])
        .code
            == 0
    );
    let report = sb.run(&["report", &id]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let md = &report.stdout;

    let outline = outline(md);
    assert_eq!(
        outline[0],
        (
            HeadingLevel::H1,
            "Incident Report: Video processing error budget exhausted (drill)".to_string(),
            false
        )
    );
    let sections: Vec<(HeadingLevel, &str)> = outline[1..]
        .iter()
        .map(|(l, t, _)| (*l, t.as_str()))
        .collect();
    assert_eq!(sections, TEMPLATE);
    let with_table: Vec<&str> = outline
        .iter()
        .filter(|(_, _, table)| *table)
        .map(|(_, t, _)| t.as_str())
        .collect();
    assert_eq!(with_table, vec!["Timeline", "Action Items"]);

    assert!(md.contains("> This is a drill"), "{md}");
    assert!(!md.contains("is not resolved"), "{md}");
    assert!(
        md.contains("GPU driver 535 leaks memory under load\n\nand a bad rollout"),
        "{md}"
    );
    assert!(
        md.contains("| pin the driver \\| everywhere | alice | 2026-12-15 | open |"),
        "{md}"
    );
    assert!(
        md.contains("- **Users Impacted**: uploads failed for about 5% of users"),
        "{md}"
    );
    insta::assert_snapshot!("drill_report", normalize(md));

    let json = sb.run(&["report", &id, "-o", "json"]).json();
    assert_eq!(json["mode"], "drill");
    assert_eq!(json["status"], "resolved");
    assert_eq!(json["root_cause"].as_array().unwrap().len(), 2);
    assert_eq!(json["action_items"][0]["owner"], "alice");
    assert!(json["figures"]["time_to_resolve_s"].as_i64().unwrap() >= 0);
    assert!(json["figures"]["acknowledged"].is_string());
}

#[test]
fn report_without_an_incident_name_takes_the_latest_live_one() {
    let sb = Sandbox::new();
    assert_eq!(
        sb.run(&["drill", "error-budget", "--scenario", "all-clear"])
            .code,
        0
    );
    let none = sb.run(&["report"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no live incident"), "{}", none.stderr);
    let missing = sb.run(&["report", "20990101-0000-x"]);
    assert!(missing.stderr.contains("no incident '20990101-0000-x'"));
}

/// Moves every event of a timeline `days` into the past, as if the incident had happened then.
fn age_by_days(path: &std::path::Path, days: i64) {
    let text = std::fs::read_to_string(path).unwrap();
    let shifted: Vec<String> = text
        .lines()
        .map(|line| {
            let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts: jiff::Timestamp = event["ts"].as_str().unwrap().parse().unwrap();
            let earlier = ts - jiff::SignedDuration::from_hours(24 * days);
            event["ts"] = serde_json::json!(earlier.to_string());
            event.to_string()
        })
        .collect();
    std::fs::write(path, shifted.join("\n") + "\n").unwrap();
}

#[test]
fn the_summary_counts_incidents_by_runbook_live_and_drills_apart_and_since_leaves_old_ones_out() {
    let api = super::RecordingServer::start();
    let sb = Sandbox::new();
    for _ in 0..2 {
        let drill = sb.run(&["drill", "error-budget", "--scenario", "all-clear"]);
        assert_eq!(drill.code, 0, "{}", drill.stderr);
    }
    let endpoint = format!("api={}", api.url);
    let fixture = super::fixture("three-actions.yaml");
    let live = sb.run(&["run", fixture.to_str().unwrap(), "--yes", "-e", &endpoint]);
    assert_eq!(live.code, 0, "{}", live.stderr);
    let resolved = sb.run(&["resolve", "fixed by the three actions"]);
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    age_by_days(&sb.incidents()[0], 40);

    let all = sb.run(&["report", "--summary", "-o", "json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let all = all.json();
    let groups = all["groups"].as_array().unwrap();
    let modes: Vec<&str> = groups.iter().map(|g| g["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["live", "drill"]);
    let live = &groups[0]["rows"][0];
    assert_eq!(live["runbook"], "three-actions");
    assert_eq!(
        (live["incidents"].as_u64(), live["resolved"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(live["time_to_resolve"]["count"], 1);
    assert!(live["time_to_resolve"]["median_s"].as_i64().unwrap() >= 0);
    assert_eq!(groups[1]["rows"][0]["incidents"], 2);
    assert_eq!(groups[1]["rows"][0]["resolved"], 0);
    assert_eq!(
        groups[1]["rows"][0]["time_to_resolve"]["median_s"],
        serde_json::Value::Null
    );

    let recent = sb.run(&["report", "--summary", "--since", "30d", "-o", "json"]);
    assert_eq!(recent.code, 0, "{}", recent.stderr);
    assert_eq!(
        recent.json()["groups"][1]["rows"][0]["incidents"],
        1,
        "the drill aged 40 days is left out"
    );

    let table = sb.run(&["report", "--summary", "--since", "30d"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let headings: Vec<String> = outline(&table.stdout)
        .into_iter()
        .map(|(_, h, _)| h)
        .collect();
    assert_eq!(
        headings,
        ["Incident figures", "Live incidents", "Drills"],
        "{}",
        table.stdout
    );
    assert!(
        outline(&table.stdout)
            .iter()
            .skip(1)
            .all(|(_, _, table)| *table)
    );
    assert!(
        table.stdout.contains("| three-actions | P2 | 1 | 1 |"),
        "{}",
        table.stdout
    );

    let bad = sb.run(&["report", "--since", "30d"]);
    assert_eq!(bad.code, 2, "--since goes with --summary: {}", bad.stderr);
}
