//! The drill backend: readings come from a scenario file instead of live systems, each judged
//! by its kind as the live backend would judge it.

use super::kinds::CheckKind;
use super::reading::{Reading, Table, parse_verdict};
use super::{BackendError, Reader, humanize};
use crate::spec::S;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// What a scenario says one check read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCheck {
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Successive values for a check that a wait polls; the last repeats.
    #[serde(default)]
    pub values: Vec<serde_json::Value>,
    #[serde(default)]
    /// In the scenario's own column order.
    pub rows: Vec<indexmap::IndexMap<String, serde_json::Value>>,
    #[serde(default)]
    pub text: Option<String>,
    /// The check cannot reach its backend: this is the cause shown.
    #[serde(default)]
    pub error: Option<String>,
    /// What the backend itself would judge (`fail` for pods not ready), with why; thresholds still apply.
    #[serde(default)]
    pub verdict: Option<S<String>>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub millis: Option<S<u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the scenario has no result for check '{check}'")]
    NoResult { check: String },
    /// The error the scenario says the check failed with.
    #[error("{0}")]
    Canned(String),
    #[error("no answer within {}", humanize(*.after))]
    TimedOut { after: Duration },
}

pub struct ScenarioReader {
    checks: BTreeMap<String, ScenarioCheck>,
    polls: Mutex<BTreeMap<String, usize>>,
    /// Each check takes the time the scenario says (a drill an engineer watches), or none.
    paced: bool,
}

impl ScenarioReader {
    pub fn new(checks: BTreeMap<String, ScenarioCheck>) -> Self {
        ScenarioReader {
            checks,
            polls: Mutex::new(BTreeMap::new()),
            paced: true,
        }
    }

    /// No check waits for its scenario time (it still reports it): for `oncall test`.
    pub fn instant(mut self) -> Self {
        self.paced = false;
        self
    }
}

fn table(rows: &[indexmap::IndexMap<String, Value>]) -> Option<Table> {
    if rows.is_empty() {
        return None;
    }
    let keys: indexmap::IndexSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    let mut columns: Vec<String> = keys
        .into_iter()
        .filter(|k| *k != "value")
        .cloned()
        .collect();
    let has_value = rows.iter().any(|r| r.contains_key("value"));
    if has_value {
        columns.push("value".into());
    }
    let rows = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Some(Table::new(columns, rows))
}

impl Reader for ScenarioReader {
    async fn read(
        &self,
        id: &str,
        kind: &CheckKind,
        _ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let Some(canned) = self.checks.get(id) else {
            return Err(Error::NoResult { check: id.into() }.into());
        };
        let poll = {
            let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
            let n = polls.entry(id.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        // A drill looks like a run: each check takes the time the scenario says it took.
        let millis = Duration::from_millis(canned.millis.as_ref().map_or(120, |m| m.value));
        if self.paced {
            tokio::time::sleep(millis.min(timeout)).await;
        }
        if millis > timeout {
            return Err(Error::TimedOut { after: timeout }.into());
        }
        if let Some(error) = &canned.error {
            return Err(Error::Canned(error.clone()).into());
        }
        let value = match canned.values.as_slice() {
            [] => canned.value.clone().unwrap_or(Value::Null),
            values => values[poll.min(values.len() - 1)].clone(),
        };
        let mut reading = Reading {
            value,
            table: table(&canned.rows),
            text: canned.text.clone(),
            verdict: canned
                .verdict
                .as_ref()
                .and_then(|v| parse_verdict(&v.value))
                .map(|v| (v, canned.reason.clone().unwrap_or_default())),
            // The scenario's time, not the replay's: a drill's screen is the same every time.
            took_ms: Some(millis.as_millis() as u64),
        };
        kind.replay(&mut reading);
        Ok(reading)
    }

    fn settled(&self, id: &str) -> bool {
        let polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        let read = polls.get(id).copied().unwrap_or(0);
        self.checks
            .get(id)
            .is_none_or(|canned| read >= canned.values.len().max(1))
    }
}
