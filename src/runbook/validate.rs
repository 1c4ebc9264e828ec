//! Runbook validation: every problem as `file:line:column: message` with a hint.

use super::schema::*;
use super::{Bounds, Source, bounds, parse_duration, parse_duration_in};
use crate::expr::{self, Kind};
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Problem {
    pub fn from_yaml(file: &str, err: &serde_saphyr::Error) -> Problem {
        let location = err.location().unwrap_or(Location::UNKNOWN);
        let message = err.without_snippet().to_string();
        // The parser's text repeats the position; keep only the words.
        let message = message.lines().next().unwrap_or("").trim().to_string();
        let message = strip_position(&message);
        let hint = if message.contains("unknown field") {
            Some(match closest_field(&message) {
                Some(field) => format!("did you mean `{field}`?"),
                None => "check the spelling; the README lists the fields a runbook may use".into(),
            })
        } else if message.contains("missing field") {
            Some("add the field; `oncall show error-budget` shows a complete runbook".to_string())
        } else {
            None
        };
        Problem {
            file: file.to_string(),
            line: location.line(),
            column: location.column(),
            message,
            hint,
        }
    }
}

fn strip_position(message: &str) -> String {
    // "error: line 3 column 5: unknown field … at line 3, column 5" → "unknown field …"
    let trimmed = message.trim_start_matches("error: ");
    let trimmed = match trimmed.find(": ") {
        Some(i) if trimmed[..i].starts_with("line ") => &trimmed[i + 2..],
        _ => trimmed,
    };
    match trimmed.rfind(" at line ") {
        Some(i) if trimmed[i..].contains(", column ") => trimmed[..i].to_string(),
        _ => trimmed.to_string(),
    }
}

/// The expected field nearest to a misspelt one: "unknown field `fial_if`, expected one of id, fail_if".
fn closest_field(message: &str) -> Option<String> {
    let unknown = message.split('`').nth(1)?;
    let expected = message
        .split("expected one of ")
        .nth(1)
        .or_else(|| message.split("expected ").nth(1))?;
    expected
        .split(',')
        .map(|f| f.trim().trim_matches('`'))
        .map(|f| (edit_distance(unknown, f), f))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, f)| f.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = here;
        }
    }
    row[b.len()]
}

/// Several problems as one error for `anyhow`.
#[derive(Debug)]
pub struct ProblemList(pub Vec<Problem>);

impl fmt::Display for ProblemList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProblemList {}

/// Parses and validates a runbook.
pub fn load(source: &Source) -> Result<Runbook, Vec<Problem>> {
    let runbook: Runbook = source.parse().map_err(|p| vec![p])?;
    let problems = check_runbook(source, &runbook);
    if problems.is_empty() {
        Ok(runbook)
    } else {
        Err(problems)
    }
}

/// Parses and validates a scenario against its runbook.
pub fn load_scenario(source: &Source, runbook: &Runbook) -> Result<Scenario, Vec<Problem>> {
    let scenario: Scenario = source.parse().map_err(|p| vec![p])?;
    let mut v = Validator::new(source);
    for name in scenario.params.keys() {
        if !runbook.params.contains_key(name) {
            v.problem_at(
                1,
                1,
                format!(
                    "scenario sets param '{name}' that runbook '{}' does not declare",
                    runbook.id.value
                ),
                None,
            );
        }
    }
    for count in scenario.deployments.values() {
        v.count(Some(count), "replica count", 0..=MAX_REPLICAS);
    }
    for canned in scenario.checks.values() {
        v.count(canned.millis.as_ref(), "`millis`", 0..=60_000);
        if let Some(verdict) = &canned.verdict
            && crate::backends::scenario::parse_verdict(&verdict.value).is_none()
        {
            v.problem(
                verdict,
                format!("verdict '{}' is not one of ok, warn, fail", verdict.value),
                Some("a backend that cannot be reached is `error: \"cause\"`".into()),
            );
        }
    }
    for id in scenario.checks.keys() {
        if runbook.check(id).is_none() {
            v.problem_at(
                1,
                1,
                format!(
                    "scenario gives a result for check '{id}', which runbook '{}' does not have",
                    runbook.id.value
                ),
                Some(format!(
                    "its checks: {}",
                    runbook
                        .steps_checks()
                        .map(|(_, c)| c.id.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    if v.problems.is_empty() {
        Ok(scenario)
    } else {
        Err(v.problems)
    }
}

struct Validator<'a> {
    source: &'a Source,
    lines: Vec<&'a str>,
    problems: Vec<Problem>,
    /// Param and endpoint defaults to trial-render templates with, made once per runbook.
    placeholder: Option<serde_json::Value>,
}

/// What a field may read: which checks are visible and whether `value`/`labels` exist.
struct Scope<'s> {
    checks: &'s BTreeSet<String>,
    locals: &'static [&'static str],
}

const THRESHOLD_LOCALS: &[&str] = &["value", "labels"];
const WAIT_LOCALS: &[&str] = &["value"];
const NO_LOCALS: &[&str] = &[];
/// The longest id, title, unit, help text and guidance.
const MAX_ID: usize = 64;
const MAX_TITLE: usize = 200;
const MAX_UNIT: usize = 24;
const MAX_HELP: usize = 1000;
const MAX_PROSE: usize = 8 * 1024;
/// The most lines or rows a check may keep (`keep`, `first`, `limit`).
const MAX_ROWS: usize = 1000;
/// The most replicas a scale may ask for (Kubernetes counts them in 32 bits; no fleet is near this).
pub const MAX_REPLICAS: i64 = 100_000;
const GLOBALS: &[&str] = &[
    "params",
    "endpoints",
    "checks",
    "incident",
    "range",
    "dict",
    "namespace",
];

impl<'a> Validator<'a> {
    fn new(source: &'a Source) -> Self {
        Validator {
            source,
            lines: source.text.lines().collect(),
            problems: Vec::new(),
            placeholder: None,
        }
    }

    fn problem_at(&mut self, line: u64, column: u64, message: String, hint: Option<String>) {
        self.problems.push(Problem {
            file: self.source.name.clone(),
            line,
            column,
            message,
            hint,
        });
    }

    fn problem<T>(&mut self, at: &S<T>, message: String, hint: Option<String>) {
        self.problem_at(at.referenced.line(), at.referenced.column(), message, hint);
    }

    /// Position of a byte offset inside a scalar's text, allowing for an opening quote.
    fn inside(&self, scalar: &S<String>, line_in_text: usize, offset: usize) -> (u64, u64) {
        let at = &scalar.referenced;
        // Columns count characters; the offset counts bytes.
        let offset = scalar
            .value
            .get(..offset)
            .map_or(offset, |before| before.chars().count());
        let line = at.line() as usize;
        let col = at.column() as usize;
        let first = self
            .lines
            .get(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(col.saturating_sub(1)));
        if line_in_text > 1 || matches!(first, Some('|') | Some('>')) {
            return (at.line(), at.column());
        }
        let quote = usize::from(matches!(first, Some('"') | Some('\'')));
        (at.line(), (col + quote + offset) as u64)
    }

    /// A problem at a place inside a scalar's text.
    fn problem_inside(
        &mut self,
        at: &S<String>,
        line_in_text: usize,
        offset: usize,
        message: String,
        hint: &str,
    ) {
        let (line, col) = self.inside(at, line_in_text, offset);
        self.problem_at(line, col, message, Some(hint.into()));
    }

    /// A count within its range: `keep: 100000000000` would allocate for that many lines.
    fn count<N>(&mut self, at: Option<&S<N>>, what: &str, range: std::ops::RangeInclusive<N>)
    where
        N: PartialOrd + Copy + fmt::Display,
    {
        if let Some(n) = at
            && !range.contains(&n.value)
        {
            self.problem(
                n,
                format!("{what} {} is out of range", n.value),
                Some(format!("it may be {} to {}", range.start(), range.end())),
            );
        }
    }

    fn duration(&mut self, at: &S<String>, what: &str, bounds: Bounds) {
        if let Err(err) = parse_duration_in(&at.value, bounds) {
            // An out-of-range error already names the range.
            let hint = (!err.contains("out of range"))
                .then(|| "write a duration such as 30s, 15m, 1h or 1h30m".to_string());
            self.problem(at, format!("{what}: {err}"), hint);
        }
    }

    fn names(&mut self, at: &S<String>, kind: Kind, scope: &Scope, rb: &Runbook, what: &str) {
        let placeholder = self
            .placeholder
            .get_or_insert_with(|| placeholder_context(rb));
        let (names, tried) = match expr::inspect(&at.value, kind, &*placeholder) {
            Ok(found) => found,
            Err(err) => {
                let hint = match kind {
                    _ if err.too_large => {
                        "split it: a check can compute part of it, a param can hold a constant"
                    }
                    Kind::Expression => {
                        "conditions are MiniJinja expressions, e.g. `checks.error_rate.value > params.budget_pct`"
                    }
                    Kind::Template => "templates are MiniJinja, e.g. `{{ params.namespace }}`",
                };
                self.problem_inside(at, err.line, err.offset, format!("{what}: {err}"), hint);
                return;
            }
        };
        // Filters, tests and functions are only looked up when run: the trial run on placeholder values finds them.
        if let Some(err) = tried
            && (err.unknown_name || err.out_of_fuel)
        {
            let hint = if err.out_of_fuel {
                "its loops run too long to finish during an incident: loop over fewer items"
            } else {
                "the MiniJinja built-in filters and tests are available, and `promql_str` and `urlpath`"
            };
            self.problem_inside(at, err.line, err.offset, format!("{what}: {err}"), hint);
        }
        for name in names {
            let mut parts = name.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            let known = match (root, second) {
                ("params", Some(p)) => rb.params.contains_key(p).then_some(()).ok_or_else(|| {
                    (format!("{what} names param '{p}', which the runbook does not declare"), format!("declared params: {}", join_keys(&rb.params)))
                }),
                ("endpoints", Some(e)) => (e == "prometheus" || rb.endpoints.contains_key(e)).then_some(()).ok_or_else(|| {
                    (format!("{what} names endpoint '{e}', which the runbook does not declare"), format!("declare it under `endpoints:`; declared: {}", join_keys(&rb.endpoints)))
                }),
                ("checks", Some(c)) => scope.checks.contains(c).then_some(()).ok_or_else(|| {
                    let hint = if rb.check(c).is_some() {
                        format!("check '{c}' is not visible here: conditions read checks of their own or earlier steps, thresholds and templates of a check only earlier steps")
                    } else {
                        format!("checks it can read here: {}", scope.checks.iter().cloned().collect::<Vec<_>>().join(", "))
                    };
                    (format!("{what} names check '{c}', which does not exist here"), hint)
                }),
                (root, _) if GLOBALS.contains(&root) || scope.locals.contains(&root) => Ok(()),
                (root, _) => {
                    let mut allowed: Vec<&str> = scope.locals.to_vec();
                    allowed.extend(["params", "endpoints", "checks", "incident"]);
                    Err((format!("{what} uses unknown name '{root}'"), format!("names available here: {}", allowed.join(", "))))
                }
            };
            if let Err((message, hint)) = known {
                self.problem(at, message, Some(hint));
            }
        }
    }

    /// A check or an action names exactly one backend.
    fn one_backend(&mut self, id: &S<String>, what: &str, backends: &[(&str, bool)]) {
        let names = backends
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        match backends.iter().filter(|(_, set)| *set).count() {
            1 => {}
            0 => self.problem(
                id,
                format!("{what} '{}' has no backend", id.value),
                Some(format!("give it one of: {names}")),
            ),
            _ => self.problem(
                id,
                format!("{what} '{}' has more than one backend", id.value),
                Some(format!("split it into one {what} per backend")),
            ),
        }
    }

    fn shell_command(&mut self, at: &S<String>, scope: &Scope, rb: &Runbook) {
        self.names(at, Kind::Template, scope, rb, "command");
        if let Some(offset) = expr::quoted_placeholder(&at.value) {
            self.problem_inside(
                at,
                1,
                offset,
                "a template value inside quotes in a shell command: the quotes would undo its quoting".into(),
                "write {{ value }} without quotes around it: oncall quotes every value for the shell",
            );
        }
    }

    fn promql(&mut self, at: &S<String>, rb: &Runbook, scope: &Scope) {
        self.names(at, Kind::Template, scope, rb, "query");
        if let Some(offset) = expr::unescaped_matcher_value(&at.value) {
            self.problem_inside(
                at,
                1,
                offset,
                "a template value inside a label matcher without `promql_str`: a value with a quote would rewrite the query".into(),
                "write it in double quotes and escape it: namespace=\"{{ params.namespace | promql_str }}\"",
            );
        }
        let placeholder = self
            .placeholder
            .get_or_insert_with(|| placeholder_context(rb));
        let Ok(query) = expr::render(&at.value, &*placeholder) else {
            return;
        };
        if let Err(why) = promql_within_limits(&query) {
            self.problem(
                at,
                format!("the query is too large to check: {why}"),
                Some("split it into several checks, or record it as a rule in Prometheus".into()),
            );
            return;
        }
        if let Err(err) = promql_parser::parser::parse(&query) {
            let message = err.lines().next().unwrap_or_default().to_string();
            self.problem(
                at,
                format!("invalid PromQL: {message}"),
                Some(format!(
                    "the query as sent: {}",
                    crate::backends::snippet(&query)
                )),
            );
        }
    }

    /// A text the runbook shows (titles, units, guidance): it appears on the screen and in
    /// events, so it is held to a size that fits them. Reported at its owner's id.
    fn text(&mut self, owner: &S<String>, field: &str, text: Option<&str>, max: usize) {
        if let Some(text) = text
            && text.chars().count() > max
        {
            self.problem(
                owner,
                format!(
                    "`{field}` of '{}' is {} characters long",
                    owner.value,
                    text.chars().count()
                ),
                Some(format!("it may be at most {max} characters")),
            );
        }
    }

    fn check_id(&mut self, at: &S<String>, what: &str, seen: &mut BTreeMap<String, u64>) {
        let id = &at.value;
        if id.len() > MAX_ID {
            self.problem(
                at,
                format!(
                    "{what} id '{}…' is {} characters long",
                    id.chars().take(20).collect::<String>(),
                    id.chars().count()
                ),
                Some(format!(
                    "an id may be at most {MAX_ID} characters; it stands in every event"
                )),
            );
            return;
        }
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.problem(
                at,
                format!("{what} id '{id}' may only use letters, digits, '-' and '_'"),
                None,
            );
        } else if (what == "check" || what == "action") && id.contains('-') {
            self.problem(
                at,
                format!(
                    "{what} id '{id}' is used in expressions as checks.{id}: use '_' instead of '-'"
                ),
                Some(format!("rename it to '{}'", id.replace('-', "_"))),
            );
        }
        if let Some(line) = seen.insert(id.clone(), at.referenced.line()) {
            self.problem(
                at,
                format!("duplicate {what} id '{id}'"),
                Some(format!(
                    "'{id}' is already used on line {line}; ids must be unique in a runbook"
                )),
            );
        }
    }
}

/// The longest query `validate` parses, and how deep its brackets may nest: the PromQL parser
/// recurses on nesting and slows down more than linearly on length.
const MAX_PROMQL: usize = 8 * 1024;
const MAX_PROMQL_NESTING: usize = 64;

fn promql_within_limits(query: &str) -> Result<(), String> {
    if query.len() > MAX_PROMQL {
        return Err(format!("{} bytes, at most {MAX_PROMQL}", query.len()));
    }
    let mut depth = 0usize;
    for c in query.bytes() {
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_PROMQL_NESTING {
                    return Err(format!(
                        "brackets nest more than {MAX_PROMQL_NESTING} levels deep"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Every string inside a JSON value: where an HTTP body keeps its templates.
fn json_strings(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items.iter().flat_map(json_strings).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}

fn join_keys<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        "none".into()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Param and endpoint defaults, enough to render a query for syntax checking.
fn placeholder_context(rb: &Runbook) -> serde_json::Value {
    fn defaults(
        map: &BTreeMap<String, Param>,
        fallback: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        map.iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    p.default
                        .as_ref()
                        .map_or_else(|| fallback.into(), ScalarValue::to_json),
                )
            })
            .collect()
    }
    serde_json::json!({
        "params": defaults(&rb.params, "x"),
        "endpoints": defaults(&rb.endpoints, "http://x"),
        "checks": {},
        "incident": {},
    })
}

fn check_runbook(source: &Source, rb: &Runbook) -> Vec<Problem> {
    let mut v = Validator::new(source);
    if super::response_time(&rb.severity.value).is_none() {
        v.problem(
            &rb.severity,
            format!(
                "severity '{}' is not one of P0, P1, P2, P3",
                rb.severity.value
            ),
            Some("P0 critical (15 min), P1 high (1 h), P2 medium (4 h), P3 low (24 h)".into()),
        );
    }
    let mut ids = BTreeMap::new();
    v.check_id(&rb.id, "runbook", &mut ids);
    v.text(&rb.id, "title", Some(&rb.title), MAX_TITLE);
    v.text(&rb.id, "description", rb.description.as_deref(), MAX_PROSE);
    for (name, param) in rb.params.iter().chain(&rb.endpoints) {
        v.text(
            &rb.id,
            &format!("help of {name}"),
            param.help.as_deref(),
            MAX_HELP,
        );
    }
    for esc in &rb.escalation {
        v.text(&esc.after, "to", Some(&esc.to), MAX_TITLE);
    }
    for name in rb.params.keys().chain(rb.endpoints.keys()) {
        if name.len() > MAX_ID || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            v.problem_at(
                1,
                1,
                format!(
                    "param or endpoint name '{}' may only use letters, digits and '_', at most {MAX_ID} of them",
                    name.chars().take(MAX_ID).collect::<String>()
                ),
                Some("templates read it as params.NAME".into()),
            );
        }
    }
    for esc in &rb.escalation {
        v.duration(&esc.after, "escalation `after`", bounds::ESCALATION);
    }
    let all: BTreeSet<String> = rb.steps_checks().map(|(_, c)| c.id.value.clone()).collect();
    for (name, text) in &rb.messages {
        v.names(
            text,
            Kind::Template,
            &Scope {
                checks: &all,
                locals: NO_LOCALS,
            },
            rb,
            &format!("message '{name}'"),
        );
    }
    let mut step_ids = BTreeMap::new();
    let mut check_ids = BTreeMap::new();
    let mut action_ids = BTreeMap::new();
    let mut earlier: BTreeSet<String> = BTreeSet::new();
    if rb.steps.is_empty() {
        v.problem(
            &rb.id,
            "the runbook has no steps".into(),
            Some("add `steps:` with at least one check".into()),
        );
    }
    for step in &rb.steps {
        v.check_id(&step.id, "step", &mut step_ids);
        v.text(&step.id, "title", step.title.as_deref(), MAX_TITLE);
        v.text(&step.id, "guidance", step.guidance.as_deref(), MAX_PROSE);
        for check in &step.checks {
            v.text(&check.id, "title", check.title.as_deref(), MAX_TITLE);
            v.text(&check.id, "unit", check.unit.as_deref(), MAX_UNIT);
        }
        for action in &step.actions {
            v.text(&action.id, "title", action.title.as_deref(), MAX_TITLE);
        }
        let before = earlier.clone();
        for check in &step.checks {
            v.check_id(&check.id, "check", &mut check_ids);
            earlier.insert(check.id.value.clone());
        }
        let scope_before = Scope {
            checks: &before,
            locals: NO_LOCALS,
        };
        let scope_here = Scope {
            checks: &earlier,
            locals: NO_LOCALS,
        };
        if let Some(when) = &step.when {
            v.names(when, Kind::Expression, &scope_here, rb, "`when`");
        }
        for check in &step.checks {
            validate_check(&mut v, rb, check, &scope_before);
        }
        for action in &step.actions {
            v.check_id(&action.id, "action", &mut action_ids);
            validate_action(&mut v, rb, action, &scope_here);
        }
        if let Some(wait) = &step.wait {
            if !earlier.contains(&wait.check.value) {
                v.problem(
                    &wait.check,
                    format!(
                        "wait polls check '{}', which is not defined in this or an earlier step",
                        wait.check.value
                    ),
                    Some(format!(
                        "checks defined so far: {}",
                        earlier.iter().cloned().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
            v.names(
                &wait.until,
                Kind::Expression,
                &Scope {
                    checks: &earlier,
                    locals: WAIT_LOCALS,
                },
                rb,
                "wait `until`",
            );
            v.duration(&wait.timeout, "wait `timeout`", bounds::WAIT);
            if let Some(every) = &wait.every {
                // Below the range, say why: the backend would be hammered.
                if parse_duration(&every.value).is_ok_and(|d| d < bounds::WAIT_EVERY.min) {
                    v.problem(
                        every,
                        format!("wait `every` of {} would hammer the backend", every.value),
                        Some("poll at most every 100ms; 30s suits most waits".into()),
                    );
                } else {
                    v.duration(every, "wait `every`", bounds::WAIT_EVERY);
                }
            }
        }
        for name in &step.messages {
            if !rb.messages.contains_key(&name.value) {
                v.problem(
                    name,
                    format!(
                        "step names message '{}', which is not under `messages:`",
                        name.value
                    ),
                    Some(format!("messages: {}", join_keys(&rb.messages))),
                );
            }
        }
        if step.checks.is_empty()
            && step.actions.is_empty()
            && step.wait.is_none()
            && step.messages.is_empty()
            && step.guidance.is_none()
        {
            v.problem(
                &step.id,
                format!("step '{}' does nothing", step.id.value),
                Some("give it checks, actions, a wait, messages or guidance".into()),
            );
        }
    }
    v.problems
}

fn validate_check(v: &mut Validator, rb: &Runbook, check: &Check, scope: &Scope) {
    let backends = [
        ("prometheus", check.prometheus.is_some()),
        ("http", check.http.is_some()),
        ("shell", check.shell.is_some()),
        ("k8s_pods", check.k8s_pods.is_some()),
        ("k8s_deployment", check.k8s_deployment.is_some()),
        ("k8s_logs", check.k8s_logs.is_some()),
        ("k8s_events", check.k8s_events.is_some()),
        ("docker_containers", check.docker_containers.is_some()),
        ("docker_logs", check.docker_logs.is_some()),
        ("docker_stats", check.docker_stats.is_some()),
        ("gpus", check.gpus.is_some()),
        ("gpu_processes", check.gpu_processes.is_some()),
        ("disk", check.disk.is_some()),
        ("memory", check.memory.is_some()),
        ("load", check.load.is_some()),
        ("dir_size", check.dir_size.is_some()),
        ("checksums", check.checksums.is_some()),
        ("tcp", check.tcp.is_some()),
        ("pg_ready", check.pg_ready.is_some()),
        ("pg_connections", check.pg_connections.is_some()),
        ("pg_long_queries", check.pg_long_queries.is_some()),
        ("pg_blocked", check.pg_blocked.is_some()),
        ("pg_slow_statements", check.pg_slow_statements.is_some()),
        ("pg_locks", check.pg_locks.is_some()),
        ("redis_ping", check.redis_ping.is_some()),
        ("redis_list", check.redis_list.is_some()),
        ("redis_memory", check.redis_memory.is_some()),
        ("nats", check.nats.is_some()),
        ("alerts", check.alerts.is_some()),
    ];
    v.one_backend(&check.id, "check", &backends);
    validate_k8s_check(v, rb, check, scope);
    validate_host_check(v, rb, check, scope);
    let thresholds = Scope {
        checks: scope.checks,
        locals: THRESHOLD_LOCALS,
    };
    for cond in [&check.fail_if, &check.warn_if].into_iter().flatten() {
        v.names(cond, Kind::Expression, &thresholds, rb, "threshold");
    }
    if let Some(timeout) = &check.timeout {
        v.duration(timeout, "check `timeout`", bounds::TIMEOUT);
    }
    if let Some(query) = &check.prometheus {
        v.promql(query, rb, scope);
    }
    if let Some(http) = &check.http {
        v.names(&http.url, Kind::Template, scope, rb, "url");
        for header in http.headers.values() {
            v.names(header, Kind::Template, scope, rb, "header");
        }
        if let Some(method) = &http.method
            && !matches!(method.value.as_str(), "GET" | "HEAD")
        {
            v.problem(
                method,
                format!(
                    "a check only reads: method '{}' is not allowed",
                    method.value
                ),
                Some("use GET or HEAD; put POST, PUT, PATCH and DELETE under `actions:`".into()),
            );
        }
    }
    if let Some(shell) = &check.shell {
        v.shell_command(&shell.command, scope, rb);
        v.count(shell.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        if let Some(pattern) = &shell.matches
            && let Err(err) = regex::Regex::new(&pattern.value)
        {
            let first = err
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            v.problem(
                pattern,
                format!("invalid regular expression: {first}"),
                None,
            );
        }
    }
}

fn validate_action(v: &mut Validator, rb: &Runbook, action: &Action, scope: &Scope) {
    let backends = [
        ("http", action.http.is_some()),
        ("shell", action.shell.is_some()),
        ("k8s_scale", action.k8s_scale.is_some()),
        ("k8s_restart", action.k8s_restart.is_some()),
        ("k8s_patch", action.k8s_patch.is_some()),
        ("k8s_delete_pod", action.k8s_delete_pod.is_some()),
        ("docker", action.docker.is_some()),
        ("docker_prune", action.docker_prune.is_some()),
        ("gpu_kill", action.gpu_kill.is_some()),
        ("delete_files", action.delete_files.is_some()),
        ("pg_cancel", action.pg_cancel.is_some()),
        ("pg_terminate", action.pg_terminate.is_some()),
        ("pg_analyze", action.pg_analyze.is_some()),
        ("pg_reindex", action.pg_reindex.is_some()),
        ("silence", action.silence.is_some()),
        ("expire_silence", action.expire_silence.is_some()),
    ];
    v.one_backend(&action.id, "action", &backends);
    validate_k8s_action(v, rb, action, scope);
    validate_host_action(v, rb, action, scope);
    if let Some(when) = &action.when {
        v.names(when, Kind::Expression, scope, rb, "`when`");
    }
    if let Some(timeout) = &action.timeout {
        v.duration(timeout, "action `timeout`", bounds::ACTION_TIMEOUT);
    }
    if let Some(http) = &action.http {
        v.names(&http.url, Kind::Template, scope, rb, "url");
        for text in http.body.iter().flat_map(json_strings) {
            // A body has no positions of its own: point at the method of its request.
            let at = S::new(text, http.method.referenced, http.method.defined);
            v.names(&at, Kind::Template, scope, rb, "body");
        }
        for header in http.headers.values() {
            v.names(header, Kind::Template, scope, rb, "header");
        }
        if !matches!(
            http.method.value.as_str(),
            "POST" | "PUT" | "PATCH" | "DELETE"
        ) {
            v.problem(
                &http.method,
                format!(
                    "an action changes something: method '{}' is not allowed",
                    http.method.value
                ),
                Some("use POST, PUT, PATCH or DELETE; reads belong under `checks:`".into()),
            );
        }
    }
    if let Some(shell) = &action.shell {
        v.shell_command(&shell.command, scope, rb);
        if shell.matches.is_some() || shell.keep.is_some() || shell.number {
            v.problem(
                &shell.command,
                "`matches`, `keep` and `number` only apply to checks".into(),
                None,
            );
        }
    }
}

/// Templates, durations and patterns of the Kubernetes checks.
fn validate_k8s_check(v: &mut Validator, rb: &Runbook, check: &Check, scope: &Scope) {
    let mut templates: Vec<&S<String>> = Vec::new();
    if let Some(spec) = &check.k8s_pods {
        templates.extend(spec.namespace.iter().chain(&spec.selector));
        v.count(spec.max_restarts.as_ref(), "`max_restarts`", 0..=1_000_000);
    }
    if let Some(spec) = &check.k8s_deployment {
        templates.extend(spec.namespace.iter().chain([&spec.name]));
    }
    if let Some(spec) = &check.k8s_logs {
        templates.extend(
            spec.namespace
                .iter()
                .chain(&spec.deployment)
                .chain(&spec.selector),
        );
        if spec.deployment.is_none() == spec.selector.is_none() {
            v.problem(
                &check.id,
                "k8s_logs needs exactly one of `deployment` and `selector`".into(),
                None,
            );
        }
        if let Some(since) = &spec.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        if let Err(err) = regex::Regex::new(&spec.matches.value) {
            let first = err
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            v.problem(
                &spec.matches,
                format!("invalid regular expression: {first}"),
                None,
            );
        }
        v.count(spec.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
    }
    if let Some(spec) = &check.k8s_events {
        templates.extend(spec.namespace.iter().chain(&spec.object));
        if let Some(since) = &spec.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
    }
    for template in templates {
        v.names(template, Kind::Template, scope, rb, "kubernetes field");
    }
}

/// Templates, kinds and replica counts of the Kubernetes actions.
fn validate_k8s_action(v: &mut Validator, rb: &Runbook, action: &Action, scope: &Scope) {
    let mut templates: Vec<&S<String>> = Vec::new();
    if let Some(spec) = &action.k8s_scale {
        templates.extend(spec.namespace.iter().chain([&spec.deployment]));
        match &spec.replicas.value {
            ScalarValue::Int(n) if (0..=MAX_REPLICAS).contains(n) => {}
            ScalarValue::Int(n) => v.problem(
                &spec.replicas,
                format!("replicas {n} is out of range"),
                Some(format!("it may be 0 to {MAX_REPLICAS}")),
            ),
            ScalarValue::Text(t) if t == "previous" || t.contains("{{") => {
                if t != "previous" {
                    let at = S::new(t.clone(), spec.replicas.referenced, spec.replicas.defined);
                    v.names(&at, Kind::Template, scope, rb, "replicas");
                }
            }
            _ => v.problem(
                &spec.replicas,
                "replicas must be a count, a template, or `previous`".into(),
                Some("`previous` goes back to the count before this incident's first scale of the deployment".into()),
            ),
        }
    }
    if let Some(spec) = &action.k8s_restart {
        templates.extend(spec.namespace.iter().chain([&spec.deployment]));
        if let Some(wait) = &spec.wait {
            v.duration(wait, "restart `wait`", bounds::TIMEOUT);
        }
    }
    if let Some(spec) = &action.k8s_patch {
        templates.extend(spec.namespace.iter().chain([&spec.name]));
        if let Err(err) = crate::backends::kube::PatchKind::parse(&spec.kind.value) {
            v.problem(&spec.kind, err.to_string(), None);
        }
        if !spec.patch.is_object() {
            v.problem(
                &spec.kind,
                "`patch` must be a map, merged into the object".into(),
                Some("e.g. patch: { data: { DB_MAX_CONNECTIONS: \"50\" } }".into()),
            );
        }
        for text in json_strings(&spec.patch) {
            let at = S::new(text, spec.kind.referenced, spec.kind.defined);
            v.names(&at, Kind::Template, scope, rb, "patch");
        }
    }
    if let Some(spec) = &action.k8s_delete_pod {
        templates.extend(spec.namespace.iter().chain([&spec.pod]));
    }
    for template in templates {
        v.names(template, Kind::Template, scope, rb, "kubernetes field");
    }
}

/// Templates, durations and patterns of the Docker, GPU and host checks.
fn validate_host_check(v: &mut Validator, rb: &Runbook, check: &Check, scope: &Scope) {
    let mut templates: Vec<&S<String>> = Vec::new();
    for target in [&check.docker_containers, &check.docker_stats]
        .into_iter()
        .flatten()
    {
        templates.extend(
            target
                .project
                .iter()
                .chain(&target.service)
                .chain(&target.container)
                .chain(&target.label),
        );
    }
    if let Some(spec) = &check.docker_logs {
        v.count(spec.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        templates.extend(
            spec.project
                .iter()
                .chain(&spec.service)
                .chain(&spec.container)
                .chain(&spec.label),
        );
        if let Some(since) = &spec.since {
            v.duration(since, "`since`", bounds::SINCE);
        }
        if let Err(err) = regex::Regex::new(&spec.matches.value) {
            let first = err
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            v.problem(
                &spec.matches,
                format!("invalid regular expression: {first}"),
                None,
            );
        }
    }
    if let Some(spec) = &check.disk {
        templates.extend(&spec.paths);
        if spec.paths.is_empty() {
            v.problem(
                &check.id,
                "`disk` needs at least one path".into(),
                Some("disk: { paths: [\"/\", \"/data/models\"] }".into()),
            );
        }
    }
    if let Some(spec) = &check.dir_size {
        templates.push(&spec.path);
    }
    if let Some(spec) = &check.checksums {
        templates.extend([&spec.manifest].into_iter().chain(&spec.root));
    }
    if let Some(spec) = &check.tcp {
        templates.push(&spec.address);
    }
    for spec in [
        &check.pg_ready,
        &check.pg_connections,
        &check.pg_long_queries,
        &check.pg_blocked,
        &check.pg_slow_statements,
        &check.pg_locks,
    ]
    .into_iter()
    .flatten()
    {
        templates.extend(&spec.url);
        v.count(spec.limit.as_ref(), "`limit`", 1..=MAX_ROWS);
        if let Some(age) = &spec.older_than {
            v.duration(age, "`older_than`", bounds::AGE);
        }
    }
    for spec in [&check.redis_ping, &check.redis_list, &check.redis_memory]
        .into_iter()
        .flatten()
    {
        templates.extend(spec.url.iter().chain(&spec.key));
    }
    if let Some(spec) = &check.redis_list {
        v.count(spec.first.as_ref(), "`first`", 1..=MAX_ROWS);
    }
    if let Some(spec) = &check.redis_list
        && spec.key.is_none()
    {
        v.problem(
            &check.id,
            "redis_list needs a `key`".into(),
            Some("redis_list: { key: benchmark_queue }".into()),
        );
    }
    if let Some(spec) = &check.nats {
        templates.extend(spec.url.iter().chain(&spec.monitor));
    }
    if let Some(spec) = &check.alerts {
        templates.extend(spec.matchers.values());
    }
    for template in templates {
        v.names(template, Kind::Template, scope, rb, "field");
    }
}

/// Templates, operations and durations of the Docker, GPU and host actions.
fn validate_host_action(v: &mut Validator, rb: &Runbook, action: &Action, scope: &Scope) {
    let mut templates: Vec<&S<String>> = Vec::new();
    if let Some(spec) = &action.docker {
        templates.extend(
            spec.project
                .iter()
                .chain(&spec.service)
                .chain(&spec.container)
                .chain(&spec.label),
        );
        if let Err(err) = crate::backends::docker::Op::parse(&spec.op.value) {
            v.problem(&spec.op, err.to_string(), None);
        }
        if let Some(grace) = &spec.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
        if spec.project.is_none() && spec.container.is_none() && spec.label.is_none() {
            v.problem(
                &spec.op,
                "a docker action needs a project, a container or a label".into(),
                Some("so it never touches every container on the host".into()),
            );
        }
    }
    if let Some(spec) = &action.gpu_kill {
        templates.push(&spec.pid);
        if let Some(grace) = &spec.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
    }
    for spec in [&action.pg_cancel, &action.pg_terminate]
        .into_iter()
        .flatten()
    {
        templates.extend(&spec.url);
        if !scope.checks.contains(&spec.check.value) {
            v.problem(&spec.check, format!("names check '{}', which is not defined in this or an earlier step", spec.check.value), Some("name the check whose rows list the backends, e.g. a pg_long_queries or pg_blocked check".into()));
        }
    }
    if let Some(spec) = &action.pg_analyze {
        templates.extend(&spec.url);
    }
    if let Some(spec) = &action.pg_reindex {
        templates.extend(spec.url.iter().chain([&spec.database]));
    }
    if let Some(spec) = &action.silence {
        templates.extend(spec.matchers.values().chain(&spec.comment));
        v.duration(&spec.duration, "silence `duration`", bounds::SILENCE);
    }
    if let Some(spec) = &action.delete_files {
        templates.extend([&spec.dir].into_iter().chain(&spec.pattern));
        if let Some(age) = &spec.older_than {
            v.duration(age, "`older_than`", bounds::AGE);
        }
    }
    for template in templates {
        v.names(template, Kind::Template, scope, rb, "field");
    }
}
