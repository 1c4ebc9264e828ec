//! The terminal view: a header, a spinner per running check, a table per step, plans and a
//! summary. Progress goes to stderr; results go to `out` (stdout, or stderr under --output json).

use super::{cell, clock};
use crate::approval::DecisionKind;
use crate::backends::reading::Verdict;
use crate::engine::event::{Event, EventKind, Mode, Sink, WaitOutcome};
use crate::engine::observation::{Observation, display, with_unit};
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

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
    unit_of: BTreeMap<String, Option<String>>,
    actions: Vec<String>,
    latest: BTreeMap<String, Observation>,
    /// The messages shown, and the incident they belong to, for the summary.
    messages: Vec<String>,
    incident: String,
}

impl TerminalView {
    pub fn new(
        out: Box<dyn Write + Send>,
        color: bool,
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
            unit_of: BTreeMap::new(),
            actions: Vec::new(),
            latest: BTreeMap::new(),
            messages: Vec::new(),
            incident: String::new(),
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

    /// A verdict in a table: coloured by the table itself, so column widths stay right.
    fn verdict_cell(&self, v: Verdict) -> Cell {
        let cell = Cell::new(v.as_str());
        if !self.color {
            return cell;
        }
        let color = match v {
            Verdict::Ok => Color::Green,
            Verdict::Warn => Color::Yellow,
            Verdict::Fail => Color::Red,
            Verdict::Error => Color::Magenta,
            Verdict::Skipped => Color::DarkGrey,
        };
        cell.fg(color).add_attribute(Attribute::Bold)
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

    /// A message between two rules, its lines as they are: a selection copies exactly the text.
    fn message(&mut self, header: String, text: &str) {
        let rule = self.paint(&"─".repeat(RULE), "2");
        self.line(header);
        self.line(&rule);
        self.line(text);
        self.line(&rule);
    }

    fn table(&mut self) {
        let mut table = Table::new();
        // Wrap to the terminal when there is a usable one; a 0-column pty would squash every cell.
        let arrangement = match table.width() {
            Some(width) if width >= 60 => ContentArrangement::Dynamic,
            _ => ContentArrangement::Disabled,
        };
        table
            .load_preset(presets::UTF8_BORDERS_ONLY)
            .set_content_arrangement(arrangement);
        table.set_header(vec!["check", "verdict", "value", "time", "note"]);
        let mut observations = std::mem::take(&mut self.finished);
        // Keep the runbook's order of checks, not the order they happened to finish in.
        let order: Vec<String> = self.unit_of.keys().cloned().collect();
        observations.sort_by_key(|o| order.iter().position(|id| *id == o.check));
        for o in &observations {
            let note = o
                .reason
                .clone()
                .or_else(|| o.text.clone())
                .unwrap_or_default();
            table.add_row(vec![
                cell(&o.title),
                self.verdict_cell(o.verdict),
                cell(&o.display_value()),
                Cell::new(format!("{} ms", o.millis)),
                cell(&note),
            ]);
            if let Some(rows) = &o.table {
                let value_col = rows.column("value");
                for (i, row) in rows.rows.iter().enumerate().take(20) {
                    let labels: Vec<String> = rows
                        .columns
                        .iter()
                        .zip(row)
                        .enumerate()
                        .filter(|(col, _)| Some(*col) != value_col)
                        .map(|(_, (c, v))| {
                            if c == "line" {
                                display(v)
                            } else {
                                format!("{c}={}", display(v))
                            }
                        })
                        .collect();
                    let value = value_col
                        .map(|i| with_unit(display(&row[i]), &o.unit))
                        .unwrap_or_default();
                    let verdict = match rows.verdicts.get(i) {
                        Some(v) if *v != Verdict::Ok => self.verdict_cell(*v),
                        _ => Cell::new(""),
                    };
                    table.add_row(vec![
                        cell(&format!("  └ {}", labels.join(" "))),
                        verdict,
                        cell(&value),
                        Cell::new(""),
                        Cell::new(""),
                    ]);
                }
                if rows.rows.len() > 20 {
                    table.add_row(vec![Cell::new(format!(
                        "  … {} more rows",
                        rows.rows.len() - 20
                    ))]);
                }
            }
        }
        for o in observations {
            self.latest.insert(o.check.clone(), o);
        }
        self.line(table.to_string());
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
        self.line(self.paint(&format!("Summary: {outcome} (exit {exit_code})"), "1"));
        self.line(format!("  found:    {found}"));
        let bad: Vec<String> = self
            .latest
            .values()
            .filter(|o| o.verdict >= Verdict::Fail)
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
            self.line(format!("            {b}"));
        }
        if self.actions.is_empty() {
            self.line("  done:     no action taken");
        } else {
            let actions = self.actions.clone();
            for (i, a) in actions.iter().enumerate() {
                self.line(format!(
                    "  {}{a}",
                    if i == 0 { "done:     " } else { "          " }
                ));
            }
        }
        if !self.messages.is_empty() {
            self.line(format!(
                "  messages: {} (again, with the latest findings: oncall message {} NAME)",
                self.messages.join(", "),
                self.incident
            ));
        }
        if let Some(path) = self.timeline.clone() {
            let incomplete = if exit_code == crate::engine::EXIT_TIMELINE_INCOMPLETE {
                " (INCOMPLETE: events after the failure above are missing)"
            } else {
                ""
            };
            self.line(format!("  timeline: {}{incomplete}", path.display()));
        }
    }

    fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("static template"),
        );
        bar.set_message(message);
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
                ..
            } => {
                let mode = match mode {
                    Mode::Live => String::new(),
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
                self.line(format!(
                    "{} {}{respond}{mode}",
                    self.paint(&format!("INCIDENT {}", event.incident), "1"),
                    self.paint(severity, "31;1")
                ));
                self.line(format!("  {title}"));
                self.line(format!(
                    "  runbook {runbook} ({origin}) · opened {} by {user}",
                    clock(&event.ts)
                ));
                for (i, d) in escalation.iter().enumerate() {
                    self.line(format!(
                        "  {}{}  {}",
                        if i == 0 { "escalate: " } else { "          " },
                        clock(&d.at),
                        d.to
                    ));
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
                        self.line(format!("   {l}"));
                    }
                }
            }
            EventKind::StepSkipped { reason, .. } => {
                self.line(format!("   {} {reason}", self.verdict(Verdict::Skipped)));
            }
            EventKind::CheckStarted { check, title, .. } => {
                self.unit_of.insert(check.clone(), None);
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
                    self.unit_of.clear();
                }
            }
            EventKind::ActionNotOffered { action, reason, .. } => {
                self.line(format!(
                    "   {} action {action}: {reason}",
                    self.verdict(Verdict::Skipped)
                ));
            }
            EventKind::ActionPlanned { title, plan, .. } => {
                self.line(format!("   {} {title}", self.paint("action", "1")));
                for l in plan.request.lines() {
                    self.line(format!("     {l}"));
                }
                if let Some(body) = &plan.body {
                    self.line(format!("     {body}"));
                }
                for change in &plan.changes {
                    self.line(format!("     {change}"));
                }
            }
            EventKind::ActionDecided {
                action,
                decision,
                by,
                user,
                ..
            } => {
                let words = match decision {
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
                };
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
            } => {
                self.line(format!(
                    "  {} by {user} on {host} at {}, from step {from_step}",
                    self.paint("resumed", "1"),
                    clock(&event.ts)
                ));
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
                self.line(format!("     {status}: {detail} ({millis} ms)"));
                self.actions.push(format!(
                    "{action}: {} — {detail}",
                    if *ok { "applied" } else { "failed" }
                ));
            }
            EventKind::WaitStarted {
                check,
                until,
                timeout_ms,
                ..
            } => {
                let bar = self.spinner(format!(
                    "waiting for {check}: {until} (up to {}) — Ctrl-C stops waiting",
                    crate::backends::humanize(Duration::from_millis(*timeout_ms))
                ));
                self.wait_bar = Some(bar);
            }
            EventKind::WaitPoll { observation, .. } => {
                if let Some(bar) = &self.wait_bar {
                    let base = bar.message();
                    let base = base
                        .split(" · last ")
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    bar.set_message(format!(
                        "{base} · last {} ({})",
                        observation.display_value(),
                        observation.verdict.as_str()
                    ));
                }
                self.latest
                    .insert(observation.check.clone(), observation.clone());
            }
            EventKind::WaitFinished {
                check,
                outcome,
                elapsed_ms,
                value,
                ..
            } => {
                if let Some(bar) = self.wait_bar.take() {
                    bar.finish_and_clear();
                }
                let words = match outcome {
                    WaitOutcome::Met => self.paint("condition met", "32"),
                    WaitOutcome::TimedOut => self.paint("timed out", "31;1"),
                    WaitOutcome::Stopped => self.paint("stopped by the engineer", "33"),
                };
                self.line(format!(
                    "   wait on {check}: {words} after {} (last value {})",
                    crate::backends::humanize(Duration::from_millis(*elapsed_ms)),
                    if value.is_null() {
                        "none".to_string()
                    } else {
                        display(value)
                    }
                ));
            }
            EventKind::Message { name, text, .. } => {
                let header = format!("   {} {name}, to paste:", self.paint("message", "1"));
                self.message(header, text);
                self.messages.push(name.clone());
                self.incident = event.incident.clone();
            }
            EventKind::Note { text, .. } => self.line(format!("   note: {text}")),
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
            EventKind::Resolved { .. } => {}
        }
    }
}
