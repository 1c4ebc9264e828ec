//! The Kubernetes backend against a stateful fake API server reached through a kubeconfig.
use super::support::kube::FakeKube;
use super::support::{Sandbox, events, observation};
use super::*;

const NS: &str = "video-processing";

/// The pipeline of the seed: workers (one crash-looping), the gateway, NATS, logs and a configmap.
pub(super) fn video_cluster() -> FakeKube {
    let kube = FakeKube::start();
    kube.add_deployment(
        NS,
        "gpu-worker",
        5,
        &[("app", "worker"), ("component", "gpu-worker")],
    );
    kube.add_deployment(
        NS,
        "asr-worker",
        3,
        &[("app", "worker"), ("component", "asr-worker")],
    );
    kube.add_deployment(NS, "api-gateway", 3, &[("app", "api-gateway")]);
    kube.add_deployment(NS, "nats", 3, &[("app", "nats")]);
    let gpu = [("app", "worker"), ("component", "gpu-worker")];
    kube.add_pod(
        NS,
        FakeKube::pod(
            NS,
            "gpu-worker-a",
            &gpu,
            "Running",
            true,
            0,
            None,
            None,
            "gpu-node-1",
        ),
    );
    kube.add_pod(
        NS,
        FakeKube::pod(
            NS,
            "gpu-worker-b",
            &gpu,
            "Running",
            false,
            7,
            Some("OOMKilled"),
            Some("CrashLoopBackOff"),
            "gpu-node-2",
        ),
    );
    let asr = [("app", "worker"), ("component", "asr-worker")];
    kube.add_pod(
        NS,
        FakeKube::pod(
            NS,
            "asr-worker-a",
            &asr,
            "Running",
            true,
            0,
            None,
            None,
            "cpu-node-1",
        ),
    );
    kube.add_pod(
        NS,
        FakeKube::pod(
            NS,
            "api-gateway-a",
            &[("app", "api-gateway")],
            "Running",
            true,
            0,
            None,
            None,
            "cpu-node-1",
        ),
    );
    let now = support::kube::now();
    kube.set_logs(
        NS,
        "gpu-worker-a",
        vec![
            (now - 7200, "ERROR too old to count".into()),
            (now - 60, "ERROR CUDA error: out of memory".into()),
            (now - 30, "INFO done".into()),
        ],
    );
    kube.set_logs(
        NS,
        "gpu-worker-b",
        vec![(now - 90, "ERROR worker crashed".into())],
    );
    kube.set_logs(
        NS,
        "api-gateway-a",
        vec![
            (now - 50, "POST /api/jobs 5xx upstream timeout".into()),
            (now - 40, "GET /health 200".into()),
        ],
    );
    kube.set_logs(
        NS,
        "asr-worker-a",
        vec![
            (now - 20, "WARN Timeout waiting for GPU slot".into()),
            (now - 10, "INFO ok".into()),
        ],
    );
    kube.add_configmap(NS, "api-gateway-config", &[("DB_MAX_CONNECTIONS", "20")]);
    // The seed's `kubectl exec deployment/gpu-worker -- nvidia-smi`: two GPUs.
    kube.set_exec(
        NS,
        "gpu-worker-a",
        &[
            "nvidia-smi",
            "--query-gpu=driver_version,name,memory.used,memory.total",
            "--format=csv,noheader",
        ],
        support::kube::ExecResult {
            stdout: "535.104.05, NVIDIA A100-SXM4-40GB, 1024 MiB, 40960 MiB\n535.104.05, NVIDIA A100-SXM4-40GB, 38912 MiB, 40960 MiB\n".into(),
            ..Default::default()
        },
    );
    kube
}

pub(super) fn sandbox(kube: &FakeKube) -> Sandbox {
    let sb = Sandbox::new();
    let config = kube.kubeconfig(&sb.root);
    sb.env("KUBECONFIG", config.to_str().unwrap())
}

fn replicas(kube: &FakeKube, name: &str) -> i64 {
    let d = kube
        .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}"))
        .unwrap();
    d["spec"]["replicas"].as_i64().unwrap()
}

#[test]
fn error_budget_reads_the_cluster_scales_up_on_approval_and_undoes_nothing_while_over_budget() {
    let prom = Prometheus::start();
    let kube = video_cluster();
    let api = RecordingServer::with_status(&[("/health/db", 503)]);
    // NATS's monitoring port, through the API server's proxy: healthy.
    kube.proxy_to("services", NS, "nats", "8222", &api.url);
    let sb = sandbox(&kube);
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--yes",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
        ],
    );
    let report = sb.run(&strs(&args)).json();

    let pods = observation(&report, "worker_pods");
    assert_eq!(pods["verdict"], "fail", "{pods:#}");
    assert!(
        pods["reason"]
            .as_str()
            .unwrap()
            .contains("CrashLoopBackOff: gpu-worker-b"),
        "{pods:#}"
    );
    let rows = pods["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "the app=worker pods: {pods:#}");
    assert_eq!(rows[0][0], "gpu-worker-b", "troubled pods first");
    assert_eq!(
        (&rows[0][2], &rows[0][3], &rows[0][4]),
        (
            &Value::from("0/1"),
            &Value::from(7),
            &Value::from("OOMKilled")
        )
    );
    assert_eq!(pods["value"], 2, "ready pods");

    // Log searches over the last hour: the two-hour-old line does not count.
    assert_eq!(observation(&report, "gpu_worker_errors")["value"], 2);
    assert_eq!(observation(&report, "api_gateway_5xx")["value"], 1);
    assert_eq!(observation(&report, "asr_worker_errors")["value"], 1);
    assert_eq!(observation(&report, "nats_deployment")["verdict"], "ok");

    // Scaled up to 10 on approval. The error rate stays at 3% (over its 1% budget) through the
    // verify wait, so nothing is scaled back, uploads stay paused, the silence stays.
    let timeline = sb.timeline();
    let finished: Vec<(String, String)> = events(&timeline, "action_finished")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let detail = |id: &str| {
        finished
            .iter()
            .find(|(a, _)| a == id)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("{id} not applied: {finished:?}"))
    };
    assert_eq!(
        detail("scale_gpu_workers"),
        "deployment/gpu-worker replicas 5 → 10"
    );
    assert_eq!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "verify-error-rate")
            .unwrap()["wait"]["outcome"],
        "timed_out"
    );
    let held: Vec<&str> = events(&timeline, "action_not_offered")
        .iter()
        .filter(|e| e["unverified"] == "verify-error-rate")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        held,
        vec![
            "resume_uploads",
            "scale_back_gpu_workers",
            "scale_back_asr_workers",
            "expire_acknowledgement",
            "scale_back_api_gateway"
        ]
    );
    assert_eq!(replicas(&kube, "gpu-worker"), 10);
    let scales: Vec<Value> = kube
        .recorded()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.target().contains("/deployments/gpu-worker/scale"))
        .map(|r| r.body_json()["spec"]["replicas"].clone())
        .collect();
    assert_eq!(
        scales,
        vec![Value::from(10)],
        "the fake saw 10 and nothing after"
    );

    // Rollout restart as kubectl does it, the DB pool patch, and pause/resume of uploads.
    let gpu = kube
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/deployments/gpu-worker"
        ))
        .unwrap();
    assert!(
        gpu["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    assert!(
        detail("restart_gpu_workers").contains("rollout finished"),
        "{finished:?}"
    );
    let cm = kube
        .get(&format!(
            "/api/v1/namespaces/{NS}/configmaps/api-gateway-config"
        ))
        .unwrap();
    assert_eq!(cm["data"]["DB_MAX_CONNECTIONS"], "50");
    let planned = events(&timeline, "action_planned");
    let pool = planned
        .iter()
        .find(|e| e["action"] == "increase_db_pool")
        .unwrap();
    assert_eq!(
        pool["plan"]["changes"],
        serde_json::json!(["data.DB_MAX_CONNECTIONS: 20 → 50"])
    );
    let gateway = kube
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/deployments/api-gateway"
        ))
        .unwrap();
    assert_eq!(
        gateway["spec"]["template"]["metadata"]["annotations"]["pause-uploads"],
        "true"
    );
    let restart_nats = events(&timeline, "step_skipped")
        .iter()
        .any(|e| e["step"] == "mitigate-nats");
    assert!(
        restart_nats,
        "NATS is healthy, so its restart is not offered"
    );
}

#[test]
fn dry_run_of_every_kubernetes_step_sends_only_gets() {
    let prom = Prometheus::start();
    let kube = video_cluster();
    let api = RecordingServer::with_status(&[("/health/db", 503)]);
    let sb = sandbox(&kube);
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--dry-run",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
        ],
    );
    let report = sb.run(&strs(&args)).json();
    let would_send: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap().clone())
        .filter(|a| a["decision"] == "would_send" && a["plan"]["backend"] == "kubernetes")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    for id in [
        "scale_gpu_workers",
        "restart_gpu_workers",
        "pause_uploads",
        "increase_db_pool",
    ] {
        assert!(
            would_send.contains(&id.to_string()),
            "{id} was not planned: {would_send:?}"
        );
    }
    // A dry run's wait polls once: the error rate is over budget on that poll, so the reverts
    // that wait for it are not planned, and the report says why.
    for id in ["resume_uploads", "scale_back_gpu_workers"] {
        let held = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap().iter())
            .find(|a| a["id"] == id)
            .unwrap();
        assert_eq!(
            held["reason"],
            "verification verify-error-rate was not met: a dry run polls once, and that poll did not meet it",
            "{held}"
        );
    }
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    assert!(kube.requests().iter().all(|(m, _)| m == "GET"));
    assert_eq!(replicas(&kube, "gpu-worker"), 5);

    // Which cluster, everywhere: the record of the opening, and every Kubernetes plan.
    let cluster = format!("context fake ({}), default namespace default", kube.url);
    let timeline = sb.timeline();
    let opened = &events(&timeline, "incident_opened")[0];
    assert_eq!(
        opened["targets"]["kubernetes"],
        cluster.as_str(),
        "{opened}"
    );
    assert_eq!(opened["targets"]["prometheus"], prom.url.as_str());
    for planned in events(&timeline, "action_planned") {
        if planned["plan"]["backend"] == "kubernetes" {
            assert_eq!(planned["plan"]["on"], cluster.as_str(), "{planned}");
        }
    }
}

#[test]
fn server_dry_run_sends_every_kubernetes_write_with_dry_run_all_and_nothing_else() {
    let prom = Prometheus::start();
    let kube = video_cluster();
    let api = RecordingServer::with_status(&[("/health/db", 503)]);
    let sb = sandbox(&kube);
    let server_args = |extra: &[&'static str]| {
        let mut flags = vec![
            "--dry-run=server",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
        ];
        flags.extend(extra);
        error_budget_args(&prom.url, &api.url, &flags)
    };
    let ran = sb.run(&strs(&server_args(&[])));
    assert!(ran.stderr.contains("dry-run=server"), "{}", ran.stderr);
    let timeline = sb.timeline();
    let kube_plans: Vec<&Value> = events(&timeline, "action_planned")
        .into_iter()
        .filter(|p| p["plan"]["backend"] == "kubernetes")
        .collect();
    assert!(kube_plans.len() >= 5, "{kube_plans:?}");
    for planned in &kube_plans {
        assert_eq!(planned["plan"]["server"]["accepted"], true, "{planned}");
    }
    let scale = kube_plans
        .iter()
        .find(|p| p["action"] == "scale_gpu_workers")
        .unwrap();
    assert!(
        scale["plan"]["server"]["answer"]
            .as_str()
            .unwrap()
            .starts_with("deployment/gpu-worker replicas → "),
        "{scale}"
    );
    // Every write reached the API server with dryRun=All, one per plan, and none was persisted.
    let writes = kube.mutating_requests();
    assert_eq!(writes.len(), kube_plans.len(), "{writes:?}");
    for (method, target) in &writes {
        assert!(target.contains("dryRun=All"), "{method} {target}");
    }
    assert_eq!(replicas(&kube, "gpu-worker"), 5);
    let config = kube
        .get(&format!(
            "/api/v1/namespaces/{NS}/configmaps/api-gateway-config"
        ))
        .unwrap();
    assert_eq!(config["data"]["DB_MAX_CONNECTIONS"], "20");
    // Every other backend stays unsent: the gateway, the orchestrator and Alertmanager got reads only.
    assert!(
        api.requests().iter().all(|(m, _)| m == "GET"),
        "{:?}",
        api.requests()
    );
    let opened = &events(&timeline, "incident_opened")[0];
    assert_eq!(opened["server_dry_run"], true);
    // An empty value (`--dry-run=$MODE` with MODE unset) is refused, never a live run.
    let empty = sb.run(&["run", "error-budget", "--dry-run=", "--yes"]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("an empty value"), "{}", empty.stderr);

    // Admission that refuses a write is said in the plan and counted.
    kube.fail(
        "PATCH",
        "configmaps/api-gateway-config",
        422,
        "admission webhook \"limits\" denied the request: DB_MAX_CONNECTIONS above 40",
    );
    let refused = sb.run(&strs(&server_args(&["--new"])));
    let report = refused.json();
    assert!(
        report["outcome"]
            .as_str()
            .unwrap()
            .contains("1 action(s) refused by the API server (dry run)"),
        "{report}"
    );
    assert!(
        refused
            .stderr
            .contains("the API server refused it (dryRun=All)")
            && refused.stderr.contains("DB_MAX_CONNECTIONS above 40"),
        "{}",
        refused.stderr
    );
    assert_ne!(refused.code, 0);
}

#[test]
fn faults_give_clear_errors_and_the_run_goes_on() {
    let sb = Sandbox::new();
    sb.write(
        "k.yaml",
        "id: k\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: pods\n        k8s_pods: { namespace: video-processing, selector: app=worker }\n      - id: missing\n        k8s_deployment: { namespace: video-processing, name: missing }\n    actions:\n      - id: scale\n        k8s_scale: { namespace: video-processing, deployment: gpu-worker, replicas: 10 }\n  - id: after\n    checks:\n      - id: nats\n        k8s_deployment: { namespace: video-processing, name: nats }\n",
    );
    // Down: nothing listens where the kubeconfig points.
    let down = {
        let kube = FakeKube::start();
        let config = kube.kubeconfig(&sb.root);
        drop(kube);
        config
    };
    let ran = Sandbox::new().env("KUBECONFIG", down.to_str().unwrap());
    std::fs::copy(sb.work().join("k.yaml"), ran.work().join("k.yaml")).unwrap();
    let report = ran
        .run(&["run", "k.yaml", "--yes", "--output", "json"])
        .json();
    let pods = observation(&report, "pods");
    assert_eq!(pods["verdict"], "error");
    assert!(
        pods["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Kubernetes API at http://127.0.0.1:"),
        "{pods:#}"
    );
    assert!(
        pods["reason"]
            .as_str()
            .unwrap()
            .ends_with("connection refused"),
        "{pods:#}"
    );
    assert_eq!(
        observation(&report, "nats")["verdict"],
        "error",
        "the run went on to the next step"
    );

    // Forbidden scale and a missing deployment, against a live fake.
    let kube = video_cluster();
    kube.fail("PATCH", "/scale", 403, "deployments.apps \"gpu-worker\" is forbidden: User \"oncall\" cannot patch resource \"deployments/scale\"");
    let live = sandbox(&kube);
    std::fs::copy(sb.work().join("k.yaml"), live.work().join("k.yaml")).unwrap();
    let ran = live.run(&["run", "k.yaml", "--yes", "--output", "json"]);
    let report = ran.json();
    let missing = observation(&report, "missing");
    assert_eq!(missing["verdict"], "error");
    assert_eq!(
        missing["reason"],
        "not found: deployments.apps \"missing\" not found"
    );
    let timeline = live.timeline();
    let scale = events(&timeline, "action_finished")[0];
    assert_eq!(scale["ok"], false);
    assert!(scale["detail"].as_str().unwrap().starts_with("the Kubernetes API refused it (403 Forbidden): deployments.apps \"gpu-worker\" is forbidden"), "{scale}");
    assert_eq!(
        observation(&report, "nats")["verdict"],
        "ok",
        "the run went on after the refusal"
    );
    assert_eq!(replicas(&kube, "gpu-worker"), 5);

    // Slow: every answer takes longer than the check's timeout.
    kube.set_delay(Duration::from_secs(3));
    let report = live
        .run(&[
            "run",
            "k.yaml",
            "--dry-run",
            "--output",
            "json",
            "--timeout",
            "1s",
        ])
        .json();
    let pods = observation(&report, "pods");
    assert_eq!(pods["verdict"], "error");
    assert_eq!(pods["reason"], "no answer within 1s");
}

#[test]
fn warning_events_are_counted_and_a_pod_is_deleted_only_when_approved() {
    let kube = video_cluster();
    let old = support::kube::now() - 7200;
    let ts = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_string();
    kube.add_event(NS, serde_json::json!({"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}, "count": 12}));
    kube.add_event(NS, serde_json::json!({"type": "Normal", "reason": "Pulled", "message": "image pulled", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}}));
    kube.add_event(NS, serde_json::json!({"type": "Warning", "reason": "FailedMount", "message": "old news", "involvedObject": {"kind": "Pod", "name": "gpu-worker-b"}, "lastTimestamp": ts(old)}));
    let sb = sandbox(&kube);
    sb.write(
        "evict.yaml",
        "id: evict\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: warnings\n        k8s_events: { namespace: video-processing, object: pod/gpu-worker-b, since: 1h }\n    actions:\n      - id: delete_crashing\n        when: checks.warnings.value > 0\n        k8s_delete_pod: { namespace: video-processing, pod: gpu-worker-b }\n",
    );
    let pod = format!("/api/v1/namespaces/{NS}/pods/gpu-worker-b");
    let dry = sb
        .run(&["run", "evict.yaml", "--dry-run", "--output", "json"])
        .json();
    let warnings = observation(&dry, "warnings");
    assert_eq!(
        (&warnings["value"], &warnings["verdict"]),
        (&Value::from(1), &Value::from("warn")),
        "{warnings:#}"
    );
    assert_eq!(warnings["table"]["rows"][0][2], "BackOff");
    assert!(kube.get(&pod).is_some(), "a dry run deletes nothing");
    sb.run(&["run", "evict.yaml", "--yes"]);
    assert!(kube.get(&pod).is_none(), "approved, the pod is gone");
    assert!(
        kube.mutating_requests()
            .iter()
            .any(|(m, p)| m == "DELETE" && p.starts_with(&pod))
    );
}

#[test]
fn an_unknown_context_is_refused_before_anything_opens_and_lists_the_kubeconfigs_contexts() {
    let kube = FakeKube::start();
    let sb = sandbox(&kube);
    sb.write(
        "k.yaml",
        "id: k\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: nats\n        k8s_deployment: { namespace: video-processing, name: nats }\n",
    );
    for (args, what) in [
        (
            &["run", "k.yaml", "--context", "fak"][..],
            "nothing was opened",
        ),
        (
            &["run", "k.yaml", "--context", "fa", "--dry-run"][..],
            "nothing was opened",
        ),
    ] {
        let refused = sb.run(args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("the kubeconfig has no context 'fa")
                && refused
                    .stderr
                    .contains("(did you mean 'fake'?); its contexts: fake")
                && refused.stderr.contains(what),
            "{args:?}: {}",
            refused.stderr
        );
    }
    assert!(sb.incidents().is_empty(), "no incident was opened");
    assert!(
        kube.requests().is_empty(),
        "nothing was asked of any cluster"
    );
    // With the right context the same run reads the cluster.
    let ran = sb.run(&["run", "k.yaml", "--context", "fake"]);
    assert_ne!(ran.code, 2, "{}", ran.stderr);
    assert!(!kube.requests().is_empty());
}

#[test]
fn a_plan_whose_target_is_missing_says_so_and_a_live_run_does_not_send_it() {
    let kube = video_cluster();
    let sb = sandbox(&kube);
    sb.write(
        "m.yaml",
        "id: m\ntitle: T\nseverity: P2\nsteps:\n  - id: act\n    actions:\n      - id: pool\n        k8s_patch: { namespace: video-processing, kind: configmap, name: no-such-config, patch: { data: { DB_MAX_CONNECTIONS: \"50\" } } }\n      - id: scale\n        k8s_scale: { namespace: video-processing, deployment: no-such-deployment, replicas: 3 }\n",
    );
    let ran = sb.run(&["run", "m.yaml", "--yes"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stdout.contains(
            "configmap no-such-config not found in video-processing: this action would fail"
        ),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("2 action target(s) not found"),
        "{}",
        ran.stdout
    );
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    let timeline = sb.timeline();
    let not_sent: Vec<&str> = events(&timeline, "action_not_offered")
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(not_sent, ["pool", "scale"]);
    assert!(events(&timeline, "action_started").is_empty());

    let dry = sb.run(&["run", "m.yaml", "--dry-run"]);
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    assert!(
        dry.stdout.contains(
            "deployment no-such-deployment not found in video-processing: this action would fail"
        ),
        "{}",
        dry.stdout
    );
}

#[test]
fn a_write_to_a_production_context_is_approved_by_typing_its_name() {
    let kube = video_cluster();
    let sb = sandbox(&kube);
    let config = sb.root.join("config/oncall/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "production_contexts: [fa*]\n").unwrap();
    sb.write(
        "p.yaml",
        "id: p\ntitle: T\nseverity: P2\nsteps:\n  - id: act\n    actions:\n      - id: scale\n        title: Scale the workers\n        k8s_scale: { namespace: video-processing, deployment: gpu-worker, replicas: 7 }\n",
    );
    let mut s = support::pty_sized(&sb, &["run", "p.yaml"], 80);
    s.expect("a production context").unwrap();
    s.expect("type fake to apply / [s]kip / [r]e-check / [a]bort run:")
        .unwrap();
    s.send_line("y").unwrap();
    s.expect("fake is a production context: type its name to apply")
        .unwrap();
    assert_eq!(replicas(&kube, "gpu-worker"), 5, "a plain yes sent nothing");
    s.send_line("fake").unwrap();
    s.expect("typed the context name fake").unwrap();
    assert_eq!(support::pty_exit_code(&mut s), 0);
    assert_eq!(replicas(&kube, "gpu-worker"), 7);
    let timeline = sb.timeline();
    let decided = events(&timeline, "action_decided");
    assert_eq!(decided[0]["by"], "prompt, typed the context name fake");
    assert_eq!(
        events(&timeline, "action_planned")[0]["plan"]["production"],
        "fake"
    );

    // --yes still approves, and says that no name was typed.
    let yes = sb.run(&["run", "p.yaml", "--yes", "--new"]);
    assert_eq!(yes.code, 0, "{}", yes.stderr);
    assert!(
        yes.stdout
            .contains("--yes, on production context fake without typing its name"),
        "{}",
        yes.stdout
    );

    // A context the config does not list is approved with y, as before.
    std::fs::write(&config, "production_contexts: [prod-*]\n").unwrap();
    let mut s = support::pty_sized(&sb, &["run", "p.yaml", "--new"], 120);
    s.expect("[y]es apply / [s]kip / [r]e-check / [a]bort run:")
        .unwrap();
    s.send_line("s").unwrap();
    assert_eq!(support::pty_exit_code(&mut s), 0);

    std::fs::write(&config, "production_contexts: ['prod-[']\n").unwrap();
    let bad = sb.run(&["run", "p.yaml", "--dry-run", "--new"]);
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(
        bad.stderr
            .contains("production_contexts: 'prod-[' is not a context pattern"),
        "{}",
        bad.stderr
    );
}

#[test]
fn http_reaches_services_through_the_api_server_proxy() {
    let kube = video_cluster();
    let api = RecordingServer::with_status(&[("/health/db", 503)]);
    kube.proxy_to("services", NS, "api-gateway", "8080", &api.url);
    let sb = sandbox(&kube);
    let file = fixture("through-the-proxy.yaml");
    let file = file.to_str().unwrap();
    let through = "api_gateway=k8s://video-processing/api-gateway:8080";
    let dry = sb.run(&["run", file, "-e", through, "--dry-run", "-o", "json"]);
    let report = dry.json();
    let gateway = observation(&report, "gateway");
    assert_eq!(gateway["verdict"], "ok", "{gateway:#}");
    assert_eq!(gateway["value"], 200);
    let pool = observation(&report, "pool");
    assert_eq!(pool["verdict"], "fail", "{pool:#}");
    assert_eq!(pool["value"], 503);
    let missing = observation(&report, "missing");
    assert_eq!(missing["verdict"], "error");
    assert_eq!(
        missing["reason"],
        "not found: service video-processing/nope:80 through the API server's proxy: services \"nope\" not found",
        "{missing:#}"
    );
    let with_token = observation(&report, "with_token");
    assert!(
        with_token["reason"]
            .as_str()
            .unwrap()
            .starts_with("the header Authorization cannot go through the API server's proxy"),
        "{with_token:#}"
    );
    // The service saw the two reads; the API server, the proxied paths. Nothing was sent.
    let mut seen = api.requests();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("GET".to_string(), "/health".to_string()),
            ("GET".to_string(), "/health/db".to_string())
        ]
    );
    assert!(
        kube.requests().iter().any(|(m, t)| m == "GET"
            && t == "/api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/health"),
        "{:?}",
        kube.requests()
    );
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    let plan = &report["steps"][0]["actions"][0]["plan"];
    assert_eq!(
        plan["request"],
        "POST /api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/api/jobs/clear-stuck",
        "{plan:#}"
    );
    assert!(
        plan["on"].as_str().unwrap().starts_with(
            "service video-processing/api-gateway:8080 through the API server: context fake ("
        ),
        "{plan:#}"
    );

    // Live, the POST goes through the proxy with its body.
    let live = sb.run(&["run", file, "-e", through, "--yes", "--new"]);
    assert_eq!(live.code, 3, "the missing service: {}", live.stderr);
    let posted: Vec<_> = api
        .recorded()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/api/jobs/clear-stuck");
    assert_eq!(posted[0].body_text(), r#"{"older_than":"1h"}"#);

    // A value never changes the shape of the path: a service name with a slash is refused.
    let before = kube.requests().len();
    let odd = sb.run(&[
        "run",
        file,
        "-e",
        through,
        "--dry-run",
        "--new",
        "-o",
        "json",
        "-p",
        "svc=a/../../x",
    ]);
    let pool = observation(&odd.json(), "pool").clone();
    assert_eq!(pool["verdict"], "error");
    assert!(
        pool["reason"]
            .as_str()
            .unwrap()
            .contains("'a/../../x' is not a service or pod name"),
        "{pool:#}"
    );
    assert!(
        kube.requests()[before..]
            .iter()
            .all(|(_, t)| !t.contains("..") && !t.contains("/x")),
        "{:?}",
        kube.requests()
    );

    // kubectl, through the same proxy, reads what oncall read.
    if let Ok(out) = std::process::Command::new("kubectl")
        .args([
            "get",
            "--raw",
            "/api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/health",
            "--kubeconfig",
        ])
        .arg(kube.kubeconfig(&sb.root))
        .env("HOME", &sb.root)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), r#"{"status":"ok"}"#);
        assert_eq!(
            gateway["note"]
                .as_str()
                .or(gateway["text"].as_str())
                .unwrap_or_default(),
            r#"HTTP 200 {"status":"ok"}"#,
            "{gateway:#}"
        );
    }
}

#[test]
fn writes_go_to_the_context_the_plan_names_even_if_the_kubeconfig_changes_meanwhile() {
    let prod = video_cluster();
    let staging = video_cluster();
    let sb = Sandbox::new();
    let token = support::kube::TOKEN;
    let kubeconfig = sb.root.join("two-contexts.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: {}\n- name: staging\n  cluster:\n    server: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: prod-eu\n  context:\n    cluster: prod\n    user: u\n- name: staging\n  context:\n    cluster: staging\n    user: u\ncurrent-context: prod-eu\n",
            prod.url, staging.url
        ),
    )
    .unwrap();
    let sb = sb.env("KUBECONFIG", kubeconfig.to_str().unwrap());
    let config = sb.root.join("config/oncall/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "production_contexts: [prod-*]\n").unwrap();
    // Between the first read of the cluster and the write, someone switches the current context.
    sb.write(
        "flip.yaml",
        &format!(
            "id: flip\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: pods\n        k8s_pods: {{ namespace: video-processing }}\n  - id: switch\n    checks:\n      - id: use_staging\n        shell: {{ command: \"sed -i 's/^current-context: prod-eu/current-context: staging/' {}\" }}\n  - id: act\n    actions:\n      - id: scale\n        title: Scale the GPU workers\n        k8s_scale: {{ namespace: video-processing, deployment: gpu-worker, replicas: 7 }}\n",
            kubeconfig.display()
        ),
    );
    let mut s = support::pty_sized(&sb, &["run", "flip.yaml"], 120);
    s.expect("type prod-eu to apply").unwrap();
    s.send_line("prod-eu").unwrap();
    // 1: the crash-looping worker fails the pods check.
    assert_eq!(support::pty_exit_code(&mut s), 1);
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains("current-context: staging"),
        "the switch happened"
    );
    assert_eq!(
        replicas(&prod, "gpu-worker"),
        7,
        "the write went to prod-eu"
    );
    assert!(
        staging.mutating_requests().is_empty(),
        "{:?}",
        staging.mutating_requests()
    );
}

pub(super) fn exec_cluster() -> FakeKube {
    let kube = video_cluster();
    let ok = |stdout: &str| support::kube::ExecResult {
        stdout: stdout.into(),
        ..Default::default()
    };
    kube.set_exec(
        NS,
        "gpu-worker-a",
        &["sh", "-c", "exit 3"],
        support::kube::ExecResult {
            stderr: "boom\n".into(),
            code: 3,
            ..Default::default()
        },
    );
    kube.set_exec(
        NS,
        "gpu-worker-a",
        &["sleep", "100"],
        support::kube::ExecResult {
            stdout: "started\n".into(),
            hang: true,
            ..Default::default()
        },
    );
    kube.set_exec(
        NS,
        "gpu-worker-a",
        &["drain", "--now"],
        ok("drained 12 jobs\n"),
    );
    // More stderr than oncall keeps: the rest is read and dropped, the stream still ends.
    kube.set_exec(
        NS,
        "gpu-worker-a",
        &["noisy"],
        support::kube::ExecResult {
            stdout: "done\n".into(),
            stderr: "warning: something\n".repeat(2000),
            ..Default::default()
        },
    );
    kube.fail(
        "*",
        "pods/gpu-worker-b/exec",
        403,
        "pods \"gpu-worker-b\" is forbidden: User \"oncall\" cannot create resource \"pods/exec\"",
    );
    kube
}

#[test]
fn commands_run_in_pods_through_exec_with_clear_verdicts() {
    let kube = exec_cluster();
    let sb = sandbox(&kube);
    let file = fixture("exec.yaml");
    let file = file.to_str().unwrap();
    let odd = "x --rm -rf; $(reboot) 'x'";
    let ran = sb.run(&[
        "run",
        file,
        "--dry-run",
        "-o",
        "json",
        "-p",
        &format!("arg={odd}"),
    ]);
    let report = ran.json();
    let driver = observation(&report, "driver");
    assert_eq!(driver["verdict"], "ok", "{driver:#}");
    assert_eq!(driver["value"], 2, "two GPUs seen: {driver:#}");
    assert_eq!(
        driver["text"],
        "535.104.05, NVIDIA A100-SXM4-40GB, 38912 MiB, 40960 MiB"
    );
    let failing = observation(&report, "failing");
    assert_eq!(failing["verdict"], "fail", "{failing:#}");
    assert_eq!(failing["reason"], "command exited with status 3 boom");
    let slow = observation(&report, "slow");
    assert_eq!(slow["verdict"], "error", "{slow:#}");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s: timed out, the stream was closed"),
        "{slow:#}"
    );
    let no_container = observation(&report, "no_container");
    assert!(
        no_container["reason"]
            .as_str()
            .unwrap()
            .contains("container sidecar is not valid for pod gpu-worker-a"),
        "{no_container:#}"
    );
    let noisy = observation(&report, "noisy");
    assert_eq!(
        (&noisy["verdict"], &noisy["value"]),
        (&"ok".into(), &1.into()),
        "{noisy:#}"
    );
    let absent = observation(&report, "absent");
    assert_eq!(absent["verdict"], "error", "{absent:#}");
    assert!(
        absent["reason"]
            .as_str()
            .unwrap()
            .contains("the command could not run: Internal error occurred: error executing command in container: failed to exec in container: exec: \"no-such-tool\": executable file not found"),
        "{absent:#}"
    );
    let forbidden = observation(&report, "forbidden");
    assert!(
        forbidden["reason"]
            .as_str()
            .unwrap()
            .starts_with("the Kubernetes API refused it (403"),
        "{forbidden:#}"
    );
    // The deployment's first ready pod ran it; a value stayed one argument.
    let execs = kube.execs();
    assert!(
        execs.iter().any(
            |(pod, container, argv)| pod == "video-processing/gpu-worker-a"
                && container.as_deref() == Some("main")
                && argv[0] == "nvidia-smi"
        ),
        "{execs:?}"
    );
    assert!(
        execs
            .iter()
            .any(|(_, _, argv)| *argv == ["echo".to_string(), odd.to_string()]),
        "{execs:?}"
    );
    // A dry run runs no action's command; the plan names the pod and the argv.
    assert!(
        execs.iter().all(|(_, _, argv)| argv[0] != "drain"),
        "{execs:?}"
    );
    let plan = &report["steps"][0]["actions"][0]["plan"];
    assert_eq!(
        plan["request"],
        "POST /api/v1/namespaces/video-processing/pods/gpu-worker-a/exec (websocket) drain --now",
        "{plan:#}"
    );

    let live = sb.run(&["run", file, "--yes", "--new", "-o", "json"]);
    let report = live.json();
    let done = &report["steps"][0]["actions"][0];
    assert_eq!(done["result"]["ok"], true, "{done:#}");
    assert!(
        kube.execs()
            .iter()
            .any(|(_, _, argv)| *argv == ["drain", "--now"]),
        "{:?}",
        kube.execs()
    );
}

#[test]
fn kubectl_exec_reads_what_oncall_reads() {
    let kube = exec_cluster();
    let sb = sandbox(&kube);
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kube.kubeconfig(&sb.root))
        .args([
            "exec",
            "-n",
            NS,
            "gpu-worker-a",
            "-c",
            "main",
            "--",
            "nvidia-smi",
            "--query-gpu=driver_version,name,memory.used,memory.total",
            "--format=csv,noheader",
        ])
        .env("HOME", &sb.root)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "535.104.05, NVIDIA A100-SXM4-40GB, 1024 MiB, 40960 MiB\n535.104.05, NVIDIA A100-SXM4-40GB, 38912 MiB, 40960 MiB\n"
    );
}

#[test]
fn error_budget_from_a_laptop_reads_the_seeds_steps_through_the_api_server() {
    let prom = Prometheus::start();
    let kube = exec_cluster();
    let gateway = RecordingServer::with_status(&[("/health/db", 503)]);
    let nats_monitor = RecordingServer::start();
    kube.proxy_to("services", NS, "api-gateway", "8080", &gateway.url);
    kube.proxy_to("services", NS, "job-orchestrator", "8080", &gateway.url);
    kube.proxy_to("services", NS, "nats", "8222", &nats_monitor.url);
    kube.proxy_to("services", "monitoring", "prometheus", "9090", &prom.url);
    let sb = sandbox(&kube);
    // No endpoint given: the bundled defaults go through the API server, and Prometheus too: no
    // route to any of the services is needed.
    let ran = sb.run(&[
        "run",
        "error-budget",
        "--prometheus-url",
        "k8s://monitoring/prometheus:9090",
        // gpu_oom is a third of the errors: "GPU issues" from 30%, so the nvidia-smi step runs.
        "-p",
        "dominant_share_pct=30",
        "--dry-run",
        "-o",
        "json",
    ]);
    let rate = observation(&ran.json(), "error_rate").clone();
    assert_eq!(rate["verdict"], "fail", "{rate:#}");
    assert!(
        (rate["value"].as_f64().unwrap() - 3.0).abs() < 0.5,
        "the error rate through the proxy: {rate:#}"
    );
    assert!(
        kube.requests().iter().any(|(_, t)| t.starts_with(
            "/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query="
        )),
        "{:?}",
        kube.requests()
    );
    let report = ran.json();
    let health = observation(&report, "api_gateway_health");
    assert_eq!(
        (&health["verdict"], &health["value"]),
        (&"ok".into(), &200.into()),
        "{health:#}"
    );
    let pool = observation(&report, "db_pool_health");
    assert_eq!(
        (&pool["verdict"], &pool["value"]),
        (&"fail".into(), &503.into()),
        "{pool:#}"
    );
    assert_eq!(observation(&report, "nats_health")["verdict"], "ok");
    let driver = observation(&report, "gpu_driver");
    assert_eq!(driver["verdict"], "ok", "{driver:#}");
    assert_eq!(driver["value"], 2);
    assert!(
        driver["text"].as_str().unwrap().starts_with("535.104.05"),
        "{driver:#}"
    );
    let mut reads = gateway.requests();
    reads.sort();
    reads.dedup();
    assert_eq!(
        reads,
        [
            ("GET".to_string(), "/health".to_string()),
            ("GET".to_string(), "/health/db".to_string())
        ],
        "reads only: the dry run sent no POST through the proxy"
    );
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    let plans: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap())
        .filter(|a| a["id"] == "clear_stuck_jobs")
        .map(|a| &a["plan"])
        .collect();
    assert_eq!(
        plans[0]["request"],
        "POST /api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/api/jobs/clear-stuck",
        "{:#}",
        plans[0]
    );
}

/// Each check's verdict, and the actions offered, of a run's JSON report.
fn verdicts_and_offers(report: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let steps = report["steps"].as_array().unwrap();
    let mut verdicts: Vec<(String, String)> = steps
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    verdicts.sort();
    let mut offered: Vec<String> = steps
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap().clone())
        .filter(|a| a["decision"] != "not_offered" && !a["plan"].is_null())
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    offered.sort();
    (verdicts, offered)
}

#[test]
fn a_recorded_incident_replays_in_a_drill_to_the_same_verdicts_and_actions() {
    let prom = Prometheus::start();
    let kube = video_cluster();
    let api = RecordingServer::with_status(&[("/health/db", 503)]);
    let sb = sandbox(&kube);
    let args = error_budget_args(
        &prom.url,
        &api.url,
        &[
            "--yes",
            "--output",
            "json",
            "-p",
            "queue_fail=1500",
            "--max-wait",
            "1s",
        ],
    );
    let live = sb.run(&strs(&args)).json();
    let id = live["incident"].as_str().unwrap().to_string();

    let recorded = sb.run(&["scenario", "record", &id, "--to", "last-night.yaml"]);
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    assert!(
        recorded
            .stderr
            .contains("replay it: oncall drill error-budget --scenario last-night.yaml"),
        "{}",
        recorded.stderr
    );
    let text = std::fs::read_to_string(sb.work().join("last-night.yaml")).unwrap();
    // The replica counts the plans read, and the wait's polls in order.
    assert!(text.contains("gpu-worker: 5"), "{text}");
    assert!(text.contains("values:"), "{text}");

    let drill = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "last-night.yaml",
        "--yes",
        "-o",
        "json",
    ]);
    let replay = drill.json();
    assert_eq!(replay["mode"], "drill", "{}", drill.stderr);
    let (live_verdicts, live_offered) = verdicts_and_offers(&live);
    let (drill_verdicts, drill_offered) = verdicts_and_offers(&replay);
    assert_eq!(drill_verdicts, live_verdicts);
    assert_eq!(drill_offered, live_offered);
    let messages = |r: &Value| -> Vec<String> {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["messages"].as_array().cloned().unwrap_or_default())
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(messages(&replay), messages(&live));
}

/// A ReplicaSet of a deployment, as the deployment controller makes it: the deployment's labels
/// plus a pod-template-hash, its revision, created `ago` seconds ago, controlled by the deployment.
fn replica_set(
    name: &str,
    owner: &str,
    labels: &[(&str, &str)],
    revision: u32,
    ago: i64,
    image: &str,
    cause: &str,
) -> Value {
    let mut labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    labels.insert(
        "pod-template-hash".into(),
        name.rsplit('-').next().unwrap().into(),
    );
    let mut annotations =
        serde_json::json!({ "deployment.kubernetes.io/revision": revision.to_string() });
    if !cause.is_empty() {
        annotations["kubernetes.io/change-cause"] = cause.into();
    }
    let rs = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": labels,
            "annotations": annotations,
            "creationTimestamp": support::kube::rfc3339(support::kube::now() - ago),
        },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{ "name": owner, "image": image }] },
            },
        },
        "status": { "replicas": 2, "readyReplicas": 2 },
    });
    FakeKube::owned_by(rs, "Deployment", owner)
}

/// Stores a ReplicaSet controlled by its deployment as the fake holds it: the controller
/// reference carries the deployment's uid, as a real one does (kubectl matches by it).
fn put_replica_set(kube: &FakeKube, mut rs: Value) {
    let name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let owner = rs["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some(d) = kube.get(&format!(
        "/apis/apps/v1/namespaces/{NS}/deployments/{owner}"
    )) {
        rs["metadata"]["ownerReferences"][0]["uid"] = d["metadata"]["uid"].clone();
    }
    kube.put(
        &format!("/apis/apps/v1/namespaces/{NS}/replicasets/{name}"),
        rs,
    );
}

#[test]
fn rollout_history_lists_a_deployment_s_revisions_and_warns_of_recent_ones_reading_only() {
    let kube = video_cluster();
    let gpu = [("app", "worker"), ("component", "gpu-worker")];
    let rs_path = |name: &str| format!("/apis/apps/v1/namespaces/{NS}/replicasets/{name}");
    let img = |tag: &str| format!("registry.example.com/gpu-worker:{tag}");
    put_replica_set(
        &kube,
        replica_set(
            "gpu-worker-5f6d7",
            "gpu-worker",
            &gpu,
            1,
            12 * 86_400,
            &img("2.13"),
            "",
        ),
    );
    put_replica_set(
        &kube,
        replica_set(
            "gpu-worker-7d9f8",
            "gpu-worker",
            &gpu,
            3,
            2 * 3600,
            &img("2.14.1"),
            "bump CUDA to 12.4",
        ),
    );
    put_replica_set(
        &kube,
        replica_set(
            "gpu-worker-6a1b2",
            "gpu-worker",
            &gpu,
            2,
            3 * 86_400,
            &img("2.14"),
            "",
        ),
    );
    // The same labels, but another controller's: not gpu-worker's history.
    kube.put(
        &rs_path("canary-9c8b7"),
        replica_set(
            "canary-9c8b7",
            "gpu-worker-canary",
            &gpu,
            9,
            600,
            &img("3.0"),
            "",
        ),
    );
    // Left by an earlier gpu-worker (deleted and created again): the same name, another uid.
    kube.put(
        &rs_path("gpu-worker-0ld11"),
        replica_set(
            "gpu-worker-0ld11",
            "gpu-worker",
            &gpu,
            8,
            900,
            &img("2.9"),
            "",
        ),
    );
    // Another deployment's, with other labels.
    let asr = [("app", "worker"), ("component", "asr-worker")];
    put_replica_set(
        &kube,
        replica_set(
            "asr-worker-4e3d2",
            "asr-worker",
            &asr,
            1,
            86_400 * 30,
            "registry.example.com/asr-worker:1.9",
            "",
        ),
    );
    let sb = sandbox(&kube);
    sb.write(
        "history.yaml",
        "id: history\ntitle: T\nseverity: P2\nsteps:\n  - id: look\n    checks:\n      - id: gpu\n        k8s_rollout_history: { namespace: video-processing, deployment: gpu-worker, since: 24h }\n      - id: asr\n        k8s_rollout_history: { namespace: video-processing, deployment: asr-worker }\n      - id: missing\n        k8s_rollout_history: { namespace: video-processing, deployment: nope }\n",
    );
    let ran = sb.run(&["run", "history.yaml", "--output", "json"]);
    let report = ran.json();
    let gpu = observation(&report, "gpu");
    assert_eq!(gpu["verdict"], "warn", "{gpu:#}");
    assert_eq!(gpu["value"], 1, "one revision in the last 24h: {gpu:#}");
    assert_eq!(gpu["reason"], "1 revision(s) created in the last 24h");
    assert_eq!(
        gpu["table"]["columns"],
        serde_json::json!([
            "revision",
            "replicaset",
            "age",
            "images",
            "ready",
            "change-cause"
        ])
    );
    let rows = gpu["table"]["rows"].as_array().unwrap();
    let revisions: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        revisions,
        [
            (3, "gpu-worker-7d9f8"),
            (2, "gpu-worker-6a1b2"),
            (1, "gpu-worker-5f6d7")
        ],
        "newest first, the canary's left out"
    );
    assert_eq!(rows[0][2], "2h");
    assert_eq!(rows[0][3], "registry.example.com/gpu-worker:2.14.1");
    assert_eq!(rows[0][4], "2/2");
    assert_eq!(rows[0][5], "bump CUDA to 12.4");
    assert_eq!(
        gpu["text"],
        "revision 3 current (gpu-worker-7d9f8, created 2h ago), 3 revision(s) kept"
    );
    let asr = observation(&report, "asr");
    assert_eq!(
        (&asr["verdict"], &asr["value"]),
        (&"ok".into(), &0.into()),
        "{asr:#}"
    );
    let missing = observation(&report, "missing");
    assert_eq!(missing["verdict"], "error");
    assert!(
        missing["reason"].as_str().unwrap().contains("not found"),
        "{missing:#}"
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        kube.mutating_requests().is_empty(),
        "a check reads only: {:?}",
        kube.mutating_requests()
    );
    assert!(
        kube.requests().iter().any(|(m, p)| m == "GET"
            && p.starts_with(&format!("/apis/apps/v1/namespaces/{NS}/replicasets?"))
            && p.contains("labelSelector=")),
        "{:?}",
        kube.requests()
    );
    // kubectl reads the same history from the same objects.
    let kubectl = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kube.kubeconfig(&sb.root))
        .arg("--cache-dir")
        .arg(sb.root.join("kube-cache"))
        .args(["rollout", "history", "deployment/gpu-worker", "-n", NS])
        .env("HOME", &sb.root)
        .env_remove("KUBECONFIG")
        .output();
    match kubectl {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listed: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
                .map(|l| l.split_whitespace().next().unwrap())
                .collect();
            assert_eq!(listed, ["1", "2", "3"], "{text}");
            assert!(text.contains("bump CUDA to 12.4"), "{text}");
        }
        Err(e) => eprintln!("SKIPPED the kubectl comparison: {e}"),
    }
}

/// `-n video` moves the endpoints built from the namespace with the reads and writes: one run's
/// rollout restart and its POST through the API server's proxy go to the same namespace. An
/// endpoint given with --endpoint stays where it points.
#[test]
fn the_namespace_flag_moves_the_in_cluster_endpoints_with_the_writes() {
    let kube = FakeKube::start();
    kube.add_deployment("video", "api-gateway", 3, &[("app", "api-gateway")]);
    let gateway = RecordingServer::start();
    kube.proxy_to("services", "video", "api-gateway", "8080", &gateway.url);
    let sb = sandbox(&kube);
    let file = fixture("namespaced.yaml");
    let file = file.to_str().unwrap();

    let live = sb.run(&["run", file, "-n", "video", "--yes", "-o", "json"]);
    assert_eq!(live.code, 0, "{}{}", live.stdout, live.stderr);
    let opened = sb.timeline().remove(0);
    assert_eq!(
        opened["endpoints"]["api_gateway"], "k8s://video/api-gateway:8080",
        "{opened:#}"
    );
    let writes = kube.mutating_requests();
    assert!(
        writes
            .iter()
            .any(|(m, t)| m == "PATCH"
                && t == "/apis/apps/v1/namespaces/video/deployments/api-gateway"),
        "{writes:?}"
    );
    assert!(
        writes.iter().any(|(m, t)| m == "POST"
            && t == "/api/v1/namespaces/video/services/api-gateway:8080/proxy/api/jobs/clear-stuck"),
        "{writes:?}"
    );
    assert!(
        writes.iter().all(|(_, t)| !t.contains("video-processing")),
        "nothing went to the default namespace: {writes:?}"
    );
    let posted: Vec<_> = gateway
        .recorded()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/api/jobs/clear-stuck");

    // ONCALL_NAMESPACE is the same flag; `show` names the moved endpoints too.
    let show = sandbox(&kube)
        .env("ONCALL_NAMESPACE", "video")
        .run(&["show", file]);
    assert!(
        show.stdout
            .contains("api_gateway = k8s://video/api-gateway:8080")
            && show
                .stdout
                .contains("POST k8s://video/api-gateway:8080/api/jobs/clear-stuck"),
        "{}",
        show.stdout
    );

    // Given explicitly, an endpoint is never moved.
    let pinned = sb.run(&[
        "run",
        file,
        "-n",
        "video",
        "-e",
        "api_gateway=k8s://video-processing/api-gateway:8080",
        "--dry-run",
        "-o",
        "json",
    ]);
    let plan = &pinned.json()["steps"][0]["actions"][1]["plan"];
    assert_eq!(
        plan["request"],
        "POST /api/v1/namespaces/video-processing/services/api-gateway:8080/proxy/api/jobs/clear-stuck",
        "{plan:#}"
    );
}

/// A service the API server's proxy answered 404 for in this run (the check through it) is not
/// there: the plan of a request to it says it would fail, and a live run does not send it.
#[test]
fn a_proxied_service_that_answered_404_makes_its_action_a_plan_that_would_fail() {
    let kube = FakeKube::start();
    kube.add_deployment("staging", "api-gateway", 1, &[("app", "api-gateway")]);
    let sb = sandbox(&kube);
    let file = fixture("namespaced.yaml");
    let file = file.to_str().unwrap();

    let dry = sb.run(&["run", file, "-n", "staging", "--dry-run", "-o", "json"]);
    let report = dry.json();
    let gateway = observation(&report, "gateway");
    assert_eq!(gateway["verdict"], "error", "{gateway:#}");
    let plan = &report["steps"][0]["actions"][1]["plan"];
    assert_eq!(
        plan["missing"],
        "not found: service staging/api-gateway:8080 through the API server's proxy: services \"api-gateway\" not found (a check of this run got 404 there): this action would fail",
        "{plan:#}"
    );
    let text = sb.run(&["run", file, "-n", "staging", "--dry-run", "--new"]);
    assert!(
        text.stdout.contains("this action would fail"),
        "{}",
        text.stdout
    );

    let live = sb.run(&["run", file, "-n", "staging", "--yes", "--new", "-o", "json"]);
    let report = live.json();
    let clear = report["steps"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "clear")
        .unwrap()
        .clone();
    assert_eq!(clear["decision"], "not_offered", "{clear:#}");
    assert!(
        kube.mutating_requests()
            .iter()
            .all(|(m, t)| !(m == "POST" && t.contains("/proxy/"))),
        "nothing was sent through the proxy: {:?}",
        kube.mutating_requests()
    );
    // The restart, whose deployment is there, was sent.
    assert!(
        kube.mutating_requests().iter().any(|(m, t)| m == "PATCH"
            && t == "/apis/apps/v1/namespaces/staging/deployments/api-gateway"),
        "{:?}",
        kube.mutating_requests()
    );
}
