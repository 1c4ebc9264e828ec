//! The Docker kinds: what each says in a runbook, how it is checked, read and planned.

use super::{Op, Request, Target};
use crate::backends::kinds::{ActionSpec, CheckSpec, Touch, fill};
use crate::backends::reading::Reading;
use crate::backends::{BackendError, Live, PlanContext, Prepared, duration};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{MAX_ROWS, S, bounds};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Containers by compose project (and service), by name, or by label.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerTarget {
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    /// `key=value`
    #[serde(default)]
    pub label: Option<S<String>>,
}

/// `docker_containers`: the state of each container of a target.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Containers(pub DockerTarget);

/// `docker_stats`: one-shot CPU and memory of each container of a target.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Stats(pub DockerTarget);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerLogs {
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    #[serde(default)]
    pub label: Option<S<String>>,
    #[serde(default)]
    pub since: Option<S<String>>,
    pub matches: S<String>,
    #[serde(default)]
    pub keep: Option<S<usize>>,
}

/// Restart, stop or start containers (every container of a compose service).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAction {
    /// `restart`, `stop` or `start`.
    pub op: S<String>,
    #[serde(default)]
    pub project: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub container: Option<S<String>>,
    #[serde(default)]
    pub label: Option<S<String>>,
    /// Seconds to wait for a stop before the kill (default 10).
    #[serde(default)]
    pub grace: Option<S<String>>,
}

/// `docker_prune: {}`: stopped containers and dangling images.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {}

/// `docker-compose up -d --scale SERVICE=N`: the service's containers brought to `replicas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub project: S<String>,
    pub service: S<String>,
    /// A count, or a template that renders to one.
    pub replicas: S<crate::spec::ScalarValue>,
    /// Seconds to wait for a surplus container's stop before the kill (default 10).
    #[serde(default)]
    pub grace: Option<S<String>>,
}

type Fields<'a> = [&'a Option<S<String>>; 4];

/// The templates of a target's fields.
fn validate_target(v: &mut Validator, fields: Fields) {
    for field in fields.into_iter().flatten() {
        v.template(field, "field");
    }
}

/// A target with its templates filled in.
fn target(fields: Fields, ctx: &Value) -> Result<Target, BackendError> {
    let render =
        |o: &Option<S<String>>| o.as_ref().map(|v| expr::render(&v.value, ctx)).transpose();
    let [project, service, container, label] = fields;
    Ok(Target {
        project: render(project)?,
        service: render(service)?,
        container: render(container)?,
        label: render(label)?,
    })
}

impl DockerTarget {
    fn fields(&self) -> Fields<'_> {
        [&self.project, &self.service, &self.container, &self.label]
    }
}

impl CheckSpec for Containers {
    const BACKEND: &'static str = "docker";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        validate_target(v, self.0.fields());
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::containers(&live.systems.docker, &target(self.0.fields(), ctx)?).await
    }
}

impl CheckSpec for Stats {
    const BACKEND: &'static str = "docker";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        validate_target(v, self.0.fields());
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::stats(&live.systems.docker, &target(self.0.fields(), ctx)?).await
    }
}

impl DockerLogs {
    fn fields(&self) -> Fields<'_> {
        [&self.project, &self.service, &self.container, &self.label]
    }
}

impl CheckSpec for DockerLogs {
    const BACKEND: &'static str = "docker";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.count(self.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        if let Some(since) = &self.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        v.regex(&self.matches);
        validate_target(v, self.fields());
    }

    async fn read(&self, live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        let target = target(self.fields(), ctx)?;
        let pattern = regex::Regex::new(&self.matches.value).map_err(|e| BackendError::Spec {
            what: "matches",
            why: e.to_string(),
        })?;
        let since = duration(&self.since, "since")?;
        let keep = self.keep.as_ref().map(|k| k.value);
        super::logs(&live.systems.docker, &target, since, &pattern, keep).await
    }
}

impl DockerAction {
    fn fields(&self) -> Fields<'_> {
        [&self.project, &self.service, &self.container, &self.label]
    }
}

impl ActionSpec for DockerAction {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Err(err) = Op::parse(&self.op.value) {
            v.problem(&self.op, err.to_string(), None);
        }
        if let Some(grace) = &self.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
        if self.project.is_none() && self.container.is_none() && self.label.is_none() {
            v.problem(
                &self.op,
                "a docker action needs a project, a container or a label".into(),
                Some("so it never touches every container on the host".into()),
            );
        }
        validate_target(v, self.fields());
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let op = Op::parse(&self.op.value)?;
        let request = Request::Containers {
            op,
            target: target(self.fields(), ctx)?,
            grace: duration(&self.grace, "grace")?,
        };
        let (plan, resolved) = super::plan(with.systems.map(|s| &s.docker), &request).await;
        Ok(Prepared::new(
            plan,
            crate::backends::Request::Docker(request, resolved),
        ))
    }
}

/// Compose services past this many containers are not a scale an incident makes.
const MAX_CONTAINERS: i64 = 50;

impl ActionSpec for Scale {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        use crate::spec::ScalarValue;
        match &self.replicas.value {
            ScalarValue::Int(n) if (0..=MAX_CONTAINERS).contains(n) => {}
            ScalarValue::Text(t) if t.contains("{{") => {
                let at = S::new(t.clone(), self.replicas.referenced, self.replicas.defined);
                v.template(&at, "replicas");
            }
            _ => v.problem(
                &self.replicas,
                "replicas must be a count or a template".into(),
                Some(format!("a count from 0 to {MAX_CONTAINERS}")),
            ),
        }
        if let Some(grace) = &self.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
        v.templates([&self.project, &self.service], "field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let render = crate::backends::kinds::renderer(ctx);
        let replicas = match &self.replicas.value {
            crate::spec::ScalarValue::Text(t) => render(t)?,
            other => other.to_json().to_string(),
        };
        let replicas = replicas
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| i64::from(*n) <= MAX_CONTAINERS)
            .ok_or_else(|| BackendError::Spec {
                what: "replicas",
                why: format!("'{replicas}' is not a count from 0 to {MAX_CONTAINERS}"),
            })?;
        let request = Request::Scale {
            target: super::Target {
                project: Some(render(&self.project.value)?),
                service: Some(render(&self.service.value)?),
                container: None,
                label: None,
            },
            replicas,
            grace: duration(&self.grace, "grace")?,
        };
        let (plan, resolved) = super::plan(with.systems.map(|s| &s.docker), &request).await;
        Ok(Prepared::new(
            plan,
            crate::backends::Request::Docker(request, resolved),
        ))
    }

    fn touches(&self, ctx: &Value) -> Vec<Touch> {
        vec![Touch::sets(format!(
            "compose service {}/{} replicas",
            fill(&self.project.value, ctx),
            fill(&self.service.value, ctx)
        ))]
    }
}

impl ActionSpec for Prune {
    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn prepare(
        &self,
        _ctx: &Value,
        with: &PlanContext<'_>,
    ) -> Result<Prepared, BackendError> {
        let (plan, resolved) = super::plan(with.systems.map(|s| &s.docker), &Request::Prune).await;
        Ok(Prepared::new(
            plan,
            crate::backends::Request::Docker(Request::Prune, resolved),
        ))
    }
}
