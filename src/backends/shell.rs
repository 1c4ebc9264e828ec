//! Shell commands: read-only checks and prompted actions. Output is streamed line by line with
//! bounded memory; on timeout the whole process group is killed.

use super::kinds::{ActionSpec, CheckSpec, Touch, switch_pair};
use super::reading::{Reading, Table, Verdict};
use super::{BackendError, Live, Plan, PlanContext, Prepared, humanize};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{MAX_ROWS, S};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const DEFAULT_KEEP: usize = 10;
const STDERR_LIMIT: u64 = 8 * 1024;

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
    pub keep: Option<S<usize>>,
    /// Check only: the value is the number on the last output line (or match), not the count.
    #[serde(default)]
    pub number: bool,
}

impl ShellSpec {
    fn validate_command(&self, v: &mut Validator) {
        let at = &self.command;
        v.template(at, "command");
        if let Some(offset) = expr::quoted_placeholder(&at.value) {
            v.problem_inside(
                at,
                1,
                offset,
                "a template value inside quotes in a shell command: the quotes would undo its quoting".into(),
                "write {{ value }} without quotes around it: oncall quotes every value for the shell",
            );
        }
    }
}

impl CheckSpec for ShellSpec {
    const BACKEND: &'static str = "shell";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.validate_command(v);
        v.count(self.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        if let Some(pattern) = &self.matches {
            v.regex(pattern);
        }
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let command = expr::render_shell(&self.command.value, ctx)
            .unwrap_or_else(|_| self.command.value.clone());
        Some(format!("shell: {command}"))
    }

    async fn read(
        &self,
        _live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let command = expr::render_shell(&self.command.value, ctx)?;
        Ok(check(&command, self, timeout).await?)
    }
}

impl ActionSpec for ShellSpec {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        self.validate_command(v);
        if self.matches.is_some() || self.keep.is_some() || self.number {
            v.problem(
                &self.command,
                "`matches`, `keep` and `number` only apply to checks".into(),
                None,
            );
        }
    }

    async fn prepare(
        &self,
        ctx: &Value,
        _with: &PlanContext<'_>,
    ) -> Result<Prepared, BackendError> {
        let command = expr::render_shell(&self.command.value, ctx)?;
        // As `sh -c` will read it: quoting it once more would hide what runs (and any secret in it).
        let plan = Plan {
            backend: "shell".into(),
            request: command.clone(),
            ..Plan::default()
        };
        Ok(Prepared::new(plan, super::Request::Shell(command)))
    }

    /// What a command sets, read from its words as written (each template one word, whatever it
    /// renders to): `tool config set KEY VALUE` sets KEY (every word but the last),
    /// `tool maintenance-mode enable` switches what `... disable` switches back. Any other command
    /// says nothing oncall can compare.
    fn touches(&self, _ctx: &Value) -> Vec<Touch> {
        let command = one_word_templates(&self.command.value);
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some((last, before)) = words.split_last() else {
            return Vec::new();
        };
        if before.iter().any(|w| w.eq_ignore_ascii_case("set")) {
            return vec![Touch::sets(format!("shell: {}", before.join(" ")))];
        }
        match switch_pair(last) {
            Some(pair) if !before.is_empty() => {
                vec![Touch::sets(format!("shell: {} {pair}", before.join(" ")))]
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start sh: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Wait(std::io::Error),
    #[error("command did not finish within {}; its process group was killed", humanize(*.after))]
    TimedOut { after: Duration },
    #[error(transparent)]
    BadPattern(regex::Error),
    /// An action that exited with a status other than 0: the status and the last line of stderr.
    #[error("exited with {}: {stderr}", exit(*.status))]
    Exited { status: Option<i32>, stderr: String },
    #[error("expected a number on the last line of output, got '{line}'")]
    NotANumber { line: String },
}

/// A command with each `{{ … }}` written as `{{}}`: the words it has, whatever the values are.
fn one_word_templates(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        out.push_str("{{}}");
        rest = match rest[start..].find("}}") {
            Some(end) => &rest[start + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The number on a line of output: `87`, `87%`, ` 3.5 `.
fn number_in(line: &str) -> Option<f64> {
    line.trim().trim_end_matches('%').trim().parse().ok()
}

/// "status 3", or "a signal" when there is no exit status.
fn exit(status: Option<i32>) -> String {
    status.map_or("a signal".to_string(), |c| format!("status {c}"))
}

/// What a command left: its exit status, its output lines (counted, the last ones kept), stderr.
pub(super) struct Output {
    pub status: Option<i32>,
    pub counted: usize,
    pub kept: VecDeque<String>,
    pub stderr: String,
}

/// Reads output to its end: the lines that match (all without a pattern) counted, the last
/// `keep` of them kept.
pub(super) async fn collect<R: AsyncBufRead + Unpin>(
    mut reader: R,
    pattern: Option<&regex::Regex>,
    keep: usize,
) -> (usize, VecDeque<String>) {
    let mut kept = VecDeque::with_capacity(keep.min(64));
    let mut counted = 0;
    while let Some(line) = next_line(&mut reader).await {
        if pattern.is_none_or(|p| p.is_match(&line)) {
            counted += 1;
            if kept.len() == keep {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    }
    (counted, kept)
}

/// Reads stderr to its end, keeping the first STDERR_LIMIT bytes. Reading on after the limit
/// matters: a stream whose reader stopped can stall its writer (kube-rs feeds each exec channel
/// through a small pipe).
pub(super) async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut reader: R) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = (STDERR_LIMIT as usize).saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A check's pattern and how many lines it keeps.
pub(super) fn pattern_and_keep(
    matches: &Option<S<String>>,
    keep: &Option<S<usize>>,
) -> Result<(Option<regex::Regex>, usize), Error> {
    let pattern = match matches {
        Some(p) => Some(regex::Regex::new(&p.value).map_err(Error::BadPattern)?),
        None => None,
    };
    Ok((pattern, keep.as_ref().map_or(DEFAULT_KEEP, |k| k.value)))
}

fn spawn(command: &str) -> Result<Child, Error> {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::Spawn)
}

/// The longest output line kept whole; the rest of a longer line is read and dropped.
const LINE_LIMIT: u64 = 64 * 1024;

/// The next line of output without its newline, at most `LINE_LIMIT` bytes of it; None at the end.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(LINE_LIMIT)
        .read_until(b'\n', &mut line)
        .await
        .ok()?;
    if n == 0 {
        return None;
    }
    if !line.ends_with(b"\n") && n as u64 == LINE_LIMIT {
        let mut rest = Vec::new();
        while (&mut *reader)
            .take(LINE_LIMIT)
            .read_until(b'\n', &mut rest)
            .await
            .ok()?
            > 0
            && !rest.ends_with(b"\n")
        {
            rest.clear();
        }
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Process groups of commands still running, so an interrupted oncall can stop them on its way out.
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A command's process group while it runs. Dropped before the command finished (its future
/// was cancelled: a wait stopped by Ctrl-C), it kills the group, grandchildren included.
struct Running {
    pid: Option<u32>,
    finished: bool,
}

impl Running {
    fn new(pid: Option<u32>) -> Running {
        if let Some(pid) = pid {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid);
        }
        Running {
            pid,
            finished: false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            kill_group(self.pid);
        }
        if let Some(pid) = self.pid {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
        }
    }
}

/// Kills every command still running (their whole process groups) and returns their pids.
/// They run in their own groups, so the terminal's Ctrl-C does not reach them by itself.
pub fn kill_running() -> Vec<u32> {
    let pids: Vec<u32> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    for pid in &pids {
        kill_group(Some(*pid));
    }
    pids
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) with a negative pid signals the process group made for the child.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
}

async fn run(
    command: &str,
    pattern: Option<&regex::Regex>,
    keep: usize,
    timeout: Duration,
) -> Result<Output, Error> {
    let mut child = spawn(command)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    // The child is borrowed by `work`; kill its group through the pid on timeout.
    let pid = child.id();
    let mut running = Running::new(pid);
    let work = async {
        let ((counted, kept), stderr) = tokio::join!(
            collect(BufReader::new(stdout), pattern, keep),
            read_capped(stderr)
        );
        let status = child.wait().await.map_err(Error::Wait)?;
        Ok(Output {
            status: status.code(),
            counted,
            kept,
            stderr,
        })
    };
    let result = tokio::time::timeout(timeout, work).await;
    // Finished or not, a timed-out group is killed by the guard.
    running.finished = result.is_ok();
    drop(running);
    result.unwrap_or(Err(Error::TimedOut { after: timeout }))
}

pub async fn check(command: &str, spec: &ShellSpec, timeout: Duration) -> Result<Reading, Error> {
    let (pattern, keep) = pattern_and_keep(&spec.matches, &spec.keep)?;
    let out = run(command, pattern.as_ref(), keep, timeout).await?;
    reading(out, spec.number)
}

/// A check's reading of a command's output: the count of lines (or the number on the last
/// one), the lines kept, and a failure for an exit status other than 0.
pub(super) fn reading(out: Output, number: bool) -> Result<Reading, Error> {
    let table = (!out.kept.is_empty()).then(|| {
        Table::new(
            vec!["line".into()],
            out.kept.iter().map(|l| vec![l.clone().into()]).collect(),
        )
    });
    let value = if number {
        let line = out.kept.back().cloned().unwrap_or_default();
        let number = number_in(&line).ok_or(Error::NotANumber { line })?;
        super::reading::number(number)
    } else {
        out.counted.into()
    };
    let mut reading = Reading {
        value,
        table,
        text: out.kept.back().cloned(),
        verdict: None,
        took_ms: None,
    };
    if out.status != Some(0) {
        let why = out.stderr.lines().last().unwrap_or("").trim();
        reading.verdict = Some((
            Verdict::Fail,
            format!("command exited with {} {why}", exit(out.status))
                .trim()
                .to_string(),
        ));
    }
    Ok(reading)
}

pub(super) async fn run_action(command: &str, timeout: Duration) -> Result<String, Error> {
    let out = run(command, None, 5, timeout).await?;
    let tail: Vec<String> = out.kept.into_iter().collect();
    match out.status {
        Some(0) => Ok(format!("exit 0 {}", tail.join(" | ")).trim().to_string()),
        status => Err(Error::Exited {
            status,
            stderr: out.stderr.lines().last().unwrap_or("").trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("oncall-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("survived");
        // A grandchild that would write the marker if it outlived the timeout.
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let err = run(&cmd, None, 1, Duration::from_millis(300))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did not finish within 300ms"), "{err}");
        // Wait past the grandchild's sleep: it must have been killed with the group.
        let done = run("sleep 2.5", None, 1, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(done.status, Some(0));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_very_long_line_is_cut_and_the_next_one_still_read() {
        let out = run(
            "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after",
            None,
            5,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out.counted, 2);
        assert_eq!(out.kept[0].len(), LINE_LIMIT as usize);
        assert_eq!(out.kept[1], "after");
    }

    #[tokio::test]
    async fn matches_count_and_keep_the_last_lines() {
        let pattern = regex::Regex::new("ERROR").unwrap();
        let out = run(
            "printf 'ERROR a\\nok\\nERROR b\\nERROR c\\n'",
            Some(&pattern),
            2,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out.counted, 3);
        assert_eq!(out.kept, ["ERROR b", "ERROR c"]);
    }
}
