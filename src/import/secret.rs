//! Credentials a page writes out: a password after `redis-cli -a`, `mysql -p`, `curl -u`, a
//! `--token`, a credential header, a password in a URL, a secret in a URL's query, a Slack
//! webhook's path. An import makes each a secret param and writes none of them.

use std::ops::Range;

/// A credential in a word or a text: where it is, what it is, and the param it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub range: Range<usize>,
    /// What the page wrote, for the param's help and the report: `redis-cli -a`.
    pub what: String,
    pub name: String,
}

/// The mask a credential is written as where no param can stand (a title, a comment).
pub use crate::redact::MASK;

/// Query keys whose values are credentials (`?api_key=`, `&sig=`).
pub fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "key",
        "sig",
        "pwd",
        "pass",
        "auth",
        "code",
        "jwt",
        "session",
        "sessionid",
    ]
    .contains(&key.as_str())
        || [
            "token",
            "secret",
            "password",
            "passwd",
            "signature",
            "credential",
        ]
        .iter()
        .any(|w| key.contains(w))
        || key.ends_with("key")
        || key.ends_with("_sig")
}

/// The credentials in the URLs of a text: passwords, secret query values, webhook paths.
pub fn in_text(text: &str) -> Vec<Found> {
    static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+"#).expect("valid")
    });
    let mut out = Vec::new();
    for m in URL.find_iter(text) {
        let url = m.as_str();
        let at = m.start();
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        let scheme = scheme.to_ascii_lowercase();
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let base = at + scheme.len() + 3;
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            let start = base + userinfo.len() - password.len();
            let owner = match scheme.as_str() {
                "postgres" | "postgresql" => "postgres".to_string(),
                "http" | "https" => super::map::ident(host.split('.').next().unwrap_or("")),
                s => super::map::ident(s),
            };
            out.push(Found {
                range: start..start + password.len(),
                what: format!("the password in a {scheme}:// URL"),
                name: format!("{owner}_password")
                    .trim_start_matches('_')
                    .to_string(),
            });
        }
        let path_start = base + authority_end;
        let tail = &text[path_start..m.end()];
        let path_len = tail.find(['?', '#']).unwrap_or(tail.len());
        if host == "hooks.slack.com"
            && let Some(hook) = tail[..path_len].strip_prefix("/services/")
            && !hook.is_empty()
        {
            let start = path_start + "/services/".len();
            out.push(Found {
                range: start..start + hook.len(),
                what: "a Slack webhook's path".into(),
                name: "slack_webhook".into(),
            });
        }
        if let Some(query) = tail[path_len..].strip_prefix('?') {
            let mut offset = path_start + path_len + 1;
            let query = query.split('#').next().unwrap_or(query);
            for pair in query.split('&') {
                if let Some((key, value)) = pair.split_once('=')
                    && !value.is_empty()
                    && secret_key(key)
                {
                    let start = offset + key.len() + 1;
                    out.push(Found {
                        range: start..start + value.len(),
                        what: format!("`{key}=` in a URL"),
                        name: super::map::ident(key),
                    });
                }
                offset += pair.len() + 1;
            }
        }
    }
    out
}

/// Flags whose value is a credential, for any program: `--token T`, `--password=P`.
const SECRET_FLAGS: &[&str] = &[
    "--token",
    "--password",
    "--pass",
    "--api-key",
    "--apikey",
    "--secret",
    "--client-secret",
    "--access-token",
    "--auth-token",
    "--kube-token",
    "--oauth2-bearer",
];

/// The credentials in one command's words: (index of the word, where in it).
/// The credentials `in_words` found in word `i`.
pub fn at(found: &[(usize, Found)], i: usize) -> Vec<&Found> {
    found
        .iter()
        .filter(|(j, _)| *j == i)
        .map(|(_, f)| f)
        .collect()
}

pub fn in_words(words: &[&str]) -> Vec<(usize, Found)> {
    let mut out = Vec::new();
    let program = words
        .iter()
        .find(|w| !is_assignment(w))
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or_default();
    let owner = program.trim_end_matches("-cli").replace('-', "_");
    let mysql = ["mysql", "mysqladmin", "mysqldump", "mariadb", "mysqlsh"].contains(&program);
    let mut whole = |i: usize, value: &str, what: String, name: String| {
        if !value.is_empty() {
            out.push((
                i,
                Found {
                    range: 0..value.len(),
                    what,
                    name,
                },
            ));
        }
    };
    let mut glued = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or_default();
        // `PGPASSWORD=… psql`, `export API_TOKEN=…`.
        if let Some((name, value)) = word.split_once('=')
            && is_assignment(word)
            && secret_key(name)
        {
            glued.push((
                i,
                name.len() + 1,
                value.len(),
                format!("`{name}=`"),
                name.to_ascii_lowercase(),
            ));
            continue;
        }
        let (flag, value) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (*word, None),
        };
        if SECRET_FLAGS.contains(&flag) && !(mysql && value.is_none()) {
            let name = format!("{owner}_{}", flag.trim_start_matches('-').replace('-', "_"));
            let name = name
                .replace("_pass", "_password")
                .replace("_passwordword", "_password");
            match value {
                Some(v) => glued.push((
                    i,
                    flag.len() + 1,
                    v.len(),
                    format!("{program} {flag}"),
                    name,
                )),
                None => whole(i + 1, next, format!("{program} {flag}"), name),
            }
            continue;
        }
        match (program, *word) {
            ("redis-cli", "-a") => {
                whole(i + 1, next, "redis-cli -a".into(), "redis_password".into())
            }
            ("curl", "-u" | "--user" | "--proxy-user" | "-U") => {
                if let Some((user, _)) = next.split_once(':') {
                    let start = user.len() + 1;
                    glued.push((
                        i + 1,
                        start,
                        next.len() - start,
                        format!("curl {word}"),
                        "curl_password".into(),
                    ));
                }
            }
            ("curl", w) if w.starts_with("-u") && w.len() > 2 => {
                if let Some((user, _)) = w.split_once(':') {
                    let start = user.len() + 1;
                    glued.push((
                        i,
                        start,
                        w.len() - start,
                        "curl -u".into(),
                        "curl_password".into(),
                    ));
                }
            }
            ("curl", "-H" | "--header") => {
                if let Some((key, value)) = next.split_once(':')
                    && let Some(range) = in_header(key, value)
                {
                    let start = key.len() + 1 + range.start;
                    glued.push((
                        i + 1,
                        start,
                        range.len(),
                        format!("the {} header", key.trim()),
                        super::map::ident(key.trim()),
                    ));
                }
            }
            (_, w) if mysql && w.starts_with("-p") && w.len() > 2 => {
                glued.push((
                    i,
                    2,
                    w.len() - 2,
                    format!("{program} -p"),
                    "mysql_password".into(),
                ));
            }
            _ => {}
        }
    }
    for (i, start, len, what, name) in glued {
        if len > 0 {
            out.push((
                i,
                Found {
                    range: start..start + len,
                    what,
                    name,
                },
            ));
        }
    }
    for (i, word) in words.iter().enumerate() {
        for found in in_text(word) {
            if !out
                .iter()
                .any(|(j, f)| *j == i && overlaps(&f.range, &found.range))
            {
                out.push((i, found));
            }
        }
    }
    out.sort_by_key(|(i, f)| (*i, f.range.start));
    out
}

/// Where the credential is in a header's value, if the header carries one: `Bearer tok` → `tok`
/// (the scheme stays as written).
pub fn in_header(key: &str, value: &str) -> Option<Range<usize>> {
    if !crate::redact::is_sensitive_header(key.trim()) {
        return None;
    }
    let trimmed = value.trim();
    let credential = match trimmed.split_once(' ') {
        Some((scheme, rest))
            if scheme.chars().all(|c| c.is_ascii_alphabetic()) && !rest.trim().is_empty() =>
        {
            rest.trim()
        }
        _ => trimmed,
    };
    let start = value.rfind(credential)?;
    (!credential.is_empty()).then(|| start..start + credential.len())
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// `NAME=value` as the shell reads an assignment.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A text with the credentials of its URLs, and these known values, masked.
pub fn mask(text: &str, known: &[&str]) -> String {
    let mut out = text.to_string();
    let mut known: Vec<&str> = known.iter().copied().filter(|k| !k.is_empty()).collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in known {
        out = out.replace(k, MASK);
    }
    let mut found = in_text(&out);
    found.sort_by_key(|f| std::cmp::Reverse(f.range.start));
    for f in found {
        if &out[f.range.clone()] != MASK {
            out.replace_range(f.range, MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(words: &[&str]) -> Vec<(String, String)> {
        in_words(words)
            .into_iter()
            .map(|(i, f)| (words[i][f.range].to_string(), f.name))
            .collect()
    }

    #[test]
    fn every_form_of_credential_is_found() {
        let pair = |v: &str, n: &str| vec![(v.to_string(), n.to_string())];
        assert_eq!(
            secrets(&["redis-cli", "-a", "hunter22", "info"]),
            pair("hunter22", "redis_password")
        );
        assert_eq!(
            secrets(&["mysql", "-phunter22", "-e", "SELECT 1"]),
            pair("hunter22", "mysql_password")
        );
        assert_eq!(
            secrets(&["mysql", "-p", "appdb"]),
            vec![],
            "-p alone asks; appdb is a database"
        );
        assert_eq!(
            secrets(&["mysql", "--password=hunter22"]),
            pair("hunter22", "mysql_password")
        );
        assert_eq!(
            secrets(&["curl", "-u", "admin:hunter22", "http://x"]),
            pair("hunter22", "curl_password")
        );
        assert_eq!(
            secrets(&["curl", "-uadmin:hunter22", "http://x"]),
            pair("hunter22", "curl_password")
        );
        assert_eq!(
            secrets(&["kubectl", "get", "pods", "--token", "eyJhbGci"]),
            pair("eyJhbGci", "kubectl_token")
        );
        assert_eq!(
            secrets(&["kubectl", "get", "pods", "--token=eyJhbGci"]),
            pair("eyJhbGci", "kubectl_token")
        );
        assert_eq!(
            secrets(&[
                "curl",
                "-s",
                "https://api.example.com/v1/x?limit=5&api_key=abc123xyz"
            ]),
            pair("abc123xyz", "api_key")
        );
        for key in [
            "token",
            "access_token",
            "password",
            "secret",
            "key",
            "sig",
            "X-Amz-Signature",
        ] {
            let url = format!("https://x.example/p?a=1&{key}=s3cr3tvalue#frag");
            assert_eq!(secrets(&["curl", &url]).len(), 1, "{url}");
        }
        assert_eq!(
            secrets(&[
                "curl",
                "-X",
                "POST",
                "https://hooks.slack.com/services/T0001/B0002/XXXXyyyyZZZZ"
            ]),
            pair("T0001/B0002/XXXXyyyyZZZZ", "slack_webhook")
        );
        assert_eq!(
            secrets(&[
                "psql",
                "postgres://admin:hunter22@db:5432/app",
                "-c",
                "SELECT 1"
            ]),
            pair("hunter22", "postgres_password")
        );
        assert_eq!(
            secrets(&["curl", "-H", "Authorization: Bearer tok-123456", "http://x"]),
            pair("tok-123456", "authorization")
        );
        assert_eq!(
            secrets(&["PGPASSWORD=hunter22", "psql"]),
            pair("hunter22", "pgpassword")
        );
        assert_eq!(secrets(&["curl", "-s", "http://x/health?limit=5"]), vec![]);
        assert_eq!(secrets(&["kubectl", "get", "pods", "-n", "video"]), vec![]);
    }

    #[test]
    fn a_text_is_masked_where_its_urls_hold_credentials() {
        assert_eq!(
            mask(
                "Payments DB down (postgres://admin:hunter22@db/payments)",
                &[]
            ),
            "Payments DB down (postgres://admin:***@db/payments)"
        );
        assert_eq!(
            mask(
                "post to https://hooks.slack.com/services/T1/B2/XYZ and http://x/?key=k1",
                &[]
            ),
            "post to https://hooks.slack.com/services/*** and http://x/?key=***"
        );
        assert_eq!(
            mask("redis-cli -a hunter22 info", &["hunter22"]),
            "redis-cli -a *** info"
        );
    }
}
