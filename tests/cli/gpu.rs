//! The GPU backend against a fake libnvidia-ml.so.1 loaded through nvml-wrapper.
use super::support::nvml::{MIB_ENV, MODE_ENV, PIDS_ENV, THIRD_PROCESS, fake_nvml_lib};
use super::support::{Sandbox, action, events, observation, pty, pty_exit_code};

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
            "ends pid {} (python3 train.py) holding 50.0 GiB on GPU 0, as NVML listed it when planned",
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
    let end = action(&report, "end_gpu_process");
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

/// A runbook whose kill is chosen by the rule, not named.
const BY_RULE: &str = "id: gpus\ntitle: T\nseverity: P1\nsteps:\n  - id: look\n    checks:\n      - id: gpus\n        gpus: {}\n        fail_if: value > 95\n      - id: procs\n        gpu_processes: {}\n    actions:\n      - id: end_largest\n        title: End the largest process\n        when: checks.gpus.verdict == \"fail\"\n        gpu_kill: { choose: largest_on_full_gpu, full_above: 95, grace: 2s }\n";

/// Three processes on the full GPU 0: `small` listed first (20 GiB), `big` (40 GiB), and this test
/// process, a parent of oncall, holding the most (60 GiB).
fn three_holders() -> (Sandbox, std::process::Child, std::process::Child) {
    let small = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let big = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let pids = format!("{},{},{}", small.id(), big.id(), std::process::id());
    let sb = sandbox("two_gpus")
        .env(PIDS_ENV, &pids)
        .env(MIB_ENV, "20480,40960,61440");
    sb.write("rule.yaml", BY_RULE);
    (sb, small, big)
}

fn ended_by_term(child: &mut std::process::Child) -> bool {
    let status = child.wait().unwrap();
    std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGTERM)
}

fn still_running(child: &mut std::process::Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

#[test]
fn the_rule_plans_the_largest_process_on_the_full_gpu_never_oncalls_parent_and_ends_it() {
    let (sb, mut small, mut big) = three_holders();
    let report = sb
        .run(&["run", "rule.yaml", "--dry-run", "--output", "json"])
        .json();
    let plan = &report["steps"][0]["actions"][0]["plan"];
    assert_eq!(
        plan["request"],
        format!("kill -TERM {}, then kill -KILL after 2s", big.id()),
        "{plan:#}"
    );
    assert_eq!(
        plan["changes"],
        serde_json::json!([
            format!(
                "ends pid {} (vid-bench worker) holding 40.0 GiB on GPU 0, as NVML listed it when planned",
                big.id()
            ),
            "chosen by choose: largest_on_full_gpu: the largest of 2 process(es) on a GPU above 95% of its memory",
        ]),
        "the test process holds more ({} GiB) but is a parent of oncall",
        THIRD_PROCESS.0 >> 30
    );
    assert!(
        small.try_wait().unwrap().is_none(),
        "a dry run ends nothing"
    );
    assert!(big.try_wait().unwrap().is_none(), "a dry run ends nothing");

    sb.run(&["run", "rule.yaml", "--yes"]);
    assert!(ended_by_term(&mut big));
    assert!(
        still_running(&mut small),
        "only the planned process is signalled"
    );
    let timeline = sb.timeline();
    let finished = events(&timeline, "action_finished");
    assert_eq!(finished[0]["ok"], true);
    assert!(
        finished[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pid {} ended after SIGTERM", big.id())),
        "{finished:?}"
    );
}

#[test]
fn at_the_prompt_another_listed_pid_is_planned_and_ended_and_others_are_refused() {
    let (sb, mut small, mut big) = three_holders();
    let mut s = pty(&sb, &["run", "rule.yaml"]);
    let oncall = s.get_process().pid().as_raw();
    s.expect(format!("ends pid {} (vid-bench worker) holding 40.0 GiB", big.id()).as_str())
        .unwrap();
    let choices = "[y]es apply / [s]kip / [r]e-check / [a]bort run or a pid from the table:";
    s.expect(choices).unwrap();
    s.send_line("999999").unwrap();
    s.expect(
        format!(
            "pid 999999 is not among the processes NVML lists on a GPU (it lists {}, {}, {})",
            small.id(),
            big.id(),
            std::process::id()
        )
        .as_str(),
    )
    .unwrap();
    s.expect(choices).unwrap();
    s.send_line(oncall.to_string()).unwrap();
    s.expect(
        format!("pid {oncall} is oncall itself: oncall never ends its own process tree").as_str(),
    )
    .unwrap();
    s.expect(choices).unwrap();
    s.send_line(std::process::id().to_string()).unwrap();
    s.expect(format!("pid {} is a parent of oncall", std::process::id()).as_str())
        .unwrap();
    s.expect(choices).unwrap();
    s.send_line(small.id().to_string()).unwrap();
    s.expect(format!("kill -TERM {}, then kill -KILL after 2s", small.id()).as_str())
        .unwrap();
    s.expect("typed at the prompt in place of the planned process")
        .unwrap();
    s.expect(choices).unwrap();
    s.send_line("y").unwrap();
    assert_eq!(pty_exit_code(&mut s), 1, "GPU 0 failed its check");
    assert!(ended_by_term(&mut small));
    assert!(
        still_running(&mut big),
        "the rule's choice was not signalled"
    );

    let timeline = sb.timeline();
    let planned: Vec<&str> = events(&timeline, "action_planned")
        .iter()
        .map(|e| e["plan"]["request"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned,
        [
            format!("kill -TERM {}, then kill -KILL after 2s", big.id()),
            format!("kill -TERM {}, then kill -KILL after 2s", small.id()),
        ],
        "the pick is recorded as the plan that was approved"
    );
    let decided = events(&timeline, "action_decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["decision"], "approved");
    assert!(
        events(&timeline, "action_finished")[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pid {} ended after SIGTERM", small.id()))
    );
}

#[test]
fn the_stray_process_drill_plans_the_largest_process_on_the_full_gpu_as_recorded() {
    let sb = Sandbox::new().env("ONCALL_DRILL_PACE", "instant");
    let report = sb
        .run(&[
            "drill",
            "gpu-oom",
            "--scenario",
            "stray-process",
            "--output",
            "json",
        ])
        .json();
    let end = action(&report, "end_gpu_process");
    assert_eq!(
        end["plan"]["request"],
        "kill -TERM 48211, then kill -KILL after 10s"
    );
    assert_eq!(
        end["plan"]["changes"],
        serde_json::json!([
            "ends pid 48211 (/usr/bin/python3) holding 56.1 GiB on GPU 0, as the run's GPU checks recorded it",
            "chosen by choose: largest_on_full_gpu: the largest of 2 process(es) on a GPU above 95% of its memory",
        ]),
        "{end:#}"
    );
    assert_eq!(end["decision"], "rehearsed");
}

#[test]
fn validate_names_a_wrong_rule_and_a_wrong_full_above_where_they_stand() {
    let sb = Sandbox::new();
    sb.write(
        "bad.yaml",
        "id: gpus\ntitle: T\nseverity: P1\nsteps:\n  - id: look\n    actions:\n      - id: end\n        gpu_kill:\n          choose: largest_on_ful_gpu\n          full_above: 120\n",
    );
    let ran = sb.run(&["validate", "bad.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("bad.yaml:9:19: no rule 'largest_on_ful_gpu' to choose a process by\n  hint: did you mean 'largest_on_full_gpu'? choose: largest_on_full_gpu or largest\nbad.yaml:10:23: `full_above` must be a percentage or a template\n  hint: the percent of a GPU's memory in use above which it is full, 0 to 100 (default 95)\n"),
        "{}",
        ran.stdout
    );
}
