//! The runbook file format: what a YAML runbook may say, field by field.
//!
//! Fields that later validation must point at are `Spanned`, so an error names the line and column.
//! Every struct denies unknown fields: a typo is an error, not a silently ignored setting.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub id: S<String>,
    pub title: String,
    pub severity: S<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Alert names this runbook handles.
    #[serde(default)]
    pub alerts: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// Named base URLs the runbook talks to, with defaults the config file and flags override.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Param>,
    #[serde(default)]
    pub escalation: Vec<Escalation>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub messages: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default)]
    pub default: Option<ScalarValue>,
    #[serde(default)]
    pub help: Option<String>,
    /// A secret never reaches the screen or the timeline.
    #[serde(default)]
    pub secret: bool,
}

/// A YAML scalar as a param default: numbers stay numbers so `value > params.budget_pct` compares numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after: S<String>,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Plain words shown with the step: what to look at, what the engineer decides.
    #[serde(default)]
    pub guidance: Option<String>,
    /// Expression: when false the step's actions are not offered and its wait does not run.
    #[serde(default)]
    pub when: Option<S<String>>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub wait: Option<Wait>,
    /// Names of `messages` rendered once the step's checks have run.
    #[serde(default)]
    pub messages: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub fail_if: Option<S<String>>,
    #[serde(default)]
    pub warn_if: Option<S<String>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    // Exactly one backend.
    #[serde(default)]
    pub prometheus: Option<S<String>>,
    #[serde(default)]
    pub http: Option<HttpCheck>,
    #[serde(default)]
    pub shell: Option<ShellSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: S<String>,
    #[serde(default)]
    pub method: Option<S<String>>,
    /// Expected status codes; any other fails the check. Default: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Dotted path of a JSON field in the body to use as the value (`status`, `checks.db`).
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellSpec {
    /// A `sh -c` command line; template values in it are shell-quoted.
    pub command: S<String>,
    /// Check only: a regular expression; the value becomes the number of matching output lines.
    #[serde(default)]
    pub matches: Option<S<String>>,
    /// Check only: how many output lines (or matches) to keep in the observation.
    #[serde(default)]
    pub keep: Option<usize>,
    /// Check only: the value is the number on the last output line (or match), not the count.
    #[serde(default)]
    pub number: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub id: S<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Expression: offer this action only when it holds (in addition to the step's `when`).
    #[serde(default)]
    pub when: Option<S<String>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub http: Option<HttpAction>,
    #[serde(default)]
    pub shell: Option<ShellSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    pub method: S<String>,
    pub url: S<String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Id of a check of this or an earlier step, polled until `until` holds.
    pub check: S<String>,
    pub until: S<String>,
    #[serde(default)]
    pub every: Option<S<String>>,
    pub timeout: S<String>,
}

/// A drill scenario: canned observations for a runbook's checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, ScalarValue>,
    pub checks: BTreeMap<String, ScenarioCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCheck {
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Successive values for a check that a wait polls; the last repeats.
    #[serde(default)]
    pub values: Vec<serde_json::Value>,
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub text: Option<String>,
    /// The check cannot reach its backend: this is the cause shown.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub millis: Option<u64>,
}
