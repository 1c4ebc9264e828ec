//! HTTP: GET and HEAD as checks, POST/PUT/PATCH/DELETE as actions.

use super::kinds::{ActionSpec, CheckSpec, fill};
use super::kube::proxy::{self, Target};
use super::reading::{Reading, Verdict};
use super::{BackendError, Live, Plan, PlanContext, Prepared, describe_reqwest, snippet};
use crate::expr::{self, ExprError};
use crate::redact::{MASK, is_sensitive_header};
use crate::spec::validate::{Validator, json_strings};
use crate::spec::{S, ScalarValue};
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
    /// A service or pod target that is not one: `'k8s://…' is not a service target: …`.
    #[error("{0}")]
    Target(String),
    #[error("the body from {url} is larger than {} MiB, too large to read a JSON field from", super::BODY_LIMIT / 1024 / 1024)]
    TooLarge { url: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// A URL, or `k8s://NAMESPACE/SERVICE:PORT/PATH` through the API server's proxy.
    #[serde(default)]
    pub url: Option<S<String>>,
    /// Instead of `url`: a Kubernetes service (or pod) reached through the API server's proxy.
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub pod: Option<S<String>>,
    #[serde(default)]
    pub port: Option<ScalarValue>,
    #[serde(default)]
    pub path: Option<S<String>>,
    #[serde(default)]
    pub namespace: Option<S<String>>,
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
    #[serde(default)]
    pub url: Option<S<String>>,
    #[serde(default)]
    pub service: Option<S<String>>,
    #[serde(default)]
    pub pod: Option<S<String>>,
    #[serde(default)]
    pub port: Option<ScalarValue>,
    #[serde(default)]
    pub path: Option<S<String>>,
    #[serde(default)]
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

impl CheckSpec for HttpCheck {
    const BACKEND: &'static str = "http";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        self.dest().validate(id, v);
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
        Some(format!("{method} {}", self.dest().shown(ctx)))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        check(&live.client, &live.systems.kube, self, ctx, timeout).await
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
    fn validate(&self, id: &S<String>, v: &mut Validator) {
        self.dest().validate(id, v);
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

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let request = prepare(self, ctx)?;
        let mut plan = request.plan();
        if let Via::Proxy(target) = &request.via
            && let Some(systems) = with.systems
        {
            // The path the API server is asked for, and which cluster that is.
            let ns = systems.kube.default_namespace().await.unwrap_or_default();
            let first = plan.request.lines().next().unwrap_or_default().to_string();
            let proxied = format!("{} {}", request.method, target.api_path(&ns));
            plan.request = plan.request.replacen(&first, &proxied, 1);
            plan.on = Some(format!(
                "{} through the API server: {}",
                target.describe(),
                systems.kube.describe()
            ));
            // A POST to a production cluster's service is a write on that cluster.
            plan.production = systems.kube.production_context();
            // A check of this run was told the service is not there: the request would fail.
            if let Some(message) = systems.kube.proxied_missing(&target.object(&ns)) {
                plan.missing = Some(format!(
                    "not found: {message} (a check of this run got 404 there): this action would fail"
                ));
            }
        }
        Ok(Prepared::new(plan, super::Request::Http(request)))
    }
}

impl HttpCheck {
    fn dest(&self) -> Dest<'_> {
        Dest {
            url: &self.url,
            service: &self.service,
            pod: &self.pod,
            port: &self.port,
            path: &self.path,
            namespace: &self.namespace,
        }
    }
}

impl HttpAction {
    fn dest(&self) -> Dest<'_> {
        Dest {
            url: &self.url,
            service: &self.service,
            pod: &self.pod,
            port: &self.port,
            path: &self.path,
            namespace: &self.namespace,
        }
    }
}

impl HttpCheck {
    /// Where it goes, rendered: a URL, or a service or pod through the API server's proxy.
    pub fn via(&self, ctx: &Value) -> Result<Via, Error> {
        self.dest().render(ctx)
    }

    /// The method it sends (`GET` unless it says).
    pub fn method(&self) -> String {
        self.method
            .as_ref()
            .map_or("GET".into(), |m| m.value.to_ascii_uppercase())
    }
}

impl HttpAction {
    /// Where it goes, rendered: a URL, or a service or pod through the API server's proxy.
    pub fn via(&self, ctx: &Value) -> Result<Via, Error> {
        self.dest().render(ctx)
    }
}

/// Where a request goes, as the runbook says it: a URL, or a service or pod of the cluster.
struct Dest<'a> {
    url: &'a Option<S<String>>,
    service: &'a Option<S<String>>,
    pod: &'a Option<S<String>>,
    port: &'a Option<ScalarValue>,
    path: &'a Option<S<String>>,
    namespace: &'a Option<S<String>>,
}

/// Where a request goes, rendered.
pub enum Via {
    Direct(String),
    Proxy(Target),
}

impl Dest<'_> {
    fn validate(&self, id: &S<String>, v: &mut Validator) {
        let named = [self.url, self.service, self.pod]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if named != 1 {
            v.problem(
                id,
                "http needs exactly one of `url`, `service` and `pod`".into(),
                Some("`url: http://…` (or k8s://NAMESPACE/SERVICE:PORT/PATH), or `service: NAME` with `port:` and `path:`, reached through the API server".into()),
            );
        }
        if self.url.is_some()
            && (self.port.is_some() || self.path.is_some() || self.namespace.is_some())
        {
            v.problem(
                id,
                "`port`, `path` and `namespace` go with `service` or `pod`, not with `url`".into(),
                None,
            );
        }
        if self.url.is_none() && named == 1 && self.port.is_none() {
            v.problem(id, "a service or pod needs its `port:`".into(), None);
        }
        let fields = [
            (self.url, "url"),
            (self.service, "service"),
            (self.pod, "pod"),
            (self.path, "path"),
            (self.namespace, "namespace"),
        ];
        for (field, name) in fields {
            if let Some(field) = field {
                v.template(field, name);
            }
        }
    }

    /// For the screen before the request is rendered.
    fn shown(&self, ctx: &Value) -> String {
        if let Some(url) = self.url {
            return fill(&url.value, ctx);
        }
        let name = self.service.as_ref().or(self.pod.as_ref());
        format!(
            "{}{}/{}{}:{}{}",
            proxy::SCHEME,
            self.namespace
                .as_ref()
                .map(|n| fill(&n.value, ctx))
                .unwrap_or_default(),
            if self.pod.is_some() { "pod/" } else { "" },
            name.map(|n| fill(&n.value, ctx)).unwrap_or_default(),
            self.port.as_ref().map(port_text).unwrap_or_default(),
            self.path
                .as_ref()
                .map(|p| fill(&p.value, ctx))
                .unwrap_or_default(),
        )
    }

    /// The URL (its values percent-encoded), or the service or pod with every name checked.
    fn render(&self, ctx: &Value) -> Result<Via, Error> {
        if let Some(url) = self.url {
            let url = expr::render_url(&url.value, ctx)?;
            crate::redact::register_url(&url);
            return match Target::parse(&url) {
                Some(target) => Ok(Via::Proxy(target.map_err(Error::Target)?)),
                None => Ok(Via::Direct(url)),
            };
        }
        let render = |field: &Option<S<String>>| -> Result<Option<String>, Error> {
            Ok(field
                .as_ref()
                .map(|f| expr::render(&f.value, ctx))
                .transpose()?)
        };
        let (kind, name) = match (render(self.service)?, render(self.pod)?) {
            (Some(service), _) => (proxy::Kind::Service, service),
            (None, Some(pod)) => (proxy::Kind::Pod, pod),
            (None, None) => return Err(Error::Target("no url, service or pod".into())),
        };
        let port = match self.port {
            Some(ScalarValue::Text(template)) => expr::render(template, ctx)?,
            Some(other) => port_text(other),
            None => return Err(Error::Target("no port".into())),
        };
        let path = match self.path {
            Some(path) => expr::render_url(&path.value, ctx)?,
            None => "/".into(),
        };
        Target::new(
            render(self.namespace)?,
            kind,
            name.trim(),
            port.trim(),
            &path,
        )
        .map(Via::Proxy)
        .map_err(Error::Target)
    }
}

fn port_text(port: &ScalarValue) -> String {
    match port {
        ScalarValue::Int(n) => n.to_string(),
        ScalarValue::Text(t) => t.clone(),
        other => format!("{other:?}"),
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

/// A runbook's own Authorization header wins over the URL's user and password (from which
/// reqwest would add a second one): they are dropped, with a warning.
fn credentials(url: String, headers: &[(String, String)]) -> (String, Option<String>) {
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
            (parsed.to_string(), Some(warning))
        }
        _ => (url, None),
    }
}

impl Via {
    /// The destination after the URL's credentials gave way to an Authorization header.
    fn with_headers(self, headers: &[(String, String)]) -> (Via, Option<String>) {
        match self {
            Via::Direct(url) => {
                let (url, warning) = credentials(url, headers);
                (Via::Direct(url), warning)
            }
            proxied => (proxied, None),
        }
    }

    /// What an error message names: the URL, or the service and the proxy.
    fn shown(&self) -> String {
        match self {
            Via::Direct(url) => url.clone(),
            Via::Proxy(target) => target.describe(),
        }
    }

    /// Sends a request and reads its answer: status, body, whether it was read whole.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        kube: Option<&super::kube::Kube>,
        method: &Method,
        headers: &[(String, String)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<super::Body, BackendError> {
        match self {
            Via::Direct(url) => {
                let mut request = client.request(method.clone(), url).timeout(timeout);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                let unreachable =
                    |e: reqwest::Error| Error::Unreachable(describe_reqwest(&e, url, timeout));
                let response = request.send().await.map_err(unreachable)?;
                Ok(super::read_body(response).await.map_err(unreachable)?)
            }
            Via::Proxy(target) => {
                // The API server takes these for itself (the kubeconfig's credentials win):
                // they would never reach the service, so they are not sent at all.
                if let Some((name, _)) = headers.iter().find(|(name, _)| {
                    let name = name.to_ascii_lowercase();
                    name == "authorization"
                        || name == "proxy-authorization"
                        || name.starts_with("impersonate-")
                }) {
                    return Err(Error::Target(format!(
                        "the header {name} cannot go through the API server's proxy: the API server authenticates with the kubeconfig's credentials and does not pass it on; use a direct URL for {}",
                        target.describe()
                    ))
                    .into());
                }
                let kube = kube.ok_or(BackendError::NoSystems)?;
                let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
                Ok(proxy::send(kube, method, target, headers, body, timeout)
                    .await?
                    .body)
            }
        }
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
    kube: &super::kube::Kube,
    spec: &HttpCheck,
    ctx: &Value,
    timeout: Duration,
) -> Result<Reading, BackendError> {
    let headers = headers(&spec.headers, ctx)?;
    let (via, warning) = spec.dest().render(ctx)?.with_headers(&headers);
    let method = spec
        .method
        .as_ref()
        .map(|m| m.value.as_str())
        .unwrap_or("GET");
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| Error::BadMethod(method.into()))?;
    let super::Body {
        status,
        text: body,
        complete,
    } = via
        .exchange(client, Some(kube), &method, &headers, None, timeout)
        .await?;
    let url = via.shown();
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
            return Err(Error::TooLarge { url }.into());
        }
        let Ok(json) = serde_json::from_str::<Value>(&body) else {
            return Err(Error::NotJson {
                url,
                status,
                snippet: snippet(&body),
            }
            .into());
        };
        let Some(value) = field(&json, path) else {
            return Err(Error::MissingField {
                url,
                path: path.clone(),
                snippet: snippet(&body),
            }
            .into());
        };
        reading.value = value.clone();
    }
    Ok(reading)
}

/// A rendered mutating request.
pub struct Request {
    method: Method,
    via: Via,
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
    let (via, warning) = spec.dest().render(ctx)?.with_headers(&headers);
    Ok(Request {
        method,
        via,
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
            via: Via::Direct(url),
            warning: None,
            body: Some(body),
            headers: Vec::new(),
            expect: Vec::new(),
        }
    }

    pub fn plan(&self) -> Plan {
        let shown = match &self.via {
            Via::Direct(url) => url.clone(),
            Via::Proxy(target) => target.url(),
        };
        let mut request = format!("{} {shown}", self.method);
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
        kube: Option<&super::kube::Kube>,
        timeout: Duration,
    ) -> Result<String, BackendError> {
        let answer = self
            .via
            .exchange(
                client,
                kube,
                &self.method,
                &self.headers,
                self.body.as_ref(),
                timeout,
            )
            .await?;
        let detail = format!("HTTP {} {}", answer.status, snippet(&answer.text))
            .trim_end()
            .to_string();
        if expected(answer.status, &self.expect) {
            Ok(detail)
        } else {
            Err(Error::UnexpectedStatus(detail).into())
        }
    }
}
