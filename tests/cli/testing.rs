//! `oncall test`: scenario expectations, branch coverage, JUnit.
use super::support::Sandbox;

const RUNBOOK: &str = "id: t
title: Tested
severity: P2
params:
  limit: { default: 10 }
steps:
  - id: look
    checks:
      - id: queue
        prometheus: queue_depth
        fail_if: value > params.limit
  - id: act
    when: checks.queue.verdict == \"fail\"
    actions:
      - id: drain
        title: Drain the queue
        shell: { command: \"true\" }
";

const OVERFLOW: &str = "title: Overflow
checks:
  queue: { value: 50 }
expect:
  exit_code: 1
  steps_run: [act]
  offered: [drain]
  verdicts: { queue: fail }
";

// The author thinks an overflow skips the step: it does not.
const WRONG: &str = "title: Wrong about overflow
checks:
  queue: { value: 50 }
expect:
  steps_skipped: [act]
  verdicts: { queue: ok }
";

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("runbooks/t.yaml", RUNBOOK);
    sb.write("runbooks/scenarios/t/overflow.yaml", OVERFLOW);
    sb
}

#[test]
fn expectations_pass_and_fail_with_their_line_and_column() {
    let sb = sandbox();
    let passed = sb.run(&["test", "t"]);
    assert_eq!(passed.code, 0, "{}{}", passed.stdout, passed.stderr);
    assert!(
        passed.stdout.contains("ok   t/overflow"),
        "{}",
        passed.stdout
    );

    sb.write("runbooks/scenarios/t/wrong.yaml", WRONG);
    let failed = sb.run(&["test", "t", "--junit", "results.xml"]);
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(failed.stdout.contains("FAIL t/wrong"), "{}", failed.stdout);
    let file = "runbooks/scenarios/t/wrong.yaml";
    assert!(
        failed.stdout.contains(&format!(
            "{file}:5:19: expected step act to be skipped; it ran"
        )),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stdout.contains(&format!(
            "{file}:6:22: expected check queue to be ok, it was fail"
        )),
        "{}",
        failed.stdout
    );
    assert!(failed.stdout.contains("2 scenario(s), 1 passed, 1 failed"));

    // The JUnit file, read by an XML parser: one case per scenario, the wrong one failed.
    let xml = std::fs::read_to_string(sb.work().join("results.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<&str> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    assert_eq!(names, ["overflow", "wrong"], "{xml}");
    let failures: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(failures, ["wrong"], "{xml}");
}

#[test]
fn coverage_names_the_branches_not_taken_and_fails_below_the_minimum() {
    let sb = sandbox();
    let ran = sb.run(&["test", "t", "--min-coverage", "100"]);
    // The overflow takes `act` true, `drain` offered and `fail_if` met; nothing shows the quiet side.
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("t                          3/5    60.0%"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("not taken: step act when false"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("not taken: check queue fail_if unmet"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("coverage below 100%: t 60.0%"),
        "{}",
        ran.stdout
    );

    sb.write(
        "runbooks/scenarios/t/quiet.yaml",
        "title: Quiet\nchecks:\n  queue: { value: 2 }\nexpect:\n  steps_skipped: [act]\n  not_offered: [drain]\n",
    );
    let full = sb.run(&["test", "t", "--min-coverage", "100"]);
    assert_eq!(full.code, 0, "{}{}", full.stdout, full.stderr);
    assert!(full.stdout.contains("5/5   100.0%"), "{}", full.stdout);
}

#[test]
fn an_expectation_naming_what_the_runbook_lacks_is_a_bad_file() {
    let sb = sandbox();
    sb.write(
        "runbooks/scenarios/t/typo.yaml",
        "title: Typo\nchecks:\n  queue: { value: 50 }\nexpect:\n  offered: [drian]\n",
    );
    let ran = sb.run(&["test", "t"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(
            "runbooks/scenarios/t/typo.yaml:5:13: expects action 'drian', which runbook 't' does not have"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("did you mean 'drain'?"),
        "{}",
        ran.stdout
    );
    // `validate` says the same.
    let validated = sb.run(&["validate", "runbooks/t.yaml"]);
    assert_eq!(validated.code, 2);
    assert!(
        validated.stdout.contains("expects action 'drian'"),
        "{}",
        validated.stdout
    );
}

#[test]
fn a_drill_on_a_terminal_is_scored_and_the_card_is_in_the_timeline() {
    let sb = Sandbox::new();
    sb.write(
        "runbooks/s.yaml",
        "id: s\ntitle: Scored\nseverity: P2\nsteps:\n  - id: act\n    actions:\n      - { id: nuke, title: Delete everything, shell: { command: \"true\" } }\n      - { id: drain, title: Drain the queue, shell: { command: \"true\" } }\n      - { id: page, title: Page the database team, shell: { command: \"true\" } }\n",
    );
    sb.write(
        "runbooks/scenarios/s/overflow.yaml",
        "title: Overflow\nchecks: {}\ncorrect: [drain, page]\nharmful: [nuke]\ntarget: 10m\n",
    );
    let mut s = super::support::pty_sized(&sb, &["drill", "s", "--scenario", "overflow"], 80);
    for (title, answer) in [
        ("Delete everything?", "y"),
        ("Drain the queue?", "s"),
        ("Page the database team?", "y"),
    ] {
        s.expect(title).unwrap();
        s.expect("[y]es rehearse").unwrap();
        s.send_line(answer).unwrap();
    }
    let screen = s.expect(expectrl::Eof).unwrap();
    let screen = String::from_utf8_lossy(screen.as_bytes()).replace("\r\n", "\n");
    let joined = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains("score: right 1 of 2 approved (page), harmful 1 approved (nuke), right skipped: drain; first right after"),
        "{screen}"
    );
    assert!(joined.contains("(target 10m, met)"), "{screen}");
    let timeline = sb.timeline();
    let card = super::support::events(&timeline, "drill_scored");
    assert_eq!(card.len(), 1, "{timeline:?}");
    assert_eq!(card[0]["harmful_approved"], serde_json::json!(["nuke"]));
    assert_eq!(card[0]["right_skipped"], serde_json::json!(["drain"]));
    assert_eq!(card[0]["scenario"], "overflow");

    // The history lists it by engineer and scenario.
    let history = sb.run(&["drill", "--history"]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    let line = history
        .stdout
        .lines()
        .find(|l| l.contains("overflow"))
        .unwrap_or_else(|| panic!("{}", history.stdout));
    assert!(
        line.contains("tester") && line.contains(" s ") && line.contains("harmful 1 approved"),
        "{line}"
    );

    // `--yes` rehearses without anyone deciding: not scored, and it says so.
    let yes = sb.run(&["drill", "s", "--scenario", "overflow", "--yes"]);
    assert!(
        yes.stdout.contains("score:    not scored: no one answered"),
        "{}",
        yes.stdout
    );
}

const WAITING: &str = "id: w
title: Waits
severity: P2
steps:
  - id: watch
    checks:
      - id: level
        prometheus: level
        fail_if: value > 90
        warn_if: value > 50
    wait: { check: level, until: value < 50, every: 1s, timeout: 1m }
  - id: tell
    messages: [update]
    actions:
      - id: post
        notify: { endpoint: chat, message: update }
messages:
  update: \"level {{ checks.level.value }}\"
";

#[test]
fn a_wait_s_polls_count_for_coverage_and_a_scenario_s_endpoints_plan_the_post() {
    let sb = Sandbox::new();
    sb.write("runbooks/w.yaml", WAITING);
    // First reading fails, the polls warn and then clear: every threshold branch is seen, and the
    // verdict expected is the last one.
    sb.write(
        "runbooks/scenarios/w/recovers.yaml",
        "title: Recovers\nendpoints:\n  chat: https://hooks.example.test/T0/B0/drillsecret\nchecks:\n  level: { values: [95, 70, 30] }\nexpect:\n  offered: [post]\n  verdicts: { level: ok }\n",
    );
    let ran = sb.run(&["test", "w", "--min-coverage", "100"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("w                          5/5   100.0%"),
        "{}",
        ran.stdout
    );

    // Without the scenario's endpoint the post is not offered, and coverage says so.
    sb.write(
        "runbooks/scenarios/w/recovers.yaml",
        "title: Recovers\nchecks:\n  level: { values: [95, 70, 30] }\n",
    );
    let ran = sb.run(&["test", "w", "--min-coverage", "100"]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("not taken: action post offered"),
        "{}",
        ran.stdout
    );

    // The webhook is a credential: the drill's plan and timeline show its host only.
    sb.write(
        "runbooks/scenarios/w/recovers.yaml",
        "title: Recovers\nendpoints:\n  chat: https://hooks.example.test/T0/B0/drillsecret\nchecks:\n  level: { values: [95, 70, 30] }\n",
    );
    let drill = sb.run(&[
        "drill",
        "w",
        "--scenario",
        "recovers",
        "--yes",
        "-o",
        "json",
    ]);
    assert!(
        drill.stdout.contains("hooks.example.test"),
        "{}",
        drill.stdout
    );
    let timeline = std::fs::read_to_string(
        sb.state()
            .join("incidents")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    for text in [&drill.stdout, &drill.stderr, &timeline] {
        assert!(!text.contains("drillsecret"), "{text}");
    }

    // An endpoint the runbook neither declares nor posts to is a mistake, said where it is.
    sb.write(
        "runbooks/scenarios/w/typo.yaml",
        "title: Typo\nendpoints:\n  caht: https://hooks.example.test/x\nchecks:\n  level: { value: 3 }\n",
    );
    let bad = sb.run(&["test", "w"]);
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("runbooks/scenarios/w/typo.yaml:3:9: scenario sets endpoint 'caht', which runbook 'w' neither declares nor posts to"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("did you mean 'chat'?"),
        "{}",
        bad.stdout
    );
}
