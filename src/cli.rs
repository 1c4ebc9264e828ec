//! The command line. Every flag has an `ONCALL_*` environment variable.

use crate::commands::completions as complete;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    all checks ok (warnings allowed)
  1    a check failed, an action failed, a wait ended before its condition held, an action's
       target was not found, or the API server refused a write in --dry-run=server; `doctor`
       when a system answers but denies something the runbook needs
  2    bad usage, or a runbook, scenario or config file that does not validate; run/resume of
       an incident another responder drives, without a terminal
  3    a check could not be read: its backend did not answer (refused, timed out, unknown host)
       or answered with an error (not found, forbidden); `alerts` when Alertmanager does not
       answer; `doctor` when a system the runbook uses does not answer or answers an error
  4    an action was declined by abort, or needs an answer and there is no terminal (or, resumed
       with --yes, may have been applied already), or was not sent: the run no longer drives
       its incident
  5    the run's timeline could not be written whole (disk full, permissions)
  130  interrupted (Ctrl-C)";

#[derive(Debug, Parser)]
#[command(name = "oncall", version, about = "Runbooks that run: diagnose in parallel, mitigate with approval, record the incident.", after_long_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Output format for results on stdout: text or json (a file is written with --to)
    #[arg(long, short = 'o', global = true, hide_short_help = true, value_parser = OutputParser, default_value = "text", env = "ONCALL_OUTPUT", hide_env_values = true)]
    pub output: Output,
    /// Config file [default: <config dir>/oncall/config.yaml]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_CONFIG", hide_env_values = true, value_hint = clap::ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    /// Where incident timelines are kept [default: <state dir>/oncall]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_STATE_DIR", hide_env_values = true, value_hint = clap::ValueHint::DirPath)]
    pub state_dir: Option<PathBuf>,
    /// Extra folders of runbooks, ':'-separated
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_RUNBOOK_PATH", hide_env_values = true, value_delimiter = ':', value_hint = clap::ValueHint::DirPath)]
    pub runbook_path: Vec<PathBuf>,
    /// Prometheus base URL (the endpoint named `prometheus`)
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_PROMETHEUS_URL", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub prometheus_url: Option<String>,
    /// A named endpoint, NAME=URL; repeatable (env: blank-separated)
    #[arg(
        long = "endpoint",
        short = 'e',
        global = true,
        hide_short_help = true,
        env = "ONCALL_ENDPOINT",
        hide_env_values = true,
        value_name = "NAME=URL"
    )]
    pub endpoints: Vec<String>,
    /// Kubernetes context from the kubeconfig [default: its current context]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_CONTEXT", hide_env_values = true, add = complete::contexts())]
    pub context: Option<String>,
    /// Kubernetes namespace where a runbook names none; also sets the param `namespace` a runbook declares
    #[arg(
        long,
        short = 'n',
        global = true,
        hide_short_help = true,
        env = "ONCALL_NAMESPACE",
        hide_env_values = true
    )]
    pub namespace: Option<String>,
    /// PostgreSQL connection URL [default: the PG* variables psql reads]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_POSTGRES_URL", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub postgres_url: Option<String>,
    /// Redis URL [default: redis://127.0.0.1:6379]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_REDIS_URL", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub redis_url: Option<String>,
    /// NATS URL [default: nats://127.0.0.1:4222]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_NATS_URL", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub nats_url: Option<String>,
    /// Alertmanager base URL (the endpoint named `alertmanager`) [default: http://localhost:9093]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_ALERTMANAGER_URL", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub alertmanager_url: Option<String>,
    /// NVIDIA management library to load [default: libnvidia-ml.so.1 from the loader's path]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_NVML_LIBRARY", hide_env_values = true, value_hint = clap::ValueHint::FilePath)]
    pub nvml_library: Option<PathBuf>,
    /// The team's store, postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=require|verify-full]:
    /// incidents are shared there after they are written locally [default: `store:` in the
    /// config file; none: incidents stay on this machine]
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_STORE", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub store: Option<String>,
    /// Colour: auto uses it on a terminal unless NO_COLOR is set or TERM=dumb
    #[arg(long, global = true, hide_short_help = true, value_enum, default_value_t = ColorChoice::Auto, env = "ONCALL_COLOR", hide_env_values = true)]
    pub color: ColorChoice,
    /// Lay tables out to their content: cut nothing to fit the terminal
    #[arg(long, global = true, hide_short_help = true, env = "ONCALL_WIDE", hide_env_values = true, value_parser = BoolishValueParser::new())]
    pub wide: bool,
}

/// `-o`: the format of results on stdout; for `oncall import`, also a file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Reads `-o`: a format, `text` or `json`, everywhere; a file is written with `--to`.
#[derive(Clone)]
struct OutputParser;

impl clap::builder::TypedValueParser for OutputParser {
    type Value = Output;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Output, clap::Error> {
        match value.to_str() {
            Some("text") => Ok(Output::Text),
            Some("json") => Ok(Output::Json),
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "invalid value '{}' for '--output': text or json (a file is written with --to FILE: `oncall import PAGE.md --to FILE.yaml`, `oncall scenario record --to FILE`)\n",
                    value.to_string_lossy()
                ),
            )),
        }
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ["text", "json"]
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runbooks: id, severity, title and where each came from
    List,
    /// The firing alerts in Alertmanager, each with the runbook that handles it
    Alerts,
    /// Show a runbook as a checklist: steps, checks, conditions and the exact requests of actions
    Show {
        #[arg(add = complete::runbooks())]
        runbook: String,
    },
    /// Validate runbooks (all known ones, or the given files); exit 2 when any is invalid
    Validate {
        #[arg(value_hint = clap::ValueHint::FilePath)]
        paths: Vec<PathBuf>,
    },
    /// Turn a Markdown runbook into an oncall runbook, its commands native checks and actions
    /// where oncall has a backend; `--to FILE.yaml` writes it [default: stdout]
    Import {
        /// The Markdown file
        #[arg(value_hint = clap::ValueHint::FilePath)]
        file: PathBuf,
        /// Write the runbook to this file (its name is the runbook's id) instead of stdout
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        to: Option<PathBuf>,
        /// The runbook's id [default: from the file's name]
        #[arg(long)]
        id: Option<String>,
    },
    /// Replay every scenario of the runbooks as drills, check what each expects, and measure
    /// branch coverage; exit 1 when an expectation fails or coverage is below --min-coverage
    Test {
        /// Runbook ids or files [default: every runbook on the search path, bundled included]
        #[arg(add = complete::runbooks())]
        runbooks: Vec<String>,
        /// Also write the results as JUnit XML, one test case per scenario
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        junit: Option<PathBuf>,
        /// Fail when a runbook's branch coverage is below this percentage
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        min_coverage: Option<f64>,
    },
    /// Drill scenarios: `record` turns an incident's timeline into one
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Run a runbook against the real systems
    Run(RunArgs),
    /// Rehearse a runbook on a recorded scenario: no infrastructure, nothing ever sent
    Drill(DrillArgs),
    /// Pre-flight: reach every system a runbook uses (default: every known runbook) with the
    /// credentials a run would use; per system: does it answer, may the runbook do what it
    /// needs (Kubernetes: a SelfSubjectAccessReview per verb), its version. Sends no action
    Doctor(DoctorArgs),
    /// The incidents, oldest first: status (running, open, interrupted, resolved), mode, who
    /// opened them, their age and the last step reached
    Incidents {
        /// Only those not resolved
        #[arg(long)]
        open: bool,
    },
    /// Go on with an interrupted or open live incident from the step where it stopped (default:
    /// the latest open live one): applied actions are not offered again
    Resume(ResumeArgs),
    /// Show another responder's run live, as its own terminal shows it, until it finishes
    /// (default: the latest running incident); Ctrl-C leaves. `-o json`: one event per line
    Follow {
        #[arg(add = complete::incidents())]
        incident: Option<String>,
        /// Follow until the incident is resolved rather than until its run finishes
        #[arg(long, value_name = "resolved", value_parser = ["resolved"], env = "ONCALL_UNTIL", hide_env_values = true)]
        until: Option<String>,
    },
    /// Approve an action another responder's run waits on for a second person (team store):
    /// shows its plan, read again against the live systems, and asks; without ACTION, lists
    /// what waits
    #[command(override_usage = "oncall approve [INCIDENT] [ACTION] [--yes]")]
    Approve {
        /// [INCIDENT] [ACTION]
        #[arg(num_args = 0..=2, value_name = "INCIDENT|ACTION", add = complete::waiting())]
        words: Vec<String>,
        /// Approve without asking
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Reject an action another responder's run waits on for a second person: it is skipped,
    /// and the driver sees the reason
    #[command(override_usage = "oncall reject [INCIDENT] ACTION --reason TEXT")]
    Reject {
        /// [INCIDENT] ACTION
        #[arg(num_args = 1..=2, required = true, value_name = "INCIDENT|ACTION", add = complete::waiting())]
        words: Vec<String>,
        /// Why, for the driver and the timeline
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Show an incident's timeline (default: the latest)
    Timeline {
        #[arg(add = complete::incidents())]
        incident: Option<String>,
    },
    /// Append a note to the latest open live incident; a tagged note goes to its section of
    /// `oncall report`
    Note(NoteArgs),
    /// Mark an incident resolved (default: the latest open live one)
    Resolve {
        /// What fixed it
        text: Option<String>,
        /// The root cause, for the report (recorded as a root-cause note)
        #[arg(long, value_name = "TEXT")]
        root_cause: Option<String>,
        #[arg(long, env = "ONCALL_INCIDENT", hide_env_values = true, add = complete::incidents())]
        incident: Option<String>,
    },
    /// The post-incident report of an incident, as Markdown (default: the latest live one), or
    /// the figures across incidents with --summary
    Report(ReportArgs),
    /// Print one of an incident's messages, rendered with its latest findings, for pasting
    #[command(override_usage = "oncall message [INCIDENT] NAME")]
    Message {
        /// The incident [default: the latest live one]
        #[arg(add = complete::incidents_and_messages())]
        incident: Option<String>,
        /// The message's name (`oncall show RUNBOOK` lists a runbook's messages)
        #[arg(add = complete::messages())]
        name: Option<String>,
    },
    /// The team's store (--store): set it up, see whether it answers, share what waits
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Print the completion script for a shell
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum StoreCommand {
    /// Create the store's tables, or migrate them to this oncall's schema (in one transaction)
    Init,
    /// Where the store is, whether it answers, its schema version, and how many local events
    /// wait to be shared
    Status,
    /// Share the local events the store does not have yet, in order
    Sync,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The incident [default: the latest live one]
    #[arg(conflicts_with_all = ["summary", "since"], add = complete::incidents())]
    pub incident: Option<String>,
    /// Incidents by runbook and severity, with the median and p90 of each time, live and drills apart
    #[arg(long)]
    pub summary: bool,
    /// With --summary: only incidents opened this long ago or less (`30d`, `12h`)
    #[arg(long, value_name = "DURATION", requires = "summary", value_parser = parse_since)]
    pub since: Option<std::time::Duration>,
}

/// A note: plain, or tagged for a section of the report. One text, one tag at most.
#[derive(Debug, Args)]
#[group(skip)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(false))]
pub struct NoteArgs {
    /// What you saw or did
    #[arg(group = "what")]
    pub text: Option<String>,
    /// The root cause, as far as it is known
    #[arg(long, group = "what", value_name = "TEXT")]
    pub root_cause: Option<String>,
    /// Who or what was impacted (users, business)
    #[arg(long, group = "what", value_name = "TEXT")]
    pub impact: Option<String>,
    /// What went well in the response
    #[arg(long, group = "what", value_name = "TEXT")]
    pub went_well: Option<String>,
    /// What to improve in the response
    #[arg(long, group = "what", value_name = "TEXT")]
    pub improve: Option<String>,
    /// Something to do after the incident, with --owner and --due
    #[arg(long, group = "what", value_name = "TEXT")]
    pub action_item: Option<String>,
    /// A lesson learned
    #[arg(long, group = "what", value_name = "TEXT")]
    pub lesson: Option<String>,
    /// Who owns the action item
    #[arg(long)]
    pub owner: Option<String>,
    /// When the action item is due (any form: 2026-12-15, "next sprint")
    #[arg(long)]
    pub due: Option<String>,
    /// The incident to append to [default: the latest open live one]
    #[arg(long, env = "ONCALL_INCIDENT", hide_env_values = true, add = complete::incidents())]
    pub incident: Option<String>,
}

impl NoteArgs {
    /// The note's text and its tag.
    pub fn tagged(&self) -> (String, Option<crate::engine::event::NoteTag>) {
        use crate::engine::event::NoteTag;
        let tagged = [
            (&self.root_cause, NoteTag::RootCause),
            (&self.impact, NoteTag::Impact),
            (&self.went_well, NoteTag::WentWell),
            (&self.improve, NoteTag::Improve),
            (&self.action_item, NoteTag::ActionItem),
            (&self.lesson, NoteTag::Lesson),
        ]
        .into_iter()
        .find_map(|(text, tag)| text.clone().map(|t| (t, Some(tag))));
        tagged.unwrap_or_else(|| (self.text.clone().unwrap_or_default(), None))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// Which runbook, with which params: the same for `run` and `drill`.
#[derive(Debug, Args)]
pub struct Target {
    /// Runbook id (see `oncall list`) or path to a runbook file (with `run --alert`, the alert's runbook)
    #[arg(add = complete::runbooks())]
    pub runbook: Option<String>,
    /// Set a runbook param, KEY=VALUE; repeatable; one flag sets one param, whatever its value
    /// holds (without flags: ONCALL_PARAMS, one per line)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", add = complete::params())]
    pub params: Vec<String>,
}

impl Target {
    /// The `-p` flags, or else the lines of `ONCALL_PARAMS`. Splitting is the variable's only:
    /// a newline inside a flag's value stays in that value.
    pub fn params(&self) -> Vec<String> {
        if !self.params.is_empty() {
            return self.params.clone();
        }
        std::env::var("ONCALL_PARAMS")
            .map(|text| {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// Run every check for real and show every action as it would be sent; send none.
    /// `--dry-run=server` sends Kubernetes writes with dryRun=All, so the API server validates
    /// and admits them without persisting, and shows its answer; nothing else is sent
    #[arg(
        long,
        env = "ONCALL_DRY_RUN",
        hide_env_values = true,
        value_name = "client|server",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client",
        value_parser = parse_dry_run,
    )]
    pub dry_run: Option<DryRun>,
    /// Approve every action without asking
    #[arg(long, short = 'y', env = "ONCALL_YES", hide_env_values = true, value_parser = BoolishValueParser::new())]
    pub yes: bool,
    /// Default timeout of a check
    #[arg(long, env = "ONCALL_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// Stop every wait after at most this long (the runbook's own timeout still applies if shorter)
    #[arg(long, env = "ONCALL_MAX_WAIT", hide_env_values = true, value_parser = parse_wait, value_name = "DURATION")]
    pub max_wait: Option<std::time::Duration>,
    /// Open the runbook that handles this firing alert, its params filled from the alert's labels
    #[arg(
        long,
        env = "ONCALL_ALERT",
        hide_env_values = true,
        value_name = "ALERTNAME",
        add = complete::alerts()
    )]
    pub alert: Option<String>,
    /// Replay a drill scenario instead of reading live systems (same as `oncall drill`)
    #[arg(long, env = "ONCALL_SCENARIO", hide_env_values = true, add = complete::scenarios())]
    pub scenario: Option<String>,
    /// Start a new incident without asking, even when one of this runbook is open
    #[arg(long)]
    pub new: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: Target,
    /// How long each system may take to answer
    #[arg(long, env = "ONCALL_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The incident (see `oncall incidents --open`) [default: the latest open live one]
    #[arg(add = complete::open_incidents())]
    pub incident: Option<String>,
    /// Set a runbook param again, KEY=VALUE (a secret param must be given again unless the
    /// config file has it); the incident's own values are kept otherwise
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Approve every action without asking; never one that may have been applied already
    #[arg(long, short = 'y', env = "ONCALL_YES", hide_env_values = true, value_parser = BoolishValueParser::new())]
    pub yes: bool,
    /// Go on although the runbook changed since the incident opened
    #[arg(long)]
    pub force: bool,
    /// End another responder's lease on the incident (team store) and drive it from here;
    /// anything they may have applied is asked about first
    #[arg(long)]
    pub take_over: bool,
    /// Default timeout of a check
    #[arg(long, env = "ONCALL_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// Stop every wait after at most this long (the runbook's own timeout still applies if shorter)
    #[arg(long, env = "ONCALL_MAX_WAIT", hide_env_values = true, value_parser = parse_wait, value_name = "DURATION")]
    pub max_wait: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Write an incident's checks, as observed, as a drill scenario (stdout, or --to FILE)
    Record {
        /// The incident [default: the latest live one]
        #[arg(add = complete::incidents())]
        incident: Option<String>,
        /// Write the scenario to this file instead of stdout
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        to: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub target: Target,
    /// Scenario name or file [default: the runbook's first]; `oncall show RUNBOOK` lists them
    #[arg(long, env = "ONCALL_SCENARIO", hide_env_values = true, add = complete::scenarios())]
    pub scenario: Option<String>,
    /// Rehearse without asking: record every action as it would be offered
    #[arg(long, short = 'y', env = "ONCALL_YES", hide_env_values = true, value_parser = BoolishValueParser::new())]
    pub yes: bool,
    /// List past scored drills (of RUNBOOK, or all) with their score by engineer and scenario
    #[arg(long)]
    pub history: bool,
}

/// Where a dry run stops: before anything is sent (`client`, as plain `--dry-run`), or at the
/// Kubernetes API server, which answers `dryRun=All` writes without persisting them (`server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Off,
    Client,
    Server,
}

/// `client` or `server`, as kubectl; `ONCALL_DRY_RUN` also takes the words a flag variable takes.
fn parse_dry_run(text: &str) -> Result<DryRun, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "client" | "true" | "1" | "yes" | "on" => Ok(DryRun::Client),
        "server" => Ok(DryRun::Server),
        "false" | "0" | "no" | "off" => Ok(DryRun::Off),
        // `--dry-run=$MODE` with MODE unset must not turn a dry run into a live one.
        "" => Err("an empty value: write --dry-run, --dry-run=client or --dry-run=server".into()),
        other => Err(format!(
            "'{other}' is not a dry run: --dry-run (nothing is sent) or --dry-run=server (Kubernetes writes are sent with dryRun=All)"
        )),
    }
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a percentage from 0 to 100")),
    }
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_in(text, crate::spec::bounds::TIMEOUT)
}

fn parse_since(text: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_in(text, crate::spec::bounds::AGE)
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_in(text, crate::spec::bounds::WAIT)
}
