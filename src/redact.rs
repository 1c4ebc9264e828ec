//! Keeps secrets off the screen, out of JSON, the timeline and error messages: passwords in
//! URLs, the credentials a runbook sends, and every value a runbook marks `secret`.
//!
//! One redactor serves the whole process. Secrets are registered as they become known (the
//! params at the start, a header's credential when a request is rendered), in every form they
//! may take on the way out: as written, shell-quoted, percent-encoded, escaped for PromQL.

use regex::Regex;
use serde_json::Value;
use std::sync::{Arc, OnceLock, RwLock};

pub const MASK: &str = "***";
/// The shortest secret masked wherever it stands. A shorter one would mask pieces of unrelated
/// text, and would leak through anyway: a declared secret param this short is refused.
pub const MIN_SECRET: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

/// The process's redactor.
pub fn global() -> &'static Redactor {
    static GLOBAL: OnceLock<Redactor> = OnceLock::new();
    GLOBAL.get_or_init(Redactor::default)
}

/// Registers a secret with the process's redactor.
pub fn register(secret: &str) {
    global().add(secret);
}

/// Registers the password of a URL (`https://user:pass@host`), in every form it can come back
/// in: percent-encoded as written, decoded, and inside the Basic credential made from it.
pub fn register_url(text: &str) {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return;
    };
    let Some(password) = url.password() else {
        return;
    };
    register(password);
    let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
    register(&decoded);
    let user = percent_encoding::percent_decode_str(url.username()).decode_utf8_lossy();
    let pair = format!("{user}:{decoded}");
    use base64::Engine;
    register(&base64::engine::general_purpose::STANDARD.encode(&pair));
    register(&pair);
}

/// Registers what makes a webhook's URL its credential: everything after the host (Slack's
/// `/services/T…/B…/…`), so only the host is ever shown.
pub fn register_webhook(text: &str) {
    register_url(text);
    if let Ok(url) = url::Url::parse(text.trim()) {
        let host_end = url[..url::Position::AfterPort].len();
        register(&url.as_str()[host_end..]);
    }
}

/// Registers a credential header's value (`Bearer abc…`), and the credential alone.
pub fn register_credential(value: &str) {
    register(value);
    if let Some((scheme, credential)) = value.trim().split_once(' ')
        && !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphabetic())
    {
        register(credential.trim());
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            if let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(credential.trim())
                && let Ok(pair) = String::from_utf8(pair)
            {
                register(&pair);
                if let Some((_, password)) = pair.split_once(':') {
                    register(password);
                }
            }
        }
    }
}

impl Redactor {
    /// Adds a secret in each form it may be written out in.
    pub fn add(&self, secret: &str) {
        if secret.chars().count() < MIN_SECRET {
            return;
        }
        let forms = [
            secret.to_string(),
            crate::expr::shell_quote(secret),
            crate::expr::url_encode(secret),
            crate::expr::promql_str(secret.to_string()),
        ];
        let mut all = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for form in forms {
            if !all.contains(&form) {
                all.push(form);
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = url_passwords(text);
        for secret in self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Masks a text in place.
    pub fn string(&self, text: &mut String) {
        let clean = self.text(text);
        if clean != *text {
            *text = clean;
        }
    }

    /// Redacts every string (and every number that is a secret) inside a JSON value.
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::String(s) => self.string(s),
            Value::Number(n) => {
                let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
                if secrets.contains(&n.to_string()) {
                    *value = Value::String(MASK.into());
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }
}

/// Masks the password of every URL in a text, whatever characters it holds (`,`, quotes).
pub fn url_passwords(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r#"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s"',]*):[^@/?#\s]+@"#)
            .expect("a fixed, valid pattern")
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

    fn with(secrets: &[&str]) -> Redactor {
        let redactor = Redactor::default();
        secrets.iter().for_each(|s| redactor.add(s));
        redactor
    }

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
        assert_eq!(
            r.text(r#"http://u:a,b'c"d@h/ and redis://:p,w@r:6379"#),
            "http://u:***@h/ and redis://:***@r:6379"
        );
        assert_eq!(r.text("http://prom:9090/x"), "http://prom:9090/x");
    }

    #[test]
    fn declared_secrets_are_masked_in_values_numbers_and_quoted_forms() {
        let r = with(&["s3cr\"et", "123456", "pa'ss-word", "p@ss w/rd"]);
        let mut v = serde_json::json!({"cmd": "login s3cr\"et", "pin": 123456, "sh": "curl -H 'pa'\\''ss-word'", "url": "http://h/x?pw=p%40ss%20w%2Frd", "q": "up{a=\"s3cr\\\"et\"}"});
        r.value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"cmd": "login ***", "pin": "***", "sh": "curl -H ***", "url": "http://h/x?pw=***", "q": "up{a=\"***\"}"})
        );
    }

    #[test]
    fn credentials_are_registered_in_every_form() {
        register_credential("Bearer tok-3n-abcdef");
        register_url("http://alice:pa%2Cssw0rd@h/");
        let r = global();
        assert_eq!(r.text("echo tok-3n-abcdef"), "echo ***");
        assert_eq!(r.text("got pa,ssw0rd"), "got ***");
        // base64("alice:pa,ssw0rd"), as reqwest sends it in the Basic header.
        assert_eq!(r.text("Basic YWxpY2U6cGEsc3N3MHJk"), "Basic ***");
    }

    #[test]
    fn short_secrets_are_not_masked_in_pieces() {
        let r = with(&["fail"]);
        assert_eq!(r.text("1 check(s) failed"), "1 check(s) failed");
    }

    #[test]
    fn a_url_password_does_not_swallow_neighbouring_fields() {
        let r = Redactor::default();
        let json = r#"{"a":"http://h","user":"me@corp"}"#;
        assert_eq!(r.text(json), json);
    }
}
