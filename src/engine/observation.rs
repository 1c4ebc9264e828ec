//! What a check found: a verdict, a value, optional table rows, words, and how long it took.

use crate::backends::reading::{Table, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub check: String,
    pub title: String,
    pub backend: String,
    pub verdict: Verdict,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why the verdict is what it is: the threshold that tripped, or the cause of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when the error is that the backend gave no answer or could not be used, not an
    /// answer that is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<crate::backends::NoAnswer>,
    pub millis: u64,
}

impl Observation {
    /// The shape conditions and templates see as `checks.<id>`.
    pub fn context(&self) -> Value {
        serde_json::json!({
            "value": self.value,
            "verdict": self.verdict.as_str(),
            "rows": self.table.as_ref().map(Table::as_maps).unwrap_or_default(),
            "text": self.text,
            "unit": self.unit,
            "reason": self.reason,
        })
    }

    /// The value as shown in a table: rounded number with unit, the text, or a row count.
    pub fn display_value(&self) -> String {
        let value = display(&self.value);
        if !value.is_empty() {
            return with_unit(value, &self.unit);
        }
        match &self.table {
            Some(t) if !t.rows.is_empty() => format!("{} rows", t.rows.len()),
            _ => String::new(),
        }
    }
}

/// `3` with `%` is `3%`; with `jobs`, `3 jobs`.
pub fn with_unit(value: String, unit: &Option<String>) -> String {
    match unit.as_deref() {
        Some("%") if !value.is_empty() => format!("{value}%"),
        Some(unit) if !value.is_empty() => format!("{value} {unit}"),
        _ => value,
    }
}

/// A value for people: numbers to at most 4 significant decimals, strings as they are.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format_number(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn format_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let text = if f.abs() >= 100.0 {
        format!("{f:.1}")
    } else if f.abs() >= 1.0 {
        format!("{f:.2}")
    } else {
        format!("{f:.4}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
