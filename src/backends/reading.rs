//! What a backend read: a verdict it knows of itself, a value, optional table rows and words.
//! The engine judges a reading by the runbook's thresholds and records it as an observation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Skipped,
    Ok,
    Warn,
    Fail,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

/// Rows under a check: a Prometheus vector, lines of output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Each row's verdict, where thresholds were applied row by row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
}

impl Table {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Table {
        Table {
            columns,
            rows,
            verdicts: Vec::new(),
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Rows as maps, the shape conditions and templates read (`checks.x.rows`), with each
    /// row's `verdict` where it has one.
    pub fn as_maps(&self) -> Vec<serde_json::Map<String, Value>> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut map: serde_json::Map<String, Value> = self
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect();
                if let Some(verdict) = self.verdicts.get(i) {
                    map.insert("verdict".into(), verdict.as_str().into());
                }
                map
            })
            .collect()
    }
}

/// What a backend read, before the runbook's thresholds judge it.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub value: Value,
    pub table: Option<Table>,
    pub text: Option<String>,
    /// A verdict the backend itself knows (an unexpected HTTP status, a failed command, no data).
    pub verdict: Option<(Verdict, String)>,
    /// How long it took, where the source says so (a drill's scenario) rather than the clock.
    pub took_ms: Option<u64>,
}

/// A verdict a scenario gives for what the backend itself judges.
pub fn parse_verdict(text: &str) -> Option<Verdict> {
    match text {
        "ok" => Some(Verdict::Ok),
        "warn" => Some(Verdict::Warn),
        "fail" => Some(Verdict::Fail),
        _ => None,
    }
}

pub fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}
