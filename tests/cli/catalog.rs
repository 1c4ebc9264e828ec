//! The bundled runbooks: listed, shown and valid.

use super::*;

#[test]
fn list_show_and_validate_the_bundled_runbooks() {
    let sb = Sandbox::new();
    let list = sb.run(&["list", "--output", "json"]);
    let items = list.json();
    let eb = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "error-budget")
        .expect("error-budget is bundled");
    assert_eq!(eb["severity"], "P0");
    assert_eq!(eb["source"], "bundled");
    let text = sb.run(&["list"]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("error-budget") && l.contains("P0") && l.ends_with("bundled")),
        "{}",
        text.stdout
    );

    let show = sb.run(&["show", "error-budget"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout
            .contains("POST k8s://video-processing/api-gateway:8080/api/jobs/clear-stuck"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("drill scenarios: all-clear, db-pool-exhausted, driver-failure, gpu-saturation, gpu-saturation-relieved, nats-outage, queue-overflow")
    );

    let validate = sb.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);

    // A user runbook with the same id overrides the bundled one.
    sb.write("runbooks/error-budget.yaml", "id: error-budget\ntitle: Ours\nseverity: P1\nsteps:\n  - id: s\n    guidance: read the dashboard\n");
    let list = sb.run(&["list", "--output", "json"]).json();
    let eb = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "error-budget")
        .unwrap();
    assert_eq!(eb["title"], "Ours");
    assert_eq!(eb["source"], "runbooks/error-budget.yaml");
}

#[test]
fn a_misspelt_runbook_or_scenario_gets_did_you_mean_and_a_param_takes_its_defaults_type() {
    let sb = Sandbox::new();
    let ran = sb.run(&["show", "error-budgt"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("(did you mean 'error-budget'?)"),
        "{}",
        ran.stderr
    );
    let ran = sb.run(&["drill", "error-budget", "--scenario", "queue-overflw"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("(did you mean 'queue-overflow'?)"),
        "{}",
        ran.stderr
    );
    let ran = sb.run(&["drill", "error-budget", "-p", "budget_pct=two"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("param 'budget_pct' takes a number (its default is 1), not 'two'"),
        "{}",
        ran.stderr
    );
    assert!(sb.incidents().is_empty(), "nothing ran");
}
