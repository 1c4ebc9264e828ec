//! The Kubernetes kinds: what each says in a runbook, how it is checked, shown, read and planned.

use super::{PatchKind, Request};
use crate::backends::kinds::{ActionSpec, CheckSpec, Touch, fill, renderer};
use crate::backends::reading::Reading;
use crate::backends::{BackendError, Live, PlanContext, Prepared};
use crate::expr;
use crate::spec::validate::{Validator, json_strings};
use crate::spec::{MAX_REPLICAS, MAX_ROWS, S, ScalarValue, bounds};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Pods by namespace and label selector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sPods {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub selector: Option<S<String>>,
    /// Restarts above this warn (default 5).
    #[serde(default)]
    pub max_restarts: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sDeployment {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub name: S<String>,
}

/// Log lines of a deployment's (or a selector's) pods over a window, filtered by a regex.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sLogs {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub deployment: Option<S<String>>,
    #[serde(default)]
    pub selector: Option<S<String>>,
    /// How far back, e.g. `1h` (the default).
    #[serde(default)]
    pub since: Option<S<String>>,
    pub matches: S<String>,
    /// How many of the latest matching lines to keep (default 5).
    #[serde(default)]
    pub keep: Option<S<usize>>,
}

/// Warning events of a namespace, or of one object in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sEvents {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// `deployment/gpu-worker`, `pod/x`, or just a name.
    #[serde(default)]
    pub object: Option<S<String>>,
    #[serde(default)]
    pub since: Option<S<String>>,
}

/// The rollout history of a deployment (`kubectl rollout history`): the ReplicaSets it owns, by
/// revision, with when each was created, its images and its change cause.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sRolloutHistory {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub deployment: S<String>,
    /// Revisions created within this window count as recent changes (default `24h`).
    #[serde(default)]
    pub since: Option<S<String>>,
}

/// Scale a deployment through its scale subresource.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sScale {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub deployment: S<String>,
    /// A count, a template, or `previous`: the count before this incident's first scale of it.
    pub replicas: S<ScalarValue>,
}

/// `kubectl rollout restart`: a new restartedAt annotation on the pod template.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sRestart {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub deployment: S<String>,
    /// Wait up to this long for the rollout to finish.
    #[serde(default)]
    pub wait: Option<S<String>>,
}

/// A JSON merge patch of a deployment's or configmap's annotations, labels or data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sPatch {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// `deployment` or `configmap`.
    pub kind: S<String>,
    pub name: S<String>,
    pub patch: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sDeletePod {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    pub pod: S<String>,
}

/// An object as the targets of actions name it: `deployment video-processing/gpu-worker`.
fn object(kind: &str, ns: &Option<S<String>>, name: &str, ctx: &Value) -> String {
    let ns = ns
        .as_ref()
        .map_or(String::new(), |n| format!("{}/", fill(&n.value, ctx)));
    format!("{kind} {ns}{}", fill(name, ctx))
}

/// The fields a merge patch sets, as dotted paths to its leaves: `data.DB_MAX_CONNECTIONS`.
fn patched_fields(patch: &Value, path: &str, out: &mut Vec<String>) {
    match patch {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, value) in fields {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                patched_fields(value, &path, out);
            }
        }
        _ => out.push(path.to_string()),
    }
}

/// A namespace for `show`: the one named, or the default.
fn shown_namespace(ns: &Option<S<String>>, ctx: &Value) -> String {
    ns.as_ref()
        .map_or("the default namespace".into(), |n| fill(&n.value, ctx))
}

impl CheckSpec for K8sPods {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.count(self.max_restarts.as_ref(), "`max_restarts`", 0..=1_000_000);
        v.templates(
            self.namespace.iter().chain(&self.selector),
            "kubernetes field",
        );
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let with = self
            .selector
            .as_ref()
            .map(|s| format!(" with {}", fill(&s.value, ctx)))
            .unwrap_or_default();
        let ns = shown_namespace(&self.namespace, ctx);
        Some(format!("kubernetes: pods in {ns}{with}"))
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::pods(&live.systems.kube, self, &renderer(ctx)).await
    }
}

impl CheckSpec for K8sDeployment {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates(
            self.namespace.iter().chain([&self.name]),
            "kubernetes field",
        );
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        Some(format!(
            "kubernetes: deployment/{} in {}",
            fill(&self.name.value, ctx),
            shown_namespace(&self.namespace, ctx)
        ))
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::deployment(&live.systems.kube, self, &renderer(ctx)).await
    }
}

impl CheckSpec for K8sLogs {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        if self.deployment.is_none() == self.selector.is_none() {
            v.problem(
                id,
                "k8s_logs needs exactly one of `deployment` and `selector`".into(),
                None,
            );
        }
        if let Some(since) = &self.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        v.regex(&self.matches);
        v.count(self.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        v.templates(
            self.namespace
                .iter()
                .chain(&self.deployment)
                .chain(&self.selector),
            "kubernetes field",
        );
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let of = self
            .deployment
            .as_ref()
            .map(|d| format!("deployment/{}", fill(&d.value, ctx)))
            .or_else(|| self.selector.as_ref().map(|s| fill(&s.value, ctx)))
            .unwrap_or_default();
        let since = self.since.as_ref().map_or("1h", |s| s.value.as_str());
        Some(format!(
            "kubernetes: logs of {of} in {} since {since}, lines matching /{}/",
            shown_namespace(&self.namespace, ctx),
            self.matches.value
        ))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        super::logs(&live.systems.kube, self, &renderer(ctx), timeout).await
    }
}

impl CheckSpec for K8sEvents {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(since) = &self.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        v.templates(
            self.namespace.iter().chain(&self.object),
            "kubernetes field",
        );
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let of = self
            .object
            .as_ref()
            .map(|o| format!(" of {}", fill(&o.value, ctx)))
            .unwrap_or_default();
        let ns = shown_namespace(&self.namespace, ctx);
        Some(format!("kubernetes: warning events{of} in {ns}"))
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::events(&live.systems.kube, self, &renderer(ctx)).await
    }
}

impl CheckSpec for K8sRolloutHistory {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(since) = &self.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        v.templates(
            self.namespace.iter().chain([&self.deployment]),
            "kubernetes field",
        );
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let since = self.since.as_ref().map_or("24h", |s| s.value.as_str());
        Some(format!(
            "kubernetes: rollout history of deployment/{} in {} (revisions since {since})",
            fill(&self.deployment.value, ctx),
            shown_namespace(&self.namespace, ctx)
        ))
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::rollout_history(&live.systems.kube, self, &renderer(ctx)).await
    }
}

/// The namespace of an action that names none: the cluster's default, or `default` with no cluster.
async fn namespace(
    spec: &Option<S<String>>,
    ctx: &Value,
    with: &PlanContext<'_>,
) -> Result<String, BackendError> {
    match (spec, with.systems) {
        (Some(ns), _) => Ok(expr::render(&ns.value, ctx)?),
        (None, Some(systems)) => Ok(systems.kube.default_namespace().await?),
        (None, None) => Ok("default".into()),
    }
}

/// A request with its names checked, planned against the cluster (or the drill's replica counts).
async fn prepared(request: Request, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
    let request = request.checked()?;
    let mut plan = super::plan(with.systems.map(|s| &s.kube), with.known_replicas, &request).await;
    // Acting on the wrong cluster is the classic mistake at 3 a.m.: every plan says which.
    plan.on = with.systems.map(|s| s.kube.describe());
    plan.production = with.systems.and_then(|s| s.kube.production_context());
    if let Some(systems) = with.systems.filter(|_| with.server_dry_run)
        && plan.missing.is_none()
    {
        plan.server = super::server_dry_run(&systems.kube, &request).await;
        if plan.server.is_none() {
            plan.changes.push(format!(
                "the API server gave no answer to the dry run within {}",
                crate::backends::humanize(super::PLAN_READ)
            ));
        }
    }
    Ok(Prepared::new(plan, crate::backends::Request::Kube(request)))
}

/// A replica count: a number, a template, or `previous` (the count before this incident's first scale).
fn replicas(
    spec: &ScalarValue,
    target: &str,
    previous: &std::collections::BTreeMap<String, Value>,
    render: &dyn Fn(&str) -> Result<String, BackendError>,
) -> Result<i64, BackendError> {
    let bad = |why: String| {
        BackendError::from(super::Error::Spec {
            what: "replicas",
            why,
        })
    };
    match spec {
        ScalarValue::Int(n) if *n >= 0 => Ok(*n),
        ScalarValue::Text(word) if word == "previous" => {
            previous.get(target).and_then(Value::as_i64).ok_or_else(|| {
                super::Error::NothingToRestore {
                    target: target.to_string(),
                }
                .into()
            })
        }
        ScalarValue::Text(template) => {
            let text = render(template)?;
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=MAX_REPLICAS).contains(n))
                .ok_or_else(|| bad(format!("'{text}' is not a replica count")))
        }
        other => Err(bad(format!("{other:?} is not a replica count"))),
    }
}

impl ActionSpec for K8sScale {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        match &self.replicas.value {
            ScalarValue::Int(n) if (0..=MAX_REPLICAS).contains(n) => {}
            ScalarValue::Int(n) => v.problem(
                &self.replicas,
                format!("replicas {n} is out of range"),
                Some(format!("it may be 0 to {MAX_REPLICAS}")),
            ),
            ScalarValue::Text(t) if t == "previous" || t.contains("{{") => {
                if t != "previous" {
                    let at = S::new(t.clone(), self.replicas.referenced, self.replicas.defined);
                    v.template(&at, "replicas");
                }
            }
            _ => v.problem(
                &self.replicas,
                "replicas must be a count, a template, or `previous`".into(),
                Some("`previous` goes back to the count before this incident's first scale of the deployment".into()),
            ),
        }
        v.templates(
            self.namespace.iter().chain([&self.deployment]),
            "kubernetes field",
        );
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let render = renderer(ctx);
        let ns = namespace(&self.namespace, ctx, with).await?;
        let name = render(&self.deployment.value)?;
        let target = super::scale_target(&ns, &name);
        let replicas = replicas(&self.replicas.value, &target, &with.undo.previous, &render)?;
        prepared(Request::Scale { ns, name, replicas }, with).await
    }

    /// `spec.replicas`, the field a patch of the deployment would set too.
    fn touches(&self, ctx: &Value) -> Vec<Touch> {
        let target = format!(
            "{} spec.replicas",
            object("deployment", &self.namespace, &self.deployment.value, ctx)
        );
        vec![match &self.replicas.value {
            ScalarValue::Text(word) if word == "previous" => Touch::restores(target),
            _ => Touch::sets(target),
        }]
    }
}

impl ActionSpec for K8sRestart {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(wait) = &self.wait {
            v.duration(wait, "restart `wait`", bounds::TIMEOUT);
        }
        v.templates(
            self.namespace.iter().chain([&self.deployment]),
            "kubernetes field",
        );
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let wait = self
            .wait
            .as_ref()
            .map(|w| crate::spec::parse_duration(&w.value))
            .transpose();
        let wait = wait.map_err(|why| super::Error::Spec { what: "wait", why })?;
        let request = Request::Restart {
            ns: namespace(&self.namespace, ctx, with).await?,
            name: expr::render(&self.deployment.value, ctx)?,
            patch: super::restart_patch(jiff::Timestamp::now()),
            wait,
        };
        prepared(request, with).await
    }
}

impl ActionSpec for K8sPatch {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Err(err) = PatchKind::parse(&self.kind.value) {
            v.problem(&self.kind, err.to_string(), None);
        }
        if !self.patch.is_object() {
            v.problem(
                &self.kind,
                "`patch` must be a map, merged into the object".into(),
                Some("e.g. patch: { data: { DB_MAX_CONNECTIONS: \"50\" } }".into()),
            );
        }
        for text in json_strings(&self.patch) {
            let at = S::new(text, self.kind.referenced, self.kind.defined);
            v.template(&at, "patch");
        }
        v.templates(
            self.namespace.iter().chain([&self.name]),
            "kubernetes field",
        );
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let request = Request::Patch {
            ns: namespace(&self.namespace, ctx, with).await?,
            kind: PatchKind::parse(&self.kind.value)?,
            name: expr::render(&self.name.value, ctx)?,
            patch: crate::backends::http::render_json(&self.patch, ctx)?,
        };
        prepared(request, with).await
    }

    /// Each field the patch sets (a later patch of the same field puts it back).
    fn touches(&self, ctx: &Value) -> Vec<Touch> {
        let object = object(&self.kind.value, &self.namespace, &self.name.value, ctx);
        let mut fields = Vec::new();
        patched_fields(&self.patch, "", &mut fields);
        fields
            .into_iter()
            .map(|field| Touch::sets(format!("{object} {field}")))
            .collect()
    }
}

impl ActionSpec for K8sDeletePod {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates(self.namespace.iter().chain([&self.pod]), "kubernetes field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let request = Request::DeletePod {
            ns: namespace(&self.namespace, ctx, with).await?,
            name: expr::render(&self.pod.value, ctx)?,
        };
        prepared(request, with).await
    }
}
