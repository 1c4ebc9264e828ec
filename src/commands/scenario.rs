//! `oncall scenario record`: a live incident's timeline as a drill scenario, so last night's
//! incident is next month's drill and a case `oncall test` can assert on.

use super::Setup;
use crate::engine::event::EventKind;
use crate::engine::observation::Observation;
use crate::runbook::{self, Source, validate};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A recorded scenario, in the order a reader expects its fields.
#[derive(Serialize)]
struct Recorded {
    title: String,
    description: String,
    params: Map<String, Value>,
    deployments: BTreeMap<String, Value>,
    checks: BTreeMap<String, Canned>,
}

/// One check as it was observed, in the scenario's own fields.
#[derive(Serialize, Default)]
struct Canned {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rows: Vec<indexmap::IndexMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    millis: u64,
}

pub async fn record(
    setup: &Setup,
    incident: Option<&str>,
    to: Option<&Path>,
) -> anyhow::Result<i32> {
    // Said before anything is read: the folder the file goes in must be there.
    if let Some(folder) = to
        .and_then(Path::parent)
        .filter(|f| !f.as_os_str().is_empty() && !f.is_dir())
    {
        anyhow::bail!(
            "cannot write {}: the folder {} does not exist; create it (mkdir -p {}) or give --to a file in a folder that exists",
            to.map(Path::display).expect("a folder of a path"),
            folder.display(),
            folder.display()
        );
    }
    let team = setup.team().await?;
    // By default the latest live incident: what happened, not a rehearsal of it (a dry run or a
    // drill after it is recorded only when named).
    let id = match incident {
        Some(id) => id.to_string(),
        None => {
            team.latest_live(false)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no live incident to record in {}; a dry run or a drill is recorded by its id (`oncall incidents` lists them)",
                        setup.store().dir.display()
                    )
                })?
                .id
        }
    };
    let (events, _) = team.events(&id).await?;
    let Some(opened) = crate::engine::event::Opening::of(&events) else {
        anyhow::bail!("the timeline of {id} has no opening event: nothing to record");
    };
    let (runbook_id, params, opened_at) = (
        opened.runbook.clone(),
        opened.params.clone(),
        opened.event.ts,
    );
    let user = match &opened.event.kind {
        EventKind::IncidentOpened { user, .. } => user.clone(),
        _ => String::new(),
    };
    // The runbook the incident ran: from its file when it was run from one.
    let loaded = super::resume::load_runbook(setup, &opened)?;
    let rb = &loaded.runbook;
    // How a drill names it: by id when the search path has it, else by its file.
    let replay_with = match (&loaded.source.origin, setup.catalog().get(&runbook_id)) {
        (runbook::Origin::File(path), Err(_)) => path.display().to_string(),
        _ => runbook_id.clone(),
    };

    // The step's own reading of each check (the first), and the polls of a wait after it.
    let mut first: BTreeMap<String, Observation> = BTreeMap::new();
    let mut polls: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut deployments: BTreeMap<String, Value> = BTreeMap::new();
    for event in &events {
        match &event.kind {
            EventKind::CheckFinished { observation, .. } => {
                first
                    .entry(observation.check.clone())
                    .or_insert_with(|| observation.clone());
            }
            EventKind::WaitPoll { observation, .. } => polls
                .entry(observation.check.clone())
                .or_default()
                .push(observation.value.clone()),
            // What the plans read of the cluster: the replica counts before the incident.
            EventKind::ActionPlanned { plan, .. } => {
                if let (Some(target), Some(before)) = (&plan.target, &plan.before)
                    && let Some(name) = target
                        .strip_prefix("deployment/")
                        .and_then(|t| t.split('/').nth(1))
                {
                    deployments
                        .entry(name.to_string())
                        .or_insert_with(|| before.clone());
                }
            }
            _ => {}
        }
    }
    let mut checks: BTreeMap<String, Canned> = BTreeMap::new();
    for (check_id, o) in &first {
        let Some(check) = rb.check(check_id) else {
            continue;
        };
        let mut canned = Canned {
            value: (!o.value.is_null()).then(|| o.value.clone()),
            millis: o.millis.min(60_000),
            text: o.text.clone(),
            ..Canned::default()
        };
        if let Some(values) = polls.get(check_id) {
            canned.values = std::iter::once(o.value.clone())
                .chain(values.iter().cloned())
                .collect();
        }
        if let Some(table) = &o.table {
            // In the table's own column order; per-row verdicts are the runbook's to judge again.
            canned.rows = table
                .rows
                .iter()
                .map(|row| {
                    table
                        .columns
                        .iter()
                        .cloned()
                        .zip(row.iter().cloned())
                        .collect()
                })
                .collect();
        }
        match o.verdict {
            crate::backends::reading::Verdict::Error => {
                canned.error = Some(o.reason.clone().unwrap_or_else(|| "no answer".into()));
            }
            // A check without thresholds was judged by its backend (pods not ready): keep that.
            // With thresholds the runbook judges the value again, so a changed threshold shows.
            v if v != crate::backends::reading::Verdict::Ok
                && check.fail_if.is_none()
                && check.warn_if.is_none() =>
            {
                canned.verdict = Some(v.as_str().to_string());
                canned.reason = o.reason.clone();
            }
            _ => {}
        }
        checks.insert(check_id.clone(), canned);
    }
    // Secret params stay out (the timeline has them masked anyway).
    let params: Map<String, Value> = params
        .into_iter()
        .filter(|(name, _)| rb.params.get(name).is_some_and(|p| !p.secret))
        .collect();
    let opened = opened_at
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    let recorded = checks.len();
    let scenario = Recorded {
        title: format!("Incident {id}"),
        description: format!(
            "Recorded from incident {id}, opened {opened} by {user}: each check as it was observed"
        ),
        params,
        deployments,
        checks,
    };
    let text = format!(
        "# Recorded by `oncall scenario record {id}`; `oncall drill {replay_with} --scenario FILE` replays it.\n{}",
        serde_saphyr::to_string(&scenario)?
    );
    // What is written must replay: it validates against the runbook first.
    let source = Source {
        name: to.map_or("the recorded scenario".into(), |p| p.display().to_string()),
        origin: runbook::Origin::File(std::path::PathBuf::new()),
        text: text.clone(),
    };
    if let Err(problems) = validate::load_scenario(&source, rb) {
        anyhow::bail!(
            "the recorded scenario does not validate: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    match to {
        Some(path) => {
            let partial = path.with_extension("yaml.partial");
            std::fs::write(&partial, &text)
                .and_then(|()| std::fs::rename(&partial, path))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "recorded {} check(s) of incident {id} in {}; replay it: oncall drill {replay_with} --scenario {}",
                recorded,
                path.display(),
                path.display()
            );
        }
        None => crate::view::print_out(&text)?,
    }
    Ok(0)
}
