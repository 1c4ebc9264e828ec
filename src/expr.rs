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
        use minijinja::ErrorKind::{UnknownFilter, UnknownFunction, UnknownTest};
        ExprError {
            message,
            line: err.line().unwrap_or(1),
            offset,
            unknown_name: matches!(err.kind(), UnknownFilter | UnknownTest | UnknownFunction),
        }
    }
}

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    // Missing checks are handled by the engine (a condition on a missing value is not met);
    // names are checked by `validate`.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_keep_trailing_newline(true);
    env.add_filter("promql_str", promql_str);
    env
}

/// Escapes a value for a double-quoted PromQL string: `namespace="{{ params.ns | promql_str }}"`.
fn promql_str(value: String) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn plain() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(base_env)
}

fn shell() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = base_env();
        // Every value is quoted, even one a filter marked safe: nothing reaches `sh` unquoted.
        env.set_formatter(|out, _state, value| {
            if !value.is_undefined() && !value.is_none() {
                out.write_str(&shell_quote(&value.to_string()))?;
            }
            Ok(())
        });
        env
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
            _ if template[i..].starts_with("{{") => {
                if quote.is_some() {
                    return Some(i);
                }
                i += template[i..].find("}}").map_or(bytes.len(), |end| end + 2);
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
    let expr = plain().compile_expression(source)?;
    Ok(expr.eval(ctx)?.is_true())
}

/// Evaluates an expression to a value.
pub fn eval<C: Serialize>(source: &str, ctx: &C) -> Result<Value, ExprError> {
    Ok(plain().compile_expression(source)?.eval(ctx)?)
}

pub fn render<C: Serialize>(source: &str, ctx: &C) -> Result<String, ExprError> {
    Ok(plain().render_str(source, ctx)?)
}

/// Renders a shell command: every `{{ value }}` comes out shell-quoted.
pub fn render_shell<C: Serialize>(source: &str, ctx: &C) -> Result<String, ExprError> {
    Ok(shell().render_str(source, ctx)?)
}

/// Which kind of text a runbook field holds, for validation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Expression,
    Template,
}

/// Compiles without running and returns the variable paths it reads (`checks.error_rate.value`).
pub fn referenced_names(source: &str, kind: Kind) -> Result<BTreeSet<String>, ExprError> {
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
