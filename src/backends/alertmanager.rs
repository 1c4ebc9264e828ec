//! Alertmanager API v2 through reqwest: firing alerts as a check; creating a silence (the seeds'
//! "acknowledge") and expiring it as actions.

use super::kinds::{ActionSpec, CheckSpec, Touch, renderer};
use super::reading::{Reading, Table};
use super::{
    Applied, BackendError, Effect, Live, Plan, PlanContext, Prepared, alertmanager_url,
    describe_reqwest, humanize, matchers, snippet,
};
use crate::spec::validate::Validator;
use crate::spec::{S, bounds};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Firing alerts in Alertmanager matching label matchers (`alertname: X`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    #[serde(default)]
    pub matchers: BTreeMap<String, S<String>>,
}

/// An Alertmanager silence: the seeds' "acknowledge".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Label matchers; default: the alert the run was opened from (`run --alert`).
    #[serde(default)]
    pub matchers: BTreeMap<String, S<String>>,
    pub duration: S<String>,
    #[serde(default)]
    pub comment: Option<S<String>>,
}

/// `expire_silence: {}`: expire the silences this incident created.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireSilence {}

impl CheckSpec for AlertsSpec {
    const BACKEND: &'static str = "alertmanager";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        for field in self.matchers.values() {
            v.template(field, "field");
        }
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let found = matchers(&self.matchers, &renderer(ctx))?;
        check(&live.client, &alertmanager_url(ctx), &found, timeout).await
    }
}

/// What a silence and its expiry touch: the silences this incident created.
const SILENCES: &str = "the silences of this incident";

impl ActionSpec for Silence {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.duration(&self.duration, "silence `duration`", bounds::SILENCE);
        for field in self.matchers.values().chain(&self.comment) {
            v.template(field, "field");
        }
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let render = renderer(ctx);
        let mut found = matchers(&self.matchers, &render)?;
        if found.is_empty()
            && let Some(labels) = ctx["incident"]["alert"]["labels"].as_object()
        {
            found = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
        }
        let length = crate::spec::parse_duration(&self.duration.value).map_err(|why| {
            BackendError::Spec {
                what: "duration",
                why,
            }
        })?;
        let note = self
            .comment
            .as_ref()
            .map(|c| render(&c.value))
            .transpose()?
            .unwrap_or_default();
        let comment = format!(
            "oncall incident {}: {note}",
            ctx["incident"]["id"].as_str().unwrap_or_default()
        )
        .trim_end_matches(": ")
        .to_string();
        let base = alertmanager_url(ctx);
        // With live systems, the plan says what silences these alerts now (current → new).
        let now = match with.systems {
            Some(_) => {
                Some(active_silences(&super::http_client(), &base, &found, PLAN_READ_TIMEOUT).await)
            }
            None => None,
        };
        let (mut plan, request) = silence(&base, found, length, comment, with.user)?;
        match now {
            Some(Ok(same)) if same.is_empty() => plan
                .changes
                .push("no active silence has these matchers now".into()),
            Some(Ok(same)) => plan.changes.extend(same.iter().map(|s| {
                format!(
                    "already silenced by {} (by {}) until {}: this one would overlap it",
                    s.id,
                    s.created_by,
                    crate::view::clock_seconds(&s.ends)
                )
            })),
            Some(Err(e)) => plan
                .changes
                .push(format!("the current silences could not be read: {e}")),
            None => {}
        }
        Ok(Prepared::new(plan, super::Request::Alertmanager(request)))
    }

    fn touches(&self, _ctx: &Value) -> Vec<Touch> {
        vec![Touch::sets(SILENCES.into())]
    }
}

impl ActionSpec for ExpireSilence {
    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let (plan, request) = expire(&alertmanager_url(ctx), &with.undo.silences)?;
        Ok(Prepared::new(plan, super::Request::Alertmanager(request)))
    }

    fn touches(&self, _ctx: &Value) -> Vec<Touch> {
        vec![Touch::restores(SILENCES.into())]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unreachable(String),
    #[error("a silence of {0} would end past the last date oncall can write")]
    Duration(String),
    #[error("Alertmanager at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the answer from {url} is not the Alertmanager API: {snippet}")]
    NotAlertmanager { url: String, snippet: String },
    #[error(
        "a silence needs matchers: give `matchers:` or run the runbook from an alert (`oncall run --alert NAME`)"
    )]
    NoMatchers,
    #[error("no silence this incident created is left to expire")]
    NothingToExpire,
}

/// A firing alert: its name, labels and summary, and the silences that hold it (acknowledged).
#[derive(Debug, Clone)]
pub struct Alert {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub starts_at: String,
    pub silenced_by: Vec<String>,
}

/// Which firing alerts to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Not silenced: what a check counts.
    Unacknowledged,
    /// Silenced ones too: what an engineer, or a second responder, may open.
    All,
}

pub async fn firing(
    client: &reqwest::Client,
    base: &str,
    matchers: &BTreeMap<String, String>,
    which: Which,
    timeout: Duration,
) -> Result<Vec<Alert>, Error> {
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let silenced = (which == Which::All).to_string();
    let mut query: Vec<(&str, String)> = vec![
        ("active", "true".into()),
        ("silenced", silenced),
        ("inhibited", "false".into()),
    ];
    for (k, v) in matchers {
        query.push(("filter", format!("{k}=\"{}\"", v.replace('"', "\\\""))));
    }
    let list = get_list(client, &url, &query, timeout).await?;
    let mut alerts: Vec<Alert> = list
        .iter()
        .map(|a| {
            let labels: BTreeMap<String, String> = a["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            Alert {
                name: labels.get("alertname").cloned().unwrap_or_default(),
                summary: a["annotations"]["summary"]
                    .as_str()
                    .or(a["annotations"]["description"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                starts_at: a["startsAt"].as_str().unwrap_or_default().to_string(),
                labels,
                silenced_by: a["status"]["silencedBy"]
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    alerts.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.starts_at.cmp(&b.starts_at))
    });
    Ok(alerts)
}

pub async fn check(
    client: &reqwest::Client,
    base: &str,
    matchers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Reading, super::BackendError> {
    let alerts = firing(client, base, matchers, Which::Unacknowledged, timeout).await?;
    let rows = alerts
        .iter()
        .map(|a| {
            let labels = a
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                a.name.clone().into(),
                a.labels.get("severity").cloned().unwrap_or_default().into(),
                a.starts_at.clone().into(),
                a.summary.clone().into(),
                labels.into(),
            ]
        })
        .collect();
    let columns = ["alert", "severity", "since", "summary", "labels"]
        .map(String::from)
        .to_vec();
    Ok(Reading {
        value: alerts.len().into(),
        table: Some(Table::new(columns, rows)),
        text: None,
        verdict: None,
        took_ms: None,
    })
}

/// A GET that Alertmanager answers with a JSON list.
async fn get_list(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    timeout: Duration,
) -> Result<Vec<Value>, Error> {
    let (body, value) = get_json(client, url, query, timeout).await?;
    serde_json::from_value(value).map_err(|_| Error::NotAlertmanager {
        url: url.to_string(),
        snippet: snippet(&body),
    })
}

/// A GET that Alertmanager answers with 200 and JSON: its text (for errors) and its value.
async fn get_json(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    timeout: Duration,
) -> Result<(String, Value), Error> {
    let unreachable = |e: reqwest::Error| Error::Unreachable(describe_reqwest(&e, url, timeout));
    let response = client
        .get(url)
        .query(query)
        .timeout(timeout)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(unreachable)?;
    if status != 200 {
        return Err(Error::Status {
            url: url.to_string(),
            status,
            body: snippet(&body),
        });
    }
    match serde_json::from_str(&body) {
        Ok(value) => Ok((body, value)),
        Err(_) => Err(Error::NotAlertmanager {
            url: url.to_string(),
            snippet: snippet(&body),
        }),
    }
}

/// Alertmanager's version (`/api/v2/status`), and that its silences can be read: what `oncall
/// doctor` asks, reading only.
pub async fn version(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> Result<String, Error> {
    let url = format!("{}/api/v2/status", base.trim_end_matches('/'));
    let (body, answer) = get_json(client, &url, &[], timeout).await?;
    let version = answer["versionInfo"]["version"]
        .as_str()
        .ok_or_else(|| Error::NotAlertmanager {
            url: url.clone(),
            snippet: snippet(&body),
        })?
        .to_string();
    let silences = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    get_list(client, &silences, &[], timeout).await?;
    Ok(version)
}

/// How long a plan waits to read what it would change.
const PLAN_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// An active silence, as a plan names it.
pub struct Active {
    pub id: String,
    pub created_by: String,
    pub ends: jiff::Timestamp,
}

/// The active silences whose matchers are exactly these (`name="value"`, all equality).
pub async fn active_silences(
    client: &reqwest::Client,
    base: &str,
    matchers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Vec<Active>, Error> {
    let url = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    let list = get_list(client, &url, &[], timeout).await?;
    let same = |silence: &Value| {
        let Some(theirs) = silence["matchers"].as_array() else {
            return false;
        };
        theirs.len() == matchers.len()
            && theirs.iter().all(|m| {
                m["isRegex"] == false
                    && m["isEqual"] != false
                    && m["name"]
                        .as_str()
                        .and_then(|name| matchers.get(name))
                        .is_some_and(|value| m["value"].as_str() == Some(value))
            })
    };
    Ok(list
        .iter()
        .filter(|s| s["status"]["state"] == "active" && same(s))
        .filter_map(|s| {
            Some(Active {
                id: s["id"].as_str()?.to_string(),
                created_by: s["createdBy"].as_str().unwrap_or("?").to_string(),
                ends: s["endsAt"].as_str()?.parse().ok()?,
            })
        })
        .collect())
}

/// A rendered silence or expiry.
pub enum Request {
    Silence { url: String, body: Value },
    Expire { base: String, ids: Vec<String> },
}

pub fn silence(
    base: &str,
    matchers: BTreeMap<String, String>,
    duration: Duration,
    comment: String,
    user: &str,
) -> Result<(Plan, Request), Error> {
    if matchers.is_empty() {
        return Err(Error::NoMatchers);
    }
    let now = jiff::Timestamp::now();
    let ends = jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|length| now.checked_add(length).ok())
        .ok_or_else(|| Error::Duration(super::humanize(duration)))?;
    let matchers_json: Vec<Value> = matchers
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v, "isRegex": false, "isEqual": true }))
        .collect();
    let body = json!({ "matchers": matchers_json, "startsAt": now.to_string(), "endsAt": ends.to_string(), "createdBy": user, "comment": comment });
    let url = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    let list = matchers
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let plan = Plan {
        backend: "alertmanager".into(),
        request: format!("POST {url}"),
        body: Some(body.clone()),
        changes: vec![format!("silence {{{list}}} for {}", humanize(duration))],
        ..Plan::default()
    };
    Ok((plan, Request::Silence { url, body }))
}

/// Expires the silences this incident created and has not expired yet.
pub fn expire(base: &str, ids: &[String]) -> Result<(Plan, Request), Error> {
    let ids = ids.to_vec();
    if ids.is_empty() {
        return Err(Error::NothingToExpire);
    }
    let base = base.trim_end_matches('/').to_string();
    let request = ids
        .iter()
        .map(|id| format!("DELETE {base}/api/v2/silence/{id}"))
        .collect::<Vec<_>>()
        .join("\n");
    let plan = Plan {
        backend: "alertmanager".into(),
        request,
        changes: vec![format!(
            "expire {} silence(s) this incident created",
            ids.len()
        )],
        ..Plan::default()
    };
    Ok((plan, Request::Expire { base, ids }))
}

pub(super) async fn apply(
    client: &reqwest::Client,
    request: &Request,
    timeout: Duration,
) -> Result<Applied, super::BackendError> {
    match request {
        Request::Silence { url, body } => {
            let response = client
                .post(url)
                .json(body)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| Error::Unreachable(describe_reqwest(&e, url, timeout)))?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            if status != 200 {
                return Err(Error::Status {
                    url: url.clone(),
                    status,
                    body: snippet(&text),
                }
                .into());
            }
            let id = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["silenceID"].as_str().map(str::to_string))
                .unwrap_or_default();
            Ok(Applied {
                detail: format!("silence {id} created"),
                effect: Some(Effect::SilenceCreated { id }),
            })
        }
        Request::Expire { base, ids } => {
            for id in ids {
                let url = format!("{base}/api/v2/silence/{id}");
                let response = client
                    .delete(&url)
                    .timeout(timeout)
                    .send()
                    .await
                    .map_err(|e| Error::Unreachable(describe_reqwest(&e, &url, timeout)))?;
                let status = response.status().as_u16();
                if status != 200 {
                    return Err(Error::Status {
                        url,
                        status,
                        body: snippet(&response.text().await.unwrap_or_default()),
                    }
                    .into());
                }
            }
            Ok(Applied {
                detail: format!("expired silence(s) {}", ids.join(", ")),
                effect: Some(Effect::SilencesExpired { ids: ids.clone() }),
            })
        }
    }
}

/// The comment of a silence, as `GET /api/v2/silence/{id}` gives it; None when it cannot be read.
pub async fn silence_comment(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    timeout: Duration,
) -> Option<String> {
    let url = format!(
        "{}/api/v2/silence/{}",
        base.trim_end_matches('/'),
        crate::expr::url_encode(id)
    );
    let response = client.get(&url).timeout(timeout).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body["comment"].as_str().map(str::to_string)
}
