//! Messages: shown between rules so a selection copies exactly the text, printed again by
//! `oncall message`, reading what the actions did; posted to a chat webhook (`notify`) and
//! PagerDuty (`pagerduty`) only with an approval, never in a dry run or a drill, their
//! credentials masked.
use super::support::{Sandbox, events, fixture, pty_exit_code, pty_sized};
use super::*;
use serde_json::json;

const ROUTING_KEY: &str = "R0UT1NGKEY0f2b9c4d6e8a";
const WEBHOOK_PATH: &str = "/services/T0000/B0000/XXXXwebhooksecretXXXX";

/// The loopback servers the messages fixture talks to.
struct Servers {
    api: RecordingServer,
    chat: RecordingServer,
    pagerduty: RecordingServer,
}

impl Servers {
    fn start() -> Servers {
        Servers {
            api: RecordingServer::start(),
            chat: RecordingServer::start(),
            pagerduty: RecordingServer::start(),
        }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            fixture("messages.yaml").to_str().unwrap().into(),
            "-e".into(),
            format!("api={}", self.api.url),
            "-e".into(),
            format!("chat={}{WEBHOOK_PATH}", self.chat.url),
            "-e".into(),
            format!("pagerduty={}", self.pagerduty.url),
            "-p".into(),
            format!("pagerduty_routing_key={ROUTING_KEY}"),
            "-p".into(),
            "pagerduty_dedup_key=dedup-42".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The texts the chat webhook received, in order.
    fn posted(&self) -> Vec<String> {
        self.chat
            .recorded()
            .iter()
            .map(|r| {
                assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", WEBHOOK_PATH));
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(
                    body.as_object().unwrap().keys().collect::<Vec<_>>(),
                    ["text"]
                );
                body["text"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

fn strip_ansi(text: &str) -> String {
    regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]")
        .unwrap()
        .replace_all(text, "")
        .into_owned()
}

/// The lines between the two rules under `message NAME, to paste:`, exactly as the terminal got them.
fn message_on_screen(screen: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.split("\r\n").collect();
    let header = format!("message {name}, to paste:");
    let at = lines
        .iter()
        .position(|l| strip_ansi(l).contains(&header))
        .unwrap_or_else(|| panic!("no {header:?} on screen:\n{screen}"));
    assert!(strip_ansi(lines[at + 1]).starts_with("────"), "{screen}");
    lines[at + 2..]
        .iter()
        .take_while(|l| !strip_ansi(l).starts_with("────"))
        .map(|l| l.to_string())
        .collect()
}

fn incident_id(sb: &Sandbox) -> String {
    sb.incidents()[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn a_message_on_screen_is_exactly_what_oncall_message_prints_and_what_notify_posts() {
    for columns in [80, 200] {
        copy_and_post_at(columns);
    }
}

fn copy_and_post_at(columns: u16) {
    let servers = Servers::start();
    let sb = Sandbox::new();
    let args = servers.args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = pty_sized(&sb, &args, columns);
    let prompt = "[y]es apply / [s]kip / [r]e-check / [a]bort run:";
    let mut screen = String::new();
    for (title, answer) in [
        ("Acknowledge the page in PagerDuty", "y"),
        ("Post the status to the incident channel", "s"),
        ("Restart the API", "y"),
        ("Post the resolution to the incident channel", "y"),
        ("Resolve the page in PagerDuty", "y"),
    ] {
        // At 80 columns the choices go on a line of their own.
        let found = s.expect(format!("{title}?")).unwrap();
        screen.push_str(&String::from_utf8_lossy(found.as_bytes()));
        let found = s.expect(prompt).unwrap();
        screen.push_str(&String::from_utf8_lossy(found.as_bytes()));
        s.send_line(answer).unwrap();
    }
    let rest = s.expect(expectrl::Eof).unwrap();
    screen.push_str(&String::from_utf8_lossy(rest.as_bytes()));
    assert_eq!(pty_exit_code(&mut s), 0, "{screen}");
    let id = incident_id(&sb);

    for name in ["status", "resolved"] {
        let printed = sb.run(&["message", &id, name]);
        assert_eq!(printed.code, 0, "{}", printed.stderr);
        let printed: Vec<&str> = printed.stdout.lines().collect();
        assert_eq!(
            message_on_screen(&screen, name),
            printed,
            "{name} at {columns} columns"
        );
    }
    let resolved = sb.run(&["message", &id, "resolved"]).stdout;
    assert_eq!(
        resolved,
        format!(
            "RESOLVED - P2\nResolution: Restart the API (HTTP 200 {{\"status\":\"ok\"}})\nRestart: applied\nMitigations applied: 1\nIncident: {id}\n"
        ),
        "the message reads the actions applied, the mitigations among them and the incident id"
    );
    // The skipped post was not sent; the approved one posted the text shown.
    assert_eq!(servers.posted(), vec![resolved.trim_end().to_string()]);

    let pages: Vec<Value> = servers
        .pagerduty
        .recorded()
        .iter()
        .map(|r| {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                ("POST", "/v2/enqueue")
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect();
    assert_eq!(
        pages,
        vec![
            json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "dedup-42"}),
            json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "dedup-42"}),
        ]
    );
    let timeline = std::fs::read_to_string(&sb.incidents()[0]).unwrap();
    for secret in [ROUTING_KEY, WEBHOOK_PATH, "XXXXwebhooksecretXXXX"] {
        assert!(!screen.contains(secret), "{secret} on screen:\n{screen}");
        assert!(!timeline.contains(secret), "{secret} in the timeline");
    }
    let planned = sb.timeline();
    let plans: Vec<&Value> = events(&planned, "action_planned")
        .into_iter()
        .filter(|e| e["action"] == "resolve_page")
        .collect();
    assert_eq!(plans[0]["plan"]["body"]["routing_key"], "***", "{plans:?}");
}

#[test]
fn notify_and_pagerduty_send_nothing_in_a_dry_run_and_nothing_without_an_answer() {
    let servers = Servers::start();
    let sb = Sandbox::new();
    let args = servers.args(&["--dry-run"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = sb.run(&args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(servers.chat.recorded().is_empty());
    assert!(servers.pagerduty.recorded().is_empty());
    assert!(
        ran.stdout.contains("posts message 'status' to 127.0.0.1:"),
        "the plan shows the text and the host: {}",
        ran.stdout
    );
    assert!(!ran.stdout.contains(WEBHOOK_PATH), "{}", ran.stdout);

    // No terminal and no --yes: the run stops at the first action, having sent nothing.
    let args = servers.args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = sb.run(&args);
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert!(servers.chat.recorded().is_empty());
    assert!(servers.pagerduty.recorded().is_empty());
}

#[test]
fn the_bundled_runbooks_post_their_messages_in_a_drill_without_sending_them() {
    let chat = RecordingServer::start();
    let pagerduty = RecordingServer::start();
    let sb = Sandbox::new();
    let channel = format!("incident_channel={}{WEBHOOK_PATH}", chat.url);
    let pd = format!("pagerduty={}", pagerduty.url);
    let key = format!("pagerduty_routing_key={ROUTING_KEY}");
    let ran = sb.run(&[
        "drill",
        "error-budget",
        "--scenario",
        "gpu-saturation",
        "--yes",
        "-e",
        &channel,
        "-e",
        &pd,
        "-p",
        &key,
        "-p",
        "pagerduty_dedup_key=dedup-42",
    ]);
    assert!(ran.code == 0 || ran.code == 1, "{}", ran.stderr);
    assert!(chat.recorded().is_empty() && pagerduty.recorded().is_empty());
    let timeline = sb.timeline();
    let kinds: Vec<&str> = events(&timeline, "action_planned")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"notify") && kinds.contains(&"pagerduty"),
        "{kinds:?}"
    );
    for decided in events(&timeline, "action_decided") {
        assert_eq!(decided["decision"], "rehearsed", "{decided}");
    }
    assert!(!ran.stdout.contains(ROUTING_KEY) && !ran.stdout.contains(WEBHOOK_PATH));
}
