//! `oncall validate`: each problem at its file, line and column, with a hint.

use super::*;

#[test]
fn validate_points_at_each_problem_with_a_hint() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-field.yaml",
            "id: unknown-field\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fial_if: value > 1\n",
            "unknown-field.yaml:9:9: unknown field `fial_if`, expected one of id, title, unit, fail_if, warn_if, timeout, prometheus, prometheus_range, http, shell, k8s_pods, k8s_deployment, k8s_logs, k8s_events, k8s_rollout_history, k8s_exec, docker_containers, docker_logs, docker_stats, gpus, gpu_processes, disk, memory, load, dir_size, log_files, checksums, tcp, pg_ready, pg_connections, pg_long_queries, pg_blocked, pg_slow_statements, pg_locks, redis_ping, redis_list, redis_memory, nats, alerts\n  hint: did you mean `fail_if`?",
        ),
        (
            "duplicate.yaml",
            "id: duplicate\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n      - id: c\n        prometheus: up\n",
            "duplicate.yaml:9:13: duplicate check id 'c'\n  hint: 'c' is already used on line 7; ids must be unique in a runbook",
        ),
        (
            "missing-check.yaml",
            "id: missing-check\ntitle: T\nseverity: P1\nparams:\n  limit: { default: 3 }\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n  - id: t\n    when: checks.gpu_util.value > params.limit\n    guidance: scale up\n",
            "missing-check.yaml:12:11: `when` names check 'gpu_util', which does not exist here\n  hint: checks it can read here: c",
        ),
        (
            "missing-param.yaml",
            "id: missing-param\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fail_if: value > params.budget\n",
            "missing-param.yaml:9:18: threshold names param 'budget', which the runbook does not declare",
        ),
        (
            "bad-template.yaml",
            "id: bad-template\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        http: { url: \"http://x/{{ params.x \" }\n",
            "bad-template.yaml:8:42: url: unexpected end of input, expected end of variable block",
        ),
        (
            "bad-promql.yaml",
            "id: bad-promql\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: sum(rate(x[5m]) by (job)\n",
            "bad-promql.yaml:8:21: invalid PromQL: unclosed left parenthesis",
        ),
        (
            "bad-duration.yaml",
            "id: bad-duration\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        timeout: soon\n",
            "bad-duration.yaml:9:18: check `timeout`: 'soon' is not a duration\n  hint: write a duration such as 30s, 15m, 1h or 1h30m",
        ),
        (
            "bad-expression.yaml",
            "id: bad-expression\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n    checks:\n      - id: c\n        prometheus: up\n        fail_if: \"value >> 3\"\n",
            "bad-expression.yaml:9:26: threshold: unexpected `>`",
        ),
        (
            "post-check.yaml",
            "id: post-check\ntitle: T\nseverity: P5\nsteps:\n  - id: s\n    checks:\n      - id: c\n        http: { url: \"http://x/\", method: POST }\n    wait: { check: nope, until: value < 1, timeout: 5m }\n",
            "post-check.yaml:3:11: severity 'P5' is not one of P0, P1, P2, P3",
        ),
        (
            "not-yaml.yaml",
            "id: x\ntitle: [unclosed\n",
            "not-yaml.yaml:2:8: ",
        ),
        ("empty.yaml", "", "empty.yaml:"),
        (
            "short-secret.yaml",
            "id: short-secret\ntitle: T\nseverity: P1\nparams:\n  token: { secret: true, default: abc }\nsteps:\n  - id: s\n    guidance: read\n",
            "short-secret.yaml:5:35: param 'token' is secret, but its default has 3 character(s): too short to mask reliably wherever it appears\n  hint: a secret needs at least 6 characters; or leave the default out and pass it with -p token=VALUE",
        ),
    ];
    for (name, text, expected) in cases {
        sb.write(name, text);
        let ran = sb.run(&["validate", name]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.starts_with(expected),
            "{name}:\nexpected: {expected}\nactual:   {}",
            ran.stdout
        );
        assert!(!ran.stderr.contains("panicked"), "{name}: {}", ran.stderr);
    }
    let post = sb.run(&["validate", "post-check.yaml"]);
    assert!(
        post.stdout
            .contains("post-check.yaml:8:43: a check only reads: method 'POST' is not allowed"),
        "{}",
        post.stdout
    );
    assert!(post.stdout.contains("post-check.yaml:9:20: wait polls check 'nope', which is not defined in this or an earlier step"));
    // `run` refuses an invalid runbook with the same words, before opening an incident.
    let run = sb.run(&["run", "duplicate.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("duplicate.yaml:9:13: duplicate check id 'c'"),
        "{}",
        run.stderr
    );
    assert!(sb.incidents().is_empty());
}

/// A check or an action has exactly one kind: none, or a second one, is refused where it stands,
/// with the kinds that would be valid; a misspelt kind gets "did you mean".
#[test]
fn each_check_and_action_has_exactly_one_kind() {
    let sb = Sandbox::new();
    let head = "id: kinds\ntitle: T\nseverity: P1\nsteps:\n  - id: s\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "no-kind.yaml",
            "    checks:\n      - id: up\n        prometheus: up\n      - id: nothing\n        title: reads nothing\n",
            "no-kind.yaml:9:9: check 'nothing' has no backend\n  hint: give it one of: prometheus, prometheus_range, http, shell, k8s_pods, k8s_deployment, k8s_logs, k8s_events, k8s_rollout_history, k8s_exec, docker_containers, docker_logs, docker_stats, gpus, gpu_processes, disk, memory, load, dir_size, log_files, checksums, tcp, pg_ready, pg_connections, pg_long_queries, pg_blocked, pg_slow_statements, pg_locks, redis_ping, redis_list, redis_memory, nats, alerts\n",
        ),
        (
            "two-kinds.yaml",
            "    checks:\n      - id: both\n        prometheus: up\n        memory: {}\n",
            "two-kinds.yaml:9:17: check 'both' has more than one backend: `prometheus` and `memory`\n  hint: split it into one check per backend\n",
        ),
        (
            "action-no-kind.yaml",
            "    actions:\n      - id: idle\n        title: changes nothing\n",
            "action-no-kind.yaml:7:9: action 'idle' has no backend\n  hint: give it one of: http, shell, k8s_scale, k8s_restart, k8s_patch, k8s_delete_pod, k8s_exec, docker, docker_prune, docker_scale, gpu_kill, delete_files, pg_cancel, pg_terminate, pg_analyze, pg_reindex, silence, expire_silence, notify, pagerduty\n",
        ),
        (
            "misspelt-kind.yaml",
            "    actions:\n      - id: scale\n        k8s_scal: { deployment: x, replicas: 2 }\n",
            "misspelt-kind.yaml:8:9: unknown field `k8s_scal`, expected one of id, title, when, after, reverts, timeout, approval, approval_timeout, http, shell, k8s_scale, k8s_restart, k8s_patch, k8s_delete_pod, k8s_exec, docker, docker_prune, docker_scale, gpu_kill, delete_files, pg_cancel, pg_terminate, pg_analyze, pg_reindex, silence, expire_silence, notify, pagerduty\n  hint: did you mean `k8s_scale`?\n",
        ),
        (
            "approval-on-check.yaml",
            "    checks:\n      - id: c\n        approval: two-person\n        http: { url: \"http://x\" }\n",
            "approval-on-check.yaml:8:9: unknown field `approval`, expected one of id, title, unit, fail_if, warn_if, timeout, prometheus,",
        ),
        (
            "approval-three.yaml",
            "    actions:\n      - id: r\n        approval: three-person\n        http: { method: POST, url: \"http://x\" }\n",
            "approval-three.yaml:8:19: unknown variant `three-person`, expected one of two-person\n  hint: write one of: two-person\n",
        ),
        (
            "approval-timeout-alone.yaml",
            "    actions:\n      - id: r\n        approval_timeout: 5m\n        http: { method: POST, url: \"http://x\" }\n",
            "approval-timeout-alone.yaml:8:27: `approval_timeout` on action 'r', which needs no second approval\n  hint: add `approval: two-person`, or remove `approval_timeout`\n",
        ),
        (
            "kind-field.yaml",
            "    checks:\n      - id: logs\n        k8s_logs: { deployment: w, matches: \"(\", keep: 0 }\n",
            "kind-field.yaml:8:45: invalid regular expression: error: unclosed group\nkind-field.yaml:8:56: `keep` 0 is out of range\n  hint: it may be 1 to 1000\n",
        ),
    ];
    for (name, steps, expected) in cases {
        sb.write(name, &format!("{head}{steps}"));
        let ran = sb.run(&["validate", name]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.starts_with(expected),
            "{name}:\nexpected: {expected}\nactual:   {}",
            ran.stdout
        );
    }
}

#[test]
fn a_revert_without_a_verification_to_wait_for_is_refused_where_it_stands() {
    let sb = Sandbox::new();
    // Each revert is found from what the actions touch, not from a marker the author may forget.
    let text = "\
id: reverts
title: T
severity: P1
steps:
  - id: mitigate
    actions:
      - id: scale_up
        k8s_scale: { namespace: ns, deployment: worker, replicas: 10 }
      - id: pause
        k8s_patch: { namespace: ns, kind: deployment, name: gateway, patch: { metadata: { annotations: { paused: \"true\" } } } }
      - id: small_batches
        shell: { command: \"tool config set batch 1\" }
  - id: verify
    checks:
      - id: errors
        prometheus: up
    wait: { check: errors, until: value < 1, timeout: 5m }
  - id: undo
    actions:
      - id: scale_back
        k8s_scale: { namespace: ns, deployment: worker, replicas: previous }
      - id: resume
        k8s_patch: { namespace: ns, kind: deployment, name: gateway, patch: { metadata: { annotations: { paused: \"false\" } } } }
      - id: big_batches
        shell: { command: \"tool config set batch {{ params.batch }}\" }
      - id: scale_more
        reverts: false
        k8s_scale: { namespace: ns, deployment: worker, replicas: 20 }
      - id: guarded
        after: mitigate
        expire_silence: {}
params:
  batch: { default: 8 }
";
    sb.write("reverts.yaml", text);
    let ran = sb.run(&["validate", "reverts.yaml"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    let hint = "  hint: add `after: verify` (a step whose wait shows the mitigation worked) so it is offered only once that wait was met";
    for expected in [
        format!("reverts.yaml:20:13: action 'scale_back' puts back deployment ns/worker spec.replicas: it is a revert, and would be offered even when the mitigation did not work\n{hint}"),
        format!("reverts.yaml:22:13: action 'resume' puts back what 'pause' set (deployment ns/gateway metadata.annotations.paused): it is a revert, and would be offered even when the mitigation did not work\n{hint}"),
        format!("reverts.yaml:24:13: action 'big_batches' puts back what 'small_batches' set (shell: tool config set batch): it is a revert, and would be offered even when the mitigation did not work\n{hint}"),
        "reverts.yaml:30:16: `after` names step 'mitigate', which has no wait: nothing says whether it was met\n  hint: steps with a wait before it: verify".to_string(),
    ] {
        assert!(ran.stdout.contains(&expected), "{expected}\nnot in:\n{}", ran.stdout);
    }
    // `reverts: false` (a second, larger scale) is taken at its word; the problems are these four.
    assert!(!ran.stdout.contains("scale_more"), "{}", ran.stdout);
    assert_eq!(
        ran.stdout.matches("reverts.yaml:").count(),
        4,
        "{}",
        ran.stdout
    );

    // Guarded, the same runbook validates; a guard must be a step with a wait before the action.
    let fixed = text
        .replace(
            "      - id: scale_back\n",
            "      - id: scale_back\n        after: verify\n",
        )
        .replace(
            "      - id: resume\n",
            "      - id: resume\n        after: verify\n",
        )
        .replace(
            "      - id: big_batches\n",
            "      - id: big_batches\n        after: verify\n",
        )
        .replace("after: mitigate", "after: verify");
    sb.write("fixed.yaml", &fixed);
    let ok = sb.run(&["validate", "fixed.yaml"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let later = fixed.replace(
        "        after: verify\n        expire_silence",
        "        after: undo\n        expire_silence",
    );
    sb.write("later.yaml", &later);
    let refused = sb.run(&["validate", "later.yaml"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stdout
            .contains("`after` names step 'undo', which is not before this action's step"),
        "{}",
        refused.stdout
    );
}

/// An escalation's condition is one of a few words (`unless:`) or a comparison of the severity
/// (`if:`): anything else is named at its line and column with what is allowed; `unless:
/// acknowledged` needs an action that acknowledges. An endpoint's default reads params only.
#[test]
fn escalation_conditions_and_endpoint_templates_are_validated() {
    let sb = Sandbox::new();
    let head = "id: esc\ntitle: T\nseverity: P1\nparams:\n  namespace: { default: video }\n  token: { secret: true, default: abcdefgh }\n";
    let ack = "steps:\n  - id: s\n    actions:\n      - id: ack\n        silence: { matchers: { alertname: Down }, duration: 1h }\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "misspelt-unless.yaml",
            format!(
                "{head}escalation:\n  - {{ after: 30m, to: Secondary, unless: acknowleged }}\n{ack}"
            ),
            "misspelt-unless.yaml:8:42: escalation `unless: acknowleged` is not a condition oncall knows\n  hint: did you mean 'acknowledged'? `unless:` takes one of: acknowledged (a silence or PagerDuty acknowledgement was applied), mitigated (a mitigation was applied and its wait met), resolved (the incident was resolved)\n",
        ),
        (
            "bad-if.yaml",
            format!(
                "{head}escalation:\n  - {{ after: 2h, to: CTO, if: impact == critical }}\n{ack}"
            ),
            "bad-if.yaml:8:31: escalation `if`: 'impact == critical' is not a condition on the severity\n  hint: `if:` compares the incident's severity: severity == P0 (or !=, <=, >=, <, >, with P0..P3; P0 is the most severe)\n",
        ),
        (
            "bad-level.yaml",
            format!("{head}escalation:\n  - {{ after: 2h, to: CTO, if: severity == P9 }}\n{ack}"),
            "bad-level.yaml:8:31: escalation `if`: 'severity == P9' compares the severity with something not P0..P3\n",
        ),
        (
            "nothing-acknowledges.yaml",
            format!(
                "{head}escalation:\n  - {{ after: 30m, to: Secondary, unless: acknowledged }}\nsteps:\n  - id: s\n    guidance: look\n"
            ),
            "nothing-acknowledges.yaml:8:42: escalation `unless: acknowledged`, but no action of this runbook acknowledges: it would always be said\n  hint: add a `silence` or `pagerduty` action that acknowledges the alert, or drop the condition\n",
        ),
        (
            "endpoint-reads-a-check.yaml",
            format!(
                "{head}endpoints:\n  api: {{ default: \"k8s://{{{{ incident.id }}}}/api:8080\" }}\n{ack}"
            ),
            "endpoint-reads-a-check.yaml:8:19: default of endpoint 'api' reads 'incident.id': an endpoint's default may read params only, as it is settled before any check runs\n  hint: e.g. k8s://{{ params.namespace }}/api-gateway:8080\n",
        ),
        (
            "endpoint-reads-a-secret.yaml",
            format!(
                "{head}endpoints:\n  api: {{ default: \"http://{{{{ params.token }}}}@api:8080\" }}\n{ack}"
            ),
            "endpoint-reads-a-secret.yaml:8:19: default of endpoint 'api' reads the secret param 'token': an endpoint's URL is shown and recorded\n",
        ),
        (
            "endpoint-unknown-param.yaml",
            format!(
                "{head}endpoints:\n  api: {{ default: \"k8s://{{{{ params.ns }}}}/api:8080\" }}\n{ack}"
            ),
            "endpoint-unknown-param.yaml:8:",
        ),
    ];
    for (name, text, expected) in cases {
        sb.write(name, text);
        let ran = sb.run(&["validate", name]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.starts_with(expected),
            "{name}:\nexpected: {expected}\nactual:   {}",
            ran.stdout
        );
    }
    let unknown = sb.run(&["validate", "endpoint-unknown-param.yaml"]);
    assert!(
        unknown.stdout.contains(
            "default of endpoint 'api' names param 'ns', which the runbook does not declare"
        ),
        "{}",
        unknown.stdout
    );
    // Every condition the vocabulary has is valid, and a default built from a param.
    sb.write(
        "good.yaml",
        &format!("{head}endpoints:\n  api: {{ default: \"k8s://{{{{ params.namespace }}}}/api:8080\" }}\nescalation:\n  - {{ after: 15m, to: Primary, unless: acknowledged }}\n  - {{ after: 1h, to: Manager, unless: mitigated }}\n  - {{ after: 2h, to: CTO, if: severity <= P1, unless: resolved }}\n{ack}"),
    );
    let good = sb.run(&["validate", "good.yaml"]);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
}
