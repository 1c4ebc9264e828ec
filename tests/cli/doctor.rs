//! `oncall doctor`: a pre-flight against real servers (Prometheus, Alertmanager, PostgreSQL,
//! Redis, NATS, HTTP), the fake Kubernetes API (SelfSubjectAccessReview) and the fake NVML.
use super::support::alertmanager::Alertmanager;
use super::support::kube::FakeKube;
use super::support::nats::Nats;
use super::support::nvml::fake_nvml_lib;
use super::support::postgres::Postgres;
use super::support::redis::{Redis, closed_port};
use super::*;
use serde_json::json;

const PREFLIGHT: &str = r#"id: preflight
title: Pre-flight
severity: P1
alerts: [GpuWorkersDown]
params:
  namespace: { default: video-processing }
endpoints:
  gateway: { default: "http://127.0.0.1:1" }
steps:
  - id: look
    checks:
      - id: up
        prometheus: up
      - id: firing
        alerts: {}
      - id: pods
        k8s_pods: { namespace: "{{ params.namespace }}", selector: app=worker }
      - id: ready
        pg_ready: {}
      - id: blocked
        pg_blocked: {}
      - id: queue
        redis_list: { key: jobs }
      - id: bus
        nats: {}
      - id: health
        http: { url: "{{ endpoints.gateway }}/health" }
      - id: gpus
        gpus: {}
  - id: fix
    actions:
      - id: scale
        k8s_scale: { namespace: "{{ params.namespace }}", deployment: gpu-worker, replicas: 10 }
      - id: end_blocker
        pg_terminate: { check: blocked, column: blocking pid }
"#;

/// The alerting rule the pre-flight runbook answers, as the team's Prometheus loads it.
const RULES: &str = "groups:\n  - name: gpu\n    rules:\n      - alert: GpuWorkersDown\n        expr: vector(0) > 1\n        for: 5m\n";

/// Every system of the pre-flight runbook, up.
struct Systems {
    prom: Prometheus,
    am: Alertmanager,
    pg: Postgres,
    redis: Redis,
    nats: Nats,
    api: RecordingServer,
    kube: FakeKube,
}

impl Systems {
    fn start() -> Systems {
        Systems {
            prom: Prometheus::start_with_rules(RULES),
            am: Alertmanager::start(),
            pg: Postgres::start(),
            redis: Redis::start(),
            nats: Nats::start(),
            api: RecordingServer::start(),
            kube: FakeKube::start(),
        }
    }

    fn sandbox(&self) -> Sandbox {
        let sb = Sandbox::new();
        let kubeconfig = self.kube.kubeconfig(&sb.root.join("kube"));
        sb.write("preflight.yaml", PREFLIGHT);
        sb.env("KUBECONFIG", kubeconfig.to_str().unwrap())
            .env("ONCALL_NVML_LIBRARY", fake_nvml_lib().to_str().unwrap())
    }

    fn args<'a>(&'a self, postgres: &'a str, nats: &'a str) -> Vec<String> {
        [
            "doctor",
            "preflight.yaml",
            "--prometheus-url",
            &self.prom.url,
            "--alertmanager-url",
            &self.am.url,
            "--postgres-url",
            postgres,
            "--redis-url",
            &self.redis.url,
            "--nats-url",
            nats,
            "--endpoint",
            &format!("gateway={}", self.api.url),
            "--timeout",
            "5s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

fn backend<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == name)
        .unwrap_or_else(|| panic!("no backend {name} in {report:#}"))
}

#[test]
fn doctor_reaches_every_system_with_its_version_and_sends_nothing() {
    let systems = Systems::start();
    let sb = systems.sandbox();
    let args = systems.args(&systems.pg.url, &systems.nats.url);
    let mut json_args = strs(&args);
    json_args.extend(["-o", "json"]);
    let ran = sb.run(&json_args);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(report["ok"], true);
    let version = |name: &str| {
        let b = backend(&report, name);
        assert_eq!(b["status"], "ok", "{b:#}");
        assert_eq!(b["reachable"], true, "{b:#}");
        assert_eq!(b["runbooks"], json!(["preflight"]));
        b["version"].as_str().unwrap_or_default().to_string()
    };
    assert!(version("prometheus").starts_with("2."), "{report:#}");
    assert!(version("alertmanager").starts_with("0."), "{report:#}");
    assert!(
        version("postgres").starts_with("PostgreSQL 15"),
        "{report:#}"
    );
    assert!(version("redis").starts_with("Redis 7"), "{report:#}");
    assert!(version("nats").starts_with("NATS 2."), "{report:#}");
    assert_eq!(version("kubernetes"), "v1.30.0");
    assert!(version("gpu").starts_with("driver "), "{report:#}");
    version("http");
    assert_eq!(report["backends"].as_array().unwrap().len(), 8);

    // Kubernetes: one review per verb and resource the runbook needs, in its namespace.
    let kube = backend(&report, "kubernetes");
    assert_eq!(kube["authorized"], true);
    let asked: Vec<&str> = kube["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    for what in [
        "list pods in video-processing",
        "get deployments.apps/scale in video-processing",
        "patch deployments.apps/scale in video-processing",
    ] {
        assert!(asked.contains(&what), "{what} in {asked:?}");
    }
    let reviews = systems.kube.access_reviews();
    assert!(
        reviews.iter().any(|r| r["verb"] == "patch"
            && r["group"] == "apps"
            && r["resource"] == "deployments"
            && r["subresource"] == "scale"
            && r["namespace"] == "video-processing"),
        "{reviews:?}"
    );
    // Only reviews were created: no scale, no patch.
    let writes = systems.kube.mutating_requests();
    assert!(
        writes
            .iter()
            .all(|(m, p)| m == "POST" && p.contains("selfsubjectaccessreviews")),
        "{writes:?}"
    );
    // The playbook's "verify alerting rules": the alert that opens the runbook is a loaded rule.
    let prom = backend(&report, "prometheus");
    assert_eq!(prom["authorized"], true, "{prom:#}");
    assert_eq!(
        prom["checks"][0]["what"],
        "alerting rule GpuWorkersDown is loaded"
    );
    // PostgreSQL: the superuser sees every session and may end other roles' backends.
    let pg = backend(&report, "postgres");
    assert_eq!(pg["authorized"], true, "{pg:#}");
    // Nothing was sent to the gateway but a GET of its origin; no silence was created.
    assert!(
        systems.api.requests().iter().all(|(m, _)| m == "GET"),
        "{:?}",
        systems.api.requests()
    );
    assert_eq!(systems.am.silences(), json!([]));
    // No incident is opened by a pre-flight.
    assert!(sb.incidents().is_empty());

    let text = sb.run(&strs(&args));
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.starts_with("BACKEND"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("allowed  patch deployments.apps/scale in video-processing"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("ready: every system the runbook(s) use answers (8)"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_system_down_is_named_on_its_line_and_exits_3() {
    let systems = Systems::start();
    let sb = systems.sandbox();
    let down = format!("nats://127.0.0.1:{}", closed_port());
    let args = systems.args(&systems.pg.url, &down);
    let ran = sb.run(&strs(&args));
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("nats "))
        .unwrap_or_else(|| panic!("no nats line in {}", ran.stdout));
    assert!(line.contains("unreachable"), "{line}");
    assert!(line.contains(&down), "{line}");
    assert!(
        ran.stdout.contains("cannot reach NATS at"),
        "the cause under it: {}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("not ready: 1 of 8 system(s): nats unreachable"),
        "{}",
        ran.stdout
    );

    // The Kubernetes API answering an error to the reviews is an error, exit 3 too.
    systems
        .kube
        .fail("POST", "selfsubjectaccessreviews", 500, "etcd is down");
    let args = systems.args(&systems.pg.url, &systems.nats.url);
    let mut json_args = strs(&args);
    json_args.extend(["-o", "json"]);
    let ran = sb.run(&json_args);
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    let kube = backend(&ran.json(), "kubernetes").clone();
    assert_eq!(kube["status"], "error", "{kube:#}");
    assert_eq!(kube["reachable"], true);
    assert!(
        kube["cause"].as_str().unwrap().contains("etcd is down"),
        "{kube:#}"
    );
}

#[test]
fn a_denied_kubernetes_verb_is_named_and_exits_1() {
    let systems = Systems::start();
    systems
        .kube
        .deny("patch", "deployments/scale", Some("video-processing"));
    let sb = systems.sandbox();
    let args = systems.args(&systems.pg.url, &systems.nats.url);
    let ran = sb.run(&strs(&args));
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(
            "DENIED   patch deployments.apps/scale in video-processing: the API server says no to this context's user (`kubectl auth can-i patch deployments.apps --subresource=scale -n video-processing` asks the same)"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("allowed  get deployments.apps/scale in video-processing"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.starts_with("kubernetes") && l.contains("denied") && l.contains("v1.30.0")),
        "{}",
        ran.stdout
    );

    // The same namespace from -n: the runbook's `namespace` param follows it.
    let mut json_args = strs(&args);
    json_args.extend(["-o", "json", "-n", "staging"]);
    let ran = sb.run(&json_args);
    assert_eq!(ran.code, 0, "allowed in staging: {}", ran.stderr);
    let kube = backend(&ran.json(), "kubernetes").clone();
    assert!(
        kube["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["what"] == "patch deployments.apps/scale in staging" && c["allowed"] == true),
        "{kube:#}"
    );
}

#[test]
fn a_role_without_grants_is_denied_by_name_and_its_password_never_shown() {
    let systems = Systems::start();
    let password = "Dr0wssap-doctor-7";
    // A member of pg_monitor (it sees every session), not of pg_signal_backend.
    let url = systems.pg.with_password("responder", password);
    let sb = systems.sandbox();
    let args = systems.args(&url, &systems.nats.url);
    let ran = sb.run(&strs(&args));
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("allowed  read every session's query in pg_stat_activity"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(
            "DENIED   pg_terminate: signal other roles' backends: role responder may only cancel or end its own backends: GRANT pg_signal_backend TO responder"
        ),
        "{}",
        ran.stdout
    );
    let mut json_args = strs(&args);
    json_args.extend(["-o", "json"]);
    let json = sb.run(&json_args);
    assert_eq!(json.code, 1);
    assert_eq!(backend(&json.json(), "postgres")["status"], "denied");

    // A wrong password: PostgreSQL's refusal is an error (exit 3), and no password is shown.
    let wrong = url.replace(password, "Wr0ng-passw0rd-9");
    let args = systems.args(&wrong, &systems.nats.url);
    let refused = sb.run(&strs(&args));
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stdout
            .contains("PostgreSQL refused the login at 127.0.0.1"),
        "{}",
        refused.stdout
    );
    for out in [&ran, &json, &refused] {
        for secret in [password, "Wr0ng-passw0rd-9"] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{secret} shown:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
    }
}

#[test]
fn doctor_without_a_runbook_checks_every_known_one() {
    let sb = Sandbox::new();
    let ran = sb.run(&[
        "doctor",
        "-o",
        "json",
        "--timeout",
        "2s",
        "--prometheus-url",
        &format!("http://127.0.0.1:{}", closed_port()),
    ]);
    assert_eq!(ran.code, 3, "nothing runs here: {}", ran.stderr);
    let report = ran.json();
    let runbooks = report["runbooks"].as_array().unwrap();
    for id in [
        "db-performance",
        "error-budget",
        "gpu-oom",
        "service-unavailable",
    ] {
        assert!(runbooks.contains(&json!(id)), "{id} in {runbooks:?}");
    }
    let prom = backend(&report, "prometheus");
    assert_eq!(prom["status"], "unreachable");
    assert!(
        prom["runbooks"]
            .as_array()
            .unwrap()
            .contains(&json!("error-budget"))
    );
    // -p belongs to one runbook.
    let bad = sb.run(&["doctor", "-p", "namespace=x"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn an_alert_with_no_rule_in_prometheus_is_named_and_exits_1() {
    let systems = Systems::start();
    let sb = systems.sandbox();
    sb.write(
        "preflight.yaml",
        &PREFLIGHT.replace(
            "alerts: [GpuWorkersDown]",
            "alerts: [GpuWorkersDown, GpuWorkerOOM]",
        ),
    );
    let args = systems.args(&systems.pg.url, &systems.nats.url);
    let ran = sb.run(&strs(&args));
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("allowed  alerting rule GpuWorkersDown is loaded"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(
            "DENIED   alerting rule GpuWorkerOOM is loaded: Prometheus has no alerting rule named GpuWorkerOOM"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("not ready: 1 of 8 system(s): prometheus denied"),
        "{}",
        ran.stdout
    );
}

#[test]
fn shell_programs_must_be_on_path_and_an_invalid_runbook_exits_2() {
    let sb = Sandbox::new();
    sb.write(
        "runbooks/local.yaml",
        "id: local\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: disk\n        shell: { command: \"df -P / | awk '{ n++ } END { print n }'\" }\n    actions:\n      - id: restart\n        shell: { command: \"no-such-tool-xyz restart {{ incident.id }}\" }\n",
    );
    let ran = sb.run(&["doctor", "local"]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("allowed  df ("), "{}", ran.stdout);
    assert!(ran.stdout.contains("allowed  awk ("), "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("DENIED   no-such-tool-xyz: not found on this host's PATH"),
        "{}",
        ran.stdout
    );

    // Every known runbook: one that does not validate is named, and the exit is 2 (nothing
    // else here fails to answer: the only runbook left reaches no server).
    let sb = Sandbox::new();
    sb.write(
        "runbooks/local.yaml",
        "id: local\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: disk\n        shell: { command: \"df -P /\" }\n",
    );
    sb.write(
        "runbooks/broken.yaml",
        "id: broken\ntitle: T\nseverity: P3\nsteps:\n  - id: s\n    checks:\n      - id: q\n        prometheus: up\n        fail_if: value >\n",
    );
    let ran = sb.run(&["doctor", "local", "-o", "json"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(backend(&ran.json(), "shell")["status"], "ok");
    let all = sb.run(&["doctor", "-o", "json", "--runbook-path", "/nonexistent"]);
    assert!(
        all.stderr.contains("runbook broken does not validate"),
        "{}",
        all.stderr
    );
    assert!(
        all.json()["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("broken")),
        "{}",
        all.stdout
    );
    assert!(all.code == 2 || all.code == 3, "{}", all.code);
}

#[test]
fn docker_answers_with_its_daemon_version() {
    let docker = super::support::docker::docker_host();
    let sb = Sandbox::new().env("DOCKER_HOST", &docker.host);
    sb.write(
        "runbooks/compose.yaml",
        "id: compose\ntitle: T\nseverity: P2\nsteps:\n  - id: s\n    checks:\n      - id: containers\n        docker_containers: { project: bench }\n",
    );
    let ran = sb.run(&["doctor", "compose", "-o", "json"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let docker_report = backend(&ran.json(), "docker").clone();
    assert_eq!(docker_report["target"], docker.host.as_str());
    assert!(
        docker_report["version"]
            .as_str()
            .unwrap()
            .starts_with("Docker 20.10"),
        "{docker_report:#}"
    );
    // The daemon gone: unreachable, exit 3.
    let gone = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    gone.write(
        "runbooks/compose.yaml",
        "id: compose\ntitle: T\nseverity: P2\nsteps:\n  - id: s\n    checks:\n      - id: containers\n        docker_containers: { project: bench }\n",
    );
    let ran = gone.run(&["doctor", "compose"]);
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("cannot reach the Docker daemon"),
        "{}",
        ran.stdout
    );
}

#[test]
fn the_team_store_is_checked_and_a_second_approval_needs_one() {
    let pg = Postgres::start();
    let sb = Sandbox::new();
    sb.write(
        "runbooks/two.yaml",
        "id: two\ntitle: T\nseverity: P2\nsteps:\n  - id: s\n    actions:\n      - id: restart\n        approval: two-person\n        shell: { command: \"true\" }\n",
    );
    // Without a store a live run would refuse it: named, exit 1.
    let ran = sb.run(&["doctor", "two"]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("DENIED   second-person approval of two: restart: needs the team store"),
        "{}",
        ran.stdout
    );
    // A store with no oncall tables answers with an error: exit 3, and what to run.
    let ran = sb.run(&["doctor", "two", "--store", &pg.url, "-o", "json"]);
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    let store = backend(&ran.json(), "store").clone();
    assert_eq!(store["status"], "error", "{store:#}");
    assert!(
        store["cause"]
            .as_str()
            .unwrap()
            .contains("oncall store init"),
        "{store:#}"
    );
    assert_eq!(sb.run(&["store", "init", "--store", &pg.url]).code, 0);
    let ran = sb.run(&["doctor", "two", "--store", &pg.url, "-o", "json"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let store = backend(&ran.json(), "store").clone();
    assert!(
        store["version"].as_str().unwrap().starts_with("schema "),
        "{store:#}"
    );
    assert_eq!(store["authorized"], true, "{store:#}");
}
