//! Second-person approval through the team store: Alice drives, Bob approves or rejects from
//! his machine (two state folders, two users, one real PostgreSQL); the recording server and
//! the fake Kubernetes API count what is sent, and when.

use super::lease::until;
use super::store::{alice_and_bob, machine, no_password, ok, shared_incident, team_database};
use super::support::kube::FakeKube;
use super::support::postgres::Postgres;
use super::*;
use std::process::{Child, Stdio};

/// Alice's run of the two-person fixture, started with `--yes`, once its request for a second
/// approval is in the store: her machine, Bob's, the server, her run and its incident.
fn alice_asks(pg: &Postgres) -> (Sandbox, Sandbox, RecordingServer, Child, String) {
    let (alice, bob) = alice_and_bob(pg);
    let api = RecordingServer::start();
    let run = alice_runs(&alice, &api);
    let id = shared_incident(pg);
    until("the request reaches the store", || {
        !waiting(&bob).is_empty()
    });
    (alice, bob, api, run, id)
}

/// Alice's run of the two-person fixture with `--yes`, in the background.
fn alice_runs(alice: &Sandbox, api: &RecordingServer) -> Child {
    let endpoint = format!("api={}", api.url);
    alice
        .command(&[
            "run",
            fixture("two-person.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--yes",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What waits for a second approval, as Bob's `oncall approve -o json` lists it.
fn waiting(bob: &Sandbox) -> Vec<Value> {
    ok(bob.run(&["approve", "-o", "json"]), bob)
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn restarts(api: &RecordingServer) -> usize {
    api.requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/restart")
        .count()
}

#[test]
fn alices_action_waits_her_own_approval_is_refused_and_bobs_sends_it_once() {
    let pg = Postgres::start();
    let (alice, bob, api, run, id) = alice_asks(&pg);
    let listed = waiting(&bob);
    assert_eq!(
        (
            listed[0]["incident"].as_str(),
            listed[0]["action"].as_str(),
            listed[0]["asked_by"].as_str()
        ),
        (Some(id.as_str()), Some("restart"), Some("alice"))
    );
    assert_eq!(restarts(&api), 0, "nothing is sent on one approval");

    // Completions offer what waits.
    let mut cmd = bob.command(&["--", "oncall", "approve", ""]);
    cmd.env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_IFS", "\n");
    let out = cmd.output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "restart"),
        "{out:?}"
    );

    let own = alice.run(&["approve", &id, "restart", "--yes"]);
    no_password(&own, &alice);
    assert_eq!(own.code, 2, "{}", own.stderr);
    assert!(
        own.stderr
            .contains("alice asked for 'restart' to be approved: a second person answers"),
        "{}",
        own.stderr
    );
    assert_eq!(restarts(&api), 0);

    let approved = ok(bob.run(&["approve", "restart", "--yes"]), &bob);
    assert!(
        approved.stdout.contains("POST ") && approved.stdout.contains("/restart"),
        "Bob sees the plan: {}",
        approved.stdout
    );
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("restart approved by bob on "), "{stdout}");
    assert_eq!(restarts(&api), 1, "sent once, after Bob's approval");

    // Approving twice, or what no longer waits, is refused.
    let again = bob.run(&["approve", &id, "restart", "--yes"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("does not wait for an approval"),
        "{}",
        again.stderr
    );
    // The report names both people.
    bob.write(
        "runbooks/two-person.yaml",
        &std::fs::read_to_string(fixture("two-person.yaml")).unwrap(),
    );
    let report = ok(bob.run(&["report", &id]), &bob);
    assert!(
        report.stdout.contains("approved by alice (--yes)")
            && report.stdout.contains("bob on ")
            && report.stdout.contains("approved restart (plan "),
        "{}",
        report.stdout
    );
}

#[test]
fn bobs_rejection_skips_the_action_and_alice_sees_his_reason() {
    let pg = Postgres::start();
    let (alice, bob, api, run, id) = alice_asks(&pg);
    ok(
        bob.run(&[
            "reject",
            &id,
            "restart",
            "--reason",
            "the queue is draining by itself",
        ]),
        &bob,
    );
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("restart rejected by bob on ")
            && stdout.contains("the queue is draining by itself; skipped"),
        "{stdout}"
    );
    assert_eq!(restarts(&api), 0);
    let ended = alice
        .timeline()
        .into_iter()
        .find(|e| e["event"] == "approval_ended")
        .unwrap();
    assert_eq!(ended["outcome"], "rejected");
    assert_eq!(ended["detail"], "the queue is draining by itself");
}

#[test]
fn a_plan_that_changed_before_bobs_approval_is_not_sent_and_is_asked_again() {
    let pg = Postgres::start();
    let url = team_database(&pg);
    let kube = FakeKube::start();
    kube.add_deployment("video-processing", "asr-worker", 2, &[]);
    let on_cluster = |user: &str| {
        let sb = machine(user, &url);
        let config = kube.kubeconfig(&sb.root);
        sb.env("KUBECONFIG", config.to_str().unwrap())
    };
    let (alice, bob) = (on_cluster("alice"), on_cluster("bob"));
    ok(alice.run(&["store", "init"]), &alice);
    let run = alice
        .command(&[
            "run",
            fixture("two-person-scale.yaml").to_str().unwrap(),
            "--yes",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until("the request reaches the store", || {
        !waiting(&bob).is_empty()
    });
    let asked = waiting(&bob)[0]["plan"].as_str().unwrap().to_string();

    // Someone scales by hand meanwhile: Bob sees, and approves, the plan as it is now.
    kube.add_deployment("video-processing", "asr-worker", 3, &[]);
    let first = ok(bob.run(&["approve", "scale_asr", "--yes"]), &bob);
    assert!(
        first.stdout.contains("the plan changed since alice asked")
            && first.stdout.contains("replicas 3 → 4"),
        "{}",
        first.stdout
    );
    // Not what Alice asked about: not sent; she is asked again (--yes), with the new plan.
    until("Alice asks again", || {
        waiting(&bob)
            .first()
            .is_some_and(|w| w["plan"].as_str() != Some(asked.as_str()))
    });
    assert!(
        kube.mutating_requests().is_empty(),
        "{:?}",
        kube.mutating_requests()
    );
    ok(bob.run(&["approve", "scale_asr", "--yes"]), &bob);
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("the plan changed since"), "{stdout}");
    assert_eq!(
        kube.mutating_requests().len(),
        1,
        "{:?}",
        kube.mutating_requests()
    );
}

#[test]
fn without_a_team_store_a_two_person_runbook_is_refused_before_any_check() {
    let api = RecordingServer::start();
    let sb = Sandbox::new();
    let endpoint = format!("api={}", api.url);
    let refused = sb.run(&[
        "run",
        fixture("two-person.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "action 'restart' of runbook 'two-person' needs a second person's approval, which goes through the team store"
        ),
        "{}",
        refused.stderr
    );
    assert!(api.requests().is_empty(), "{:?}", api.requests());
    assert!(sb.incidents().is_empty());
    // A dry run sends nothing, so it never asks for a second approval.
    let dry = sb.run(&[
        "run",
        fixture("two-person.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(!dry.stdout.contains("second person"), "{}", dry.stdout);
    assert_eq!(api.count_method("POST"), 0);
    // A drill rehearses it: it names who would approve, and how.
    sb.write(
        "runbooks/two-person.yaml",
        &std::fs::read_to_string(fixture("two-person.yaml")).unwrap(),
    );
    sb.write(
        "runbooks/scenarios/two-person/up.yaml",
        "title: Up\nchecks:\n  status: { value: 200 }\n",
    );
    let drill = sb.run(&["drill", "two-person", "--scenario", "up", "--yes"]);
    assert!(
        drill
            .stdout
            .contains("needs a second person: a live run waits here")
            && drill.stdout.contains("anyone but "),
        "{}{}",
        drill.stdout,
        drill.stderr
    );
}
