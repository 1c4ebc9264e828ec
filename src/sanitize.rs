//! Text from outside (server answers, logs, files, alert labels) on its way to a terminal: escape
//! sequences are dropped whole and other control characters replaced, so nothing a monitored
//! system says can move the cursor, retitle the window or hide a line.

use std::borrow::Cow;

const REPLACEMENT: char = '\u{FFFD}';
const ESC: char = '\u{1b}';

/// The text with every terminal control sequence removed. Newlines and tabs stay.
pub fn text(input: &str) -> Cow<'_, str> {
    if !input.chars().any(is_unwanted) {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek() {
                // CSI: ESC [ parameters… final byte (@ to ~).
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, APC, PM, SOS: up to BEL or ST (ESC \).
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == ESC && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // A two-character sequence: ESC and one more.
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            c if is_unwanted(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_unwanted(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Every string inside a JSON value, made printable.
pub fn value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(clean) = text(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(self::value),
        serde_json::Value::Object(map) => map.values_mut().for_each(self::value),
        _ => {}
    }
}

/// Serialized JSON with the C1 control characters (U+0080 to U+009F) escaped as well: serde_json
/// escapes only those below U+0020, and some terminals obey the others. In JSON text they can
/// only stand inside strings, so escaping them keeps the document's meaning.
pub fn json_text(serialized: String) -> String {
    if !serialized
        .chars()
        .any(|c| ('\u{80}'..='\u{9f}').contains(&c))
    {
        return serialized;
    }
    let mut out = String::with_capacity(serialized.len() + 8);
    for c in serialized.chars() {
        if ('\u{80}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_dropped_whole() {
        assert_eq!(text("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(text("\u{1b}]0;owned\u{7}title"), "title");
        assert_eq!(text("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(text("a\u{1b}cb"), "ab");
        assert_eq!(text("cut\u{1b}"), "cut");
    }

    #[test]
    fn other_controls_are_replaced_and_lines_kept() {
        assert_eq!(text("a\rb\u{8}c\u{9b}2J"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}2J");
        assert_eq!(text("one\n\ttwo"), "one\n\ttwo");
        assert!(matches!(text("plain café"), Cow::Borrowed(_)));
    }

    #[test]
    fn c1_controls_are_escaped_in_json() {
        let json = serde_json::to_string(&serde_json::json!({"t": "x\u{9b}2J\u{1b}"})).unwrap();
        assert_eq!(json_text(json), r#"{"t":"x\u009b2J\u001b"}"#);
    }
}
