//! `oncall import`: a Markdown runbook becomes an oncall runbook. Headings become steps, shell
//! blocks' commands become native checks and actions where oncall has a backend for them, and
//! shell checks (read-only) or shell actions (asked first) where it has not; each says the line
//! it came from. The page is only read: nothing in it is run.

mod build;
mod draft;
mod map;
mod markdown;
mod readonly;
mod shell;
mod yaml;

use map::Role;
use serde::Serialize;

/// What an import found and made of it.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub commands: usize,
    pub native_checks: usize,
    pub native_actions: usize,
    pub shell_checks: Vec<Found>,
    pub shell_actions: Vec<Found>,
    pub skipped: Vec<Skipped>,
    pub messages: usize,
    pub waits: usize,
    /// What the runbook needs from whoever runs it, and what the import chose.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub line: usize,
    pub command: String,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub line: usize,
    pub command: String,
    pub why: String,
}

impl Tally {
    fn native(&mut self, role: Role) {
        self.commands += 1;
        match role {
            Role::Check => self.native_checks += 1,
            Role::Action => self.native_actions += 1,
        }
    }

    fn shell(&mut self, role: Role, line: usize, command: &str) {
        self.commands += 1;
        let found = Found {
            line,
            command: command.to_string(),
        };
        match role {
            Role::Check => self.shell_checks.push(found),
            Role::Action => self.shell_actions.push(found),
        }
    }

    fn skip(&mut self, line: usize, command: &str, why: String) {
        self.commands += 1;
        self.skipped.push(Skipped {
            line,
            command: command.to_string(),
            why,
        });
    }

    /// The share of commands that became native checks or actions, in percent.
    pub fn native_share(&self) -> f64 {
        if self.commands == 0 {
            return 0.0;
        }
        100.0 * (self.native_checks + self.native_actions) as f64 / self.commands as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{file}: no commands found: no shell block (```bash, sh, shell, console or unlabelled) holds a command oncall could import"
    )]
    NoCommands { file: String },
    #[error("--id '{0}' may only use lower-case letters, digits and '-', and start with a letter")]
    BadId(String),
}

/// The runbook an import wrote, and what it found.
pub struct Imported {
    pub id: String,
    pub yaml: String,
    pub tally: Tally,
}

/// Reads a page; `source` names it in the runbook's header and in errors.
pub fn import(page: &str, source: &str, id: Option<&str>) -> Result<Imported, ImportError> {
    if let Some(id) = id
        && !valid_id(id)
    {
        return Err(ImportError::BadId(id.to_string()));
    }
    let sections = markdown::read(page);
    let mut draft = draft::Draft {
        source: source.to_string(),
        ..Default::default()
    };
    let mut tally = Tally::default();
    build::build(&sections, &mut draft, &mut tally);
    if tally.commands == 0 {
        return Err(ImportError::NoCommands {
            file: source.to_string(),
        });
    }
    if draft.title.is_empty() {
        draft.title = file_stem(source).replace(['-', '_'], " ");
    }
    draft.id = match id {
        Some(id) => id.to_string(),
        None => default_id(source, &draft.title),
    };
    if draft.severity.is_empty() {
        draft.severity = "P2".into();
        draft.severity_note = "the page names no severity: P2 until you set it".into();
        tally.notes.push(draft.severity_note.clone());
    }
    map::messages(&mut draft);
    notes(&draft, &mut tally);
    Ok(Imported {
        id: draft.id.clone(),
        yaml: draft.to_yaml(),
        tally,
    })
}

/// What whoever runs the runbook must know: params without a default, and where it reaches.
fn notes(draft: &draft::Draft, tally: &mut Tally) {
    let required: Vec<&str> = draft
        .params
        .iter()
        .filter(|(_, p)| p.default.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !required.is_empty() {
        tally.notes.push(format!(
            "give these params when you run it (-p NAME=VALUE): {}",
            required.join(", ")
        ));
    }
    let uses_prometheus = draft
        .steps
        .iter()
        .flat_map(|s| &s.checks)
        .any(|c| c.kind == "prometheus");
    if uses_prometheus {
        tally.notes.push(
            "the Prometheus queries go to --prometheus-url (or the config file), not the host the page named".into(),
        );
    }
}

pub fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn file_stem(source: &str) -> String {
    std::path::Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file's name as an id (`error-budget-runbook.md` → `error-budget-runbook`), else the title's.
fn default_id(source: &str, title: &str) -> String {
    for candidate in [file_stem(source), title.to_string()] {
        let id: String = map::ident(&candidate)
            .replace('_', "-")
            .chars()
            .take(64)
            .collect();
        let id = id.trim_matches('-').to_string();
        if valid_id(&id) {
            return id;
        }
    }
    "imported".into()
}
