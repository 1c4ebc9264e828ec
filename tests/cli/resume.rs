//! `oncall resume` after a run is killed, and the question a second responder is asked: real
//! processes killed with SIGKILL, the fake Kubernetes API at the wire, real pseudo-terminals.
use super::kubernetes::sandbox;
use super::support::kube::FakeKube;
use super::support::{Sandbox, events, fixture, pty, pty_exit_code, wait_for_file_containing};
use super::*;
use std::path::PathBuf;
use std::process::{Child, Stdio};

const NS: &str = "video-processing";
/// How long a background run may take to reach the point a test waits for.
const HANG: Duration = Duration::from_secs(30);

fn cluster() -> FakeKube {
    let kube = FakeKube::start();
    kube.add_deployment(NS, "gpu-worker", 5, &[]);
    kube.add_deployment(NS, "asr-worker", 2, &[]);
    kube
}

fn replicas(kube: &FakeKube, name: &str) -> i64 {
    kube.get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}"))
        .unwrap()["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

/// The replica counts the PATCH requests to a deployment asked for, in order.
fn patched(kube: &FakeKube, name: &str) -> Vec<i64> {
    kube.recorded()
        .iter()
        .filter(|r| r.method == "PATCH" && r.target().contains(&format!("/deployments/{name}")))
        .map(|r| r.body_json()["spec"]["replicas"].as_i64().unwrap())
        .collect()
}

/// `run resume-scale --yes` in the background, with no terminal.
fn start_run(sb: &Sandbox, marker: &std::path::Path) -> Child {
    let fixture = fixture("resume-scale.yaml");
    let param = format!("marker={}", marker.display());
    sb.command(&["run", fixture.to_str().unwrap(), "-p", &param, "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn incident_file(sb: &Sandbox) -> Option<PathBuf> {
    sb.incidents()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("-resume-scale"))
}

fn id_of(path: &std::path::Path) -> String {
    path.file_stem().unwrap().to_string_lossy().to_string()
}

#[test]
fn resume_after_sigkill_goes_on_from_the_step_it_stopped_at_and_scales_back_to_the_level_before() {
    let kube = cluster();
    let sb = sandbox(&kube);
    let marker = sb.root.join("marker");
    let mut child = start_run(&sb, &marker);
    // Killed in the watch, after both scale-ups were applied.
    let path = wait_for_file_containing(|| incident_file(&sb), "\"wait_poll\"", HANG);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let id = id_of(&path);
    assert_eq!(
        (replicas(&kube, "gpu-worker"), replicas(&kube, "asr-worker")),
        (10, 4)
    );

    // A running incident is not resumed; a killed one is, and it is the default.
    std::fs::write(&marker, "1").unwrap();
    let resumed = sb.run(&["resume", "--yes"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed
            .stdout
            .contains(&format!("INCIDENT {id} P1 (respond within 1 hour)"))
            && resumed.stdout.contains("resumed by tester on ")
            && resumed.stdout.contains("from step watch")
            && resumed
                .stdout
                .contains("── 3/4 Watch until the marker says so")
            && !resumed.stdout.contains("── 2/4"),
        "{}",
        resumed.stdout
    );
    // The scale-ups were not sent again; the scale-back went to the levels before the incident.
    assert_eq!(patched(&kube, "gpu-worker"), vec![10, 5]);
    assert_eq!(patched(&kube, "asr-worker"), vec![4, 2]);
    assert_eq!(
        (replicas(&kube, "gpu-worker"), replicas(&kube, "asr-worker")),
        (5, 2)
    );
    assert!(
        resumed
            .stdout
            .contains("deployment/gpu-worker replicas 10 → 5"),
        "{}",
        resumed.stdout
    );

    let timeline = sb.timeline();
    let resumed_event = events(&timeline, "resumed");
    assert_eq!(resumed_event.len(), 1);
    assert_eq!(resumed_event[0]["user"], "tester");
    assert_eq!(resumed_event[0]["from_step"], "watch");
    assert!(!resumed_event[0]["host"].as_str().unwrap().is_empty());
    let started: Vec<&str> = events(&timeline, "action_started")
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        started,
        vec!["scale_gpu", "scale_asr", "restore_gpu", "restore_asr"]
    );
    // One incident, open now that its run went through every step, and nothing left to resume.
    assert_eq!(sb.incidents().len(), 1);
    let again = sb.run(&["resume", &id]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("went through every step") && again.stderr.contains("oncall resolve"),
        "{}",
        again.stderr
    );
}

#[test]
fn an_action_cut_off_mid_request_may_have_been_applied_and_only_an_explicit_answer_sends_it_again()
{
    let kube = cluster();
    // The asr-worker scale reaches the server and is never answered, as when the run dies mid-request.
    kube.hold("PATCH", "/deployments/asr-worker");
    let sb = sandbox(&kube);
    let marker = sb.root.join("marker");
    std::fs::write(&marker, "1").unwrap();
    let mut child = start_run(&sb, &marker);
    let path = wait_for_file_containing(
        || incident_file(&sb),
        "\"event\":\"action_started\",\"step\":\"scale-up\",\"action\":\"scale_asr\"",
        HANG,
    );
    let started = std::time::Instant::now();
    while patched(&kube, "asr-worker").is_empty() {
        assert!(
            started.elapsed() < HANG,
            "the scale never reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, it cannot be resumed.
    let busy = sb.run(&["resume", &id_of(&path)]);
    assert_eq!(busy.code, 2, "{}", busy.stderr);
    assert!(busy.stderr.contains("is running now"), "{}", busy.stderr);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    kube.clear_holds();

    // --yes goes on with the step, does not send the applied scale again, and stops at the one
    // that may have been applied: planned against the count as it is now.
    let yes = sb.run(&["resume", "--yes"]);
    assert_eq!(yes.code, 4, "{}{}", yes.stdout, yes.stderr);
    assert!(
        yes.stdout.contains("action scale_gpu: applied at ")
            && yes
                .stdout
                .contains("before the run stopped: not offered again"),
        "{}",
        yes.stdout
    );
    let may = yes
        .stdout
        .lines()
        .find(|l| l.contains("may have been applied at"))
        .unwrap_or_else(|| panic!("{}", yes.stdout));
    assert!(
        may.contains("(no result recorded)") && regex_lite_clock(may),
        "{may}"
    );
    assert!(
        yes.stdout.contains("deployment/asr-worker replicas 2 → 4")
            && yes.stdout.contains("--yes does not repeat it"),
        "{}",
        yes.stdout
    );
    assert_eq!(patched(&kube, "gpu-worker"), vec![10]);
    assert_eq!(
        patched(&kube, "asr-worker"),
        vec![4],
        "only the held request"
    );
    let decided = sb.timeline();
    let last = (*events(&decided, "action_decided").last().unwrap()).clone();
    assert_eq!(
        (last["action"].as_str(), last["decision"].as_str()),
        (Some("scale_asr"), Some("unconfirmed"))
    );

    // On a terminal the engineer decides: yes sends it, and the run goes on to the scale-back.
    let mut s = pty(&sb, &["resume"]);
    s.expect("may have been applied at").unwrap();
    // Too long for one line at the pty's 80 columns: the choices follow on the next.
    s.expect("Scale asr-worker to 4 again (it may have been applied)?")
        .unwrap();
    s.expect("[y]es apply").unwrap();
    s.send_line("y").unwrap();
    s.expect("Scale gpu-worker back? [y]es apply").unwrap();
    s.send_line("y").unwrap();
    s.expect("Scale asr-worker back? [y]es apply").unwrap();
    s.send_line("y").unwrap();
    assert_eq!(pty_exit_code(&mut s), 0);
    assert_eq!(patched(&kube, "asr-worker"), vec![4, 4, 2]);
    assert_eq!(
        (replicas(&kube, "gpu-worker"), replicas(&kube, "asr-worker")),
        (5, 2)
    );
    let timeline = sb.timeline();
    assert_eq!(events(&timeline, "resumed").len(), 2);
    assert!(
        events(&timeline, "action_unconfirmed").len() == 2,
        "each resume said so"
    );
}

/// `HH:MM:SS` somewhere in the line.
fn regex_lite_clock(line: &str) -> bool {
    line.as_bytes().windows(8).any(|w| {
        w.iter().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
    })
}

/// The waits fixture copied into the sandbox, run and SIGKILLed in its wait: an interrupted
/// incident of a runbook file the test can change.
fn killed_waits(sb: &Sandbox, api: &RecordingServer) -> (PathBuf, String) {
    let runbook = sb.write(
        "waits.yaml",
        &std::fs::read_to_string(fixture("waits.yaml")).unwrap(),
    );
    let endpoint = format!("api={}", api.url);
    let args = [
        "run",
        runbook.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--new",
    ];
    let path = killed_in_its_wait(sb, &args, "-waits");
    (runbook, id_of(&path))
}

/// `oncall ARGS` in the background, SIGKILLed once the newest incident whose id holds `named`
/// polled its wait; that incident's timeline.
fn killed_in_its_wait(sb: &Sandbox, args: &[&str], named: &str) -> PathBuf {
    let mut child = sb
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let path = wait_for_file_containing(
        || {
            sb.incidents()
                .into_iter()
                .rfind(|p| p.to_string_lossy().contains(named))
        },
        "\"wait_poll\"",
        HANG,
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    path
}

#[test]
fn a_changed_runbook_is_refused_unless_forced_and_drills_dry_runs_and_resolved_incidents_are_not_resumed()
 {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let (runbook, id) = killed_waits(&sb, &api);
    let text = std::fs::read_to_string(&runbook).unwrap();
    std::fs::write(
        &runbook,
        text.replace("After the wait", "After the long wait"),
    )
    .unwrap();

    let refused = sb.run(&["resume", &id]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "is not the one incident {id} opened with: step after changed"
        )) && refused
            .stderr
            .contains(&format!("oncall resume --force {id}")),
        "{}",
        refused.stderr
    );
    assert!(events(&sb.timeline(), "resumed").is_empty());

    let forced = sb.run(&["resume", &id, "--force", "--max-wait", "300ms"]);
    assert_eq!(forced.code, 1, "{}{}", forced.stdout, forced.stderr);
    assert!(
        forced
            .stdout
            .contains("the runbook changed since it opened (--force): step after changed")
            && forced.stdout.contains("After the long wait"),
        "{}",
        forced.stdout
    );
    let resumed = events(&sb.timeline(), "resumed")[0].clone();
    assert_eq!(
        resumed["changed"],
        serde_json::json!(["step after changed"])
    );
    // The endpoint came back from the timeline: the check after the wait reached the server.
    assert!(
        api.requests().iter().any(|(_, path)| path == "/later"),
        "{:?}",
        api.requests()
    );

    assert_eq!(sb.run(&["resolve", "--incident", &id, "fixed"]).code, 0);
    let resolved = sb.run(&["resume", &id]);
    assert_eq!(resolved.code, 2);
    assert!(
        resolved
            .stderr
            .contains(&format!("incident {id} is resolved: nothing to resume")),
        "{}",
        resolved.stderr
    );
    assert_eq!(
        sb.run(&["resume"]).stderr.trim(),
        format!(
            "error: no open live incident to resume in {}; `oncall incidents` lists them",
            sb.state().join("incidents").display()
        )
    );

    let drill = sb.run(&["drill", "error-budget", "--scenario", "all-clear"]);
    assert_eq!(drill.code, 0, "{}", drill.stderr);
    let drill_id = id_of(sb.incidents().last().unwrap());
    let refused = sb.run(&["resume", &drill_id]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("is a drill: a drill is not resumed"),
        "{}",
        refused.stderr
    );
    let dry = sb.run(&[
        "run",
        fixture("three-actions.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dry_id = id_of(sb.incidents().last().unwrap());
    let refused = sb.run(&["resume", &dry_id]);
    assert!(
        refused.code == 2 && refused.stderr.contains("is a dry run, which sent nothing"),
        "{}",
        refused.stderr
    );
    let missing = sb.run(&["resume", "20990101-0000-nothing"]);
    assert!(
        missing.code == 2
            && missing
                .stderr
                .contains("no incident '20990101-0000-nothing'"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_second_responder_is_told_an_incident_is_open_and_chooses_to_resume_it_or_start_a_new_one() {
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let (runbook, id) = killed_waits(&sb, &api);
    let runbook = runbook.to_str().unwrap();

    // Without a terminal: the line, then a new incident.
    let piped = sb.run(&["run", runbook, "--endpoint", &endpoint, "--max-wait", "1ms"]);
    assert_eq!(piped.code, 1, "{}", piped.stderr);
    let line = piped.stderr.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(&format!("incident {id} is open (opened by tester "))
            && line.ends_with(&format!(
                "step 1/2; its run was interrupted): no terminal to ask, so a new incident starts (`oncall resume {id}` goes on with that one; --new skips this)"
            )),
        "{}",
        piped.stderr
    );
    assert_eq!(sb.incidents().len(), 2);
    // The newer one finished every step; --new skips the question.
    let new = sb.run(&[
        "run",
        runbook,
        "--endpoint",
        &endpoint,
        "--max-wait",
        "1ms",
        "--new",
    ]);
    assert!(!new.stderr.contains("is open"), "{}", new.stderr);
    assert_eq!(sb.incidents().len(), 3);
    for finished in &sb.incidents()[1..] {
        assert_eq!(sb.run(&["resolve", "--incident", &id_of(finished)]).code, 0);
    }

    // On a terminal: [n]ew starts another; [r]esume goes on with the interrupted one.
    let mut s = pty(
        &sb,
        &["run", runbook, "--endpoint", &endpoint, "--max-wait", "1ms"],
    );
    s.expect(format!("incident {id} is open (opened by tester "))
        .unwrap();
    s.expect("step 1/2; its run was interrupted): [r]esume it or start a [n]ew one? ")
        .unwrap();
    s.send_line("n").unwrap();
    s.expect("INCIDENT ").unwrap();
    assert_eq!(pty_exit_code(&mut s), 1);
    assert_eq!(sb.incidents().len(), 4);
    let newest = id_of(sb.incidents().last().unwrap());
    assert_eq!(sb.run(&["resolve", "--incident", &newest]).code, 0);

    let mut s = pty(
        &sb,
        &["run", runbook, "--endpoint", &endpoint, "--max-wait", "1ms"],
    );
    s.expect("[r]esume it or start a [n]ew one? ").unwrap();
    s.send_line("x").unwrap();
    s.expect("'x' is not an answer").unwrap();
    s.send_line("r").unwrap();
    s.expect(format!("INCIDENT {id} P3")).unwrap();
    s.expect("resumed by tester on ").unwrap();
    s.expect("── 1/2 Watch").unwrap();
    assert_eq!(pty_exit_code(&mut s), 1);
    assert_eq!(sb.incidents().len(), 4, "no new incident");
    let timeline = support::read_timeline(&sb.state().join(format!("incidents/{id}.jsonl")));
    assert_eq!(events(&timeline, "resumed")[0]["from_step"], "watch");
    assert_eq!(events(&timeline, "run_finished").len(), 1);
}

#[test]
fn two_resumes_started_together_send_each_action_at_most_once() {
    const PAIRS: usize = 200;
    let sb = Sandbox::new();
    let api = RecordingServer::start();
    let endpoint = format!("api={}", api.url);
    let fixture = fixture("resume-race.yaml");
    // With no terminal and no --yes the run stops at the action's question: an open incident
    // whose action was never decided.
    let opened = sb.run(&[
        "run",
        fixture.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--new",
    ]);
    assert_ne!(opened.code, 0, "{}", opened.stderr);
    assert_eq!(api.count_method("POST"), 0, "{:?}", api.requests());
    let first = sb.incidents().pop().unwrap();
    let text = std::fs::read_to_string(&first).unwrap();
    // The same undecided incident under many ids: a pair of resumes for each.
    let ids: Vec<String> = (0..PAIRS)
        .map(|n| format!("20261204-0300-race-{n}"))
        .collect();
    for id in &ids {
        std::fs::write(first.with_file_name(format!("{id}.jsonl")), &text).unwrap();
    }

    for id in &ids {
        let pair: Vec<Child> = (0..2)
            .map(|_| {
                sb.command(&["resume", "--yes", "--endpoint", &endpoint, id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<(i32, String)> = pair
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                (
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .collect();
        // One resume applies; the other is refused while it runs, or finds it applied.
        assert!(
            outcomes.iter().any(|(code, _)| *code == 0),
            "{id}: {outcomes:?}"
        );
        let sent = api
            .requests()
            .iter()
            .filter(|(m, p)| m == "POST" && p == &format!("/applied/{id}"))
            .count();
        assert_eq!(sent, 1, "{id} was sent {sent} times: {outcomes:?}");
    }
    assert_eq!(api.count_method("POST"), PAIRS);
}

#[test]
fn a_resumed_incident_whose_verification_was_not_met_does_not_offer_the_revert() {
    let kube = cluster();
    let sb = sandbox(&kube);
    let fixture = fixture("revert-unverified.yaml");
    let param = format!("marker={}", sb.root.join("never-written").display());
    let run = [
        "run",
        fixture.to_str().unwrap(),
        "-p",
        &param,
        "--max-wait",
        "300ms",
    ];
    // The scale-up is approved, the watch times out, and the engineer aborts at the wrap-up.
    let mut s = pty(&sb, &run);
    s.expect("Scale gpu-worker to 10? [y]es apply").unwrap();
    s.send_line("y").unwrap();
    s.expect("timed out").unwrap();
    s.expect("Tell the team? [y]es apply").unwrap();
    s.send_line("a").unwrap();
    assert_eq!(pty_exit_code(&mut s), 4);
    assert_eq!(patched(&kube, "gpu-worker"), vec![10]);

    // The resumed run starts at the wrap-up: it knows from the timeline that the watch was not met.
    // Its exit code covers the whole incident: the watch before the resume ended unmet.
    let resumed = sb.run(&["resume", "--yes"]);
    assert_eq!(resumed.code, 1, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed
            .stdout
            .contains("Summary: 1 wait(s) ended unmet (exit 1)"),
        "{}",
        resumed.stdout
    );
    assert!(
        resumed.stdout.contains("from step wrap-up")
            && resumed
                .stdout
                .contains("action restore_gpu: verification watch was not met: its wait timed out"),
        "{}",
        resumed.stdout
    );
    assert_eq!(patched(&kube, "gpu-worker"), vec![10], "not scaled back");
    assert_eq!(replicas(&kube, "gpu-worker"), 10);
    let timeline = sb.timeline();
    let held: Vec<&Value> = events(&timeline, "action_not_offered")
        .into_iter()
        .filter(|e| e["action"] == "restore_gpu")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["unverified"], "watch");
    let started: Vec<&str> = events(&timeline, "action_started")
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(started, vec!["scale_gpu", "tell_team"]);
}

#[test]
fn a_resumed_runs_summary_and_exit_code_cover_what_was_found_and_done_before_it() {
    let kube = cluster();
    let sb = sandbox(&kube);
    let marker = sb.root.join("marker");
    let fixture = fixture("resume-findings.yaml");
    let param = format!("marker={}", marker.display());
    // Killed in the watch of step 2, after step 1 found a failure and applied its action.
    let args = ["run", fixture.to_str().unwrap(), "-p", &param, "--yes"];
    let path = killed_in_its_wait(&sb, &args, "-resume-findings");
    let id = id_of(&path);
    assert_eq!(replicas(&kube, "gpu-worker"), 10);

    std::fs::write(&marker, "1").unwrap();
    // Under -o json the summary goes to stderr and the report to stdout.
    let resumed = sb.run(&["resume", "--yes", &id, "-o", "json"]);
    let out = &resumed.stderr;
    assert!(!out.contains("── 1/2"), "{out}");
    // The earlier failure counts in the exit code, its words and the summary's findings.
    assert_eq!(resumed.code, 1, "{out}{}", resumed.stdout);
    assert!(out.contains("1 check(s) failed (exit 1)"), "{out}");
    assert!(
        out.contains("  found:    1 ok, 0 warn, 1 fail, 0 error"),
        "{out}"
    );
    assert!(out.contains("backlog [fail]"), "{out}");
    // The action applied before the resume is among what was done.
    let done = out
        .lines()
        .find(|l| l.starts_with("  done:"))
        .unwrap_or_default();
    assert!(done.contains("scale_gpu: applied"), "{out}");
    assert!(!out.contains("no action taken"), "{out}");
    let report = resumed.json();
    assert_eq!(report["exit_code"], 1, "{report:#}");
    assert_eq!(report["outcome"], "1 check(s) failed", "{report:#}");
    // Sent once, before the run was killed.
    assert_eq!(patched(&kube, "gpu-worker"), vec![10]);
}
