//! `oncall scenario record`: a live incident's timeline as a drill scenario, so last night's
//! incident is next month's drill and a case `oncall test` can assert on.

use super::Setup;
use crate::engine::event::EventKind;
use crate::engine::observation::Observation;
use crate::runbook::{self, Source, validate};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

pub fn record(setup: &Setup, incident: Option<&str>, to: Option<&Path>) -> anyhow::Result<i32> {
    let store = setup.store();
    let id = match incident {
        Some(id) => id.to_string(),
        None => store.latest()?,
    };
    let path = store.path(&id);
    if !path.exists() {
        return Err(crate::timeline::TimelineError::NoSuchIncident(id).into());
    }
    let events = crate::timeline::read(&path)?;
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
    let mut checks = Map::new();
    for (check_id, o) in &first {
        let Some(check) = rb.check(check_id) else {
            continue;
        };
        let mut canned = Map::new();
        if !o.value.is_null() {
            canned.insert("value".into(), o.value.clone());
        }
        if let Some(values) = polls.get(check_id) {
            let mut all = vec![o.value.clone()];
            all.extend(values.iter().cloned());
            canned.insert("values".into(), Value::Array(all));
        }
        if let Some(table) = &o.table {
            // Per-row verdicts are the runbook's to judge again.
            let rows: Vec<Value> = table
                .as_maps()
                .into_iter()
                .map(|mut row| {
                    row.remove("verdict");
                    Value::Object(row)
                })
                .collect();
            canned.insert("rows".into(), Value::Array(rows));
        }
        if let Some(text) = &o.text {
            canned.insert("text".into(), json!(text));
        }
        match o.verdict {
            crate::backends::reading::Verdict::Error => {
                canned.insert(
                    "error".into(),
                    json!(o.reason.clone().unwrap_or_else(|| "no answer".into())),
                );
            }
            // A check without thresholds was judged by its backend (pods not ready): keep that.
            // With thresholds the runbook judges the value again, so a changed threshold shows.
            v if v != crate::backends::reading::Verdict::Ok
                && check.fail_if.is_none()
                && check.warn_if.is_none() =>
            {
                canned.insert("verdict".into(), json!(v.as_str()));
                if let Some(reason) = &o.reason {
                    canned.insert("reason".into(), json!(reason));
                }
            }
            _ => {}
        }
        canned.insert("millis".into(), json!(o.millis.min(60_000)));
        checks.insert(check_id.clone(), Value::Object(canned));
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
    let scenario = json!({
        "title": format!("Incident {id}"),
        "description": format!("Recorded from incident {id}, opened {opened} by {user}: each check as it was observed"),
        "params": params,
        "deployments": deployments,
        "checks": checks,
    });
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
                checks.len(),
                path.display(),
                path.display()
            );
        }
        None => crate::view::print_out(&text)?,
    }
    Ok(0)
}
