//! PagerDuty's Events API v2: acknowledge or resolve the page an alert raised, by its dedup key,
//! alongside the Alertmanager silence. The routing key is a credential: it is masked in plans,
//! on screen and in the timeline.

use super::kinds::{ActionSpec, renderer};
use super::{BackendError, Plan, PlanContext, Prepared, http};
use crate::redact::MASK;
use crate::spec::S;
use crate::spec::validate::Validator;
use serde::Deserialize;
use serde_json::{Value, json};

pub const DEFAULT_PAGERDUTY: &str = "https://events.pagerduty.com";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    /// `acknowledge` or `resolve`.
    pub event_action: S<String>,
    /// The integration's routing key: a template that reads a secret param.
    pub routing_key: S<String>,
    /// The key that names the page in PagerDuty.
    pub dedup_key: S<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no PagerDuty routing key ({0} is empty): act on the page in PagerDuty by hand")]
    NoRoutingKey(String),
    #[error("no dedup key for the page ({0} is empty): act on the page in PagerDuty by hand")]
    NoDedupKey(String),
}

impl ActionSpec for PagerDuty {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if !matches!(self.event_action.value.as_str(), "acknowledge" | "resolve") {
            v.problem(
                &self.event_action,
                format!(
                    "PagerDuty `event_action` '{}' is not one oncall sends",
                    self.event_action.value
                ),
                Some(
                    "use acknowledge or resolve; pages are raised by the alerts, not by a runbook"
                        .into(),
                ),
            );
        }
        v.template(&self.routing_key, "routing key");
        v.template(&self.dedup_key, "dedup key");
        if !self.routing_key.value.contains("{{") {
            v.problem(
                &self.routing_key,
                "the routing key is a credential: a runbook must not hold it".into(),
                Some("read it from a secret param: `routing_key: \"{{ params.pagerduty_routing_key }}\"`, with `secret: true`".into()),
            );
        }
    }

    async fn prepare(
        &self,
        ctx: &Value,
        _with: &PlanContext<'_>,
    ) -> Result<Prepared, BackendError> {
        let render = renderer(ctx);
        let routing_key = render(&self.routing_key.value)?.trim().to_string();
        if routing_key.is_empty() {
            return Err(Error::NoRoutingKey(reads(&self.routing_key.value)).into());
        }
        crate::redact::register_credential(&routing_key);
        let dedup_key = render(&self.dedup_key.value)?.trim().to_string();
        if dedup_key.is_empty() {
            return Err(Error::NoDedupKey(reads(&self.dedup_key.value)).into());
        }
        let base = ctx["endpoints"]["pagerduty"]
            .as_str()
            .unwrap_or(DEFAULT_PAGERDUTY);
        let url = format!("{}/v2/enqueue", base.trim_end_matches('/'));
        let action = &self.event_action.value;
        let body = |key: &str| json!({ "routing_key": key, "event_action": action, "dedup_key": dedup_key });
        let done = if action == "resolve" {
            "resolves"
        } else {
            "acknowledges"
        };
        let plan = Plan {
            backend: "pagerduty".into(),
            request: format!("POST {url}"),
            body: Some(body(MASK)),
            changes: vec![format!(
                "{done} the PagerDuty page of dedup key {dedup_key}"
            )],
            ..Plan::default()
        };
        let request = http::Request::post_json(url, body(&routing_key));
        Ok(Prepared::new(plan, super::Request::Http(request)))
    }
}

/// What a template reads, for an error: `params.pagerduty_routing_key`.
fn reads(template: &str) -> String {
    crate::expr::referenced_names(template, crate::expr::Kind::Template)
        .ok()
        .filter(|names| !names.is_empty())
        .map(|names| names.into_iter().collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| template.to_string())
}
