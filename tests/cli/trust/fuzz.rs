//! A fuzz harness: the bundled runbooks, their scenarios and a config file, mutated, then run
//! in-process through the loader, the validator, `show` and a drill, each case on a thread with a
//! 2 MiB stack (a tokio worker's), asserting no panic, no abort and bounded time.
//!
//! `cargo test` runs a fixed-seed batch. `just fuzz 600` runs random seeds for ten minutes
//! (release build) and saves every failing input under `fuzz-failures/`, laid out so that
//! `oncall --config config.yaml validate|show|drill` in that folder replays it; the input of a
//! case that aborts the process stays in `fuzz-failures/current/`.

use oncall::approval::Policy;
use oncall::commands::Setup;
use oncall::commands::run::resolve_values;
use oncall::commands::show::Shown;
use oncall::config::Config;
use oncall::engine::event::{Event, Recorder, Sink};
use oncall::engine::{Context, Engine, Interrupts, Pace, Settings};
use oncall::runbook::validate;
use oncall::runbook::{Loaded, Origin, Source};
use oncall::spec::validate::ProblemList;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cases in the batch `cargo test` runs, and its seed.
const BATCH: usize = 2_000;
const SEED: u64 = 0xCA11_5EED;
/// A case still running after this is a hang.
const HANG: Duration = Duration::from_secs(30);

const CONFIG: &str = "endpoints:\n  api_gateway: http://127.0.0.1:9\n  prometheus: http://127.0.0.1:9\nparams:\n  namespace: video-processing\n  budget_pct: 1\n";

/// SplitMix64: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct Case {
    runbook: String,
    scenario: Option<String>,
    config: String,
}

/// The seeds: every bundled runbook with each of its scenarios.
fn corpus() -> Vec<(String, Vec<String>)> {
    oncall::runbook::discover(&[])
        .into_iter()
        .filter(|s| s.origin == Origin::Bundled)
        .map(|source| {
            let id = source
                .name
                .trim_start_matches("bundled:")
                .trim_end_matches(".yaml")
                .to_string();
            let scenarios = oncall::runbook::scenarios(&id, &[])
                .into_iter()
                .map(|s| s.source.text)
                .collect();
            (source.text, scenarios)
        })
        .collect()
}

const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "!!binary ",
    "|\n",
    ">-\n",
    "\n",
    "  ",
    "#",
    "'",
    "\"",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "~",
    "null",
    "? ",
    "---\n",
    "...\n",
    "\t",
    "\\",
    "%YAML 1.2\n",
    "@",
    "`",
];
const VALUES: &[&str] = &[
    "[]",
    "{}",
    "[1, 2]",
    "{a: 1}",
    "true",
    "null",
    "~",
    "42",
    "-1",
    "0",
    "1.5e308",
    "-0.0",
    ".nan",
    ".inf",
    "99999999999999999999",
    "18446744073709551615",
    "\"x\"",
    "''",
    "*nope",
    "!!binary aGk=",
    "\"{{ params.x }}\"",
    "\"{{ checks.nope.value }}\"",
    "\"{{ value | nope }}\"",
    // Issue 25's cases: values in a pod's shell script, a templated program, a value that is an
    // option, a password in a URL in the runbook's words, a short secret.
    "[sh, -c, \"echo '{{ params.namespace }}'\"]",
    "[sh, -ec, \"echo {{ params.namespace }}\"]",
    "[\"{{ params.namespace }}\", --version]",
    "\"$(id); rm -rf /tmp/x\"",
    "\"-rf\"",
    "\"postgres://app:hunter2pw@db:5432/x\"",
    "{ secret: true, default: abc }",
];
const DURATIONS: &[&str] = &[
    "99999999999h",
    "0s",
    "1ns",
    "-5m",
    "9999999999999999999s",
    "1ms",
    "3650d",
    "365000d",
    "P1Y",
    "1h30",
    "30",
    "1.5h",
    "1e9s",
];
const NUMBERS: &[&str] = &[
    "100000000000",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e30",
    "4294967296",
    "65536",
];
const STRANGE: &[&str] = &[
    "é",
    "—",
    "\u{feff}",
    "🚨",
    "\u{202e}",
    "\u{0}",
    "\u{1b}[2J",
    "ﬀ",
    "\u{9b}",
    "\r",
    "İ",
    "\u{200b}",
    "\u{10ffff}",
];

fn value_lines(text: &str) -> Vec<(usize, usize)> {
    // (line index, byte offset of the value within the line) of `key: value` lines.
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let at = line.find(": ")?;
            let key = line[..at].trim_start().trim_start_matches("- ");
            (!key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .then_some((i, at + 2))
        })
        .collect()
}

fn replace_value(
    text: &str,
    rng: &mut Rng,
    with: &dyn Fn(&mut Rng, &str, &str) -> String,
) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let candidates = value_lines(text);
    if candidates.is_empty() {
        return text.to_string();
    }
    let (i, at) = *rng.pick(&candidates);
    let (key, value) = lines[i].split_at(at);
    let new = with(rng, key, value);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[i] = format!("{key}{new}");
    out.join("\n") + "\n"
}

/// One mutation of a text.
fn mutate_once(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = rng.below(bytes.len() + 1);
    match rng.below(15) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if !bytes.is_empty() => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        2 => {
            let token = rng.pick(TOKENS).as_bytes().to_vec();
            bytes.splice(at..at, token);
        }
        3 => {
            let random: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, random);
        }
        4 => bytes.truncate(at),
        5 => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.len() > 1 {
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                match rng.below(4) {
                    0 => lines.swap(a, b),
                    1 => {
                        lines.remove(a);
                    }
                    2 => lines.insert(b, lines[a]),
                    _ => {}
                }
                let mut out = lines.join("\n");
                if rng.chance(50) {
                    out = out.replacen(
                        &format!("\n{}", lines[a.min(lines.len() - 1)]),
                        &format!("\n  {}", lines[a.min(lines.len() - 1)]),
                        1,
                    );
                }
                return out;
            }
        }
        6 => {
            // Swap the values of two fields.
            let lines: Vec<&str> = text.lines().collect();
            let candidates = value_lines(text);
            if candidates.len() > 1 {
                let (i, ai) = *rng.pick(&candidates);
                let (j, aj) = *rng.pick(&candidates);
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                let (vi, vj) = (&lines[i][ai..], &lines[j][aj..]);
                out[i] = format!("{}{vj}", &lines[i][..ai]);
                out[j] = format!("{}{vi}", &lines[j][..aj]);
                return out.join("\n") + "\n";
            }
        }
        7 => return replace_value(text, rng, &|rng, _, _| rng.pick(VALUES).to_string()),
        8 => {
            return replace_value(text, rng, &|rng, _, value| {
                if value.trim().parse::<f64>().is_ok() {
                    rng.pick(NUMBERS).to_string()
                } else {
                    rng.pick(DURATIONS).to_string()
                }
            });
        }
        9 => {
            let depth = 100 + rng.below(5_000);
            let open = if rng.chance(50) { "[" } else { "{a: " };
            let deep = open.repeat(depth);
            bytes.splice(at..at, deep.into_bytes());
        }
        10 => {
            // A long condition or template where one stood.
            return replace_value(text, rng, &|rng, _, _| {
                let n = 200 + rng.below(20_000);
                match rng.below(5) {
                    0 => format!("\"{}\"", vec!["value"; n].join(" + ")),
                    1 => format!("\"{}value\"", "not ".repeat(n)),
                    2 => format!("\"{}1{}\"", "(".repeat(n), ")".repeat(n)),
                    3 => format!("\"{}up{}\"", "sum(".repeat(n), ")".repeat(n)),
                    _ => "\"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"".to_string(),
                }
            });
        }
        11 => {
            let strange = rng.pick(STRANGE).as_bytes().to_vec();
            bytes.splice(at..at, strange);
        }
        12 => {
            return replace_value(text, rng, &|rng, _, _| {
                let size = 64 * 1024 + rng.below(1024 * 1024);
                format!("\"{}\"", "x".repeat(size))
            });
        }
        13 => {
            // Aliases that multiply: the billion laughs.
            let mut bomb =
                String::from("\nbomb0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for i in 1..9 {
                let refs = vec![format!("*b{}", i - 1); 9].join(", ");
                bomb.push_str(&format!("bomb{i}: &b{i} [{refs}]\n"));
            }
            bytes.extend_from_slice(bomb.as_bytes());
        }
        _ => {
            // A value copied from elsewhere in the text, with its own templates.
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let donor = lines[rng.below(lines.len())].to_string();
                return replace_value(text, rng, &|_, _, _| {
                    donor
                        .split_once(": ")
                        .map_or(donor.clone(), |(_, v)| v.to_string())
                });
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut out = text.to_string();
    for _ in 0..1 + rng.below(4) {
        out = mutate_once(rng, &out);
    }
    out
}

fn make_case(rng: &mut Rng, corpus: &[(String, Vec<String>)]) -> Case {
    let (runbook, scenarios) = rng.pick(corpus);
    let scenario = (!scenarios.is_empty()).then(|| rng.pick(scenarios).clone());
    let mut case = Case {
        runbook: runbook.clone(),
        scenario,
        config: CONFIG.to_string(),
    };
    match rng.below(10) {
        0..=5 => case.runbook = mutate(rng, &case.runbook),
        6..=7 => case.scenario = case.scenario.map(|s| mutate(rng, &s)),
        8 => case.config = mutate(rng, &case.config),
        _ => {
            case.runbook = mutate(rng, &case.runbook);
            case.scenario = case.scenario.map(|s| mutate(rng, &s));
        }
    }
    case
}

/// Every event must read back as it was written: the timeline's promise, in memory.
struct RoundTrip;

impl Sink for RoundTrip {
    fn emit(&mut self, event: &Event) {
        let line = serde_json::to_string(event).expect("an event serializes");
        if let Err(err) = serde_json::from_str::<Event>(&line) {
            panic!(
                "an event does not read back ({err}): {}",
                &line[..line.len().min(300)]
            );
        }
    }
}

fn source(name: &str, text: &str) -> Source {
    Source {
        name: name.to_string(),
        origin: Origin::File(PathBuf::from(name)),
        text: text.to_string(),
    }
}

/// Loads, validates, shows and drills one case, as `oncall` would.
fn exercise(case: &Case) {
    let runbook_source = source("fuzz.yaml", &case.runbook);
    let rb = match validate::load(&runbook_source) {
        Ok(rb) => rb,
        Err(problems) => {
            let _ = ProblemList(problems).to_string();
            return;
        }
    };
    let config = Config::parse("config.yaml", &case.config).unwrap_or_default();
    let setup = Setup::new(
        <oncall::cli::Cli as clap::Parser>::try_parse_from(["oncall", "list"])
            .expect("plain arguments parse")
            .global,
    );
    let scenario = case
        .scenario
        .as_ref()
        .map(|text| validate::load_scenario(&source("scenario.yaml", text), &rb));
    let loaded = Loaded {
        runbook: rb,
        source: runbook_source,
    };
    // A paused clock: a drill's sleeps and polls take no real time, and nothing else changes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let rb = &loaded.runbook;
        if let Ok(values) = resolve_values(&setup, &config, rb, None, None, &[], false) {
            let shown = Shown::new(&loaded, &values, vec!["case".into()]).await;
            let _ = shown.text();
            let _ = shown.json();
        }
        let Some(Ok(scenario)) = scenario else {
            return;
        };
        let Ok(values) = resolve_values(&setup, &config, rb, Some(&scenario), None, &[], true)
        else {
            return;
        };
        let collector = oncall::view::json::Collector::default();
        let sinks: Vec<Box<dyn Sink>> = vec![
            Box::new(oncall::view::terminal::TerminalView::new(
                Box::new(std::io::sink()),
                true,
                oncall::view::Fit::Pipe,
                false,
                None,
                rb.steps.len(),
            )),
            Box::new(collector.clone()),
            Box::new(RoundTrip),
        ];
        let settings = Settings {
            policy: Policy::Drill { ask: false },
            default_timeout: oncall::engine::DEFAULT_CHECK_TIMEOUT,
            pace: Pace::Compressed(Duration::from_millis(150)),
            max_wait: None,
            systems: None,
            known_replicas: scenario
                .deployments
                .iter()
                .map(|(name, count)| (name.clone(), count.value))
                .collect(),
            user: "fuzz".into(),
            lease: None,
            second: Default::default(),
        };
        let ctx = Context {
            params: values.params,
            endpoints: values.endpoints,
            incident: serde_json::json!({ "id": "fuzz" }),
            checks: Default::default(),
            happened: Default::default(),
        };
        let reader = oncall::backends::scenario::ScenarioReader::new(scenario.checks);
        let recorder = Recorder::new("fuzz".into(), sinks);
        Engine::new(
            rb,
            &reader,
            settings,
            recorder,
            Arc::new(Interrupts::default()),
            ctx,
        )
        .run()
        .await;
        let events = collector.events.lock().unwrap().clone();
        let _ = oncall::view::json::report(&events, None);
    });
}

/// Runs one case on its own thread; what went wrong, if anything.
fn run_case(case: &Case) -> Option<String> {
    let (done, finished) = std::sync::mpsc::channel();
    let owned = case.clone();
    let started = Instant::now();
    let worker = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| exercise(&owned));
            let _ = done.send(outcome.err().map(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into())
            }));
        })
        .expect("a case thread");
    match finished.recv_timeout(HANG) {
        Ok(None) => {
            let _ = worker.join();
            None
        }
        Ok(Some(panic)) => Some(format!("panicked: {panic}")),
        Err(_) => Some(format!("still running after {:?}", started.elapsed())),
    }
}

/// Saves a case so that `oncall` in that folder replays it.
fn save(dir: &Path, case: &Case, why: &str) {
    let _ = std::fs::remove_dir_all(dir);
    // Scenarios are found by their runbook's id.
    let id = case
        .runbook
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .map(|id| id.trim().to_string())
        .filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .unwrap_or_else(|| "fuzz".into());
    let scenarios = dir.join("runbooks/scenarios").join(&id);
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(dir.join("runbooks/fuzz.yaml"), &case.runbook).unwrap();
    if let Some(scenario) = &case.scenario {
        std::fs::write(scenarios.join("case.yaml"), scenario).unwrap();
    }
    std::fs::write(dir.join("config.yaml"), &case.config).unwrap();
    std::fs::write(dir.join("why.txt"), why).unwrap();
}

fn excerpt(text: &str) -> String {
    let cut = text.floor_char_boundary(2_000);
    format!(
        "{}{}",
        &text[..cut],
        if cut < text.len() { "…" } else { "" }
    )
}

#[test]
fn a_fixed_batch_of_mutated_runbooks_scenarios_and_configs_never_panics_or_hangs() {
    let corpus = corpus();
    assert!(corpus.len() >= 5, "the bundled runbooks are the seeds");
    let mut rng = Rng(SEED);
    let mut failures = Vec::new();
    for n in 0..BATCH {
        let case = make_case(&mut rng, &corpus);
        if std::env::var("FUZZ_ONLY").is_ok_and(|only| only.split(',').all(|o| o != n.to_string()))
        {
            continue;
        }
        let t = Instant::now();
        let outcome = run_case(&case);
        if std::env::var("FUZZ_TRACE").is_ok() {
            eprintln!(
                "case {n}: {:?} {:?}",
                t.elapsed(),
                outcome.as_deref().map(|s| &s[..s.len().min(200)])
            );
        }
        if let Some(why) = outcome {
            if let Ok(dir) = std::env::var("ONCALL_FUZZ_SAVE") {
                save(&Path::new(&dir).join(format!("batch-{n}")), &case, &why);
            }
            failures.push(format!(
                "case {n} {why}\n--- runbook\n{}\n--- scenario\n{}\n--- config\n{}",
                excerpt(&case.runbook),
                excerpt(case.scenario.as_deref().unwrap_or("")),
                excerpt(&case.config)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {BATCH} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `just fuzz SECONDS`: random seeds for as long as asked; failing inputs saved.
#[test]
#[ignore = "runs for as long as asked: `just fuzz 600`"]
fn fuzz_for_as_long_as_asked() {
    let seconds: u64 = std::env::var("ONCALL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let save_dir =
        PathBuf::from(std::env::var("ONCALL_FUZZ_SAVE").unwrap_or_else(|_| "fuzz-failures".into()));
    let seed = std::env::var("ONCALL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let corpus = corpus();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut cases, mut failed) = (0usize, 0usize);
    while started.elapsed() < Duration::from_secs(seconds) {
        let case = make_case(&mut rng, &corpus);
        // Kept until the case ends: a case that aborts the process leaves its input behind.
        save(
            &save_dir.join("current"),
            &case,
            "the process died on this case",
        );
        if let Some(why) = run_case(&case) {
            failed += 1;
            save(&save_dir.join(format!("{seed}-{cases}")), &case, &why);
            eprintln!("case {cases}: {why}");
        }
        cases += 1;
    }
    let _ = std::fs::remove_dir_all(save_dir.join("current"));
    eprintln!(
        "fuzz: seed {seed}, {cases} cases in {:?}, {failed} failed (saved in {})",
        started.elapsed(),
        save_dir.display()
    );
    assert_eq!(failed, 0, "failing inputs are in {}", save_dir.display());
}
