//! Values are data: a param (from `-p`, the config or an alert's labels) cannot change the shape
//! of a request, a query or a command.

use super::runbook;
use crate::support::servers::{EchoServer, RecordingServer};
use crate::support::{Sandbox, events, observation};

#[test]
fn a_param_cannot_rewrite_a_url_path_or_query() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    runbook(
        &sb,
        "cancel-job",
        r#"
id: cancel-job
title: Cancel a job
severity: P3
params:
  job: { help: the job to cancel }
endpoints:
  api: {}
steps:
  - id: cancel
    actions:
      - id: cancel
        http: { method: POST, url: "{{ endpoints.api }}/api/jobs/{{ params.job }}/cancel?reason={{ params.job }}" }
"#,
    );
    let endpoint = format!("api={}", api.url);
    let ran = sb.run(&[
        "run",
        "cancel-job",
        "--yes",
        "--endpoint",
        &endpoint,
        "-p",
        "job=../../admin/purge-all?x=",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = api.recorded();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].path,
        "/api/jobs/..%2F..%2Fadmin%2Fpurge-all%3Fx%3D/cancel"
    );
    assert_eq!(sent[0].query, "reason=..%2F..%2Fadmin%2Fpurge-all%3Fx%3D");
    // A value that is a whole dot segment would climb even encoded: refused, nothing sent.
    let ran = sb.run(&[
        "run",
        "cancel-job",
        "--yes",
        "--endpoint",
        &endpoint,
        "-p",
        "job=..",
    ]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("would climb its path"),
        "{}",
        ran.stdout
    );
    assert_eq!(api.recorded().len(), 1);
}

#[test]
fn an_interpolated_label_matcher_without_promql_str_does_not_validate() {
    let sb = Sandbox::new();
    let path = sb.write(
        "matcher.yaml",
        "id: matcher\ntitle: t\nseverity: P3\nparams:\n  ns: { default: x }\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: 'sum(up{namespace=\"{{ params.ns }}\"})'\n",
    );
    let ran = sb.run(&["validate", path.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    assert!(
        ran.stdout.contains(
            "matcher.yaml:10:40: a template value inside a label matcher without `promql_str`"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("hint: write it in double quotes and escape it")
    );
}

#[test]
fn a_value_never_becomes_an_option_of_a_command() {
    let sb = Sandbox::new();
    runbook(
        &sb,
        "sort-file",
        "id: sort-file\ntitle: t\nseverity: P3\nparams:\n  file: { default: input.txt }\nsteps:\n  - id: s\n    checks:\n      - id: sorted\n        shell: { command: \"sort {{ params.file }}\" }\n",
    );
    sb.write("input.txt", "b\na\n");
    let written = sb.work().join("written-by-sort");
    let param = format!("file=-o{}", written.display());
    let ran = sb.run(&[
        "run",
        "sort-file",
        "--dry-run",
        "--output",
        "json",
        "-p",
        &param,
    ]);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    let sorted = observation(&ran.json(), "sorted").clone();
    assert_eq!(sorted["verdict"], "error");
    assert!(
        sorted["reason"]
            .as_str()
            .unwrap()
            .contains("starts with '-': the command would take it as an option"),
        "{sorted}"
    );
    assert!(!written.exists(), "sort ran with -o");
}

#[test]
fn one_param_flag_sets_one_param_whatever_its_value_holds() {
    let sb = Sandbox::new();
    runbook(
        &sb,
        "two-params",
        "id: two-params\ntitle: t\nseverity: P3\nparams:\n  name: { default: n }\n  mode: { default: safe }\nsteps:\n  - id: s\n    checks:\n      - id: mode\n        shell: { command: \"echo mode={{ params.mode }}\" }\n",
    );
    let ran = sb.run(&[
        "run",
        "two-params",
        "--output",
        "json",
        "-p",
        "name=a\nmode=unsafe",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let report = ran.json();
    assert_eq!(observation(&report, "mode")["text"], "mode=safe");
    let timeline = sb.timeline();
    let opened = &events(&timeline, "incident_opened")[0]["params"];
    assert_eq!(opened["name"], "a\nmode=unsafe");
    assert_eq!(opened["mode"], "safe");
    // The variable still takes one param per line.
    let sb = sb.env("ONCALL_PARAMS", "name=b\nmode=checked");
    let ran = sb.run(&["run", "two-params", "--output", "json"]);
    assert_eq!(observation(&ran.json(), "mode")["text"], "mode=checked");
}

#[test]
fn the_runbooks_authorization_header_wins_over_url_userinfo() {
    let api = EchoServer::start("null");
    let sb = Sandbox::new();
    runbook(
        &sb,
        "auth",
        "id: auth\ntitle: t\nseverity: P3\nendpoints:\n  api: {}\nsteps:\n  - id: s\n    checks:\n      - id: health\n        http: { url: \"{{ endpoints.api }}/health\", headers: { Authorization: \"Bearer runbook-token-1\" } }\n",
    );
    let endpoint = format!(
        "api={}",
        api.url.replace("http://", "http://alice:url-password-1@")
    );
    let ran = sb.run(&["run", "auth", "--output", "json", "--endpoint", &endpoint]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = api.recorded();
    let auth: Vec<&str> = sent[0]
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(auth, ["Bearer runbook-token-1"], "exactly the runbook's");
    let health = observation(&ran.json(), "health").clone();
    assert!(
        health["text"].as_str().unwrap().contains(
            "the runbook's Authorization header is sent, not the user and password in the URL"
        ),
        "{health}"
    );
}

#[test]
fn a_param_cannot_steer_a_kubernetes_request_to_another_object() {
    // A plain server as the API server: it records whatever path a request takes.
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let kubeconfig = sb.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]\ncurrent-context: x\n",
            api.url
        ),
    );
    let sb = sb.env("KUBECONFIG", kubeconfig.to_str().unwrap());
    runbook(
        &sb,
        "kube-names",
        "id: kube-names\ntitle: t\nseverity: P3\nparams:\n  deployment: { default: worker }\nsteps:\n  - id: s\n    checks:\n      - id: dep\n        k8s_deployment: { name: \"{{ params.deployment }}\" }\n      - id: events\n        k8s_events: { object: \"deployment/{{ params.deployment }}\" }\n    actions:\n      - id: restart\n        k8s_restart: { deployment: \"{{ params.deployment }}\" }\n",
    );
    let param = "deployment=../../../api/v1/namespaces/kube-system/secrets/token,type=Normal";
    let ran = sb.run(&[
        "run",
        "kube-names",
        "--yes",
        "--output",
        "json",
        "-p",
        param,
    ]);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    let report = ran.json();
    for check in ["dep", "events"] {
        let reason = observation(&report, check)["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            reason.contains("is not a Kubernetes name"),
            "{check}: {reason}"
        );
    }
    assert!(
        report.to_string().contains("is not a Kubernetes name"),
        "the restart is refused too"
    );
    assert!(api.recorded().is_empty(), "{:?}", api.requests());
}

/// In a pod as on the host: a value inside `sh -c` is quoted for that shell, a value that would
/// be read as an option is refused, and the fake API server's exec stream receives exactly that.
#[test]
fn a_value_is_data_inside_a_pod_too() {
    let kube = crate::kubernetes::exec_cluster();
    let sb = crate::kubernetes::sandbox(&kube);
    runbook(
        &sb,
        "pod-echo",
        r#"
id: pod-echo
title: Values in pods
severity: P3
params:
  p: { default: hello }
  q: { default: /tmp }
steps:
  - id: look
    checks:
      - id: echo
        k8s_exec: { namespace: video-processing, pod: gpu-worker-a, command: [sh, -c, "echo {{ params.p }}"] }
      - id: list
        k8s_exec: { namespace: video-processing, pod: gpu-worker-a, command: [ls, "{{ params.q }}", "--color={{ params.q }}"] }
    actions:
      - id: mark
        k8s_exec: { namespace: video-processing, pod: gpu-worker-a, command: [/bin/busybox, sh, -ec, "touch /tmp/{{ params.p }}"] }
"#,
    );
    let hostile = "p=$(id); rm -rf /tmp/x";
    let ran = sb.run(&["run", "pod-echo", "-p", hostile, "--yes"]);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    let execs: Vec<Vec<String>> = kube.execs().into_iter().map(|(_, _, argv)| argv).collect();
    let expected = [
        vec!["sh", "-c", "echo '$(id); rm -rf /tmp/x'"],
        vec!["ls", "/tmp", "--color=/tmp"],
        vec![
            "/bin/busybox",
            "sh",
            "-ec",
            "touch /tmp/'$(id); rm -rf /tmp/x'",
        ],
    ];
    for argv in expected {
        assert!(
            execs.contains(&argv.iter().map(|s| s.to_string()).collect()),
            "{argv:?} not in {execs:?}"
        );
    }
    assert_eq!(execs.len(), 3, "{execs:?}");

    // A leading '-' would be an option: refused in a plain argument and in a script, and the
    // runbook's own `--color=` keeps taking it as a value.
    let before = kube.execs().len();
    let ran = sb.run(&[
        "run", "pod-echo", "-p", "p=-rf", "-p", "q=-la", "--yes", "--new",
    ]);
    let execs: Vec<Vec<String>> = kube.execs()[before..]
        .iter()
        .map(|(_, _, argv)| argv.clone())
        .collect();
    assert!(
        execs.is_empty(),
        "nothing ran with an option from a value: {execs:?}"
    );
    for check in ["echo", "list"] {
        let seen = &ran.stdout;
        assert!(
            seen.contains("starts with '-': the command would take it as an option"),
            "{check}: {seen}"
        );
    }
    let timeline = sb.timeline();
    let mark = events(&timeline, "action_finished");
    assert!(
        mark.iter()
            .all(|e| e["action"] != "mark" || e["result"] != "applied"),
        "{mark:?}"
    );
}

#[test]
fn validate_points_at_a_template_inside_quotes_in_a_pods_shell_script_and_at_a_templated_program() {
    let sb = Sandbox::new();
    let file = sb.write(
        "quoted.yaml",
        r#"id: quoted
title: Quoted
severity: P3
params:
  p: { default: x }
steps:
  - id: look
    checks:
      - id: echo
        k8s_exec: { pod: a, command: [bash, -lc, "echo '{{ params.p }}'"] }
      - id: which
        k8s_exec: { pod: a, command: ["{{ params.p }}", --version] }
"#,
    );
    let ran = sb.run(&["validate", file.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(
            "quoted.yaml:10:57: a template value inside quotes in a shell script (sh -c)"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("quoted.yaml:12:39: the program of a k8s_exec command is a template"),
        "{}",
        ran.stdout
    );
}
