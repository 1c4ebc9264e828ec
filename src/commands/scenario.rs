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
    let team = setup.team().await?;
    let id = match incident {
        Some(id) => id.to_string(),
        None => team.latest().await?,
    };
    let (events, _) = team.events(&id).await?;
    let Some((runbook_id, params, opened_at, user)) = events.iter().find_map(|e| match &e.kind {
        EventKind::IncidentOpened {
            runbook,
            params,
            user,
            ..
        } => Some((runbook.clone(), params.clone(), e.ts, user.clone())),
        _ => None,
    }) else {
        anyhow::bail!("the timeline of {id} has no opening event: nothing to record");
    };
    let loaded = runbook::resolve(&setup.catalog(), &runbook_id)?;
    let rb = &loaded.runbook;

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
        "# Recorded by `oncall scenario record {id}`; `oncall drill {runbook_id} --scenario FILE` replays it.\n{}",
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
                "recorded {} check(s) of incident {id} in {}; replay it: oncall drill {runbook_id} --scenario {}",
                recorded,
                path.display(),
                path.display()
            );
        }
        None => crate::view::print_out(&text)?,
    }
    Ok(0)
}
