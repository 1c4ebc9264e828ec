//! The config file: named endpoints and param values, under the flags.

use super::*;

#[test]
fn the_config_file_names_endpoints_and_sets_params_and_flags_win() {
    let api = RecordingServer::start();
    let other = RecordingServer::start();
    let sb = Sandbox::new();
    let config = sb.root.join("config/oncall/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "endpoints:\n  api: {}\nparams:\n  name: from-config\n",
            api.url
        ),
    )
    .unwrap();
    let fixture = fixture("shell-and-secrets.yaml");
    let report = sb
        .run(&[
            "run",
            fixture.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
        ])
        .json();
    assert_eq!(report["params"]["name"], "from-config");
    assert_eq!(api.requests().len(), 1, "the config's endpoint was used");

    let endpoint = format!("api={}", other.url);
    let report = sb
        .run(&[
            "run",
            fixture.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
            "-e",
            &endpoint,
            "-p",
            "name=from-flag",
        ])
        .json();
    assert_eq!(report["params"]["name"], "from-flag");
    assert_eq!(
        other.requests().len(),
        1,
        "--endpoint overrides the config file"
    );

    let unknown = sb.run(&["run", fixture.to_str().unwrap(), "-p", "nmae=x"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("runbook 'shell-and-secrets' has no param 'nmae'; its params: name, password, pin, token"),
        "{}",
        unknown.stderr
    );

    std::fs::write(&config, "endpoint:\n  api: http://x\n").unwrap();
    let bad = sb.run(&["list"]);
    let bad_run = sb.run(&["run", fixture.to_str().unwrap(), "--dry-run"]);
    assert_eq!(bad.code, 0, "list does not need the config");
    assert_eq!(bad_run.code, 2);
    assert!(
        bad_run
            .stderr
            .contains("config.yaml:1:1: unknown field `endpoint`"),
        "{}",
        bad_run.stderr
    );
    assert!(
        bad_run.stderr.contains("did you mean `endpoints`?"),
        "{}",
        bad_run.stderr
    );
}
