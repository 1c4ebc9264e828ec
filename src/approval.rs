//! Who may say yes to an action. Applying an action takes an `Approval`, and only the policies
//! here can make one: a mutation without an approval does not compile.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// Proof that an action was approved. It cannot be built outside this module, so code that
/// applies an action without asking a policy does not compile:
///
/// ```compile_fail,E0451
/// let forged = oncall::approval::Approval { _sealed: () };
/// ```
#[derive(Debug)]
pub struct Approval {
    _sealed: (),
}

#[derive(Debug)]
pub enum Decision {
    Apply(Approval),
    /// Not yet: run the step's checks again and ask once more.
    Recheck,
    /// Not this target but the one typed (checked by the action's `Pick`): plan it and ask again.
    Pick(String),
    Other(DecisionKind),
}

/// What the engineer may type at the prompt in place of the planned target (another pid from
/// the table). `check` returns the target, or the refusal in words, and the prompt asks again.
#[derive(Clone)]
pub struct Pick {
    /// For the choices: `or a pid from the table`.
    pub what: String,
    #[allow(clippy::type_complexity)]
    pub check: std::sync::Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Ask on the terminal before each action.
    Prompt,
    /// `--yes`: approve every action offered.
    AssumeYes,
    /// `--dry-run`: show every action as it would be sent; send none. `server`: Kubernetes writes
    /// are planned with the API server's answer to them under dryRun=All (nothing persisted).
    DryRun { server: bool },
    /// A drill: rehearse the decision (ask when there is a terminal); never send.
    Drill { ask: bool },
    /// No terminal and no `--yes`: stop before the first question.
    NoTerminal,
}

impl Policy {
    /// Who decided, for the timeline; on a production context, how the write was confirmed.
    pub fn by(self, production: Option<&str>) -> String {
        match (self, production) {
            (Policy::Prompt, Some(context)) => format!("prompt, typed the context name {context}"),
            (Policy::AssumeYes, Some(context)) => {
                format!("--yes, on production context {context} without typing its name")
            }
            _ => self.word().into(),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Policy::Prompt => "prompt",
            Policy::AssumeYes => "--yes",
            Policy::DryRun { server: false } => "--dry-run",
            Policy::DryRun { server: true } => "--dry-run=server",
            Policy::Drill { ask: true } => "drill prompt",
            Policy::Drill { ask: false } => "drill",
            Policy::NoTerminal => "no terminal",
        }
    }

    /// For an action that may have been applied already: only an engineer's explicit answer
    /// sends it again, never `--yes`.
    pub async fn decide_unconfirmed(
        self,
        question: String,
        production: Option<&str>,
        pick: Option<Pick>,
    ) -> Decision {
        match self {
            Policy::AssumeYes => Decision::Other(DecisionKind::Unconfirmed),
            other => other.decide(question, production, pick).await,
        }
    }

    /// `production`: the context's name when the write goes to a production cluster; on a
    /// terminal only typing that name approves it (`--yes` approves without, and says so in `by`).
    /// `pick`: what else the engineer may type, on a terminal.
    pub async fn decide(
        self,
        question: String,
        production: Option<&str>,
        pick: Option<Pick>,
    ) -> Decision {
        let confirm = production.map(str::to_string);
        match self {
            Policy::AssumeYes => Decision::Apply(Approval { _sealed: () }),
            Policy::DryRun { .. } => Decision::Other(DecisionKind::WouldSend),
            Policy::NoTerminal => Decision::Other(DecisionKind::NoTerminal),
            Policy::Drill { ask: false } => Decision::Other(DecisionKind::Rehearsed),
            Policy::Drill { ask: true } => match ask(question, confirm, pick, "rehearse").await {
                Answer::Yes => Decision::Other(DecisionKind::Rehearsed),
                Answer::Recheck => Decision::Recheck,
                Answer::Pick(target) => Decision::Pick(target),
                Answer::Skip => Decision::Other(DecisionKind::Skipped),
                Answer::Abort => Decision::Other(DecisionKind::Aborted),
            },
            Policy::Prompt => match ask(question, confirm, pick, "apply").await {
                Answer::Yes => Decision::Apply(Approval { _sealed: () }),
                Answer::Recheck => Decision::Recheck,
                Answer::Pick(target) => Decision::Pick(target),
                Answer::Skip => Decision::Other(DecisionKind::Skipped),
                Answer::Abort => Decision::Other(DecisionKind::Aborted),
            },
        }
    }
}

enum Answer {
    Yes,
    Skip,
    Recheck,
    Abort,
    Pick(String),
}

/// Reads one answer from the terminal in cooked mode, so Ctrl-C stays a signal. With `confirm`
/// (a production context's name) only that name, typed, applies. With `pick`, anything else
/// typed is offered to it. `verb`: what yes does (`apply`; in a drill, `rehearse`).
async fn ask(
    question: String,
    confirm: Option<String>,
    pick: Option<Pick>,
    verb: &'static str,
) -> Answer {
    let mut choices = match &confirm {
        Some(name) => format!("type {name} to {verb} / [s]kip / [r]e-check / [a]bort run:"),
        None => format!("[y]es {verb} / [s]kip / [r]e-check / [a]bort run:"),
    };
    if let Some(pick) = &pick {
        choices = format!("{} {}:", choices.trim_end_matches(':'), pick.what);
    }
    tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        let mut stderr = std::io::stderr();
        // The choices go on a line of their own when the question and they do not fit together.
        let fits = console::Term::stderr()
            .size_checked()
            .filter(|(_, columns)| *columns > 0)
            .is_none_or(|(_, columns)| {
                console::measure_text_width(&question) + choices.len() + 2 <= columns as usize
            });
        let separator = if fits { " " } else { "\n    " };
        loop {
            let _ = write!(stderr, "{question}{separator}{choices} ");
            let _ = stderr.flush();
            let mut line = String::new();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = writeln!(stderr, "\n  no answer (input closed): aborting the run");
                    return Answer::Abort;
                }
                Ok(_) => {}
            }
            let typed = line.trim();
            if let Some(name) = &confirm {
                if typed == name {
                    return Answer::Yes;
                }
                if matches!(typed.to_ascii_lowercase().as_str(), "y" | "yes" | "apply") {
                    let _ = writeln!(
                        stderr,
                        "  {name} is a production context: type its name to {verb}, or s, r or a"
                    );
                    continue;
                }
            }
            match typed.to_ascii_lowercase().as_str() {
                "y" | "yes" | "apply" | "rehearse" if confirm.is_none() => return Answer::Yes,
                "s" | "skip" | "n" | "no" => return Answer::Skip,
                "r" | "re-check" | "recheck" => return Answer::Recheck,
                "a" | "abort" | "q" | "quit" => return Answer::Abort,
                _ if pick.is_some() => {
                    let check = &pick.as_ref().expect("checked just above").check;
                    match check(typed) {
                        Ok(target) => return Answer::Pick(target),
                        Err(refused) => {
                            let _ = writeln!(stderr, "  {refused}");
                        }
                    }
                }
                other => {
                    let apply = confirm.as_deref().unwrap_or("y");
                    let _ = writeln!(
                        stderr,
                        "  '{other}' is not an answer: type {apply}, s, r or a"
                    );
                }
            }
        }
    })
    .await
    .unwrap_or(Answer::Abort)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approved,
    Skipped,
    Aborted,
    /// Dry-run: shown as it would be sent, not sent.
    WouldSend,
    /// Drill: the engineer's rehearsed answer; nothing is ever sent.
    Rehearsed,
    /// No terminal to ask and no `--yes`: the run stops here.
    NoTerminal,
    /// May have been applied by a run that was killed: `--yes` does not send it again.
    Unconfirmed,
}
