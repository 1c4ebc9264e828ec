//! HTTP: GET and HEAD as checks, POST/PUT/PATCH/DELETE as actions.

use super::{describe_reqwest, render, snippet};
use crate::engine::event::Plan;
use crate::engine::observation::{Reading, Verdict};
use crate::redact::{MASK, is_sensitive_header};
use crate::runbook::{HttpAction, HttpCheck};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn headers(
    spec: &BTreeMap<String, crate::runbook::S<String>>,
    ctx: &Value,
) -> Result<Vec<(String, String)>, String> {
    spec.iter()
        .map(|(k, v)| Ok((k.clone(), render(&v.value, ctx)?)))
        .collect()
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
) -> Result<Reading, String> {
    let url = render(&spec.url.value, ctx)?;
    let method = spec
        .method
        .as_ref()
        .map(|m| m.value.as_str())
        .unwrap_or("GET");
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| format!("bad method {method}"))?;
    let mut request = client.request(method, &url).timeout(timeout);
    for (name, value) in headers(&spec.headers, ctx)? {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| describe_reqwest(&e, &url, timeout))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| describe_reqwest(&e, &url, timeout))?;
    let mut reading = Reading {
        value: status.into(),
        text: Some(format!("HTTP {status} {}", snippet(&body))),
        ..Reading::default()
    };
    if !expected(status, &spec.expect_status) {
        let want = if spec.expect_status.is_empty() {
            "2xx".to_string()
        } else {
            format!("{:?}", spec.expect_status)
        };
        reading.verdict = Some((Verdict::Fail, format!("HTTP {status}, expected {want}")));
        return Ok(reading);
    }
    if let Some(path) = &spec.json {
        let json: Value = serde_json::from_str(&body).map_err(|_| {
            format!(
                "{url} answered HTTP {status} but not JSON: {}",
                snippet(&body)
            )
        })?;
        reading.value = field(&json, path).cloned().ok_or_else(|| {
            format!(
                "{url} answered without the JSON field '{path}': {}",
                snippet(&body)
            )
        })?;
    }
    Ok(reading)
}

/// A rendered mutating request.
pub struct Request {
    method: Method,
    url: String,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    expect: Vec<u16>,
}

pub fn prepare(spec: &HttpAction, ctx: &Value) -> Result<Request, String> {
    let method = Method::from_bytes(spec.method.value.as_bytes())
        .map_err(|_| format!("bad method {}", spec.method.value))?;
    let body = match &spec.body {
        Some(body) => Some(render_json(body, ctx)?),
        None => None,
    };
    Ok(Request {
        method,
        url: render(&spec.url.value, ctx)?,
        body,
        headers: headers(&spec.headers, ctx)?,
        expect: spec.expect_status.clone(),
    })
}

/// Renders templates inside every string of a JSON body.
fn render_json(value: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(render(s, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

impl Request {
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
            changes: vec![],
        }
    }

    pub async fn send(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<String, String> {
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
            .map_err(|e| describe_reqwest(&e, &self.url, timeout))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let detail = format!("HTTP {status} {}", snippet(&body))
            .trim_end()
            .to_string();
        if expected(status, &self.expect) {
            Ok(detail)
        } else {
            Err(detail)
        }
    }
}
