//! Ways to show events: the terminal view for people, the JSON report for machines.

pub mod approval;
pub mod json;
pub mod polls;
pub mod tables;
pub mod terminal;
pub mod unreachable;

use std::io::{IsTerminal, Write};

/// Colour only on a terminal, never with NO_COLOR or TERM=dumb.
pub fn use_color(choice: crate::cli::ColorChoice, stream_is_terminal: bool) -> bool {
    match choice {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            stream_is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// What the view's width comes from: the terminal it writes to, else `COLUMNS`, else nothing
/// (lay out to the content). `--wide` cuts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Wide,
    Stdout,
    Stderr,
    Pipe,
}

impl Fit {
    /// For a view written to stderr (`-o json`) or to stdout.
    pub fn new(wide: bool, to_stderr: bool) -> Fit {
        match (wide, to_stderr) {
            (true, _) => Fit::Wide,
            (false, true) if stderr_is_terminal() => Fit::Stderr,
            (false, false) if stdout_is_terminal() => Fit::Stdout,
            _ => Fit::Pipe,
        }
    }

    /// The columns to fit now (a terminal may be resized during a run).
    pub fn columns(self) -> Option<u16> {
        let term = match self {
            Fit::Wide => return None,
            Fit::Stdout => Some(console::Term::stdout()),
            Fit::Stderr => Some(console::Term::stderr()),
            Fit::Pipe => None,
        };
        let from_env = || {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse::<u16>().ok())
        };
        term.and_then(|t| t.size_checked())
            .map(|(_, cols)| cols)
            .or_else(from_env)
            .filter(|cols| *cols >= 20)
    }
}

/// Wraps each line of a text to the columns there are, its continuations indented two more
/// than the line: what a report of indented lines needs at 80 columns. Unchanged with no width.
pub fn wrap_lines(text: &str, columns: Option<u16>) -> String {
    let Some(width) = columns else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let rest = format!("{indent}  ");
        let options = textwrap::Options::new(width as usize)
            .initial_indent(indent)
            .subsequent_indent(&rest)
            // A URL longer than the line is cut too: the file holds it whole.
            .break_words(true)
            // Optimal fit may let a line run over to even out the others.
            .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit)
            .word_separator(textwrap::WordSeparator::AsciiSpace)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        for wrapped in textwrap::wrap(body, options) {
            out.push_str(&wrapped);
            out.push('\n');
        }
    }
    out
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The name an enum has in the timeline's JSON: `would_send`, `timed_out`, `dry-run`.
pub fn json_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A duration for people: `45s`, `12m 3s`, `2h 5m`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// An age at a glance: `45s`, `12m`, `3h`, `2d`.
pub fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Local clock time of a timestamp, `03:16`.
pub fn clock(ts: &jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// Local clock time to the second, `03:16:42`: when the exact moment matters (an action that
/// may have been applied).
/// A drill's score card in words: `right 1 of 2 approved (prioritize_queue), harmful 1
/// approved (restart_nats), right skipped: pause_uploads; first right after 2m 10s (target 10m)`.
pub fn score_line(kind: &crate::engine::event::EventKind) -> String {
    let crate::engine::event::EventKind::DrillScored {
        not_scored,
        right_approved,
        harmful_approved,
        right_skipped,
        first_right_ms,
        target_ms,
        ..
    } = kind
    else {
        return String::new();
    };
    if let Some(why) = not_scored {
        return format!("not scored: {why}");
    }
    let list = |names: &[String]| {
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    };
    let right = right_approved.len() + right_skipped.len();
    let mut line = format!(
        "right {} of {right} approved{}, harmful {} approved{}",
        right_approved.len(),
        list(right_approved),
        harmful_approved.len(),
        list(harmful_approved),
    );
    if !right_skipped.is_empty() {
        line.push_str(&format!(", right skipped: {}", right_skipped.join(", ")));
    }
    let time = |ms: u64| crate::backends::humanize(std::time::Duration::from_millis(ms));
    match (first_right_ms, target_ms) {
        (Some(first), Some(target)) => line.push_str(&format!(
            "; first right after {} (target {}{})",
            time(*first),
            time(*target),
            if first <= target { ", met" } else { ", missed" }
        )),
        (Some(first), None) => line.push_str(&format!("; first right after {}", time(*first))),
        (None, _) if right > 0 => line.push_str("; no right mitigation approved"),
        (None, _) => {}
    }
    line
}

pub fn clock_seconds(ts: &jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string()
}

/// The most characters a table cell shows: the table is a summary, the timeline has it all, and
/// laying out a very long cell costs time out of proportion to it.
const MAX_CELL: usize = 400;

pub fn cell(text: &str) -> comfy_table::Cell {
    match text.char_indices().nth(MAX_CELL) {
        Some((cut, _)) => comfy_table::Cell::new(format!(
            "{}… ({} more characters in the timeline)",
            &text[..cut],
            text[cut..].chars().count()
        )),
        None => comfy_table::Cell::new(text),
    }
}

/// Writes results to stdout, with no terminal control sequence in them; a closed pipe
/// (`oncall list | head -1`) is not an error.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    let text = crate::redact::global().text(&crate::sanitize::text(text));
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = crate::sanitize::json_text(serde_json::to_string_pretty(value)?);
    print_out(&format!("{text}\n"))
}
