//! The drill backend: readings come from a scenario file instead of live systems.

use super::{BackendError, Reader, humanize};
use crate::engine::observation::{Reading, Table, Verdict};
use crate::runbook::{Check, Scenario, ScenarioCheck};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

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
}

impl ScenarioReader {
    pub fn new(scenario: Scenario) -> Self {
        ScenarioReader {
            checks: scenario.checks,
            polls: Mutex::new(BTreeMap::new()),
        }
    }
}

fn table(rows: &[BTreeMap<String, Value>]) -> Option<Table> {
    if rows.is_empty() {
        return None;
    }
    let keys: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
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

/// A verdict a scenario gives for what the backend itself judges.
pub fn parse_verdict(text: &str) -> Option<Verdict> {
    match text {
        "ok" => Some(Verdict::Ok),
        "warn" => Some(Verdict::Warn),
        "fail" => Some(Verdict::Fail),
        _ => None,
    }
}

impl Reader for ScenarioReader {
    async fn read(
        &self,
        check: &Check,
        _ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let id = &check.id.value;
        let Some(canned) = self.checks.get(id) else {
            return Err(Error::NoResult { check: id.clone() }.into());
        };
        // A drill looks like a run: each check takes the time the scenario says it took.
        let millis = Duration::from_millis(canned.millis.as_ref().map_or(120, |m| m.value));
        tokio::time::sleep(millis.min(timeout)).await;
        if millis > timeout {
            return Err(Error::TimedOut { after: timeout }.into());
        }
        if let Some(error) = &canned.error {
            return Err(Error::Canned(error.clone()).into());
        }
        let poll = {
            let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
            let n = polls.entry(id.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
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
        };
        // An HTTP check is judged by its status as it would be live.
        if let (Some(spec), Some(status)) = (&check.http, reading.value.as_u64())
            && let Some(why) = super::http::unexpected(status as u16, &spec.expect_status)
        {
            reading.verdict = Some((Verdict::Fail, why));
        }
        Ok(reading)
    }
}
