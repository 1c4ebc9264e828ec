//! What a runbook was when an incident opened: a hash of its text and one of each part (each
//! step, each other top-level section), so a resumed run can tell it is the same runbook and
//! say what changed when it is not.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub sha256: String,
    /// `step ID` for each step, the section's name for the rest (`params`, `messages`, ...).
    pub parts: BTreeMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Digest {
    pub fn of(text: &str) -> Digest {
        let mut parts = BTreeMap::new();
        if let Ok(Value::Object(sections)) = serde_saphyr::from_str::<Value>(text) {
            for (name, value) in sections {
                match (name.as_str(), value) {
                    ("steps", Value::Array(steps)) => {
                        for (n, step) in steps.iter().enumerate() {
                            let id = step["id"]
                                .as_str()
                                .map_or_else(|| format!("#{}", n + 1), str::to_string);
                            parts.insert(format!("step {id}"), hex(step.to_string().as_bytes()));
                        }
                    }
                    (_, value) => {
                        parts.insert(name, hex(value.to_string().as_bytes()));
                    }
                }
            }
        }
        Digest {
            sha256: hex(text.as_bytes()),
            parts,
        }
    }

    /// What changed from `then` to `self`, in words; empty when the text is the same.
    pub fn changes_since(&self, then: &Digest) -> Vec<String> {
        if self.sha256 == then.sha256 {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (part, hash) in &then.parts {
            match self.parts.get(part) {
                None => changes.push(format!("{part} removed")),
                Some(now) if now != hash => changes.push(format!("{part} changed")),
                Some(_) => {}
            }
        }
        for part in self.parts.keys().filter(|p| !then.parts.contains_key(*p)) {
            changes.push(format!("{part} added"));
        }
        if changes.is_empty() {
            changes.push("its text changed (comments or layout only)".into());
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str =
        "id: x\nseverity: P2\nsteps:\n  - id: a\n    title: A\n  - id: b\n    title: B\n";

    #[test]
    fn names_the_steps_and_sections_that_changed() {
        let then = Digest::of(BEFORE);
        assert!(Digest::of(BEFORE).changes_since(&then).is_empty());
        let now = Digest::of(
            "id: x\nseverity: P1\nsteps:\n  - id: a\n    title: A2\n  - id: c\n    title: C\n",
        );
        assert_eq!(
            now.changes_since(&then),
            vec![
                "severity changed",
                "step a changed",
                "step b removed",
                "step c added"
            ]
        );
        let comment = Digest::of(&format!("# a comment\n{BEFORE}"));
        assert_eq!(
            comment.changes_since(&then),
            vec!["its text changed (comments or layout only)"]
        );
    }
}
