//! Self-tests of the Docker test support: the private daemon answers, the compose project
//! comes up in the states the Docker tests rely on, and a restart is visible in StartedAt.

use super::docker::{ComposeProject, IMAGE, OOM_LINE, docker_host};
use std::time::Instant;

#[test]
fn docker_support_daemon_answers_and_has_the_test_image() {
    let host = docker_host();
    assert!(host.host.starts_with("unix://"), "{}", host.host);
    let api = host.run(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(api.trim().starts_with("1."), "server API version: {api:?}");
    let image = host.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        IMAGE,
    ]);
    assert_eq!(image.trim(), r#"["/bin/sh"]"#);
    // A container with no network runs the image's busybox applets.
    let out = host.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo hello; ls /bin/wget /bin/httpd /bin/nc",
    ]);
    assert!(out.starts_with("hello\n"), "{out}");
}

#[test]
fn docker_support_project_has_healthy_oom_killed_and_unhealthy_services() {
    let started = Instant::now();
    let project = ComposeProject::up("selftest");
    eprintln!("compose project up in {:?}", started.elapsed());

    let benchmark = project.state("benchmark");
    assert_eq!(benchmark["Status"], "running", "{benchmark:#}");
    assert_eq!(benchmark["Health"]["Status"], "healthy", "{benchmark:#}");

    let trainer = project.state("trainer");
    assert_eq!(trainer["Status"], "exited", "{trainer:#}");
    assert_eq!(trainer["ExitCode"], 137, "{trainer:#}");
    let logs = project.logs("trainer");
    assert!(logs.contains("loading model"), "{logs}");
    assert!(logs.contains(OOM_LINE), "{logs}");

    let api = project.state("api");
    assert_eq!(api["Status"], "running", "{api:#}");
    assert_eq!(api["Health"]["Status"], "unhealthy", "{api:#}");

    // The containers carry the compose labels oncall selects them by.
    let id = project.container_id("benchmark");
    let labels = project.docker_host().inspect(&id)["Config"]["Labels"].take();
    assert_eq!(labels["com.docker.compose.project"], project.name.as_str());
    assert_eq!(labels["com.docker.compose.service"], "benchmark");
    let ids = [
        id,
        project.container_id("trainer"),
        project.container_id("api"),
    ];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

#[test]
fn docker_support_restart_changes_started_at_and_drop_removes_the_project() {
    let project = ComposeProject::up("selftest-restart");
    let host = project.docker_host();
    let before = project.started_at("benchmark");
    let id = project.container_id("benchmark");
    let started = Instant::now();
    host.run(&["restart", "-t", "1", &id]);
    eprintln!("docker restart in {:?}", started.elapsed());
    let after = project.started_at("benchmark");
    assert_ne!(before, after, "StartedAt did not change on restart");
    assert!(after > before, "{after} is not after {before}");
    assert_eq!(project.container_id("benchmark"), id);
    assert_eq!(project.state("benchmark")["Status"], "running");
    // Another project of the same prefix is another project.
    let name = project.name.clone();
    let dir = project.dir.clone();
    let filter = format!("label=com.docker.compose.project={name}");
    assert_eq!(
        host.run(&["ps", "-aq", "--filter", &filter])
            .lines()
            .count(),
        3
    );

    let started = Instant::now();
    drop(project);
    eprintln!("compose project down in {:?}", started.elapsed());
    assert_eq!(host.run(&["ps", "-aq", "--filter", &filter]), "");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
