//! A stateful fake Kubernetes API server for the tests: plain HTTP/1.1 on 127.0.0.1 and a free
//! port, one thread per connection (keep-alive, or `Connection: close` when the client asks),
//! ready as soon as [`FakeKube::start`] returns and stopped (promptly, even mid-delay or
//! mid-watch) when dropped. kube-rs and the real `kubectl` (Debian's 1.20 and newer) both talk
//! to it through the kubeconfig that [`FakeKube::kubeconfig`] writes.
//!
//! What it serves (JSON everywhere, as a real API server shapes it):
//! - discovery: `/version` (v1.30.0), `/api`, `/api/v1`, `/apis`, `/apis/apps`, `/apis/apps/v1`,
//!   and `/healthz`, `/readyz`, `/livez`; `/openapi/*` answers 404 (kubectl copes, see below).
//! - core/v1 `pods` (+ `log`, `status`), `configmaps`, `events`, `namespaces`, `nodes`;
//!   apps/v1 `deployments` and `replicasets` (+ `scale`, `status`).
//! - verbs: list (all namespaces too) with `labelSelector` (`a=b`, `a==b`, `a!=b`, `a in (x,y)`,
//!   `a notin (x,y)`, `a`, `!a`, comma = AND), `fieldSelector` (any dotted field path with `=`,
//!   `==`, `!=`, e.g. `metadata.name`, `involvedObject.kind`, `type`, `status.phase`), `limit` and
//!   `continue` (with `metadata.continue` and `remainingItemCount`), `watch=true` (chunked
//!   `{"type":"ADDED|MODIFIED|DELETED","object":…}` lines from `resourceVersion`, all current
//!   objects first when it is absent or `0`, until `timeoutSeconds` or the client leaves); get;
//!   create (POST); replace (PUT, 409 on a stale `metadata.resourceVersion`); patch with
//!   `application/merge-patch+json`, `application/strategic-merge-patch+json` (maps merge, null
//!   deletes, lists of containers/env/ports/volumes/conditions merge by their key, `$patch` and
//!   `$setElementOrder` directives understood), `application/json-patch+json` and
//!   `application/apply-patch+yaml` (JSON bodies only, applied as a merge patch); delete (the
//!   object is gone at once; the answer is the object with `deletionTimestamp`) and
//!   deletecollection.
//! - Tables: an `Accept` asking for `as=Table` (kubectl get does) gets a `meta.k8s.io/v1` Table
//!   with the server-side columns kubectl prints: pods NAME READY STATUS RESTARTS AGE (+ IP NODE
//!   … with `-o wide`), deployments NAME READY UP-TO-DATE AVAILABLE AGE (+ CONTAINERS IMAGES
//!   SELECTOR), replicasets, configmaps, events, namespaces, nodes.
//! - pod logs: plain text, chunked, from the lines given to [`FakeKube::set_logs`], with
//!   `sinceSeconds`, `sinceTime`, `timestamps` (RFC 3339 as the kubelet writes it), `tailLines`,
//!   `limitBytes`, `container` (required when the pod has several containers, as for real);
//!   `follow=true` ends after the last line, as if the container had exited.
//! - the deployment "controller": every write through the API to a deployment's spec bumps
//!   `metadata.generation` (and `deployment.kubernetes.io/revision` when the pod template
//!   changes) and completes the rollout at once: `status.observedGeneration = generation`,
//!   replicas/updatedReplicas/readyReplicas/availableReplicas = `spec.replicas` (zeros omitted),
//!   conditions Available and Progressing (NewReplicaSetAvailable). So `kubectl rollout status`
//!   succeeds right after a scale or `rollout restart`. Seeding (`add_*`, [`FakeKube::put`]) never
//!   runs the controller: put a deployment with any status to fake a stalled rollout.
//! - auth: a request with an `Authorization` other than `Bearer fake-token` (the kubeconfig's
//!   token) gets 401 Unauthorized. A request without one is served: kube-rs sends the token
//!   over plain http, but kubectl (client-go) never sends credentials to an `http://` server.
//!   [`KubeRequest::header`] shows what a client sent.
//! - errors are `Status` objects: 404 `pods "x" not found` / `deployments.apps "x" not found`,
//!   404 `the server could not find the requested resource` for unknown paths, 405, 409, 415,
//!   422, and whatever [`FakeKube::fail`] configures.
//!
//! Every request is recorded (method, path, raw query, headers, body, and the status answered)
//! before it is answered; [`FakeKube::requests`] gives `(METHOD, "/path?raw-query")` pairs with
//! the query exactly as sent (still percent-encoded).
//!
//! kubectl notes (1.20 from Debian and 1.30): discovery is the legacy kind (plain `APIVersions`,
//! `APIGroupList`, `APIResourceList`: newer clients ask for aggregated discovery first and fall
//! back); `deployments/scale` must be listed with group `autoscaling`, version `v1`, kind `Scale`
//! for `kubectl scale`; `kubectl get` needs Tables to print more than NAME and AGE; `kubectl
//! delete` waits by listing with `fieldSelector=metadata.name=X`; `kubectl rollout status`
//! lists and then watches. No command used here needs `/openapi/v2` or `/openapi/v3`.
#![allow(dead_code)]

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The bearer token of the kubeconfig; a request with any other is refused.
pub const TOKEN: &str = "fake-token";

/// The version `/version` reports.
pub const GIT_VERSION: &str = "v1.30.0";

/// How long a keep-alive connection may sit idle before the server closes it.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// How often blocked reads and watches look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

// --- resources ----------------------------------------------------------------------------

struct Sub {
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

struct Resource {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Sub],
}

impl Resource {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `deployments.apps`: how a real server names the resource in messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

const RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            Sub {
                name: "log",
                group: "",
                version: "v1",
                kind: "Pod",
                verbs: &["get"],
            },
            Sub {
                name: "status",
                group: "",
                version: "v1",
                kind: "Pod",
                verbs: SUB_VERBS,
            },
        ],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &[Sub {
            name: "status",
            group: "",
            version: "v1",
            kind: "Namespace",
            verbs: SUB_VERBS,
        }],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &[Sub {
            name: "status",
            group: "",
            version: "v1",
            kind: "Node",
            verbs: SUB_VERBS,
        }],
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[
            Sub {
                name: "scale",
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: SUB_VERBS,
            },
            Sub {
                name: "status",
                group: "apps",
                version: "v1",
                kind: "Deployment",
                verbs: SUB_VERBS,
            },
        ],
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[
            Sub {
                name: "scale",
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: SUB_VERBS,
            },
            Sub {
                name: "status",
                group: "apps",
                version: "v1",
                kind: "ReplicaSet",
                verbs: SUB_VERBS,
            },
        ],
    },
];

fn resource_index(group: &str, plural: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.is(group, plural))
}

const PODS: usize = 0;
const CONFIGMAPS: usize = 1;
const EVENTS: usize = 2;
const NAMESPACES: usize = 3;
const DEPLOYMENTS: usize = 5;

// --- public API -------------------------------------------------------------------------

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct KubeRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string without `?` (still percent-encoded), empty if none.
    pub query: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered, 0 while the answer is pending (or the server stopped first).
    pub status: u16,
}

impl KubeRequest {
    /// `/path?query`, or `/path` with no query.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        parse_query(&self.query).remove(name)
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A configured failure: matching requests get a Kubernetes `Status` error.
#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_contains: String,
    status: u16,
    message: String,
}

/// The fake API server. Dropping it stops it.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl FakeKube {
    /// An empty cluster (namespaces `default`, `kube-system`, `kube-public`), listening when
    /// this returns.
    pub fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let inner = Arc::new(Inner {
            stop: AtomicBool::new(false),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            state: Mutex::new(State::new(addr.port())),
            changed: Condvar::new(),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
            holds: Mutex::new(Vec::new()),
            proxied: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            denied: Mutex::new(Vec::new()),
            addr,
        });
        {
            let mut state = inner.state.lock().unwrap();
            for ns in ["default", "kube-system", "kube-public"] {
                state.ensure_namespace(ns);
            }
        }
        let accept_inner = inner.clone();
        let accept = std::thread::Builder::new()
            .name(format!("fake-kube-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept_inner.stopping() {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let inner = accept_inner.clone();
                    let worker = std::thread::spawn(move || serve(stream, &inner));
                    let mut workers = accept_inner.workers.lock().unwrap();
                    workers.retain(|w| !w.is_finished());
                    workers.push(worker);
                }
            })
            .expect("spawning the accept thread");
        FakeKube {
            url: format!("http://{addr}"),
            port: addr.port(),
            addr,
            inner,
            accept: Some(accept),
        }
    }

    /// Serves `/api/v1/namespaces/NS/services/NAME:PORT/proxy/…` by forwarding to `url`
    /// (`http://127.0.0.1:PORT`), as the API server forwards to the service's endpoints.
    /// `kind` is `services` or `pods`.
    pub fn proxy_to(&self, kind: &str, ns: &str, name: &str, port: &str, url: &str) {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("a proxy backend is http://IP:PORT");
        self.inner
            .proxied
            .lock()
            .unwrap()
            .insert(format!("{kind}/{ns}/{name}:{port}"), addr);
    }

    /// Makes SelfSubjectAccessReviews of `verb` on `resource` (`deployments/scale`, `pods`) deny,
    /// in `namespace` or (None) in any. Every other review is allowed.
    pub fn deny(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        self.inner.denied.lock().unwrap().push((
            verb.into(),
            resource.into(),
            namespace.map(str::to_string),
        ));
    }

    /// The resource attributes of every SelfSubjectAccessReview asked, in order.
    pub fn access_reviews(&self) -> Vec<Value> {
        self.recorded()
            .iter()
            .filter(|r| r.path == ACCESS_REVIEWS)
            .map(|r| r.body_json()["spec"]["resourceAttributes"].clone())
            .collect()
    }

    /// What `argv` run in `pod` through exec answers. A command not set fails to start, as in a
    /// container without it: an `InternalError` status with no exit code.
    pub fn set_exec(&self, ns: &str, pod: &str, argv: &[&str], result: ExecResult) {
        self.inner
            .execs
            .lock()
            .unwrap()
            .insert(exec_key(ns, pod, argv), result);
    }

    /// The argv of every exec asked for, in order, with its pod (`NS/POD`) and container.
    pub fn execs(&self) -> Vec<(String, Option<String>, Vec<String>)> {
        self.recorded()
            .iter()
            .filter_map(|r| {
                let parts: Vec<&str> = r.path.split('/').collect();
                match parts.as_slice() {
                    ["", "api", "v1", "namespaces", ns, "pods", pod, "exec"] => Some((
                        format!("{ns}/{pod}"),
                        r.param("container"),
                        query_all(&r.query, "command"),
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    /// The kubeconfig text: cluster, user and context all named `fake`, server this fake,
    /// token [`TOKEN`], namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: fake\n  user:\n    token: {TOKEN}\n\
             contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n\
             preferences: {{}}\n",
            url = self.url
        )
    }

    /// Writes `dir/kubeconfig` (see [`FakeKube::kubeconfig_yaml`]) and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("creating the kubeconfig folder");
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml()).expect("writing the kubeconfig");
        path
    }

    /// A Deployment as `kubectl create deployment` would make it, rolled out: selector and
    /// template labels = `labels` (`app=NAME` if empty), one container `NAME` with image
    /// `registry.example.com/NAME:1.0`, generation 1, created a day ago, and status replicas,
    /// updatedReplicas, readyReplicas, availableReplicas = `replicas`, observedGeneration 1,
    /// conditions Available and Progressing (NewReplicaSetAvailable).
    pub fn add_deployment(&self, ns: &str, name: &str, replicas: i64, labels: &[(&str, &str)]) {
        let labels = if labels.is_empty() {
            json!({ "app": name })
        } else {
            labels_json(labels)
        };
        let mut deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "annotations": { "deployment.kubernetes.io/revision": "1" },
                "generation": 1,
                "creationTimestamp": rfc3339(now() - 86_400),
            },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "creationTimestamp": null, "labels": labels },
                    "spec": {
                        "containers": [{
                            "name": name,
                            "image": format!("registry.example.com/{name}:1.0"),
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" },
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
        });
        reconcile_deployment(&mut deployment, None);
        self.seed(DEPLOYMENTS, ns, name, deployment);
    }

    /// Adds (or replaces) a pod given as full Pod JSON (`metadata.name` required; namespace,
    /// uid, resourceVersion and creationTimestamp filled in when missing).
    pub fn add_pod(&self, ns: &str, pod: Value) {
        let name = object_name(&pod).expect("the pod has metadata.name");
        self.seed(PODS, ns, &name, pod);
    }

    /// Realistic Pod JSON, created an hour ago: one container `main` (image
    /// `registry.example.com/APP:1.0`, APP the `app` label or the pod name), `phase`
    /// (Running, Pending, Succeeded, Failed), the Ready/ContainersReady conditions and the
    /// container's `ready` from `ready`, `restartCount`, `state.waiting.reason` when
    /// `waiting_reason` is given (e.g. CrashLoopBackOff, otherwise running or terminated as the
    /// phase says), `lastState.terminated.reason` (OOMKilled → exit code 137, others 1) when
    /// given, and `spec.nodeName` = `node` (an empty node leaves the pod unscheduled). Add
    /// owner references with [`FakeKube::owned_by`].
    #[allow(clippy::too_many_arguments)]
    pub fn pod(
        ns: &str,
        name: &str,
        labels: &[(&str, &str)],
        phase: &str,
        ready: bool,
        restarts: i64,
        last_termination_reason: Option<&str>,
        waiting_reason: Option<&str>,
        node: &str,
    ) -> Value {
        let created = now() - 3600;
        let app = labels
            .iter()
            .find(|(k, _)| *k == "app")
            .map_or(name, |(_, v)| v);
        let image = format!("registry.example.com/{app}:1.0");
        let started = rfc3339(created + 5);
        let mut state = json!({});
        if let Some(reason) = waiting_reason {
            state["waiting"] = json!({
                "reason": reason,
                "message": format!("back-off 5m0s restarting failed container=main pod={name}_{ns}"),
            });
        } else {
            match phase {
                "Running" => state["running"] = json!({ "startedAt": started }),
                "Succeeded" | "Failed" => {
                    let (code, reason) = if phase == "Succeeded" {
                        (0, "Completed")
                    } else {
                        (1, "Error")
                    };
                    state["terminated"] = json!({
                        "exitCode": code, "reason": reason,
                        "startedAt": started, "finishedAt": rfc3339(now() - 60),
                    });
                }
                _ => {
                    state["waiting"] = json!({ "reason": "ContainerCreating" });
                }
            }
        }
        let mut last_state = json!({});
        if let Some(reason) = last_termination_reason {
            let code = if reason == "OOMKilled" { 137 } else { 1 };
            last_state["terminated"] = json!({
                "exitCode": code,
                "reason": reason,
                "startedAt": rfc3339(now() - 900),
                "finishedAt": rfc3339(now() - 600),
                "containerID": format!("containerd://{:064x}", fnv(name) ^ 1),
            });
        }
        let status_word = |b: bool| if b { "True" } else { "False" };
        let scheduled = !node.is_empty();
        let mut conditions = vec![json!({
            "type": "PodScheduled", "status": status_word(scheduled),
            "lastProbeTime": null, "lastTransitionTime": rfc3339(created),
        })];
        if scheduled {
            conditions.push(json!({
                "type": "Initialized", "status": "True",
                "lastProbeTime": null, "lastTransitionTime": rfc3339(created + 1),
            }));
            for t in ["Ready", "ContainersReady"] {
                conditions.push(json!({
                    "type": t, "status": status_word(ready),
                    "lastProbeTime": null, "lastTransitionTime": rfc3339(created + 10),
                }));
            }
        }
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels_json(labels),
                "creationTimestamp": rfc3339(created),
            },
            "spec": {
                "containers": [{
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
            },
            "status": {
                "phase": phase,
                "conditions": conditions,
                "qosClass": "BestEffort",
            },
        });
        if scheduled {
            let ip = fnv(name);
            pod["spec"]["nodeName"] = json!(node);
            pod["status"]["hostIP"] = json!(format!("10.0.0.{}", ip % 250 + 1));
            pod["status"]["podIP"] = json!(format!("10.244.{}.{}", ip % 200, (ip >> 8) % 250 + 2));
            pod["status"]["startTime"] = json!(rfc3339(created));
            pod["status"]["containerStatuses"] = json!([{
                "name": "main",
                "image": image,
                "imageID": format!("registry.example.com/{app}@sha256:{:064x}", fnv(app)),
                "containerID": format!("containerd://{:064x}", fnv(name)),
                "ready": ready,
                "started": state.get("running").is_some(),
                "restartCount": restarts,
                "state": state,
                "lastState": last_state,
            }]);
        }
        pod
    }

    /// The pod (or any object) with `metadata.ownerReferences` naming its controller, e.g.
    /// `owned_by(pod, "ReplicaSet", "gpu-worker-7d4b9c8f5")` (apiVersion apps/v1 unless the kind
    /// is a core one).
    pub fn owned_by(mut object: Value, kind: &str, name: &str) -> Value {
        let api_version = RESOURCES
            .iter()
            .find(|r| r.kind == kind)
            .map_or("apps/v1".to_string(), |r| r.api_version());
        object["metadata"]["ownerReferences"] = json!([{
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "uid": format!("{:08x}-0000-4000-8000-{:012x}", fnv(kind) as u32, fnv(name) & 0xffff_ffff_ffff),
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
        object
    }

    /// The log of a pod (every container of it): lines with their unix time in seconds, in
    /// order. Replaces any earlier log of that pod. The log is served only while the pod
    /// exists (a missing pod's log is a 404); a pod with no log set has an empty one.
    pub fn set_logs(&self, ns: &str, pod: &str, lines: Vec<(i64, String)>) {
        let mut state = self.inner.state.lock().unwrap();
        state
            .logs
            .insert((ns.to_string(), pod.to_string()), Arc::new(lines));
    }

    pub fn add_configmap(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let data: Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": ns, "creationTimestamp": rfc3339(now() - 86_400) },
            "data": data,
        });
        self.seed(CONFIGMAPS, ns, name, cm);
    }

    /// Adds a core/v1 Event. Filled in when missing: `metadata.name`
    /// (`INVOLVED.<hex>`), `involvedObject.namespace`, `type` Normal, `count` 1,
    /// `firstTimestamp`/`lastTimestamp` now, `source.component`, `reportingComponent`.
    pub fn add_event(&self, ns: &str, mut event: Value) {
        let involved = event["involvedObject"]["name"]
            .as_str()
            .unwrap_or("event")
            .to_string();
        let name = match object_name(&event) {
            Some(n) => n,
            None => {
                let n = self.inner.state.lock().unwrap().next_uid();
                format!("{involved}.{:016x}", fnv(&format!("{involved}{n}")))
            }
        };
        let ts = rfc3339(now());
        let obj = event.as_object_mut().expect("the event is a JSON object");
        obj.entry("type").or_insert(json!("Normal"));
        obj.entry("count").or_insert(json!(1));
        obj.entry("lastTimestamp").or_insert(json!(ts));
        let last = obj["lastTimestamp"].clone();
        obj.entry("firstTimestamp").or_insert(last);
        obj.entry("source")
            .or_insert(json!({ "component": "kubelet" }));
        obj.entry("reportingComponent").or_insert(json!(""));
        obj.entry("reportingInstance").or_insert(json!(""));
        obj.entry("eventTime").or_insert(Value::Null);
        if let Some(io) = obj.get_mut("involvedObject").and_then(Value::as_object_mut) {
            io.entry("namespace").or_insert(json!(ns));
        }
        self.seed(EVENTS, ns, &name, event);
    }

    /// Stores any object at its API path (e.g. `/api/v1/nodes/node-1`,
    /// `/apis/apps/v1/namespaces/ns/deployments/x` with a custom status), replacing what was
    /// there; name and namespace come from the path. No controller runs.
    pub fn put(&self, path: &str, object: Value) {
        match route(path) {
            Route::Res {
                res,
                ns,
                name: Some(name),
                sub: None,
            } => self.seed(res, ns.as_deref().unwrap_or(""), &name, object),
            _ => panic!("FakeKube::put: {path} is not the path of an object"),
        }
    }

    /// Removes the object at that API path; true if it was there.
    pub fn remove(&self, path: &str) -> bool {
        match route(path) {
            Route::Res {
                res,
                ns,
                name: Some(name),
                sub: None,
            } => {
                let mut state = self.inner.state.lock().unwrap();
                let removed = state.delete(res, ns.as_deref().unwrap_or(""), &name);
                self.inner.changed.notify_all();
                removed.is_some()
            }
            _ => panic!("FakeKube::remove: {path} is not the path of an object"),
        }
    }

    /// Matching requests (method equal ignoring case, or `*` for any; `path_contains` a
    /// substring of `/path?raw-query`) get `status` with a Kubernetes Status whose reason
    /// follows the code (403 Forbidden, 404 NotFound, 409 Conflict, 500 InternalError, ...).
    /// Several can be configured; the first match wins. Lasts until [`FakeKube::clear_failures`].
    pub fn fail(&self, method: &str, path_contains: &str, status: u16, message: &str) {
        self.inner.faults.lock().unwrap().push(Fault {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            message: message.to_string(),
        });
    }

    pub fn clear_failures(&self) {
        self.inner.faults.lock().unwrap().clear();
    }

    /// Every answer from now on waits `d` first (ends early when the server is dropped).
    pub fn set_delay(&self, d: Duration) {
        *self.inner.delay.lock().unwrap() = d;
    }

    /// Requests with this method whose `/path?raw-query` contains `path_contains` are recorded
    /// and then held: neither applied nor answered until the server stops (a request in flight
    /// when its client dies).
    pub fn hold(&self, method: &str, path_contains: &str) {
        self.inner
            .holds
            .lock()
            .unwrap()
            .push((method.to_string(), path_contains.to_string()));
    }

    /// Requests from now on are answered again; those held stay held.
    pub fn clear_holds(&self) {
        self.inner.holds.lock().unwrap().clear();
    }

    /// `(METHOD, "/path?raw-query")` of every request so far, in arrival order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.method.clone(), r.target()))
            .collect()
    }

    /// Like [`FakeKube::requests`], only the ones that are not GET or HEAD.
    pub fn mutating_requests(&self) -> Vec<(String, String)> {
        self.inner
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .map(|r| (r.method.clone(), r.target()))
            .collect()
    }

    /// Every request so far in full (headers, body, status answered).
    pub fn recorded(&self) -> Vec<KubeRequest> {
        self.inner.log.lock().unwrap().clone()
    }

    /// The object at that API path as it is now (with kind and apiVersion), e.g.
    /// `get("/apis/apps/v1/namespaces/video-processing/deployments/gpu-worker")`; a `/scale`
    /// path gives the Scale. `None` if there is no such object.
    pub fn get(&self, kind_path: &str) -> Option<Value> {
        let Route::Res {
            res,
            ns,
            name: Some(name),
            sub,
        } = route(kind_path)
        else {
            return None;
        };
        let state = self.inner.state.lock().unwrap();
        let object = state.get(res, ns.as_deref().unwrap_or(""), &name)?;
        match sub.as_deref() {
            None | Some("status") => Some(object.clone()),
            Some("scale") if RESOURCES[res].group == "apps" => Some(scale_of(object)),
            _ => None,
        }
    }

    /// The objects of a collection path (e.g. `/api/v1/namespaces/ns/pods`, `/api/v1/pods`
    /// for every namespace), in the order a list returns them.
    pub fn list(&self, collection_path: &str) -> Vec<Value> {
        let Route::Res {
            res,
            ns,
            name: None,
            sub: None,
        } = route(collection_path)
        else {
            panic!("FakeKube::list: {collection_path} is not a collection path");
        };
        let state = self.inner.state.lock().unwrap();
        state
            .objects
            .iter()
            .filter(|((r, n, _), _)| *r == res && ns.as_ref().is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn seed(&self, res: usize, ns: &str, name: &str, object: Value) {
        let mut state = self.inner.state.lock().unwrap();
        state.store(res, ns, name, object, false);
        self.inner.changed.notify_all();
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        *self.inner.stopped.lock().unwrap() = true;
        self.inner.wake.notify_all();
        self.inner.changed.notify_all();
        // Unblock `accept` so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers = std::mem::take(&mut *self.inner.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

// --- state --------------------------------------------------------------------------------

type Key = (usize, String, String);

/// A pod's log: (unix seconds, line), shared with the answers streaming it.
type LogLines = Arc<Vec<(i64, String)>>;

struct Change {
    rv: u64,
    res: usize,
    ns: String,
    kind: &'static str,
    object: Value,
}

struct State {
    rv: u64,
    uid: u64,
    seed: u64,
    objects: BTreeMap<Key, Value>,
    /// Each object serialized as a list item (no apiVersion and kind), so big lists are cheap.
    items: HashMap<Key, Vec<u8>>,
    logs: HashMap<(String, String), LogLines>,
    /// Every change, for watches.
    changes: Vec<Change>,
}

impl State {
    fn new(port: u16) -> State {
        State {
            rv: 1000,
            uid: 0,
            seed: u64::from(port),
            objects: BTreeMap::new(),
            items: HashMap::new(),
            logs: HashMap::new(),
            changes: Vec::new(),
        }
    }

    fn next_uid(&mut self) -> u64 {
        self.uid += 1;
        self.uid
    }

    fn new_uid(&mut self) -> String {
        let n = self.next_uid();
        let h = fnv(&format!("{}-{n}", self.seed));
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h as u32,
            (h >> 32) as u16,
            (h >> 48) & 0xfff,
            n & 0xfff,
            n
        )
    }

    fn get(&self, res: usize, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(res, ns.to_string(), name.to_string()))
    }

    fn ensure_namespace(&mut self, ns: &str) {
        if ns.is_empty() || self.get(NAMESPACES, "", ns).is_some() {
            return;
        }
        let object = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": { "kubernetes.io/metadata.name": ns },
                "creationTimestamp": rfc3339(now() - 86_400 * 30),
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        self.store(NAMESPACES, "", ns, object, false);
    }

    /// Creates or replaces an object: sets kind, apiVersion, name, namespace, keeps (or makes)
    /// uid and creationTimestamp, bumps resourceVersion, and with `api_write` bumps
    /// generation when the spec changed and runs the deployment controller. Returns the
    /// stored object.
    fn store(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        mut object: Value,
        api_write: bool,
    ) -> Value {
        let r = &RESOURCES[res];
        let ns = if r.namespaced { ns } else { "" };
        self.ensure_namespace(ns);
        let key = (res, ns.to_string(), name.to_string());
        let old = self.objects.get(&key).cloned();
        if !object.is_object() {
            object = json!({});
        }
        let obj = object.as_object_mut().unwrap();
        // Keep the conventional order: apiVersion, kind first.
        let mut ordered = Map::new();
        ordered.insert("apiVersion".into(), json!(r.api_version()));
        ordered.insert("kind".into(), json!(r.kind));
        for (k, v) in std::mem::take(obj) {
            if k != "apiVersion" && k != "kind" {
                ordered.insert(k, v);
            }
        }
        *obj = ordered;
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj.insert("metadata".into(), json!({}));
        }
        let uid = match old.as_ref().and_then(|o| o["metadata"]["uid"].as_str()) {
            Some(u) => u.to_string(),
            None => match obj["metadata"]["uid"].as_str() {
                Some(u) => u.to_string(),
                None => self.new_uid(),
            },
        };
        let created = match old
            .as_ref()
            .and_then(|o| o["metadata"]["creationTimestamp"].as_str())
        {
            Some(c) => c.to_string(),
            None => match obj["metadata"]["creationTimestamp"].as_str() {
                Some(c) => c.to_string(),
                None => rfc3339(now()),
            },
        };
        self.rv += 1;
        let rv = self.rv;
        {
            let meta = obj["metadata"].as_object_mut().unwrap();
            meta.insert("name".into(), json!(name));
            if r.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(uid));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("creationTimestamp".into(), json!(created));
        }
        if api_write {
            let old_gen = old
                .as_ref()
                .and_then(|o| o["metadata"]["generation"].as_i64());
            let has_spec = obj.contains_key("spec");
            let generation = match (&old, old_gen) {
                (Some(o), Some(g)) => {
                    if o.get("spec") != obj.get("spec") {
                        Some(g + 1)
                    } else {
                        Some(g)
                    }
                }
                (None, _) if has_spec && res >= DEPLOYMENTS => Some(1),
                _ => obj["metadata"]["generation"].as_i64(),
            };
            if let Some(g) = generation {
                obj["metadata"]["generation"] = json!(g);
            }
            if res == DEPLOYMENTS {
                reconcile_deployment(&mut object, old.as_ref());
            }
        }
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.changes.push(Change {
            rv,
            res,
            ns: ns.to_string(),
            kind,
            object: object.clone(),
        });
        self.items.insert(key.clone(), list_item_json(&object));
        self.objects.insert(key, object.clone());
        object
    }

    fn delete(&mut self, res: usize, ns: &str, name: &str) -> Option<Value> {
        let key = (res, ns.to_string(), name.to_string());
        let mut object = self.objects.remove(&key)?;
        self.items.remove(&key);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if res == PODS {
            self.logs.remove(&(ns.to_string(), name.to_string()));
        }
        self.changes.push(Change {
            rv: self.rv,
            res,
            ns: ns.to_string(),
            kind: "DELETED",
            object: object.clone(),
        });
        Some(object)
    }
}

// --- the deployment controller -------------------------------------------------------------

/// Completes the rollout at once; bumps the revision annotation when the template changed.
fn reconcile_deployment(d: &mut Value, old: Option<&Value>) {
    let now = rfc3339(now());
    if let Some(old) = old
        && old["spec"]["template"] != d["spec"]["template"]
    {
        let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(1);
        if !d["metadata"]["annotations"].is_object() {
            d["metadata"]["annotations"] = json!({});
        }
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!((revision + 1).to_string());
    }
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
    let rs = format!(
        "{name}-{}",
        safe_encode(fnv(&d["spec"]["template"].to_string()))
    );
    let since = |kind: &str, default: &str| {
        d["status"]["conditions"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == kind && c["status"] == "True")
            })
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(default)
            .to_string()
    };
    let available_since = since("Available", &now);
    let progressing_since = since("Progressing", &now);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    if replicas > 0 {
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            status.insert(field.into(), json!(replicas));
        }
    }
    status.insert(
        "conditions".into(),
        json!([
            {
                "type": "Available", "status": "True",
                "lastUpdateTime": available_since, "lastTransitionTime": available_since,
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing", "status": "True",
                "lastUpdateTime": now, "lastTransitionTime": progressing_since,
                "reason": "NewReplicaSetAvailable",
                "message": format!("ReplicaSet \"{rs}\" has successfully progressed."),
            },
        ]),
    );
    d["status"] = Value::Object(status);
}

/// Kubernetes' "safe" alphabet for generated name suffixes (no vowels, no look-alikes).
fn safe_encode(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    for _ in 0..10 {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}

fn selector_string(object: &Value) -> String {
    let selector = &object["spec"]["selector"];
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        });
    }
    parts.join(",")
}

fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": object["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(object),
        },
    })
}

// --- routing ------------------------------------------------------------------------------

enum Route {
    Version,
    Api,
    CoreResources,
    Apis,
    Group(String),
    GroupResources(String, String),
    Health,
    Res {
        res: usize,
        ns: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    NotFound,
}

fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (group, rest): (&str, &[&str]) = match parts.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "readyz" | "livez"] => return Route::Health,
        ["api"] => return Route::Api,
        ["api", "v1"] => return Route::CoreResources,
        ["apis"] => return Route::Apis,
        ["apis", g] if RESOURCES.iter().any(|r| r.group == *g && !g.is_empty()) => {
            return Route::Group(g.to_string());
        }
        ["apis", g, v]
            if RESOURCES
                .iter()
                .any(|r| r.group == *g && r.version == *v && !g.is_empty()) =>
        {
            return Route::GroupResources(g.to_string(), v.to_string());
        }
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] if !g.is_empty() => (g, rest),
        _ => return Route::NotFound,
    };
    let namespaced =
        |plural: &str| resource_index(group, plural).filter(|&i| RESOURCES[i].namespaced);
    let (res, ns, tail): (usize, Option<String>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced(plural).is_some() => {
            (namespaced(plural).unwrap(), Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => match resource_index(group, plural) {
            Some(i) => (i, None, tail),
            None => return Route::NotFound,
        },
        [] => return Route::NotFound,
    };
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if RESOURCES[res].subresources.iter().any(|s| s.name == *sub) => {
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return Route::NotFound,
    };
    // A namespaced resource has no objects outside a namespace (only the all-namespaces list).
    if RESOURCES[res].namespaced && ns.is_none() && name.is_some() {
        return Route::NotFound;
    }
    Route::Res { res, ns, name, sub }
}

// --- HTTP ---------------------------------------------------------------------------------

struct Inner {
    stop: AtomicBool,
    /// Paired with `wake` so delays end as soon as the server stops.
    stopped: Mutex<bool>,
    wake: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
    state: Mutex<State>,
    /// Notified on every change of `state` (and on stop), for watches.
    changed: Condvar,
    log: Mutex<Vec<KubeRequest>>,
    faults: Mutex<Vec<Fault>>,
    delay: Mutex<Duration>,
    /// (method, path substring) of requests recorded and never answered.
    holds: Mutex<Vec<(String, String)>>,
    /// What the proxy subresource forwards to: `services/NS/NAME:PORT` (or `pods/…`) → address.
    proxied: Mutex<HashMap<String, SocketAddr>>,
    /// What a command run through exec answers, by `NS/POD` and argv.
    execs: Mutex<HashMap<String, ExecResult>>,
    /// (verb, `resource[/subresource]`, namespace or None for any) that access reviews deny.
    denied: Mutex<Vec<(String, String, Option<String>)>>,
    addr: SocketAddr,
}

impl Inner {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits `delay` or until the server stops; true if it stopped.
    fn wait(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut stopped = self.stopped.lock().unwrap();
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self.wake.wait_timeout(stopped, deadline - now).unwrap().0;
        }
        true
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Reply {
    Json(u16, Value),
    /// JSON already serialized.
    Raw(u16, Vec<u8>),
    /// A proxied service's answer: status, content type, body.
    Proxied(u16, String, Vec<u8>),
    /// An exec upgraded to a websocket.
    Exec(Box<ExecStream>),
    Text(u16, String),
    Logs {
        lines: LogLines,
        picked: Vec<usize>,
        timestamps: bool,
        limit_bytes: Option<usize>,
    },
    Watch(Box<WatchSpec>),
}

struct WatchSpec {
    res: usize,
    ns: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
    from_rv: u64,
    initial: Vec<Value>,
    timeout: Option<Duration>,
}

/// Serves one connection: requests one after another until the client closes, asks to close,
/// idles too long, or the server stops.
fn serve(stream: TcpStream, inner: &Inner) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        let Ok(Some((request, close))) = read_request(&mut conn, inner) else {
            return;
        };
        let index = {
            let mut log = inner.log.lock().unwrap();
            log.push(request.clone());
            log.len() - 1
        };
        let held = inner
            .holds
            .lock()
            .unwrap()
            .iter()
            .any(|(m, p)| *m == request.method && request.target().contains(p.as_str()));
        if held {
            inner.wait(Duration::from_secs(24 * 3600));
            return;
        }
        let delay = *inner.delay.lock().unwrap();
        if !delay.is_zero() && inner.wait(delay) {
            return;
        }
        let reply = answer(inner, &request);
        let status = match &reply {
            Reply::Json(s, _) | Reply::Text(s, _) | Reply::Raw(s, _) | Reply::Proxied(s, _, _) => {
                *s
            }
            Reply::Logs { .. } | Reply::Watch(_) => 200,
            Reply::Exec(_) => 101,
        };
        inner.log.lock().unwrap()[index].status = status;
        let _ = conn.stream.set_write_timeout(Some(Duration::from_secs(10)));
        let result = match reply {
            Reply::Json(status, body) => {
                let body = serde_json::to_vec(&body).unwrap();
                write_response(&mut conn.stream, status, "application/json", &body, close)
            }
            Reply::Raw(status, body) => {
                write_response(&mut conn.stream, status, "application/json", &body, close)
            }
            Reply::Proxied(status, content_type, body) => {
                write_response(&mut conn.stream, status, &content_type, &body, close)
            }
            Reply::Text(status, body) => write_response(
                &mut conn.stream,
                status,
                "text/plain; charset=utf-8",
                body.as_bytes(),
                close,
            ),
            Reply::Logs {
                lines,
                picked,
                timestamps,
                limit_bytes,
            } => write_logs(
                &mut conn.stream,
                &lines,
                &picked,
                timestamps,
                limit_bytes,
                close,
            ),
            Reply::Watch(spec) => {
                let _ = watch(&mut conn.stream, inner, *spec);
                return;
            }
            Reply::Exec(spec) => {
                let _ = exec_stream(&conn.stream, inner, *spec);
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        };
        if result.is_err() || close {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn status_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &str,
    close: bool,
) -> io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\nConnection: {connection}\r\n{extra}\r\n",
        reason_phrase(status)
    )
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 256);
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        reason_phrase(status),
        body.len()
    )?;
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

/// Writes the body in `Transfer-Encoding: chunked` pieces of about 32 KiB.
struct Chunked<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
}

impl Chunked<'_> {
    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 32 * 1024 {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = format!("{:x}\r\n", self.buf.len()).into_bytes();
        out.append(&mut self.buf);
        out.extend_from_slice(b"\r\n");
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush_chunk()?;
        self.stream.write_all(b"0\r\n\r\n")?;
        self.stream.flush()
    }
}

fn write_logs(
    stream: &mut TcpStream,
    lines: &[(i64, String)],
    picked: &[usize],
    timestamps: bool,
    limit_bytes: Option<usize>,
    close: bool,
) -> io::Result<()> {
    write_head(
        stream,
        200,
        "text/plain",
        "Transfer-Encoding: chunked\r\n",
        close,
    )?;
    let mut out = Chunked {
        stream,
        buf: Vec::new(),
    };
    let mut left = limit_bytes.unwrap_or(usize::MAX);
    for &i in picked {
        let (ts, text) = &lines[i];
        let line = if timestamps {
            format!("{} {text}\n", rfc3339(*ts))
        } else {
            format!("{text}\n")
        };
        let bytes = line.as_bytes();
        let n = bytes.len().min(left);
        out.push(&bytes[..n])?;
        left -= n;
        if left == 0 {
            break;
        }
    }
    out.finish()
}

/// Streams watch events until the timeout, the client leaving, or the server stopping.
fn watch(stream: &mut TcpStream, inner: &Inner, spec: WatchSpec) -> io::Result<()> {
    write_head(
        stream,
        200,
        "application/json",
        "Transfer-Encoding: chunked\r\n",
        true,
    )?;
    let mut out = Chunked {
        stream,
        buf: Vec::new(),
    };
    for object in &spec.initial {
        let line = json!({ "type": "ADDED", "object": object }).to_string() + "\n";
        out.push(line.as_bytes())?;
    }
    out.flush_chunk()?;
    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let mut last = spec.from_rv;
    loop {
        let events: Vec<String> = {
            let mut state = inner.state();
            if !state.changes.iter().any(|c| c.rv > last) && !inner.stopping() {
                state = inner.changed.wait_timeout(state, POLL).unwrap().0;
            }
            let fresh: Vec<&Change> = state.changes.iter().filter(|c| c.rv > last).collect();
            if let Some(c) = fresh.last() {
                last = c.rv;
            }
            fresh
                .into_iter()
                .filter(|c| {
                    c.res == spec.res
                        && spec.ns.as_ref().is_none_or(|ns| *ns == c.ns)
                        && labels_match(&spec.labels, &c.object)
                        && fields_match(&spec.fields, &c.object)
                })
                .map(|c| json!({ "type": c.kind, "object": c.object }).to_string() + "\n")
                .collect()
        };
        for event in &events {
            out.push(event.as_bytes())?;
        }
        out.flush_chunk()?;
        if inner.stopping() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // Has the client gone?
        out.stream.set_nonblocking(true)?;
        let mut probe = [0u8; 1];
        let gone = matches!(out.stream.peek(&mut probe), Ok(0));
        out.stream.set_nonblocking(false)?;
        if gone {
            return Ok(());
        }
    }
    out.finish()
}

/// Reads bytes, checking the stop flag every [`POLL`]; a connection idle past `idle_until`
/// errors out.
fn read_some(conn: &mut Conn, inner: &Inner, idle_until: Instant) -> io::Result<usize> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(n) => {
                conn.buf.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if inner.stopping() || Instant::now() >= idle_until {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Parses one HTTP/1.x request (body by `Content-Length` or chunked); `None` when the
/// connection closes before one. The flag says whether to close after answering.
fn read_request(conn: &mut Conn, inner: &Inner) -> io::Result<Option<(KubeRequest, bool)>> {
    conn.stream.set_read_timeout(Some(POLL))?;
    let idle_until = Instant::now() + IDLE_LIMIT;
    let head_end = loop {
        if let Some(i) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if read_some(conn, inner, idle_until)? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&conn.buf[..head_end]).into_owned();
    conn.buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let http10 = first.next() == Some("HTTP/1.0");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut request = KubeRequest {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
        status: 0,
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let close = connection.contains("close") || (http10 && !connection.contains("keep-alive"));
    if request
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(conn, inner)?;
    } else {
        let len: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while conn.buf.len() < len {
            if read_some(conn, inner, Instant::now() + IDLE_LIMIT)? == 0 {
                return Ok(None);
            }
        }
        request.body = conn.buf.drain(..len).collect();
    }
    Ok(Some((request, close)))
}

fn read_chunked(conn: &mut Conn, inner: &Inner) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if read_some(conn, inner, Instant::now() + IDLE_LIMIT)? == 0 {
                return Ok(body);
            }
        };
        let line = String::from_utf8_lossy(&conn.buf[..line_end]).into_owned();
        conn.buf.drain(..line_end + 2);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // Skip trailers up to the empty line.
            loop {
                if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
                    let empty = i == 0;
                    conn.buf.drain(..i + 2);
                    if empty {
                        return Ok(body);
                    }
                    continue;
                }
                if read_some(conn, inner, Instant::now() + IDLE_LIMIT)? == 0 {
                    return Ok(body);
                }
            }
        }
        while conn.buf.len() < size + 2 {
            if read_some(conn, inner, Instant::now() + IDLE_LIMIT)? == 0 {
                return Ok(body);
            }
        }
        body.extend_from_slice(&conn.buf[..size]);
        conn.buf.drain(..size + 2);
    }
}

// --- answering ----------------------------------------------------------------------------

fn status_error(code: u16, message: &str) -> Reply {
    status_error_details(code, message, json!({}))
}

fn status_error_details(code: u16, message: &str, details: Value) -> Reply {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": status_reason(code),
        "code": code,
    });
    if details.as_object().is_some_and(|d| !d.is_empty()) {
        body["details"] = details;
    }
    Reply::Json(code, body)
}

fn not_found(res: usize, name: &str) -> Reply {
    let r = &RESOURCES[res];
    status_error_details(
        404,
        &format!("{} \"{name}\" not found", r.qualified()),
        json!({ "name": name, "group": r.group, "kind": r.plural }),
    )
}

fn answer(inner: &Inner, req: &KubeRequest) -> Reply {
    // kubectl (client-go) never sends credentials over plain http, so no Authorization is
    // allowed (anonymous); a wrong one is refused.
    if let Some(auth) = req.header("authorization")
        && auth != format!("Bearer {TOKEN}")
    {
        return status_error(401, "Unauthorized");
    }
    let target = req.target();
    let fault = inner
        .faults
        .lock()
        .unwrap()
        .iter()
        .find(|f| {
            (f.method == "*" || f.method.eq_ignore_ascii_case(&req.method))
                && target.contains(&f.path_contains)
        })
        .cloned();
    if let Some(f) = fault {
        return status_error(f.status, &f.message);
    }
    let method = req.method.as_str();
    if let Some(reply) = proxy(inner, req) {
        return reply;
    }
    if let Some(reply) = access_review(inner, req) {
        return reply;
    }
    if let Some(reply) = exec(inner, req) {
        return reply;
    }
    let route = route(&req.path);
    if method != "GET" && method != "HEAD" && !matches!(route, Route::Res { .. }) {
        return status_error(
            405,
            "the server does not allow this method on the requested resource",
        );
    }
    match route {
        Route::Version => Reply::Json(
            200,
            json!({
                "major": "1",
                "minor": "30",
                "gitVersion": GIT_VERSION,
                "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a",
                "gitTreeState": "clean",
                "buildDate": "2024-04-17T17:27:03Z",
                "goVersion": "go1.22.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }),
        ),
        Route::Health => Reply::Text(200, "ok".into()),
        Route::Api => Reply::Json(
            200,
            json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    { "clientCIDR": "0.0.0.0/0", "serverAddress": inner.addr.to_string() },
                ],
            }),
        ),
        Route::CoreResources => Reply::Json(200, resource_list("", "v1")),
        Route::Apis => {
            let mut groups: Vec<&str> = RESOURCES
                .iter()
                .map(|r| r.group)
                .filter(|g| !g.is_empty())
                .collect();
            groups.dedup();
            Reply::Json(
                200,
                json!({
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": groups.iter().map(|g| api_group(g)).collect::<Vec<_>>(),
                }),
            )
        }
        Route::Group(g) => {
            let mut group = api_group(&g);
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            Reply::Json(200, group)
        }
        Route::GroupResources(g, v) => Reply::Json(200, resource_list(&g, &v)),
        Route::NotFound => status_error_details(
            404,
            "the server could not find the requested resource",
            json!({}),
        ),
        Route::Res { res, ns, name, sub } => {
            let params = parse_query(&req.query);
            match (method, name, sub) {
                ("GET", None, None) => {
                    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
                        start_watch(inner, res, ns, &params)
                    } else {
                        list(inner, req, res, ns.as_deref(), &params)
                    }
                }
                ("POST", None, None) => match ns {
                    Some(ns) => create(inner, req, res, &ns),
                    None if !RESOURCES[res].namespaced => create(inner, req, res, ""),
                    None => status_error(
                        405,
                        "the server does not allow this method on the requested resource",
                    ),
                },
                ("DELETE", None, None) => delete_collection(inner, res, ns.as_deref(), &params),
                (_, None, _) => status_error(
                    405,
                    "the server does not allow this method on the requested resource",
                ),
                (_, Some(name), sub) => {
                    let ns = ns.unwrap_or_default();
                    object_request(inner, req, res, &ns, &name, sub.as_deref(), &params)
                }
            }
        }
    }
}

/// The proxy subresource: the request, path and query after `/proxy`, method and body as they
/// came, forwarded to what `proxy_to` named, and its answer passed back whole. A service or pod
/// with nothing behind it gets the API server's own 503 `Status`; one that does not exist, 404.
fn proxy(inner: &Inner, req: &KubeRequest) -> Option<Reply> {
    let parts: Vec<&str> = req.path.splitn(8, '/').collect();
    let [
        "",
        "api",
        "v1",
        "namespaces",
        ns,
        kind @ ("services" | "pods"),
        target,
        rest @ ..,
    ] = parts.as_slice()
    else {
        return None;
    };
    let tail = match rest {
        [] => return None,
        [tail] => *tail,
        _ => return None,
    };
    let path = match tail.strip_prefix("proxy") {
        Some(path) if path.is_empty() || path.starts_with('/') => path,
        _ => return None,
    };
    let path = if path.is_empty() { "/" } else { path };
    let (name, _) = target.split_once(':').unwrap_or((target, ""));
    let singular = if *kind == "services" {
        "services"
    } else {
        "pods"
    };
    let Some(addr) = inner
        .proxied
        .lock()
        .unwrap()
        .get(&format!("{kind}/{ns}/{target}"))
        .copied()
    else {
        let exists = *kind == "pods" && inner.state().get(PODS, ns, name).is_some();
        return Some(if exists {
            status_error(503, &format!("error trying to reach pod: no port {target}"))
        } else {
            status_error_details(
                404,
                &format!("{singular} \"{name}\" not found"),
                json!({ "name": name, "kind": singular }),
            )
        });
    };
    let query = if req.query.is_empty() {
        String::new()
    } else {
        format!("?{}", req.query)
    };
    Some(
        match forward(addr, &req.method, &format!("{path}{query}"), req) {
            Ok((status, content_type, body)) => Reply::Proxied(status, content_type, body),
            Err(e) => status_error(
                503,
                &format!("error trying to reach service: dial tcp {addr}: {e}"),
            ),
        },
    )
}

/// What a command run through exec answers.
#[derive(Debug, Clone, Default)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
    /// Never finishes: the stream stays open until the client closes it.
    pub hang: bool,
    /// The command never started: this message in an `InternalError` status, no exit code.
    pub not_started: Option<String>,
}

fn exec_key(ns: &str, pod: &str, argv: &[&str]) -> String {
    format!("{ns}/{pod}\n{}", argv.join("\0"))
}

/// Every value of a repeated query parameter, percent-decoded, in order.
fn query_all(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

/// The exec subresource, as the API server answers it before the stream: a missing pod (404),
/// a container the pod does not have (400), a request that is not a websocket upgrade (400);
/// else the upgrade, with the stream protocol the client prefers among v5 and v4.
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, as `kubectl auth can-i` sends
/// it: the review back with `status.allowed`, false (with no reason, as RBAC answers) for what
/// [`FakeKube::deny`] named. Nothing is stored.
fn access_review(inner: &Inner, req: &KubeRequest) -> Option<Reply> {
    if req.path != ACCESS_REVIEWS {
        return None;
    }
    if req.method != "POST" {
        return Some(status_error(
            405,
            "the server does not allow this method on the requested resource",
        ));
    }
    let mut review = req.body_json();
    let attrs = review["spec"]["resourceAttributes"].clone();
    let text = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
    let resource = match text("subresource").as_str() {
        "" => text("resource"),
        sub => format!("{}/{sub}", text("resource")),
    };
    let (verb, ns) = (text("verb"), text("namespace"));
    let denied = inner
        .denied
        .lock()
        .unwrap()
        .iter()
        .any(|(v, r, n)| *v == verb && *r == resource && n.as_ref().is_none_or(|n| *n == ns));
    review["status"] = if denied {
        // RBAC gives no reason for a no: `kubectl auth can-i` prints a bare `no`.
        json!({ "allowed": false })
    } else {
        json!({ "allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"test\"" })
    };
    review["metadata"] = json!({ "creationTimestamp": null });
    Some(Reply::Json(201, review))
}

fn exec(inner: &Inner, req: &KubeRequest) -> Option<Reply> {
    let parts: Vec<&str> = req.path.split('/').collect();
    let ["", "api", "v1", "namespaces", ns, "pods", name, "exec"] = parts.as_slice() else {
        return None;
    };
    let Some(pod) = inner.state().get(PODS, ns, name).cloned() else {
        return Some(not_found(PODS, name));
    };
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let container = req
        .param("container")
        .or_else(|| containers.first().cloned());
    if let Some(c) = &container
        && !containers.contains(c)
    {
        return Some(status_error(
            400,
            &format!("container {c} is not valid for pod {name}"),
        ));
    }
    let upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let offered = req.header("sec-websocket-protocol").unwrap_or_default();
    let protocol = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        .into_iter()
        .find(|p| offered.split(',').any(|o| o.trim() == *p));
    let (true, Some(protocol), Some(key)) = (upgrade, protocol, req.header("sec-websocket-key"))
    else {
        return Some(status_error(400, "Upgrade request required"));
    };
    let argv = query_all(&req.query, "command");
    let argv_refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let result = inner
        .execs
        .lock()
        .unwrap()
        .get(&exec_key(ns, name, &argv_refs))
        .cloned()
        .unwrap_or_else(|| ExecResult {
            not_started: Some(format!(
                "Internal error occurred: error executing command in container: failed to exec in container: exec: \"{}\": executable file not found in $PATH",
                argv.first().map_or("", String::as_str)
            )),
            ..ExecResult::default()
        });
    Some(Reply::Exec(Box::new(ExecStream {
        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
        protocol,
        argv,
        result,
    })))
}

struct ExecStream {
    accept: String,
    protocol: &'static str,
    argv: Vec<String>,
    result: ExecResult,
}

/// The stream after the upgrade: stdout on channel 1, stderr on 2, then the command's `Status`
/// on channel 3 and a close, as the kubelet's stream does; a hanging command sends its output
/// and waits for the client to close.
fn exec_stream(stream: &TcpStream, inner: &Inner, spec: ExecStream) -> io::Result<()> {
    let mut raw = stream.try_clone()?;
    write!(
        raw,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
        spec.accept, spec.protocol
    )?;
    raw.flush()?;
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        stream.try_clone()?,
        tungstenite::protocol::Role::Server,
        None,
    );
    let frame = |channel: u8, bytes: &[u8]| {
        let mut data = vec![channel];
        data.extend_from_slice(bytes);
        tungstenite::Message::Binary(data.into())
    };
    let io = |e: tungstenite::Error| io::Error::other(e.to_string());
    if !spec.result.stdout.is_empty() {
        ws.send(frame(1, spec.result.stdout.as_bytes()))
            .map_err(io)?;
    }
    if !spec.result.stderr.is_empty() {
        ws.send(frame(2, spec.result.stderr.as_bytes()))
            .map_err(io)?;
    }
    if spec.result.hang {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        while !inner.stopping() {
            match ws.read() {
                Ok(tungstenite::Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Ok(()),
            }
        }
        return Ok(());
    }
    let status = if let Some(message) = &spec.result.not_started {
        json!({ "metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500 })
    } else if spec.result.code == 0 {
        json!({ "metadata": {}, "status": "Success" })
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {:?}, exit code {}",
                spec.argv, spec.result.code
            ),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": spec.result.code.to_string() }] },
        })
    };
    ws.send(frame(3, status.to_string().as_bytes()))
        .map_err(io)?;
    let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }));
    // Until the client answers the close (or goes away).
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    while ws.read().is_ok() {}
    Ok(())
}

/// One HTTP/1.1 exchange with the proxied backend, `Connection: close`.
fn forward(
    addr: SocketAddr,
    method: &str,
    target: &str,
    req: &KubeRequest,
) -> io::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let content_type = req.header("content-type").unwrap_or("application/json");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        req.body.len()
    );
    if !req.body.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&req.body)?;
    // The head, then the body by its length (the backend may keep the connection open).
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(
                "the backend closed before its answer's head",
            ));
        }
        answer.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("no status in the answer"))?;
    let content_type = header("content-type").unwrap_or_else(|| "text/plain".into());
    let mut body = answer[end + 4..].to_vec();
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            body.truncate(length);
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok((status, content_type, body))
}

fn api_group(group: &str) -> Value {
    let version = RESOURCES
        .iter()
        .find(|r| r.group == group)
        .map_or("v1", |r| r.version);
    let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r_verbs(r),
            "shortNames": r.short_names,
            "storageVersionHash": format!("{:x}", fnv(r.plural) & 0xffff_ffff_ffff),
        });
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for s in r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group {
                entry["group"] = json!(s.group);
                entry["version"] = json!(s.version);
            }
            resources.push(entry);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })
}

fn r_verbs(r: &Resource) -> &'static [&'static str] {
    if r.plural == "namespaces" || r.plural == "nodes" {
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
    } else {
        VERBS
    }
}

fn wants_table(req: &KubeRequest) -> bool {
    req.header("accept").is_some_and(|a| a.contains("as=Table"))
}

/// The items of a collection that pass the selectors, with their keys, in key order.
fn select(
    state: &State,
    res: usize,
    ns: Option<&str>,
    labels: &[LabelReq],
    fields: &[FieldReq],
) -> Vec<(String, Value)> {
    let start = (res, String::new(), String::new());
    state
        .objects
        .range(start..)
        .take_while(|((r, _, _), _)| *r == res)
        .filter(|((_, n, _), _)| ns.is_none_or(|ns| ns == n))
        .filter(|(_, v)| labels_match(labels, v) && fields_match(fields, v))
        .map(|((_, n, name), v)| (format!("{n}/{name}"), v.clone()))
        .collect()
}

fn selectors(params: &HashMap<String, String>) -> Result<(Vec<LabelReq>, Vec<FieldReq>), Reply> {
    let labels = parse_label_selector(params.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| status_error(400, &format!("unable to parse requirement: {e}")))?;
    let fields = parse_field_selector(params.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| status_error(400, &e))?;
    Ok((labels, fields))
}

fn list(
    inner: &Inner,
    req: &KubeRequest,
    res: usize,
    ns: Option<&str>,
    params: &HashMap<String, String>,
) -> Reply {
    let (labels, fields) = match selectors(params) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let start_after = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match decode_continue(token) {
            Some(key) => Some(key),
            None => {
                return status_error(400, "continue key is not valid: illegal base64 data");
            }
        },
        None => None,
    };
    let state = inner.state();
    let rv = state.rv;
    let start = match &start_after {
        Some(key) => {
            let (n, m) = key.split_once('/').unwrap_or(("", key));
            Bound::Excluded((res, n.to_string(), m.to_string()))
        }
        None => Bound::Included((res, String::new(), String::new())),
    };
    let mut page: Vec<(&Key, &Value)> = state
        .objects
        .range((start, Bound::Unbounded))
        .take_while(|((r, _, _), _)| *r == res)
        .filter(|((_, n, _), _)| ns.is_none_or(|ns| ns == n))
        .filter(|(_, v)| labels_match(&labels, v) && fields_match(&fields, v))
        .collect();
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if limit > 0 && page.len() > limit {
        let rest = page.len() - limit;
        page.truncate(limit);
        let (_, n, m) = page.last().unwrap().0;
        meta["continue"] = json!(encode_continue(rv, &format!("{n}/{m}")));
        meta["remainingItemCount"] = json!(rest);
    }
    if wants_table(req) {
        let include = params
            .get("includeObject")
            .map_or("Metadata", String::as_str);
        let items: Vec<&Value> = page.iter().map(|(_, v)| *v).collect();
        return Reply::Json(200, table(res, &items, meta, include));
    }
    let r = &RESOURCES[res];
    let mut body = format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{meta},\"items\":[",
        r.kind,
        r.api_version()
    )
    .into_bytes();
    for (i, (key, _)) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&state.items[*key]);
    }
    body.extend_from_slice(b"]}");
    Reply::Raw(200, body)
}

fn start_watch(
    inner: &Inner,
    res: usize,
    ns: Option<String>,
    params: &HashMap<String, String>,
) -> Reply {
    let (labels, fields) = match selectors(params) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let state = inner.state();
    let requested = params.get("resourceVersion").map_or("", String::as_str);
    let send_initial = params.get("sendInitialEvents").is_some_and(|s| s == "true");
    let (from_rv, initial) = if requested.is_empty() || requested == "0" || send_initial {
        let items = select(&state, res, ns.as_deref(), &labels, &fields);
        (state.rv, items.into_iter().map(|(_, v)| v).collect())
    } else {
        match requested.parse::<u64>() {
            Ok(rv) => (rv, Vec::new()),
            Err(_) => {
                return status_error(400, &format!("invalid resource version: {requested}"));
            }
        }
    };
    Reply::Watch(Box::new(WatchSpec {
        res,
        ns,
        labels,
        fields,
        from_rv,
        initial,
        timeout,
    }))
}

fn body_json(req: &KubeRequest) -> Result<Value, Reply> {
    serde_json::from_slice(&req.body).map_err(|e| {
        status_error(
            400,
            &format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"),
        )
    })
}

fn create(inner: &Inner, req: &KubeRequest, res: usize, ns: &str) -> Reply {
    let mut object = match body_json(req) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut state = inner.state();
    let name = match object_name(&object) {
        Some(n) => n,
        None => match object["metadata"]["generateName"].as_str() {
            Some(prefix) => {
                let n = state.next_uid();
                format!(
                    "{prefix}{}",
                    &safe_encode(fnv(&format!("{prefix}{n}")))[..5]
                )
            }
            None => {
                return status_error(
                    422,
                    &format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        RESOURCES[res].kind
                    ),
                );
            }
        },
    };
    if state.get(res, ns, &name).is_some() {
        return status_error_details(
            409,
            &format!("{} \"{name}\" already exists", RESOURCES[res].qualified()),
            json!({ "name": name, "group": RESOURCES[res].group, "kind": RESOURCES[res].plural }),
        );
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("uid");
        meta.remove("creationTimestamp");
    }
    let stored = state.store(res, ns, &name, object, true);
    inner.changed.notify_all();
    Reply::Json(201, stored)
}

fn delete_collection(
    inner: &Inner,
    res: usize,
    ns: Option<&str>,
    params: &HashMap<String, String>,
) -> Reply {
    let (labels, fields) = match selectors(params) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut state = inner.state();
    let keys: Vec<(String, String)> = state
        .objects
        .iter()
        .filter(|((r, n, _), v)| {
            *r == res
                && ns.is_none_or(|ns| ns == n)
                && labels_match(&labels, v)
                && fields_match(&fields, v)
        })
        .map(|((_, n, name), _)| (n.clone(), name.clone()))
        .collect();
    let items: Vec<Value> = keys
        .iter()
        .filter_map(|(n, name)| state.delete(res, n, name))
        .collect();
    inner.changed.notify_all();
    let r = &RESOURCES[res];
    Reply::Json(
        200,
        json!({
            "kind": format!("{}List", r.kind),
            "apiVersion": r.api_version(),
            "metadata": { "resourceVersion": state.rv.to_string() },
            "items": items,
        }),
    )
}

fn object_request(
    inner: &Inner,
    req: &KubeRequest,
    res: usize,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    params: &HashMap<String, String>,
) -> Reply {
    let method = req.method.as_str();
    let mut state = inner.state();
    let Some(current) = state.get(res, ns, name).cloned() else {
        // Server-side apply creates what is missing.
        if method == "PATCH" && sub.is_none() && patch_type(req) == Some(PatchType::Apply) {
            let patch = match body_json(req) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let stored = state.store(res, ns, name, patch, true);
            inner.changed.notify_all();
            return Reply::Json(201, stored);
        }
        return not_found(res, name);
    };
    // dryRun=All: answered as if done, nothing stored, as the API server does.
    let dry = match params.get("dryRun").map(String::as_str) {
        None => false,
        Some("All") => true,
        Some(other) => {
            return status_error(
                400,
                &format!("dryRun: Unsupported value: \"{other}\": supported values: \"All\""),
            );
        }
    };
    match (method, sub) {
        ("GET", None | Some("status")) => {
            if wants_table(req) && sub.is_none() {
                let include = params
                    .get("includeObject")
                    .map_or("Metadata", String::as_str);
                let meta = json!({ "resourceVersion": current["metadata"]["resourceVersion"] });
                Reply::Json(200, table(res, &[&current], meta, include))
            } else {
                Reply::Json(200, current)
            }
        }
        ("GET", Some("scale")) => Reply::Json(200, scale_of(&current)),
        ("GET", Some("log")) => {
            drop(state);
            pod_log(inner, &current, ns, name, params)
        }
        ("DELETE", None) => {
            let mut deleted = if dry {
                current
            } else {
                state.delete(res, ns, name).unwrap_or(current)
            };
            inner.changed.notify_all();
            if res == PODS {
                deleted["metadata"]["deletionTimestamp"] = json!(rfc3339(now()));
                deleted["metadata"]["deletionGracePeriodSeconds"] = json!(
                    deleted["spec"]["terminationGracePeriodSeconds"]
                        .as_i64()
                        .unwrap_or(30)
                );
            }
            Reply::Json(200, deleted)
        }
        ("PUT", None | Some("status")) => {
            let mut object = match body_json(req) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if let Some(e) = conflict(&object, &current, res, name) {
                return e;
            }
            if sub == Some("status") {
                let mut merged = current.clone();
                merged["status"] = object["status"].take();
                object = merged;
            } else if let Some(o) = object.as_object_mut() {
                // The main resource ignores status changes.
                match current.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            if dry {
                return Reply::Json(200, object);
            }
            let stored = state.store(res, ns, name, object, sub.is_none());
            inner.changed.notify_all();
            Reply::Json(200, stored)
        }
        ("PATCH", None | Some("status")) => {
            let mut patched = current.clone();
            if let Err(e) = apply_patch(req, &mut patched) {
                return e;
            }
            if sub == Some("status") {
                let mut merged = current.clone();
                merged["status"] = patched["status"].take();
                patched = merged;
            }
            if patched == current || dry {
                return Reply::Json(200, patched);
            }
            let stored = state.store(res, ns, name, patched, sub.is_none());
            inner.changed.notify_all();
            Reply::Json(200, stored)
        }
        ("PUT" | "PATCH", Some("scale")) => {
            let scale = scale_of(&current);
            let new_scale = if method == "PUT" {
                let body = match body_json(req) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                if let Some(e) = conflict(&body, &current, res, name) {
                    return e;
                }
                body
            } else {
                let mut patched = scale.clone();
                if let Err(e) = apply_patch(req, &mut patched) {
                    return e;
                }
                patched
            };
            let Some(replicas) = new_scale["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
                return status_error(
                    422,
                    &format!(
                        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {}: must be greater than or equal to 0",
                        new_scale["spec"]["replicas"]
                    ),
                );
            };
            if Some(replicas) == current["spec"]["replicas"].as_i64() {
                return Reply::Json(200, scale);
            }
            let mut object = current;
            object["spec"]["replicas"] = json!(replicas);
            if dry {
                return Reply::Json(200, scale_of(&object));
            }
            let stored = state.store(res, ns, name, object, true);
            inner.changed.notify_all();
            Reply::Json(200, scale_of(&stored))
        }
        _ => status_error(
            405,
            "the server does not allow this method on the requested resource",
        ),
    }
}

/// A 409 when the body names a resourceVersion other than the current one.
fn conflict(body: &Value, current: &Value, res: usize, name: &str) -> Option<Reply> {
    let given = body["metadata"]["resourceVersion"].as_str()?;
    if given.is_empty() || Some(given) == current["metadata"]["resourceVersion"].as_str() {
        return None;
    }
    let r = &RESOURCES[res];
    Some(status_error_details(
        409,
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            r.qualified()
        ),
        json!({ "name": name, "group": r.group, "kind": r.plural }),
    ))
}

fn pod_log(
    inner: &Inner,
    pod: &Value,
    ns: &str,
    name: &str,
    params: &HashMap<String, String>,
) -> Reply {
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    match params.get("container") {
        Some(c) if !containers.contains(&c.as_str()) => {
            return status_error(400, &format!("container {c} is not valid for pod {name}"));
        }
        None if containers.len() > 1 => {
            let default =
                pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str();
            if default.is_none() {
                return status_error(
                    400,
                    &format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        containers.join(" ")
                    ),
                );
            }
        }
        _ => {}
    }
    let lines = inner
        .state()
        .logs
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
        .unwrap_or_default();
    let mut since: Option<i64> = None;
    if let Some(s) = params.get("sinceSeconds") {
        match s.parse::<i64>() {
            Ok(s) if s > 0 => since = Some(now() - s),
            _ => {
                return status_error(
                    422,
                    &format!(
                        "PodLogOptions \"{name}\" is invalid: sinceSeconds: Invalid value: {s}: must be greater than 0"
                    ),
                );
            }
        }
    }
    if let Some(t) = params.get("sinceTime") {
        match parse_rfc3339(t) {
            Some(t) => since = Some(t),
            None => return status_error(400, &format!("parsing time {t:?}: invalid sinceTime")),
        }
    }
    let mut picked: Vec<usize> = (0..lines.len())
        .filter(|&i| since.is_none_or(|s| lines[i].0 >= s))
        .collect();
    if let Some(tail) = params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
        && picked.len() > tail
    {
        picked.drain(..picked.len() - tail);
    }
    Reply::Logs {
        lines,
        picked,
        timestamps: params
            .get("timestamps")
            .is_some_and(|t| t == "true" || t == "1"),
        limit_bytes: params.get("limitBytes").and_then(|l| l.parse().ok()),
    }
}

// --- patches ------------------------------------------------------------------------------

#[derive(PartialEq, Clone, Copy)]
enum PatchType {
    Merge,
    Strategic,
    Json,
    Apply,
}

fn patch_type(req: &KubeRequest) -> Option<PatchType> {
    let ct = req.header("content-type").unwrap_or("");
    let ct = ct.split(';').next().unwrap_or("").trim();
    match ct {
        "application/merge-patch+json" => Some(PatchType::Merge),
        "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
        "application/json-patch+json" => Some(PatchType::Json),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
        _ => None,
    }
}

fn apply_patch(req: &KubeRequest, target: &mut Value) -> Result<(), Reply> {
    let Some(kind) = patch_type(req) else {
        return Err(status_error(
            415,
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {:?})",
                req.header("content-type").unwrap_or("")
            ),
        ));
    };
    let patch = body_json(req)?;
    let invalid = |e: String| status_error(422, &e);
    match kind {
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(invalid("the patch is not a JSON object".into()));
            }
            merge_patch(target, &patch);
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(invalid("the patch is not a JSON object".into()));
            }
            strategic_merge(target, &patch);
        }
        PatchType::Json => json_patch(target, &patch).map_err(invalid)?,
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of the lists strategic merge patch merges (others are replaced).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "resourceClaims" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Strategic merge patch for the shapes clients send: maps merge, null deletes, keyed lists
/// merge by key (`$patch: delete` removes an element), other lists are replaced, `$patch:
/// replace` replaces a map, `$deleteFromPrimitiveList/F` removes values, and
/// `$setElementOrder/F` / `$retainKeys` are accepted and ignored.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = p.clone();
        replaced.remove("$patch");
        *target = Value::Object(replaced);
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(drop)) = (t.get_mut(field), v) {
                list.retain(|x| !drop.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v, merge_key(k)) {
            (Some(Value::Array(existing)), Value::Array(items), Some(key)) => {
                for item in items {
                    let id = item.get(key).cloned();
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    let found = id
                        .as_ref()
                        .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
                    match (found, delete) {
                        (Some(i), true) => {
                            existing.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => strategic_merge(&mut existing[i], item),
                        (None, false) => {
                            let mut fresh = Value::Null;
                            strategic_merge(&mut fresh, item);
                            existing.push(fresh);
                        }
                    }
                }
            }
            (Some(existing), Value::Object(_), _) if existing.is_object() => {
                strategic_merge(existing, v);
            }
            _ => {
                let mut fresh = Value::Null;
                if v.is_object() {
                    strategic_merge(&mut fresh, v);
                } else {
                    fresh = v.clone();
                }
                t.insert(k.clone(), fresh);
            }
        }
    }
}

fn pointer_tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {path:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn json_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let mut tokens = pointer_tokens(path)?;
    let last = tokens.pop().ok_or("cannot remove the root")?;
    let parent = walk(target, &tokens).ok_or(format!("path {path:?} does not exist"))?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or(format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index in {path:?}"))?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(format!("index out of range in {path:?}"))
            }
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

fn json_add(target: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), String> {
    let mut tokens = pointer_tokens(path)?;
    let Some(last) = tokens.pop() else {
        *target = value;
        return Ok(());
    };
    let parent = walk(target, &tokens).ok_or(format!("path {path:?} does not exist"))?;
    match parent {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(format!("path {path:?} does not exist"));
            }
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| format!("bad index in {path:?}"))?;
                if replace && i < a.len() {
                    a[i] = value;
                } else if !replace && i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(format!("index out of range in {path:?}"));
                }
            }
        }
        _ => return Err(format!("path {path:?} does not exist")),
    }
    Ok(())
}

fn walk<'a>(mut v: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    for t in tokens {
        v = match v {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// RFC 6902 JSON patch.
fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch is a list of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("an operation needs a path")?;
        match op["op"].as_str().unwrap_or("") {
            "add" => json_add(target, path, op["value"].clone(), false)?,
            "replace" => json_add(target, path, op["value"].clone(), true)?,
            "remove" => {
                json_remove(target, path)?;
            }
            "test" => {
                let tokens = pointer_tokens(path)?;
                if walk(target, &tokens).map(|v| &*v) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            "move" => {
                let from = op["from"].as_str().ok_or("move needs from")?;
                let v = json_remove(target, from)?;
                json_add(target, path, v, false)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("copy needs from")?;
                let tokens = pointer_tokens(from)?;
                let v = walk(target, &tokens)
                    .ok_or(format!("path {from:?} does not exist"))?
                    .clone();
                json_add(target, path, v, false)?;
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    Ok(())
}

// --- selectors ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let set = |v: &str| -> Result<Vec<String>, String> {
        let inner = v
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or(format!("found '{v}', expected: '('"))?;
        Ok(inner
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect())
    };
    split_top(s)
        .into_iter()
        .map(|part| {
            if let Some((k, v)) = part.split_once("!=") {
                return Ok(LabelReq::NotEq(k.trim().into(), v.trim().into()));
            }
            if let Some((k, v)) = part.split_once("==") {
                return Ok(LabelReq::Eq(k.trim().into(), v.trim().into()));
            }
            if let Some((k, v)) = part.split_once('=') {
                return Ok(LabelReq::Eq(k.trim().into(), v.trim().into()));
            }
            if let Some((k, v)) = part.split_once(" notin ") {
                return Ok(LabelReq::NotIn(k.trim().into(), set(v)?));
            }
            if let Some((k, v)) = part.split_once(" in ") {
                return Ok(LabelReq::In(k.trim().into(), set(v)?));
            }
            if let Some(k) = part.strip_prefix('!') {
                return Ok(LabelReq::NotExists(k.trim().into()));
            }
            if part.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
                return Err(format!("invalid label selector {part:?}"));
            }
            Ok(LabelReq::Exists(part))
        })
        .collect()
}

fn labels_match(reqs: &[LabelReq], object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    reqs.iter().all(|r| match r {
        LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
        LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
        LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        LabelReq::Exists(k) => get(k).is_some(),
        LabelReq::NotExists(k) => get(k).is_none(),
    })
}

#[derive(Debug, Clone)]
struct FieldReq {
    path: String,
    equal: bool,
    value: String,
}

fn parse_field_selector(s: &str) -> Result<Vec<FieldReq>, String> {
    split_top(s)
        .into_iter()
        .map(|part| {
            let (path, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            Ok(FieldReq {
                path: path.trim().to_string(),
                equal,
                value: value.trim().to_string(),
            })
        })
        .collect()
}

fn fields_match(reqs: &[FieldReq], object: &Value) -> bool {
    reqs.iter().all(|r| {
        let mut v = object;
        for part in r.path.split('.') {
            v = &v[part];
        }
        let actual = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (actual == r.value) == r.equal
    })
}

// --- tables -------------------------------------------------------------------------------

fn column(name: &str, kind: &str, priority: i64, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "format": if name == "Name" { "name" } else { "" },
        "description": description,
        "priority": priority,
    })
}

fn age(object: &Value, field: &str) -> String {
    match object["metadata"][field].as_str().and_then(parse_rfc3339) {
        Some(t) => human_duration(now() - t),
        None => "<unknown>".into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// A `meta.k8s.io/v1` Table with the columns a real API server gives kubectl.
fn table(res: usize, items: &[&Value], meta: Value, include: &str) -> Value {
    let name_col = column(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age_col = column(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    let columns: Vec<Value> = match RESOURCES[res].plural {
        "pods" => vec![
            name_col,
            column(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age_col,
            column(
                "IP",
                "string",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            column(
                "Node",
                "string",
                1,
                "NodeName is a request to schedule this pod onto a specific node.",
            ),
            column(
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            column(
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "deployments" => vec![
            name_col,
            column("Ready", "string", 0, "Number of the pod with ready state"),
            column(
                "Up-to-date",
                "integer",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            column(
                "Available",
                "integer",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age_col,
            column(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            column(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            column(
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        "replicasets" => vec![
            name_col,
            column(
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired replicas.",
            ),
            column(
                "Current",
                "integer",
                0,
                "Replicas is the most recently oberved number of replicas.",
            ),
            column(
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            age_col,
            column(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            column(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            column(
                "Selector",
                "string",
                1,
                "Selector is a label query over pods that should match the replica count.",
            ),
        ],
        "configmaps" => vec![
            name_col,
            column("Data", "string", 0, "Data contains the configuration data."),
            age_col,
        ],
        "events" => vec![
            column(
                "Last Seen",
                "string",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            column(
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            column(
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            column(
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            column(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
        ],
        "namespaces" => vec![
            name_col,
            column("Status", "string", 0, "The status of the namespace"),
            age_col,
        ],
        "nodes" => vec![
            name_col,
            column("Status", "string", 0, "The status of the node"),
            column("Roles", "string", 0, "The roles of the node"),
            age_col,
            column(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
        ],
        _ => vec![name_col, age_col],
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let name = text(&o["metadata"]["name"]);
            let cells: Vec<Value> = match RESOURCES[res].plural {
                "pods" => pod_cells(o),
                "deployments" => {
                    let (containers, images) = template_containers(o);
                    vec![
                        json!(name),
                        json!(format!(
                            "{}/{}",
                            o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                            o["spec"]["replicas"].as_i64().unwrap_or(1)
                        )),
                        json!(o["status"]["updatedReplicas"].as_i64().unwrap_or(0)),
                        json!(o["status"]["availableReplicas"].as_i64().unwrap_or(0)),
                        json!(age(o, "creationTimestamp")),
                        json!(containers),
                        json!(images),
                        json!(selector_string(o)),
                    ]
                }
                "replicasets" => {
                    let (containers, images) = template_containers(o);
                    vec![
                        json!(name),
                        json!(o["spec"]["replicas"].as_i64().unwrap_or(1)),
                        json!(o["status"]["replicas"].as_i64().unwrap_or(0)),
                        json!(o["status"]["readyReplicas"].as_i64().unwrap_or(0)),
                        json!(age(o, "creationTimestamp")),
                        json!(containers),
                        json!(images),
                        json!(selector_string(o)),
                    ]
                }
                "configmaps" => {
                    let count = o["data"].as_object().map_or(0, Map::len)
                        + o["binaryData"].as_object().map_or(0, Map::len);
                    vec![
                        json!(name),
                        json!(count),
                        json!(age(o, "creationTimestamp")),
                    ]
                }
                "events" => {
                    let last = o["lastTimestamp"]
                        .as_str()
                        .or(o["eventTime"].as_str())
                        .and_then(parse_rfc3339)
                        .map_or("<unknown>".to_string(), |t| human_duration(now() - t));
                    let io = &o["involvedObject"];
                    vec![
                        json!(last),
                        json!(text(&o["type"])),
                        json!(text(&o["reason"])),
                        json!(format!(
                            "{}/{}",
                            text(&io["kind"]).to_lowercase(),
                            text(&io["name"])
                        )),
                        json!(text(&o["message"])),
                    ]
                }
                "namespaces" => vec![
                    json!(name),
                    json!(text(&o["status"]["phase"])),
                    json!(age(o, "creationTimestamp")),
                ],
                "nodes" => {
                    let ready = o["status"]["conditions"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                        .map_or("Unknown", |c| {
                            if c["status"] == "True" {
                                "Ready"
                            } else {
                                "NotReady"
                            }
                        });
                    let roles: Vec<String> = o["metadata"]["labels"]
                        .as_object()
                        .map(|m| {
                            m.keys()
                                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    vec![
                        json!(name),
                        json!(ready),
                        json!(or_none(roles.join(","))),
                        json!(age(o, "creationTimestamp")),
                        json!(text(&o["status"]["nodeInfo"]["kubeletVersion"])),
                    ]
                }
                _ => vec![json!(name), json!(age(o, "creationTimestamp"))],
            };
            let mut row = json!({ "cells": cells });
            match include {
                "None" => {}
                "Object" => row["object"] = (*o).clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    });
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn template_containers(o: &Value) -> (String, String) {
    let containers = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| text(&c["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(&c["image"])).collect();
    (names.join(","), images.join(","))
}

/// The cells kubectl shows for a pod, computed the way the API server's printer does.
fn pod_cells(pod: &Value) -> Vec<Value> {
    let status = &pod["status"];
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let mut reason = text(&status["phase"]);
    if let Some(r) = status["reason"].as_str().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let mut restarts = 0;
    let mut ready = 0;
    let mut last_restart: Option<i64> = None;
    let mut has_running = false;
    let statuses = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in statuses.iter().rev() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(parse_rfc3339)
        {
            last_restart = Some(last_restart.map_or(t, |l: i64| l.max(t)));
        }
        let state = &c["state"];
        if let Some(r) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if let Some(r) = state["terminated"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if state["terminated"].is_object() {
            let term = &state["terminated"];
            reason = match term["signal"].as_i64().filter(|s| *s != 0) {
                Some(s) => format!("Signal:{s}"),
                None => format!("ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0)),
            };
        } else if c["ready"] == true && state["running"].is_object() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        let pod_ready = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .is_some_and(|c| c["status"] == "True");
        reason = if pod_ready { "Running" } else { "NotReady" }.into();
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = if status["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now() - t)),
        _ => restarts.to_string(),
    };
    vec![
        json!(text(&pod["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(pod, "creationTimestamp")),
        json!(or_none(text(&status["podIP"]))),
        json!(or_none(text(&pod["spec"]["nodeName"]))),
        json!(or_none(text(&status["nominatedNodeName"]))),
        json!("<none>"),
    ]
}

/// apimachinery's `duration.HumanDuration`, which kubectl's AGE columns use.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

// --- small helpers ------------------------------------------------------------------------

/// An object as a list item: without apiVersion and kind, as a real server lists it.
fn list_item_json(object: &Value) -> Vec<u8> {
    struct Item<'a>(&'a Map<String, Value>);
    impl serde::Serialize for Item<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            for (k, v) in self.0 {
                if k != "apiVersion" && k != "kind" {
                    map.serialize_entry(k, v)?;
                }
            }
            map.end()
        }
    }
    match object.as_object() {
        Some(m) => serde_json::to_vec(&Item(m)).unwrap(),
        None => serde_json::to_vec(object).unwrap(),
    }
}

fn labels_json(labels: &[(&str, &str)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

fn object_name(object: &Value) -> Option<String> {
    object["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

fn fnv(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `2024-05-01T10:00:00Z` (what Go's RFC3339 and RFC3339Nano print for whole seconds).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.chars().take_while(char::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // days_from_civil
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A continue token the way the API server makes them: unpadded URL-safe base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"KEY\u0000"}`.
fn encode_continue(rv: u64, last_key: &str) -> String {
    let raw =
        json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key}\u{0}") }).to_string();
    let bytes = raw.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The last key of the previous page, from a token of [`encode_continue`].
fn decode_continue(token: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in token.trim_end_matches('=').bytes() {
        let v = match c {
            b'+' => 62,
            b'/' => 63,
            _ => B64.iter().position(|&x| x == c)? as u32,
        };
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let start = value["start"].as_str()?;
    Some(start.trim_end_matches('\u{0}').to_string())
}
