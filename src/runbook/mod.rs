//! Runbooks: where they come from (bundled, or files on the search path) and how they are loaded.

pub mod schema;
pub mod validate;

pub use schema::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Where a runbook file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Bundled,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Bundled => f.write_str("bundled"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A runbook's text with its origin: what validation and loading start from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name used in error messages: the path, or `bundled:NAME.yaml`.
    pub name: String,
    pub origin: Origin,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, std::io::Error> {
        Ok(Source {
            name: path.display().to_string(),
            origin: Origin::File(path.to_path_buf()),
            text: std::fs::read_to_string(path)?,
        })
    }

    pub fn parse<T: for<'de> serde::Deserialize<'de>>(&self) -> Result<T, validate::Problem> {
        serde_saphyr::from_str(&self.text)
            .map_err(|err| validate::Problem::from_yaml(&self.name, &err))
    }
}

/// A runbook that parsed and validated.
#[derive(Debug)]
pub struct Loaded {
    pub runbook: Runbook,
    pub source: Source,
}

/// The folders searched for runbooks after the bundled ones, lowest precedence first.
pub fn search_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(config) = dirs::config_dir() {
        dirs.push(config.join("oncall").join("runbooks"));
    }
    dirs.extend(extra.iter().cloned());
    dirs.push(PathBuf::from("runbooks"));
    dirs
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

/// Every runbook source: bundled first, then each search folder; a later file with the same id wins.
pub fn discover(search: &[PathBuf]) -> Vec<Source> {
    let mut sources: Vec<Source> = bundled::RUNBOOKS
        .iter()
        .map(|(name, text)| Source {
            name: format!("bundled:{name}"),
            origin: Origin::Bundled,
            text: text.to_string(),
        })
        .collect();
    for dir in search {
        for file in yaml_files(dir) {
            match Source::read(&file) {
                Ok(source) => sources.push(source),
                Err(err) => eprintln!("warning: cannot read {}: {err}", file.display()),
            }
        }
    }
    sources
}

/// The catalog: each id once, the highest-precedence file winning. Files that fail to load are
/// returned beside it so callers can report them without losing the good ones.
pub struct Catalog {
    pub runbooks: BTreeMap<String, Loaded>,
    pub broken: Vec<validate::Problem>,
}

impl Catalog {
    pub fn load(search: &[PathBuf]) -> Catalog {
        let mut catalog = Catalog {
            runbooks: BTreeMap::new(),
            broken: Vec::new(),
        };
        // Parsing is enough to list and find runbooks; `resolve` and `validate` check the rest, so
        // a user's broken override is reported when used rather than silently passed over.
        for source in discover(search) {
            match source.parse::<Runbook>() {
                Ok(runbook) => {
                    catalog
                        .runbooks
                        .insert(runbook.id.value.clone(), Loaded { runbook, source });
                }
                Err(problem) => catalog.broken.push(problem),
            }
        }
        catalog
    }

    /// The runbook that lists this alert name under `alerts:`.
    pub fn for_alert(&self, alert: &str) -> Option<String> {
        self.runbooks
            .values()
            .find(|l| l.runbook.alerts.iter().any(|a| a == alert))
            .map(|l| l.runbook.id.value.clone())
    }

    pub fn ids(&self) -> Vec<String> {
        self.runbooks.keys().cloned().collect()
    }

    /// Finds a runbook by id, or by path to a file.
    pub fn get(&self, id_or_path: &str) -> Result<&Loaded, LookupError> {
        if let Some(found) = self.runbooks.get(id_or_path) {
            return Ok(found);
        }
        if let Some(problem) = self.broken.iter().find(|p| {
            Path::new(&p.file)
                .file_stem()
                .is_some_and(|s| s == id_or_path)
                || p.file == id_or_path
        }) {
            return Err(LookupError::Invalid(problem.to_string()));
        }
        Err(LookupError::NotFound {
            id: id_or_path.to_string(),
            known: self.ids(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no runbook with id '{id}' (known: {}); `oncall list` shows them", known.join(", "))]
    NotFound { id: String, known: Vec<String> },
    #[error("the runbook does not load: {0}\nhint: `oncall validate` lists every problem")]
    Invalid(String),
}

/// Loads a runbook from an id in the catalog or a path to a file.
pub fn resolve(catalog: &Catalog, id_or_path: &str) -> anyhow::Result<Loaded> {
    let path = Path::new(id_or_path);
    if id_or_path.ends_with(".yaml") || id_or_path.ends_with(".yml") || path.is_file() {
        let source =
            Source::read(path).map_err(|e| anyhow::anyhow!("cannot read {id_or_path}: {e}"))?;
        let runbook = validate::load(&source).map_err(validate::ProblemList)?;
        return Ok(Loaded { runbook, source });
    }
    let found = catalog.get(id_or_path)?;
    // Re-parse so the caller owns it; runbooks are small.
    let runbook = validate::load(&found.source).map_err(validate::ProblemList)?;
    Ok(Loaded {
        runbook,
        source: found.source.clone(),
    })
}

/// A drill scenario with where it came from.
pub struct ScenarioSource {
    pub name: String,
    pub source: Source,
}

/// The scenarios of a runbook: bundled, then `scenarios/<runbook>/*.yaml` in each search folder.
pub fn scenarios(runbook_id: &str, search: &[PathBuf]) -> Vec<ScenarioSource> {
    let mut found: BTreeMap<String, ScenarioSource> = BTreeMap::new();
    for (runbook, name, text) in bundled::SCENARIOS {
        if *runbook == runbook_id {
            let source = Source {
                name: format!("bundled:scenarios/{runbook}/{name}.yaml"),
                origin: Origin::Bundled,
                text: text.to_string(),
            };
            found.insert(
                name.to_string(),
                ScenarioSource {
                    name: name.to_string(),
                    source,
                },
            );
        }
    }
    for dir in search {
        for file in yaml_files(&dir.join("scenarios").join(runbook_id)) {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if let Ok(source) = Source::read(&file) {
                found.insert(name.clone(), ScenarioSource { name, source });
            }
        }
    }
    found.into_values().collect()
}

/// The durations a field accepts; `validate` and the flags refuse others with this range.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    /// The range in words: `1ms to 1h`.
    pub words: &'static str,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn within(min: Duration, max: Duration, words: &'static str) -> Bounds {
    Bounds { min, max, words }
}

/// The ranges of each kind of duration.
pub mod bounds {
    use super::{Bounds, secs, within};
    use std::time::Duration;
    const MS: Duration = Duration::from_millis(1);
    const DAY: u64 = 86_400;
    /// A check's timeout, `--timeout`, a rollout wait.
    pub const TIMEOUT: Bounds = within(MS, secs(3600), "1ms to 1h");
    /// An action's timeout: a download or a backup may take hours.
    pub const ACTION_TIMEOUT: Bounds = within(MS, secs(DAY), "1ms to 24h");
    pub const WAIT: Bounds = within(MS, secs(DAY), "1ms to 24h");
    pub const WAIT_EVERY: Bounds = within(Duration::from_millis(100), secs(3600), "100ms to 1h");
    pub const ESCALATION: Bounds = within(secs(1), secs(7 * DAY), "1s to 7d");
    /// How far back logs and events are read.
    pub const SINCE: Bounds = within(secs(1), secs(30 * DAY), "1s to 30d");
    pub const AGE: Bounds = within(secs(1), secs(3650 * DAY), "1s to 3650d");
    /// How long a stop waits before the kill.
    pub const GRACE: Bounds = within(MS, secs(600), "1ms to 10m");
    pub const SILENCE: Bounds = within(secs(60), secs(90 * DAY), "1m to 90d");
}

/// The longest duration oncall takes anywhere: longer ones would overflow clocks and timers.
const MAX_DURATION: Duration = secs(3650 * 86_400);

/// Parses a duration and holds it to a field's range.
pub fn parse_duration_in(text: &str, bounds: Bounds) -> Result<Duration, String> {
    let parsed = parse_any_duration(text)?;
    if parsed < bounds.min || parsed > bounds.max {
        return Err(format!(
            "'{text}' is out of range: it may be {}",
            bounds.words
        ));
    }
    Ok(parsed)
}

/// Parses `30s`, `15m`, `1h30m`, `2h 30m`, up to the longest duration oncall takes anywhere.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    Some(parse_any_duration(text)?)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("'{text}' is out of range: at most 3650d"))
}

fn parse_any_duration(text: &str) -> Result<Duration, String> {
    let not = || format!("'{text}' is not a duration");
    // Days (`1d`, as in `find -mtime +1`) count as 24 hours.
    let parsed = match text.trim().parse::<jiff::SignedDuration>() {
        Ok(d) => d,
        Err(_) => {
            let span: jiff::Span = text.trim().parse().map_err(|_| not())?;
            span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|_| not())?
        }
    };
    if parsed.is_negative() || parsed.is_zero() {
        return Err(format!("'{text}' must be a positive duration"));
    }
    Duration::try_from(parsed).map_err(|_| not())
}

/// Response times of the playbook's severity levels.
pub fn response_time(severity: &str) -> Option<&'static str> {
    match severity {
        "P0" => Some("15 minutes"),
        "P1" => Some("1 hour"),
        "P2" => Some("4 hours"),
        "P3" => Some("24 hours"),
        _ => None,
    }
}

impl Runbook {
    pub fn steps_checks(&self) -> impl Iterator<Item = (&Step, &Check)> {
        self.steps
            .iter()
            .flat_map(|s| s.checks.iter().map(move |c| (s, c)))
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.steps_checks()
            .map(|(_, c)| c)
            .find(|c| c.id.value == id)
    }
}

impl ScalarValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ScalarValue::Bool(b) => (*b).into(),
            ScalarValue::Int(i) => (*i).into(),
            ScalarValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Into::into)
                .unwrap_or_default(),
            ScalarValue::Text(s) => s.clone().into(),
        }
    }

    /// A value from the command line or config: a number stays a number, as in YAML.
    pub fn parse(text: &str) -> ScalarValue {
        if let Ok(i) = text.parse::<i64>() {
            ScalarValue::Int(i)
        } else if let Ok(f) = text.parse::<f64>() {
            ScalarValue::Float(f)
        } else if let Ok(b) = text.parse::<bool>() {
            ScalarValue::Bool(b)
        } else {
            ScalarValue::Text(text.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999h").is_err());
        assert!(parse_duration_in("2h", bounds::TIMEOUT).is_err());
        assert!(parse_duration_in("1h", bounds::TIMEOUT).is_ok());
    }
}
