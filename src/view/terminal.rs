//! The terminal view: a header, a spinner per running check, a table per step, plans and a
//! summary. Progress goes to stderr; results go to `out` (stdout, or stderr under --output json).

use super::clock;
use crate::approval::DecisionKind;
use crate::backends::reading::Verdict;
use crate::engine::event::{Event, EventKind, Mode, Sink, WaitOutcome};
use crate::engine::observation::Observation;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The columns a live line takes before its words: `  ⠁  12s `.
const LIVE_PREFIX: usize = 9;

/// A live line's words, cut with `…` so the line stays one column short of the terminal: it
/// never wraps, so it is always cleared whole.
fn live_words(text: &str) -> String {
    match console::Term::stderr().size_checked() {
        Some((_, columns)) => {
            let room = (columns as usize).saturating_sub(LIVE_PREFIX + 1);
            console::truncate_str(text, room, "…").into_owned()
        }
        None => text.to_string(),
    }
}

/// The width of the rules around a message: they fit an 80-column terminal.
const RULE: usize = 72;

pub struct TerminalView {
    out: Box<dyn Write + Send>,
    color: bool,
    timeline: Option<PathBuf>,
    progress: MultiProgress,
    spinners: BTreeMap<String, ProgressBar>,
    finished: Vec<Observation>,
    step_count: usize,
    wait_bar: Option<ProgressBar>,
    actions: Vec<String>,
    latest: BTreeMap<String, Observation>,
    /// The messages shown, and the incident they belong to, for the summary.
    messages: Vec<String>,
    incident: String,
    fit: super::Fit,
    /// The polls of the wait going on, and what its live line says.
    polls: super::polls::Polls,
    wait_words: String,
    /// What the wait going on waits for, as the runbook says: `value < 1 (up to 30m)`.
    wait_plan: String,
    /// The checks of the running step, in the runbook's order.
    order: Vec<String>,
    /// The unreachable systems already said, each on a line of its own.
    unreachable: std::collections::BTreeSet<String>,
}

impl TerminalView {
    pub fn new(
        out: Box<dyn Write + Send>,
        color: bool,
        fit: super::Fit,
        show_progress: bool,
        timeline: Option<PathBuf>,
        step_count: usize,
    ) -> Self {
        let target = if show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        TerminalView {
            out,
            color,
            timeline,
            progress: MultiProgress::with_draw_target(target),
            spinners: BTreeMap::new(),
            finished: Vec::new(),
            step_count,
            wait_bar: None,
            actions: Vec::new(),
            latest: BTreeMap::new(),
            messages: Vec::new(),
            incident: String::new(),
            fit,
            polls: Default::default(),
            wait_words: String::new(),
            wait_plan: String::new(),
            order: Vec::new(),
            unreachable: Default::default(),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn verdict(&self, v: Verdict) -> String {
        let code = match v {
            Verdict::Ok => "32",
            Verdict::Warn => "33",
            Verdict::Fail => "31;1",
            Verdict::Error => "35;1",
            Verdict::Skipped => "2",
        };
        self.paint(v.as_str(), code)
    }

    fn line(&mut self, text: impl AsRef<str>) {
        // Print above any live spinners so neither garbles the other.
        let text = text.as_ref();
        let out = &mut self.out;
        self.progress.suspend(|| {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        });
    }

    /// A paragraph word-wrapped to the screen (no word is split), `first` before its first line
    /// and `rest` before the others; as one line where there is no width to fit.
    fn wrapped(&mut self, first: &str, rest: &str, text: &str) {
        self.wrapped_painted(first, rest, text, None);
    }

    /// `wrapped`, each line painted with `style` (an SGR code) when there is one.
    fn wrapped_painted(&mut self, first: &str, rest: &str, text: &str, style: Option<&str>) {
        let paint = |this: &Self, l: String| match style {
            Some(style) => this.paint(&l, style),
            None => l,
        };
        let Some(width) = self.fit.columns() else {
            self.line(paint(self, format!("{first}{text}")));
            return;
        };
        let options = textwrap::Options::new(width as usize)
            .initial_indent(first)
            .subsequent_indent(rest)
            .break_words(false)
            .word_separator(textwrap::WordSeparator::AsciiSpace)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        let lines: Vec<String> = textwrap::wrap(text, options)
            .into_iter()
            .map(|l| l.into_owned())
            .collect();
        for l in lines {
            self.line(paint(self, l));
        }
    }

    /// A message between two rules, its lines as they are: a selection copies exactly the text.
    fn message(&mut self, header: String, text: &str) {
        let rule = self.paint(&"─".repeat(RULE), "2");
        self.line(header);
        self.line(&rule);
        self.line(text);
        self.line(&rule);
    }

    fn table(&mut self) {
        let mut observations = std::mem::take(&mut self.finished);
        // Keep the runbook's order of checks, not the order they happened to finish in.
        let order = std::mem::take(&mut self.order);
        observations.sort_by_key(|o| order.iter().position(|id| *id == o.check));
        let screen = super::tables::Screen {
            width: self.fit.columns(),
            color: self.color,
        };
        // Each system that did not answer is said once, before the first table that met it;
        // its rows then say only that.
        let mut shown = observations.clone();
        for o in &mut shown {
            if let Some(said) = super::unreachable::said(o) {
                if self.unreachable.insert(said.key) {
                    let first = format!("   {} ", self.paint("✗", "31;1"));
                    self.wrapped(&first, "     ", &said.line);
                }
                o.reason = Some(super::unreachable::ROW_NOTE.into());
            }
        }
        let text = super::tables::render(&shown, &screen);
        for o in observations {
            self.latest.insert(o.check.clone(), o);
        }
        self.line(text);
    }

    fn summary(&mut self, exit_code: i32, outcome: &str) {
        let mut counts: BTreeMap<Verdict, usize> = BTreeMap::new();
        for o in self.latest.values() {
            *counts.entry(o.verdict).or_default() += 1;
        }
        let found = [Verdict::Ok, Verdict::Warn, Verdict::Fail, Verdict::Error]
            .iter()
            .map(|v| {
                format!(
                    "{} {}",
                    counts.get(v).copied().unwrap_or(0),
                    self.verdict(*v)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.line(String::new());
        self.wrapped_painted(
            "Summary: ",
            "         ",
            &format!("{outcome} (exit {exit_code})"),
            Some("1"),
        );
        self.line(format!("  found:    {found}"));
        // Failures first, then warnings, then what could not be read.
        let mut bad: Vec<&Observation> = self
            .latest
            .values()
            .filter(|o| o.verdict >= Verdict::Warn)
            .collect();
        bad.sort_by_key(|o| match o.verdict {
            Verdict::Fail => 0,
            Verdict::Warn => 1,
            _ => 2,
        });
        let bad: Vec<String> = bad
            .into_iter()
            .map(|o| {
                format!(
                    "{} [{}] {}",
                    o.title,
                    o.verdict.as_str(),
                    o.reason.clone().unwrap_or_default()
                )
            })
            .collect();
        for b in bad {
            self.wrapped("            ", "              ", &b);
        }
        if self.actions.is_empty() {
            self.line("  done:     no action taken");
        } else {
            let actions = self.actions.clone();
            for (i, a) in actions.iter().enumerate() {
                let first = if i == 0 {
                    "  done:     "
                } else {
                    "            "
                };
                self.wrapped(first, "              ", a);
            }
        }
        if !self.messages.is_empty() {
            let text = format!(
                "{} (again, with the latest findings: oncall message {} NAME)",
                self.messages.join(", "),
                self.incident
            );
            self.wrapped("  messages: ", "            ", &text);
        }
        if let Some(path) = self.timeline.clone() {
            let incomplete = if exit_code == crate::engine::EXIT_TIMELINE_INCOMPLETE {
                " (INCOMPLETE: events after the failure above are missing)"
            } else {
                ""
            };
            let text = format!("{}{incomplete}", path.display());
            self.wrapped("  timeline: ", "    ", &text);
        }
    }

    /// Takes in, without showing them, the events of an incident before a resumed run: its
    /// summary then covers the whole incident (what was found and done before, and since).
    pub fn remember(&mut self, events: &[Event]) {
        for event in events {
            let event = &printable(event);
            match &event.kind {
                EventKind::CheckFinished { observation, .. }
                | EventKind::WaitPoll { observation, .. } => {
                    self.latest
                        .insert(observation.check.clone(), observation.clone());
                }
                EventKind::ActionDecided {
                    action,
                    decision,
                    by,
                    user,
                    ..
                } if *decision != DecisionKind::Approved => {
                    let words = decided(decision, by, user);
                    self.actions.push(format!("{action}: {words}"));
                }
                EventKind::ActionFinished {
                    action, ok, detail, ..
                } => self.actions.push(applied(action, *ok, detail)),
                EventKind::Message { name, .. } => {
                    if !self.messages.contains(name) {
                        self.messages.push(name.clone());
                    }
                    self.incident = event.incident.clone();
                }
                _ => {}
            }
        }
    }

    fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                .expect("static template"),
        );
        bar.set_message(live_words(&message));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    fn clear_progress(&mut self) {
        for (_, bar) in std::mem::take(&mut self.spinners) {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.wait_bar.take() {
            bar.finish_and_clear();
        }
        let _ = self.progress.clear();
    }
}

/// An action's line in the summary's `done:`.
fn applied(action: &str, ok: bool, detail: &str) -> String {
    format!(
        "{action}: {} — {detail}",
        if ok { "applied" } else { "failed" }
    )
}

/// What an engineer's decision on an action came to, in words.
fn decided(decision: &DecisionKind, by: &str, user: &str) -> String {
    match decision {
                    DecisionKind::Approved if !user.is_empty() => {
                        format!("approved by {user} ({by})")
                    }
                    DecisionKind::Approved => format!("approved ({by})"),
                    DecisionKind::Skipped => "skipped".into(),
                    DecisionKind::Aborted => "aborted the run".into(),
                    DecisionKind::WouldSend => "would send (dry-run): not sent".into(),
                    DecisionKind::Rehearsed => "would apply (drill): not sent".into(),
                    DecisionKind::NoTerminal => "needs an answer, and there is no terminal: stopping here. Rerun with --yes to apply or --dry-run to rehearse".into(),
                    DecisionKind::Unconfirmed => "not sent again: it may have been applied, and --yes does not repeat it; stopping here. Resume on a terminal to decide".into(),
                }
}

/// The event with control characters in its text replaced, so output a check read (a log line,
/// an HTTP body) cannot move the cursor, retitle the window or clear the screen.
fn printable(event: &Event) -> Event {
    let Ok(mut value) = serde_json::to_value(event) else {
        return event.clone();
    };
    crate::sanitize::value(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| event.clone())
}

impl Sink for TerminalView {
    fn emit(&mut self, event: &Event) {
        let event = &printable(event);
        match &event.kind {
            EventKind::IncidentOpened {
                runbook,
                title,
                severity,
                response_time,
                mode,
                origin,
                escalation,
                scenario,
                user,
                targets,
                alert,
                server_dry_run,
                ..
            } => {
                let mode = match mode {
                    Mode::Live => String::new(),
                    Mode::DryRun if *server_dry_run => self.paint(
                        "  [dry-run=server: Kubernetes writes go with dryRun=All, nothing is persisted; nothing else is sent]",
                        "36;1",
                    ),
                    Mode::DryRun => self.paint("  [dry-run: nothing will be sent]", "36;1"),
                    Mode::Drill => self.paint(
                        &format!("  [drill: {}]", scenario.clone().unwrap_or_default()),
                        "36;1",
                    ),
                };
                let respond = response_time
                    .as_ref()
                    .map(|r| format!(" (respond within {r})"))
                    .unwrap_or_default();
                let heading = format!(
                    "{} {}{respond}{mode}",
                    self.paint(&format!("INCIDENT {}", event.incident), "1"),
                    self.paint(severity, "31;1")
                );
                self.wrapped("", "  ", &heading);
                self.wrapped("  ", "  ", title);
                let source = format!(
                    "runbook {runbook} ({origin}) · opened {} by {user}",
                    clock(&event.ts)
                );
                self.wrapped("  ", "    ", &source);
                for (backend, target) in targets {
                    let first = format!("  {backend}: ");
                    self.wrapped(&first, "      ", target);
                }
                if let Some(alert) = alert {
                    let labels: Vec<String> = alert["labels"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| *k != "alertname")
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let text = format!(
                        "{} {{{}}} firing since {}",
                        alert["name"].as_str().unwrap_or_default(),
                        labels.join(", "),
                        alert["starts_at"].as_str().unwrap_or_default()
                    );
                    self.wrapped("  opened from alert ", "    ", &text);
                }
                for (i, d) in escalation.iter().enumerate() {
                    let first = format!(
                        "  {}{}  ",
                        if i == 0 { "escalate: " } else { "          " },
                        clock(&d.at)
                    );
                    let when = crate::engine::reminders::conditions(
                        d.unless.map(|u| u.word()),
                        d.only_if.as_deref(),
                    );
                    self.wrapped(&first, "                   ", &format!("{}{when}", d.to));
                }
            }
            EventKind::StepStarted {
                title,
                guidance,
                number,
                ..
            } => {
                self.line(String::new());
                self.line(self.paint(&format!("── {number}/{} {title}", self.step_count), "1"));
                if let Some(guidance) = guidance {
                    for l in guidance.trim().lines() {
                        self.wrapped("   ", "   ", l);
                    }
                }
            }
            EventKind::StepSkipped { reason, .. } => {
                let first = format!("   {} ", self.verdict(Verdict::Skipped));
                self.wrapped(&first, "     ", reason);
            }
            EventKind::CheckStarted { check, title, .. } => {
                self.order.push(check.clone());
                let bar = self.spinner(title.clone());
                self.spinners.insert(check.clone(), bar);
            }
            EventKind::CheckFinished { observation, .. } => {
                if let Some(bar) = self.spinners.remove(&observation.check) {
                    bar.finish_and_clear();
                }
                self.finished.push(observation.clone());
                if self.spinners.is_empty() {
                    self.table();
                }
            }
            EventKind::ActionNotOffered { action, reason, .. } => {
                let first = format!("   {} action {action}: ", self.verdict(Verdict::Skipped));
                self.wrapped(&first, "     ", reason);
            }
            EventKind::ActionPlanned { title, plan, .. } => {
                let first = format!("   {} ", self.paint("action", "1"));
                self.wrapped(&first, "          ", title);
                for l in plan.request.lines() {
                    self.wrapped("     ", "       ", l);
                }
                if let Some(on) = &plan.on {
                    self.wrapped("     on ", "        ", on);
                }
                if let Some(missing) = &plan.missing {
                    let first = format!("     {} ", self.paint("✗", "31;1"));
                    self.wrapped(&first, "       ", missing);
                }
                match &plan.server {
                    Some(server) if server.accepted => {
                        let first = format!("     {} ", self.paint("✓", "32;1"));
                        let said = format!(
                            "the API server accepted it (dryRun=All, not persisted): {}",
                            server.answer
                        );
                        self.wrapped(&first, "       ", &said);
                    }
                    Some(server) => {
                        let first = format!("     {} ", self.paint("✗", "31;1"));
                        let said =
                            format!("the API server refused it (dryRun=All): {}", server.answer);
                        self.wrapped(&first, "       ", &said);
                    }
                    None => {}
                }
                if let Some(body) = &plan.body {
                    let pretty = serde_json::to_string_pretty(body).unwrap_or_default();
                    for l in pretty.lines() {
                        let depth = l.len() - l.trim_start().len();
                        let first = format!("     {}", &l[..depth]);
                        let rest = format!("{first}    ");
                        self.wrapped(&first, &rest, l.trim_start());
                    }
                }
                for change in &plan.changes {
                    let rest = format!(
                        "     {}",
                        " ".repeat(change.len() - change.trim_start().len())
                    );
                    self.wrapped("     ", &rest, change);
                }
            }
            EventKind::ActionDecided {
                action,
                decision,
                by,
                user,
                ..
            } => {
                let words = decided(decision, by, user);
                self.line(format!("     → {words}"));
                if *decision != DecisionKind::Approved {
                    self.actions.push(format!("{action}: {words}"));
                }
            }
            EventKind::ActionStarted { .. } => {}
            EventKind::ActionUnconfirmed { started, .. } => {
                let words = format!(
                    "may have been applied at {} (no result recorded): planned again against the system as it is now",
                    super::clock_seconds(started)
                );
                self.line(format!("   {}", self.paint(&format!("⚠ {words}"), "33;1")));
            }
            EventKind::Resumed {
                user,
                host,
                from_step,
                changed,
                took_over_from,
            } => {
                self.line(format!(
                    "  {} by {user} on {host} at {}, from step {from_step}",
                    self.paint("resumed", "1"),
                    clock(&event.ts)
                ));
                if let Some(from) = took_over_from {
                    self.line(format!("  took it over from {from}"));
                }
                if !changed.is_empty() {
                    self.line(format!(
                        "  {}",
                        self.paint(
                            &format!(
                                "the runbook changed since it opened (--force): {}",
                                changed.join(", ")
                            ),
                            "33;1"
                        )
                    ));
                }
            }
            EventKind::ActionFinished {
                action,
                ok,
                detail,
                millis,
                ..
            } => {
                let status = if *ok {
                    self.paint("done", "32")
                } else {
                    self.paint("failed", "31;1")
                };
                let first = format!("     {status}: ");
                self.wrapped(&first, "       ", &format!("{detail} ({millis} ms)"));
                self.actions.push(applied(action, *ok, detail));
            }
            EventKind::WaitStarted {
                check,
                until,
                every_ms,
                timeout_ms,
                runbook_timeout_ms,
                once,
                ..
            } => {
                let human = |ms: u64| crate::backends::humanize(Duration::from_millis(ms));
                let up_to = match runbook_timeout_ms {
                    Some(written) => format!(
                        "up to {}; a drill polls every {}",
                        human(*written),
                        human(*every_ms)
                    ),
                    None => format!("up to {}", human(*timeout_ms)),
                };
                self.wait_plan = format!("{until} ({up_to})");
                self.wait_words = if *once {
                    format!("polling {check} once: {until}")
                } else {
                    format!("waiting for {check}: {until} ({up_to}) — Ctrl-C stops waiting")
                };
                let bar = self.spinner(self.wait_words.clone());
                self.wait_bar = Some(bar);
                self.polls = super::polls::Polls::default();
            }
            EventKind::WaitPoll { observation, .. } => {
                self.polls.poll(observation);
                if let Some(bar) = &self.wait_bar {
                    bar.set_message(live_words(&format!(
                        "{} · last {} ({})",
                        self.wait_words,
                        observation.display_value(),
                        observation.verdict.as_str()
                    )));
                }
                self.latest
                    .insert(observation.check.clone(), observation.clone());
            }
            EventKind::WaitFinished {
                check,
                outcome,
                elapsed_ms,
                ..
            } => {
                if let Some(bar) = self.wait_bar.take() {
                    bar.finish_and_clear();
                }
                let code = match outcome {
                    WaitOutcome::Met => "32",
                    WaitOutcome::TimedOut => "31;1",
                    WaitOutcome::Stopped | WaitOutcome::NotWaited => "33",
                };
                let words = match outcome {
                    WaitOutcome::NotWaited => format!(
                        "would wait for {}; now {} (dry run: nothing was sent, so it goes on)",
                        self.wait_plan,
                        self.polls.range(" → ")
                    ),
                    _ => self.polls.summary(*outcome, *elapsed_ms),
                };
                let words = self.paint(&words, code);
                self.wrapped(&format!("   wait on {check}: "), "     ", &words);
            }
            EventKind::Message { name, text, .. } => {
                let header = format!("   {} {name}, to paste:", self.paint("message", "1"));
                self.message(header, text);
                self.messages.push(name.clone());
                self.incident = event.incident.clone();
            }
            EventKind::Note { text, .. } => self.wrapped("   note: ", "         ", text),
            kind @ (EventKind::ApprovalRequested { .. }
            | EventKind::ApprovalAnswered { .. }
            | EventKind::ApprovalEnded { .. }) => {
                if let Some(bar) = self.wait_bar.take() {
                    bar.finish_and_clear();
                }
                if let Some(words) = crate::view::approval::line(&event.incident, kind) {
                    self.wrapped("   ", "     ", &words);
                }
                if let EventKind::ApprovalRequested {
                    timeout_ms,
                    rehearsed: false,
                    ..
                } = kind
                {
                    let bar = self.spinner(crate::view::approval::waiting(*timeout_ms));
                    self.wait_bar = Some(bar);
                }
            }
            EventKind::Rechecked { .. } => {
                self.line("     ↻ re-checking before deciding");
            }
            EventKind::UpdateDue { message, text } => {
                let what = match message {
                    Some(name) => format!("post the status update (message '{name}')"),
                    None => "post a status update".to_string(),
                };
                let painted = self.paint(
                    &format!("{} {what}", clock(&jiff::Timestamp::now())),
                    "33;1",
                );
                match text {
                    Some(text) => self.message(format!("⏰ {painted}:"), text),
                    None => self.line(format!("⏰ {painted}")),
                }
            }
            EventKind::EscalationDue { severity, to, due } => {
                let at = clock(due);
                let words = format!("{at} {severity} response time passed: escalate to {to}");
                let painted = self.paint(&words, "33;1");
                self.line(format!("⏰ {painted}"));
            }
            EventKind::EscalationWithheld { to, due, why, .. } => {
                let words = format!("{} no escalation to {to}: {why}", clock(due));
                let painted = self.paint(&words, "2");
                self.line(format!("⏰ {painted}"));
            }
            EventKind::Interrupted { signal, .. } => {
                self.clear_progress();
                self.line(format!(
                    "\ninterrupted ({signal}); recorded in the timeline"
                ));
                if let Some(path) = self.timeline.clone() {
                    self.line(format!("  timeline: {}", path.display()));
                }
            }
            EventKind::RunFinished { exit_code, outcome } => {
                self.clear_progress();
                self.summary(*exit_code, outcome);
            }
            EventKind::DrillScored { .. } => {
                let line = super::score_line(&event.kind);
                self.wrapped("  score:    ", "            ", &line);
            }
            EventKind::Resolved { .. } => {}
        }
    }
}
