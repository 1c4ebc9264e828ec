//! End-to-end tests of the oncall binary against real services on loopback, one file per story.

mod support;
mod trust;

mod approval;
mod catalog;
mod config;
mod data_stores;
mod docker;
mod doctor;
mod drill;
mod gpu;
mod help;
mod host;
mod import;
mod incident;
mod kubernetes;
mod lease;
mod messages;
mod readme;
mod report;
mod resume;
mod run;
mod screen;
mod store;
mod terminal;
mod testing;
mod validate;

use serde_json::Value;
use std::time::Duration;
use support::prometheus::Prometheus;
use support::servers::{GarbageServer, RecordingServer, SlowServer};
use support::{Sandbox, events, fixture, observation};

/// The error-budget runbook against a real Prometheus and a recording gateway.
fn error_budget_args<'a>(prom: &'a str, api: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "error-budget".into(),
        "--prometheus-url".into(),
        prom.into(),
        "--endpoint".into(),
        format!("api_gateway={api}"),
        "--endpoint".into(),
        format!("job_orchestrator={api}"),
        // NATS's monitoring /healthz: the recording server answers 200.
        "--endpoint".into(),
        format!("nats_monitor={api}"),
        // The acknowledgement's silence goes to the recording server too.
        "--alertmanager-url".into(),
        api.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
