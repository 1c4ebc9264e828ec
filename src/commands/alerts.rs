//! `oncall alerts`: the firing alerts, each with the runbook that handles it. On a terminal,
//! choosing one opens its runbook with params from the alert's labels.

use super::Setup;
use crate::backends::{alertmanager, http_client};
use crate::view::{print_json, print_out};
use comfy_table::{Table, presets};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

pub async fn run(setup: &Setup) -> anyhow::Result<i32> {
    let config = setup.config()?;
    let base = super::run::alertmanager_base(setup, &config);
    let alerts = alertmanager::firing(
        &http_client(),
        &base,
        &Default::default(),
        Duration::from_secs(10),
    )
    .await?;
    let catalog = setup.catalog();
    let handled: Vec<Option<String>> = alerts.iter().map(|a| catalog.for_alert(&a.name)).collect();
    if setup.json() {
        let items: Vec<_> = alerts
            .iter()
            .zip(&handled)
            .map(|(a, rb)| json!({ "alert": a.name, "labels": a.labels, "summary": a.summary, "since": a.starts_at, "runbook": rb }))
            .collect();
        print_json(&json!(items))?;
        return Ok(0);
    }
    if alerts.is_empty() {
        print_out(&format!("no firing alerts in {base}\n"))?;
        return Ok(0);
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(vec![
        "#", "ALERT", "SEVERITY", "SINCE", "RUNBOOK", "SUMMARY",
    ]);
    for (i, (a, rb)) in alerts.iter().zip(&handled).enumerate() {
        let severity = a.labels.get("severity").cloned().unwrap_or_default();
        // Alertmanager's words: each cell clipped, as on the run's screen.
        use crate::view::cell;
        table.add_row(vec![
            cell(&(i + 1).to_string()),
            cell(&a.name),
            cell(&severity),
            cell(&a.starts_at),
            cell(rb.as_deref().unwrap_or("-")),
            cell(&a.summary),
        ]);
    }
    print_out(
        &table
            .to_string()
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect::<String>(),
    )?;
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
        scenario: None,
        timeout: crate::engine::DEFAULT_CHECK_TIMEOUT,
        max_wait: None,
        new: false,
    };
    super::run::run(setup, request).await
}
