//! `oncall message`: one of an incident's messages, rendered again with what the incident found
//! and did so far, for pasting into the incident channel.

use super::Setup;
use crate::engine::event::Opening;
use crate::engine::happened::Happened;
use crate::engine::resume::latest_observations;
use crate::engine::{Context, incident_value};
use crate::expr::render_message;
use crate::runbook::Digest;
use crate::view::print_out;

pub async fn run(setup: &Setup, incident: Option<&str>, name: &str) -> anyhow::Result<i32> {
    let (id, events) = setup.team().await?.incident(incident).await?;
    let opened = Opening::of(&events)
        .ok_or_else(|| anyhow::anyhow!("incident {id} has no opening event"))?;
    let loaded = super::resume::load_runbook(setup, &opened)?;
    let rb = &loaded.runbook;
    let Some(template) = rb.messages.get(name) else {
        let all: Vec<String> = rb.messages.keys().cloned().collect();
        anyhow::bail!(
            "runbook '{}' has no message '{name}'{}; its messages: {}",
            rb.id.value,
            crate::spec::validate::did_you_mean(name, &all),
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        );
    };
    if let Some(then) = &opened.digest {
        let changed = Digest::of(&loaded.source.text).changes_since(then);
        if !changed.is_empty() {
            eprintln!(
                "warning: runbook '{}' changed since incident {id} opened ({}): the message is rendered as the runbook says now",
                rb.id.value,
                changed.join(", ")
            );
        }
    }
    let ctx = Context {
        params: opened.params.clone(),
        endpoints: opened.endpoints.clone(),
        incident: incident_value(&id, &opened.event.kind, opened.event.ts),
        checks: latest_observations(&events),
        happened: Happened::of(&events),
    };
    let text = render_message(name, &template.value, &ctx.to_value());
    print_out(&format!("{text}\n"))?;
    Ok(0)
}
