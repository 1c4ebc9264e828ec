//! The host oncall runs on: disk, memory, load, folder sizes, file checksums and TCP reachability
//! as checks; deleting old files (or clearing a cache folder) as an action.

mod spec;

pub use spec::{Checksums, DeleteFiles, DirSize, Disk, Load, LogFiles, Memory, Tcp};

use super::reading::{Reading, Table, Verdict, number};
use super::{Plan, humanize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Rows kept for a folder's entries or a file list: the largest first.
const ROWS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{manifest}:{line}: not a checksum line (want `<sha256>  <path>`)")]
    Manifest { manifest: String, line: usize },
    #[error("cannot connect to {address}: {cause}")]
    Connect { address: String, cause: String },
    #[error("no connection to {address} within {}", humanize(*.after))]
    ConnectTimeout { address: String, after: Duration },
    #[error("cannot delete {path}: {source}")]
    Delete {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid pattern '{0}': use * and ? wildcards")]
    Pattern(String),
    #[error("reading {what} did not finish within {}", humanize(*.after))]
    TooSlow { what: String, after: Duration },
    #[error("{0} is not a regular file: only log files are read")]
    NotAFile(String),
    #[error("cannot read the host's figures: {0}")]
    Sysinfo(String),
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Bytes for people: `12.5 GiB`, `300 MiB`, `12 KiB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= GIB {
        format!("{:.1} GiB", f / GIB)
    } else if f >= 1024.0 * 1024.0 {
        format!("{:.0} MiB", f / 1024.0 / 1024.0)
    } else if f >= 1024.0 {
        format!("{:.0} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn statvfs(path: &str) -> Result<(u64, u64, u64), Error> {
    let c_path = std::ffi::CString::new(path).map_err(|_| Error::Read {
        path: path.into(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct that statvfs fills.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(Error::Read {
            path: path.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let block = stat.f_frsize as u64;
    let size = stat.f_blocks as u64 * block;
    let avail = stat.f_bavail as u64 * block;
    let used = size - stat.f_bfree as u64 * block;
    Ok((size, used, avail))
}

/// `df` of each path: size, used, available, and the used share as each row's value.
pub fn disk(
    spec: &Disk,
    render: &dyn Fn(&str) -> Result<String, super::BackendError>,
) -> Result<Reading, super::BackendError> {
    let mut rows = Vec::new();
    for path in &spec.paths {
        let path = render(&path.value)?;
        let (size, used, avail) = statvfs(&path)?;
        // As df computes it: used / (used + available to users).
        let pct = if used + avail == 0 {
            0.0
        } else {
            (used as f64 * 100.0 / (used + avail) as f64).round()
        };
        rows.push(vec![
            path.into(),
            bytes(size).into(),
            bytes(used).into(),
            bytes(avail).into(),
            number(pct),
        ]);
    }
    let columns = ["path", "size", "used", "available", "value"]
        .map(String::from)
        .to_vec();
    let value = if rows.len() == 1 {
        rows[0][4].clone()
    } else {
        Value::Null
    };
    Ok(Reading {
        value,
        table: Some(Table::new(columns, rows)),
        text: None,
        verdict: None,
        took_ms: None,
    })
}

/// `free`: memory in use as a share of the total.
pub fn memory() -> Result<Reading, Error> {
    let mut system = sysinfo::System::new().map_err(|e| Error::Sysinfo(e.to_string()))?;
    system.refresh_memory();
    let (total, available) = (system.total_memory(), system.available_memory());
    let used = total.saturating_sub(available);
    let pct = if total == 0 {
        0.0
    } else {
        (used as f64 * 1000.0 / total as f64).round() / 10.0
    };
    let text = format!(
        "{} used of {}, {} available; swap {} of {}",
        bytes(used),
        bytes(total),
        bytes(available),
        bytes(system.used_swap()),
        bytes(system.total_swap())
    );
    Ok(Reading {
        value: number(pct),
        text: Some(text),
        ..Reading::default()
    })
}

/// `top`: the load averages and the CPU use over a short sample.
pub async fn load() -> Result<Reading, Error> {
    let mut system = sysinfo::System::new().map_err(|e| Error::Sysinfo(e.to_string()))?;
    system.refresh_cpu_all();
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    system.refresh_cpu_usage();
    let load = sysinfo::System::load_average().map_err(|e| Error::Sysinfo(e.to_string()))?;
    let cpus = system.cpus().len();
    let usage = system.global_cpu_usage();
    let text = format!(
        "load {:.2} {:.2} {:.2} on {cpus} CPUs; CPU {usage:.0}% busy",
        load.one, load.five, load.fifteen
    );
    let columns = ["load 1m", "load 5m", "load 15m", "cpus", "cpu busy %"]
        .map(String::from)
        .to_vec();
    let row = vec![
        number(load.one),
        number(load.five),
        number(load.fifteen),
        cpus.into(),
        number(usage.round() as f64),
    ];
    Ok(Reading {
        value: number(load.one),
        table: Some(Table::new(columns, vec![row])),
        text: Some(text),
        verdict: None,
        took_ms: None,
    })
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// `du -sh PATH/*`: each entry's size, largest first; the value is the total in GiB.
pub fn dir_size(path: &str) -> Result<Reading, Error> {
    let dir = Path::new(path);
    let mut entries: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                tree_size(&e.path()),
            )
        })
        .collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = entries.iter().map(|e| e.1).sum();
    let rows = entries
        .iter()
        .take(ROWS)
        .map(|(name, size)| vec![name.clone().into(), bytes(*size).into()])
        .collect();
    let columns = ["entry", "size"].map(String::from).to_vec();
    let text = format!("{} in {} entries", bytes(total), entries.len());
    Ok(Reading {
        value: number((total as f64 / GIB * 100.0).round() / 100.0),
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict: None,
        took_ms: None,
    })
}

fn sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `sha256sum -c`: every file of a manifest, verified; the value is the number of bad files.
pub fn checksums(
    spec: &Checksums,
    render: &dyn Fn(&str) -> Result<String, super::BackendError>,
) -> Result<Reading, super::BackendError> {
    let manifest = PathBuf::from(render(&spec.manifest.value)?);
    let root = match &spec.root {
        Some(root) => PathBuf::from(render(&root.value)?),
        None => manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let text = std::fs::read_to_string(&manifest).map_err(read_err(&manifest))?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Some((hash, file)) = line.split_once(char::is_whitespace) else {
            return Err(Error::Manifest {
                manifest: manifest.display().to_string(),
                line: n + 1,
            }
            .into());
        };
        let file = file.trim_start().trim_start_matches('*');
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Manifest {
                manifest: manifest.display().to_string(),
                line: n + 1,
            }
            .into());
        }
        let (status, actual) = match sha256(&root.join(file)) {
            Ok(actual) if actual.eq_ignore_ascii_case(hash) => ("ok", actual),
            Ok(actual) => ("mismatch", actual),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ("missing", String::new()),
            Err(e) => {
                return Err(Error::Read {
                    path: root.join(file).display().to_string(),
                    source: e,
                }
                .into());
            }
        };
        if status != "ok" {
            bad.push(format!("{file} ({status})"));
        }
        rows.push(vec![
            file.into(),
            status.into(),
            hash[..12].into(),
            actual.get(..12).unwrap_or("").into(),
        ]);
    }
    let verdict = (!bad.is_empty()).then(|| {
        (
            Verdict::Fail,
            format!("checksum failed: {}", bad.join(", ")),
        )
    });
    let columns = ["file", "status", "expected", "actual"]
        .map(String::from)
        .to_vec();
    Ok(Reading {
        value: bad.len().into(),
        table: Some(Table::new(columns, rows)),
        text: None,
        verdict,
        took_ms: None,
    })
}

/// A TCP connect: `ping` and `telnet host port` in one; the value is the latency in ms.
pub async fn tcp(
    spec: &Tcp,
    render: &dyn Fn(&str) -> Result<String, super::BackendError>,
    timeout: Duration,
) -> Result<Reading, super::BackendError> {
    let address = render(&spec.address.value)?;
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            Ok(Reading {
                value: number((ms * 100.0).round() / 100.0),
                text: Some(format!("connected to {address}")),
                ..Reading::default()
            })
        }
        Ok(Err(e)) => {
            let cause = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".to_string()
            } else {
                e.to_string()
            };
            Err(Error::Connect { address, cause }.into())
        }
        Err(_) => Err(Error::ConnectTimeout {
            address,
            after: timeout,
        }
        .into()),
    }
}

/// Matching lines kept by default, and how much of the end of each file is read.
pub const LOG_LINES: usize = 20;
const LOG_TAIL: u64 = 64 * 1024 * 1024;
const LOG_LINE_CHARS: usize = 500;

/// The files a path names: itself, or those of its folder whose names match its last part.
fn log_paths(path: &str) -> Result<Vec<PathBuf>, Error> {
    let (dir, name) = path.rsplit_once('/').unwrap_or((".", path));
    let dir = if dir.is_empty() { "/" } else { dir };
    if !name.contains(['*', '?']) {
        // A FIFO or a device (/dev/zero) would never end.
        let meta = std::fs::metadata(path).map_err(read_err(Path::new(path)))?;
        if !meta.is_file() {
            return Err(Error::NotAFile(path.to_string()));
        }
        return Ok(vec![PathBuf::from(path)]);
    }
    let pattern = glob(name)?;
    let folder = Path::new(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(read_err(folder))?
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()))
        .filter(|e| pattern.is_match(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Read {
            path: path.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no file matches"),
        });
    }
    Ok(files)
}

/// `grep PATTERN FILES | tail -N`: counts the matching lines of each file (its last 64 MiB),
/// keeping the latest `keep`.
pub fn log_files(paths: &[String], pattern: &regex::Regex, keep: usize) -> Result<Reading, Error> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut files = Vec::new();
    for path in paths {
        files.extend(log_paths(path)?);
    }
    let mut kept: std::collections::VecDeque<(String, String)> = std::collections::VecDeque::new();
    let mut count = 0u64;
    for file in &files {
        let mut f = std::fs::File::open(file).map_err(read_err(file))?;
        let size = f.metadata().map_err(read_err(file))?.len();
        let mut reader = std::io::BufReader::new(&mut f);
        if size > LOG_TAIL {
            reader
                .seek(SeekFrom::Start(size - LOG_TAIL))
                .map_err(read_err(file))?;
            // The first line read from the middle of the file is a part of one.
            reader
                .read_until(b'\n', &mut Vec::new())
                .map_err(read_err(file))?;
        }
        let name = file.display().to_string();
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .map_err(read_err(file))?
                == 0
            {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if pattern.is_match(text) {
                count += 1;
                if kept.len() == keep {
                    kept.pop_front();
                }
                kept.push_back((name.clone(), text.chars().take(LOG_LINE_CHARS).collect()));
            }
        }
    }
    let rows = kept
        .into_iter()
        .map(|(file, line)| vec![file.into(), line.into()])
        .collect();
    let columns = ["file", "line"].map(String::from).to_vec();
    Ok(Reading {
        value: count.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(format!(
            "{count} matching line(s) in {} file(s)",
            files.len()
        )),
        verdict: None,
        took_ms: None,
    })
}

/// A glob with `*` and `?` as a regex over a whole file name.
fn glob(pattern: &str) -> Result<regex::Regex, Error> {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|_| Error::Pattern(pattern.into()))
}

/// The files an approved cleanup deletes: exactly the ones its plan listed.
pub struct Cleanup {
    pub dir: PathBuf,
    pub files: Vec<(PathBuf, u64)>,
}

/// Lists what `find DIR -name PATTERN -mtime +AGE` would match (or everything in DIR with no pattern).
pub fn cleanup(
    dir: &str,
    pattern: Option<&str>,
    older_than: Option<Duration>,
) -> Result<Cleanup, Error> {
    let dir = PathBuf::from(dir);
    let pattern = pattern.map(glob).transpose()?;
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(read_err(&dir))?
        .filter_map(|e| e.ok())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if pattern.as_ref().is_some_and(|p| !p.is_match(&name)) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if older_than.is_some_and(|min| age < min) {
            continue;
        }
        files.push((entry.path(), tree_size(&entry.path())));
    }
    files.sort();
    Ok(Cleanup { dir, files })
}

/// A cleanup's plan without reading the folder: what a drill shows.
pub fn describe_cleanup(dir: &str, pattern: Option<&str>, older_than: Option<&str>) -> Plan {
    let what = pattern.map_or("every entry".to_string(), |p| format!("entries named {p}"));
    let age = older_than
        .map(|a| format!(" older than {a}"))
        .unwrap_or_default();
    let request = format!("delete {what}{age} in {dir}");
    Plan {
        backend: "host".into(),
        request,
        changes: vec!["the entries are listed when the plan is made on the host itself".into()],
        ..Plan::default()
    }
}

impl Cleanup {
    pub fn plan(&self) -> Plan {
        let total: u64 = self.files.iter().map(|f| f.1).sum();
        let mut changes: Vec<String> = self
            .files
            .iter()
            .take(ROWS)
            .map(|(p, size)| format!("delete {} ({})", p.display(), bytes(*size)))
            .collect();
        if self.files.len() > ROWS {
            changes.push(format!("… and {} more", self.files.len() - ROWS));
        }
        let request = format!(
            "delete {} entries in {} ({} freed)",
            self.files.len(),
            self.dir.display(),
            bytes(total)
        );
        Plan {
            backend: "host".into(),
            request,
            changes,
            ..Plan::default()
        }
    }

    /// Deletes the listed entries and nothing else; an entry already gone is not an error.
    pub(super) fn apply(&self) -> Result<String, Error> {
        let mut freed = 0;
        let mut deleted = 0;
        for (path, size) in &self.files {
            let meta = match path.symlink_metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Delete {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            removed.map_err(|source| Error::Delete {
                path: path.display().to_string(),
                source,
            })?;
            deleted += 1;
            freed += size;
        }
        Ok(format!(
            "deleted {deleted} entries in {}, {} freed",
            self.dir.display(),
            bytes(freed)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        let g = glob("vid-bench-*").unwrap();
        assert!(g.is_match("vid-bench-123.tmp"));
        assert!(!g.is_match("old-vid-bench-1"));
        assert!(glob("a?c").unwrap().is_match("abc"));
        assert!(!glob("a.c").unwrap().is_match("abc"), "a dot is a dot");
    }
}
