//! Runbooks: where they come from (bundled, or files on the search path) and how they are loaded.

pub mod digest;
pub mod reverts;
pub mod schema;
pub mod validate;

pub use digest::Digest;
pub use schema::*;

use crate::spec::validate::{Problem, ProblemList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

    pub fn parse<T: for<'de> serde::Deserialize<'de>>(&self) -> Result<T, Problem> {
        serde_saphyr::from_str(&self.text).map_err(|err| Problem::from_yaml(&self.name, &err))
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
    // An explicit path wins over the folder one happens to stand in.
    dirs.push(PathBuf::from("runbooks"));
    dirs.extend(extra.iter().cloned());
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
    pub broken: Vec<Problem>,
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
    #[error("no runbook with id '{id}'{}; known: {}. `oncall list` shows them", crate::spec::validate::did_you_mean(id, known), known.join(", "))]
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
        let runbook = validate::load(&source).map_err(ProblemList)?;
        return Ok(Loaded { runbook, source });
    }
    let found = catalog.get(id_or_path)?;
    // Re-parse so the caller owns it; runbooks are small.
    let runbook = validate::load(&found.source).map_err(ProblemList)?;
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

    /// The endpoints its notify actions post to (each a webhook).
    pub fn posted_endpoints(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .flat_map(|s| &s.actions)
            .filter_map(|a| match &a.kind {
                crate::backends::kinds::ActionKind::Notify(n) => Some(n.endpoint.value.as_str()),
                _ => None,
            })
    }

    /// The endpoints it declares and those its notify actions post to.
    pub fn endpoint_names(&self) -> std::collections::BTreeSet<&str> {
        self.endpoints
            .keys()
            .map(String::as_str)
            .chain(self.posted_endpoints())
            .collect()
    }
}

impl Runbook {
    /// Masks the password of a URL written in the runbook's words (titles, guidance, messages):
    /// they reach the screen, the timeline and the channels as written. What checks and actions
    /// send is not words, and keeps its credentials.
    fn mask_url_passwords(&mut self) {
        let mask = |text: &mut String| {
            let masked = crate::redact::url_passwords(text);
            if masked != *text {
                *text = masked;
            }
        };
        mask(&mut self.title);
        self.description.iter_mut().for_each(mask);
        self.escalation.iter_mut().for_each(|e| mask(&mut e.to));
        self.messages.values_mut().for_each(|m| mask(&mut m.value));
        for step in &mut self.steps {
            step.title
                .iter_mut()
                .chain(&mut step.guidance)
                .for_each(mask);
            step.checks
                .iter_mut()
                .filter_map(|c| c.title.as_mut())
                .for_each(mask);
            step.actions
                .iter_mut()
                .filter_map(|a| a.title.as_mut())
                .for_each(mask);
        }
    }
}
