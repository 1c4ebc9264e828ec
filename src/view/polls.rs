//! A wait's polls, compacted: how many, the first and the last value, and how it ended. The run's
//! screen, `oncall timeline` and the report each say it in one line.

use crate::engine::event::WaitOutcome;
use crate::engine::observation::Observation;

#[derive(Debug, Default, Clone)]
pub struct Polls {
    pub count: usize,
    pub first: Option<String>,
    pub last: Option<String>,
}

impl Polls {
    pub fn poll(&mut self, observation: &Observation) {
        self.count += 1;
        let value = observation.display_value();
        self.first.get_or_insert_with(|| value.clone());
        self.last = Some(value);
    }

    /// `3.9% → 0.8%`, or `0.8%` when it did not change; empty with no poll.
    pub fn range(&self, arrow: &str) -> String {
        match (&self.first, &self.last) {
            (Some(a), Some(b)) if a != b => format!("{a}{arrow}{b}"),
            (Some(a), _) => a.clone(),
            _ => String::new(),
        }
    }

    /// `polled 30×: 3.9% → 0.8%, met after 14m`.
    pub fn summary(&self, outcome: WaitOutcome, elapsed_ms: u64) -> String {
        let range = self.range(" → ");
        let range = if range.is_empty() {
            String::new()
        } else {
            format!(": {range}")
        };
        format!(
            "polled {}×{range}, {} after {}",
            self.count,
            ended(outcome),
            crate::backends::humanize(std::time::Duration::from_millis(elapsed_ms))
        )
    }
}

/// How a wait ended, in words.
pub fn ended(outcome: WaitOutcome) -> &'static str {
    match outcome {
        WaitOutcome::Met => "met",
        WaitOutcome::TimedOut => "timed out",
        WaitOutcome::Stopped => "stopped by the engineer",
        WaitOutcome::NotWaited => "not waited for (dry run)",
    }
}
