//! oncall: runbooks that run.
//!
//! # The path of a run
//!
//! ```text
//! cli ──► commands::run ──► runbook (catalog: bundled, then the search folders)
//!                               │  runbook::validate: ids, steps, references, conditions,
//!                               │  and each kind through its backend (CheckKind::validate)
//!                               ▼
//!                           engine ──► backends (checks read, actions change; drills replay)
//!                               │
//!                               ▼
//!                           events (engine::event) ──► timeline (append-only JSONL, fsync)
//!                                                  ├─► view::terminal (people)
//!                                                  └─► view::json (machines)
//! ```
//!
//! - [`cli`] parses the command line; [`commands`] has one file per subcommand.
//! - [`runbook`] finds runbooks ([`runbook::Catalog`]), parses them ([`runbook::schema`]) and
//!   validates them ([`runbook::validate`]). A check or an action is its common fields and one
//!   [`backends::kinds::CheckKind`] or [`backends::kinds::ActionKind`].
//! - [`engine`] runs the steps: each step's checks at once, then its actions (each applied only
//!   with an [`approval::Approval`]), then its wait. It emits [`engine::event`]s and knows
//!   nothing of terminals.
//! - [`backends`] holds one module per system. Each owns its kinds' spec types, their
//!   validation, how `show` describes them, how they read, plan and apply, and how a drill
//!   replays them ([`backends::scenario`]).
//! - [`spec`] is the vocabulary every spec shares: spans, durations and their ranges, and the
//!   [`spec::validate::Validator`] a kind checks its fields with.
//!
//! Dependencies point one way: `spec` and `approval` use nothing of the others; `backends`
//! uses `spec`; `runbook` uses the backends' spec types; `engine` uses both; `commands`, `view`
//! and `timeline` sit on top.
//!
//! # Adding a kind
//!
//! 1. In its backend's module (`src/backends/<backend>.rs`, or `<backend>/spec.rs` for the
//!    larger ones), write the spec type (serde, `deny_unknown_fields`, `S<…>` for every field a
//!    problem may point at) and implement [`backends::kinds::CheckSpec`] or
//!    [`backends::kinds::ActionSpec`] for it: `validate`, `read` or `prepare`, and where it
//!    says more than its backend's name, `describe`; where a drill's reading must be judged as
//!    a live one is, `replay`.
//! 2. Add one line to `CheckKind` or `ActionKind` in `src/backends/kinds.rs`: the key that
//!    names it in a runbook and its spec type.
//!
//! The key then parses, is listed in every "unknown field" and "no backend" hint, validates,
//! shows, runs, plans and replays. A spec type that lacks a part does not compile.
//! An action whose request is of a new backend also adds a variant to `backends::Request`,
//! which `Prepared::apply` sends.

pub mod approval;
pub mod backends;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod expr;
pub mod import;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod sanitize;
pub mod spec;
pub mod store;
pub mod timeline;
pub mod view;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use commands::Setup;

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(commands::completions::VAR)
        .bin("oncall")
        .completer("oncall")
        .complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return 2;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            let words =
                |e: &dyn std::fmt::Display| redact::global().text(&sanitize::text(&e.to_string()));
            eprintln!("error: {}", words(&err));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", words(&cause));
            }
            2
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let setup = Setup::new(cli.global);
    match cli.command {
        Command::List => commands::list::run(&setup),
        Command::Show { runbook } => commands::show::run(&setup, &runbook).await,
        Command::Validate { paths } => commands::validate::run(&setup, &paths),
        Command::Import { file, to, id } => {
            commands::import::run(&setup, &file, to.as_deref(), id.as_deref())
        }
        Command::Scenario {
            command: cli::ScenarioCommand::Record { incident, to },
        } => commands::scenario::record(&setup, incident.as_deref(), to.as_deref()).await,
        Command::Test {
            runbooks,
            junit,
            min_coverage,
        } => commands::test::run(
            &setup,
            commands::test::Request {
                targets: &runbooks,
                junit: junit.as_deref(),
                min_coverage,
            },
        ),
        Command::Alerts => commands::alerts::run(&setup).await,
        Command::Run(args) => {
            let dry_run = args.dry_run.unwrap_or(cli::DryRun::Off);
            if dry_run != cli::DryRun::Off && args.yes {
                anyhow::bail!(
                    "--yes and --dry-run contradict each other: a dry run sends nothing, so there is nothing to approve"
                );
            }
            let mode = if args.scenario.is_some() {
                engine::event::Mode::Drill
            } else if dry_run != cli::DryRun::Off {
                engine::event::Mode::DryRun
            } else {
                engine::event::Mode::Live
            };
            let request = commands::run::Request {
                runbook: args.target.runbook.as_deref(),
                params: &args.target.params(),
                alert: args.alert.as_deref(),
                mode,
                yes: args.yes,
                server_dry_run: dry_run == cli::DryRun::Server,
                scenario: args.scenario.as_deref(),
                timeout: args.timeout,
                max_wait: args.max_wait,
                new: args.new,
            };
            commands::run::run(&setup, request).await
        }
        Command::Resume(args) => {
            let request = commands::resume::Request {
                incident: args.incident.as_deref(),
                params: &args.params,
                yes: args.yes,
                force: args.force,
                take_over: args.take_over,
                timeout: args.timeout,
                max_wait: args.max_wait,
            };
            commands::resume::run(&setup, request).await
        }
        Command::Doctor(args) => {
            let request = commands::doctor::Request {
                runbook: args.target.runbook.as_deref(),
                params: &args.target.params(),
                timeout: args.timeout,
            };
            commands::doctor::run(&setup, request).await
        }
        Command::Drill(args) if args.history => {
            commands::drills::history(&setup, args.target.runbook.as_deref())
        }
        Command::Drill(args) => {
            let request = commands::run::Request {
                runbook: Some(args.target.runbook.as_deref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "which runbook? `oncall drill RUNBOOK`; `oncall list` shows them"
                    )
                })?),
                params: &args.target.params(),
                alert: None,
                mode: engine::event::Mode::Drill,
                yes: args.yes,
                server_dry_run: false,
                scenario: args.scenario.as_deref(),
                timeout: engine::DEFAULT_CHECK_TIMEOUT,
                max_wait: None,
                new: true,
            };
            commands::run::run(&setup, request).await
        }
        Command::Incidents { open } => commands::incidents::run(&setup, open).await,
        Command::Follow { incident, until } => {
            let until = match until.as_deref() {
                Some("resolved") => store::Until::Resolved,
                _ => store::Until::Finished,
            };
            commands::follow::run(&setup, incident.as_deref(), until).await
        }
        Command::Timeline { incident } => {
            commands::timeline::run(&setup, incident.as_deref()).await
        }
        Command::Note(args) => commands::note::note(&setup, &args).await,
        Command::Approve { words, yes } => commands::approve::run(&setup, &words, yes, None).await,
        Command::Reject { words, reason } => {
            commands::approve::run(&setup, &words, false, Some(&reason)).await
        }
        Command::Resolve {
            text,
            root_cause,
            incident,
        } => {
            commands::note::resolve(
                &setup,
                text.as_deref(),
                root_cause.as_deref(),
                incident.as_deref(),
            )
            .await
        }
        Command::Report(args) if args.summary => commands::report::summary(&setup, args.since),
        Command::Report(args) => commands::report::run(&setup, args.incident.as_deref()).await,
        Command::Store { command } => commands::store::run(&setup, command).await,
        Command::Message { incident, name } => match (incident, name) {
            (Some(incident), Some(name)) => {
                commands::message::run(&setup, Some(&incident), &name).await
            }
            (Some(name), None) => commands::message::run(&setup, None, &name).await,
            _ => anyhow::bail!(
                "which message? `oncall message [INCIDENT] NAME`; `oncall show RUNBOOK` lists them"
            ),
        },
        Command::Completions { shell } => commands::completions::run(shell),
    }
}
