//! Writing the imported runbook's YAML by hand: it carries comments (each command's source line)
//! that a serializer would drop. A string is written plain only when YAML reads it back as that
//! same string; otherwise double-quoted with JSON's escapes, which YAML reads the same way.

/// A value in a check's or an action's spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    Str(String),
    Int(i64),
    Map(Vec<(String, Y)>),
    Seq(Vec<Y>),
}

impl Y {
    pub fn map<const N: usize>(entries: [(&str, Option<Y>); N]) -> Y {
        Y::Map(
            entries
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                .collect(),
        )
    }

    pub fn str(s: impl Into<String>) -> Y {
        Y::Str(s.into())
    }

    pub fn from_json(value: &serde_json::Value) -> Y {
        use serde_json::Value;
        match value {
            Value::Null => Y::Str(String::new()),
            Value::Bool(b) => Y::Str(b.to_string()),
            Value::Number(n) => n.as_i64().map_or_else(|| Y::Str(n.to_string()), Y::Int),
            Value::String(s) => Y::Str(s.clone()),
            Value::Array(items) => Y::Seq(items.iter().map(Y::from_json).collect()),
            Value::Object(map) => Y::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Y::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// A value on one line: `{ namespace: video-processing, replicas: 10 }`.
pub fn flow(y: &Y) -> String {
    match y {
        Y::Str(s) => scalar(s),
        Y::Int(n) => n.to_string(),
        Y::Seq(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Y::Map(entries) if entries.is_empty() => "{}".into(),
        Y::Map(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A string as a YAML scalar that reads back as exactly this string.
pub fn scalar(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        serde_json::to_string(&clean(s)).unwrap_or_else(|_| "\"\"".into())
    }
}

fn plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _./=@+%()-".contains(c);
    let special = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
    ]
    .contains(&s.to_ascii_lowercase().as_str());
    let numeric_start = first.is_ascii_digit() || "+-.".contains(first);
    let duration = s
        .strip_suffix(['s', 'm', 'h', 'd', 'w'])
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    s.chars().all(allowed)
        && !special
        && (!numeric_start || duration)
        && first != ' '
        && !s.ends_with(' ')
        && !"-?:,[]{}#&*!|>'\"%@`=(".contains(first)
}

/// Text without the control characters YAML cannot hold (tabs and newlines stay).
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            (c == '\n' || c == '\t' || !c.is_control()) && c != '\u{FFFE}' && c != '\u{FFFF}'
        })
        .map(|c| match c {
            '\u{2028}' | '\u{2029}' | '\u{85}' => ' ',
            c => c,
        })
        .collect()
}

/// A YAML comment's text: one line, nothing that ends it early.
pub fn comment(s: &str) -> String {
    clean(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `key: text` at `indent`, as a literal block when it spans lines.
pub fn text_field(out: &mut String, indent: usize, key: &str, text: &str) {
    let pad = " ".repeat(indent);
    let text = clean(text);
    // A literal block takes its indentation from its first line that has words.
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let literal = text.contains('\n')
        && !first.starts_with([' ', '\t'])
        && text.lines().all(|l| !l.ends_with([' ', '\t']));
    if literal {
        out.push_str(&format!("{pad}{key}: |-\n"));
        for line in text.trim_end().lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("{pad}  {line}\n"));
            }
        }
    } else {
        out.push_str(&format!("{pad}{key}: {}\n", scalar(&text)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_that_yaml_would_read_as_something_else_is_quoted() {
        for s in [
            "true", "no", "10", "1e3", "-x", "a: b", "a #b", "{x}", "", " a", "#x", "*x", "x,y",
            "1é",
        ] {
            assert!(scalar(s).starts_with('"'), "{s} -> {}", scalar(s));
        }
        for s in [
            "video-processing",
            "app=worker",
            "30m",
            "gpu-worker",
            "/data/models",
        ] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn a_comment_stays_on_one_line() {
        assert_eq!(comment("a\nsteps: []\u{2028}b\u{7}"), "a steps: [] b");
    }
}
