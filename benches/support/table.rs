//! The benches' results table: each figure, what was measured, its target and whether it was
//! met, then the bench's notes and one line that counts the missed targets. A missed target is
//! marked MISSED; it does not fail the run.

use std::fmt::Write as _;

/// One line of the results table. `met` is None for a figure without a target of its own.
pub struct Row {
    figure: String,
    measured: String,
    target: String,
    met: Option<bool>,
}

pub fn row(figure: &str, measured: String, target: &str, met: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        measured,
        target: target.into(),
        met,
    }
}

/// Prints the table, the notes (`note: …`), then "all targets met" or how many were missed, all
/// in one piece.
pub fn print_table(rows: &[Row], notes: &[String]) {
    let width = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let (w1, w2, w3) = (
        width(|r| &r.figure),
        width(|r| &r.measured),
        width(|r| &r.target),
    );
    let mut out = String::new();
    writeln!(out).unwrap();
    writeln!(
        out,
        "{:w1$}  {:>w2$}  {:w3$}  result",
        "figure", "measured", "target"
    )
    .unwrap();
    writeln!(out, "{}", "-".repeat(w1 + w2 + w3 + 14)).unwrap();
    for r in rows {
        let result = match r.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "",
        };
        let line = format!(
            "{:w1$}  {:>w2$}  {:w3$}  {result}",
            r.figure, r.measured, r.target
        );
        writeln!(out, "{}", line.trim_end()).unwrap();
    }
    writeln!(out).unwrap();
    for note in notes {
        writeln!(out, "note: {note}").unwrap();
    }
    if !notes.is_empty() {
        writeln!(out).unwrap();
    }
    match rows.iter().filter(|r| r.met == Some(false)).count() {
        0 => writeln!(out, "all targets met").unwrap(),
        n => writeln!(out, "MISSED: {n} target(s), see above").unwrap(),
    }
    print!("{out}");
}
