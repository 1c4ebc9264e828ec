//! The team store on a real PostgreSQL: two state folders and two ONCALL_USER values play
//! Alice's and Bob's machines.

use super::support::Ran;
use super::support::postgres::Postgres;
use super::*;
use std::process::Stdio;
use std::time::Instant;

pub(super) const PASSWORD: &str = "t3am-Store-s3cret";

/// A database `oncall` owned by the role `oncall_team` (what the README asks a team to make),
/// and its URL with the role's password.
pub(super) fn team_database(pg: &Postgres) -> String {
    pg.with_password("oncall_team", PASSWORD);
    pg.psql("CREATE DATABASE oncall OWNER oncall_team");
    format!(
        "postgres://oncall_team:{PASSWORD}@127.0.0.1:{}/oncall",
        pg.port
    )
}

/// Two machines, Alice's and Bob's, on one team database that Alice has initialized.
pub(super) fn alice_and_bob(pg: &Postgres) -> (Sandbox, Sandbox) {
    let url = team_database(pg);
    let alice = machine("alice", &url);
    let bob = machine("bob", &url);
    ok(alice.run(&["store", "init"]), &alice);
    (alice, bob)
}

pub(super) fn machine(user: &str, store: &str) -> Sandbox {
    Sandbox::new()
        .env("ONCALL_USER", user)
        .env("ONCALL_STORE", store)
}

/// Nothing oncall printed holds the password, and neither does any file in its state folder.
pub(super) fn no_password(ran: &Ran, sb: &Sandbox) {
    assert!(
        !ran.stdout.contains(PASSWORD) && !ran.stderr.contains(PASSWORD),
        "the password was shown:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    for path in sb.incidents() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }
}

pub(super) fn ok(ran: Ran, sb: &Sandbox) -> Ran {
    no_password(&ran, sb);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    ran
}

fn three_actions(sb: &Sandbox, api: &RecordingServer) -> String {
    let endpoint = format!("api={}", api.url);
    let ran = sb.run(&[
        "run",
        fixture("three-actions.yaml").to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--yes",
    ]);
    let ran = ok(ran, sb);
    assert!(!ran.stderr.contains("does not answer"), "{}", ran.stderr);
    let newest = sb.incidents().pop().unwrap();
    newest.file_stem().unwrap().to_string_lossy().to_string()
}

/// The store's events of an incident, as `kind` in sequence order, with their sequence numbers.
pub(super) fn stored(pg: &Postgres, incident: &str) -> Vec<(i64, String)> {
    let out = pg.psql_in(
        "oncall",
        &format!("SELECT seq, kind FROM events WHERE incident = '{incident}' ORDER BY seq"),
    );
    out.lines()
        .filter(|l| l.contains('|'))
        .map(|l| {
            let (seq, kind) = l.split_once('|').unwrap();
            (seq.parse().unwrap(), kind.to_string())
        })
        .collect()
}

pub(super) fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn store_init_migrates_once_refuses_a_newer_schema_and_an_empty_database_says_to_init() {
    let pg = Postgres::start();
    let url = team_database(&pg);
    let sb = machine("alice", &url);

    // Not a PostgreSQL URL: said, with its password masked, before a run opens anything.
    let mysql = format!("mysql://oncall_team:{PASSWORD}@127.0.0.1/oncall");
    let three = fixture("three-actions.yaml");
    let refused = sb.run(&[
        "run",
        three.to_str().unwrap(),
        "--store",
        &mysql,
        "--dry-run",
    ]);
    no_password(&refused, &sb);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("'mysql://oncall_team:***@127.0.0.1/oncall' is not a PostgreSQL URL"),
        "{}",
        refused.stderr
    );
    assert!(sb.incidents().is_empty(), "no incident was opened");

    // An empty database: every command that reaches it says what to do.
    let incidents = sb.run(&["incidents"]);
    no_password(&incidents, &sb);
    assert_eq!(incidents.code, 2, "{}", incidents.stderr);
    assert!(
        incidents
            .stderr
            .contains("has no oncall schema yet: run `oncall store init`"),
        "{}",
        incidents.stderr
    );
    assert!(
        incidents.stderr.contains("oncall_team:***@"),
        "{}",
        incidents.stderr
    );
    let status = ok(sb.run(&["store", "status", "-o", "json"]), &sb).json();
    assert_eq!(status["answers"], true);
    assert_eq!(status["schema"], Value::Null);
    assert_eq!(status["unshared"], 0);

    let init = ok(sb.run(&["store", "init"]), &sb);
    assert!(
        init.stdout.contains("oncall_team:***@127.0.0.1")
            && init.stdout.contains("schema created (version 2)"),
        "{}",
        init.stdout
    );
    let again = ok(sb.run(&["store", "init"]), &sb);
    assert!(
        again.stdout.contains("schema already at version 2"),
        "{}",
        again.stdout
    );
    let status = ok(sb.run(&["store", "status"]), &sb);
    assert!(status.stdout.contains("answers   yes"), "{}", status.stdout);
    assert!(status.stdout.contains("schema    2\n"), "{}", status.stdout);
    let listed = ok(sb.run(&["incidents", "-o", "json"]), &sb).json();
    assert_eq!(listed, serde_json::json!([]));

    // A newer oncall migrated it further: this one touches nothing.
    pg.psql_in(
        "oncall",
        "INSERT INTO oncall_migrations (version) VALUES (99)",
    );
    for args in [&["store", "init"][..], &["incidents"][..]] {
        let refused = sb.run(args);
        no_password(&refused, &sb);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(
                "has schema version 99, newer than this oncall knows (2): upgrade oncall"
            ),
            "{args:?}: {}",
            refused.stderr
        );
    }

    // A store an older oncall set up (version 1, before leases) is migrated, once.
    pg.psql("CREATE DATABASE oncall_v1 OWNER oncall_team");
    pg.psql_in(
        "oncall_v1",
        &format!(
            "SET ROLE oncall_team; {} CREATE TABLE oncall_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO oncall_migrations (version) VALUES (1);",
            include_str!("../../migrations/0001_team.sql")
        ),
    );
    let v1 = format!(
        "postgres://oncall_team:{PASSWORD}@127.0.0.1:{}/oncall_v1",
        pg.port
    );
    let migrated = ok(sb.run(&["store", "init", "--store", &v1]), &sb);
    assert!(
        migrated
            .stdout
            .contains("schema migrated from version 1 to 2"),
        "{}",
        migrated.stdout
    );
    assert_eq!(
        pg.psql_in("oncall_v1", "SELECT count(*) FROM leases")
            .trim(),
        "0"
    );

    // A wrong password: PostgreSQL refuses, and the error shows neither password.
    let wrong = format!(
        "postgres://oncall_team:Wr0ng-{PASSWORD}@127.0.0.1:{}/oncall",
        pg.port
    );
    let denied = sb.run(&["store", "status", "--store", &wrong, "-o", "json"]);
    no_password(&denied, &sb);
    assert!(!denied.stdout.contains("Wr0ng"), "{}", denied.stdout);
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    let denied = denied.json();
    assert_eq!(denied["answers"], false);
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"),
        "{denied}"
    );
}

#[test]
fn alices_run_is_shared_and_bobs_note_and_resolve_land_in_its_one_timeline() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();

    let id = three_actions(&alice, &api);
    let local = alice.timeline();
    assert_eq!(
        stored(&pg, &id)
            .iter()
            .map(|(_, k)| k.clone())
            .collect::<Vec<_>>(),
        kinds(&local),
        "the store holds the run's events in the order written"
    );

    // Bob's machine has no incident of its own: it sees Alice's, who drives it and from where.
    assert!(bob.incidents().is_empty());
    let listed = ok(bob.run(&["incidents", "-o", "json"]), &bob).json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["driver"], "alice");
    assert_eq!(listed[0]["status"], "open");
    assert!(listed[0]["host"].as_str().is_some_and(|h| !h.is_empty()));
    let table = ok(bob.run(&["incidents"]), &bob);
    assert!(
        table.stdout.contains("DRIVER") && table.stdout.contains("alice@"),
        "{}",
        table.stdout
    );

    let seen = ok(bob.run(&["timeline", &id, "-o", "json"]), &bob).json();
    assert_eq!(
        seen.as_array().unwrap(),
        &local,
        "Bob reads Alice's events as she wrote them"
    );

    // Bob's note goes to her incident; Alice's later one comes after it, everywhere.
    let noted = ok(
        bob.run(&["note", "--incident", &id, "db failover done by hand"]),
        &bob,
    );
    assert!(
        noted.stderr.contains(&format!("recorded in {id}")),
        "{}",
        noted.stderr
    );
    ok(
        alice.run(&["note", "--incident", &id, "thanks, error rate back down"]),
        &alice,
    );
    let shown = ok(alice.run(&["timeline", &id]), &alice);
    let bob_at = shown.stdout.find("note by bob: db failover done by hand");
    let alice_at = shown
        .stdout
        .find("note by alice: thanks, error rate back down");
    assert!(
        bob_at.is_some() && alice_at.is_some() && bob_at < alice_at,
        "{}",
        shown.stdout
    );
    let alices = ok(alice.run(&["timeline", &id, "-o", "json"]), &alice).json();
    let bobs = ok(bob.run(&["timeline", &id, "-o", "json"]), &bob).json();
    assert_eq!(alices, bobs, "one order on both machines");
    assert_eq!(alices.as_array().unwrap().len(), local.len() + 2);

    // Bob resolves it; Alice's list says so, and Bob's report reads the whole incident.
    ok(
        bob.run(&["resolve", "--incident", &id, "failed over"]),
        &bob,
    );
    let listed = ok(alice.run(&["incidents", "-o", "json"]), &alice).json();
    assert_eq!(listed[0]["status"], "resolved", "{listed}");
    let report = ok(bob.run(&["report", &id]), &bob);
    assert!(
        report.stdout.contains("Three actions to decide on"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("db failover done by hand"),
        "{}",
        report.stdout
    );

    // The scenario and the messages of her incident, from his machine (which has the runbook).
    bob.write(
        "runbooks/three-actions.yaml",
        &std::fs::read_to_string(fixture("three-actions.yaml")).unwrap(),
    );
    let recorded = ok(bob.run(&["scenario", "record", &id]), &bob);
    assert!(recorded.stdout.contains("health"), "{}", recorded.stdout);
    let message = bob.run(&["message", &id, "status_update"]);
    assert!(
        message
            .stderr
            .contains("runbook 'three-actions' has no message 'status_update'"),
        "{}",
        message.stderr
    );

    // Every event is in the store once, numbered 1..n.
    let seqs: Vec<i64> = stored(&pg, &id).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let status = ok(bob.run(&["store", "status", "-o", "json"]), &bob).json();
    assert_eq!(status["unshared"], 0);
}

#[test]
fn ten_processes_noting_one_incident_at_once_are_all_kept_in_one_order() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    let id = three_actions(&alice, &api);

    // Five from each machine, all started before any is waited for.
    let children: Vec<_> = (0..10)
        .map(|n| {
            let sb = if n % 2 == 0 { &alice } else { &bob };
            let text = format!("note number {n}");
            sb.command(&["note", "--incident", &id, &text])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let alices = ok(alice.run(&["timeline", &id, "-o", "json"]), &alice).json();
    let bobs = ok(bob.run(&["timeline", &id, "-o", "json"]), &bob).json();
    assert_eq!(alices, bobs, "one order everywhere");
    let mut notes: Vec<String> = events(alices.as_array().unwrap(), "note")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    notes.sort();
    let expected: Vec<String> = (0..10).map(|n| format!("note number {n}")).collect();
    assert_eq!(notes, expected);
    let seqs: Vec<i64> = stored(&pg, &id).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
}

#[test]
fn a_run_outlives_its_store_and_store_sync_shares_what_waited_in_order() {
    let mut pg = Postgres::start();
    let url = team_database(&pg);
    let api = RecordingServer::start();
    let alice = machine("alice", &url);
    ok(alice.run(&["store", "init"]), &alice);

    // A run that polls for about four seconds.
    let endpoint = format!("api={}", api.url);
    let run = alice
        .command(&[
            "run",
            fixture("waits.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--max-wait",
            "4s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the store has its first polls, the database goes away.
    let started = Instant::now();
    let id = loop {
        let shared = pg.psql_in(
            "oncall",
            "SELECT incident FROM events WHERE kind = 'wait_poll' LIMIT 1",
        );
        if let Some(id) = shared.lines().find(|l| l.ends_with("-waits")) {
            break id.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing shared"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    pg.stop();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the wait timed out as usual:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("does not answer").count(),
        1,
        "said once:\n{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let local = alice.timeline();
    assert_eq!(
        local.last().unwrap()["event"],
        "run_finished",
        "nothing lost locally"
    );

    let status = alice.run(&["store", "status", "-o", "json"]);
    no_password(&status, &alice);
    assert_eq!(status.code, 3, "{}", status.stderr);
    let status = status.json();
    assert_eq!(status["answers"], false);
    let waiting = status["unshared"].as_u64().unwrap();
    assert!(waiting > 0, "{status}");

    // Other commands go on with the local timelines, and say why once.
    let listed = alice.run(&["incidents", "-o", "json"]);
    no_password(&listed, &alice);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(
        listed.stderr.matches("does not answer").count(),
        1,
        "{}",
        listed.stderr
    );
    assert_eq!(listed.json()[0]["id"], id.as_str());

    pg.restart();
    let before = stored(&pg, &id).len() as u64;
    assert_eq!(
        before + waiting,
        local.len() as u64,
        "the store had the rest"
    );
    let synced = ok(alice.run(&["store", "sync", "-o", "json"]), &alice).json();
    assert_eq!(synced["shared"], waiting);
    assert_eq!(synced["unshared"], 0);
    let after = stored(&pg, &id);
    assert_eq!(
        after.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>(),
        kinds(&local),
        "all of them, in the order written"
    );
    // A second sync sends nothing again.
    let again = ok(alice.run(&["store", "sync", "-o", "json"]), &alice).json();
    assert_eq!(again["shared"], 0);
    assert_eq!(stored(&pg, &id).len(), local.len());
}

#[test]
fn tls_require_and_verify_full_reach_a_store_that_refuses_plain_connections() {
    let pg = Postgres::start();
    let url = team_database(&pg);
    let ca = pg.require_tls_for("oncall_team");
    let sb = machine("alice", &url);

    // The server refuses this role without TLS.
    let plain = sb.run(&["store", "init"]);
    no_password(&plain, &sb);
    assert_ne!(plain.code, 0, "{}", plain.stdout);
    assert!(plain.stderr.contains("no encryption"), "{}", plain.stderr);

    let require = format!("{url}?sslmode=require");
    let init = ok(sb.run(&["store", "init", "--store", &require]), &sb);
    assert!(
        init.stdout.contains("schema created (version 2)"),
        "{}",
        init.stdout
    );

    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let status = ok(
        sb.run(&["store", "status", "--store", &verified, "-o", "json"]),
        &sb,
    )
    .json();
    assert_eq!(status["answers"], true, "{status}");
    assert_eq!(status["schema"], 2);

    // verify-full without the CA that signed the server's certificate: refused.
    let unknown = format!("{url}?sslmode=verify-full");
    let refused = sb.run(&["store", "status", "--store", &unknown, "-o", "json"]);
    no_password(&refused, &sb);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let refused = refused.json();
    assert_eq!(refused["answers"], false);
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("certificate") || why.contains("CA certificates"),
        "{why}"
    );

    // A mode oncall does not take is named with the ones it does.
    let bad = sb.run(&[
        "store",
        "status",
        "--store",
        &format!("{url}?sslmode=verify-ca"),
    ]);
    no_password(&bad, &sb);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("use sslmode=verify-full"),
        "{}",
        bad.stderr
    );
}

#[test]
fn bob_follows_alices_run_to_its_end_and_until_she_resolves_it() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();

    let run = waits_run(&alice, &api, "2s");
    // Bob starts following once the incident is in the store, while its run goes on.
    let id = shared_incident(&pg);
    let followed = bob.run(&["follow", &id, "-o", "json"]);
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let followed = ok(followed, &bob);
    let lines: Vec<Value> = followed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        alice.timeline(),
        "every event of her run, in order, then it ends"
    );

    // As her terminal showed it: the step, the wait and how the run ended.
    let shown = ok(bob.run(&["follow", &id]), &bob);
    assert!(shown.stdout.contains("Watch"), "{}", shown.stdout);

    // Until resolved: it goes on after the run, and ends with Alice's resolve.
    let waiting = bob
        .command(&["follow", &id, "--until", "resolved", "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ok(
        alice.run(&["resolve", "--incident", &id, "recovered"]),
        &alice,
    );
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "resolved");
    assert_eq!(last["user"], "alice");
}

#[test]
fn a_follower_reads_on_after_the_database_comes_back_and_misses_nothing() {
    let mut pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();

    let run = waits_run(&alice, &api, "5s");
    let id = shared_incident(&pg);
    let follower = bob
        .command(&["follow", &id, "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The database goes away while the run polls on, and comes back before it ends.
    pg.stop();
    let polls_then = events(&alice.timeline(), "wait_poll").len();
    let started = Instant::now();
    while events(&alice.timeline(), "wait_poll").len() < polls_then + 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the run stopped polling"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pg.restart();

    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let followed = follower.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&followed.stderr);
    assert!(followed.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("following again once it answers").count(),
        1,
        "{stderr}"
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&followed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, alice.timeline(), "every event once, in order");
}

/// Alice's run of the waits fixture in the background, its wait capped at `max_wait`.
pub(super) fn waits_run(
    alice: &Sandbox,
    api: &RecordingServer,
    max_wait: &str,
) -> std::process::Child {
    let endpoint = format!("api={}", api.url);
    alice
        .command(&[
            "run",
            fixture("waits.yaml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--max-wait",
            max_wait,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The id of the first incident the store holds, once there is one.
pub(super) fn shared_incident(pg: &Postgres) -> String {
    let started = Instant::now();
    loop {
        let shared = pg.psql_in("oncall", "SELECT id FROM incidents LIMIT 1");
        if !shared.is_empty() {
            return shared;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing shared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// "Manager if unresolved", on a team: Bob resolves Alice's incident from his machine while her
/// run goes on; her escalation `unless: resolved` falls due after that and is not said, because
/// the reminder reads the store too (Bob's resolve is not in her local timeline).
#[test]
fn bobs_resolve_on_his_machine_withholds_alices_unless_resolved_escalation() {
    let pg = Postgres::start();
    let (alice, bob) = alice_and_bob(&pg);
    let api = RecordingServer::start();
    let runbook = std::fs::read_to_string(fixture("waits.yaml"))
        .unwrap()
        .replace(
            "severity: P3\n",
            "severity: P3\nescalation:\n  - { after: 5s, to: Engineering manager, unless: resolved }\n",
        );
    let path = alice.write("escalating.yaml", &runbook);
    let endpoint = format!("api={}", api.url);
    let run = alice
        .command(&[
            "run",
            path.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--max-wait",
            "9s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = shared_incident(&pg);
    ok(
        bob.run(&["resolve", "--incident", &id, "failed over"]),
        &bob,
    );
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let timeline = alice.timeline();
    assert!(
        events(&timeline, "resolved").is_empty(),
        "Bob's resolve is in the store, not in Alice's file"
    );
    assert!(events(&timeline, "escalation_due").is_empty(), "{stdout}");
    let withheld = events(&timeline, "escalation_withheld");
    assert_eq!(withheld.len(), 1, "{stdout}");
    assert_eq!(withheld[0]["to"], "Engineering manager");
    let why = withheld[0]["why"].as_str().unwrap();
    assert!(
        why.starts_with("resolved at ") && why.ends_with(" by bob"),
        "{why}"
    );
    assert!(
        stdout.contains("no escalation to Engineering manager: resolved at"),
        "{stdout}"
    );
}
