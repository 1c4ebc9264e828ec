//! Figures across incidents: how many, by runbook and severity, and the median and p90 of each
//! time (to acknowledge, mitigate, resolve), live incidents, dry runs and drills apart.

use super::Figures;
use crate::engine::event::Mode;
use crate::view::duration;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One incident, as the summary counts it.
pub struct Counted {
    pub mode: Mode,
    pub runbook: String,
    pub severity: String,
    pub figures: Figures,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    /// Incidents opened at or after this; None: all of them.
    pub since: Option<jiff::Timestamp>,
    pub groups: Vec<Group>,
}

/// The incidents of one mode.
#[derive(Debug, Serialize, PartialEq)]
pub struct Group {
    pub mode: Mode,
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub runbook: String,
    pub severity: String,
    pub incidents: usize,
    pub resolved: usize,
    pub time_to_acknowledge: Spread,
    pub time_to_mitigate: Spread,
    pub time_to_resolve: Spread,
}

/// The median and 90th percentile (nearest rank) of one time, over the incidents that have it.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Spread {
    /// How many incidents the time is known for.
    pub count: usize,
    pub median_s: Option<i64>,
    pub p90_s: Option<i64>,
}

impl Spread {
    fn of(mut seconds: Vec<i64>) -> Spread {
        seconds.sort_unstable();
        Spread {
            count: seconds.len(),
            median_s: nearest_rank(&seconds, 50),
            p90_s: nearest_rank(&seconds, 90),
        }
    }
}

/// The smallest value with at least `percent`% of the values at or below it.
fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

pub fn summarize(incidents: Vec<Counted>, since: Option<jiff::Timestamp>) -> Summary {
    let mut by: BTreeMap<(u8, String, String), Vec<Figures>> = BTreeMap::new();
    let mut modes = BTreeMap::new();
    for c in incidents {
        let order = mode_order(c.mode);
        modes.insert(order, c.mode);
        by.entry((order, c.runbook, c.severity))
            .or_default()
            .push(c.figures);
    }
    let mut groups: Vec<Group> = Vec::new();
    for ((order, runbook, severity), figures) in by {
        let times = |pick: fn(&Figures) -> Option<i64>| {
            Spread::of(figures.iter().filter_map(pick).collect())
        };
        let row = Row {
            runbook,
            severity,
            incidents: figures.len(),
            resolved: figures.iter().filter(|f| f.resolved.is_some()).count(),
            time_to_acknowledge: times(|f| f.time_to_acknowledge_s),
            time_to_mitigate: times(|f| f.time_to_mitigate_s),
            time_to_resolve: times(|f| f.time_to_resolve_s),
        };
        let mode = modes[&order];
        match groups.last_mut() {
            Some(group) if group.mode == mode => group.rows.push(row),
            _ => groups.push(Group {
                mode,
                rows: vec![row],
            }),
        }
    }
    Summary { since, groups }
}

fn mode_order(mode: Mode) -> u8 {
    match mode {
        Mode::Live => 0,
        Mode::Drill => 1,
        Mode::DryRun => 2,
    }
}

fn heading(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "Live incidents",
        Mode::Drill => "Drills",
        Mode::DryRun => "Dry runs",
    }
}

fn cell(spread: &Spread) -> String {
    match (spread.median_s, spread.p90_s) {
        (Some(median), Some(p90)) => format!(
            "{} / {} ({})",
            duration(median),
            duration(p90),
            spread.count
        ),
        _ => "—".to_string(),
    }
}

/// The summary as Markdown tables, one per mode.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Incident figures");
    let _ = writeln!(out);
    match summary.since {
        Some(since) => {
            let local = since.to_zoned(jiff::tz::TimeZone::system());
            let _ = writeln!(
                out,
                "Incidents opened since {}.",
                local.strftime("%Y-%m-%d %H:%M %Z")
            );
        }
        None => {
            let _ = writeln!(out, "Every incident on record.");
        }
    }
    let _ = writeln!(
        out,
        "Each time is median / p90 (nearest rank) from detection, with how many incidents it is known for."
    );
    if summary.groups.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "No incidents.");
    }
    for group in &summary.groups {
        let _ = writeln!(out);
        let _ = writeln!(out, "## {}", heading(group.mode));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| Runbook | Severity | Incidents | Resolved | To acknowledge | To mitigate | To resolve |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---|---|---|");
        for row in &group.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.runbook,
                row.severity,
                row.incidents,
                row.resolved,
                cell(&row.time_to_acknowledge),
                cell(&row.time_to_mitigate),
                cell(&row.time_to_resolve)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(mode: Mode, runbook: &str, ack: i64, mitigate: Option<i64>) -> Counted {
        Counted {
            mode,
            runbook: runbook.into(),
            severity: "P1".into(),
            figures: Figures {
                time_to_acknowledge_s: Some(ack),
                time_to_mitigate_s: mitigate,
                ..Figures::default()
            },
        }
    }

    #[test]
    fn nearest_rank_median_and_p90() {
        let ten: Vec<i64> = (1..=10).map(|i| i * 60).collect();
        assert_eq!(nearest_rank(&ten, 50), Some(300));
        assert_eq!(nearest_rank(&ten, 90), Some(540));
        assert_eq!(nearest_rank(&[42], 90), Some(42));
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[10, 20, 30], 50), Some(20));
    }

    #[test]
    fn live_and_drills_apart_and_times_only_over_the_incidents_that_have_them() {
        let summary = summarize(
            vec![
                counted(Mode::Drill, "error-budget", 5, Some(50)),
                counted(Mode::Live, "error-budget", 60, Some(600)),
                counted(Mode::Live, "error-budget", 120, None),
                counted(Mode::Live, "error-budget", 180, Some(1200)),
                counted(Mode::Live, "gpu-oom", 30, None),
            ],
            None,
        );
        assert_eq!(summary.groups.len(), 2);
        assert_eq!(summary.groups[0].mode, Mode::Live);
        let live = &summary.groups[0].rows;
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].runbook, "error-budget");
        assert_eq!(live[0].incidents, 3);
        assert_eq!(
            live[0].time_to_acknowledge,
            Spread {
                count: 3,
                median_s: Some(120),
                p90_s: Some(180)
            }
        );
        assert_eq!(live[0].time_to_mitigate.count, 2);
        assert_eq!(live[0].time_to_mitigate.median_s, Some(600));
        assert_eq!(live[0].time_to_resolve, Spread::default());
        assert_eq!(summary.groups[1].mode, Mode::Drill);
        assert_eq!(summary.groups[1].rows[0].incidents, 1);
        let text = render(&summary);
        assert!(
            text.contains(
                "| error-budget | P1 | 3 | 0 | 2m 0s / 3m 0s (3) | 10m 0s / 20m 0s (2) | — |"
            ),
            "{text}"
        );
        assert!(text.contains("## Drills"), "{text}");
    }
}
