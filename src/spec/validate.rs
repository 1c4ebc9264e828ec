//! Validation: every problem as `file:line:column: message` with a hint. The `Validator` carries
//! what a runbook declares (params, endpoints, the checks visible where a field stands), so a
//! kind's spec can check its own fields without knowing the runbook around it.

use super::{Bounds, S, parse_duration_in};
use crate::expr::{self, Kind};
use serde_saphyr::Location;
use std::collections::BTreeSet;
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
        let mut message = strip_position(&message);
        // A check or an action with no kind, or two (see runbook::schema).
        let hint = if let Some((words, kinds)) = message.split_once(", give it one of: ") {
            let hint = format!("give it one of: {kinds}");
            message = words.to_string();
            Some(hint)
        } else if message.contains(" has more than one backend") {
            let what = message.split(' ').next().unwrap_or_default();
            Some(format!("split it into one {what} per backend"))
        } else if message.contains("unknown field `approval`") {
            Some("`approval: two-person` belongs on an action: a check only reads".to_string())
        } else if message.contains("unknown variant") {
            Some(format!(
                "write one of: {}",
                message
                    .rsplit("expected one of ")
                    .next()
                    .unwrap_or_default()
            ))
        } else if message.contains("unknown field") {
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
    let fields = expected.split(',').map(|f| f.trim().trim_matches('`'));
    closest(unknown, fields).map(str::to_string)
}

/// ` (did you mean 'error-budget'?)`, when one name is near the misspelt one, or the only one
/// it begins (`prod` for `prod-eu`).
pub fn did_you_mean(word: &str, names: &[String]) -> String {
    let mut extending = names
        .iter()
        .filter(|n| !word.is_empty() && n.starts_with(word));
    let only_extending = match (extending.next(), extending.next()) {
        (Some(one), None) => Some(one.as_str()),
        _ => None,
    };
    match closest(word, names.iter().map(String::as_str)).or(only_extending) {
        Some(near) => format!(" (did you mean '{near}'?)"),
        None => String::new(),
    }
}

/// The name nearest to a misspelt one, within two edits: for "did you mean".
pub fn closest<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|name| (edit_distance(word, name), name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name)
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

/// What a runbook declares, for the names its templates may read.
#[derive(Default)]
pub struct Declared {
    pub params: BTreeSet<String>,
    pub endpoints: BTreeSet<String>,
    /// Every check of the runbook, visible here or not.
    pub checks: BTreeSet<String>,
    /// Every action of the runbook: what `actions.ID` in a message may name.
    pub actions: BTreeSet<String>,
    /// The names under `messages:`.
    pub messages: BTreeSet<String>,
    /// Param and endpoint defaults, to trial-render templates with.
    pub placeholder: serde_json::Value,
}

/// What a field may read: which checks are visible and whether `value`/`labels` exist.
pub struct Scope<'s> {
    pub checks: &'s BTreeSet<String>,
    pub locals: &'static [&'static str],
}

pub const THRESHOLD_LOCALS: &[&str] = &["value", "labels"];
pub const WAIT_LOCALS: &[&str] = &["value"];
pub const NO_LOCALS: &[&str] = &[];
const GLOBALS: &[&str] = &[
    "params",
    "endpoints",
    "checks",
    "incident",
    "actions",
    "range",
    "dict",
    "namespace",
];

/// Collects the problems of one file.
pub struct Validator<'a> {
    pub name: &'a str,
    lines: Vec<&'a str>,
    pub problems: Vec<Problem>,
    declared: Declared,
    /// The checks a kind's templates may read: those of earlier steps for a check, of its own
    /// step and earlier ones for an action.
    pub visible: BTreeSet<String>,
}

impl<'a> Validator<'a> {
    pub fn new(name: &'a str, text: &'a str, declared: Declared) -> Self {
        Validator {
            name,
            lines: text.lines().collect(),
            problems: Vec::new(),
            declared,
            visible: BTreeSet::new(),
        }
    }

    pub fn problem_at(&mut self, line: u64, column: u64, message: String, hint: Option<String>) {
        self.problems.push(Problem {
            file: self.name.to_string(),
            line,
            column,
            message,
            hint,
        });
    }

    pub fn problem<T>(&mut self, at: &S<T>, message: String, hint: Option<String>) {
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
    pub fn problem_inside(
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
    pub fn count<N>(&mut self, at: Option<&S<N>>, what: &str, range: std::ops::RangeInclusive<N>)
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

    pub fn duration(&mut self, at: &S<String>, what: &str, bounds: Bounds) {
        if let Err(err) = parse_duration_in(&at.value, bounds) {
            // An out-of-range error already names the range.
            let hint = (!err.contains("out of range"))
                .then(|| "write a duration such as 30s, 15m, 1h or 1h30m".to_string());
            self.problem(at, format!("{what}: {err}"), hint);
        }
    }

    /// A regular expression that compiles.
    pub fn regex(&mut self, at: &S<String>) {
        if let Err(err) = regex::Regex::new(&at.value) {
            let first = err
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            self.problem(at, format!("invalid regular expression: {first}"), None);
        }
    }

    /// A template of a kind's field: it may read params, endpoints and the visible checks.
    pub fn template(&mut self, at: &S<String>, what: &str) {
        let visible = std::mem::take(&mut self.visible);
        let scope = Scope {
            checks: &visible,
            locals: NO_LOCALS,
        };
        self.names(at, Kind::Template, &scope, what);
        self.visible = visible;
    }

    /// The templates of several fields of a kind.
    pub fn templates<'f>(&mut self, fields: impl IntoIterator<Item = &'f S<String>>, what: &str) {
        for field in fields {
            self.template(field, what);
        }
    }

    /// Whether a check is visible where the field stands.
    /// A field that names one of the runbook's messages.
    pub fn message(&mut self, at: &S<String>) {
        if self.declared.messages.contains(&at.value) {
            return;
        }
        let hint = match closest(&at.value, self.declared.messages.iter().map(String::as_str)) {
            Some(near) => format!(
                "did you mean '{near}'? messages: {}",
                join(&self.declared.messages)
            ),
            None => format!("messages: {}", join(&self.declared.messages)),
        };
        self.problem(
            at,
            format!("no message '{}' under `messages:`", at.value),
            Some(hint),
        );
    }

    pub fn is_visible(&self, check: &str) -> bool {
        self.visible.contains(check)
    }

    /// A template rendered with the params' and endpoints' defaults, as a backend would see it.
    pub fn trial_render(&self, template: &str) -> Option<String> {
        expr::render(template, &self.declared.placeholder).ok()
    }

    pub fn names(&mut self, at: &S<String>, kind: Kind, scope: &Scope, what: &str) {
        let (names, tried) = match expr::inspect(&at.value, kind, &self.declared.placeholder) {
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
        let declared = &self.declared;
        let mut found = Vec::new();
        for name in names {
            let mut parts = name.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            let known = match (root, second) {
                ("params", Some(p)) => declared.params.contains(p).then_some(()).ok_or_else(|| {
                    (format!("{what} names param '{p}', which the runbook does not declare"), format!("declared params: {}", join(&declared.params)))
                }),
                ("endpoints", Some(e)) => (e == "prometheus" || declared.endpoints.contains(e)).then_some(()).ok_or_else(|| {
                    (format!("{what} names endpoint '{e}', which the runbook does not declare"), format!("declare it under `endpoints:`; declared: {}", join(&declared.endpoints)))
                }),
                ("checks", Some(c)) => scope.checks.contains(c).then_some(()).ok_or_else(|| {
                    let hint = if declared.checks.contains(c) {
                        format!("check '{c}' is not visible here: conditions read checks of their own or earlier steps, thresholds and templates of a check only earlier steps")
                    } else {
                        format!("checks it can read here: {}", scope.checks.iter().cloned().collect::<Vec<_>>().join(", "))
                    };
                    (format!("{what} names check '{c}', which does not exist here"), hint)
                }),
                ("actions", Some(a)) => declared.actions.contains(a).then_some(()).ok_or_else(|| {
                    (format!("{what} names action '{a}', which the runbook does not have"), format!("its actions: {}", join(&declared.actions)))
                }),
                (root, _) if GLOBALS.contains(&root) || scope.locals.contains(&root) => Ok(()),
                (root, _) => {
                    let mut allowed: Vec<&str> = scope.locals.to_vec();
                    allowed.extend(["params", "endpoints", "checks", "incident", "actions"]);
                    Err((format!("{what} uses unknown name '{root}'"), format!("names available here: {}", allowed.join(", "))))
                }
            };
            if let Err(problem) = known {
                found.push(problem);
            }
        }
        for (message, hint) in found {
            self.problem(at, message, Some(hint));
        }
    }
}

/// Names as a list, or `none`.
pub fn join(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Every string inside a JSON value: where an HTTP body or a patch keeps its templates.
pub fn json_strings(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items.iter().flat_map(json_strings).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}
