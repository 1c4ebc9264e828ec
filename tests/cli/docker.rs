//! The Docker backend against a private dockerd and a compose project of busybox containers.
use super::support::docker::ComposeProject;
use super::support::{Sandbox, events, observation};
use super::*;

fn runbook(project: &str) -> String {
    format!(
        "id: compose\ntitle: T\nseverity: P0\nsteps:\n  - id: look\n    checks:\n      - id: containers\n        docker_containers: {{ project: {project} }}\n      - id: oom_lines\n        docker_logs: {{ project: {project}, service: trainer, since: 1h, matches: \"CUDA error: out of memory\" }}\n      - id: usage\n        docker_stats: {{ project: {project}, service: benchmark }}\n    actions:\n      - id: restart_benchmark\n        docker: {{ op: restart, project: {project}, service: benchmark, grace: 1s }}\n"
    )
}

#[test]
fn containers_logs_and_stats_are_read_and_restart_only_when_approved() {
    let project = ComposeProject::up("oncallrun");
    let host = project.docker_host().host;
    let sb = Sandbox::new().env("DOCKER_HOST", &host);
    sb.write("compose.yaml", &runbook(&project.name));
    let before = project.started_at("benchmark");

    let report = sb
        .run(&["run", "compose.yaml", "--dry-run", "--output", "json"])
        .json();
    let containers = observation(&report, "containers");
    assert_eq!(containers["verdict"], "fail", "{containers:#}");
    let reason = containers["reason"].as_str().unwrap();
    assert!(
        reason.contains("trainer exited (137)") && reason.contains("api unhealthy"),
        "{reason}"
    );
    let rows = containers["table"]["rows"].as_array().unwrap();
    let row = |svc: &str| {
        rows.iter()
            .find(|r| r[0] == svc)
            .unwrap_or_else(|| panic!("{svc}: {rows:?}"))
            .clone()
    };
    assert_eq!(
        (&row("benchmark")[2], &row("benchmark")[3]),
        (&Value::from("running"), &Value::from("healthy"))
    );
    assert_eq!(
        (&row("trainer")[2], &row("trainer")[4]),
        (&Value::from("exited"), &Value::from(137))
    );
    assert_eq!(row("api")[3], "unhealthy");
    assert_eq!(containers["value"], 1);
    let oom = observation(&report, "oom_lines");
    assert_eq!(oom["value"], 1, "{oom:#}");
    let usage = observation(&report, "usage");
    assert_eq!(
        usage["table"]["rows"].as_array().unwrap().len(),
        1,
        "{usage:#}"
    );
    assert_eq!(
        project.started_at("benchmark"),
        before,
        "a dry run restarts nothing"
    );
    let plan = &report["steps"][0]["actions"][0]["plan"];
    assert!(
        plan["changes"][0].as_str().unwrap().starts_with("restart "),
        "{plan:#}"
    );

    let ran = sb.run(&["run", "compose.yaml", "--yes"]);
    assert_ne!(
        project.started_at("benchmark"),
        before,
        "restarted: {}",
        ran.stdout
    );
    let timeline = sb.timeline();
    let finished = events(&timeline, "action_finished");
    assert_eq!(finished[0]["ok"], true, "{finished:?}");
    assert!(
        finished[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("restarted "),
        "{finished:?}"
    );
}

#[test]
fn an_unreachable_daemon_is_an_error_in_words() {
    let sb = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    sb.write("compose.yaml", &runbook("nothing"));
    let report = sb
        .run(&["run", "compose.yaml", "--dry-run", "--output", "json"])
        .json();
    let containers = observation(&report, "containers");
    assert_eq!(containers["verdict"], "error");
    assert!(
        containers["reason"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach the Docker daemon (unix:///nonexistent/docker.sock)"),
        "{containers:#}"
    );
}

#[test]
fn docker_scale_makes_containers_like_the_first_and_removes_the_highest_only_when_approved() {
    let project = ComposeProject::up("oncallscale");
    let host = project.docker_host();
    let sb = Sandbox::new().env("DOCKER_HOST", &host.host);
    let scale = |n: u32| {
        format!(
            "id: scale\ntitle: T\nseverity: P1\nsteps:\n  - id: act\n    actions:\n      - id: scale_benchmark\n        docker_scale: {{ project: {p}, service: benchmark, replicas: {n}, grace: 1s }}\n",
            p = project.name
        )
    };
    let benchmarks = || {
        let filter = [
            format!("label=com.docker.compose.project={}", project.name),
            "label=com.docker.compose.service=benchmark".to_string(),
        ];
        let mut names: Vec<String> = host
            .run(&[
                "ps",
                "--format",
                "{{.Names}} {{.State}}",
                "--filter",
                &filter[0],
                "--filter",
                &filter[1],
            ])
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    let first = benchmarks();
    assert_eq!(first.len(), 1, "{first:?}");
    let first_name = first[0].split(' ').next().unwrap().to_string();
    // The next number in the first's style: proj-benchmark-2 (compose v2) or proj_benchmark_2.
    let second = format!("{}2", first_name.strip_suffix('1').unwrap());

    sb.write("scale.yaml", &scale(2));
    let dry = sb
        .run(&["run", "scale.yaml", "--dry-run", "--output", "json"])
        .json();
    let plan = &dry["steps"][0]["actions"][0]["plan"];
    assert_eq!(
        plan["changes"],
        serde_json::json!([
            "benchmark: 1 → 2 container(s)",
            format!("create and start {second} like {first_name}")
        ]),
        "{plan:#}"
    );
    assert_eq!(benchmarks().len(), 1, "a dry run made a container");

    let up = sb.run(&["run", "scale.yaml", "--yes"]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    assert_eq!(
        benchmarks(),
        [format!("{first_name} running"), format!("{second} running")]
    );
    let made = host.inspect(&second);
    assert_eq!(
        made["Config"]["Labels"]["com.docker.compose.container-number"],
        "2"
    );
    assert_eq!(
        made["HostConfig"]["NetworkMode"], "none",
        "made like the first"
    );
    // Compose itself counts the new container as the service's second.
    let ps = project.compose(&["ps", "-q", "benchmark"]);
    assert_eq!(String::from_utf8_lossy(&ps.stdout).lines().count(), 2);

    sb.write("scale.yaml", &scale(1));
    let down = sb.run(&["run", "scale.yaml", "--yes"]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert_eq!(
        benchmarks(),
        [format!("{first_name} running")],
        "the highest number went"
    );
    let timeline = sb.timeline();
    let finished = events(&timeline, "action_finished");
    assert_eq!(
        finished[0]["detail"],
        format!("stopped and removed {second}"),
        "{finished:?}"
    );
}
