//! Proves the fake Kubernetes API server in `kube.rs` speaks Kubernetes: raw HTTP for the wire
//! details (paging, selectors, patches, logs, watches, faults), kube-rs for the client the
//! backend uses, and the real `kubectl` for fidelity.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Sandbox;
use super::kube::{FakeKube, TOKEN, now};

const NS: &str = "video-processing";
const DEPLOY: &str = "/apis/apps/v1/namespaces/video-processing/deployments/gpu-worker";

/// One HTTP/1.1 request with the kubeconfig's token (and `Connection: close`); returns
/// (status, body) with a chunked body decoded.
fn http(
    fake: &FakeKube,
    method: &str,
    target: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    http_with(
        fake,
        method,
        target,
        &[("Content-Type", content_type)],
        body,
        true,
    )
}

fn http_with(
    fake: &FakeKube,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
    token: bool,
) -> (u16, String) {
    let host = fake.url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if token {
        head += &format!("Authorization: Bearer {TOKEN}\r\n");
    }
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        s = &rest[size + 2..];
    }
}

fn get_json(fake: &FakeKube, target: &str) -> (u16, Value) {
    let (status, body) = http(fake, "GET", target, "application/json", "");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {body}")),
    )
}

fn patch(fake: &FakeKube, target: &str, content_type: &str, body: Value) -> (u16, Value) {
    let (status, body) = http(fake, "PATCH", target, content_type, &body.to_string());
    (status, serde_json::from_str(&body).unwrap())
}

/// A cluster like the error-budget runbook's: three deployments, worker pods in various
/// states, the api-gateway config, logs and events.
fn seeded() -> FakeKube {
    let fake = FakeKube::start();
    fake.add_deployment(NS, "gpu-worker", 5, &[("app", "worker"), ("tier", "gpu")]);
    fake.add_deployment(NS, "api-gateway", 3, &[("app", "api-gateway")]);
    fake.add_deployment(NS, "asr-worker", 2, &[("app", "asr")]);
    let pods = [
        ("gpu-worker-7d4b9c8f5-abcde", "Running", true, 0, None, None),
        (
            "gpu-worker-7d4b9c8f5-fghij",
            "Running",
            true,
            3,
            Some("OOMKilled"),
            None,
        ),
        (
            "gpu-worker-7d4b9c8f5-klmno",
            "Running",
            false,
            7,
            Some("Error"),
            Some("CrashLoopBackOff"),
        ),
    ];
    for (name, phase, ready, restarts, last, waiting) in pods {
        let pod = FakeKube::pod(
            NS,
            name,
            &[("app", "worker"), ("tier", "gpu")],
            phase,
            ready,
            restarts,
            last,
            waiting,
            "node-1",
        );
        fake.add_pod(
            NS,
            FakeKube::owned_by(pod, "ReplicaSet", "gpu-worker-7d4b9c8f5"),
        );
    }
    fake.add_pod(
        NS,
        FakeKube::pod(
            NS,
            "api-gateway-5f6d7c8b9-xyz12",
            &[("app", "api-gateway")],
            "Running",
            true,
            0,
            None,
            None,
            "node-2",
        ),
    );
    fake.add_configmap(
        NS,
        "api-gateway-config",
        &[("DB_MAX_CONNECTIONS", "20"), ("LOG_LEVEL", "info")],
    );
    let t = now();
    fake.set_logs(
        NS,
        "gpu-worker-7d4b9c8f5-abcde",
        vec![
            (t - 7200, "old: CUDA error: out of memory".into()),
            (t - 1800, "recent: processing video 42".into()),
            (t - 60, "recent: CUDA error: out of memory".into()),
        ],
    );
    fake.add_event(
        NS,
        json!({
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container main",
            "involvedObject": { "kind": "Pod", "name": "gpu-worker-7d4b9c8f5-klmno" },
            "count": 12,
        }),
    );
    fake.add_event(
        NS,
        json!({
            "type": "Normal",
            "reason": "Pulled",
            "message": "Container image already present on machine",
            "involvedObject": { "kind": "Pod", "name": "gpu-worker-7d4b9c8f5-abcde" },
        }),
    );
    fake
}

#[test]
fn kube_discovery_auth_and_not_found() {
    let fake = FakeKube::start();
    fake.add_deployment(NS, "gpu-worker", 5, &[("app", "worker")]);

    let (status, version) = get_json(&fake, "/version");
    assert_eq!(status, 200);
    assert_eq!(version["gitVersion"], "v1.30.0");
    let (_, api) = get_json(&fake, "/api");
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core) = get_json(&fake, "/api/v1");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for r in ["pods", "pods/log", "configmaps", "events", "namespaces"] {
        assert!(names.contains(&r), "{r} missing from {names:?}");
    }
    let (_, groups) = get_json(&fake, "/apis");
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "apps/v1"
    );
    let (_, apps) = get_json(&fake, "/apis/apps/v1");
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .expect("deployments/scale");
    assert_eq!(
        (&scale["group"], &scale["version"], &scale["kind"]),
        (&json!("autoscaling"), &json!("v1"), &json!("Scale"))
    );

    let wrong = [("Authorization", "Bearer wrong")];
    let (status, body) = http_with(&fake, "GET", "/api/v1/namespaces/x/pods", &wrong, "", false);
    assert_eq!(status, 401, "{body}");
    let (status, body) = http_with(&fake, "GET", "/api/v1/namespaces/x/pods", &[], "", false);
    assert_eq!(
        status, 200,
        "anonymous is allowed (kubectl sends no token over http): {body}"
    );

    let (status, missing) = get_json(
        &fake,
        "/apis/apps/v1/namespaces/video-processing/deployments/nope",
    );
    assert_eq!(status, 404);
    assert_eq!(missing["kind"], "Status");
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(missing["message"], "deployments.apps \"nope\" not found");
    assert_eq!(missing["details"]["name"], "nope");
    let (status, unknown) = get_json(&fake, "/apis/widgets.example.com/v1/things");
    assert_eq!(status, 404);
    assert_eq!(
        unknown,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"the server could not find the requested resource","reason":"NotFound","code":404})
    );
    let (status, _) = get_json(&fake, "/api/v1/namespaces/video-processing/pods/nope/log");
    assert_eq!(status, 404);

    let deployment = fake.get(DEPLOY).unwrap();
    assert_eq!(deployment["status"]["availableReplicas"], 5);
    assert_eq!(deployment["status"]["observedGeneration"], 1);
    assert!(deployment["metadata"]["uid"].is_string());
    assert_eq!(
        fake.requests()[0],
        ("GET".to_string(), "/version".to_string())
    );
    assert!(fake.mutating_requests().is_empty());
    let recorded = fake.recorded();
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded.last().unwrap().status, 404);
}

#[test]
fn kube_pods_page_with_limit_and_continue() {
    let fake = FakeKube::start();
    for i in 0..1200 {
        let app = if i % 2 == 0 { "worker" } else { "encoder" };
        let pod = FakeKube::pod(
            NS,
            &format!("pod-{i:04}"),
            &[("app", app)],
            "Running",
            true,
            0,
            None,
            None,
            "node-1",
        );
        fake.add_pod(NS, pod);
    }
    fake.add_pod(
        "other",
        FakeKube::pod(
            "other",
            "elsewhere",
            &[("app", "worker")],
            "Running",
            true,
            0,
            None,
            None,
            "n",
        ),
    );

    let mut names = Vec::new();
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let mut target = format!("/api/v1/namespaces/{NS}/pods?limit=500");
        if !token.is_empty() {
            target += &format!("&continue={token}");
        }
        let (status, list) = get_json(&fake, &target);
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["kind"], "PodList");
        let items = list["items"].as_array().unwrap();
        pages.push((items.len(), list["metadata"]["remainingItemCount"].clone()));
        names.extend(
            items
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match list["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(
        pages,
        vec![(500, json!(700)), (500, json!(200)), (200, Value::Null)]
    );
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1200);
    assert_eq!(names, unique, "pages come in name order");

    // Selectors page too; across namespaces with /api/v1/pods.
    let (_, page) = get_json(
        &fake,
        "/api/v1/namespaces/video-processing/pods?labelSelector=app%3Dworker&limit=500",
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 500);
    assert_eq!(page["metadata"]["remainingItemCount"], 100);
    let (_, all) = get_json(&fake, "/api/v1/pods?labelSelector=app%3Dworker");
    assert_eq!(all["items"].as_array().unwrap().len(), 601);
    let (status, bad) = get_json(&fake, "/api/v1/pods?limit=5&continue=%%%");
    assert_eq!(status, 400, "{bad}");
    assert_eq!(fake.list("/api/v1/namespaces/other/pods").len(), 1);
}

#[test]
fn kube_label_and_field_selectors() {
    let fake = seeded();
    let names = |target: &str| -> Vec<String> {
        let (status, list) = get_json(&fake, target);
        assert_eq!(status, 200, "{target}: {list}");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let pods = "/api/v1/namespaces/video-processing/pods";
    assert_eq!(
        names(&format!("{pods}?labelSelector=app%3Dworker")).len(),
        3
    );
    assert_eq!(
        names(&format!("{pods}?labelSelector=app%3Dworker,tier%3Dgpu")).len(),
        3
    );
    assert_eq!(
        names(&format!("{pods}?labelSelector=app%3Dworker,tier%3Dcpu")).len(),
        0
    );
    assert_eq!(
        names(&format!("{pods}?labelSelector=app%21%3Dworker")),
        vec!["api-gateway-5f6d7c8b9-xyz12"]
    );
    assert_eq!(
        names(&format!(
            "{pods}?labelSelector=app+in+%28worker%2Capi-gateway%29"
        ))
        .len(),
        4
    );
    assert_eq!(
        names(&format!("{pods}?labelSelector=app%20notin%20(worker)")).len(),
        1
    );
    assert_eq!(names(&format!("{pods}?labelSelector=tier")).len(), 3);
    assert_eq!(names(&format!("{pods}?labelSelector=%21tier")).len(), 1);
    assert_eq!(
        names(&format!(
            "{pods}?fieldSelector=metadata.name%3Dgpu-worker-7d4b9c8f5-abcde"
        )),
        vec!["gpu-worker-7d4b9c8f5-abcde"]
    );
    assert_eq!(
        names(&format!(
            "{pods}?fieldSelector=status.phase%3DRunning,spec.nodeName%3Dnode-2"
        ))
        .len(),
        1
    );
    let deployments = "/apis/apps/v1/namespaces/video-processing/deployments";
    assert_eq!(
        names(&format!("{deployments}?labelSelector=app%3Dasr")),
        vec!["asr-worker"]
    );
    assert_eq!(names("/apis/apps/v1/deployments").len(), 3);

    let events = "/api/v1/namespaces/video-processing/events";
    assert_eq!(names(events).len(), 2);
    let warnings = names(&format!(
        "{events}?fieldSelector=involvedObject.name%3Dgpu-worker-7d4b9c8f5-klmno,involvedObject.kind%3DPod,type%3DWarning"
    ));
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("gpu-worker-7d4b9c8f5-klmno."),
        "{warnings:?}"
    );
    assert_eq!(
        names(&format!("{events}?fieldSelector=type%21%3DWarning")).len(),
        1
    );
    let (_, list) = get_json(&fake, &format!("{events}?fieldSelector=type%3DWarning"));
    let event = &list["items"][0];
    assert_eq!(event["count"], 12);
    assert_eq!(event["involvedObject"]["namespace"], NS);
    assert!(event["lastTimestamp"].is_string());
}

#[test]
fn kube_patches_scale_restart_and_delete() {
    let fake = seeded();
    let cm = "/api/v1/namespaces/video-processing/configmaps/api-gateway-config";
    // Merge patch: maps merge, null deletes.
    let (status, out) = patch(
        &fake,
        cm,
        "application/merge-patch+json",
        json!({"data": {"DB_MAX_CONNECTIONS": "50", "LOG_LEVEL": null}}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"], json!({"DB_MAX_CONNECTIONS": "50"}));
    // Strategic merge, as kubectl patch sends it.
    let (_, out) = patch(
        &fake,
        cm,
        "application/strategic-merge-patch+json",
        json!({"data": {"FEATURE": "on"}, "metadata": {"annotations": {"a": "b"}}}),
    );
    assert_eq!(
        out["data"],
        json!({"DB_MAX_CONNECTIONS": "50", "FEATURE": "on"})
    );
    assert_eq!(fake.get(cm).unwrap()["metadata"]["annotations"]["a"], "b");
    // JSON patch.
    let (status, out) = patch(
        &fake,
        cm,
        "application/json-patch+json",
        json!([{"op": "replace", "path": "/data/FEATURE", "value": "off"}, {"op": "add", "path": "/data/NEW", "value": "1"}]),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"]["FEATURE"], "off");
    assert_eq!(out["data"]["NEW"], "1");
    let (status, out) = patch(
        &fake,
        cm,
        "application/json-patch+json",
        json!([{"op": "test", "path": "/data/NEW", "value": "2"}]),
    );
    assert_eq!((status, &out["reason"]), (422, &json!("Invalid")));
    let (status, _) = http(&fake, "PATCH", cm, "application/json", "{}");
    assert_eq!(status, 415);

    // Scale subresource.
    let scale_path = format!("{DEPLOY}/scale");
    let (_, scale) = get_json(&fake, &scale_path);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=worker,tier=gpu");
    let rv_before = fake.get(DEPLOY).unwrap()["metadata"]["resourceVersion"].clone();
    let (status, scale) = patch(
        &fake,
        &scale_path,
        "application/merge-patch+json",
        json!({"spec": {"replicas": 10}}),
    );
    assert_eq!(status, 200, "{scale}");
    assert_eq!(scale["spec"]["replicas"], 10);
    let d = fake.get(DEPLOY).unwrap();
    assert_eq!(d["spec"]["replicas"], 10);
    assert_eq!(d["status"]["readyReplicas"], 10);
    assert_eq!(d["status"]["availableReplicas"], 10);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_ne!(d["metadata"]["resourceVersion"], rv_before);
    // PUT with a stale resourceVersion conflicts; with the current one it applies.
    let stale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "gpu-worker", "namespace": NS, "resourceVersion": "1"}, "spec": {"replicas": 3}});
    let (status, _) = http(
        &fake,
        "PUT",
        &scale_path,
        "application/json",
        &stale.to_string(),
    );
    assert_eq!(status, 409);
    let mut fresh = stale.clone();
    fresh["metadata"]["resourceVersion"] =
        fake.get(DEPLOY).unwrap()["metadata"]["resourceVersion"].clone();
    let (status, body) = http(
        &fake,
        "PUT",
        &scale_path,
        "application/json",
        &fresh.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.get(DEPLOY).unwrap()["spec"]["replicas"], 3);
    let (status, _) = patch(
        &fake,
        &scale_path,
        "application/merge-patch+json",
        json!({"spec": {"replicas": -1}}),
    );
    assert_eq!(status, 422);
    let (status, missing) = patch(
        &fake,
        "/apis/apps/v1/namespaces/video-processing/deployments/nope/scale",
        "application/merge-patch+json",
        json!({"spec": {"replicas": 1}}),
    );
    assert_eq!(status, 404);
    assert_eq!(missing["message"], "deployments.apps \"nope\" not found");

    // Rollout restart the way kubectl does it.
    let (status, d) = patch(
        &fake,
        DEPLOY,
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}),
    );
    assert_eq!(status, 200, "{d}");
    let d = fake.get(DEPLOY).unwrap();
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2025-01-01T00:00:00Z"
    );
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "worker");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(d["status"]["updatedReplicas"], d["spec"]["replicas"]);
    // Strategic merge of a keyed list keeps the other fields of the container.
    let (_, d) = patch(
        &fake,
        DEPLOY,
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "gpu-worker"}], "containers": [{"name": "gpu-worker", "image": "registry.example.com/gpu-worker:2.0"}]}}}}),
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example.com/gpu-worker:2.0");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Annotations on the deployment (pause/resume uploads).
    let (_, d) = patch(
        &fake,
        DEPLOY,
        "application/merge-patch+json",
        json!({"metadata": {"annotations": {"uploads/paused": "true"}}}),
    );
    assert_eq!(d["metadata"]["annotations"]["uploads/paused"], "true");

    // Delete a pod.
    let pod = "/api/v1/namespaces/video-processing/pods/gpu-worker-7d4b9c8f5-klmno";
    let (status, deleted) = {
        let (s, b) = http(
            &fake,
            "DELETE",
            pod,
            "application/json",
            "{\"propagationPolicy\":\"Background\"}",
        );
        (s, serde_json::from_str::<Value>(&b).unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(deleted["kind"], "Pod");
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert!(fake.get(pod).is_none());
    let (status, _) = http(&fake, "DELETE", pod, "application/json", "");
    assert_eq!(status, 404);

    let mutating: Vec<String> = fake
        .mutating_requests()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert!(
        mutating
            .iter()
            .all(|m| m == "PATCH" || m == "PUT" || m == "DELETE"),
        "{mutating:?}"
    );
}

#[test]
fn kube_pod_logs_filter_by_time_and_tail() {
    let fake = seeded();
    let log = "/api/v1/namespaces/video-processing/pods/gpu-worker-7d4b9c8f5-abcde/log";
    let (status, all) = http(&fake, "GET", log, "", "");
    assert_eq!(status, 200);
    assert_eq!(all.lines().count(), 3);
    let (_, recent) = http(
        &fake,
        "GET",
        &format!("{log}?sinceSeconds=3600&follow=false"),
        "",
        "",
    );
    assert_eq!(
        recent,
        "recent: processing video 42\nrecent: CUDA error: out of memory\n"
    );
    let (_, tail) = http(
        &fake,
        "GET",
        &format!("{log}?tailLines=1&timestamps=true&container=main"),
        "",
        "",
    );
    let (ts, line) = tail.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "recent: CUDA error: out of memory");
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    let (status, err) = http(&fake, "GET", &format!("{log}?container=sidecar"), "", "");
    assert_eq!(status, 400, "{err}");
    let (status, _) = http(&fake, "GET", &format!("{log}?sinceSeconds=0"), "", "");
    assert_eq!(status, 422);
    let (_, bytes) = http(&fake, "GET", &format!("{log}?limitBytes=10"), "", "");
    assert_eq!(bytes, "old: CUDA ");
    // A pod with no log set has an empty log.
    let (status, empty) = http(
        &fake,
        "GET",
        "/api/v1/namespaces/video-processing/pods/api-gateway-5f6d7c8b9-xyz12/log",
        "",
        "",
    );
    assert_eq!((status, empty.as_str()), (200, ""));
}

#[test]
fn kube_fail_gives_a_status_and_delay_delays() {
    let fake = seeded();
    fake.fail(
        "PATCH",
        "/deployments/gpu-worker/scale",
        403,
        "deployments.apps \"gpu-worker\" is forbidden: User \"oncall\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"video-processing\"",
    );
    let (status, body) = patch(
        &fake,
        &format!("{DEPLOY}/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 10}}),
    );
    assert_eq!(status, 403);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(body["code"], 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot patch resource")
    );
    assert_eq!(
        fake.get(DEPLOY).unwrap()["spec"]["replicas"],
        5,
        "a refused scale changes nothing"
    );
    // Reads still work; the failed request was recorded.
    assert_eq!(get_json(&fake, &format!("{DEPLOY}/scale")).0, 200);
    assert!(
        fake.mutating_requests()
            .iter()
            .any(|(m, p)| m == "PATCH" && p.ends_with("/scale"))
    );
    fake.clear_failures();
    assert_eq!(
        patch(
            &fake,
            &format!("{DEPLOY}/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 10}})
        )
        .0,
        200
    );

    fake.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get_json(&fake, "/version").0, 200);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");

    // Dropping the server mid-delay ends at once.
    fake.set_delay(Duration::from_secs(30));
    let before = fake.requests().len();
    let url = fake.url.clone();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(url.strip_prefix("http://").unwrap()).unwrap();
        write!(s, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    });
    while fake.requests().len() <= before {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(fake);
    client.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn kube_watch_streams_changes_and_tables_print() {
    let fake = seeded();
    let (_, list) = get_json(
        &fake,
        "/apis/apps/v1/namespaces/video-processing/deployments?fieldSelector=metadata.name%3Dgpu-worker",
    );
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watcher = {
        let url = fake.url.clone();
        std::thread::spawn(move || {
            let host = url.strip_prefix("http://").unwrap().to_string();
            let mut s = TcpStream::connect(&host).unwrap();
            write!(
                s,
                "GET /apis/apps/v1/namespaces/video-processing/deployments?fieldSelector=metadata.name%3Dgpu-worker&resourceVersion={rv}&watch=true&timeoutSeconds=2 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            )
            .unwrap();
            let mut raw = String::new();
            s.read_to_string(&mut raw).unwrap();
            dechunk(raw.split_once("\r\n\r\n").unwrap().1)
        })
    };
    while !fake
        .requests()
        .iter()
        .any(|(_, p)| p.contains("watch=true"))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    patch(
        &fake,
        &format!("{DEPLOY}/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 7}}),
    );
    patch(
        &fake,
        "/apis/apps/v1/namespaces/video-processing/deployments/asr-worker/scale",
        "application/merge-patch+json",
        json!({"spec": {"replicas": 7}}),
    );
    let events: Vec<Value> = watcher
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["spec"]["replicas"], 7);

    let table_accept = [(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let (_, body) = http_with(
        &fake,
        "GET",
        "/api/v1/namespaces/video-processing/pods?labelSelector=app%3Dworker&limit=500",
        &table_accept,
        "",
        true,
    );
    let table: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Ready", "Status", "Restarts", "Age"]);
    let rows: Vec<Vec<String>> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["cells"].as_array().unwrap()[..4]
                .iter()
                .map(|c| c.as_str().map_or(c.to_string(), str::to_string))
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        ["gpu-worker-7d4b9c8f5-abcde", "1/1", "Running", "0"]
    );
    assert_eq!(
        rows[1],
        [
            "gpu-worker-7d4b9c8f5-fghij",
            "1/1",
            "Running",
            "3 (10m ago)"
        ]
    );
    assert_eq!(
        rows[2],
        [
            "gpu-worker-7d4b9c8f5-klmno",
            "0/1",
            "CrashLoopBackOff",
            "7 (10m ago)"
        ]
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

/// kube-rs, the client the backend uses, against the fake through a kubeconfig.
#[test]
fn kube_rs_client_works_against_the_fake() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
    use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};

    let fake = seeded();
    let sandbox = Sandbox::new();
    let path = fake.kubeconfig(&sandbox.root);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let kubeconfig = Kubeconfig::read_from(&path).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        assert_eq!(config.default_namespace, "default");
        let client = kube::Client::try_from(config).unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.30.0");

        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let list = pods
            .list(&ListParams::default().labels("app=worker").limit(2))
            .await
            .unwrap();
        assert_eq!(list.items.len(), 2);
        let token = list.metadata.continue_.clone().expect("a continue token");
        let rest = pods
            .list(
                &ListParams::default()
                    .labels("app=worker")
                    .limit(2)
                    .continue_token(&token),
            )
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 1);
        let crashing = &rest.items[0];
        let status = crashing
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap();
        assert_eq!(status[0].restart_count, 7);
        assert_eq!(
            status[0]
                .state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            status[0]
                .last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Error")
        );

        let logs = pods
            .logs(
                "gpu-worker-7d4b9c8f5-abcde",
                &LogParams {
                    since_seconds: Some(3600),
                    timestamps: true,
                    ..LogParams::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(logs.lines().count(), 2, "{logs}");

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
        let scale = deployments.get_scale("gpu-worker").await.unwrap();
        assert_eq!(scale.spec.unwrap().replicas, Some(5));
        deployments
            .patch_scale(
                "gpu-worker",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 10}})),
            )
            .await
            .unwrap();
        let d = deployments.get("gpu-worker").await.unwrap();
        assert_eq!(d.spec.unwrap().replicas, Some(10));
        assert_eq!(d.status.unwrap().ready_replicas, Some(10));
        // kube-rs's own restart() annotates `kube.kubernetes.io/restartedAt`, not kubectl's key.
        deployments.restart("gpu-worker").await.unwrap();
        let d = fake.get(DEPLOY).unwrap();
        let annotations = &d["spec"]["template"]["metadata"]["annotations"];
        assert!(
            annotations["kube.kubernetes.io/restartedAt"].is_string(),
            "{d}"
        );
        let restart = fake
            .recorded()
            .into_iter()
            .rev()
            .find(|r| r.method == "PATCH")
            .unwrap();
        assert_eq!(restart.header("authorization"), Some("Bearer fake-token"));
        let err = deployments.get("nope").await.unwrap_err();
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 404);
                assert_eq!(status.message, "deployments.apps \"nope\" not found");
            }
            other => panic!("{other:?}"),
        }

        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
        let cm = configmaps
            .patch(
                "api-gateway-config",
                &PatchParams::default(),
                &Patch::Strategic(json!({"data": {"DB_MAX_CONNECTIONS": "50"}})),
            )
            .await
            .unwrap();
        assert_eq!(cm.data.unwrap()["DB_MAX_CONNECTIONS"], "50");

        let events: Api<Event> = Api::namespaced(client.clone(), NS);
        let warnings = events
            .list(&ListParams::default().fields("type=Warning,involvedObject.kind=Pod"))
            .await
            .unwrap();
        assert_eq!(warnings.items.len(), 1);
        assert_eq!(warnings.items[0].reason.as_deref(), Some("BackOff"));

        pods.delete("gpu-worker-7d4b9c8f5-klmno", &DeleteParams::default())
            .await
            .unwrap();
        assert!(
            pods.get_opt("gpu-worker-7d4b9c8f5-klmno")
                .await
                .unwrap()
                .is_none()
        );

        fake.fail("PATCH", "/scale", 403, "forbidden by RBAC");
        let err = deployments
            .patch_scale(
                "gpu-worker",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 1}})),
            )
            .await
            .unwrap_err();
        match err {
            kube::Error::Api(status) => {
                assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
                assert_eq!(status.message, "forbidden by RBAC");
            }
            other => panic!("{other:?}"),
        }
    });
}

/// Runs kubectl against the fake with its own cache dir and HOME; (exit ok, stdout, stderr).
fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(home.join("kube-cache"))
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real kubectl (Debian's kubernetes-client, installed by scripts/test.sh) against the fake:
/// what kubectl users expect to see and to happen.
#[test]
fn kubectl_fidelity() {
    let installed = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "SKIPPED kubectl_fidelity: `kubectl` is not installed (scripts/test.sh installs Debian's kubernetes-client)"
        );
        return;
    }
    let fake = seeded();
    let sandbox = Sandbox::new();
    let home = sandbox.root.join("home");
    let config = fake.kubeconfig(&sandbox.root);
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = kubectl(&config, &home, args);
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}\nrequests:\n{:#?}",
            fake.recorded()
                .iter()
                .map(|r| format!("{} {} -> {}", r.method, r.target(), r.status))
                .collect::<Vec<_>>()
        );
        eprintln!("$ kubectl {}\n{stdout}", args.join(" "));
        stdout
    };
    let row = |out: &str, name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };

    let out = run(&["get", "pods", "-n", NS, "-l", "app=worker"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(
        row(&out, "gpu-worker-7d4b9c8f5-abcde")[1..4],
        ["1/1", "Running", "0"]
    );
    assert_eq!(
        row(&out, "gpu-worker-7d4b9c8f5-fghij")[1..3],
        ["1/1", "Running"]
    );
    assert_eq!(
        row(&out, "gpu-worker-7d4b9c8f5-klmno")[1..3],
        ["0/1", "CrashLoopBackOff"]
    );
    assert!(!out.contains("api-gateway"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");

    let out = run(&["get", "deployment", "gpu-worker", "-n", NS]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(
        row(&out, "gpu-worker")[..4],
        ["gpu-worker", "5/5", "5", "5"]
    );
    let out = run(&["get", "deployments", "-n", NS, "-o", "wide"]);
    assert!(out.contains("registry.example.com/gpu-worker:1.0"), "{out}");
    assert!(out.contains("app=worker,tier=gpu"), "{out}");

    let out = run(&[
        "scale",
        "deployment",
        "gpu-worker",
        "--replicas=10",
        "-n",
        NS,
    ]);
    assert!(out.contains("deployment.apps/gpu-worker scaled"), "{out}");
    assert_eq!(fake.get(DEPLOY).unwrap()["spec"]["replicas"], 10);
    let out = run(&["get", "deployment", "gpu-worker", "-n", NS]);
    assert_eq!(
        row(&out, "gpu-worker")[..4],
        ["gpu-worker", "10/10", "10", "10"]
    );

    let out = run(&["rollout", "restart", "deployment/gpu-worker", "-n", NS]);
    assert!(
        out.contains("deployment.apps/gpu-worker restarted"),
        "{out}"
    );
    let d = fake.get(DEPLOY).unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d:#}"
    );
    let out = run(&[
        "rollout",
        "status",
        "deployment/gpu-worker",
        "-n",
        NS,
        "--timeout=20s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");

    let out = run(&["logs", "gpu-worker-7d4b9c8f5-abcde", "-n", NS, "--since=1h"]);
    assert_eq!(
        out,
        "recent: processing video 42\nrecent: CUDA error: out of memory\n"
    );

    let out = run(&[
        "patch",
        "configmap",
        "api-gateway-config",
        "-n",
        NS,
        "-p",
        r#"{"data":{"DB_MAX_CONNECTIONS":"50"}}"#,
    ]);
    assert!(
        out.contains("configmap/api-gateway-config patched"),
        "{out}"
    );
    let cm = fake
        .get("/api/v1/namespaces/video-processing/configmaps/api-gateway-config")
        .unwrap();
    assert_eq!(
        cm["data"],
        json!({"DB_MAX_CONNECTIONS": "50", "LOG_LEVEL": "info"})
    );

    let out = run(&[
        "get",
        "events",
        "-n",
        NS,
        "--field-selector",
        "type=Warning",
    ]);
    assert!(out.contains("BackOff"), "{out}");
    assert!(!out.contains("Pulled"), "{out}");

    let out = run(&["delete", "pod", "gpu-worker-7d4b9c8f5-klmno", "-n", NS]);
    assert!(
        out.contains("pod \"gpu-worker-7d4b9c8f5-klmno\" deleted"),
        "{out}"
    );
    assert!(
        fake.get("/api/v1/namespaces/video-processing/pods/gpu-worker-7d4b9c8f5-klmno")
            .is_none()
    );

    // kubectl found every resource it looked for: the only 404s are optional endpoints and
    // the check that a deleted pod is gone.
    let recorded = fake.recorded();
    let deleted: Vec<&str> = recorded
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.as_str())
        .collect();
    for r in &recorded {
        let accept = r.header("accept").unwrap_or("");
        let ct = r.header("content-type").unwrap_or("");
        eprintln!(
            "{} {} -> {} [accept {accept}] [content-type {ct}] {}",
            r.method,
            r.target(),
            r.status,
            r.body_text()
        );
    }
    let unexpected: Vec<String> = recorded
        .iter()
        .filter(|r| r.status >= 400 && !r.path.starts_with("/openapi"))
        .filter(|r| !(r.status == 404 && deleted.contains(&r.path.as_str())))
        .map(|r| format!("{} {} -> {}", r.method, r.target(), r.status))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}

/// `kubectl auth can-i` against the fake's SelfSubjectAccessReviews: yes by default, no (exit 1)
/// for what `deny` names, in its namespace only.
#[test]
fn kubectl_auth_can_i_reads_the_access_reviews() {
    let installed = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "SKIPPED kubectl_auth_can_i_reads_the_access_reviews: `kubectl` is not installed"
        );
        return;
    }
    let fake = FakeKube::start();
    fake.deny("patch", "deployments/scale", Some("video-processing"));
    let sandbox = Sandbox::new();
    let home = sandbox.root.join("home");
    let config = fake.kubeconfig(&sandbox.root);
    let (ok, stdout, stderr) = kubectl(
        &config,
        &home,
        &["auth", "can-i", "list", "pods", "-n", "video-processing"],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "yes");
    let (ok, stdout, _) = kubectl(
        &config,
        &home,
        &[
            "auth",
            "can-i",
            "patch",
            "deployments",
            "--subresource=scale",
            "-n",
            "video-processing",
        ],
    );
    assert!(!ok, "a denied review exits 1");
    assert_eq!(stdout.trim(), "no");
    let (ok, stdout, _) = kubectl(
        &config,
        &home,
        &[
            "auth",
            "can-i",
            "patch",
            "deployments",
            "--subresource=scale",
            "-n",
            "staging",
        ],
    );
    assert!(ok, "allowed in another namespace");
    assert_eq!(stdout.trim(), "yes");
    assert!(
        fake.access_reviews()
            .iter()
            .any(|r| r["verb"] == "patch" && r["subresource"] == "scale" && r["group"] == "apps"),
        "{:?}",
        fake.access_reviews()
    );
}
