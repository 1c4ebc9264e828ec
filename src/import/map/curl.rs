//! `curl`: a Prometheus query becomes a `prometheus` check, an Alertmanager silence a `silence`
//! action, a GET or HEAD an `http` check, and a POST, PUT, PATCH or DELETE an `http` action
//! against an endpoint named after the host.

use super::{Args, Ctx, Mapped, Native, literal};
use crate::import::shell::Word;
use crate::import::yaml::Y;
use crate::import::{readonly, secret};

pub const WITH_VALUE: &[&str] = &[
    "-X",
    "--request",
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-urlencode",
    "-H",
    "--header",
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-b",
    "--cookie",
    "-T",
    "--upload-file",
    "-F",
    "--form",
    "--retry",
    "--url",
];
/// Flags that change nothing a native request needs to say.
const HARMLESS: &[&str] = &[
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-f",
    "--fail",
    "--fail-with-body",
    "-L",
    "--location",
    "-k",
    "--insecure",
    "-v",
    "--verbose",
    "-i",
    "--include",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "-w",
    "--write-out",
    "-A",
    "--user-agent",
    "-I",
    "--head",
    "-X",
    "--request",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-raw",
    "-g",
    "--globoff",
    "--compressed",
    "--url",
];

pub fn map(words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    let args = Args::read(words, WITH_VALUE);
    let request = Request::read(&args, filters)?;
    if let Some(query) = prometheus_query(&request.url) {
        return (request.method == "GET").then(|| {
            let name = format!("query_{}", super::ident(&query));
            Mapped::one(Native::check("prometheus", name, Y::str(literal(&query))))
        });
    }
    if request.method == "POST" && is_silence(&request.url) {
        return Some(Mapped::one(silence(ctx)));
    }
    http(request, ctx, None)
}

/// The request a curl command line makes.
pub struct Request {
    pub method: String,
    pub url: url::Url,
    pub body: Option<serde_json::Value>,
    pub headers: Vec<(String, String)>,
    pub fail: bool,
}

impl Request {
    pub fn read(args: &Args, filters: &[Vec<Word>]) -> Option<Request> {
        // Output filtered through `jq` or `grep` asks something a status code does not answer.
        if !filters.is_empty() || !args.others(HARMLESS).is_empty() {
            return None;
        }
        let [url] = args.pos.as_slice() else {
            return None;
        };
        let url = args.get(&["--url"]).unwrap_or(url);
        let url = url::Url::parse(url).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return None;
        }
        // A server may take `X-HTTP-Method-Override: DELETE` or `?_method=DELETE` on a GET as a
        // DELETE: such a request stays shell, asked first, with why.
        let overridden = args
            .flags
            .iter()
            .any(|(n, h)| (n == "-H" || n == "--header") && readonly::method_override(h))
            || url.query_pairs().any(|(k, _)| k == "_method");
        if overridden {
            return None;
        }
        let data = args.get(&["-d", "--data", "--data-raw"]);
        let method = match args.get(&["-X", "--request"]) {
            Some(m) => m.to_ascii_uppercase(),
            None if args.has(&["-I", "--head"]) => "HEAD".into(),
            None if data.is_some() => "POST".into(),
            None => "GET".into(),
        };
        let body = match data {
            Some(d) => Some(serde_json::from_str(d).ok()?),
            None => None,
        };
        let headers = args
            .flags
            .iter()
            .filter(|(n, _)| n == "-H" || n == "--header")
            .map(|(_, h)| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Request {
            method,
            url,
            body,
            headers,
            fail: args.has(&["-f", "--fail", "--fail-with-body"]),
        })
    }
}

/// The PromQL of a query API URL, decoded.
pub fn prometheus_query(url: &url::Url) -> Option<String> {
    if !matches!(url.path(), "/api/v1/query" | "/api/v1/query_range") {
        return None;
    }
    let query = url.query_pairs().find(|(k, _)| k == "query")?.1.to_string();
    promql_parser::parser::parse(&query).ok()?;
    Some(query)
}

fn is_silence(url: &url::Url) -> bool {
    let path = url.path();
    path.starts_with("/api/v2/silences")
        || (path.starts_with("/api/v1/alerts") && path.ends_with("/silence"))
        || path.starts_with("/api/v1/silences")
}

/// An Alertmanager acknowledgement: a silence of the incident's alert.
fn silence(ctx: &mut Ctx) -> Native {
    // The fallback name sits in a template's string: only letters, digits and a few marks.
    let name: String = ctx
        .draft
        .alerts
        .first()
        .unwrap_or(&ctx.draft.title)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " _.-".contains(*c))
        .collect();
    let alertname = format!("{{{{ incident.alert.name or '{}' }}}}", name.trim());
    Native::action(
        "silence",
        "silence_alert",
        Y::map([
            ("matchers", Some(Y::map([("alertname", Some(Y::str(alertname)))]))),
            ("duration", Some(Y::str("1h"))),
            ("comment", Some(Y::str("acknowledged, investigating"))),
        ]),
    )
    .review("an Alertmanager silence of the incident's alert for 1h (the page's curl used an API Alertmanager no longer serves)")
}

/// An HTTP check or action; `base` is the endpoint to use instead of the URL's host (a
/// `kubectl exec … -- curl localhost` reaches the deployment's service).
pub fn http(request: Request, ctx: &mut Ctx, base: Option<String>) -> Option<Mapped> {
    let url = &request.url;
    let base = match base {
        Some(base) => base,
        None => {
            let host = url.host_str()?;
            let origin = url.origin().ascii_serialization();
            let name = match (host, url.port()) {
                ("localhost" | "127.0.0.1", Some(port)) => format!("localhost_{port}"),
                _ => super::ident(host.split('.').next().unwrap_or(host)),
            };
            let name = if name.is_empty() {
                "service".into()
            } else {
                name
            };
            ctx.endpoint(
                &name,
                &origin,
                format!("Base URL of {origin}, as the page reached it"),
            )
        }
    };
    let mut target = base;
    // A Slack webhook's path is its credential: a secret param, its slashes kept.
    let hook = secret::in_text(url.as_str())
        .into_iter()
        .find(|f| f.name == "slack_webhook");
    match &hook {
        Some(hook) => {
            let param = ctx.secret(&hook.name, &url.as_str()[hook.range.clone()], &hook.what);
            target.push_str(&format!("/services/{{{{ params.{param} | urlpath }}}}"));
        }
        None => target.push_str(&path_template(url, ctx)),
    }
    if let Some(query) = url.query() {
        target.push('?');
        let found: Vec<secret::Found> = secret::in_text(&format!("http://x/?{query}"))
            .into_iter()
            .map(|mut f| {
                f.range = f.range.start - 10..f.range.end - 10;
                f
            })
            .collect();
        let found: Vec<&secret::Found> = found.iter().collect();
        target.push_str(&ctx.with_secrets(query, &found, "", |_, s| literal(s)));
    }
    let path = decoded_path(url);
    let name = match hook {
        Some(_) => "slack_webhook".to_string(),
        None => super::ident(path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("root")),
    };
    let mut headers = Vec::new();
    for (key, value) in &request.headers {
        let value = match secret::in_header(key, value) {
            Some(range) => {
                let found = secret::Found {
                    range,
                    what: format!("the {key} header"),
                    name: super::ident(key),
                };
                ctx.with_secrets(value, &[&found], "", |ctx, s| ctx.text(s))
            }
            None => ctx.text(value),
        };
        headers.push((key.clone(), Y::Str(value)));
    }
    let headers = (!headers.is_empty()).then_some(Y::Map(headers));
    let method = request.method.as_str();
    match method {
        "GET" | "HEAD" => {
            let spec = Y::map([
                ("url", Some(Y::Str(target))),
                ("method", (method == "HEAD").then(|| Y::str("HEAD"))),
                ("headers", headers),
            ]);
            let mut check = Native::check("http", format!("{name}_status"), spec);
            if !request.fail {
                check = check.review("the page's curl had no -f: oncall still fails the check on a status other than 2xx");
            }
            Some(Mapped::one(check))
        }
        "POST" | "PUT" | "PATCH" | "DELETE" => {
            let spec = Y::map([
                ("method", Some(Y::str(method))),
                ("url", Some(Y::Str(target))),
                ("body", request.body.as_ref().map(Y::from_json)),
                ("headers", headers),
            ]);
            Some(Mapped::one(Native::action("http", name, spec)))
        }
        _ => None,
    }
}

/// The URL's path as a template: each segment as the page encoded it, except that one holding a
/// placeholder (`{alert_id}`, `%7Balert_id%7D`, `MODEL_NAME`) has it as a param.
fn path_template(url: &url::Url, ctx: &mut Ctx) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let mut out = Vec::new();
    for segment in url.path().split('/') {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        let pieces = super::placeholders(&decoded);
        if !pieces
            .iter()
            .any(|p| matches!(p, super::Piece::Placeholder { .. }))
        {
            out.push(literal(segment));
            continue;
        }
        let mut part = String::new();
        for piece in pieces {
            match piece {
                super::Piece::Literal(s) => part.push_str(&literal(
                    &percent_encoding::utf8_percent_encode(s, SEGMENT).to_string(),
                )),
                super::Piece::Placeholder { name, seen } => {
                    super::push_template(&mut part, &ctx.param(&name, seen))
                }
            }
        }
        out.push(part);
    }
    out.join("/")
}

/// The URL's path with percent-escapes decoded.
fn decoded_path(url: &url::Url) -> String {
    percent_encoding::percent_decode_str(url.path())
        .decode_utf8_lossy()
        .into_owned()
}
