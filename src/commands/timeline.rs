//! `oncall timeline`: an incident's events, as lines for people or JSON.

use super::Setup;
use crate::engine::event::{Event, EventKind};
use crate::view::polls::Polls;
use crate::view::{json_name as name, print_json, print_out};

pub async fn run(setup: &Setup, incident: Option<&str>) -> anyhow::Result<i32> {
    let team = setup.team().await?;
    let id = match incident {
        Some(id) => id.to_string(),
        None => team.latest().await?,
    };
    let (events, read_from) = team.events(&id).await?;
    if setup.json() {
        print_json(&serde_json::to_value(&events)?)?;
    } else {
        let mut out = format!("incident {id} ({read_from})\n");
        let mut polls = Polls::default();
        for e in &events {
            if let Some(line) = line(e, &mut polls) {
                out.push_str(&format!("{line}\n"));
            }
        }
        print_out(&out)?;
    }
    Ok(0)
}

/// An event as one line; a wait's polls are counted into the line of its end, not shown one by one.
fn line(e: &Event, polls: &mut Polls) -> Option<String> {
    let ts =
        e.ts.to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
    let what = match &e.kind {
        EventKind::IncidentOpened {
            runbook,
            severity,
            mode,
            user,
            ..
        } => format!("opened {runbook} {severity} ({}) by {user}", name(mode)),
        EventKind::StepStarted { step, title, .. } => format!("step {step}: {title}"),
        EventKind::StepSkipped { step, reason } => format!("step {step} skipped: {reason}"),
        EventKind::CheckStarted { check, .. } => format!("check {check} started"),
        EventKind::CheckFinished { observation: o, .. } => format!(
            "check {} {} {} {}",
            o.check,
            o.verdict.as_str(),
            o.display_value(),
            o.reason.clone().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
        EventKind::ActionNotOffered { action, reason, .. } => {
            format!("action {action} not offered: {reason}")
        }
        EventKind::ActionPlanned { action, plan, .. } => format!(
            "action {action} planned: {}",
            plan.request.replace('\n', " ")
        ),
        EventKind::ActionDecided {
            action,
            decision,
            by,
            user,
            ..
        } if !user.is_empty() => format!("action {action} {} by {user} ({by})", name(decision)),
        EventKind::ActionDecided {
            action,
            decision,
            by,
            ..
        } => format!("action {action} {} by {by}", name(decision)),
        EventKind::ActionStarted { action, .. } => format!("action {action} sending"),
        EventKind::ActionUnconfirmed {
            action, started, ..
        } => format!(
            "action {action} may have been applied at {} (no result recorded)",
            crate::view::clock_seconds(started)
        ),
        EventKind::Resumed {
            user,
            host,
            from_step,
            changed,
            took_over_from,
        } => {
            let from = took_over_from
                .as_ref()
                .map(|d| format!(", taking it over from {d}"))
                .unwrap_or_default();
            let forced = if changed.is_empty() {
                String::new()
            } else {
                format!(" (--force; changed: {})", changed.join(", "))
            };
            format!("resumed by {user} on {host} from step {from_step}{from}{forced}")
        }
        EventKind::ActionFinished {
            action, ok, detail, ..
        } => format!(
            "action {action} {}: {detail}",
            if *ok { "done" } else { "failed" }
        ),
        EventKind::WaitStarted { check, until, .. } => {
            *polls = Polls::default();
            format!("wait on {check} until {until}")
        }
        EventKind::WaitPoll { observation, .. } => {
            polls.poll(observation);
            return None;
        }
        EventKind::WaitFinished {
            check,
            outcome,
            elapsed_ms,
            ..
        } => format!("wait on {check}: {}", polls.summary(*outcome, *elapsed_ms)),
        EventKind::Message { name, text, .. } => {
            format!("message {name}: {}", text.replace('\n', " / "))
        }
        EventKind::Note {
            text,
            user,
            tag: None,
            ..
        } => format!("note by {user}: {text}"),
        EventKind::Note {
            text,
            user,
            tag: Some(tag),
            ..
        } => format!("note ({}) by {user}: {text}", name(tag).replace('_', " ")),
        EventKind::Interrupted { signal, killed } if killed.is_empty() => {
            format!("interrupted by {signal}")
        }
        EventKind::Interrupted { signal, killed } => {
            format!("interrupted by {signal}; killed running commands {killed:?}")
        }
        EventKind::DrillScored { .. } => {
            format!("drill score: {}", crate::view::score_line(&e.kind))
        }
        EventKind::RunFinished { exit_code, outcome } => {
            format!("run finished (exit {exit_code}): {outcome}")
        }
        EventKind::Resolved { text, user } => format!("resolved by {user}: {text}"),
        kind @ (EventKind::ApprovalRequested { .. }
        | EventKind::ApprovalAnswered { .. }
        | EventKind::ApprovalEnded { .. }) => crate::view::approval::line(&e.incident, kind)?,
        EventKind::Rechecked { action, .. } => {
            format!("re-check of the step's checks before deciding on {action}")
        }
        EventKind::UpdateDue { message, .. } => match message {
            Some(name) => format!("status update due (message {name})"),
            None => "status update due".to_string(),
        },
        EventKind::EscalationDue { severity, to, .. } => {
            format!("{severity} response time passed: escalate to {to}")
        }
        EventKind::EscalationWithheld { to, why, .. } => {
            format!("no escalation to {to}: {why}")
        }
    };
    Some(format!("{ts}  {what}"))
}
