//! Keeps secrets off the screen and out of the timeline: passwords in URLs, credentials in
//! headers, and every value a runbook marks `secret`.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut all = Vec::new();
        for secret in secrets {
            // A secret also appears shell-quoted in the commands oncall renders.
            let quoted = crate::expr::shell_quote(&secret);
            if quoted != secret {
                all.push(quoted);
            }
            all.push(secret);
        }
        all.retain(|s| s.len() >= 3);
        // Longest first, so a secret that contains another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets: all }
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = url_passwords(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts every string (and every number that is a secret) inside a JSON value.
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                let clean = self.text(s);
                if clean != *s {
                    *s = clean;
                }
            }
            Value::Number(n) if self.secrets.contains(&n.to_string()) => {
                *value = Value::String(MASK.into())
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }
}

fn url_passwords(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r#"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s"',]*):[^@/\s"',]+@"#)
            .unwrap()
    });
    re.replace_all(text, format!("${{scheme}}${{user}}:{MASK}@"))
        .into_owned()
}

/// Header names whose values are credentials.
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "api-key",
        "apikey",
        "secret",
        "password",
    ]
    .iter()
    .any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        let r = Redactor::default();
        assert_eq!(
            r.text("GET http://admin:hunter2@prom:9090/x"),
            "GET http://admin:***@prom:9090/x"
        );
        assert_eq!(
            r.text("postgres://u:p%40ss@db/x ok"),
            "postgres://u:***@db/x ok"
        );
        assert_eq!(r.text("http://prom:9090/x"), "http://prom:9090/x");
    }

    #[test]
    fn declared_secrets_are_masked_in_values_numbers_and_quoted_forms() {
        let r = Redactor::new([
            "s3cr\"et".to_string(),
            "123456".to_string(),
            "pa'ss-word".to_string(),
        ]);
        let mut v = serde_json::json!({"cmd": "login s3cr\"et", "pin": 123456, "sh": "curl -H 'pa'\\''ss-word'"});
        r.value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"cmd": "login ***", "pin": "***", "sh": "curl -H ***"})
        );
    }

    #[test]
    fn a_url_password_does_not_swallow_neighbouring_fields() {
        let r = Redactor::default();
        let json = r#"{"a":"http://h","user":"me@corp"}"#;
        assert_eq!(r.text(json), json);
    }
}
