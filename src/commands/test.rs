//! `oncall test`: replays every scenario of the named runbooks as a drill, checks what each
//! expects (`expect:`), and measures branch coverage: each step's `when` seen true and false,
//! each action offered, each guarded action (`after:`) held back, each `fail_if` and `warn_if`
//! seen met and unmet.
//!
//! Each scenario runs as `oncall drill RUNBOOK --scenario NAME --yes -o json` in a process of its
//! own, exactly as an engineer's drill runs, in a temporary state folder removed after.

use super::Setup;
use crate::runbook::{self, Expect, Runbook, ScenarioSource, validate};
use crate::spec::S;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A drill that runs longer than this (they take well under a second) is stopped.
const DRILL_LIMIT: Duration = Duration::from_secs(120);

pub struct Request<'a> {
    pub targets: &'a [String],
    pub junit: Option<&'a Path>,
    pub min_coverage: Option<f64>,
}

/// What one scenario's drill did.
#[derive(Default)]
struct Happened {
    exit_code: Option<i64>,
    /// Step id → `ran` or `skipped` (a step never reached is absent).
    steps: BTreeMap<String, String>,
    /// Action id → offered (planned) or not.
    offered: BTreeMap<String, bool>,
    /// Actions held back because the verification they wait for (`after:`) was not met.
    held_back: Vec<(String, String)>,
    /// Check id → every verdict it had, in order (its reading, each re-check and each poll of a
    /// wait): the last is its verdict at the end, all of them count for coverage.
    verdicts: BTreeMap<String, Vec<String>>,
    messages: BTreeMap<String, String>,
    /// Why a step was skipped, for the failure message.
    reasons: BTreeMap<String, String>,
}

impl Happened {
    fn of(report: &Value) -> Happened {
        let mut happened = Happened {
            exit_code: report["exit_code"].as_i64(),
            ..Happened::default()
        };
        for step in report["steps"].as_array().into_iter().flatten() {
            let id = step["id"].as_str().unwrap_or_default().to_string();
            let status = step["status"].as_str().unwrap_or("ran").to_string();
            if let Some(reason) = step["reason"].as_str() {
                happened.reasons.insert(id.clone(), reason.to_string());
            }
            happened.steps.insert(id, status);
            for check in step["checks"].as_array().into_iter().flatten() {
                if let (Some(id), Some(verdict)) =
                    (check["check"].as_str(), check["verdict"].as_str())
                {
                    happened.saw(id, verdict);
                }
            }
            if let Some(check) = step["wait"]["check"].as_str() {
                for verdict in step["wait"]["verdicts"].as_array().into_iter().flatten() {
                    if let Some(verdict) = verdict.as_str() {
                        happened.saw(check, verdict);
                    }
                }
            }
            for action in step["actions"].as_array().into_iter().flatten() {
                let id = action["id"].as_str().unwrap_or_default().to_string();
                let offered = action["decision"] != "not_offered" && !action["plan"].is_null();
                if let Some(after) = action["unverified"].as_str() {
                    happened.held_back.push((id.clone(), after.to_string()));
                }
                happened.offered.insert(id, offered);
            }
            for message in step["messages"].as_array().into_iter().flatten() {
                if let (Some(name), Some(text)) =
                    (message["name"].as_str(), message["text"].as_str())
                {
                    happened.messages.insert(name.into(), text.into());
                }
            }
        }
        happened
    }

    fn saw(&mut self, check: &str, verdict: &str) {
        self.verdicts
            .entry(check.into())
            .or_default()
            .push(verdict.into());
    }
}

/// One expectation that did not hold: where it is written, and what happened instead.
struct Failure {
    line: u64,
    column: u64,
    message: String,
}

fn failure<T>(at: &S<T>, message: String) -> Failure {
    Failure {
        line: at.referenced.line(),
        column: at.referenced.column(),
        message,
    }
}

fn compare(expect: &Expect, happened: &Happened) -> Vec<Failure> {
    let mut failures = Vec::new();
    if let Some(code) = &expect.exit_code
        && happened.exit_code != Some(code.value)
    {
        failures.push(failure(
            code,
            format!(
                "expected exit code {}, the drill exited {}",
                code.value,
                happened
                    .exit_code
                    .map_or("without one".into(), |c| c.to_string())
            ),
        ));
    }
    let step = |id: &str| happened.steps.get(id).map(String::as_str);
    for at in &expect.steps_run {
        if step(&at.value) != Some("ran") {
            let why = match step(&at.value) {
                Some("skipped") => format!(
                    "it was skipped: {}",
                    happened.reasons.get(&at.value).map_or("", String::as_str)
                ),
                _ => "it was never reached".into(),
            };
            failures.push(failure(
                at,
                format!("expected step {} to run; {why}", at.value),
            ));
        }
    }
    for at in &expect.steps_skipped {
        if step(&at.value) == Some("ran") {
            failures.push(failure(
                at,
                format!("expected step {} to be skipped; it ran", at.value),
            ));
        }
    }
    for at in &expect.offered {
        if happened.offered.get(&at.value) != Some(&true) {
            failures.push(failure(
                at,
                format!("expected action {} to be offered; it was not", at.value),
            ));
        }
    }
    for at in &expect.not_offered {
        if happened.offered.get(&at.value) == Some(&true) {
            failures.push(failure(
                at,
                format!("expected action {} not to be offered; it was", at.value),
            ));
        }
    }
    for (id, verdict) in &expect.verdicts {
        let got = happened
            .verdicts
            .get(id)
            .and_then(|all| all.last())
            .map_or("no reading", String::as_str);
        if got != verdict.value {
            failures.push(failure(
                verdict,
                format!("expected check {id} to be {}, it was {got}", verdict.value),
            ));
        }
    }
    for (name, texts) in &expect.messages {
        for text in texts {
            match happened.messages.get(name) {
                Some(message) if message.contains(&text.value) => {}
                Some(message) => failures.push(failure(
                    text,
                    format!(
                        "expected message {name} to contain '{}'; it reads: {}",
                        text.value,
                        message.replace('\n', " / ")
                    ),
                )),
                None => failures.push(failure(
                    text,
                    format!("expected message {name}; it was not shown"),
                )),
            }
        }
    }
    failures
}

/// The branches of a runbook and which a set of drills took.
#[derive(Default)]
struct Coverage {
    /// Branch name → taken.
    branches: BTreeMap<String, bool>,
}

impl Coverage {
    fn of(rb: &Runbook) -> Coverage {
        let mut branches = BTreeMap::new();
        for step in &rb.steps {
            if step.when.is_some() {
                branches.insert(format!("step {} when true", step.id.value), false);
                branches.insert(format!("step {} when false", step.id.value), false);
            }
            for action in &step.actions {
                branches.insert(format!("action {} offered", action.id.value), false);
                if let Some(after) = &action.after {
                    branches.insert(
                        format!(
                            "action {} held back ({} unmet)",
                            action.id.value, after.value
                        ),
                        false,
                    );
                }
            }
            for check in &step.checks {
                for (field, present) in [
                    ("fail_if", check.fail_if.is_some()),
                    ("warn_if", check.warn_if.is_some()),
                ] {
                    if present {
                        branches.insert(format!("check {} {field} met", check.id.value), false);
                        branches.insert(format!("check {} {field} unmet", check.id.value), false);
                    }
                }
            }
        }
        Coverage { branches }
    }

    fn took(&mut self, happened: &Happened) {
        let mut mark = |name: String| {
            if let Some(taken) = self.branches.get_mut(&name) {
                *taken = true;
            }
        };
        for (step, status) in &happened.steps {
            let side = if status == "ran" { "true" } else { "false" };
            mark(format!("step {step} when {side}"));
        }
        for (action, offered) in &happened.offered {
            if *offered {
                mark(format!("action {action} offered"));
            }
        }
        for (action, after) in &happened.held_back {
            mark(format!("action {action} held back ({after} unmet)"));
        }
        for (check, verdict) in happened
            .verdicts
            .iter()
            .flat_map(|(c, all)| all.iter().map(move |v| (c, v)))
        {
            match verdict.as_str() {
                "fail" => mark(format!("check {check} fail_if met")),
                "warn" => {
                    mark(format!("check {check} fail_if unmet"));
                    mark(format!("check {check} warn_if met"));
                }
                "ok" => {
                    mark(format!("check {check} fail_if unmet"));
                    mark(format!("check {check} warn_if unmet"));
                }
                _ => {}
            }
        }
    }

    fn percent(&self) -> f64 {
        if self.branches.is_empty() {
            return 100.0;
        }
        let taken = self.branches.values().filter(|t| **t).count();
        100.0 * taken as f64 / self.branches.len() as f64
    }

    fn untaken(&self) -> Vec<&str> {
        self.branches
            .iter()
            .filter(|(_, t)| !**t)
            .map(|(b, _)| b.as_str())
            .collect()
    }
}

/// A runbook to test (as named on the command line) and its scenarios with what they expect.
struct Tested {
    target: String,
    runbook: Runbook,
    scenarios: Vec<(ScenarioSource, Option<Expect>)>,
}

/// One scenario's run.
struct Ran {
    runbook: String,
    scenario: String,
    file: String,
    millis: u128,
    failures: Vec<Failure>,
    happened: Happened,
}

pub fn run(setup: &Setup, req: Request<'_>) -> anyhow::Result<i32> {
    let catalog = setup.catalog();
    let targets: Vec<String> = if req.targets.is_empty() {
        catalog.ids()
    } else {
        req.targets.to_vec()
    };
    // Load every runbook and scenario first: a file that does not validate is exit 2.
    let mut work: Vec<Tested> = Vec::new();
    let mut problems = Vec::new();
    for target in &targets {
        let loaded = runbook::resolve(&catalog, target)?;
        let rb = loaded.runbook;
        let mut scenarios = Vec::new();
        for source in runbook::scenarios(&rb.id.value, &setup.search) {
            match validate::load_scenario(&source.source, &rb) {
                Ok(scenario) => scenarios.push((source, scenario.expect)),
                Err(mut found) => problems.append(&mut found),
            }
        }
        work.push(Tested {
            target: target.clone(),
            runbook: rb,
            scenarios,
        });
    }
    if !problems.is_empty() {
        for problem in &problems {
            println!("{problem}");
        }
        return Ok(2);
    }
    let state = tempdir()?;
    let exe = std::env::current_exe()?;
    let config = setup.global.config.clone();
    let jobs: Vec<(&str, &str, &ScenarioSource, &Option<Expect>)> = work
        .iter()
        .flat_map(|t| {
            t.scenarios
                .iter()
                .map(move |(s, e)| (t.target.as_str(), t.runbook.id.value.as_str(), s, e))
        })
        .collect();
    // Scenarios are independent: a few at a time on every core.
    let width = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut results: Vec<Ran> = Vec::new();
    for chunk in jobs.chunks(width) {
        let ran: Vec<anyhow::Result<Ran>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(target, id, source, expect)| {
                    let (exe, state, config) = (&exe, &state.0, &config);
                    scope.spawn(move || {
                        let started = Instant::now();
                        let report = drill(exe, config.as_deref(), state, target, &source.name)?;
                        let happened = Happened::of(&report);
                        let failures = expect
                            .as_ref()
                            .map(|e| compare(e, &happened))
                            .unwrap_or_default();
                        Ok(Ran {
                            runbook: id.to_string(),
                            scenario: source.name.clone(),
                            file: source.source.name.clone(),
                            millis: started.elapsed().as_millis(),
                            failures,
                            happened,
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a drill panicked")))
                })
                .collect()
        });
        for r in ran {
            results.push(r?);
        }
    }

    let mut failed = 0;
    for r in &results {
        let mark = if r.failures.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        println!("{mark} {}/{} ({} ms)", r.runbook, r.scenario, r.millis);
        for f in &r.failures {
            println!("       {}:{}:{}: {}", r.file, f.line, f.column, f.message);
        }
        if !r.failures.is_empty() {
            failed += 1;
        }
    }
    // Coverage, per runbook, over its scenarios.
    println!();
    println!(
        "branch coverage (each when true and false, each action offered, each `after:` held back, each fail_if and warn_if met and unmet):"
    );
    let mut below = Vec::new();
    for rb in work.iter().map(|t| &t.runbook) {
        let mut coverage = Coverage::of(rb);
        for r in results.iter().filter(|r| r.runbook == rb.id.value) {
            coverage.took(&r.happened);
        }
        let taken = coverage.branches.values().filter(|t| **t).count();
        let percent = coverage.percent();
        println!(
            "  {:<24} {:>3}/{:<3} {:>5.1}%",
            rb.id.value,
            taken,
            coverage.branches.len(),
            percent
        );
        for branch in coverage.untaken() {
            println!("      not taken: {branch}");
        }
        if req.min_coverage.is_some_and(|min| percent < min) {
            below.push(format!("{} {percent:.1}%", rb.id.value));
        }
    }
    println!();
    println!(
        "{} scenario(s), {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    if let Some(min) = req.min_coverage
        && !below.is_empty()
    {
        println!("coverage below {min}%: {}", below.join(", "));
    }
    if let Some(path) = req.junit {
        write_junit(path, &results)?;
    }
    Ok(if failed > 0 || !below.is_empty() {
        1
    } else {
        0
    })
}

/// Runs one scenario's drill as an engineer would, and reads its JSON report.
fn drill(
    exe: &Path,
    config: Option<&Path>,
    state: &Path,
    runbook: &str,
    scenario: &str,
) -> anyhow::Result<Value> {
    let mut cmd = std::process::Command::new(exe);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .args([
            "drill",
            runbook,
            "--scenario",
            scenario,
            "--yes",
            "-o",
            "json",
        ])
        .env("ONCALL_STATE_DIR", state)
        .env("ONCALL_DRILL_PACE", "instant")
        .env("NO_COLOR", "1")
        .env_remove("ONCALL_SCENARIO")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Read both pipes while it runs, and stop a drill that does not end.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > DRILL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let Some(status) = status else {
        anyhow::bail!(
            "the drill of {runbook} on {scenario} did not finish within {}: stopped",
            crate::backends::humanize(DRILL_LIMIT)
        );
    };
    serde_json::from_slice(&out).map_err(|_| {
        anyhow::anyhow!(
            "the drill of {runbook} on {scenario} gave no report (exit {}): {}",
            status.code().unwrap_or(-1),
            err.trim()
        )
    })
}

fn write_junit(path: &Path, results: &[Ran]) -> anyhow::Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("oncall test");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for r in results {
        let suite = suites
            .entry(&r.runbook)
            .or_insert_with(|| TestSuite::new(r.runbook.clone()));
        let status = if r.failures.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let text: Vec<String> = r
                .failures
                .iter()
                .map(|f| format!("{}:{}:{}: {}", r.file, f.line, f.column, f.message))
                .collect();
            status.set_message(text.first().cloned().unwrap_or_default());
            status.set_description(text.join("\n"));
            status
        };
        let mut case = TestCase::new(r.scenario.clone(), status);
        case.set_classname(r.runbook.clone());
        case.set_time(Duration::from_millis(r.millis as u64));
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    let xml = report.to_string()?;
    std::fs::write(path, xml)
        .map_err(|e| anyhow::anyhow!("cannot write the JUnit file {}: {e}", path.display()))
}

/// A state folder for the drills, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let dir = std::env::temp_dir().join(format!(
        "oncall-test-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}
