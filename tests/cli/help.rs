//! Help, exit codes and shell completions.

use super::*;

#[test]
fn completions_are_current_and_complete_runbook_ids() {
    let sb = Sandbox::new();
    for (shell, file) in [
        ("bash", "oncall.bash"),
        ("zsh", "_oncall"),
        ("fish", "oncall.fish"),
        ("elvish", "oncall.elv"),
        ("powershell", "_oncall.ps1"),
    ] {
        let generated = sb.run(&["completions", shell]).stdout;
        let committed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("completions")
                .join(file),
        )
        .unwrap();
        assert_eq!(
            generated, committed,
            "completions/{file} is stale: run `just completions`"
        );
    }
    // Tab after `oncall run e`: the bundled id, and a user runbook from ./runbooks.
    sb.write(
        "runbooks/etcd-slow.yaml",
        "id: etcd-slow\ntitle: etcd is slow\nseverity: P2\nsteps:\n  - id: s\n    guidance: look\n",
    );
    for sub in ["run", "show", "drill", "doctor"] {
        let mut cmd = sb.command(&["--", "oncall", sub, "e"]);
        cmd.env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "2")
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_IFS", "\n");
        let out = cmd.output().unwrap();
        let candidates: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            candidates,
            vec!["error-budget", "etcd-slow"],
            "after `oncall {sub} e`"
        );
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let sb = Sandbox::new();
    let help = sb.run(&["--help"]);
    assert_eq!(help.code, 0);
    insta::assert_snapshot!("help", help.stdout);
    let run_help = sb.run(&["run", "--help"]);
    insta::assert_snapshot!("run_help", run_help.stdout);
    let bad = sb.run(&["run"]);
    assert_eq!(bad.code, 2, "bad usage exits 2");
}

#[test]
fn dash_h_is_short_and_dash_dash_help_is_whole_with_the_globals_under_one_heading() {
    let sb = Sandbox::new();
    for sub in ["run", "resume", "note", "incidents", "approve", "import"] {
        let short = sb.run(&[sub, "-h"]);
        assert_eq!(short.code, 0);
        let lines = short.stdout.lines().count();
        assert!(
            lines <= 40,
            "oncall {sub} -h: {lines} lines\n{}",
            short.stdout
        );
        assert!(
            !short.stdout.contains("--store") && !short.stdout.contains("Global options"),
            "oncall {sub} -h: {}",
            short.stdout
        );
        let long = sb.run(&[sub, "--help"]);
        assert!(
            long.stdout.contains("Global options:") && long.stdout.contains("--store"),
            "oncall {sub} --help: {}",
            long.stdout
        );
    }
    let top = sb.run(&["-h"]);
    assert!(!top.stdout.contains("Exit codes"), "{}", top.stdout);
    assert!(sb.run(&["--help"]).stdout.contains("Exit codes"));
}

/// What `oncall` answers when a shell asks for completions of `words` (the last is the one under
/// the cursor), the way each shell's registration script asks.
fn complete(sb: &Sandbox, shell: &str, words: &[&str]) -> Vec<String> {
    let mut args = vec!["--"];
    args.extend_from_slice(words);
    let mut cmd = sb.command(&args);
    cmd.env("COMPLETE", shell).env("_CLAP_IFS", "\n");
    if shell != "fish" {
        cmd.env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string());
    }
    if shell == "bash" {
        cmd.env("_CLAP_COMPLETE_COMP_TYPE", "9");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{shell} {words:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| match shell {
            "zsh" => l.split(':').next().unwrap().to_string(),
            "fish" => l.split('\t').next().unwrap().to_string(),
            _ => l.to_string(),
        })
        .filter(|c| !c.starts_with('-'))
        .collect()
}

#[test]
fn completions_know_scenarios_params_incidents_alerts_and_contexts() {
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: \"https://127.0.0.1:1\" }\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: prod-eu\n  context: { cluster: c, user: u }\n- name: staging\n  context: { cluster: c, user: u }\ncurrent-context: staging\n";
    let sb = Sandbox::new();
    let path = sb.write("kubeconfig", kubeconfig);
    let sb = sb.env("KUBECONFIG", path.to_str().unwrap());
    for _ in 0..2 {
        let drill = sb.run(&["drill", "error-budget", "--scenario", "all-clear"]);
        assert_eq!(drill.code, 0, "{}", drill.stderr);
    }
    let ids: Vec<String> = sb
        .incidents()
        .iter()
        .rev()
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    for shell in ["bash", "zsh", "fish"] {
        assert_eq!(
            complete(
                &sb,
                shell,
                &["oncall", "drill", "error-budget", "--scenario", ""]
            ),
            [
                "all-clear",
                "db-pool-exhausted",
                "driver-failure",
                "gpu-saturation",
                "gpu-saturation-relieved",
                "nats-outage",
                "queue-overflow"
            ],
            "{shell}: --scenario"
        );
        assert_eq!(
            complete(&sb, shell, &["oncall", "run", "gpu-oom", "-p", "gpu_mem"]),
            ["gpu_mem_max_pct=", "gpu_mem_warn_pct="],
            "{shell}: -p"
        );
        assert_eq!(
            complete(&sb, shell, &["oncall", "timeline", ""]),
            ids,
            "{shell}: incidents, newest first"
        );
        assert_eq!(
            complete(&sb, shell, &["oncall", "run", "--alert", "VideoP"]),
            ["VideoProcessingErrorBudgetExhausted"],
            "{shell}: --alert"
        );
        assert_eq!(
            complete(&sb, shell, &["oncall", "--context", ""]),
            ["prod-eu", "staging"],
            "{shell}: --context"
        );
    }
}

#[test]
fn resume_completes_only_what_it_would_take_and_message_completes_the_runbook_s_messages() {
    let sb = Sandbox::new().env("ONCALL_USER", "tester");
    sb.write(
        "runbooks/talk.yaml",
        "id: talk\ntitle: Talk\nseverity: P3\nsteps:\n  - id: s\n    guidance: look\nmessages:\n  status_update: \"all fine\"\n  all_clear: \"done\"\n",
    );
    let opened = |args: &[&str]| {
        let ran = sb.run(args);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        sb.incidents()
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
            .max()
            .unwrap()
    };
    let first = opened(&["run", "talk"]);
    let resolved = sb.run(&["resolve", "--incident", &first, "fine"]);
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    let open = opened(&["run", "talk", "--new"]);
    let _dry_run = opened(&["run", "talk", "--new", "--dry-run"]);

    for shell in ["bash", "zsh", "fish"] {
        let offered = complete(&sb, shell, &["oncall", "resume", ""]);
        assert_eq!(
            offered,
            vec![open.clone()],
            "{shell}: only the open live one"
        );
        let names = complete(&sb, shell, &["oncall", "message", &open, ""]);
        assert_eq!(names, vec!["all_clear", "status_update"], "{shell}");
        let first_word = complete(&sb, shell, &["oncall", "message", ""]);
        assert!(
            first_word.contains(&"status_update".to_string()) && first_word.contains(&open),
            "{shell}: {first_word:?}"
        );
    }
}
