//! oncall: runbooks that run.

pub mod backends;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod expr;
pub mod redact;
pub mod runbook;
pub mod sanitize;
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
        Command::Alerts => commands::alerts::run(&setup).await,
        Command::Run(args) => {
            if args.dry_run && args.yes {
                anyhow::bail!(
                    "--yes and --dry-run contradict each other: a dry run sends nothing, so there is nothing to approve"
                );
            }
            let mode = if args.scenario.is_some() {
                engine::event::Mode::Drill
            } else if args.dry_run {
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
                scenario: args.scenario.as_deref(),
                timeout: args.timeout,
                max_wait: args.max_wait,
            };
            commands::run::run(&setup, request).await
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
                scenario: args.scenario.as_deref(),
                timeout: engine::DEFAULT_CHECK_TIMEOUT,
                max_wait: None,
            };
            commands::run::run(&setup, request).await
        }
        Command::Timeline { incident, list } => {
            commands::timeline::run(&setup, incident.as_deref(), list)
        }
        Command::Note { text, incident } => {
            commands::note::note(&setup, &text, incident.as_deref())
        }
        Command::Resolve { text, incident } => {
            commands::note::resolve(&setup, text.as_deref(), incident.as_deref())
        }
        Command::Completions { shell } => commands::completions::run(shell),
    }
}
