//! Secrets × outputs: no secret on the screen, in the JSON report, the timeline, `oncall
//! timeline`, `show` or an error message, whatever characters it holds; the tool's own words and
//! events are never masked.

use super::{everything, runbook};
use crate::support::servers::{EchoServer, SlowServer};
use crate::support::{Sandbox, events};
use std::time::Duration;

const TOKEN: &str = "tok3n,'\"-Zx9";
/// A URL password with a comma and quotes, as written in a URL (percent-encoded) and as sent.
const URL_PASSWORD: &str = "p%2Ca%22ss'w0rd";
const URL_PASSWORD_DECODED: &str = "p,a\"ss'w0rd";
/// base64("alice:p,a\"ss'w0rd"): the Basic credential reqwest makes from the URL's userinfo.
const BASIC: &str = "YWxpY2U6cCxhInNzJ3cwcmQ=";
/// A secret that is also a word of the tool's and an event's name.
const WORD: &str = "finished";

const SECRETS: &str = r#"
id: secrets
title: Credentials that come back
severity: P3
params:
  token: { secret: true }
  word: { secret: true }
endpoints:
  api: {}
  basic: {}
steps:
  - id: look
    checks:
      - id: bearer
        http: { url: "{{ endpoints.api }}/echo", json: echo, headers: { Authorization: "Bearer {{ params.token }}" } }
      - id: api_key
        http: { url: "{{ endpoints.api }}/echo", json: echo, headers: { X-Api-Key: "key-{{ params.token }}" } }
      - id: basic
        http: { url: "{{ endpoints.basic }}/echo", json: echo }
      - id: said
        shell: { command: "echo {{ params.word }} {{ params.token }}" }
        fail_if: "value > 100"
    actions:
      - id: post
        http: { method: POST, url: "{{ endpoints.api }}/act?t={{ params.token }}", body: { t: "{{ params.token }}" }, headers: { Authorization: "Bearer {{ params.token }}" } }
    messages: [said]
messages:
  said: "token {{ params.token }}, word {{ params.word }}"
"#;

fn assert_no_secret(all: &str) {
    for secret in [
        TOKEN,
        "tok3n,", // shell-quoted or percent-encoded forms start the same
        "tok3n%2C",
        URL_PASSWORD,
        URL_PASSWORD_DECODED,
        BASIC,
    ] {
        assert!(!all.contains(secret), "{secret:?} leaked in:\n{all}");
    }
}

#[test]
fn secrets_with_any_character_stay_masked_in_every_output() {
    let api = EchoServer::start("null");
    let sb = Sandbox::new();
    runbook(&sb, "secrets", SECRETS);
    let basic = api
        .url
        .replace("http://", &format!("http://alice:{URL_PASSWORD}@"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "-p",
            &format!("token={TOKEN}"),
            "-p",
            &format!("word={WORD}"),
            "--endpoint",
            &format!("api={}", api.url),
            "--endpoint",
            &format!("basic={basic}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut run = vec!["run".to_string(), "secrets".into()];
    run.extend(args(&["--yes"]));
    let ran = sb.run(&run.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    // The server did get the credentials: what is masked is only what comes back.
    let sent = api.recorded();
    assert!(
        sent.iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(
        sent.iter()
            .any(|r| r.header("authorization") == Some(&format!("Basic {BASIC}")))
    );
    let mut all = everything(&sb, &ran);
    let mut json = vec!["run".to_string(), "secrets".into()];
    json.extend(args(&["--dry-run", "--output", "json"]));
    let report = sb.run(&json.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(report.code, 0, "{}", report.stderr);
    all.push_str(&report.stdout);
    // `show` takes no params: it names the missing ones, and shows the endpoints' URLs.
    let (api_endpoint, basic_endpoint) = (format!("api={}", api.url), format!("basic={basic}"));
    let shown = sb.run(&[
        "show",
        "secrets",
        "--endpoint",
        &api_endpoint,
        "--endpoint",
        &basic_endpoint,
    ]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    all.push_str(&shown.stdout);
    assert_no_secret(&all);
    assert!(
        all.contains("x-api-key: ***"),
        "the echo is masked, not dropped"
    );

    // A secret that is a common word masks values only: no event withheld, the summary whole.
    let timeline = sb.timeline();
    assert!(!all.contains("withheld"));
    assert_eq!(events(&timeline, "run_finished").len(), 1);
    assert!(
        ran.stdout.contains("Summary: all checks ok (exit 0)"),
        "{}",
        ran.stdout
    );
    let said = events(&timeline, "check_finished")
        .into_iter()
        .find(|e| e["observation"]["check"] == "said")
        .unwrap()["observation"]
        .clone();
    assert_eq!(said["verdict"], "ok");
    assert!(!said.to_string().contains(WORD), "{said}");
    let message = &events(&timeline, "message")[0]["text"];
    assert_eq!(message, "token ***, word ***");
}

#[test]
fn secrets_too_short_to_mask_are_refused_before_the_run() {
    let sb = Sandbox::new();
    runbook(&sb, "secrets", SECRETS);
    for short in ["ab", "fail"] {
        let token = format!("token={short}");
        let word = format!("word={WORD}");
        let ran = sb.run(&[
            "run",
            "secrets",
            "-p",
            &token,
            "-p",
            &word,
            "--endpoint",
            "api=http://127.0.0.1:9",
            "--endpoint",
            "basic=http://127.0.0.1:9",
        ]);
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr
                .contains("param 'token' is secret, but its value has")
                && ran.stderr.contains("too short to mask reliably"),
            "{}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains(short) || short == "ab",
            "{}",
            ran.stderr
        );
        assert!(sb.incidents().is_empty(), "nothing was opened");
    }
}

#[test]
fn a_password_in_a_flag_never_reaches_an_error_message() {
    let am = SlowServer::start(Duration::ZERO, "[]", "application/json");
    let sb = Sandbox::new();
    let url = am
        .url
        .replace("http://", &format!("http://admin:{URL_PASSWORD}@"));
    let ran = sb.run(&[
        "run",
        "--alert",
        "VideoProcessingErrorBudgetExhausted",
        "--alertmanager-url",
        &url,
    ]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no firing alert named"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("admin:***@"), "{}", ran.stderr);
    assert_no_secret(&ran.stderr);
    let listed = sb.run(&["alerts", "--alertmanager-url", &url]);
    assert_no_secret(&format!("{}{}", listed.stdout, listed.stderr));
}

#[test]
fn a_password_in_a_url_in_the_runbooks_words_is_masked_wherever_they_show() {
    const PASSWORD: &str = "Wr1tten-pw";
    let sb = Sandbox::new();
    let text = r#"
id: words
title: "Orders database postgres://app:Wr1tten-pw@db:5432/orders is slow"
description: "See https://ops:Wr1tten-pw@wiki.example/db"
severity: P2
steps:
  - id: look
    title: "Look at redis://:Wr1tten-pw@cache:6379"
    guidance: "Connect with psql postgres://app:Wr1tten-pw@db:5432/orders and look."
    checks:
      - id: hello
        title: "hello from postgres://app:Wr1tten-pw@db"
        shell: { command: "echo hello" }
    messages: [update]
messages:
  update: "Investigating postgres://app:Wr1tten-pw@db:5432/orders"
"#;
    runbook(&sb, "words", text);
    let ran = sb.run(&["run", "words"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("postgres://app:***@db:5432/orders")
            && ran.stdout.contains("Investigating postgres://app:***@db"),
        "the words are shown, masked: {}",
        ran.stdout
    );
    let json = sb.run(&["run", "words", "-o", "json", "--new"]);
    let mut all = everything(&sb, &json);
    all.push_str(&ran.stdout);
    all.push_str(&sb.run(&["show", "words"]).stdout);
    all.push_str(&sb.run(&["report"]).stdout);
    assert!(!all.contains(PASSWORD), "{all}");
}
