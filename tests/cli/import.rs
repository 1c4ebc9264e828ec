//! `oncall import`: Markdown runbooks, the seeds among them, become runbooks that validate, show
//! and run, with their commands native where oncall has a backend.
use super::kubernetes::{exec_cluster, sandbox};
use super::support::{Ran, Sandbox, fixture, observation};
use super::*;

/// Imports a page and returns the JSON report (with the runbook's text) and `show`'s JSON of it.
fn import(md: &str) -> (Value, Value) {
    let sb = Sandbox::new();
    sb.write("page.md", md);
    let ran = sb.run(&["import", "page.md", "-o", "json"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(report["valid"], true, "{:#}", report["problems"]);
    sb.write("page.yaml", report["runbook"].as_str().unwrap());
    let shown = sb.run(&["show", "page.yaml", "-o", "json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    (report, shown.json())
}

/// Every check and action of a shown runbook: (step, kind, id), checks first in each step.
fn items(shown: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for step in shown["steps"].as_array().unwrap() {
        for what in ["checks", "actions"] {
            for item in step[what].as_array().unwrap() {
                out.push((
                    step["id"].as_str().unwrap().to_string(),
                    format!(
                        "{}:{}",
                        &what[..what.len() - 1],
                        item["kind"].as_str().unwrap()
                    ),
                    item["id"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn kinds(shown: &Value) -> Vec<String> {
    items(shown).into_iter().map(|(_, kind, _)| kind).collect()
}

fn seed(sb: &Sandbox, name: &str, to: &str) -> Ran {
    let page = fixture(&format!("seeds/{name}"));
    let ran = sb.run(&["import", page.to_str().unwrap(), "--to", to]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    ran
}

#[test]
fn both_seeds_import_to_runbooks_that_validate_show_and_are_mostly_native() {
    for (name, id, at_least) in [
        ("error-budget-runbook.md", "error-budget-runbook", 90.0),
        (
            "incident-response-playbook.md",
            "incident-response-playbook",
            75.0,
        ),
    ] {
        let sb = Sandbox::new();
        let page = fixture(&format!("seeds/{name}"));
        let ran = sb.run(&["import", page.to_str().unwrap(), "-o", "json"]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let report = ran.json();
        assert_eq!(report["valid"], true, "{name}: {:#}", report["problems"]);
        let share = report["native_share"].as_f64().unwrap();
        assert!(
            share >= at_least,
            "{name}: {share}% native: {:#}",
            report["report"]
        );
        let counts = &report["report"];
        let total = counts["native_checks"].as_u64().unwrap()
            + counts["native_actions"].as_u64().unwrap()
            + counts["shell_checks"].as_array().unwrap().len() as u64
            + counts["shell_actions"].as_array().unwrap().len() as u64
            + counts["skipped"].as_array().unwrap().len() as u64;
        assert_eq!(counts["commands"].as_u64(), Some(total), "{counts:#}");

        // Written as a user would: into ./runbooks, then validated and shown by id.
        let written = seed(&sb, name, &format!("runbooks/{id}.yaml"));
        assert!(written.stdout.is_empty(), "the runbook went to the file");
        assert!(
            written.stderr.contains("valid; next: oncall show"),
            "{}",
            written.stderr
        );
        let valid = sb.run(&["validate", &format!("runbooks/{id}.yaml")]);
        assert_eq!(valid.code, 0, "{}{}", valid.stdout, valid.stderr);
        let shown = sb.run(&["show", id]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(
            shown.stdout.contains("line ") || shown.stdout.contains("1. "),
            "{}",
            shown.stdout
        );
    }
}

#[test]
fn the_error_budget_seed_reads_prometheus_and_kubernetes_natively() {
    let (report, shown) =
        import(&std::fs::read_to_string(fixture("seeds/error-budget-runbook.md")).unwrap());
    assert_eq!(report["report"]["shell_actions"], serde_json::json!([]));
    let kinds = kinds(&shown);
    for kind in [
        "check:prometheus",
        "check:k8s_pods",
        "check:k8s_logs",
        "check:http",
        "check:k8s_exec",
        "action:k8s_scale",
        "action:k8s_restart",
        "action:k8s_patch",
        "action:http",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert_eq!(shown["severity"], "P0", "the seed's Critical");
    let yaml = report["runbook"].as_str().unwrap();
    assert!(
        yaml.contains(
            "- { after: 30m, to: \"Secondary On-Call Engineer: Assist with complex issues\" }"
        ),
        "{yaml}"
    );
    assert!(yaml.contains("k8s_logs: { namespace: \"{{ params.namespace }}\", deployment: asr-worker, since: 1h, matches: \"(?i)timeout|memory|gpu\" }"), "{yaml}");
    // kubectl exec … -- curl localhost:8080 goes to the deployment's service through the API server.
    assert_eq!(
        shown["endpoints"]["api_gateway"],
        "k8s://video-processing/api-gateway:8080"
    );
    // The communication templates are messages.
    assert!(
        yaml.contains("\n  internal_update: |-\n    🚨 Video Processing Error Budget Exhausted"),
        "{yaml}"
    );
    // So is a quoted update in a list item.
    assert!(
        yaml.contains("  update_incident_channel: \"🚨 Video processing error budget exhausted - investigating\""),
        "{yaml}"
    );
}

#[test]
fn the_playbook_seed_keeps_what_oncall_cannot_read_as_reviewed_shell() {
    let sb = Sandbox::new();
    let ran = seed(&sb, "incident-response-playbook.md", "-");
    let yaml = &ran.stdout;
    // A program oncall does not know, even with a verb that reads: a shell action, asked first,
    // its line beside it and why (issue 25: `logger status` wrote to syslog).
    assert!(
        yaml.contains(
            "# line 263: vid-bench list-models --status=failed\n      # review: `vid-bench` is not a program oncall knows to only read (move it under `checks:` if it does)"
        ),
        "{yaml}"
    );
    // One that changes something: a shell action, asked first.
    assert!(
        ran.stderr
            .contains("shell actions (asked before each; review them):\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("    line 195: vid-bench config set max_batch_size 1\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("line 291: sleep 30: a pause"),
        "{}",
        ran.stderr
    );
    // MODEL_NAME is a param the run must be given, quoted by the template layer in the shell.
    assert!(
        yaml.contains(
            "shell: { command: \"vid-bench download-model --force {{ params.model_name }}\" }"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains("delete_files: { dir: \"/data/models/cache/{{ params.model_name }}\" }"),
        "{yaml}"
    );
    assert!(
        ran.stderr
            .contains("give these params when you run it (-p NAME=VALUE): model_name, project"),
        "{}",
        ran.stderr
    );
    // The native forms of its host commands.
    for line in [
        "log_files: { paths: [\"/var/log/vid-bench/*.log\"], matches: ERROR, keep: 20 }",
        "docker_scale: { project: \"{{ params.project }}\", service: benchmark, replicas: 2 }",
        "delete_files: { dir: /tmp, pattern: \"vid-bench-*\", older_than: 2d }",
        "pg_terminate: { check: long_queries }",
        "pg_reindex: { database: vid_bench }",
        "redis_list: { key: benchmark_queue, first: 11 }",
        "tcp: { address: \"redis-host:6379\" }",
    ] {
        assert!(yaml.contains(line), "{line}\n{yaml}");
    }
}

#[test]
fn a_dry_run_of_the_imported_error_budget_runbook_finds_the_error_rate_the_bundled_one_does() {
    let prom = Prometheus::start();
    let kube = exec_cluster();
    let gateway = RecordingServer::start();
    kube.proxy_to(
        "services",
        "video-processing",
        "api-gateway",
        "8080",
        &gateway.url,
    );
    kube.proxy_to(
        "services",
        "video-processing",
        "job-orchestrator",
        "8080",
        &gateway.url,
    );
    kube.proxy_to("services", "video-processing", "nats", "8222", &gateway.url);
    let sb = sandbox(&kube);
    seed(&sb, "error-budget-runbook.md", "runbooks/imported.yaml");
    let dry = |runbook: &str| {
        let ran = sb.run(&[
            "run",
            runbook,
            "--prometheus-url",
            &prom.url,
            "--dry-run",
            "-o",
            "json",
        ]);
        // 3: the fake cluster runs none of the seed's `kubectl exec` commands but the bundled ones.
        assert!(
            matches!(ran.code, 0 | 1 | 3),
            "{runbook}: {}{}",
            ran.stdout,
            ran.stderr
        );
        ran.json()
    };
    let bundled = dry("error-budget");
    let imported = dry("imported");
    let expected = observation(&bundled, "error_rate")["value"]
        .as_f64()
        .unwrap();
    let found = observation(&imported, "current_error_rate");
    assert_eq!(found["verdict"], "ok", "{found:#}");
    let value = found["value"].as_f64().unwrap();
    assert!(
        (value - expected).abs() < 1e-6,
        "imported {value}, bundled {expected}"
    );
    assert!(expected > 1.0, "the test data is over budget: {expected}");
    // The Kubernetes reads were native, and nothing was written.
    assert_eq!(
        observation(&imported, "worker_status")["verdict"],
        "fail",
        "a worker crash-loops"
    );
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    assert!(
        gateway.requests().iter().all(|(method, _)| method == "GET"),
        "{:?}",
        gateway.requests()
    );
}

#[test]
fn numbered_lists_with_indented_fences_and_prompts_and_continuations() {
    let md = "# Cache full\n\n## Severity\nHigh\n\n## Clean up\n\n1. **Look**\n   ```console\n   $ df -h /data\n   Filesystem  Size\n   /dev/sda1   100G\n   $ kubectl get pods \\\n       -n cache \\\n       -l app=cache\n   ```\n2. **Act**\n   ```bash\n   kubectl rollout restart deployment/cache -n cache\n   ```\n";
    let (report, shown) = import(md);
    assert_eq!(shown["severity"], "P1");
    assert_eq!(
        items(&shown),
        [
            ("clean-up".into(), "check:disk".into(), "disk_data".into()),
            (
                "clean-up".into(),
                "check:k8s_pods".into(),
                "pods_cache".into()
            ),
            (
                "clean-up".into(),
                "action:k8s_restart".into(),
                "restart_cache".into()
            ),
        ]
    );
    let yaml = report["runbook"].as_str().unwrap();
    // The output lines of the console block are not commands; the continuation is one command,
    // at the line it starts on.
    assert!(yaml.contains("# line 10: df -h /data"), "{yaml}");
    assert!(
        yaml.contains("# line 13: kubectl get pods -n cache -l app=cache"),
        "{yaml}"
    );
    assert_eq!(report["report"]["commands"], 3);
}

#[test]
fn several_commands_in_a_fence_and_comments_name_them() {
    let md = "# Queue\n\n## Look\n```sh\n# Check queue length\nredis-cli llen jobs; redis-cli ping && nvidia-smi # GPUs\n\n# Edit the config by hand: max_jobs = 10\n```\n";
    let (report, shown) = import(md);
    assert_eq!(
        items(&shown),
        [
            (
                "look".into(),
                "check:redis_list".into(),
                "queue_length".into()
            ),
            (
                "look".into(),
                "check:redis_ping".into(),
                "redis_ping".into()
            ),
            ("look".into(), "check:gpus".into(), "gpus".into()),
        ]
    );
    let yaml = report["runbook"].as_str().unwrap();
    assert!(yaml.contains("title: Check queue length"), "{yaml}");
    // A comment no command follows stays as guidance.
    assert!(
        yaml.contains("guidance: \"Edit the config by hand: max_jobs = 10\""),
        "{yaml}"
    );
}

#[test]
fn a_nested_fence_is_a_template_and_its_inner_commands_are_not_imported() {
    let md = "# Report\n\n## Check\n```bash\ncurl -f http://localhost:8000/health\n```\n\n## Post-incident template\n````markdown\n# Incident {title}\n```bash\nkubectl delete pod everything\n```\n````\n";
    let (report, shown) = import(md);
    assert_eq!(kinds(&shown), ["check:http"]);
    let yaml = report["runbook"].as_str().unwrap();
    assert!(yaml.contains("post_incident_template: |-\n    # Incident {title}\n    ```bash\n    kubectl delete pod everything"), "{yaml}");
    assert_eq!(report["report"]["commands"], 1);
}

#[test]
fn tables_become_guidance_and_a_severity_table_the_severity() {
    let md = "# DB\n\n## Severity levels\n\n| Severity | Response |\n|---|---|\n| **P2 - Medium** | 4 hours |\n\n## Limits\n\n| Setting | Value |\n|---|---|\n| `max_connections` | 200 |\n\n```bash\npg_isready -h db -p 5433\n```\n";
    let (report, shown) = import(md);
    assert_eq!(shown["severity"], "P2");
    let yaml = report["runbook"].as_str().unwrap();
    assert!(
        yaml.contains("guidance: \"- Setting: max_connections; Value: 200\""),
        "{yaml}"
    );
    assert_eq!(kinds(&shown), ["check:pg_ready"]);
    assert_eq!(
        shown["endpoints"]["postgres"],
        "postgres://db:5433/postgres"
    );
}

#[test]
fn a_page_without_commands_is_a_clear_error() {
    let sb = Sandbox::new();
    sb.write(
        "notes.md",
        "# Notes\n\nJust words.\n\n```\nWe're investigating.\n```\n",
    );
    let ran = sb.run(&["import", "notes.md", "--to", "runbooks/notes.yaml"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("error: notes.md: no commands found: no shell block"),
        "{}",
        ran.stderr
    );
    assert!(
        !sb.work().join("runbooks/notes.yaml").exists(),
        "nothing written"
    );
    let missing = sb.run(&["import", "nowhere.md"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("cannot read nowhere.md"),
        "{}",
        missing.stderr
    );
    // -o is a format everywhere; a file is written with --to.
    for args in [
        &["list", "-o", "jsn"][..],
        &["import", "notes.md", "-o", "yaml"][..],
    ] {
        let other = sb.run(args);
        assert_eq!(other.code, 2, "{args:?}");
        assert!(
            other
                .stderr
                .contains("for '--output': text or json (a file is written with --to FILE"),
            "{args:?}: {}",
            other.stderr
        );
    }
    assert!(
        !sb.work().join("yaml").exists(),
        "no file named after the format"
    );
}

#[test]
fn a_command_that_could_change_something_becomes_an_action_never_a_check() {
    let md = "# Mixed\n\n## Steps\n```bash\n# Check the service\nsystemctl restart vid-bench\nvid-bench status\ncurl -s http://api:8080/health > /tmp/out\nkubectl exec deploy/api -- rm -rf /cache\nkubectl exec deploy/api -- cat /etc/hostname\nkubectl get pods | xargs kubectl delete pod\nawk '{print $1}' /var/log/app.log\nfind /tmp -name '*.lock'\n```\n";
    let (_, shown) = import(md);
    let items = items(&shown);
    let kind_of = |id: &str| {
        items
            .iter()
            .find(|(_, _, i)| i == id)
            .map(|(_, k, _)| k.clone())
            .unwrap_or_else(|| panic!("{id} in {items:?}"))
    };
    assert_eq!(
        kind_of("the_service"),
        "action:shell",
        "systemctl restart, whatever its comment says"
    );
    assert_eq!(
        kind_of("vid_bench_status"),
        "action:shell",
        "a tool oncall does not know may do anything, whatever its verb says"
    );
    assert_eq!(
        kind_of("curl_s_http_api_8080_health"),
        "action:shell",
        "it writes a file"
    );
    assert_eq!(kind_of("api_rm"), "action:k8s_exec");
    assert_eq!(kind_of("api_cat"), "check:k8s_exec");
    assert_eq!(
        kind_of("kubectl_get_pods"),
        "action:shell",
        "xargs runs a command"
    );
    assert_eq!(
        kind_of("awk_print_1_var_log_app_log"),
        "action:shell",
        "awk can write"
    );
    assert_eq!(
        kind_of("find_tmp_name"),
        "check:shell",
        "find without -delete or -exec reads"
    );
}

#[test]
fn imported_text_is_data() {
    let sb = Sandbox::new();
    let marker = sb.work().join("pwned");
    let md = format!(
        "# Evil {{{{ 7 * 7 }}}}\n\n## \"x\": y\nsteps: []\n\n```bash\n# {{% for x in range(9) %}}loop{{% endfor %}}\ntouch {m} $(touch {m})\ncurl -f \"http://api:8080/a{{{{ 7 * 7 }}}}\"\nkubectl logs deployment/api | grep '{{{{ 7*7 }}}}'\necho `touch {m}`\n```\n\n```\nPosted: {{{{ 6 * 7 }}}} {{%raw%}}\n```\n",
        m = marker.display()
    );
    sb.write("evil.md", &md);
    let ran = sb.run(&["import", "evil.md", "--to", "runbooks/evil.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!marker.exists(), "import ran something");
    let valid = sb.run(&["validate", "runbooks/evil.yaml"]);
    assert_eq!(valid.code, 0, "{}{}", valid.stdout, valid.stderr);
    let shown = sb.run(&["show", "evil", "-o", "json"]).json();
    assert_eq!(shown["title"], "Evil {{ 7 * 7 }}", "the title is text");
    let items = items(&shown);
    assert!(
        items.iter().all(|(_, k, _)| k != "check:shell"),
        "$(…) and backquotes never make a check: {items:?}"
    );
    let text = sb.run(&["show", "evil"]).stdout;
    assert!(
        !text.contains("a49") && !text.contains("looploop"),
        "a template from the page was rendered:\n{text}"
    );
    assert!(
        text.contains("{{ 7*7 }}") || text.contains("{{ 7 * 7 }}"),
        "{text}"
    );
    let drill = sb.run(&["drill", "evil", "--yes"]);
    assert!(!marker.exists(), "a drill ran something: {}", drill.stdout);
}

/// Issue 25, items 5 and 6: every form the issue lists, on one page.
const EVERY_FORM: &str = r#"# Payments DB down (postgres://admin:TitleHunter22@db.internal/payments)

## Severity
P1

## Checks that are not reads
```bash
vid-bench status --reboot-now
logger status
curl -s -H 'X-HTTP-Method-Override: DELETE' http://api:8080/v1/items/42
psql -c "SELECT * FROM jobs WHERE state = 'queued' FOR UPDATE"
kubectl get pods -n payments --kubeconfig=/tmp/evil-kubeconfig
kubectl get pods -n payments --server=https://collector.example:6443
kubectl get pods -n payments --token eyJhbGciOiJSUzI1NiJ9.KubectlHunter22
```

## Credentials
```bash
redis-cli -a RedisHunter22 llen queue
mysql -pMysqlHunter22 -e "SELECT 1"
curl -s -u admin:CurlHunter22 http://api:8080/health
curl -s "https://metrics.example.com/api/v1/series?match=up&api_key=ApiKeyHunter22"
curl -X POST -d '{"text":"investigating"}' https://hooks.slack.com/services/T0001/B0002/SlackHunter22
psql postgres://admin:PgHunter22@db.internal:5432/payments -c "SELECT count(*) FROM pg_stat_activity"
curl -f -H "Authorization: Bearer HeaderHunter22" http://api:8080/v1/status
```
"#;

#[test]
fn every_form_of_issue_25_becomes_an_asked_action_or_a_secret_param_and_nothing_secret_is_written()
{
    let sb = Sandbox::new();
    sb.write("every.md", EVERY_FORM);
    let ran = sb.run(&["import", "every.md", "-o", "json"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let json = ran.json();
    assert_eq!(json["valid"], true, "{:#}", json["problems"]);
    let report = &json["report"];
    let lines = |what: &str| -> Vec<(u64, String)> {
        report[what]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let why = f["why"].as_str().unwrap_or_default().to_string();
                (f["line"].as_u64().unwrap(), why)
            })
            .collect()
    };
    // Item 5: each is asked first, with why; none of them is a check.
    let asked = lines("shell_actions");
    for (line, why) in [
        (8, "`vid-bench` is not a program oncall knows to only read"),
        (9, "`logger` is not a program oncall knows to only read"),
        (
            10,
            "the header X-HTTP-Method-Override asks the server for another method",
        ),
        (11, "`FOR UPDATE` takes locks"),
        (
            12,
            "`--kubeconfig` makes kubectl reach another server or use other credentials",
        ),
        (13, "`--server` makes kubectl reach another server"),
        (
            14,
            "`--token` makes kubectl reach another server or use other credentials",
        ),
        (20, "`mysql` is not a program oncall knows to only read"),
    ] {
        assert!(
            asked.iter().any(|(l, w)| *l == line && w.contains(why)),
            "line {line} is not asked because {why}: {asked:?}"
        );
    }
    assert_eq!(asked.len(), 8, "{asked:?}");
    let checks: Vec<u64> = lines("shell_checks").iter().map(|(l, _)| *l).collect();
    assert_eq!(checks, [19, 21], "redis-cli -a and curl -u only read");
    assert_eq!(report["native_checks"], 3, "api_key, postgres URL, bearer");
    assert_eq!(report["native_actions"], 1, "the Slack webhook");
    // Item 6: each credential a secret param with the line it came from.
    let secrets: Vec<(u64, &str)> = report["secret_params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["line"].as_u64().unwrap(), s["param"].as_str().unwrap()))
        .collect();
    assert_eq!(
        secrets,
        [
            (14, "kubectl_token"),
            (19, "redis_password"),
            (20, "mysql_password"),
            (21, "curl_password"),
            (22, "api_key"),
            (23, "slack_webhook"),
            (24, "postgres_password"),
            (25, "authorization"),
        ]
    );
    let yaml = json["runbook"].as_str().unwrap();
    for (_, name) in &secrets {
        assert!(
            yaml.contains(&format!("  {name}:\n    secret: true\n    help: ")),
            "{name} is not a secret param with no default:\n{yaml}"
        );
    }
    for line in [
        "shell: { command: \"kubectl get pods -n payments --token {{ params.kubectl_token }}\" }",
        "shell: { command: \"redis-cli -a {{ params.redis_password }} llen queue\" }",
        "shell: { command: \"mysql -p{{ params.mysql_password }} -e \\\"SELECT 1\\\"\" }",
        "shell: { command: \"curl -s -u admin:{{ params.curl_password }} http://api:8080/health\" }",
        "http: { url: \"{{ endpoints.metrics }}/api/v1/series?match=up&api_key={{ params.api_key }}\" }",
        "url: \"{{ endpoints.hooks }}/services/{{ params.slack_webhook | urlpath }}\"",
        "pg_connections: { url: \"postgres://admin:{{ params.postgres_password }}@db.internal:5432/payments\" }",
        "headers: { Authorization: \"Bearer {{ params.authorization }}\" }",
        "title: \"Payments DB down (postgres://admin:***@db.internal/payments)\"",
    ] {
        assert!(yaml.contains(line), "{line}\n{yaml}");
    }
    // Nothing secret anywhere: the file, the JSON report, the text report (ids are lower case).
    sb.write("runbooks/every.yaml", yaml);
    let text = sb.run(&["import", "every.md", "--to", "runbooks/every.yaml"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let written = std::fs::read_to_string(sb.work().join("runbooks/every.yaml")).unwrap();
    for secret in [
        "TitleHunter22",
        "KubectlHunter22",
        "RedisHunter22",
        "MysqlHunter22",
        "CurlHunter22",
        "ApiKeyHunter22",
        "T0001/B0002",
        "SlackHunter22",
        "PgHunter22",
        "HeaderHunter22",
    ] {
        for (what, said) in [
            ("the file", &written),
            ("the JSON report", &ran.stdout),
            ("the text report", &text.stderr),
        ] {
            assert!(
                !said.to_lowercase().contains(&secret.to_lowercase()),
                "{secret} in {what}:\n{said}"
            );
        }
    }
    assert!(
        text.stderr.contains("    line 12: kubectl get pods -n payments --kubeconfig=/tmp/evil-kubeconfig\n      asked because `--kubeconfig` makes kubectl"),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr
            .contains("    line 19: redis_password (redis-cli -a)\n"),
        "{}",
        text.stderr
    );
    let valid = sb.run(&["validate", "runbooks/every.yaml"]);
    assert_eq!(valid.code, 0, "{}{}", valid.stdout, valid.stderr);
    // `oncall run` asks for each secret by name, and runs nothing without them.
    let run = sb.run(&["run", "every", "--dry-run"]);
    assert_ne!(run.code, 0);
    for (_, name) in &secrets {
        assert!(
            run.stderr.contains(&format!("-p {name}=VALUE")),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(
        sb.incidents().is_empty(),
        "a run started without its secrets"
    );
}

#[test]
fn a_dry_run_of_an_imported_page_never_runs_its_kubeconfig_plugin_nor_reaches_its_server() {
    let other = RecordingServer::start();
    let sb = Sandbox::new();
    let marker = sb.work().join("plugin-ran");
    // A kubeconfig whose credential plugin leaves a file, for a cluster that records requests.
    let kubeconfig = sb.write(
        "evil-kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: evil\nclusters:\n- name: evil\n  cluster: {{ server: \"{url}\" }}\ncontexts:\n- name: evil\n  context: {{ cluster: evil, user: evil }}\nusers:\n- name: evil\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      interactiveMode: Never\n      command: /bin/sh\n      args: [\"-c\", \"touch {m}; echo '{{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1beta1\\\",\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{{\\\"token\\\":\\\"plugin-token-123\\\"}}}}'\"]\n",
            url = other.url,
            m = marker.display()
        ),
    );
    let md = format!(
        "# Pods\n\n## Look\n```bash\nkubectl get pods --kubeconfig={k}\nkubectl get pods -n payments --server={url} --token tok-LEAKED-123456\nkubectl --kubeconfig {k} get pods\n```\n",
        k = kubeconfig.display(),
        url = other.url
    );
    sb.write("pods.md", &md);
    let ran = sb.run(&["import", "pods.md", "--to", "runbooks/pods.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The run is given the token the runbook asks for (an import that left it in the command
    // asks for nothing).
    let yaml = std::fs::read_to_string(sb.work().join("runbooks/pods.yaml")).unwrap();
    let mut args = vec!["run", "pods", "--dry-run"];
    if yaml.contains("kubectl_token:") {
        args.extend(["-p", "kubectl_token=tok-LEAKED-123456"]);
    }
    let dry = sb.run(&args);
    assert!(!marker.exists(), "the dry run ran the kubeconfig's plugin");
    assert!(
        other.requests().is_empty(),
        "the dry run reached the other server: {:?}",
        other.requests()
    );
    assert!(
        dry.stdout.contains("kubectl get pods --kubeconfig="),
        "the plan shows what would run: {}{}",
        dry.stdout,
        dry.stderr
    );
    assert!(!yaml.contains("checks:"), "a check was made:\n{yaml}");
    let timeline = std::fs::read_to_string(&sb.incidents()[0]).unwrap();
    for said in [&dry.stdout, &dry.stderr, &timeline] {
        assert!(!said.contains("tok-LEAKED-123456"), "{said}");
    }
}

/// The report of a page with long reasons, in a terminal 80 columns wide: every line fits, and
/// a wrapped reason goes on indented under its command.
#[test]
fn the_import_report_fits_80_columns_in_a_terminal() {
    let sb = Sandbox::new();
    sb.write("every.md", EVERY_FORM);
    let mut s = crate::support::pty_sized(&sb, &["import", "every.md", "--to", "every.yaml"], 80);
    let screen = s.expect(expectrl::Eof).unwrap();
    let screen = String::from_utf8_lossy(screen.as_bytes()).replace('\r', "");
    assert!(
        screen.contains("asked because `--kubeconfig` makes kubectl reach"),
        "{screen}"
    );
    for line in screen.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        screen.contains("\n        other credentials than the ones configured"),
        "{screen}"
    );
}

/// The escalation levels keep the condition the page states: "if no response" becomes `unless:
/// acknowledged` when the page acknowledges the alert (a silence), "if unresolved" `unless:
/// resolved`, "if critical business impact" `if: severity == P0`; `show` lists them.
#[test]
fn escalation_levels_keep_the_condition_the_page_states() {
    let md = "# API down\n\nSeverity: Critical\n\n## Acknowledge\n\n```bash\ncurl -X POST http://alertmanager:9093/api/v2/silences -d '{\"matchers\":[]}'\n```\n\n## Escalation\n\n- Secondary on-call: 30 minutes if no response\n- Engineering manager: 1 hour if unresolved\n- CTO: 2 hours if critical business impact\n";
    let (report, shown) = import(md);
    let yaml = report["runbook"].as_str().unwrap();
    assert!(
        yaml.contains("- { after: 30m, to: Secondary on-call, unless: acknowledged }"),
        "{yaml}"
    );
    assert!(
        yaml.contains("- { after: 1h, to: Engineering manager, unless: resolved }"),
        "{yaml}"
    );
    assert!(
        yaml.contains("- { after: 2h, to: CTO, if: severity == P0 }"),
        "{yaml}"
    );
    let escalation = shown["escalation"].as_array().unwrap();
    assert_eq!(escalation[0]["unless"], "acknowledged", "{escalation:?}");
    assert_eq!(escalation[2]["if"], "severity == P0", "{escalation:?}");

    // Nothing acknowledges on the seed's page: the level stays a timer, and a review line says why.
    let sb = Sandbox::new();
    let ran = seed(&sb, "error-budget-runbook.md", "eb.yaml");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let yaml = std::fs::read_to_string(sb.work().join("eb.yaml")).unwrap();
    assert!(
        yaml.contains("  # review: called if no response; add a `silence` or `pagerduty` action that acknowledges, then `unless: acknowledged`\n  - { after: 30m, to: \"Secondary On-Call Engineer: Assist with complex issues\" }"),
        "{yaml}"
    );
    assert!(
        yaml.contains("to: \"Engineering Manager: Cross-team communication\", unless: resolved }"),
        "{yaml}"
    );
}
