//! `oncall completions SHELL`: the registration script for a shell. Completion itself is
//! answered by `oncall` at the time you press Tab, so runbook ids from every folder complete.

use crate::cli::Shell;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

pub const VAR: &str = "COMPLETE";

pub fn script(shell: Shell) -> String {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    };
    let mut buf = Vec::new();
    completer
        .write_registration(VAR, "oncall", "oncall", "oncall", &mut buf)
        .expect("writing to memory");
    String::from_utf8(buf).expect("registration scripts are UTF-8")
}

pub fn file_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "oncall.bash",
        Shell::Zsh => "_oncall",
        Shell::Fish => "oncall.fish",
        Shell::Elvish => "oncall.elv",
        Shell::Powershell => "_oncall.ps1",
    }
}

pub fn run(shell: Shell) -> anyhow::Result<i32> {
    crate::view::print_out(&script(shell))?;
    Ok(0)
}
