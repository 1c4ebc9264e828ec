//! `oncall approve` and `oncall reject`: the second person's answer to an action a driver's run
//! waits on, through the team store. The plan is shown as the driver planned it and read again
//! against the live systems; the answer names the plan the approver saw.

use super::Setup;
use super::resume::{load_runbook, restore_values};
use crate::backends::{Plan, PlanContext};
use crate::engine::event::{Event, EventKind, Opening};
use crate::engine::happened::Happened;
use crate::engine::resume::take_up;
use crate::engine::second::{self, Waiting};
use crate::engine::{Context, incident_value};
use crate::runbook::Loaded;
use crate::store::Team;
use crate::timeline::{Listed, host, user};
use std::io::IsTerminal;

/// `words`: `[INCIDENT] [ACTION]` (one word is an incident when one waits under that id, else
/// an action); `reject`: the reason the driver sees.
pub async fn run(
    setup: &Setup,
    words: &[String],
    yes: bool,
    reject: Option<&str>,
) -> anyhow::Result<i32> {
    if setup.store_settings()?.is_none() {
        anyhow::bail!(
            "a second person's approval goes through the team store, and none is configured: give --store postgres://…, set ONCALL_STORE or write store: in the config file"
        );
    }
    let team = setup.team().await?;
    if team.shared.is_none() {
        anyhow::bail!("the team store does not answer: nothing was approved or rejected");
    }
    let everywhere = waiting(&team, None).await?;
    let (incident, action) = match words {
        [one] if everywhere.iter().any(|(id, _, _)| id == one) || team.has(one).await? => {
            (Some(one.as_str()), None)
        }
        [one] => (None, Some(one.as_str())),
        [id, action] => (Some(id.as_str()), Some(action.as_str())),
        _ => (None, None),
    };
    let all = match incident {
        Some(id) => waiting(&team, Some(id)).await?,
        None => everywhere,
    };
    let Some(action) = action else {
        if reject.is_some() {
            anyhow::bail!("which action? `oncall reject INCIDENT ACTION --reason TEXT`");
        }
        return list(setup, &all);
    };
    let Some((id, events, asked)) = all.into_iter().find(|(_, _, w)| w.action == action) else {
        let which = incident.map(|i| format!(" of {i}")).unwrap_or_default();
        anyhow::bail!(
            "action '{action}'{which} does not wait for an approval (any more): `oncall approve` lists what waits"
        );
    };
    let me = user();
    if asked.user == me {
        anyhow::bail!(
            "{me} asked for '{action}' to be approved: a second person answers, not the one who asked"
        );
    }
    if asked.answered.iter().any(|(who, _)| *who == me) {
        anyhow::bail!("{me} already answered the request for '{action}' in {id}");
    }

    let planned = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::ActionPlanned {
            action: a, plan, ..
        } if a == action => Some(plan.clone()),
        _ => None,
    });
    let now = replan(setup, &events, action).await;
    println!(
        "{} waits in {id}: {} asked at {} on {} for a second approval of {} (plan {})",
        asked.title,
        asked.user,
        crate::view::clock_seconds(&asked.asked),
        asked.host,
        action,
        asked.hash
    );
    let plan = match (&now, planned) {
        (Ok(now), _) => {
            let hash = second::plan_hash(now);
            if hash != asked.hash {
                println!(
                    "  the plan changed since {} asked: read again now it is plan {hash}; an approval of it makes the driver ask again",
                    asked.user
                );
            }
            now.clone()
        }
        (Err(why), Some(planned)) => {
            println!("  (it could not be read again here: {why}; shown as the driver planned it)");
            planned
        }
        (Err(why), None) => anyhow::bail!("the plan of '{action}' cannot be shown: {why}"),
    };
    show(&plan);
    let hash = second::plan_hash(&plan);

    let approved = match reject {
        Some(_) => false,
        None if yes => true,
        None if !std::io::stdin().is_terminal() => {
            eprintln!(
                "no terminal to ask, so nothing was approved: `oncall approve {id} {action} --yes` approves it as shown"
            );
            return Ok(4);
        }
        None => match super::resume::ask(
            &format!("  approve {} as shown? [y]es / [n]o: ", asked.title),
            &[("y", "yes"), ("n", "no")],
        ) {
            Some("y") => true,
            _ => {
                println!("  not approved: nothing recorded");
                return Ok(0);
            }
        },
    };
    let answer = EventKind::ApprovalAnswered {
        step: asked.step.clone(),
        action: action.into(),
        hash: hash.clone(),
        approved,
        user: me,
        host: host(),
        reason: reject.unwrap_or_default().to_string(),
    };
    let mut team = team;
    team.append(
        &id,
        vec![Event {
            ts: jiff::Timestamp::now(),
            incident: id.clone(),
            kind: answer,
        }],
    )
    .await?;
    if approved {
        println!(
            "  approved (plan {hash}): the driver's run sends it if the plan is still this one"
        );
    } else {
        println!("  rejected: the driver's run skips it and shows your reason");
    }
    Ok(0)
}

/// What waits for an approval: in the incident named, else in every incident the team drives.
async fn waiting(
    team: &Team,
    incident: Option<&str>,
) -> anyhow::Result<Vec<(String, Vec<Event>, Waiting)>> {
    let ids: Vec<String> = match incident {
        Some(id) => vec![id.to_string()],
        None => team
            .list()
            .await?
            .into_iter()
            .filter_map(|l| match l {
                Listed::Summary(s) if s.status == crate::timeline::Status::Running => Some(s.id),
                _ => None,
            })
            .collect(),
    };
    let mut all = Vec::new();
    for id in ids {
        let (events, _) = team.events(&id).await?;
        for w in second::waiting(&events) {
            all.push((id.clone(), events.clone(), w));
        }
    }
    Ok(all)
}

fn list(setup: &Setup, all: &[(String, Vec<Event>, Waiting)]) -> anyhow::Result<i32> {
    if setup.json() {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|(id, _, w)| {
                serde_json::json!({
                    "incident": id, "step": w.step, "action": w.action, "title": w.title,
                    "plan": w.hash, "asked_by": w.user, "host": w.host, "asked_at": w.asked,
                })
            })
            .collect();
        crate::view::print_json(&serde_json::Value::Array(rows))?;
        return Ok(0);
    }
    if all.is_empty() {
        println!("no action waits for a second approval");
        return Ok(0);
    }
    for (id, _, w) in all {
        println!(
            "{id}  {}  {}  asked by {} at {} (plan {}): oncall approve {id} {}",
            w.action,
            w.title,
            w.user,
            crate::view::clock_seconds(&w.asked),
            w.hash,
            w.action
        );
    }
    Ok(0)
}

/// The action's plan read again against the live systems, as the driver's run would.
async fn replan(setup: &Setup, events: &[Event], action: &str) -> Result<Plan, String> {
    let opened = Opening::of(events).ok_or("the incident has no opening event")?;
    let Loaded { runbook: rb, .. } = load_runbook(setup, &opened).map_err(|e| e.to_string())?;
    let spec = rb
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .find(|a| a.id.value == action)
        .ok_or_else(|| format!("runbook '{}' has no action '{action}'", rb.id.value))?;
    let taken = take_up(events, &rb)?;
    let (params, endpoints) =
        restore_values(setup, &rb, &opened, &[]).map_err(|e| e.to_string())?;
    let ctx = Context {
        params,
        endpoints,
        incident: incident_value(&opened.event.incident, &opened.event.kind, opened.event.ts),
        checks: taken.checks,
        happened: Happened::of(events),
    };
    let config = setup.config().map_err(|e| e.to_string())?;
    let systems = super::run::systems(setup, super::run::kube(setup, &config));
    let readings = rb
        .steps_checks()
        .filter_map(|(_, check)| {
            let table = ctx.checks.get(&check.id.value)?.table.as_ref()?;
            Some((&check.kind, table))
        })
        .collect();
    let me = user();
    let with = PlanContext {
        systems: Some(&systems),
        undo: &taken.resumption.undo,
        known_replicas: &Default::default(),
        user: &me,
        messages: &rb.messages,
        server_dry_run: false,
        readings,
        pick: None,
    };
    spec.kind
        .prepare(&ctx.to_value(), &with)
        .await
        .map(|p| p.plan)
        .map_err(|e| e.to_string())
}

fn show(plan: &Plan) {
    println!("  {}", plan.request);
    if let Some(on) = &plan.on {
        println!("  on {on}");
    }
    for change in &plan.changes {
        println!("  {change}");
    }
    if let Some(body) = &plan.body {
        println!("  body: {body}");
    }
}
