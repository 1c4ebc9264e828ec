//! The runbook file format: what a YAML runbook may say, field by field.
//!
//! Fields that later validation must point at are `Spanned`, so an error names the line and column.
//! Every struct denies unknown fields: a typo is an error, not a silently ignored setting.

use crate::backends::kinds::{ActionKind, CheckKind};
use crate::backends::scenario::ScenarioCheck;
use crate::spec::{S, ScalarValue};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    /// The services an incident of this runbook affects, for the report.
    #[serde(default)]
    pub services: Vec<String>,
    /// The check whose value is the number of users impacted, for the report.
    #[serde(default)]
    pub users_impacted: Option<S<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// Named base URLs the runbook talks to, with defaults the config file and flags override.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Param>,
    #[serde(default)]
    pub escalation: Vec<Escalation>,
    /// How often to post a status update while the incident is worked (the playbook's
    /// "Updates: every 30 minutes"), and which message to post.
    #[serde(default)]
    pub updates: Option<Updates>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub messages: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default)]
    pub default: Option<S<ScalarValue>>,
    #[serde(default)]
    pub help: Option<String>,
    /// A secret never reaches the screen or the timeline.
    #[serde(default)]
    pub secret: bool,
    /// `team: true`: a value the runbook's source does not give (a threshold the team chose), so
    /// `show` marks it as the team's to set.
    #[serde(default)]
    pub team: Option<S<bool>>,
}

impl Param {
    /// The team set this value; the runbook's source does not give it.
    pub fn is_team(&self) -> bool {
        self.team.as_ref().is_some_and(|t| t.value)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after: S<String>,
    pub to: String,
    /// Not said once this holds (`acknowledged`, `mitigated`, `resolved`): the playbook's
    /// "30 minutes if no response" is `unless: acknowledged`.
    #[serde(default)]
    pub unless: Option<S<String>>,
    /// Said only if this holds (`severity == P0`): "2 hours if critical business impact".
    #[serde(default, rename = "if")]
    pub only_if: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Updates {
    pub every: S<String>,
    /// A name under `messages:`: the update to post.
    #[serde(default)]
    pub message: Option<S<String>>,
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

/// A check: what every check has, and the one kind that says what it reads.
#[derive(Debug)]
pub struct Check {
    pub id: S<String>,
    pub title: Option<String>,
    pub unit: Option<String>,
    pub fail_if: Option<S<String>>,
    pub warn_if: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub kind: CheckKind,
}

/// An action: what every action has, and the one kind that says what it changes.
#[derive(Debug)]
pub struct Action {
    pub id: S<String>,
    pub title: Option<String>,
    /// Expression: offer this action only when it holds (in addition to the step's `when`).
    pub when: Option<S<String>>,
    /// A step with a wait: offer this action only once that wait was met. A revert (an action
    /// that puts back what an earlier one changed) must have it.
    pub after: Option<S<String>>,
    /// `false`: it changes again what an earlier action set without putting it back (a second,
    /// larger scale); `true`: a revert `validate` cannot see (an HTTP call). Absent: `validate`
    /// reads it from what the actions touch.
    pub reverts: Option<S<bool>>,
    pub timeout: Option<S<String>>,
    /// `two-person`: sent only once someone other than the driver approved its exact plan.
    pub approval: Option<S<ApprovalRule>>,
    /// How long the driver waits for that approval (else the config file's, else 15m).
    pub approval_timeout: Option<S<String>>,
    pub kind: ActionKind,
}

/// Who must approve an action besides the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalRule {
    TwoPerson,
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
    /// The endpoints of the team this incident happened to (`incident_channel: https://…`): in a
    /// drill nothing is sent to them, but an action that needs one is planned as it would be live.
    #[serde(default)]
    pub endpoints: BTreeMap<String, S<String>>,
    /// Replica counts of deployments when the scenario starts, for the plans of scale actions.
    #[serde(default)]
    pub deployments: BTreeMap<String, S<i64>>,
    pub checks: BTreeMap<String, ScenarioCheck>,
    /// What must happen when the runbook replays this scenario; `oncall test` checks it.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// For a scored drill: the right mitigations, the harmful ones, and how soon the first right
    /// one should be approved (`10m`).
    #[serde(default)]
    pub correct: Vec<S<String>>,
    #[serde(default)]
    pub harmful: Vec<S<String>>,
    #[serde(default)]
    pub target: Option<S<String>>,
}

/// A scenario's expectations, each with its place in the file for the message when it fails.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub exit_code: Option<S<i64>>,
    /// Steps that run, and steps skipped (their `when` did not hold).
    #[serde(default)]
    pub steps_run: Vec<S<String>>,
    #[serde(default)]
    pub steps_skipped: Vec<S<String>>,
    /// Actions offered (planned and asked), and actions not offered.
    #[serde(default)]
    pub offered: Vec<S<String>>,
    #[serde(default)]
    pub not_offered: Vec<S<String>>,
    /// Check id → its verdict: ok, warn, fail or error.
    #[serde(default)]
    pub verdicts: BTreeMap<String, S<String>>,
    /// Message name → texts the message contains.
    #[serde(default)]
    pub messages: BTreeMap<String, Vec<S<String>>>,
}

// A check or an action is one YAML map: its common fields beside one key naming its kind. Serde's
// derive cannot say "exactly one of these keys", so the maps are read here. The errors are
// serde's own (unknown field with every field that would be valid, missing field, duplicate
// field), plus "no backend" at the map and "more than one backend" at the second one.

/// Two kinds in one map: refused at the second one's value, so the error points there.
struct Refuse(String);

impl<'de> serde::de::DeserializeSeed<'de> for Refuse {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Err(serde::de::Error::custom(self.0))
    }
}

/// Reads one field into its slot, refusing a second one of the same name.
fn field<'de, A, T>(map: &mut A, slot: &mut Option<T>, name: &'static str) -> Result<(), A::Error>
where
    A: serde::de::MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(serde::de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The words for a map with no kind, or a second one; `Problem::from_yaml` finds its hint in them.
fn no_backend(what: &str, id: &S<String>, keys: &[&str]) -> String {
    format!(
        "{what} '{}' has no backend, give it one of: {}",
        id.value,
        keys.join(", ")
    )
}

fn two_backends(what: &str, id: &Option<S<String>>, first: &str, second: &str) -> String {
    let id = id
        .as_ref()
        .map_or(String::new(), |id| format!(" '{}'", id.value));
    format!("{what}{id} has more than one backend: `{first}` and `{second}`")
}

/// Every field a map may hold: the common ones, then each kind's key.
const fn all_fields<const N: usize>(
    common: &[&'static str],
    kinds: &[&'static str],
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < common.len() {
        out[i] = common[i];
        i += 1;
    }
    let mut j = 0;
    while j < kinds.len() {
        out[i + j] = kinds[j];
        j += 1;
    }
    out
}

const CHECK_COMMON: &[&str] = &["id", "title", "unit", "fail_if", "warn_if", "timeout"];
const CHECK_FIELDS: &[&str] =
    &all_fields::<{ CHECK_COMMON.len() + CheckKind::KEYS.len() }>(CHECK_COMMON, CheckKind::KEYS);
const ACTION_COMMON: &[&str] = &[
    "id",
    "title",
    "when",
    "after",
    "reverts",
    "timeout",
    "approval",
    "approval_timeout",
];
const ACTION_FIELDS: &[&str] = &all_fields::<{ ACTION_COMMON.len() + ActionKind::KEYS.len() }>(
    ACTION_COMMON,
    ActionKind::KEYS,
);

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Check;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a check")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Check, A::Error> {
                let (mut id, mut title, mut unit, mut fail_if, mut warn_if, mut timeout) =
                    (None, None, None, None, None, None);
                let mut kind: Option<CheckKind> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => field(&mut map, &mut id, "id")?,
                        "title" => field(&mut map, &mut title, "title")?,
                        "unit" => field(&mut map, &mut unit, "unit")?,
                        "fail_if" => field(&mut map, &mut fail_if, "fail_if")?,
                        "warn_if" => field(&mut map, &mut warn_if, "warn_if")?,
                        "timeout" => field(&mut map, &mut timeout, "timeout")?,
                        other => match &kind {
                            Some(first) if CheckKind::KEYS.contains(&other) => {
                                let words = two_backends("check", &id, first.key(), other);
                                map.next_value_seed(Refuse(words))?;
                            }
                            _ => match CheckKind::read_value(other, &mut map)? {
                                Some(read) => kind = Some(read),
                                None => {
                                    return Err(serde::de::Error::unknown_field(
                                        other,
                                        CHECK_FIELDS,
                                    ));
                                }
                            },
                        },
                    }
                }
                let id = id.ok_or_else(|| serde::de::Error::missing_field("id"))?;
                let kind = kind.ok_or_else(|| {
                    serde::de::Error::custom(no_backend("check", &id, CheckKind::KEYS))
                })?;
                Ok(Check {
                    id,
                    title: title.flatten(),
                    unit: unit.flatten(),
                    fail_if: fail_if.flatten(),
                    warn_if: warn_if.flatten(),
                    timeout: timeout.flatten(),
                    kind,
                })
            }
        }
        d.deserialize_struct("Check", CHECK_FIELDS, Fields)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Action;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an action")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Action, A::Error> {
                let (mut id, mut title, mut when, mut timeout) = (None, None, None, None);
                let (mut after, mut reverts, mut approval, mut approval_timeout) =
                    (None, None, None, None);
                let mut kind: Option<ActionKind> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => field(&mut map, &mut id, "id")?,
                        "title" => field(&mut map, &mut title, "title")?,
                        "when" => field(&mut map, &mut when, "when")?,
                        "after" => field(&mut map, &mut after, "after")?,
                        "reverts" => field(&mut map, &mut reverts, "reverts")?,
                        "timeout" => field(&mut map, &mut timeout, "timeout")?,
                        "approval" => field(&mut map, &mut approval, "approval")?,
                        "approval_timeout" => {
                            field(&mut map, &mut approval_timeout, "approval_timeout")?
                        }
                        other => match &kind {
                            Some(first) if ActionKind::KEYS.contains(&other) => {
                                let words = two_backends("action", &id, first.key(), other);
                                map.next_value_seed(Refuse(words))?;
                            }
                            _ => match ActionKind::read_value(other, &mut map)? {
                                Some(read) => kind = Some(read),
                                None => {
                                    return Err(serde::de::Error::unknown_field(
                                        other,
                                        ACTION_FIELDS,
                                    ));
                                }
                            },
                        },
                    }
                }
                let id = id.ok_or_else(|| serde::de::Error::missing_field("id"))?;
                let kind = kind.ok_or_else(|| {
                    serde::de::Error::custom(no_backend("action", &id, ActionKind::KEYS))
                })?;
                Ok(Action {
                    id,
                    title: title.flatten(),
                    when: when.flatten(),
                    after: after.flatten(),
                    reverts: reverts.flatten(),
                    timeout: timeout.flatten(),
                    approval: approval.flatten(),
                    approval_timeout: approval_timeout.flatten(),
                    kind,
                })
            }
        }
        d.deserialize_struct("Action", ACTION_FIELDS, Fields)
    }
}
