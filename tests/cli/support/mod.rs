//! The test harness: a sandbox per test (its own HOME, config, state and working folder), a
//! builder around the built binary with a hermetic environment, and the services it needs.
#![allow(dead_code)]

pub mod alertmanager;
pub mod docker;
#[cfg(test)]
mod docker_selftest;
pub mod kube;
#[cfg(test)]
mod kube_selftest;
pub mod nats;
pub mod nvml;
#[cfg(test)]
mod nvml_selftest;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod redis;
#[cfg(test)]
mod selftest;
pub mod servers;
#[cfg(test)]
mod services_selftest;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest any single oncall invocation may take in a test before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oncall"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A folder removed on drop, holding `home/`, `state/` and `work/` (the working directory).
pub struct Sandbox {
    pub root: PathBuf,
    env: Vec<(String, String)>,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "oncall-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for sub in ["home", "state", "work", "config"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        Sandbox {
            root,
            env: Vec::new(),
        }
    }

    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// An extra environment variable for every command of this sandbox.
    pub fn env(mut self, key: &str, value: &str) -> Sandbox {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.work().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The command with a hermetic environment: no inherited HOME, KUBECONFIG, DOCKER_HOST or ONCALL_*.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_STATE_HOME", self.root.join("home/.local/state"))
            .env("ONCALL_STATE_DIR", self.state())
            .env("ONCALL_USER", "tester")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .current_dir(self.work());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion with no terminal (stdin closed); panics if it hangs. Its output is
    /// read as it comes, so a command that prints a lot never blocks on a full pipe.
    pub fn run(&self, args: &[&str]) -> Ran {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the oncall binary starts");
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > HANG {
                let _ = child.kill();
                panic!("oncall {args:?} did not finish within {HANG:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// The incidents in the state folder, oldest first.
    pub fn incidents(&self) -> Vec<PathBuf> {
        // Regular files only: a test may plant a symlink or a pipe there.
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.state().join("incidents"))
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        // By when each was opened: `x-host-2.jsonl` sorts before `x-host.jsonl` by name.
        files.sort_by_key(|p| {
            (
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|t| t.get(..40).map(str::to_string)),
                p.clone(),
            )
        });
        files
    }

    /// Every event of the only (or latest) incident, each line parsed.
    pub fn timeline(&self) -> Vec<Value> {
        let path = self.incidents().pop().expect("an incident was recorded");
        read_timeline(&path)
    }
}

pub fn read_timeline(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Events of one kind.
pub fn events<'a>(timeline: &'a [Value], kind: &str) -> Vec<&'a Value> {
    timeline.iter().filter(|e| e["event"] == kind).collect()
}

/// The observation of a check in a run report.
pub fn observation<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no observation of {check} in {report:#}"))
}

/// An action of a run's JSON report, by id.
pub fn action<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().into_iter().flatten())
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no action {id} in {report}"))
}

/// Polls until a file contains a string; for waiting on a live process's timeline.
pub fn wait_for_file_containing(
    path_of: impl Fn() -> Option<PathBuf>,
    needle: &str,
    within: Duration,
) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(path) = path_of()
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle))
        {
            return path;
        }
        assert!(
            started.elapsed() < within,
            "no file contained {needle:?} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The command in a real pseudo-terminal (TERM=xterm-256color); each `expect` waits up to 30 s.
pub fn pty(sb: &Sandbox, args: &[&str]) -> expectrl::Session {
    let mut cmd = sb.command(args);
    cmd.env("TERM", "xterm-256color");
    let mut session = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
}

/// The rows of a sized pty: enough that a whole run fits without scrolling.
pub const ROWS: u16 = 2000;

/// Like `pty`, in a terminal `columns` wide (and `ROWS` tall) from the first byte: the size is set by `stty` before
/// oncall starts, so nothing is laid out at another width.
pub fn pty_sized(sb: &Sandbox, args: &[&str], columns: u16) -> expectrl::Session {
    let oncall = sb.command(args);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "stty cols {columns} rows {ROWS} && exec \"$0\" \"$@\""
        ))
        .arg(oncall.get_program())
        .args(oncall.get_args())
        .env_clear()
        .env("TERM", "xterm-256color");
    for (key, value) in oncall.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    if let Some(dir) = oncall.get_current_dir() {
        cmd.current_dir(dir);
    }
    let mut session = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
}

/// Reads a pty session to its end and gives its exit code; panics if a signal ended it.
pub fn pty_exit_code(session: &mut expectrl::Session) -> i32 {
    session.expect(expectrl::Eof).expect("the program ends");
    match session.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => code,
        other => panic!("ended by {other:?}"),
    }
}

/// The text with each regular expression's matches replaced, in order: what a snapshot normalizes.
pub fn replace_all(text: &str, rules: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (pattern, with) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *with)
            .into_owned();
    }
    text
}
