//! Prometheus instant and range queries: scalar, vector and matrix results, errors in words.

use super::kinds::{CheckSpec, fill};
use super::kube::proxy;
use super::reading::{Reading, Table, Verdict, number};
use super::{BODY_LIMIT, BackendError, Live, describe_reqwest, read_body, snippet};
use crate::expr;
use crate::spec::S;
use crate::spec::validate::Validator;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: refused, timed out, an invalid URL (see `describe_reqwest`).
    #[error("{0}")]
    Unreachable(String),
    #[error(
        "the answer from {url} is not the Prometheus API (HTTP {status}, {content_type}: {snippet})"
    )]
    NotPrometheusApi {
        url: String,
        status: u16,
        content_type: String,
        snippet: String,
    },
    #[error("Prometheus rejected the query (HTTP {status}, {kind}): {message}")]
    Rejected {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("the answer from {url} has no data")]
    NoData { url: String },
    #[error("the answer from {url} is larger than {} MiB: narrow the query (aggregate, or filter by label)", BODY_LIMIT / 1024 / 1024)]
    TooLarge { url: String },
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected { url: String, reason: String },
}

/// `prometheus: QUERY`: an instant query, its templates filled in.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Query(pub S<String>);

impl CheckSpec for Query {
    const BACKEND: &'static str = "prometheus";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        validate_query(&self.0, v);
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        Some(format!("prometheus: {}", fill(&self.0.value, ctx)))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let text = expr::render(&self.0.value, ctx)?;
        let (content_type, body, url) = get(
            &live.client,
            &live.systems.kube,
            &live.prometheus_url,
            "query",
            &[("query", text)],
            timeout,
        )
        .await?;
        Ok(judge(url, content_type, body, parse)?)
    }
}

/// `prometheus_range: { query, since, step }`: a range query over the last `since` (default 24h),
/// one point every `step` (default 5m). The seed's "when did errors start increasing?": write the
/// query as a filter (`… > 1`) and the answer is when it first held.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub query: S<String>,
    #[serde(default)]
    pub since: Option<S<String>>,
    #[serde(default)]
    pub step: Option<S<String>>,
}

const DEFAULT_RANGE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_STEP: Duration = Duration::from_secs(300);
/// Prometheus refuses a range query of more points than this per series.
const MAX_POINTS: u64 = 11_000;

impl RangeQuery {
    fn window(&self) -> (Duration, Duration) {
        let parse = |at: &Option<S<String>>, default| {
            at.as_ref()
                .and_then(|s| crate::spec::parse_duration(&s.value).ok())
                .unwrap_or(default)
        };
        (
            parse(&self.since, DEFAULT_RANGE),
            parse(&self.step, DEFAULT_STEP),
        )
    }
}

impl CheckSpec for RangeQuery {
    const BACKEND: &'static str = "prometheus";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        validate_query(&self.query, v);
        if let Some(since) = &self.since {
            v.duration(since, "`since`", crate::spec::bounds::SINCE);
        }
        if let Some(step) = &self.step {
            v.duration(step, "`step`", crate::spec::bounds::STEP);
        }
        let (range, step) = self.window();
        let points = range.as_secs() / step.as_secs().max(1);
        if points > MAX_POINTS {
            let at = self
                .step
                .as_ref()
                .or(self.since.as_ref())
                .unwrap_or(&self.query);
            v.problem(
                at,
                format!("{points} points per series: Prometheus answers at most {MAX_POINTS}"),
                Some("a longer `step` or a shorter `since`".into()),
            );
        }
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let written = |at: &Option<S<String>>, default: &'static str| {
            at.as_ref()
                .map_or(default, |s| s.value.as_str())
                .to_string()
        };
        Some(format!(
            "prometheus: {} over the last {}, every {}",
            fill(&self.query.value, ctx),
            written(&self.since, "24h"),
            written(&self.step, "5m")
        ))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let text = expr::render(&self.query.value, ctx)?;
        let (range, step) = self.window();
        let now = jiff::Timestamp::now().as_second();
        let params = [
            ("query", text),
            ("start", (now - range.as_secs() as i64).to_string()),
            ("end", now.to_string()),
            ("step", step.as_secs().max(1).to_string()),
        ];
        let (content_type, body, url) = get(
            &live.client,
            &live.systems.kube,
            &live.prometheus_url,
            "query_range",
            &params,
            timeout,
        )
        .await?;
        Ok(judge(url, content_type, body, |kind, result| {
            parse_matrix(kind, result, now)
        })?)
    }
}

/// A query template: its values escaped in label matchers, within the parser's limits, valid PromQL.
fn validate_query(at: &S<String>, v: &mut Validator) {
    v.template(at, "query");
    if let Some(offset) = expr::unescaped_matcher_value(&at.value) {
        v.problem_inside(
            at,
            1,
            offset,
            "a template value inside a label matcher without `promql_str`: a value with a quote would rewrite the query".into(),
            "write it in double quotes and escape it: namespace=\"{{ params.namespace | promql_str }}\"",
        );
    }
    let Some(query) = v.trial_render(&at.value) else {
        return;
    };
    if let Err(why) = within_limits(&query) {
        v.problem(
            at,
            format!("the query is too large to check: {why}"),
            Some("split it into several checks, or record it as a rule in Prometheus".into()),
        );
        return;
    }
    if let Err(err) = promql_parser::parser::parse(&query) {
        let message = err.lines().next().unwrap_or_default().to_string();
        v.problem(
            at,
            format!("invalid PromQL: {message}"),
            Some(format!("the query as sent: {}", snippet(&query))),
        );
    }
}

/// The longest query `validate` parses, and how deep its brackets may nest: the PromQL parser
/// recurses on nesting and slows down more than linearly on length.
const MAX_PROMQL: usize = 8 * 1024;
const MAX_PROMQL_NESTING: usize = 64;

fn within_limits(query: &str) -> Result<(), String> {
    if query.len() > MAX_PROMQL {
        return Err(format!("{} bytes, at most {MAX_PROMQL}", query.len()));
    }
    let mut depth = 0usize;
    for c in query.bytes() {
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_PROMQL_NESTING {
                    return Err(format!(
                        "brackets nest more than {MAX_PROMQL_NESTING} levels deep"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: serde_json::Map<String, Value>,
    value: (f64, String),
}

/// A GET of `/api/v1/{api}` (query, query_range) with its parameters: the content type, the body
/// and the URL, for `judge`. A base written `k8s://NAMESPACE/SERVICE:PORT` is reached through the
/// Kubernetes API server's proxy, as the seed's `kubectl exec … curl localhost:9090` does.
async fn get(
    client: &reqwest::Client,
    kube: &super::kube::Kube,
    base: &str,
    api: &str,
    params: &[(&str, String)],
    timeout: Duration,
) -> Result<(String, super::Body, String), BackendError> {
    let url = format!("{}/api/v1/{api}", base.trim_end_matches('/'));
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", expr::url_encode(v)))
        .collect();
    let proxied = format!("{url}?{}", encoded.join("&"));
    let (content_type, body) = match proxy::Target::parse(&proxied) {
        Some(target) => {
            let target = target.map_err(|why| BackendError::Spec {
                what: "Prometheus URL",
                why,
            })?;
            let answer =
                proxy::send(kube, &reqwest::Method::GET, &target, &[], None, timeout).await?;
            (answer.content_type, answer.body)
        }
        None => {
            let unreachable =
                |e: reqwest::Error| Error::Unreachable(describe_reqwest(&e, &url, timeout));
            let response = client
                .get(&url)
                .query(params)
                .timeout(timeout)
                .send()
                .await
                .map_err(unreachable)?;
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type")
                .to_string();
            (
                content_type,
                read_body(response).await.map_err(unreachable)?,
            )
        }
    };
    Ok((content_type, body, url))
}

/// The server's version (`/api/v1/status/buildinfo`) and that it answers an instant query, as
/// a check would send it (direct or through the API server's proxy): what `oncall doctor` asks.
pub async fn version(
    client: &reqwest::Client,
    kube: &super::kube::Kube,
    base: &str,
    timeout: Duration,
) -> Result<String, BackendError> {
    let (content_type, body, url) = get(
        client,
        kube,
        base,
        "query",
        &[("query", "vector(1)".into())],
        timeout,
    )
    .await?;
    judge(url, content_type, body, parse)?;
    let (_, body, _) = get(client, kube, base, "status/buildinfo", &[], timeout).await?;
    let answer: Value = serde_json::from_str(&body.text).unwrap_or(Value::Null);
    // Servers that speak the query API but not this endpoint (Thanos, some proxies) still work.
    Ok(answer["data"]["version"]
        .as_str()
        .map_or_else(|| "unknown (no buildinfo)".to_string(), str::to_string))
}

/// The alerting rules Prometheus has loaded (`/api/v1/rules?type=alert`): each name with its
/// health (`ok`, `err`, `unknown`) and last error, for `oncall doctor`.
pub async fn alert_rules(
    client: &reqwest::Client,
    kube: &super::kube::Kube,
    base: &str,
    timeout: Duration,
) -> Result<std::collections::BTreeMap<String, (String, Option<String>)>, BackendError> {
    let params = [("type", "alert".to_string())];
    let (_, body, url) = get(client, kube, base, "rules", &params, timeout).await?;
    let answer: Value = serde_json::from_str(&body.text).map_err(|_| Error::Unexpected {
        url: url.clone(),
        reason: format!("HTTP {}: {}", body.status, snippet(&body.text)),
    })?;
    let Some(groups) = answer["data"]["groups"].as_array() else {
        return Err(Error::Unexpected {
            url,
            reason: format!("HTTP {}: {}", body.status, snippet(&body.text)),
        }
        .into());
    };
    let mut rules = std::collections::BTreeMap::new();
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
    {
        if let Some(name) = rule["name"].as_str() {
            let health = rule["health"].as_str().unwrap_or("unknown").to_string();
            let error = rule["lastError"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(str::to_string);
            // A rule defined twice: an unhealthy copy is worth saying.
            let keep = rules
                .get(name)
                .is_none_or(|(h, _): &(String, Option<String>)| h == "ok");
            if keep {
                rules.insert(name.to_string(), (health, error));
            }
        }
    }
    Ok(rules)
}

/// What Prometheus answered, as a reading (`parse` reads its result) or the error it is.
fn judge(
    url: String,
    content_type: String,
    body: super::Body,
    parse: impl FnOnce(&str, Value) -> Result<Reading, String>,
) -> Result<Reading, Error> {
    if !body.complete {
        return Err(Error::TooLarge { url });
    }
    let status = body.status;
    let body = body.text;
    let Ok(answer) = serde_json::from_str::<Answer>(&body) else {
        return Err(Error::NotPrometheusApi {
            url,
            status,
            content_type,
            snippet: snippet(&body),
        });
    };
    if answer.status != "success" {
        return Err(Error::Rejected {
            status,
            kind: answer.error_type.unwrap_or_else(|| "error".into()),
            message: answer.error.unwrap_or_else(|| "no message".into()),
        });
    }
    let Some(data) = answer.data else {
        return Err(Error::NoData { url });
    };
    parse(&data.result_type, data.result).map_err(|reason| Error::Unexpected { url, reason })
}

// The parsers below say what is wrong in words; `query` wraps them in `Error::Unexpected`.

fn parse_sample(text: &str) -> Result<f64, String> {
    // Prometheus writes NaN, +Inf and -Inf as strings.
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| format!("'{other}' is not a sample value")),
    }
}

fn parse(result_type: &str, result: Value) -> Result<Reading, String> {
    match result_type {
        "scalar" => {
            let (_, text): (f64, String) =
                serde_json::from_value(result).map_err(|e| e.to_string())?;
            Ok(Reading {
                value: number(parse_sample(&text)?),
                ..Reading::default()
            })
        }
        "vector" => {
            let series: Vec<Series> = serde_json::from_value(result).map_err(|e| e.to_string())?;
            vector(series)
        }
        other => Err(format!(
            "a {other} result; write an instant query that returns a scalar or a vector"
        )),
    }
}

fn vector(series: Vec<Series>) -> Result<Reading, String> {
    if series.is_empty() {
        return Ok(Reading {
            verdict: Some((
                Verdict::Warn,
                "no data: the query returned no series".into(),
            )),
            ..Reading::default()
        });
    }
    let labels: BTreeSet<String> = series
        .iter()
        .flat_map(|s| s.metric.keys().cloned())
        .collect();
    let mut columns: Vec<String> = labels.into_iter().filter(|l| l != "__name__").collect();
    let values: Vec<f64> = series
        .iter()
        .map(|s| parse_sample(&s.value.1))
        .collect::<Result<_, _>>()?;
    if series.len() == 1 && columns.is_empty() {
        return Ok(Reading {
            value: number(values[0]),
            ..Reading::default()
        });
    }
    let rows = series
        .iter()
        .zip(&values)
        .map(|(s, v)| {
            let mut row: Vec<Value> = columns
                .iter()
                .map(|c| s.metric.get(c).cloned().unwrap_or(Value::Null))
                .collect();
            row.push(number(*v));
            row
        })
        .collect();
    columns.push("value".into());
    // A single labelled series still has one value to compare.
    let value = if values.len() == 1 {
        number(values[0])
    } else {
        Value::Null
    };
    Ok(Reading {
        value,
        table: Some(Table::new(columns, rows)),
        ..Reading::default()
    })
}

#[derive(Deserialize)]
struct RangeSeries {
    #[serde(default)]
    metric: serde_json::Map<String, Value>,
    values: Vec<(f64, String)>,
}

/// A range query's answer: for each series, when it first and last had a point (a filter such as
/// `… > 1` has points only while it held), and its largest value. `value` is how many minutes
/// ago the earliest series began; `text` says when, in UTC.
fn parse_matrix(result_type: &str, result: Value, now: i64) -> Result<Reading, String> {
    if result_type != "matrix" {
        return Err(format!("a {result_type} result to a range query"));
    }
    let series: Vec<RangeSeries> = serde_json::from_value(result).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for s in &series {
        let mut points = Vec::new();
        for (t, v) in &s.values {
            let v = parse_sample(v)?;
            if v.is_finite() {
                points.push((*t, v));
            }
        }
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            let max = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            found.push((s, first.0, last.0, points.len(), max));
        }
    }
    let Some(earliest) = found.iter().map(|f| f.1).reduce(f64::min) else {
        return Ok(Reading {
            verdict: Some((
                Verdict::Warn,
                "no data: the query had no point in the range".into(),
            )),
            ..Reading::default()
        });
    };
    let minutes_ago = |t: f64| ((now as f64 - t) / 60.0).round().max(0.0);
    let at = |t: f64| {
        jiff::Timestamp::from_second(t as i64)
            .map(|ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| t.to_string())
    };
    let latest = found.iter().map(|f| f.2).fold(f64::MIN, f64::max);
    let text = format!(
        "first at {} ({} min ago), last at {}",
        at(earliest),
        minutes_ago(earliest),
        at(latest)
    );
    let labels: BTreeSet<String> = found
        .iter()
        .flat_map(|f| f.0.metric.keys().cloned())
        .filter(|l| l != "__name__")
        .collect();
    let mut columns: Vec<String> = labels.into_iter().collect();
    let rows = found
        .iter()
        .map(|(s, first, last, n, max)| {
            let mut row: Vec<Value> = columns
                .iter()
                .map(|c| s.metric.get(c).cloned().unwrap_or(Value::Null))
                .collect();
            row.extend([
                Value::from(at(*first)),
                Value::from(at(*last)),
                Value::from(*n),
                number(*max),
                number(minutes_ago(*first)),
            ]);
            row
        })
        .collect();
    columns.extend(["first", "last", "points", "max", "value"].map(String::from));
    Ok(Reading {
        value: number(minutes_ago(earliest)),
        text: Some(text),
        table: Some(Table::new(columns, rows)),
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_become_rows_sorted_by_label_columns() {
        let result = json!([
            {"metric": {"error_type": "timeout"}, "value": [1.0, "0.13"]},
            {"metric": {"error_type": "gpu_oom"}, "value": [1.0, "0.06"]}
        ]);
        let reading = parse("vector", result).unwrap();
        let table = reading.table.unwrap();
        assert_eq!(table.columns, vec!["error_type", "value"]);
        assert_eq!(table.rows[1], vec![json!("gpu_oom"), json!(0.06)]);
        assert!(reading.value.is_null());
    }

    #[test]
    fn an_unlabelled_single_series_is_a_value() {
        let reading = parse("vector", json!([{"metric": {}, "value": [1.0, "3"]}])).unwrap();
        assert_eq!(reading.value, json!(3.0));
        assert!(reading.table.is_none());
    }

    #[test]
    fn a_matrix_says_when_each_series_began_and_the_earliest_is_the_value() {
        let now = 1_800_000_000;
        let result = json!([
            {"metric": {"job": "a"}, "values": [[1_799_992_800.0, "2.5"], [1_799_993_100.0, "3"]]},
            {"metric": {"job": "b"}, "values": [[1_799_996_400.0, "1.5"], [1_799_996_700.0, "NaN"]]}
        ]);
        let reading = parse_matrix("matrix", result, now).unwrap();
        assert_eq!(reading.value, json!(120.0), "the earliest began 2h ago");
        let table = reading.table.unwrap();
        assert_eq!(
            table.columns,
            vec!["job", "first", "last", "points", "max", "value"]
        );
        assert_eq!(table.rows[0][3], json!(2));
        assert_eq!(table.rows[0][4], json!(3.0));
        assert_eq!(table.rows[1][3], json!(1), "NaN is no point");
        assert_eq!(table.rows[1][5], json!(60.0));
        assert!(reading.text.unwrap().starts_with("first at 2027-01-15 06:"));
        let none = parse_matrix("matrix", json!([]), now).unwrap();
        assert_eq!(none.verdict.unwrap().0, Verdict::Warn);
        assert!(parse_matrix("vector", json!([]), now).is_err());
    }

    #[test]
    fn empty_vectors_warn_of_no_data() {
        let reading = parse("vector", json!([])).unwrap();
        assert_eq!(reading.verdict.unwrap().0, Verdict::Warn);
    }
}
