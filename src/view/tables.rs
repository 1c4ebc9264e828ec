//! Tables that fit the screen. A step's checks: one line per check (title, verdict, value,
//! time, note) in the runbook's order, and under a check with rows a sub-table of them with their
//! own columns. A cell that does not fit is cut with `…`, never wrapped mid-token; an identifier
//! (pod, container, deployment, …) keeps its whole width when it fits. With no width (piped
//! without `COLUMNS`, or `--wide`) nothing is cut and columns are as wide as their content.
//! `listing` lays out the lists of `list` and `alerts` the same way.

use super::cell;
use crate::backends::reading::{Table as Rows, Verdict};
use crate::engine::observation::{Observation, display, with_unit};
use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Row, Table,
    presets,
};

/// Columns that name something: shown whole whenever they fit.
const IDENTIFIERS: &[&str] = &[
    "pod",
    "container",
    "deployment",
    "name",
    "node",
    "service",
    "namespace",
    "instance",
    "job",
    "image",
    "images",
    "database",
    "error_type",
];
/// How far a check's rows stand in from its line.
const INDENT: usize = 4;
/// The most rows of a check shown; the timeline has them all.
const MAX_ROWS: usize = 20;

/// Where the view is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Screen {
    /// Columns to fit; None: lay out to the content.
    pub width: Option<u16>,
    pub color: bool,
}

impl Screen {
    fn table(&self, width: Option<usize>) -> Table {
        let mut table = Table::new();
        table.load_preset(presets::NOTHING);
        table.set_truncation_indicator("…");
        match width {
            Some(width) => {
                table
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(width.min(u16::MAX as usize) as u16);
            }
            None => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        table
    }

    fn verdict(&self, v: Verdict) -> Cell {
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

    fn header(&self, text: &str) -> Cell {
        let cell = Cell::new(text);
        if self.color {
            cell.add_attribute(Attribute::Dim)
        } else {
            cell
        }
    }

    fn rule(&self, width: usize) -> String {
        let rule = "─".repeat(width);
        if self.color {
            format!("\x1b[2m{rule}\x1b[0m")
        } else {
            rule
        }
    }
}

/// Gives the columns `whole` their full width, in their order of importance, as long as the
/// others keep room for a few characters each: an identifier is never cut if it can be shown.
fn keep_whole(
    table: &mut Table,
    headers: &[&str],
    texts: &[Vec<String>],
    whole: &[usize],
    width: Option<usize>,
) {
    const FEW: usize = 3;
    let widest = |pos: usize| {
        texts
            .iter()
            .filter_map(|row| row.get(pos))
            .map(|t| console::measure_text_width(t))
            .chain([console::measure_text_width(headers[pos])])
            .max()
            .unwrap_or(0)
    };
    let mut reserved = 0;
    for (kept, pos) in whole.iter().enumerate() {
        let others = headers.len() - kept - 1;
        let need = reserved + widest(*pos) + 2;
        if width.is_some_and(|w| need + others * (FEW + 2) > w) {
            break;
        }
        reserved = need;
        if let Some(column) = table.column_mut(*pos) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
}

/// One line per row (the header too): what a cut keeps.
fn one_line(cells: Vec<Cell>) -> Row {
    let mut row = Row::from(cells);
    row.max_height(1);
    row
}

/// The value as the table shows it; never a blank.
fn value_of(o: &Observation) -> String {
    let value = o.display_value();
    if value.is_empty() {
        "no data".into()
    } else {
        value
    }
}

/// The table of one step's observations, in the order given.
pub fn render(observations: &[Observation], screen: &Screen) -> String {
    let width = screen.width.map(usize::from);
    let mut table = screen.table(width);
    table.set_header(one_line(
        ["check", "verdict", "value", "time", "note"]
            .into_iter()
            .map(|h| screen.header(h))
            .collect(),
    ));
    let values: Vec<String> = observations.iter().map(value_of).collect();
    for (o, value) in observations.iter().zip(&values) {
        let note = o
            .reason
            .clone()
            .or_else(|| o.text.clone())
            .unwrap_or_default();
        // A line is one line: the note's first, and the rest in the timeline.
        let note = note.lines().next().unwrap_or_default().to_string();
        table.add_row(one_line(vec![
            cell(&o.title),
            screen.verdict(o.verdict),
            cell(value),
            Cell::new(format!("{} ms", o.millis)).set_alignment(CellAlignment::Right),
            cell(&note),
        ]));
    }
    // Titles and values keep a little room; verdicts and times are never cut; the note takes the rest.
    let at_least = |cap: usize, texts: &mut dyn Iterator<Item = &str>| {
        ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(
            cap.min(longest(texts) + 2) as u16
        ))
    };
    let constraints = [
        at_least(24, &mut observations.iter().map(|o| o.title.as_str())),
        ColumnConstraint::ContentWidth,
        at_least(12, &mut values.iter().map(String::as_str)),
        ColumnConstraint::ContentWidth,
    ];
    for (i, constraint) in constraints.into_iter().enumerate() {
        if let Some(column) = table.column_mut(i) {
            column.set_constraint(constraint);
        }
    }
    let lines: Vec<String> = table.lines().collect();
    let mut out = Vec::new();
    let rule_width = lines
        .iter()
        .map(|l| console::measure_text_width(l))
        .max()
        .unwrap_or(0);
    let mut rows = lines.into_iter();
    if let Some(header) = rows.next() {
        out.push(header.trim_end().to_string());
        out.push(screen.rule(rule_width));
    }
    for (o, line) in observations.iter().zip(rows) {
        out.push(line.trim_end().to_string());
        if let Some(rows) = o.table.as_ref().filter(|t| !t.rows.is_empty()) {
            let inner = width.map(|w| w.saturating_sub(INDENT));
            for sub in sub_table(rows, &o.unit, screen, inner).lines() {
                out.push(format!("{}{}", " ".repeat(INDENT), sub.trim_end()));
            }
        }
    }
    out.join("\n")
}

fn longest<'a>(texts: impl Iterator<Item = &'a str>) -> usize {
    texts.map(console::measure_text_width).max().unwrap_or(0)
}

/// A check's rows with their own columns: the table's, the value last with its unit, and a
/// verdict where rows were judged one by one.
fn sub_table(rows: &Rows, unit: &Option<String>, screen: &Screen, width: Option<usize>) -> String {
    let value_col = rows.column("value");
    let columns: Vec<usize> = (0..rows.columns.len())
        .filter(|i| Some(*i) != value_col)
        .chain(value_col)
        .collect();
    let judged = rows.verdicts.iter().any(|v| *v != Verdict::Ok);
    let mut table = screen.table(width);
    let mut header: Vec<Cell> = columns
        .iter()
        .map(|i| screen.header(&rows.columns[*i]))
        .collect();
    if judged {
        header.push(screen.header("verdict"));
    }
    table.set_header(one_line(header));
    let shown = rows.rows.iter().take(MAX_ROWS);
    let mut texts: Vec<Vec<String>> = Vec::new();
    for (r, row) in shown.enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|i| {
                let text = row.get(*i).map(display).unwrap_or_default();
                if Some(*i) == value_col {
                    with_unit(text, unit)
                } else {
                    text
                }
            })
            .collect();
        let verdict = rows.verdicts.get(r).copied();
        let mut line: Vec<Cell> = cells.iter().map(|t| cell(t)).collect();
        if judged {
            line.push(match verdict {
                Some(v) if v != Verdict::Ok => screen.verdict(v),
                _ => Cell::new(""),
            });
        }
        table.add_row(one_line(line));
        texts.push(cells);
    }
    let headers: Vec<&str> = columns.iter().map(|i| rows.columns[*i].as_str()).collect();
    let whole: Vec<usize> = (0..columns.len())
        .filter(|pos| *pos == 0 || IDENTIFIERS.contains(&headers[*pos]))
        .collect();
    keep_whole(&mut table, &headers, &texts, &whole, width);
    let mut text = table.lines().collect::<Vec<_>>().join("\n");
    if rows.rows.len() > MAX_ROWS {
        text.push_str(&format!(
            "\n … {} more rows (oncall timeline has them all)",
            rows.rows.len() - MAX_ROWS
        ));
    }
    text
}

/// A plain list (`oncall list`, `oncall alerts`): a header and one line per row; the columns
/// `whole` are never cut when they fit.
pub fn listing(
    header: &[&str],
    rows: Vec<Vec<String>>,
    whole: &[usize],
    screen: &Screen,
) -> String {
    let width = screen.width.map(usize::from);
    let mut table = screen.table(width);
    table.set_header(one_line(header.iter().map(|h| Cell::new(*h)).collect()));
    for row in &rows {
        table.add_row(one_line(row.iter().map(|c| cell(c)).collect()));
    }
    keep_whole(&mut table, header, &rows, whole, width);
    let lines: Vec<String> = table.lines().map(|l| format!("{}\n", l.trim())).collect();
    lines.concat()
}
