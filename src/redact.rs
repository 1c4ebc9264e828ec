//! Keeps secrets off the screen and out of the timeline: passwords in URLs, credentials in
//! headers, and every value a runbook marks `secret`.

use regex::Regex;
use std::sync::OnceLock;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 3).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
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

    /// Redacts inside serialized JSON, where a secret may appear with JSON escapes.
    pub fn json(&self, json: &str) -> String {
        let mut out = url_passwords(json);
        for secret in &self.secrets {
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = &escaped[1..escaped.len() - 1];
            out = out.replace(escaped, MASK);
        }
        out
    }
}

fn url_passwords(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@").unwrap()
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
    fn declared_secrets_are_masked_in_json() {
        let r = Redactor::new(["s3cr\"et".to_string()]);
        let json = serde_json::to_string(&serde_json::json!({"cmd": "login s3cr\"et"})).unwrap();
        assert_eq!(r.json(&json), r#"{"cmd":"login ***"}"#);
    }
}
