//! Inputs that used to panic, abort or hang oncall: each is now refused with its position and
//! what would be right, or simply works.

use super::runbook;
use crate::support::Sandbox;

/// A runbook with one step holding `body` (YAML under `steps: - id: s`).
fn with_step(id: &str, body: &str) -> String {
    format!(
        "id: {id}\ntitle: t\nseverity: P3\nparams:\n  x: {{ default: 1 }}\nsteps:\n  - id: s\n{body}"
    )
}

/// A check whose `fail_if` is `condition`.
fn with_condition(id: &str, condition: &str) -> String {
    with_step(
        id,
        &format!(
            "    checks:\n      - id: c\n        shell: {{ command: \"echo 1\", number: true }}\n        fail_if: \"{condition}\"\n"
        ),
    )
}

#[test]
fn out_of_range_numbers_durations_and_oversized_expressions_are_refused_with_their_place() {
    let long_promql = vec!["up"; 40_000].join(" + ");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "keep",
            with_step(
                "keep",
                "    checks:\n      - id: c\n        shell: { command: \"echo 1\", keep: 100000000000 }\n",
            ),
            "keep.yaml:10:43: `keep` 100000000000 is out of range\n  hint: it may be 1 to 1000",
        ),
        (
            "silence",
            with_step(
                "silence",
                "    actions:\n      - id: a\n        silence: { matchers: { alertname: X }, duration: 99999999999h }\n",
            ),
            "silence.yaml:10:58: silence `duration`: '99999999999h' is out of range: it may be 1m to 90d",
        ),
        (
            "silence-long",
            with_step(
                "silence-long",
                "    actions:\n      - id: a\n        silence: { matchers: { alertname: X }, duration: 3000d }\n",
            ),
            "silence `duration`: '3000d' is out of range: it may be 1m to 90d",
        ),
        (
            "logs-timeout",
            with_step(
                "logs-timeout",
                "    checks:\n      - id: c\n        timeout: 3650d\n        k8s_logs: { deployment: w, matches: x }\n",
            ),
            "logs-timeout.yaml:10:18: check `timeout`: '3650d' is out of range: it may be 1ms to 1h",
        ),
        (
            "replicas",
            with_step(
                "replicas",
                "    actions:\n      - id: a\n        k8s_scale: { deployment: w, replicas: 100000000000 }\n",
            ),
            "replicas 100000000000 is out of range\n  hint: it may be 0 to 100000",
        ),
        (
            "plus",
            with_condition("plus", &vec!["value"; 10_000].join(" + ")),
            "plus.yaml:11:19: threshold: 79997 bytes is too long: at most 65536 bytes\n  hint: split it",
        ),
        (
            "plus-short",
            with_condition(
                "plus-short",
                &format!("{} > 1", vec!["value"; 500].join(" + ")),
            ),
            "threshold: the expression is too long: at most 400 names, numbers and operators",
        ),
        (
            "nots",
            with_condition("nots", &format!("{}value", "not ".repeat(10_000))),
            "nots.yaml:11:1619: threshold: the expression is too long: at most 400 names, numbers and operators",
        ),
        (
            "nots-short",
            with_condition("nots-short", &format!("{}value", "not ".repeat(1_000))),
            "the expression is too long",
        ),
        (
            "brackets",
            with_condition(
                "brackets",
                &format!("{}value{}", "(".repeat(100), ")".repeat(100)),
            ),
            "brackets nest too deep: at most 32 levels",
        ),
        (
            "promql-deep",
            with_step(
                "promql-deep",
                &format!(
                    "    checks:\n      - id: c\n        prometheus: \"{}up{}\"\n",
                    "sum(".repeat(5_000),
                    ")".repeat(5_000)
                ),
            ),
            "promql-deep.yaml:10:21: the query is too large to check",
        ),
        (
            "promql-nested",
            with_step(
                "promql-nested",
                &format!(
                    "    checks:\n      - id: c\n        prometheus: \"{}up{}\"\n",
                    "sum(".repeat(100),
                    ")".repeat(100)
                ),
            ),
            "brackets nest more than 64 levels deep",
        ),
        (
            "promql-long",
            with_step(
                "promql-long",
                &format!("    checks:\n      - id: c\n        prometheus: \"{long_promql}\"\n"),
            ),
            "is too long: at most 65536 bytes",
        ),
        (
            "loops",
            with_step(
                "loops",
                "    checks:\n      - id: c\n        shell: { command: \"echo 1\" }\n    messages: [m]\nmessages:\n  m: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"\n",
            ),
            "loops.yaml:13:7: message 'm': engine ran out of fuel",
        ),
    ];
    let sb = Sandbox::new();
    for (name, text, expected) in &cases {
        let path = sb.write(&format!("{name}.yaml"), text);
        let ran = sb.run(&["validate", path.to_str().unwrap()]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.contains(expected),
            "{name}: expected {expected:?} in\n{}",
            ran.stdout
        );
        // A run of the same file stops at validation, with the same words.
        let ran = sb.run(&["run", path.to_str().unwrap(), "--dry-run"]);
        assert_eq!(ran.code, 2, "{name}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(expected.lines().next().unwrap()),
            "{name}: {}",
            ran.stderr
        );
    }
}

#[test]
fn flags_out_of_range_are_refused_by_the_parser() {
    let sb = Sandbox::new();
    runbook(&sb, "quick", &with_condition("quick", "value > 1"));
    for (flag, value) in [("--timeout", "99999999999h"), ("--max-wait", "400d")] {
        let ran = sb.run(&["run", "quick", flag, value]);
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains("is out of range"), "{}", ran.stderr);
    }
}

#[test]
fn non_ascii_in_a_shell_command_validates_shows_runs_and_drills() {
    let sb = Sandbox::new();
    runbook(
        &sb,
        "accents",
        "\u{feff}id: accents\ntitle: Café — accents\nseverity: P3\nparams:\n  who: { default: \"zoë\" }\nsteps:\n  - id: s\n    checks:\n      - id: c\n        shell: { command: \"echo café — {{ params.who }} ✓\" }\n",
    );
    sb.write(
        "runbooks/scenarios/accents/ok.yaml",
        "title: fine\nchecks:\n  c: { value: 1, text: \"café\" }\n",
    );
    let validated = sb.run(&["validate", "runbooks/accents.yaml"]);
    assert_eq!(
        validated.code, 0,
        "{}{}",
        validated.stdout, validated.stderr
    );
    let shown = sb.run(&["show", "accents"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("echo café — 'zoë' ✓"),
        "{}",
        shown.stdout
    );
    let ran = sb.run(&["run", "accents", "--output", "json"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("café — zoë ✓"), "{}", ran.stdout);
    let drilled = sb.run(&["drill", "accents", "--scenario", "ok"]);
    assert_eq!(drilled.code, 0, "{}", drilled.stderr);
}

#[test]
fn a_huge_param_is_refused_before_anything_renders_it() {
    let sb = Sandbox::new();
    runbook(&sb, "quick", &with_condition("quick", "value > params.x"));
    let config = sb.root.join("config/oncall/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!("params:\n  x: \"{}\"\n", "x".repeat(50 * 1024 * 1024)),
    )
    .unwrap();
    for args in [vec!["show", "quick"], vec!["run", "quick", "--dry-run"]] {
        let ran = sb.run(&args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains("param 'x' is 52428800 bytes long: a param holds at most 64 KiB"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}
