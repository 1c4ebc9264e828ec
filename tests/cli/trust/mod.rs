//! Trust: nothing the engineer writes is lost, no input crashes oncall, no secret leaks, no value
//! rewrites a request. Each test here failed on the main of 2026-11-29 before these were fixed.

mod crashes;
mod fuzz;
mod injection;
mod record;
mod secrets;

use crate::support::Sandbox;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Puts a runbook where `oncall` finds it by id (`./runbooks` of the sandbox's working folder).
fn runbook(sb: &Sandbox, id: &str, text: &str) -> PathBuf {
    sb.write(&format!("runbooks/{id}.yaml"), text)
}

/// Starts oncall in the background, no terminal.
fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    sb.command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the oncall binary starts")
}

/// Waits for a background oncall to end; its exit code, stdout and stderr.
fn finish(mut child: Child, within: Duration) -> (i32, String, String) {
    let started = Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited on")
        .is_none()
    {
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("oncall did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every piece of output a run leaves: the screen, the report, the timeline file, and what
/// `oncall timeline` prints of it.
fn everything(sb: &Sandbox, ran: &crate::support::Ran) -> String {
    let mut all = format!("{}\n{}\n", ran.stdout, ran.stderr);
    for path in sb.incidents() {
        all.push_str(&std::fs::read_to_string(path).unwrap());
    }
    let shown = sb.run(&["timeline"]);
    all.push_str(&shown.stdout);
    all.push_str(&shown.stderr);
    let json = sb.run(&["timeline", "--output", "json"]);
    all.push_str(&json.stdout);
    all
}
