//! The incident timeline: JSON lines, one event each, readable only by its owner. Every writer
//! (a run, `note`, `resolve`) opens it in append mode and writes an event in one write, fsynced,
//! so several can write at once and none overwrites another; no writer follows a symlink.

mod summary;

pub use summary::{Listed, Status, Summary};

use crate::engine::event::{Event, EventKind, Sink};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("cannot use the state folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing the state folder {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
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
    #[error(
        "{path} is not a regular file (a symlink, a folder or a pipe): oncall only uses timelines it created"
    )]
    NotAFile { path: PathBuf },
    #[error("no incident '{0}'; `oncall incidents` lists them")]
    NoSuchIncident(String),
    #[error(
        "incident {0} is running now: its run holds the timeline. `oncall note --incident {0} TEXT` adds to it"
    )]
    Running(String),
    #[error("no incidents yet in {0}; `oncall run RUNBOOK` opens one")]
    NoIncidents(PathBuf),
    #[error(
        "no live incident in {0}; name a drill or a dry run: `oncall incidents` lists them with their ids"
    )]
    NoLiveIncident(PathBuf),
}

/// Opens an incident file without following a symlink and without blocking on a pipe, and
/// refuses anything that is not a regular file.
fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File, std::io::Error> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

/// Maps the errors of `open_regular` on an existing incident to words.
fn open_error(path: &Path, source: std::io::Error, write: bool) -> TimelineError {
    if source.kind() == std::io::ErrorKind::NotFound {
        let id = path.file_stem().unwrap_or_default().to_string_lossy();
        return TimelineError::NoSuchIncident(id.into_owned());
    }
    let path = path.to_path_buf();
    // ELOOP: a symlink; ENXIO: a pipe with no reader; Other: `open_regular` found no file.
    let refused = matches!(source.raw_os_error(), Some(libc::ELOOP | libc::ENXIO));
    if refused || source.kind() == std::io::ErrorKind::Other {
        TimelineError::NotAFile { path }
    } else if write {
        TimelineError::Write { path, source }
    } else {
        TimelineError::Read { path, source }
    }
}

/// Where incidents live: `$ONCALL_STATE_DIR`, or the user's state folder.
pub struct Store {
    /// The state folder.
    pub base: PathBuf,
    /// `incidents/` under it.
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
            base,
        }
    }

    /// Creates the folders (0700), and makes sure no one else can write incidents there: a
    /// folder of ours that others can write is tightened with a warning; someone else's is refused.
    fn ensure(&self) -> Result<(), TimelineError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| TimelineError::Folder {
                path: self.dir.clone(),
                source,
            })?;
        self.refuse_linked_folder()?;
        // A sticky folder (like /tmp) keeps others from replacing what is ours inside it.
        guard_folder(&self.base, true)?;
        guard_folder(&self.dir, false)
    }

    /// `incidents/` must be the folder itself: through a symlink, incidents would be written
    /// where the link points, with that folder's permissions.
    pub(crate) fn refuse_linked_folder(&self) -> Result<(), TimelineError> {
        match std::fs::symlink_metadata(&self.dir) {
            Ok(meta) if meta.file_type().is_symlink() => Err(TimelineError::Unsafe {
                path: self.dir.clone(),
                why: "it is a symlink; oncall keeps incidents only in a folder of its own (remove the link, or choose another --state-dir)".into(),
            }),
            _ => Ok(()),
        }
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
            // create_new never follows a symlink: a planted one is "already exists", and skipped.
            match open_regular(
                &path,
                OpenOptions::new().append(true).create_new(true).mode(0o600),
            ) {
                Ok(file) => {
                    // A new file: no one else can hold it yet.
                    summary::hold(&file);
                    return Ok((id, Timeline { file, path }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(TimelineError::Write { path, source }),
            }
        }
        unreachable!("the loop returns or errs")
    }

    /// Opens an existing incident to add to it.
    pub fn append(&self, incident: &str) -> Result<Timeline, TimelineError> {
        self.ensure()?;
        let path = self.path(incident);
        let mut file = open_regular(&path, OpenOptions::new().read(true).append(true))
            .map_err(|e| open_error(&path, e, true))?;
        let err = |source| TimelineError::Write {
            path: path.clone(),
            source,
        };
        // After a torn last line, start the next event on a line of its own.
        let mut last = [0u8; 1];
        let torn = match file.seek(SeekFrom::End(-1)) {
            Ok(_) => {
                file.read_exact(&mut last).map_err(err)?;
                last[0] != b'\n'
            }
            Err(_) => false, // empty
        };
        if torn {
            file.write_all(b"\n").map_err(err)?;
        }
        Ok(Timeline { file, path })
    }

    /// Opens an incident to add to it, creating its file when only the team store has it (a
    /// note on another responder's incident is written here first, then shared).
    pub fn join(&self, incident: &str) -> Result<Timeline, TimelineError> {
        self.ensure()?;
        let path = self.path(incident);
        match open_regular(
            &path,
            OpenOptions::new().append(true).create_new(true).mode(0o600),
        ) {
            Ok(file) => Ok(Timeline { file, path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.append(incident),
            Err(source) => Err(TimelineError::Write { path, source }),
        }
    }

    /// Opens an incident for a run that goes on with it (its file created when only the team
    /// store has it), holding it as a run does; refused while another run holds it.
    pub fn take(&self, incident: &str) -> Result<Timeline, TimelineError> {
        let timeline = self.join(incident)?;
        if !summary::hold(&timeline.file) {
            return Err(TimelineError::Running(incident.to_string()));
        }
        Ok(timeline)
    }

    /// Incident ids, oldest first.
    pub fn list(&self) -> Vec<String> {
        if let Err(err) = self.refuse_linked_folder() {
            eprintln!("warning: {err}");
            return Vec::new();
        }
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
}

/// Makes sure only its owner can write a folder incidents live in.
fn guard_folder(dir: &Path, sticky_is_enough: bool) -> Result<(), TimelineError> {
    let folder_err = |source| TimelineError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(folder_err)?;
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 == 0 || (sticky_is_enough && sticky) {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(TimelineError::Unsafe {
            path: dir.to_path_buf(),
            why: format!(
                "others can write it (mode {mode:04o}) and it belongs to uid {}, not to you (uid {me}); choose another with --state-dir",
                meta.uid()
            ),
        });
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(folder_err)?;
    eprintln!(
        "warning: others could write {} (mode {mode:04o}); oncall set it to 0700",
        dir.display()
    );
    Ok(())
}

pub struct Timeline {
    file: File,
    pub path: PathBuf,
}

impl Timeline {
    /// Appends one event in a single write, then fsyncs it.
    pub fn write(&mut self, event: &Event) -> Result<(), TimelineError> {
        let mut line = crate::sanitize::json_text(
            serde_json::to_string(event).expect("events always serialize"),
        );
        line.push('\n');
        let err = |source| TimelineError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}

/// The timeline as a sink. A write failure is shown when it happens and kept, so the run's
/// summary and exit code can say the record is incomplete; the run goes on, since losing the
/// screen too would help nobody.
pub struct TimelineSink {
    timeline: Timeline,
    failure: Option<String>,
}

impl TimelineSink {
    pub fn new(timeline: Timeline) -> Self {
        TimelineSink {
            timeline,
            failure: None,
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
            && self.failure.is_none()
        {
            eprintln!("error: {err}; the timeline is incomplete from here on");
            self.failure = Some(err.to_string());
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

/// When an incident was opened: the time of its first event.
fn opened_at(path: &Path) -> Option<jiff::Timestamp> {
    let file = open_regular(path, OpenOptions::new().read(true)).ok()?;
    let mut first = String::new();
    BufReader::new(file.take(64 * 1024))
        .read_line(&mut first)
        .ok()?;
    serde_json::from_str::<Event>(&first).ok().map(|e| e.ts)
}

/// Every event of a timeline. A line that is not an event (cut short by a crash, damaged) is
/// reported and left out: one bad line never hides the rest.
pub fn read(path: &Path) -> Result<Vec<Event>, TimelineError> {
    let mut bytes = Vec::new();
    open_regular(path, OpenOptions::new().read(true))
        .map_err(|e| open_error(path, e, false))?
        .read_to_end(&mut bytes)
        .map_err(|source| TimelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(e) => {
                let why = if e.is_eof() {
                    "an event was cut short".to_string()
                } else {
                    format!("not a timeline event ({e})")
                };
                eprintln!("warning: {}:{}: {why}; left out", path.display(), n + 1);
            }
        }
    }
    Ok(events)
}

/// A timeline's lines from an offset: each with its event (None for a line that is not one),
/// and the offset after the last of them.
pub struct Tail {
    pub lines: Vec<(String, Option<Event>)>,
    pub end: u64,
}

/// The complete lines of a timeline from byte `offset` on, each with its event (None for a line
/// that is not one), and the offset after the last complete line: a line still being written
/// waits for the next read.
pub fn tail(path: &Path, offset: u64) -> Result<Tail, TimelineError> {
    let err = |source| TimelineError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_regular(path, OpenOptions::new().read(true))
        .map_err(|e| open_error(path, e, false))?;
    let len = file.metadata().map_err(err)?.len();
    // A file shorter than what was shared is not the one that was shared: read it all.
    let offset = if offset > len { 0 } else { offset };
    file.seek(SeekFrom::Start(offset)).map_err(err)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(err)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| (l.to_string(), serde_json::from_str(l).ok()))
        .collect();
    Ok(Tail {
        lines,
        end: offset + complete as u64,
    })
}

/// Who runs oncall: `$ONCALL_USER`, `$USER`, `$LOGNAME`, else the account's name (or, for an
/// account without a name, its uid). Never "unknown": the record says who decided.
pub fn user() -> String {
    ["ONCALL_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|name| !name.trim().is_empty())
        .unwrap_or_else(account_name)
}

/// The machine oncall runs on, for the record of who resumed an incident where.
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer given.
    let status = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match String::from_utf8_lossy(&buf[..end]).into_owned() {
        name if status == 0 && !name.is_empty() => name,
        _ => "unknown host".to_string(),
    }
}

fn account_name() -> String {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the buffers given, and
    // its result is read only when it reports success with a non-null entry.
    unsafe {
        let uid = libc::geteuid();
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found);
        if status == 0 && !found.is_null() && !entry.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(entry.pw_name).to_string_lossy();
            if !name.is_empty() {
                return name.into_owned();
            }
        }
        format!("uid {uid}")
    }
}
