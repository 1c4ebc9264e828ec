//! HTTP: GET and HEAD as checks, POST/PUT/PATCH/DELETE as actions.

use super::kinds::{ActionSpec, CheckSpec, fill};
use super::reading::{Reading, Verdict};
use super::{BackendError, Live, Plan, PlanContext, Prepared, describe_reqwest, snippet};
use crate::expr::{self, ExprError};
use crate::redact::{MASK, is_sensitive_header};
use crate::spec::S;
use crate::spec::validate::{Validator, json_strings};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: refused, timed out, an invalid URL (see `describe_reqwest`).
    #[error("{0}")]
    Unreachable(String),
    #[error("{url} answered HTTP {status} but not JSON: {snippet}")]
    NotJson {
        url: String,
        status: u16,
        snippet: String,
    },
    #[error("{url} answered without the JSON field '{path}': {snippet}")]
    MissingField {
        url: String,
        path: String,
        snippet: String,
    },
    #[error("bad method {0}")]
    BadMethod(String),
    /// An action answered with a status it does not expect: "HTTP 409 <body>".
    #[error("{0}")]
    UnexpectedStatus(String),
    #[error("template: {0}")]
    Template(#[from] ExprError),
    #[error("the body from {url} is larger than {} MiB, too large to read a JSON field from", super::BODY_LIMIT / 1024 / 1024)]
    TooLarge { url: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: S<String>,
    #[serde(default)]
    pub method: Option<S<String>>,
    /// Expected status codes; any other fails the check. Default: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Dotted path of a JSON field in the body to use as the value (`status`, `checks.db`).
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    pub method: S<String>,
    pub url: S<String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

impl CheckSpec for HttpCheck {
    const BACKEND: &'static str = "http";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.template(&self.url, "url");
        for header in self.headers.values() {
            v.template(header, "header");
        }
        if let Some(method) = &self.method
            && !matches!(method.value.as_str(), "GET" | "HEAD")
        {
            v.problem(
                method,
                format!(
                    "a check only reads: method '{}' is not allowed",
                    method.value
                ),
                Some("use GET or HEAD; put POST, PUT, PATCH and DELETE under `actions:`".into()),
            );
        }
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let method = self.method.as_ref().map_or("GET", |m| m.value.as_str());
        Some(format!("{method} {}", fill(&self.url.value, ctx)))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        Ok(check(&live.client, self, ctx, timeout).await?)
    }

    /// A drill's status is judged as a live one is.
    fn replay(&self, reading: &mut Reading) {
        if let Some(status) = reading.value.as_u64()
            && let Some(why) = unexpected(status as u16, &self.expect_status)
        {
            reading.verdict = Some((Verdict::Fail, why));
        }
    }
}

impl ActionSpec for HttpAction {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.template(&self.url, "url");
        for text in self.body.iter().flat_map(json_strings) {
            // A body has no positions of its own: point at the method of its request.
            let at = S::new(text, self.method.referenced, self.method.defined);
            v.template(&at, "body");
        }
        for header in self.headers.values() {
            v.template(header, "header");
        }
        if !matches!(
            self.method.value.as_str(),
            "POST" | "PUT" | "PATCH" | "DELETE"
        ) {
            v.problem(
                &self.method,
                format!(
                    "an action changes something: method '{}' is not allowed",
                    self.method.value
                ),
                Some("use POST, PUT, PATCH or DELETE; reads belong under `checks:`".into()),
            );
        }
    }

    async fn prepare(
        &self,
        ctx: &Value,
        _with: &PlanContext<'_>,
    ) -> Result<Prepared, BackendError> {
        let request = prepare(self, ctx)?;
        Ok(Prepared::new(request.plan(), super::Request::Http(request)))
    }
}

/// The headers as sent; a credential among them is masked wherever it comes back.
fn headers(
    spec: &BTreeMap<String, S<String>>,
    ctx: &Value,
) -> Result<Vec<(String, String)>, ExprError> {
    spec.iter()
        .map(|(name, template)| {
            let value = expr::render(&template.value, ctx)?;
            if is_sensitive_header(name) {
                crate::redact::register_credential(&value);
            }
            Ok((name.clone(), value))
        })
        .collect()
}

/// The URL as sent, its values percent-encoded. Its password is masked wherever it comes back.
/// A runbook's own Authorization header wins over the URL's user and password (from which
/// reqwest would add a second one): they are dropped, with a warning.
fn target(
    template: &str,
    ctx: &Value,
    headers: &[(String, String)],
) -> Result<(String, Option<String>), ExprError> {
    let url = expr::render_url(template, ctx)?;
    crate::redact::register_url(&url);
    let authorization = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    match url::Url::parse(&url) {
        Ok(mut parsed)
            if authorization && (!parsed.username().is_empty() || parsed.password().is_some()) =>
        {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let warning = "warning: the runbook's Authorization header is sent, not the user and password in the URL".to_string();
            Ok((parsed.to_string(), Some(warning)))
        }
        _ => Ok((url, None)),
    }
}

/// Why a status fails a check, live or in a drill: `HTTP 503, expected 2xx`.
pub fn unexpected(status: u16, expect: &[u16]) -> Option<String> {
    if expected(status, expect) {
        return None;
    }
    let want = if expect.is_empty() {
        "2xx".to_string()
    } else {
        format!("{expect:?}")
    };
    Some(format!("HTTP {status}, expected {want}"))
}

pub fn expected(status: u16, expect: &[u16]) -> bool {
    if expect.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.contains(&status)
    }
}

fn field<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        other => other.get(key),
    })
}

pub async fn check(
    client: &reqwest::Client,
    spec: &HttpCheck,
    ctx: &Value,
    timeout: Duration,
) -> Result<Reading, Error> {
    let headers = headers(&spec.headers, ctx)?;
    let (url, warning) = target(&spec.url.value, ctx, &headers)?;
    let method = spec
        .method
        .as_ref()
        .map(|m| m.value.as_str())
        .unwrap_or("GET");
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| Error::BadMethod(method.into()))?;
    let mut request = client.request(method, &url).timeout(timeout);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Unreachable(describe_reqwest(&e, &url, timeout)))?;
    let status = response.status().as_u16();
    let super::Body {
        text: body,
        complete,
    } = super::read_body(response)
        .await
        .map_err(|e| Error::Unreachable(describe_reqwest(&e, &url, timeout)))?;
    let text = format!("HTTP {status} {}", snippet(&body));
    let mut reading = Reading {
        value: status.into(),
        text: Some(match warning {
            Some(warning) => format!("{warning}\n{text}"),
            None => text,
        }),
        ..Reading::default()
    };
    if let Some(why) = unexpected(status, &spec.expect_status) {
        reading.verdict = Some((Verdict::Fail, why));
        return Ok(reading);
    }
    if let Some(path) = &spec.json {
        if !complete {
            return Err(Error::TooLarge { url });
        }
        let Ok(json) = serde_json::from_str::<Value>(&body) else {
            return Err(Error::NotJson {
                url,
                status,
                snippet: snippet(&body),
            });
        };
        let Some(value) = field(&json, path) else {
            return Err(Error::MissingField {
                url,
                path: path.clone(),
                snippet: snippet(&body),
            });
        };
        reading.value = value.clone();
    }
    Ok(reading)
}

/// A rendered mutating request.
pub struct Request {
    method: Method,
    url: String,
    warning: Option<String>,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    expect: Vec<u16>,
}

fn prepare(spec: &HttpAction, ctx: &Value) -> Result<Request, Error> {
    let method = Method::from_bytes(spec.method.value.as_bytes())
        .map_err(|_| Error::BadMethod(spec.method.value.clone()))?;
    let body = match &spec.body {
        Some(body) => Some(render_json(body, ctx)?),
        None => None,
    };
    let headers = headers(&spec.headers, ctx)?;
    let (url, warning) = target(&spec.url.value, ctx, &headers)?;
    Ok(Request {
        method,
        url,
        warning,
        body,
        headers,
        expect: spec.expect_status.clone(),
    })
}

/// Renders templates inside every string of a JSON body.
pub(super) fn render_json(value: &Value, ctx: &Value) -> Result<Value, ExprError> {
    Ok(match value {
        Value::String(s) => Value::String(expr::render(s, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        other => other.clone(),
    })
}

impl Request {
    /// A JSON POST that expects any 2xx: what a webhook or an events API takes.
    pub(super) fn post_json(url: String, body: Value) -> Request {
        Request {
            method: Method::POST,
            url,
            warning: None,
            body: Some(body),
            headers: Vec::new(),
            expect: Vec::new(),
        }
    }

    pub fn plan(&self) -> Plan {
        let mut request = format!("{} {}", self.method, self.url);
        for (name, value) in &self.headers {
            let value = if is_sensitive_header(name) {
                MASK
            } else {
                value.as_str()
            };
            request.push_str(&format!("\n{name}: {value}"));
        }
        Plan {
            backend: "http".into(),
            request,
            body: self.body.clone(),
            changes: self.warning.iter().cloned().collect(),
            ..Plan::default()
        }
    }

    pub(super) async fn send(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<String, Error> {
        let mut request = client
            .request(self.method.clone(), &self.url)
            .timeout(timeout);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Unreachable(describe_reqwest(&e, &self.url, timeout)))?;
        let status = response.status().as_u16();
        let body = super::read_body(response)
            .await
            .map(|b| b.text)
            .unwrap_or_default();
        let detail = format!("HTTP {status} {}", snippet(&body))
            .trim_end()
            .to_string();
        if expected(status, &self.expect) {
            Ok(detail)
        } else {
            Err(Error::UnexpectedStatus(detail))
        }
    }
}
