//! The one expression language: MiniJinja expressions for conditions, templates for text.
//!
//! Templates that become shell commands go through an environment whose formatter shell-quotes
//! every interpolated value, so a param can never inject a command.

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    /// 1-based line and 0-based byte column inside the expression or template, when known.
    pub line: usize,
    pub offset: usize,
    /// A filter, test or function that does not exist: a mistake in the runbook, not in the values.
    pub unknown_name: bool,
    /// It ran longer than any runbook field may (its loops, whatever the values).
    pub out_of_fuel: bool,
    /// Too long or too deep to compile safely (see `MAX_SOURCE`, `MAX_TOKENS`, `MAX_NESTING`).
    pub too_large: bool,
}

impl From<minijinja::Error> for ExprError {
    fn from(err: minijinja::Error) -> Self {
        let offset = err.range().map(|r| r.start).unwrap_or(0);
        let mut message = err
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| err.kind().to_string());
        if let Some(source) = std::error::Error::source(&err) {
            message = format!("{message}: {source}");
        }
        use minijinja::ErrorKind::{OutOfFuel, UnknownFilter, UnknownFunction, UnknownTest};
        ExprError {
            message,
            line: err.line().unwrap_or(1),
            offset,
            unknown_name: matches!(err.kind(), UnknownFilter | UnknownTest | UnknownFunction),
            out_of_fuel: err.kind() == OutOfFuel,
            too_large: false,
        }
    }
}

/// The longest expression or template.
pub const MAX_SOURCE: usize = 64 * 1024;
/// The most tokens one expression (a condition, or one `{{ … }}` of a template) may hold, and how
/// deep brackets and blocks may nest. Past these a syntax tree could exhaust the stack of what
/// compiles, runs or frees it; no runbook needs more.
pub const MAX_TOKENS: usize = 400;
pub const MAX_NESTING: usize = 32;
/// The instructions one evaluation or render may run: loops cannot keep a run or `validate` busy.
const FUEL: u64 = 1_000_000;

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // Missing checks are handled by the engine (a condition on a missing value is not met);
    // names are checked by `validate`.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_keep_trailing_newline(true);
    env.add_filter("promql_str", promql_str);
    env.add_filter("urlpath", urlpath);
    env
}

/// Escapes a value for a double-quoted PromQL string: `namespace="{{ params.ns | promql_str }}"`.
pub fn promql_str(value: String) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn plain() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(base_env)
}

/// What a URL keeps as it is: the unreserved characters of RFC 3986. Everything else in a value
/// is percent-encoded, so a value is one path segment or one query value, whatever it holds.
const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value percent-encoded to stand as one path segment or query value.
pub fn url_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, URL_VALUE).to_string()
}

/// `.` and `..` stay dot segments even encoded (`%2e%2e`): a URL parser would climb the path.
fn dot_segment(value: &str) -> bool {
    value == "." || value == ".."
}

/// `{{ params.model | urlpath }}`: a value that may hold several path segments
/// (`meta-llama/Llama-2-7b`); each is encoded, the slashes kept, and no segment may climb.
fn urlpath(value: String) -> Result<Value, minijinja::Error> {
    if value.split('/').any(dot_segment) {
        return Err(refused(format!(
            "'{value}' climbs the URL path ('.' or '..'): not a path"
        )));
    }
    let encoded: Vec<String> = value.split('/').map(url_encode).collect();
    Ok(Value::from_safe_string(encoded.join("/")))
}

/// An environment whose every `{{ value }}` goes through `format`, given its text and whether a
/// filter marked it safe.
fn formatting_env(
    format: fn(&str, bool) -> Result<String, minijinja::Error>,
) -> Environment<'static> {
    let mut env = base_env();
    env.set_formatter(move |out, _state, value| {
        if !value.is_undefined() && !value.is_none() {
            out.write_str(&format(&value.to_string(), value.is_safe())?)?;
        }
        Ok(())
    });
    env
}

fn refused(why: String) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, why)
}

/// URLs: every value is percent-encoded unless marked safe (endpoints are; `| safe` and
/// `| urlpath` opt a value out), so a param cannot change a request's path or query.
fn url() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        formatting_env(|text, safe| match () {
            _ if safe => Ok(text.to_string()),
            _ if dot_segment(text) => {
                Err(refused(format!("'{text}' in a URL would climb its path")))
            }
            _ => Ok(url_encode(text)),
        })
    })
}

/// Renders a URL: values percent-encoded, endpoints (the engineer's base URLs) as they are.
pub fn render_url(source: &str, ctx: &serde_json::Value) -> Result<String, ExprError> {
    within_limits(source, Kind::Template)?;
    let mut root: std::collections::BTreeMap<String, Value> = ctx
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::from_serialize(v)))
        .collect();
    let endpoints: Value = ctx["endpoints"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let url = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), Value::from_safe_string(url))
        })
        .collect();
    root.insert("endpoints".into(), endpoints);
    Ok(url().render_str(source, root)?)
}

fn shell() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    // Every value is quoted, even one a filter marked safe: nothing reaches `sh` unquoted.
    // Quoting cannot stop a command from reading `-o/path` as an option, so such a value is
    // refused: a value is only ever an operand.
    ENV.get_or_init(|| {
        formatting_env(|text, _| match text.starts_with('-') {
            true => Err(refused(format!(
                "the value '{text}' starts with '-': the command would take it as an option, so it is not run"
            ))),
            false => Ok(shell_quote(text)),
        })
    })
}

/// Where a shell command template puts `{{ … }}` inside quotes the author wrote, which would
/// undo the quoting: `"{{ x }}"` lets `$(…)` in the value run. Returns the byte offset.
pub fn quoted_placeholder(template: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let (mut quote, mut i) = (None::<u8>, 0);
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            // Bytes, not a str slice: `i` may fall inside a multi-byte character.
            _ if bytes[i..].starts_with(b"{{") => {
                if quote.is_some() {
                    return Some(i);
                }
                i += bytes[i..]
                    .windows(2)
                    .position(|w| w == b"}}")
                    .map_or(bytes.len(), |end| end + 2);
                continue;
            }
            Some(q) if b == q => quote = None,
            Some(b'"') if b == b'\\' => i += 1,
            None if b == b'\\' => i += 1,
            None if b == b'"' || b == b'\'' => quote = Some(b),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a PromQL template puts a `{{ … }}` inside a label matcher (`{…}`) other than as a
/// double-quoted value escaped by `promql_str`: a value with a quote could close the matcher and
/// add to the query. Returns the byte offset.
pub fn unescaped_matcher_value(template: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let (mut i, mut depth, mut quote) = (0, 0usize, None::<u8>);
    while i < bytes.len() {
        let tag = match bytes[i..] {
            [b'{', b'{', ..] => Some(&b"}}"[..]),
            [b'{', b'%', ..] => Some(&b"%}"[..]),
            [b'{', b'#', ..] => Some(&b"#}"[..]),
            _ => None,
        };
        if let Some(close) = tag {
            let end = bytes[i + 2..]
                .windows(2)
                .position(|w| w == close)
                .map_or(bytes.len(), |e| i + 2 + e);
            if close == b"}}" && depth > 0 {
                let inner =
                    template[i + 2..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
                let escaped = inner.contains('|')
                    && inner.rsplit('|').next().map(str::trim) == Some("promql_str");
                if quote != Some(b'"') || !escaped {
                    return Some(i);
                }
            }
            i = end + 2;
            continue;
        }
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'' | b'`') if depth > 0 => quote = Some(bytes[i]),
            (None, b'{') => depth += 1,
            (None, b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Quotes a value for `sh`: single quotes, with embedded quotes closed, escaped and reopened.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Evaluates a condition to true or false.
pub fn condition<C: Serialize>(source: &str, ctx: &C) -> Result<bool, ExprError> {
    Ok(eval(source, ctx)?.is_true())
}

/// Evaluates an expression to a value.
pub fn eval<C: Serialize>(source: &str, ctx: &C) -> Result<Value, ExprError> {
    within_limits(source, Kind::Expression)?;
    Ok(plain().compile_expression(source)?.eval(ctx)?)
}

pub fn render<C: Serialize>(source: &str, ctx: &C) -> Result<String, ExprError> {
    within_limits(source, Kind::Template)?;
    Ok(plain().render_str(source, ctx)?)
}

/// Renders a shell command: every `{{ value }}` comes out shell-quoted.
/// A message as it is shown and posted; one that does not render says why instead.
pub fn render_message<C: Serialize>(name: &str, template: &str, ctx: &C) -> String {
    match render(template, ctx) {
        Ok(text) => text.trim_end().to_string(),
        Err(e) => format!("(message '{name}' could not be rendered: {e})"),
    }
}

pub fn render_shell<C: Serialize>(source: &str, ctx: &C) -> Result<String, ExprError> {
    within_limits(source, Kind::Template)?;
    Ok(shell().render_str(source, ctx)?)
}

fn too_complex(source: &str, offset: usize, why: String) -> ExprError {
    let before = source.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    ExprError {
        message: why,
        line,
        offset: offset - before.rfind('\n').map_or(0, |n| n + 1),
        unknown_name: false,
        out_of_fuel: false,
        too_large: true,
    }
}

/// Refuses sources too long or too deep to compile safely, before MiniJinja sees them.
fn within_limits(source: &str, kind: Kind) -> Result<(), ExprError> {
    if source.len() > MAX_SOURCE {
        return Err(too_complex(
            source,
            0,
            format!(
                "{} bytes is too long: at most {MAX_SOURCE} bytes",
                source.len()
            ),
        ));
    }
    if kind == Kind::Expression {
        scan_expression(source, source, 0)?;
        // MiniJinja's lexer takes `}}` for the end of a `{{ … }}` it never began, and panics.
        return match closing_braces(source) {
            Some(at) => Err(ExprError {
                too_large: false,
                ..too_complex(
                    source,
                    at,
                    "`}}` cannot stand in a condition: write `} }` to close two maps".into(),
                )
            }),
            None => Ok(()),
        };
    }
    let mut blocks = 0usize;
    let mut at = 0;
    while let Some(found) = source[at..].find('{') {
        let start = at + found;
        let close = match source.as_bytes().get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                at = start + 1;
                continue;
            }
        };
        let body_start = start + 2;
        let end = source[body_start..]
            .find(close)
            .map_or(source.len(), |e| body_start + e);
        let body = &source[body_start..end];
        if close != "#}" {
            scan_expression(source, body, body_start)?;
        }
        if close == "%}" {
            let word = body
                .trim_start_matches(['-', '+'])
                .split_whitespace()
                .next()
                .unwrap_or_default();
            if [
                "if",
                "for",
                "macro",
                "call",
                "filter",
                "with",
                "autoescape",
                "raw",
            ]
            .contains(&word)
                || (word == "set" && !body.contains('='))
            {
                blocks += 1;
                if blocks > MAX_NESTING {
                    return Err(too_complex(
                        source,
                        start,
                        format!("blocks nest too deep: at most {MAX_NESTING} levels"),
                    ));
                }
            } else if word.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
        }
        at = (end + 2).min(source.len());
    }
    Ok(())
}

/// Where `}}` stands outside a string.
fn closing_braces(expr: &str) -> Option<usize> {
    let bytes = expr.as_bytes();
    let (mut i, mut quote) = (0, None::<u8>);
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Counts the tokens of one expression and how deep its brackets nest.
fn scan_expression(source: &str, expr: &str, base: usize) -> Result<(), ExprError> {
    let (mut tokens, mut depth) = (0usize, 0usize);
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(too_complex(
                        source,
                        base + i,
                        format!("brackets nest too deep: at most {MAX_NESTING} levels"),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() => continue,
            c if c.is_alphanumeric() || c == '_' => {
                while chars
                    .next_if(|(_, d)| d.is_alphanumeric() || *d == '_')
                    .is_some()
                {}
            }
            _ => {}
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(too_complex(
                source,
                base + i,
                format!(
                    "the expression is too long: at most {MAX_TOKENS} names, numbers and operators; split it with a check or a param"
                ),
            ));
        }
    }
    Ok(())
}

/// Which kind of text a runbook field holds, for validation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Expression,
    Template,
}

/// A condition with the values it read in place of their names, for people:
/// `value > params.budget_pct` on 3 with unit `%` reads `3% > 1% (budget_pct)`. Numbers read from
/// `value` and params take the check's unit; the params named are listed after.
pub fn with_values(source: &str, ctx: &serde_json::Value, unit: &Option<String>) -> String {
    let Ok(names) = referenced_names(source, Kind::Expression) else {
        return source.to_string();
    };
    let mut names: Vec<String> = names.into_iter().collect();
    // Longest first, so `params.budget_pct_hi` is not taken for `params.budget_pct`.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let lookup = |name: &str| {
        name.split('.')
            .try_fold(ctx, |v, key| v.get(key))
            .filter(|v| !v.is_null())
    };
    let mut out = source.to_string();
    let mut params = Vec::new();
    for name in &names {
        let Some(found) = lookup(name) else { continue };
        let shown = match found {
            serde_json::Value::Number(_) if name == "value" || name.starts_with("params.") => {
                crate::engine::observation::with_unit(
                    crate::engine::observation::display(found),
                    unit,
                )
            }
            serde_json::Value::String(text) => format!("{text:?}"),
            other => crate::engine::observation::display(other),
        };
        let replaced = replace_name(&out, name, &shown);
        if replaced != out {
            if let Some(param) = name.strip_prefix("params.") {
                params.push(param.to_string());
            }
            out = replaced;
        }
    }
    if !params.is_empty() {
        params.sort();
        out.push_str(&format!(" ({})", params.join(", ")));
    }
    out
}

/// Replaces each whole occurrence of a dotted name: not a part of a longer name.
fn replace_name(text: &str, name: &str, with: &str) -> String {
    let part = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(part) || after.is_some_and(part) {
            out.push_str(name);
        } else {
            out.push_str(with);
        }
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

/// Compiles without running and returns the variable paths it reads (`checks.error_rate.value`).
pub fn referenced_names(source: &str, kind: Kind) -> Result<BTreeSet<String>, ExprError> {
    within_limits(source, kind)?;
    let names = match kind {
        Kind::Expression => plain()
            .compile_expression(source)?
            .undeclared_variables(true),
        Kind::Template => plain()
            .template_from_str(source)?
            .undeclared_variables(true),
    };
    Ok(names.into_iter().collect())
}

/// What validation needs of a field, from one compile: the variable paths it reads, and the
/// error (if any) of a trial run on placeholder values.
pub fn inspect<C: Serialize>(
    source: &str,
    kind: Kind,
    placeholder: &C,
) -> Result<(BTreeSet<String>, Option<ExprError>), ExprError> {
    within_limits(source, kind)?;
    let (names, tried) = match kind {
        Kind::Expression => {
            let expr = plain().compile_expression(source)?;
            (
                expr.undeclared_variables(true),
                expr.eval(placeholder).err(),
            )
        }
        Kind::Template => {
            let template = plain().template_from_str(source)?;
            (
                template.undeclared_variables(true),
                template.render(placeholder).err(),
            )
        }
    };
    Ok((names.into_iter().collect(), tried.map(ExprError::from)))
}

/// True when a rendered value counts as a number for thresholds and tables.
pub fn as_f64(value: &Value) -> Option<f64> {
    f64::try_from(value.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_values_are_quoted() {
        let ctx = json!({"params": {"ns": "a b; rm -rf /", "n": "it's"}});
        let out = render_shell("kubectl -n {{ params.ns }} echo {{ params.n }}", &ctx).unwrap();
        assert_eq!(out, r#"kubectl -n 'a b; rm -rf /' echo 'it'\''s'"#);
    }

    #[test]
    fn closing_braces_in_a_condition_are_refused_not_a_panic() {
        let ctx = json!({});
        let err = condition("a or b}}c", &ctx).unwrap_err();
        assert!(
            err.message.contains("`}}` cannot stand in a condition"),
            "{err}"
        );
        assert!(condition("'}}' == '}}'", &ctx).unwrap());
        assert!(condition("{'a': {'b': 1} }.a.b == 1", &ctx).unwrap());
    }

    #[test]
    fn values_never_become_options() {
        for value in ["-o/tmp/x", "--output=/tmp/x", "-1"] {
            let ctx = json!({"params": {"file": value}});
            let err = render_shell("sort {{ params.file }}", &ctx).unwrap_err();
            assert!(err.message.contains("starts with '-'"), "{err}");
        }
        let ctx = json!({"params": {"file": "a-b"}});
        assert_eq!(
            render_shell("sort -- {{ params.file }}", &ctx).unwrap(),
            "sort -- a-b"
        );
    }

    #[test]
    fn safe_values_are_quoted_too() {
        let ctx = json!({"params": {"n": "$(id)"}});
        let out = render_shell("echo {{ params.n | safe }} {{ params.n | tojson }}", &ctx).unwrap();
        assert_eq!(out, r#"echo '$(id)' '"$(id)"'"#);
    }

    #[test]
    fn placeholders_inside_quotes_are_found() {
        assert_eq!(quoted_placeholder(r#"echo "{{ x }}""#), Some(6));
        assert_eq!(quoted_placeholder("echo '{{ x }}'"), Some(6));
        assert_eq!(
            quoted_placeholder(r#"echo "a" {{ x }} 'b' \"{{ y }}"#),
            None
        );
        assert_eq!(quoted_placeholder(r#"printf '%s\n' {{ x }} "it's""#), None);
        assert_eq!(quoted_placeholder("echo café — \u{feff}{{ x }} \\é"), None);
        assert_eq!(quoted_placeholder("echo 'é{{ x }}'"), Some(8));
    }

    #[test]
    fn url_values_are_encoded_and_endpoints_kept() {
        let ctx = json!({"endpoints": {"api": "http://u@h:1/base"}, "params": {"job": "../../admin/purge-all?x=", "model": "org/Model 7b", "dots": ".."}});
        let url = |t: &str| render_url(t, &ctx);
        assert_eq!(
            url("{{ endpoints.api }}/api/jobs/{{ params.job }}/cancel").unwrap(),
            "http://u@h:1/base/api/jobs/..%2F..%2Fadmin%2Fpurge-all%3Fx%3D/cancel"
        );
        assert_eq!(
            url("{{ endpoints.api }}/{{ params.model | urlpath }}?q={{ params.model }}").unwrap(),
            "http://u@h:1/base/org/Model%207b?q=org%2FModel%207b"
        );
        assert!(url("{{ endpoints.api }}/{{ params.dots }}").is_err());
        assert!(url("{{ endpoints.api }}/{{ params.job | urlpath }}").is_err());
        assert_eq!(
            url("{{ params.job | safe }}").unwrap(),
            "../../admin/purge-all?x="
        );
    }

    #[test]
    fn matcher_values_must_be_escaped() {
        let escaped = r#"up{ns="{{ params.ns | promql_str }}", a!=""}[5m] > {{ params.x }}"#;
        assert_eq!(unescaped_matcher_value(escaped), None);
        assert_eq!(
            unescaped_matcher_value(r#"up{ns="{{ params.ns }}"}"#),
            Some(7)
        );
        assert_eq!(
            unescaped_matcher_value(r#"up{ns={{ params.ns | promql_str }}}"#),
            Some(6)
        );
        assert_eq!(
            unescaped_matcher_value(r#"up{ns='{{ params.ns | promql_str }}'}"#),
            Some(7)
        );
        assert_eq!(
            unescaped_matcher_value(r#"up{ {{ params.matchers }} }"#),
            Some(4)
        );
    }

    #[test]
    fn promql_strings_are_escaped() {
        let ctx = json!({"params": {"ns": "x\"} or up{a=\""}});
        let out = render("{ns=\"{{ params.ns | promql_str }}\"}", &ctx).unwrap();
        assert_eq!(out, r#"{ns="x\"} or up{a=\""}"#);
    }

    #[test]
    fn missing_checks_make_conditions_false_not_errors() {
        let ctx = json!({"checks": {}});
        assert!(!condition("checks.gpu.value > 90", &ctx).unwrap());
        let ctx = json!({"checks": {"gpu": {"value": null}}});
        assert!(!condition("checks.gpu.value > 90", &ctx).unwrap());
    }

    #[test]
    fn rows_can_be_filtered_by_value() {
        let ctx = json!({"checks": {"e": {"rows": [{"error_type": "gpu_oom", "value": 0.2}, {"error_type": "timeout", "value": 0.0}]}}});
        let gpu = r#"checks.e.rows | selectattr("error_type", "equalto", "gpu_oom") | selectattr("value", "gt", 0) | list | length > 0"#;
        assert!(condition(gpu, &ctx).unwrap());
        let timeout = r#"checks.e.rows | selectattr("error_type", "equalto", "timeout") | selectattr("value", "gt", 0) | list | length > 0"#;
        assert!(!condition(timeout, &ctx).unwrap());
    }

    #[test]
    fn nested_names_are_reported() {
        let names =
            referenced_names("checks.a.value > params.b and value < 3", Kind::Expression).unwrap();
        assert!(names.contains("checks.a.value"), "{names:?}");
        assert!(names.contains("params.b"));
        assert!(names.contains("value"));
    }
}
