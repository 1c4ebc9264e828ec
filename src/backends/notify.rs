//! Posting a message to the incident channel through a chat's incoming webhook: the
//! Slack-compatible `{"text": …}` that Mattermost, Rocket.Chat and others accept too. The
//! webhook's URL is its credential: only its host is ever shown.

use super::kinds::ActionSpec;
use super::{BackendError, Plan, PlanContext, Prepared, http};
use crate::spec::S;
use crate::spec::validate::Validator;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The named endpoint that holds the webhook's URL (`--endpoint incident_channel=URL`).
    pub endpoint: S<String>,
    /// The message to post: a name under `messages:`.
    pub message: S<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "endpoint '{0}' has no webhook URL (pass --endpoint {0}=URL or set it under `endpoints:` in the config file): post the message by hand"
    )]
    NoWebhook(String),
    #[error("endpoint '{endpoint}' is not an http(s) URL: {why}")]
    BadUrl { endpoint: String, why: String },
}

impl ActionSpec for Notify {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.message(&self.message);
        if self.endpoint.value.is_empty() || self.endpoint.value.contains("{{") {
            v.problem(
                &self.endpoint,
                "`endpoint` names an endpoint; it is not a URL or a template".into(),
                Some("e.g. `endpoint: incident_channel`, with the URL in the config file".into()),
            );
        }
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let endpoint = &self.endpoint.value;
        let url = ctx["endpoints"][endpoint]
            .as_str()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::NoWebhook(endpoint.clone()))?;
        crate::redact::register_webhook(url);
        let bad = |why: String| Error::BadUrl {
            endpoint: endpoint.clone(),
            why,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!("its scheme is '{}'", parsed.scheme())).into());
        }
        let host = parsed[url::Position::BeforeHost..url::Position::AfterPort].to_string();
        let name = &self.message.value;
        let template = with.messages.get(name).ok_or_else(|| BackendError::Spec {
            what: "message",
            why: format!("no message '{name}' under `messages:`"),
        })?;
        let text = crate::expr::render_message(name, &template.value, ctx);
        let mut changes = vec![format!("posts message '{name}' to {host}, as it reads:")];
        changes.extend(text.lines().map(|l| format!("  {l}")));
        let plan = Plan {
            backend: "notify".into(),
            request: format!(
                "POST {}://{host}/… {{\"text\": …}} (the webhook of endpoint '{endpoint}')",
                parsed.scheme()
            ),
            changes,
            ..Plan::default()
        };
        let request = http::Request::post_json(url.to_string(), json!({ "text": text }));
        Ok(Prepared::new(plan, super::Request::Http(request)))
    }
}
