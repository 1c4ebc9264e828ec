//! One driver at a time, through the team store's lease: two state folders and two users play
//! Alice's and Bob's machines against one real PostgreSQL; the recording server counts what
//! each sends; a TCP proxy between Alice and the database plays a network partition.

use super::store::{alice_and_bob, kinds, machine, no_password, ok, shared_incident, stored};
use super::support::postgres::Postgres;
use super::support::proxy::Proxy;
use super::support::{pty, pty_exit_code};
use super::*;
use std::process::{Child, Stdio};
use std::time::Instant;

/// Who holds or last held the incident's lease, under which epoch, and whether its session
/// still holds it.
fn lease(pg: &Postgres, incident: &str) -> Option<(String, i64, bool)> {
    let out = pg.psql_in(
        "oncall",
        &format!(
            "SELECT l.holder, l.epoch, EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid) FROM leases l WHERE incident = '{incident}'"
        ),
    );
    let line = out.lines().find(|l| l.contains('|'))?;
    let mut parts = line.split('|');
    Some((
        parts.next()?.to_string(),
        parts.next()?.parse().ok()?,
        parts.next()? == "t",
    ))
}

/// Waits (30 s at most) until `done` says so.
pub(super) fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The wait-then-act fixture run with `--yes` in the background: it polls until its wait ends
/// (at `--max-wait`, or a Ctrl-C), then sends one POST /restart.
fn drives(machine: &Sandbox, api: &RecordingServer, extra: &[&str]) -> Child {
    let endpoint = format!("api={}", api.url);
    let runbook = fixture("wait-then-act.yaml");
    let mut args = vec![
        "run",
        runbook.to_str().unwrap(),
        "--endpoint",
        endpoint.as_str(),
        "--yes",
    ];
    args.extend_from_slice(extra);
    machine
        .command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn restarts(api: &RecordingServer) -> usize {
    api.requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/restart")
        .count()
}

/// Bob holds the lease, taken from Alice (the second epoch), and sent the one restart.
fn bob_drove(pg: &Postgres, id: &str, api: &RecordingServer) {
    assert_eq!(
        lease(pg, id).map(|(who, epoch, _)| (who, epoch)),
        Some(("bob".into(), 2))
    );
    assert_eq!(restarts(api), 1, "Bob's restart");
}

/// Alice's run ends with exit 4, having sent nothing after Bob's restart; its screen.
fn sent_nothing_more(run: Child, api: &RecordingServer) -> String {
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert_eq!(
        restarts(api),
        1,
        "Alice sent nothing after losing the lease"
    );
    stdout
}

fn sigint(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn bobs_resume_while_alice_drives_is_refused_or_follows_her_run_and_nothing_is_sent_twice() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    let run = drives(&alice, &api, &[]);
    let id = shared_incident(&pg);
    until("Alice holds the lease", || {
        lease(&pg, &id).is_some_and(|(who, _, held)| who == "alice" && held)
    });

    // Without a terminal Bob is told who drives, since when and where, and nothing starts.
    let refused = bob.run(&["resume", &id]);
    no_password(&refused, &bob);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("incident {id} is driven by alice on "))
            && refused.stderr.contains(" since ")
            && refused
                .stderr
                .contains(&format!("`oncall follow {id}` follows it"))
            && refused.stderr.contains("nothing was started"),
        "{}",
        refused.stderr
    );
    let endpoint = format!("api={}", api.url);
    let second = bob.run(&[
        "run",
        fixture("wait-then-act.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
    ]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("incident {id} is driven by alice on "))
            && second.stderr.contains("nothing was started"),
        "{}",
        second.stderr
    );
    assert!(bob.incidents().is_empty(), "Bob opened nothing");
    assert_eq!(pg.psql_in("oncall", "SELECT count(*) FROM incidents"), "1");
    let listed = ok(bob.run(&["incidents", "-o", "json"]), &bob).json();
    assert_eq!(
        (listed[0]["driver"].as_str(), listed[0]["status"].as_str()),
        (Some("alice"), Some("running"))
    );

    // On a terminal he chooses to follow her run, and sees it to its end.
    let mut s = pty(&bob, &["resume", &id]);
    s.expect("[f]ollow it, or [q]uit? ").unwrap();
    s.send_line("f").unwrap();
    s.expect("Watch").unwrap();
    sigint(&run); // Alice cuts her wait short; her run sends its action and ends.
    s.expect("Restart the service").unwrap();
    assert_eq!(pty_exit_code(&mut s), 0);
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        restarts(&api),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = alice
        .timeline()
        .into_iter()
        .find(|e| e["event"] == "action_started")
        .unwrap();
    assert_eq!(started["lease"], 1, "the action carries the lease's epoch");
    let listed = ok(bob.run(&["incidents", "-o", "json"]), &bob).json();
    assert_eq!(listed[0]["status"], "open", "{listed}");
}

#[test]
fn alices_run_killed_mid_action_is_resumed_by_bob_within_seconds_and_each_request_is_sent_once() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    api.hold("/first");
    let endpoint = format!("api={}", api.url);
    let mut run = alice
        .command(&[
            "run",
            fixture("three-actions.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--yes",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("the first request reaches the server", || {
        api.requests().contains(&("POST".into(), "/first".into()))
    });
    let id = shared_incident(&pg);
    // Its intent reached the store before the request left.
    assert!(
        stored(&pg, &id).iter().any(|(_, k)| k == "action_started"),
        "{:?}",
        stored(&pg, &id)
    );
    run.kill().unwrap(); // SIGKILL, mid-request
    run.wait().unwrap();
    let killed = Instant::now();
    api.release();

    // Her session ended with her process: the incident is interrupted, and Bob's plain resume,
    // from a machine that never had it, goes on; --yes stops at what may have been applied.
    until("the store sees Alice's run end", || {
        lease(&pg, &id).is_some_and(|(_, _, held)| !held)
    });
    let listed = ok(bob.run(&["incidents", "-o", "json"]), &bob).json();
    assert_eq!(
        (listed[0]["status"].as_str(), listed[0]["driver"].as_str()),
        (Some("interrupted"), Some("alice"))
    );
    assert!(bob.incidents().is_empty());
    let yes = bob.run(&["resume", &id, "--yes"]);
    no_password(&yes, &bob);
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "resumed {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(yes.code, 4, "{}{}", yes.stdout, yes.stderr);
    assert!(
        yes.stdout.contains("may have been applied at"),
        "{}",
        yes.stdout
    );
    assert_eq!(
        api.requests().len(),
        1,
        "nothing sent again: {:?}",
        api.requests()
    );

    // On a terminal Bob decides: not the first again; the other two.
    let mut s = pty(&bob, &["resume", &id]);
    s.expect("First action again (it may have been applied)?")
        .unwrap();
    s.send_line("n").unwrap();
    s.expect("Second action?").unwrap();
    s.send_line("y").unwrap();
    s.expect("Third action?").unwrap();
    s.send_line("y").unwrap();
    assert_eq!(pty_exit_code(&mut s), 0);
    let sent: Vec<(String, String)> = api
        .requests()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    assert_eq!(
        sent,
        [("POST", "/first"), ("PUT", "/second"), ("DELETE", "/third")]
            .map(|(m, p)| (m.to_string(), p.to_string()))
    );
    let whole = ok(bob.run(&["timeline", &id, "-o", "json"]), &bob).json();
    let whole = kinds(whole.as_array().unwrap());
    assert_eq!(
        whole.iter().filter(|k| *k == "resumed").count(),
        2,
        "{whole:?}"
    );
    assert!(whole.contains(&"action_unconfirmed".to_string()));
}

#[test]
fn a_partitioned_driver_applies_nothing_once_its_lease_is_given_to_another() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    // Alice reaches the database through a link that will fail.
    let proxy = Proxy::start(pg.port);
    let through = format!(
        "postgres://oncall_team:{}@127.0.0.1:{}/oncall",
        super::store::PASSWORD,
        proxy.port
    );
    let alice_cut_off = machine("alice", &through);
    let _ = alice; // same user, the machine whose link fails
    let run = drives(&alice_cut_off, &api, &["--max-wait", "8s"]);
    let id = shared_incident(&pg);
    until("Alice holds the lease", || {
        lease(&pg, &id).is_some_and(|(who, _, held)| who == "alice" && held)
    });

    // The link fails: the database sees her session end; she hears nothing more.
    proxy.cut();
    until("the lease is free", || {
        lease(&pg, &id).is_some_and(|(_, _, held)| !held)
    });
    let bobs = bob.run(&["resume", &id, "--yes", "--max-wait", "1s"]);
    no_password(&bobs, &bob);
    assert!(
        !bobs.stderr.contains("is driven by"),
        "{}{}",
        bobs.stdout,
        bobs.stderr
    );
    bob_drove(&pg, &id, &api);
    // Her link comes back before her wait ends: she learns the lease is Bob's.
    proxy.heal();

    let stdout = sent_nothing_more(run, &api);
    let refused = alice_cut_off
        .timeline()
        .into_iter()
        .find(|e| e["event"] == "action_not_offered")
        .unwrap_or_else(|| panic!("{stdout}"));
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not sent: ")
            && (reason.contains("bob on ") || reason.contains("does not answer")),
        "{reason}"
    );
    assert!(stdout.contains("does not drive the incident"), "{stdout}");
}

#[test]
fn bob_takes_over_from_a_driver_who_stopped_answering_and_she_sends_nothing_more() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    let run = drives(&alice, &api, &["--max-wait", "6s"]);
    let id = shared_incident(&pg);
    until("Alice holds the lease", || {
        lease(&pg, &id).is_some_and(|(who, _, held)| who == "alice" && held)
    });

    let taken = bob.run(&["resume", &id, "--take-over", "--yes", "--max-wait", "1s"]);
    no_password(&taken, &bob);
    assert!(
        taken.stdout.contains("took it over from alice on "),
        "{}{}",
        taken.stdout,
        taken.stderr
    );
    bob_drove(&pg, &id, &api);
    let resumed = ok(bob.run(&["timeline", &id, "-o", "json"]), &bob)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "resumed")
        .cloned()
        .unwrap();
    assert!(
        resumed["took_over_from"]
            .as_str()
            .is_some_and(|from| from.starts_with("alice on ")),
        "{resumed}"
    );

    let stdout = sent_nothing_more(run, &api);
    assert!(stdout.contains("bob on "), "{stdout}");
}
