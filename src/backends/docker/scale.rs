//! `docker_scale`: a compose service brought to a number of containers, as `docker-compose up -d
//! --scale SERVICE=N` does, without compose: new containers are made like the service's
//! lowest-numbered one (its config, host config and labels, with the next numbers), surplus ones
//! (the highest numbers) are stopped and removed. The plan names each container it makes or
//! removes, and the approval covers exactly those.

use super::{COMPOSE_PROJECT, COMPOSE_SERVICE, Container, Error, Target, describe, find};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
};
use std::collections::HashMap;

pub const NUMBER: &str = "com.docker.compose.container-number";

/// What a scale will do, found when it is planned.
#[derive(Default)]
pub struct Change {
    /// Whether the containers were found when it was planned: a scale planned blind is not applied.
    ready: bool,
    /// The container new ones are made like.
    template: Option<String>,
    /// Names and numbers of the containers to make.
    create: Vec<(String, u32)>,
    /// Ids and names of the containers to remove.
    remove: Vec<(String, String)>,
}

/// The plan's lines, and what the apply will do.
pub async fn plan(
    docker: Option<&Docker>,
    target: &Target,
    replicas: u32,
) -> (Vec<String>, Change) {
    let mut change = Change::default();
    let service = target.service.clone().unwrap_or_default();
    // No daemon to ask (a drill, `show`) or no answer: the plan says only what was asked.
    let found = match docker {
        Some(docker) => find(docker, target).await.ok(),
        None => None,
    };
    let Some(mut found) = found else {
        return (
            vec![format!(
                "scale service {service} to {replicas} container(s)"
            )],
            change,
        );
    };
    found.sort_by_key(|c| c.number);
    let now = found.len() as u32;
    change.ready = true;
    let mut lines = vec![format!("{service}: {now} → {replicas} container(s)")];
    if replicas > now {
        let Some(first) = found.first() else {
            lines.push(format!(
                "no container of {} to make new ones like",
                target.describe()
            ));
            change.ready = false;
            return (lines, change);
        };
        change.template = Some(first.id.clone());
        let next = found
            .iter()
            .map(|c| c.number)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        for number in next..next + (replicas - now) {
            let name = numbered(first, number);
            lines.push(format!("create and start {name} like {}", first.name));
            change.create.push((name, number));
        }
    } else {
        for c in found.iter().rev().take((now - replicas) as usize) {
            lines.push(format!("stop and remove {}", c.name));
            change.remove.push((c.id.clone(), c.name.clone()));
        }
    }
    (lines, change)
}

/// The next container's name in the template's style: `proj-svc-2` (compose v2) or `proj_svc_2`.
fn numbered(template: &Container, number: u32) -> String {
    let n = template.number.to_string();
    match template.name.strip_suffix(&n) {
        Some(stem) if stem.ends_with(['-', '_']) => format!("{stem}{number}"),
        _ => format!("{}-{number}", template.name),
    }
}

pub async fn apply(
    docker: &Docker,
    target: &Target,
    change: &Change,
    grace: i32,
) -> Result<String, Error> {
    if !change.ready {
        return Err(Error::NoContainer(target.describe()));
    }
    if change.create.is_empty() && change.remove.is_empty() {
        return Ok(format!(
            "{} already has that many containers",
            target.describe()
        ));
    }
    if let Some(template) = &change.template {
        let inspect = docker
            .inspect_container(template, None)
            .await
            .map_err(describe)?;
        for (name, number) in &change.create {
            let body = like(&inspect, *number)?;
            let options = CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            };
            docker
                .create_container(Some(options), body)
                .await
                .map_err(describe)?;
            if let Err(err) = docker
                .start_container(name, None::<StartContainerOptions>)
                .await
            {
                // A container that cannot start (a host port taken) is not left behind.
                let _ = docker
                    .remove_container(name, None::<RemoveContainerOptions>)
                    .await;
                return Err(describe(err));
            }
        }
    }
    for (id, _) in &change.remove {
        let stop = StopContainerOptions {
            t: Some(grace),
            ..Default::default()
        };
        docker
            .stop_container(id, Some(stop))
            .await
            .map_err(describe)?;
        docker
            .remove_container(id, None::<RemoveContainerOptions>)
            .await
            .map_err(describe)?;
    }
    let made: Vec<&str> = change.create.iter().map(|c| c.0.as_str()).collect();
    let removed: Vec<&str> = change.remove.iter().map(|c| c.1.as_str()).collect();
    Ok(if made.is_empty() {
        format!("stopped and removed {}", removed.join(", "))
    } else {
        format!("created and started {}", made.join(", "))
    })
}

/// A new container's body: the template's config and host config, its own number, no hostname
/// of the template's, and the service's name as an alias on a compose network.
fn like(
    inspect: &bollard::models::ContainerInspectResponse,
    number: u32,
) -> Result<ContainerCreateBody, Error> {
    let config = inspect.config.clone().unwrap_or_default();
    let mut body = serde_json::to_value(&config).map_err(|e| Error::Other(e.to_string()))?;
    if let Some(map) = body.as_object_mut() {
        map.remove("Hostname");
        map.remove("MacAddress");
        map.insert(
            "HostConfig".into(),
            serde_json::to_value(&inspect.host_config).map_err(|e| Error::Other(e.to_string()))?,
        );
    }
    let mut body: ContainerCreateBody =
        serde_json::from_value(body).map_err(|e| Error::Other(e.to_string()))?;
    let labels = body.labels.get_or_insert_with(HashMap::new);
    labels.insert(NUMBER.into(), number.to_string());
    let service = labels.get(COMPOSE_SERVICE).cloned();
    let network = inspect
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .filter(|m| {
            !["default", "bridge", "host", "none"].contains(&m.as_str())
                && !m.starts_with("container:")
        });
    if let (Some(network), Some(service)) = (network, service)
        && labels.contains_key(COMPOSE_PROJECT)
    {
        let endpoint = EndpointSettings {
            aliases: Some(vec![service]),
            ..Default::default()
        };
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, endpoint)])),
        });
    }
    Ok(body)
}
