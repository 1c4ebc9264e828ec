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
fn an_explicit_runbook_path_wins_over_the_folder_one_stands_in_and_a_bare_timeout_gets_its_unit() {
    let sb = Sandbox::new();
    let runbook = |title: &str| {
        format!(
            "id: local-one\ntitle: {title}\nseverity: P3\nsteps:\n  - id: s\n    guidance: look\n"
        )
    };
    sb.write("runbooks/local-one.yaml", &runbook("From ./runbooks"));
    let chosen = sb.write("chosen/local-one.yaml", &runbook("From the path given"));
    let shown = sb.run(&[
        "show",
        "local-one",
        "--runbook-path",
        chosen.parent().unwrap().to_str().unwrap(),
    ]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("From the path given"),
        "{}",
        shown.stdout
    );
    let here = sb.run(&["show", "local-one"]);
    assert!(here.stdout.contains("From ./runbooks"), "{}", here.stdout);

    let bare = sb.run(&["run", "local-one", "--timeout", "10"]);
    assert_eq!(bare.code, 2);
    assert!(
        bare.stderr
            .contains("'10' is not a duration: did you mean 10s?"),
        "{}",
        bare.stderr
    );
    assert!(sb.incidents().is_empty());
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

#[test]
fn p0_and_p1_runbooks_post_updates_every_30_minutes_and_show_marks_the_team_s_thresholds() {
    let sb = Sandbox::new();
    let list = sb.run(&["list", "--output", "json"]).json();
    let mut urgent = Vec::new();
    for item in list.as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let shown = sb.run(&["show", id, "--output", "json"]).json();
        if matches!(item["severity"].as_str(), Some("P0" | "P1")) {
            urgent.push(id.to_string());
            assert_eq!(
                shown["updates"]["every"], "30m",
                "{id}: the playbook's updates every 30 minutes"
            );
            let message = shown["updates"]["message"].as_str().unwrap();
            let text = sb.run(&["show", id]).stdout;
            assert!(
                text.contains(&format!("updates: every 30m, post message {message}")),
                "{text}"
            );
        }
    }
    urgent.sort();
    assert_eq!(
        urgent,
        [
            "db-performance",
            "error-budget",
            "gpu-oom",
            "service-unavailable"
        ]
    );

    let team = |id: &str| -> Vec<String> {
        let shown = sb.run(&["show", id, "--output", "json"]).json();
        shown["team_params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        team("error-budget"),
        [
            "db_connections_warn_pct",
            "dominant_share_pct",
            "gpu_fail_pct",
            "gpu_warn_pct",
            "queue_fail",
            "queue_warn"
        ]
    );
    assert!(team("service-unavailable").contains(&"disk_max_pct".to_string()));
    assert!(team("gpu-oom").contains(&"gpu_mem_max_pct".to_string()));
    assert!(team("db-performance").contains(&"slow_statement_ms".to_string()));
    assert!(team("model-load").contains(&"disk_warn_pct".to_string()));
    let text = sb.run(&["show", "error-budget"]).stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("  queue_fail = 5000  [team]  # ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("  budget_pct = 1  # ")),
        "the seed's own budget is not marked: {text}"
    );
    assert!(text.contains("[team]: the team's own value, not from the runbook's source"));
    // The seed's 24h window and its recent changes, as `show` describes the checks.
    for read in [
        "prometheus: sum(rate(video_processing_errors_total[24h])) / sum(rate(video_processing_total[24h])) * 100",
        "prometheus: sum(rate(video_processing_errors_total[5m])) / sum(rate(video_processing_total[5m])) * 100 > 1 over the last 24h, every 5m",
        "kubernetes: warning events in video-processing",
        "kubernetes: rollout history of deployment/gpu-worker in video-processing (revisions since 24h)",
    ] {
        assert!(text.contains(read), "{read}: {text}");
    }
}

#[test]
fn a_team_param_needs_a_default_and_help_and_is_neither_secret_nor_an_endpoint() {
    let sb = Sandbox::new();
    sb.write(
        "team.yaml",
        "id: team\ntitle: T\nseverity: P3\nparams:\n  no_default: { team: true, help: the team's }\n  no_help: { default: 3, team: true }\n  hidden: { default: abcdefgh, secret: true, team: true, help: x }\n  fine: { default: 1, team: true, help: the team's to set }\n  not_team: { default: 1, team: false }\nendpoints:\n  api: { default: \"http://x\", team: true }\nsteps:\n  - id: s\n    guidance: look\n",
    );
    let ran = sb.run(&["validate", "team.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    let out = format!("{}{}", ran.stdout, ran.stderr);
    for expected in [
        "param 'no_default' is the team's (`team: true`) but has no default",
        "param 'no_help' is the team's (`team: true`) but has no help",
        "param 'hidden' is both secret and the team's",
        "endpoint 'api' has `team:`, which only params take",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    assert!(!out.contains("'fine'"), "{out}");
    assert!(!out.contains("'not_team'"), "{out}");
}
