//! The GPU backend against a fake libnvidia-ml.so.1 loaded through nvml-wrapper.
use super::support::nvml::{MODE_ENV, PIDS_ENV, fake_nvml_lib};
use super::support::{Sandbox, events, observation};

const RUNBOOK: &str = "id: gpus\ntitle: T\nseverity: P1\nsteps:\n  - id: look\n    checks:\n      - id: gpus\n        gpus: {}\n        fail_if: value > 95\n      - id: procs\n        gpu_processes: {}\n    actions:\n      - id: end_biggest\n        when: checks.gpus.verdict == \"fail\"\n        gpu_kill: { pid: \"{{ (checks.procs.rows | first).pid }}\", grace: 2s }\n";

fn sandbox(mode: &str) -> Sandbox {
    let sb = Sandbox::new()
        .env(MODE_ENV, mode)
        .env("ONCALL_NVML_LIBRARY", fake_nvml_lib().to_str().unwrap());
    sb.write("gpus.yaml", RUNBOOK);
    sb
}

#[test]
fn a_full_gpu_fails_and_its_biggest_process_is_ended_on_approval() {
    let mut victim = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let sb = sandbox("two_gpus").env(PIDS_ENV, &victim.id().to_string());
    let report = sb
        .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
        .json();
    let gpus = observation(&report, "gpus");
    assert_eq!(gpus["verdict"], "fail");
    assert_eq!(gpus["table"]["verdicts"], serde_json::json!(["fail", "ok"]));
    assert!(
        gpus["text"]
            .as_str()
            .unwrap()
            .starts_with("driver 550.54.15, 2 GPU(s)"),
        "{gpus:#}"
    );
    let procs = observation(&report, "procs");
    assert_eq!(procs["value"], 1);
    assert_eq!(procs["table"]["rows"][0][1], victim.id());
    assert_eq!(procs["table"]["rows"][0][2], "python3 train.py");
    let plan = &report["steps"][0]["actions"][0]["plan"];
    assert_eq!(
        plan["changes"][0],
        format!(
            "ends pid {} (python3 train.py) holding 50.0 GiB on GPU 0",
            victim.id()
        )
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "a dry run ends nothing"
    );

    sb.run(&["run", "gpus.yaml", "--yes"]);
    let status = victim.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    let timeline = sb.timeline();
    assert!(
        events(&timeline, "action_finished")[0]["detail"]
            .as_str()
            .unwrap()
            .contains("ended after SIGTERM")
    );
}

#[test]
fn no_driver_a_failing_driver_and_no_devices_are_errors_in_words() {
    let sb = Sandbox::new().env("ONCALL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
    sb.write("gpus.yaml", RUNBOOK);
    let report = sb
        .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
        .json();
    assert!(
        observation(&report, "gpus")["reason"]
            .as_str()
            .unwrap()
            .starts_with("no NVIDIA driver on this host")
    );
    let report = sandbox("init_fails")
        .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
        .json();
    assert_eq!(
        observation(&report, "gpus")["reason"],
        "the NVIDIA driver did not start: NVIDIA driver is not loaded"
    );
    let report = sandbox("no_devices")
        .run(&["run", "gpus.yaml", "--dry-run", "--output", "json"])
        .json();
    assert_eq!(
        observation(&report, "gpus")["reason"],
        "the NVIDIA driver reports no GPU"
    );
}

#[test]
fn the_gpu_oom_runbook_finds_the_full_gpu_and_offers_to_end_its_process() {
    let mut victim = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let sb = Sandbox::new()
        .env(MODE_ENV, "two_gpus")
        .env(PIDS_ENV, &victim.id().to_string())
        .env("ONCALL_NVML_LIBRARY", fake_nvml_lib().to_str().unwrap());
    let report = sb
        .run(&[
            "run",
            "gpu-oom",
            "--dry-run",
            "--output",
            "json",
            "--timeout",
            "2s",
            "--max-wait",
            "1s",
        ])
        .json();
    let gpus = observation(&report, "gpus");
    assert_eq!(gpus["verdict"], "fail", "{gpus:#}");
    assert_eq!(gpus["table"]["verdicts"][0], "fail", "GPU 0 at 99%");
    let procs = observation(&report, "gpu_procs");
    assert_eq!(procs["table"]["rows"][0][1], victim.id());
    let end = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap().clone())
        .find(|a| a["id"] == "end_gpu_process")
        .expect("offered");
    assert_eq!(end["decision"], "would_send", "{end:#}");
    assert!(
        end["plan"]["changes"][0]
            .as_str()
            .unwrap()
            .contains(&format!("pid {} (python3 train.py)", victim.id())),
        "{end:#}"
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "a dry run ends nothing"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
}
