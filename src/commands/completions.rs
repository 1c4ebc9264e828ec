//! `oncall completions SHELL`: the registration script for a shell, and the candidates `oncall`
//! answers with when Tab is pressed (the shell runs `COMPLETE=SHELL oncall -- WORDS…`): runbook
//! ids from every folder, the scenarios and params of the runbook on the line, incident ids newest
//! first, the alerts runbooks handle, the kubeconfig's contexts.

use crate::cli::Shell;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use std::path::PathBuf;

pub const VAR: &str = "COMPLETE";

pub fn script(shell: Shell) -> String {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    };
    let mut buf = Vec::new();
    completer
        .write_registration(VAR, "oncall", "oncall", "oncall", &mut buf)
        .expect("writing to memory");
    String::from_utf8(buf).expect("registration scripts are UTF-8")
}

pub fn file_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "oncall.bash",
        Shell::Zsh => "_oncall",
        Shell::Fish => "oncall.fish",
        Shell::Elvish => "oncall.elv",
        Shell::Powershell => "_oncall.ps1",
    }
}

pub fn run(shell: Shell) -> anyhow::Result<i32> {
    crate::view::print_out(&script(shell))?;
    Ok(0)
}

fn search() -> Vec<PathBuf> {
    let extra: Vec<PathBuf> = std::env::var_os("ONCALL_RUNBOOK_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    crate::runbook::search_dirs(&extra)
}

fn catalog() -> crate::runbook::Catalog {
    crate::runbook::Catalog::load(&search())
}

/// The runbook named on the line being completed: the first word after the subcommand that is
/// a runbook id or file.
fn runbook_on_line() -> Option<crate::runbook::Loaded> {
    let args: Vec<String> = std::env::args().collect();
    let words = &args[args.iter().position(|a| a == "--")? + 1..];
    let catalog = catalog();
    words
        .iter()
        .skip(2)
        .filter(|w| !w.starts_with('-') && !w.is_empty())
        .find_map(|w| crate::runbook::resolve(&catalog, w).ok())
}

pub fn runbooks() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        catalog()
            .runbooks
            .values()
            .map(|l| {
                CompletionCandidate::new(l.runbook.id.value.clone())
                    .help(Some(l.runbook.title.clone().into()))
            })
            .collect()
    })
}

/// `--scenario`: the scenarios of the runbook on the line.
pub fn scenarios() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(loaded) = runbook_on_line() else {
            return Vec::new();
        };
        crate::runbook::scenarios(&loaded.runbook.id.value, &search())
            .into_iter()
            .map(|s| CompletionCandidate::new(s.name))
            .collect()
    })
}

/// `-p`: `NAME=` for each param of the runbook on the line.
pub fn params() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(loaded) = runbook_on_line() else {
            return Vec::new();
        };
        loaded
            .runbook
            .params
            .iter()
            .map(|(name, p)| {
                CompletionCandidate::new(format!("{name}=")).help(p.help.clone().map(Into::into))
            })
            .collect()
    })
}

fn local_incidents() -> crate::timeline::Store {
    crate::timeline::Store::new(std::env::var_os("ONCALL_STATE_DIR").map(PathBuf::from))
}

/// Incident ids, newest first.
pub fn incidents() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        local_incidents()
            .list()
            .into_iter()
            .rev()
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// `resume`: the live incidents that are not resolved, newest first (what it would take).
pub fn open_incidents() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let store = local_incidents();
        store
            .list()
            .into_iter()
            .rev()
            .filter_map(|id| store.summary(&id))
            .filter(|s| s.mode == crate::engine::event::Mode::Live && s.unresolved())
            .map(|s| {
                CompletionCandidate::new(s.id)
                    .help(Some(format!("{}, {}", s.runbook, s.status.as_str()).into()))
            })
            .collect()
    })
}

/// `message`: the messages of the runbook of the incident on the line, else of the latest one.
pub fn messages() -> ArgValueCandidates {
    ArgValueCandidates::new(message_candidates)
}

/// `message`'s first word: an incident, or (for the latest incident) a message's name.
pub fn incidents_and_messages() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut all = message_candidates();
        all.extend(
            local_incidents()
                .list()
                .into_iter()
                .rev()
                .map(CompletionCandidate::new),
        );
        all
    })
}

fn message_candidates() -> Vec<CompletionCandidate> {
    let store = local_incidents();
    let args: Vec<String> = std::env::args().collect();
    let named = args
        .iter()
        .skip_while(|a| *a != "--")
        .find_map(|w| store.summary(w));
    let Some(summary) = named.or_else(|| store.list().pop().and_then(|id| store.summary(&id)))
    else {
        return Vec::new();
    };
    let Ok(loaded) = crate::runbook::resolve(&catalog(), &summary.runbook) else {
        return Vec::new();
    };
    loaded
        .runbook
        .messages
        .keys()
        .map(|name| {
            CompletionCandidate::new(name.clone())
                .help(Some(format!("a message of {}", summary.runbook).into()))
        })
        .collect()
}

/// `--alert`: the alert names the runbooks handle.
pub fn alerts() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut seen = std::collections::BTreeSet::new();
        catalog()
            .runbooks
            .values()
            .flat_map(|l| {
                let id = l.runbook.id.value.clone();
                l.runbook
                    .alerts
                    .iter()
                    .map(move |a| (a.clone(), id.clone()))
            })
            .filter(|(alert, _)| seen.insert(alert.clone()))
            .map(|(alert, id)| {
                CompletionCandidate::new(alert).help(Some(format!("runbook {id}").into()))
            })
            .collect()
    })
}

/// `--context`: the kubeconfig's contexts.
pub fn contexts() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Ok(config) = kube::config::Kubeconfig::read() else {
            return Vec::new();
        };
        config
            .contexts
            .into_iter()
            .map(|c| CompletionCandidate::new(c.name))
            .collect()
    })
}

/// `approve`/`reject`: the actions that wait for a second approval in the team's store, with
/// their incident (nothing without a store, or when it does not answer quickly).
pub fn waiting() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Vec::new();
        };
        runtime.block_on(async {
            let flag = std::env::var("ONCALL_STORE").ok();
            let config = crate::config::Config::load(None).ok().and_then(|c| c.store);
            let Ok(Some(settings)) = crate::store::configured(flag.as_deref(), config.as_deref())
            else {
                return Vec::new();
            };
            let Ok(Ok(pg)) =
                tokio::time::timeout(std::time::Duration::from_secs(2), settings.connect()).await
            else {
                return Vec::new();
            };
            let Ok(incidents) = pg.list().await else {
                return Vec::new();
            };
            let mut candidates = Vec::new();
            for s in incidents
                .iter()
                .filter(|s| s.status == crate::timeline::Status::Running)
            {
                let Ok(events) = pg.read(&s.id, 0).await else {
                    continue;
                };
                for w in crate::engine::second::waiting(&events) {
                    candidates.push(CompletionCandidate::new(w.action).help(Some(
                        format!("{}: {} (asked by {})", s.id, w.title, w.user).into(),
                    )));
                }
            }
            candidates
        })
    })
}
