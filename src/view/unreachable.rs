//! A backend that does not answer is said once, on a line of its own with what to check, and the
//! rows of its checks say only that: not the same long error on every row.

use crate::backends::NoAnswer;
use crate::engine::observation::Observation;

/// What identifies one unreachable system, and the line that says so.
pub struct Said {
    pub key: String,
    pub line: String,
}

/// The line for an observation whose backend gave no answer or could not be used; None for an
/// error that is an answer, or a check that timed out on a system that did answer.
pub fn said(o: &Observation) -> Option<Said> {
    let NoAnswer {
        system,
        cause,
        unusable,
    } = o.no_answer.as_ref()?;
    let (name, hint) = backend(&o.backend);
    let line = match system {
        Some(system) => format!("{name} at {system} is unreachable: {cause}; check {hint}"),
        // No kubeconfig, no NVIDIA driver.
        None if *unusable => format!("{name} cannot be used: {cause}"),
        // A check that timed out on a system that may well answer others: its row says so.
        None => return None,
    };
    Some(Said {
        key: format!("{}\n{}", o.backend, system.as_deref().unwrap_or_default()),
        line,
    })
}

/// The row's note once the line above has said it.
pub const ROW_NOTE: &str = "unreachable (said above)";

fn backend(key: &str) -> (&'static str, &'static str) {
    match key {
        "prometheus" => ("Prometheus", "--prometheus-url"),
        "alertmanager" => ("Alertmanager", "--alertmanager-url"),
        "kubernetes" => (
            "The Kubernetes API",
            "--context and that the cluster is reachable",
        ),
        "postgres" => ("PostgreSQL", "--postgres-url or the PG* variables"),
        "redis" => ("Redis", "--redis-url"),
        "nats" => ("NATS", "--nats-url"),
        "docker" => ("The Docker daemon", "DOCKER_HOST"),
        "http" => ("The service", "its endpoint's URL (--endpoint NAME=URL)"),
        "gpu" => ("NVML", "--nvml-library"),
        _ => ("The backend", "its URL"),
    }
}
