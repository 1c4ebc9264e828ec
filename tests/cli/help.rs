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
    for sub in ["run", "show", "drill"] {
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
