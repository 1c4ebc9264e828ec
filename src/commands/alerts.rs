//! `oncall alerts`: the firing alerts, each with the runbook that handles it. On a terminal,
//! choosing one opens its runbook with params from the alert's labels.

use super::Setup;
use crate::backends::{alertmanager, http_client};
use crate::view::{print_json, print_out, tables};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

pub async fn run(setup: &Setup) -> anyhow::Result<i32> {
    let config = setup.config()?;
    let base = super::run::alertmanager_base(setup, &config);
    let client = http_client();
    let alerts = match alertmanager::firing(
        &client,
        &base,
        &Default::default(),
        alertmanager::Which::All,
        Duration::from_secs(10),
    )
    .await
    {
        Ok(alerts) => alerts,
        // As a check that cannot reach its backend: exit 3, not a usage error.
        Err(err) => {
            eprintln!("error: {}", crate::redact::global().text(&err.to_string()));
            return Ok(3);
        }
    };
    // The most severe first, and among equals the one firing longest.
    let mut alerts = alerts;
    alerts.sort_by(|a, b| {
        let rank = |a: &alertmanager::Alert| {
            severity_rank(a.labels.get("severity").map_or("", String::as_str))
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.starts_at.cmp(&b.starts_at))
    });
    let catalog = setup.catalog();
    let handled: Vec<Option<String>> = alerts.iter().map(|a| catalog.for_alert(&a.name)).collect();
    // The silences' comments name the incidents that acknowledged them: asked for together.
    let acknowledged: Vec<Option<Acknowledged>> =
        futures_util::future::join_all(alerts.iter().map(|alert| async {
            let id = alert.silenced_by.first()?;
            let comment =
                alertmanager::silence_comment(&client, &base, id, Duration::from_secs(5)).await;
            Some(Acknowledged {
                silence: id.clone(),
                incident: comment.as_deref().and_then(incident_of),
            })
        }))
        .await;
    if setup.json() {
        let items: Vec<_> = alerts
            .iter()
            .zip(&handled)
            .zip(&acknowledged)
            .map(|((a, rb), ack)| json!({
                "alert": a.name, "labels": a.labels, "summary": a.summary, "since": a.starts_at, "runbook": rb,
                "acknowledged": ack.as_ref().map(|k| json!({ "silence": k.silence, "incident": k.incident })),
            }))
            .collect();
        print_json(&json!(items))?;
        return Ok(0);
    }
    if alerts.is_empty() {
        print_out(&format!("no firing alerts in {base}\n"))?;
        return Ok(0);
    }
    let rows = alerts
        .iter()
        .zip(&handled)
        .zip(&acknowledged)
        .enumerate()
        .map(|(i, ((a, rb), ack))| {
            vec![
                (i + 1).to_string(),
                a.name.clone(),
                a.labels.get("severity").cloned().unwrap_or_default(),
                firing_for(&a.starts_at),
                rb.clone().unwrap_or_else(|| "-".into()),
                match ack {
                    Some(Acknowledged {
                        incident: Some(id), ..
                    }) => format!("by {id}"),
                    Some(Acknowledged { silence, .. }) => format!("silence {silence}"),
                    None => "-".into(),
                },
                a.summary.clone(),
            ]
        })
        .collect();
    print_out(&tables::listing(
        &[
            "#",
            "ALERT",
            "SEVERITY",
            "FOR",
            "RUNBOOK",
            "ACKNOWLEDGED",
            "SUMMARY",
        ],
        rows,
        &[0, 1, 2, 4, 5],
        &setup.screen(),
    ))?;
    if !std::io::stdin().is_terminal() || handled.iter().all(Option::is_none) {
        return Ok(0);
    }
    eprint!("run the runbook of which alert? [number, Enter for none]: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let Some(index) = line
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1 && *n <= alerts.len())
    else {
        return Ok(0);
    };
    let Some(runbook) = &handled[index - 1] else {
        anyhow::bail!("no runbook handles alert {}", alerts[index - 1].name);
    };
    let request = super::run::Request {
        runbook: Some(runbook),
        params: &[],
        alert: Some(&alerts[index - 1].name),
        mode: crate::engine::event::Mode::Live,
        yes: false,
        server_dry_run: false,
        scenario: None,
        timeout: crate::engine::DEFAULT_CHECK_TIMEOUT,
        max_wait: None,
        new: false,
    };
    super::run::run(setup, request).await
}

/// Where a severity label sorts: `critical`/`P0` first, then high, warning, info, anything else.
fn severity_rank(severity: &str) -> u8 {
    match severity.to_ascii_lowercase().as_str() {
        "critical" | "p0" | "page" => 0,
        "high" | "error" | "major" | "p1" => 1,
        "warning" | "warn" | "medium" | "p2" => 2,
        "info" | "low" | "minor" | "p3" => 3,
        _ => 4,
    }
}

/// A silence that holds an alert, and the incident that created it when oncall did.
struct Acknowledged {
    silence: String,
    incident: Option<String>,
}

/// The incident id in a silence comment oncall wrote: `oncall incident 20261122-0826-error-budget: …`.
fn incident_of(comment: &str) -> Option<String> {
    let rest = comment.strip_prefix("oncall incident ")?;
    let id = rest.split(|c: char| c == ':' || c.is_whitespace()).next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// How long an alert has been firing, from its `startsAt`: `12m`.
fn firing_for(starts_at: &str) -> String {
    match starts_at.parse::<jiff::Timestamp>() {
        Ok(start) => crate::view::age(jiff::Timestamp::now().duration_since(start).as_secs()),
        Err(_) => starts_at.to_string(),
    }
}
