//! `oncall resume`: go on with an interrupted or still-open live incident from the step where it
//! stopped, and the question a second responder is asked when `oncall run` finds one open.

use super::Setup;
use super::run::{Driving, How, Screen, resolve_values};
use crate::config::key_value;
use crate::engine::event::{EventKind, Mode, Opening};
use crate::engine::happened::Happened;
use crate::engine::resume::take_up;
use crate::engine::{Context, incident_value};
use crate::redact::MASK;
use crate::runbook::{self, Digest, Loaded, Runbook};
use crate::store::lease::Holder;
use crate::store::share::Standing;
use crate::timeline::{self, Status, Summary, TimelineError, host, user};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

pub struct Request<'a> {
    /// None: the latest open live incident.
    pub incident: Option<&'a str>,
    pub params: &'a [String],
    pub yes: bool,
    /// Go on although the runbook changed since the incident opened.
    pub force: bool,
    /// End another driver's lease first (it is asked before anything they may have applied).
    pub take_over: bool,
    pub timeout: Duration,
    pub max_wait: Option<Duration>,
}

/// Why an incident cannot be resumed, if it cannot.
fn refusal(s: &Summary) -> Option<String> {
    let id = &s.id;
    match (s.status, s.mode) {
        (Status::Resolved, _) => Some(format!(
            "incident {id} is resolved: nothing to resume; `oncall run {}` opens a new one",
            s.runbook
        )),
        (_, Mode::Drill) => Some(format!(
            "incident {id} is a drill: a drill is not resumed; `oncall drill {}` rehearses it again",
            s.runbook
        )),
        (_, Mode::DryRun) => Some(format!(
            "incident {id} is a dry run, which sent nothing: `oncall run --dry-run {}` rehearses it again",
            s.runbook
        )),
        _ => None,
    }
}

pub async fn run(setup: &Setup, req: Request<'_>) -> anyhow::Result<i32> {
    let settings = setup.store_settings()?;
    let store = setup.store();
    // With a store, what waits here is shared first: the store's log of the incident is whole.
    let team = crate::store::Team::reach(setup.store(), settings.clone()).await?;
    let id = match req.incident {
        Some(id) if !team.has(id).await? => {
            return Err(TimelineError::NoSuchIncident(id.to_string()).into());
        }
        Some(id) => id.to_string(),
        None => {
            team.latest_live(true)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no open live incident to resume in {}; `oncall incidents` lists them",
                        store.dir.display()
                    )
                })?
                .id
        }
    };
    // The lease before anything is read: a driver elsewhere is told of, not raced.
    let driving = match settings {
        None if req.take_over => anyhow::bail!(
            "--take-over takes an incident over from a driver on another machine, through the team store, and no store is configured (--store, ONCALL_STORE or store: in the config file)"
        ),
        None => None,
        Some(settings) => match lease(&team, &settings, &id, req.take_over).await? {
            Lease::Driving(driving) => Some(driving),
            Lease::DrivenBy(holder) => return driven_by(setup, &id, &holder).await,
        },
    };
    let took_over_from = driving.as_ref().and_then(|d| d.took_over_from.clone());
    if let Some(why) = super::run::kube(setup, &setup.config()?).unknown_context() {
        anyhow::bail!("{why}: nothing was resumed");
    }
    // Hold the incident before reading what was applied: a second resume that read first would
    // take up the same step and send its actions again.
    let timeline = store.take(&id)?;
    let (events, _) = team.events(&id).await?;
    let summary = Summary::of(&id, &events, false)
        .ok_or_else(|| anyhow::anyhow!("incident {id} cannot be read"))?;
    if let Some(why) = refusal(&summary) {
        anyhow::bail!(why);
    }
    let opened = Opening::of(&events)
        .ok_or_else(|| anyhow::anyhow!("incident {id} has no opening event to resume from"))?;

    let Loaded {
        runbook: rb,
        source,
    } = load_runbook(setup, &opened)?;
    let changed = match &opened.digest {
        Some(then) => Digest::of(&source.text).changes_since(then),
        None => vec!["not known: the incident was recorded before oncall kept a digest".into()],
    };
    if !changed.is_empty() && !req.force {
        anyhow::bail!(
            "runbook '{}' ({}) is not the one incident {id} opened with: {}. `oncall resume --force {id}` goes on with it as it is now; `oncall run {}` opens a new incident",
            rb.id.value,
            source.name,
            changed.join(", "),
            rb.id.value
        );
    }
    super::run::refuse_second_without_store(setup, &rb, driving.is_some())?;
    let taken =
        take_up(&events, &rb).map_err(|why| anyhow::anyhow!("cannot resume {id}: {why}"))?;

    let (params, endpoints) = restore_values(setup, &rb, &opened, req.params)?;
    let ctx = Context {
        params,
        endpoints,
        incident: incident_value(&id, &opened.event.kind, opened.event.ts),
        checks: taken.checks,
        happened: Happened::of(&events),
    };
    // Deadlines said already are not said again; one that passed while nothing ran is said now.
    let deadlines = opened
        .escalation
        .iter()
        .filter(|d| {
            !events.iter().any(|e| {
                matches!(&e.kind, EventKind::EscalationDue { due, to, .. } | EventKind::EscalationWithheld { due, to, .. } if *due == d.at && *to == d.to)
            })
        })
        .cloned()
        .collect();

    let screen = Screen::new(
        setup,
        &rb,
        id,
        timeline,
        Some(&opened.event),
        &events,
        driving.map(|d| d.driving),
    );
    screen.recorder.emit(EventKind::Resumed {
        user: user(),
        host: host(),
        from_step: taken.from_step,
        changed: if req.force { changed } else { Vec::new() },
        took_over_from,
    });
    let how = How {
        mode: Mode::Live,
        yes: req.yes,
        kube: super::run::kube(setup, &setup.config()?),
        server_dry_run: false,
        timeout: req.timeout,
        max_wait: req.max_wait,
    };
    screen
        .run(
            setup,
            &rb,
            how,
            deadlines,
            ctx,
            None,
            Some(taken.resumption),
        )
        .await
}

/// What came of asking the team store for an incident's lease.
enum Lease {
    Driving(Box<Taken>),
    DrivenBy(Holder),
}

struct Taken {
    driving: Driving,
    took_over_from: Option<String>,
}

/// Takes the incident's lease on a session of its own (held for the whole run). A store that
/// does not answer cannot say who drives: the run goes on, sending nothing unless nobody else
/// can know of the incident (it was never shared from here).
async fn lease(
    team: &crate::store::Team,
    settings: &crate::store::postgres::Settings,
    id: &str,
    take_over: bool,
) -> anyhow::Result<Lease> {
    let session = match team.shared {
        Some(_) => settings.connect().await,
        None => Err(crate::store::StoreError::Unreachable {
            store: settings.shown.clone(),
            cause: "not reached".into(),
        }),
    };
    let mut session = match session {
        Ok(session) => session,
        Err(crate::store::StoreError::Unreachable { .. }) if take_over => anyhow::bail!(
            "--take-over needs the team store {}, which does not answer: nothing was changed",
            settings.shown
        ),
        Err(crate::store::StoreError::Unreachable { .. }) => {
            let never_shared =
                crate::store::cursor::read(&team.local, &settings.identity(), id) == 0;
            let standing = if never_shared {
                Standing::Alone
            } else {
                Standing::Lost(format!(
                    "the store {} did not answer when {id} was resumed, so nobody can say whether another responder drives it; `oncall resume {id} --store ''` goes on alone, without the team",
                    settings.shown
                ))
            };
            return Ok(Lease::Driving(Box::new(Taken {
                driving: Driving {
                    settings: settings.clone(),
                    session: None,
                    standing,
                },
                took_over_from: None,
            })));
        }
        Err(err) => return Err(err.into()),
    };
    session.keep_alive().await?;
    match session.take_lease(id, &user(), &host(), take_over).await? {
        crate::store::lease::Taken::DrivenBy(holder) => Ok(Lease::DrivenBy(holder)),
        crate::store::lease::Taken::Held { epoch, from } => Ok(Lease::Driving(Box::new(Taken {
            driving: Driving {
                settings: settings.clone(),
                session: Some(session),
                standing: Standing::Held(epoch),
            },
            took_over_from: from.map(|h| h.describe()),
        }))),
    }
}

/// Another responder drives the incident: says who, and offers to follow their run. Without
/// a terminal nothing is started (exit 2).
async fn driven_by(setup: &Setup, id: &str, holder: &Holder) -> anyhow::Result<i32> {
    let line = format!(
        "incident {id} is driven by {}: `oncall follow {id}` follows it, `oncall resume --take-over {id}` takes it over",
        holder.describe()
    );
    if !std::io::stdin().is_terminal() {
        eprintln!("{line}; no terminal to ask, so nothing was started");
        return Ok(2);
    }
    if ask(
        &format!("{line}. [f]ollow it, or [q]uit? "),
        &[("f", "follow"), ("q", "quit")],
    ) == Some("f")
    {
        return super::follow::run(setup, Some(id), crate::store::Until::Finished).await;
    }
    Ok(2)
}

/// Asks until one of `answers` (a letter, or its word) is given; returns the letter, or None
/// when input closed.
pub(super) fn ask(question: &str, answers: &[(&'static str, &str)]) -> Option<&'static str> {
    let mut stderr = std::io::stderr();
    loop {
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(0) | Err(_) => {
                let _ = writeln!(stderr);
                return None;
            }
            Ok(_) => {}
        }
        let answer = answer.trim().to_ascii_lowercase();
        if let Some((letter, _)) = answers
            .iter()
            .find(|(letter, word)| answer == *letter || answer == *word)
        {
            return Some(letter);
        }
        let _ = writeln!(stderr, "  '{answer}' is not an answer");
    }
}

/// The runbook the incident opened with: its file when it came from one that is still there,
/// else the one of that id on the search path.
pub(super) fn load_runbook(setup: &Setup, opened: &Opening) -> anyhow::Result<Loaded> {
    let catalog = setup.catalog();
    let from_file = opened.origin != runbook::Origin::Bundled.to_string()
        && std::path::Path::new(&opened.origin).is_file();
    let target = if from_file {
        &opened.origin
    } else {
        &opened.runbook
    };
    let loaded = runbook::resolve(&catalog, target)?;
    if loaded.runbook.id.value != opened.runbook {
        anyhow::bail!(
            "{} is now runbook '{}', not '{}' as when the incident opened",
            loaded.source.name,
            loaded.runbook.id.value,
            opened.runbook
        );
    }
    Ok(loaded)
}

/// The params and endpoints the incident ran with. What is given again (`-p`, `--endpoint`,
/// the URL flags) wins; a secret, which the timeline keeps masked, comes from the config file,
/// the runbook's default or `-p`.
pub(super) fn restore_values(
    setup: &Setup,
    rb: &Runbook,
    opened: &Opening,
    flags: &[String],
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let config = setup.config()?;
    let fresh = resolve_values(setup, &config, rb, None, None, flags, false)?;
    let masked = |v: &Value| v.as_str().is_some_and(|s| s.contains(MASK));

    let given: BTreeSet<String> = flags
        .iter()
        .filter_map(|f| key_value(f).ok())
        .map(|(k, _)| k)
        .collect();
    let mut params = fresh.params;
    for (name, value) in &opened.params {
        let secret = rb.params.get(name).is_some_and(|p| p.secret);
        if rb.params.contains_key(name) && !given.contains(name) && !secret && !masked(value) {
            params.insert(name.clone(), value.clone());
        }
    }
    if let Some(name) = rb.params.keys().find(|k| !params.contains_key(*k)) {
        let why = if rb.params[name].secret {
            "is secret, and the timeline keeps it masked"
        } else {
            "has no value"
        };
        anyhow::bail!("param '{name}' {why}: pass it again with -p {name}=VALUE");
    }

    let mut flagged: BTreeSet<String> = setup
        .global
        .endpoints
        .iter()
        .filter_map(|e| key_value(e).ok())
        .map(|(k, _)| k)
        .collect();
    if setup.global.prometheus_url.is_some() {
        flagged.insert("prometheus".into());
    }
    if setup.global.alertmanager_url.is_some() {
        flagged.insert("alertmanager".into());
    }
    let mut endpoints = fresh.endpoints;
    for (name, url) in &opened.endpoints {
        if !flagged.contains(name) && !masked(url) {
            endpoints.insert(name.clone(), url.clone());
        }
    }
    Ok((params, endpoints))
}

/// The newest live incident of this runbook that is not resolved and opened in the last day,
/// here or in the team's store, and who drives it if anyone does: the one a second responder
/// should hear about before opening another.
pub async fn open_incident_of(
    setup: &Setup,
    rb: &Runbook,
) -> anyhow::Result<Option<(Summary, Option<Holder>)>> {
    let team = setup.team().await?;
    let day_ago = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(jiff::Timestamp::MIN);
    let found = team
        .list()
        .await?
        .into_iter()
        .rev()
        .filter_map(|l| match l {
            timeline::Listed::Summary(s) => Some(s),
            timeline::Listed::Incomplete { .. } => None,
        })
        .take_while(|s| s.opened_at >= day_ago)
        .find(|s| s.mode == Mode::Live && s.unresolved() && s.runbook == rb.id.value);
    let Some(open) = found else { return Ok(None) };
    let holder = match &team.shared {
        Some(pg) => pg.leaseholder(&open.id, true).await?,
        None => None,
    };
    Ok(Some((open, holder)))
}

/// What a second responder chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Resume,
    New,
    Follow,
    /// Nothing started: exit with this code.
    Quit(i32),
}

/// Tells the engineer an incident of this runbook is open and asks what to do. Without a
/// terminal the run starts a new one, unless the open one is being driven: then nothing starts.
pub fn second_responder(
    setup: &Setup,
    open: &Summary,
    holder: Option<&Holder>,
    rb: &Runbook,
) -> Choice {
    let total = rb.steps.len();
    // A run that went through every step leaves nothing to resume: only `resolve` is left.
    let finished = timeline::read(&setup.store().path(&open.id))
        .is_ok_and(|events| take_up(&events, rb).is_err());
    let at = open
        .last_step
        .as_ref()
        .and_then(|(step, _)| rb.steps.iter().position(|s| &s.id.value == step))
        .map_or_else(
            || "no step yet".to_string(),
            |i| format!("step {}/{total}", i + 1),
        );
    let ago = ago(jiff::Timestamp::now()
        .duration_since(open.opened_at)
        .as_secs());
    let driven = holder.is_some() || open.status == Status::Running;
    let driver = match holder {
        Some(holder) => format!("is driven by {}", holder.describe()),
        None => "is running in another terminal".to_string(),
    };
    let (what, how) = match open.status {
        _ if driven => (driver.as_str(), ""),
        Status::Interrupted => ("is open", "; its run was interrupted"),
        _ if finished => ("is open", "; its run went through every step"),
        _ => ("is open", ""),
    };
    let resumable = !driven && !finished;
    let line = format!(
        "incident {} {what} (opened by {} {ago} ago, {at}{how})",
        open.id, open.opened_by
    );
    if !std::io::stdin().is_terminal() {
        if driven {
            eprintln!(
                "{line}: no terminal to ask, so nothing was started (`oncall follow {}` follows it; --new opens another incident anyway)",
                open.id
            );
            return Choice::Quit(2);
        }
        let hint = if resumable {
            format!("`oncall resume {}` goes on with that one; ", open.id)
        } else {
            String::new()
        };
        eprintln!("{line}: no terminal to ask, so a new incident starts ({hint}--new skips this)");
        return Choice::New;
    }
    let answer = match open.status {
        _ if driven => ask(
            &format!(
                "{line}: `oncall note` adds to it. [f]ollow it, start a [n]ew one anyway, or [q]uit? "
            ),
            &[("f", "follow"), ("n", "new"), ("q", "quit")],
        ),
        _ if resumable => ask(
            &format!("{line}: [r]esume it or start a [n]ew one? "),
            &[("r", "resume"), ("n", "new")],
        ),
        _ => ask(
            &format!("{line}: `oncall resolve` closes it. Start a [n]ew one, or [q]uit? "),
            &[("n", "new"), ("q", "quit")],
        ),
    };
    match answer {
        Some("r") => Choice::Resume,
        Some("f") => Choice::Follow,
        Some("q") => Choice::Quit(0),
        Some(_) => Choice::New,
        None if driven => {
            eprintln!("  no answer (input closed): nothing was started");
            Choice::Quit(2)
        }
        None => {
            eprintln!("  no answer (input closed): starting a new incident");
            Choice::New
        }
    }
}

/// How long ago, in words: `40 s`, `12 min`, `3 h`.
fn ago(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
