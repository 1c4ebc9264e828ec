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

#[test]
fn an_endpoint_url_keeps_its_commas_and_the_variable_separates_endpoints_by_blanks() {
    let api = RecordingServer::start();
    let other = RecordingServer::start();
    let sb = Sandbox::new();
    let book = sb.write(
        "two-endpoints.yaml",
        r#"
id: two-endpoints
title: Two endpoints
severity: P3
endpoints:
  api: { default: "http://127.0.0.1:9" }
  other: { default: "http://127.0.0.1:9" }
steps:
  - id: look
    checks:
      - id: api
        http: { url: "{{ endpoints.api }}" }
      - id: other
        http: { url: "{{ endpoints.other }}" }
"#,
    );
    let book = book.to_str().unwrap().to_string();
    let book = book.as_str();
    let flag = format!("api={}/series?match=a,b", api.url);
    let flagged = sb.run(&["run", book, "-e", &flag, "--new"]);
    assert_eq!(flagged.code, 3, "other is down: {}", flagged.stderr);
    let seen = api.recorded();
    assert_eq!(seen.len(), 1, "{:?}", api.requests());
    assert_eq!(
        (seen[0].path.as_str(), seen[0].query.as_str()),
        ("/series", "match=a,b")
    );

    let both = format!("api={}/list?ids=1,2  other={}/health", api.url, other.url);
    let sb = sb.env("ONCALL_ENDPOINT", &both);
    let from_env = sb.run(&["run", book, "--new"]);
    assert_eq!(from_env.code, 0, "{}{}", from_env.stdout, from_env.stderr);
    assert_eq!(api.recorded()[1].query, "ids=1,2");
    assert_eq!(
        other.requests(),
        vec![("GET".to_string(), "/health".to_string())]
    );
}
