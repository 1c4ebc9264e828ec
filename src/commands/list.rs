//! `oncall list`: id, severity, title and where each runbook came from.

use super::Setup;
use crate::view::{print_json, print_out, tables};
use serde_json::json;

pub fn run(setup: &Setup) -> anyhow::Result<i32> {
    let catalog = setup.catalog();
    for problem in &catalog.broken {
        eprintln!("warning: skipped an invalid runbook: {problem}");
    }
    if setup.json() {
        let items: Vec<_> = catalog
            .runbooks
            .values()
            .map(|l| {
                let scenarios: Vec<String> =
                    crate::runbook::scenarios(&l.runbook.id.value, &setup.search)
                        .into_iter()
                        .map(|s| s.name)
                        .collect();
                json!({
                    "id": l.runbook.id.value,
                    "severity": l.runbook.severity.value,
                    "title": l.runbook.title,
                    "source": l.source.origin.to_string(),
                    "alerts": l.runbook.alerts,
                    "scenarios": scenarios,
                })
            })
            .collect();
        print_json(&json!(items))?;
    } else {
        let rows = catalog
            .runbooks
            .values()
            .map(|l| {
                vec![
                    l.runbook.id.value.clone(),
                    l.runbook.severity.value.clone(),
                    l.runbook.title.clone(),
                    l.source.origin.to_string(),
                ]
            })
            .collect();
        let text = tables::listing(
            &["ID", "SEVERITY", "TITLE", "SOURCE"],
            rows,
            &[0, 1],
            &setup.screen(),
        );
        print_out(&text)?;
    }
    Ok(0)
}
