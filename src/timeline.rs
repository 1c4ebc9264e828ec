//! The incident timeline: JSON lines, one event each, appended, flushed and fsynced as written,
//! readable only by its owner.

use crate::engine::event::{Event, EventKind, Sink};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("cannot use the state folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the timeline {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the timeline {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a timeline event: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("no incident '{0}'; `oncall timeline --list` shows them")]
    NoSuchIncident(String),
    #[error("no incidents yet in {0}; `oncall run RUNBOOK` opens one")]
    NoIncidents(PathBuf),
}

/// Where incidents live: `$ONCALL_STATE_DIR`, or the user's state folder.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: Option<PathBuf>) -> Store {
        let base = state_dir
            .or_else(|| dirs::state_dir().map(|d| d.join("oncall")))
            .or_else(|| dirs::data_local_dir().map(|d| d.join("oncall")))
            .unwrap_or_else(|| PathBuf::from(".oncall"));
        Store {
            dir: base.join("incidents"),
        }
    }

    fn ensure(&self) -> Result<(), TimelineError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| TimelineError::Folder {
                path: self.dir.clone(),
                source,
            })
    }

    pub fn path(&self, incident: &str) -> PathBuf {
        self.dir.join(format!("{incident}.jsonl"))
    }

    /// Opens a new incident: `20261122-0301-error-budget`, with a suffix if that minute is taken.
    pub fn create(
        &self,
        runbook: &str,
        now: &jiff::Zoned,
    ) -> Result<(String, Timeline), TimelineError> {
        self.ensure()?;
        let stem = format!("{}-{runbook}", now.strftime("%Y%m%d-%H%M"));
        for n in 1.. {
            let id = if n == 1 {
                stem.clone()
            } else {
                format!("{stem}-{n}")
            };
            let path = self.path(&id);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => return Ok((id, Timeline { file, path })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(TimelineError::Write { path, source }),
            }
        }
        unreachable!("the loop returns or errs")
    }

    pub fn append(&self, incident: &str) -> Result<Timeline, TimelineError> {
        let path = self.path(incident);
        if !path.exists() {
            return Err(TimelineError::NoSuchIncident(incident.to_string()));
        }
        let err = |source| TimelineError::Write {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new().append(true).open(&path).map_err(err)?;
        // After a torn last line, start the next event on a line of its own.
        let ends_cleanly = std::fs::read(&path)
            .map_err(err)?
            .last()
            .is_none_or(|b| *b == b'\n');
        if !ends_cleanly {
            file.write_all(b"\n").map_err(err)?;
        }
        Ok(Timeline { file, path })
    }

    /// Incident ids, oldest first.
    pub fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".jsonl"))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Oldest first by when each was opened: a note added later does not make an incident newer.
        ids.sort_by_cached_key(|id| (opened_at(&self.path(id)), id.clone()));
        ids
    }

    pub fn latest(&self) -> Result<String, TimelineError> {
        self.list()
            .pop()
            .ok_or_else(|| TimelineError::NoIncidents(self.dir.clone()))
    }

    /// The newest incident that is not a drill and not resolved.
    pub fn latest_open(&self) -> Result<Option<String>, TimelineError> {
        for id in self.list().into_iter().rev() {
            let events = read(&self.path(&id))?;
            let drill = events.iter().any(|e| matches!(&e.kind, EventKind::IncidentOpened { mode, .. } if *mode == crate::engine::event::Mode::Drill));
            let resolved = events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Resolved { .. }));
            if !drill && !resolved {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

pub struct Timeline {
    file: File,
    pub path: PathBuf,
}

impl Timeline {
    pub fn write(&mut self, event: &Event) -> Result<(), TimelineError> {
        let mut line = serde_json::to_string(event).expect("events always serialize");
        line.push('\n');
        let err = |source| TimelineError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(err)?;
        self.file
            .sync_data()
            .map_err(|source| TimelineError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// The timeline as a sink. A write failure is reported once on stderr and the run goes on:
/// losing the screen too would help nobody.
pub struct TimelineSink {
    timeline: Timeline,
    failed: bool,
}

impl TimelineSink {
    pub fn new(timeline: Timeline) -> Self {
        TimelineSink {
            timeline,
            failed: false,
        }
    }
}

impl Sink for TimelineSink {
    fn emit(&mut self, event: &Event) {
        // Spinner starts are screen detail; the finished observation carries the timing.
        if matches!(event.kind, EventKind::CheckStarted { .. }) {
            return;
        }
        if let Err(err) = self.timeline.write(event)
            && !self.failed
        {
            self.failed = true;
            eprintln!("error: {err}; the run goes on without a timeline");
        }
    }
}

/// When an incident was opened: the time of its first event.
fn opened_at(path: &Path) -> Option<jiff::Timestamp> {
    let mut first = String::new();
    BufReader::new(File::open(path).ok()?)
        .read_line(&mut first)
        .ok()?;
    serde_json::from_str::<Event>(&first).ok().map(|e| e.ts)
}

/// Every event of a timeline. A line cut short (the process was killed mid-write, and perhaps
/// later events appended after it) is reported and left out; any other damage is an error.
pub fn read(path: &Path) -> Result<Vec<Event>, TimelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| TimelineError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(e) if e.is_eof() => {
                eprintln!(
                    "warning: {}:{}: an event was cut short and is left out",
                    path.display(),
                    n + 1
                );
            }
            Err(e) => {
                return Err(TimelineError::Parse {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(events)
}

pub fn user() -> String {
    std::env::var("ONCALL_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
