//! The vocabulary every spec shares, whichever backend it belongs to: spanned values (so a
//! problem names its line and column), scalar values, durations and the ranges each field
//! accepts, and the validation a kind runs over its own fields (`validate`).

pub mod validate;

use std::time::Duration;

/// A value with where it stands in its file.
pub type S<T> = serde_saphyr::Spanned<T>;

/// The most lines or rows a check may keep (`keep`, `first`, `limit`).
pub const MAX_ROWS: usize = 1000;
/// The most replicas a scale may ask for (Kubernetes counts them in 32 bits; no fleet is near this).
pub const MAX_REPLICAS: i64 = 100_000;

/// A YAML scalar as a param default: numbers stay numbers so `value > params.budget_pct` compares numbers.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl ScalarValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ScalarValue::Bool(b) => (*b).into(),
            ScalarValue::Int(i) => (*i).into(),
            ScalarValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Into::into)
                .unwrap_or_default(),
            ScalarValue::Text(s) => s.clone().into(),
        }
    }

    /// A value from the command line or config: a number stays a number, as in YAML.
    pub fn parse(text: &str) -> ScalarValue {
        if let Ok(i) = text.parse::<i64>() {
            ScalarValue::Int(i)
        } else if let Ok(f) = text.parse::<f64>() {
            ScalarValue::Float(f)
        } else if let Ok(b) = text.parse::<bool>() {
            ScalarValue::Bool(b)
        } else {
            ScalarValue::Text(text.to_string())
        }
    }
}

/// The durations a field accepts; `validate` and the flags refuse others with this range.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    /// The range in words: `1ms to 1h`.
    pub words: &'static str,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn within(min: Duration, max: Duration, words: &'static str) -> Bounds {
    Bounds { min, max, words }
}

/// The ranges of each kind of duration.
pub mod bounds {
    use super::{Bounds, secs, within};
    use std::time::Duration;
    const MS: Duration = Duration::from_millis(1);
    const DAY: u64 = 86_400;
    /// A check's timeout, `--timeout`, a rollout wait.
    pub const TIMEOUT: Bounds = within(MS, secs(3600), "1ms to 1h");
    /// An action's timeout: a download or a backup may take hours.
    pub const ACTION_TIMEOUT: Bounds = within(MS, secs(DAY), "1ms to 24h");
    pub const WAIT: Bounds = within(MS, secs(DAY), "1ms to 24h");
    pub const WAIT_EVERY: Bounds = within(Duration::from_millis(100), secs(3600), "100ms to 1h");
    pub const ESCALATION: Bounds = within(secs(1), secs(7 * DAY), "1s to 7d");
    /// How often a status update is due.
    pub const UPDATES: Bounds = within(secs(1), secs(DAY), "1s to 24h");
    /// How far back logs and events are read.
    pub const SINCE: Bounds = within(secs(1), secs(30 * DAY), "1s to 30d");
    /// The step of a Prometheus range query.
    pub const STEP: Bounds = within(secs(1), secs(DAY), "1s to 24h");
    pub const AGE: Bounds = within(secs(1), secs(3650 * DAY), "1s to 3650d");
    /// How long a stop waits before the kill.
    pub const GRACE: Bounds = within(MS, secs(600), "1ms to 10m");
    pub const SILENCE: Bounds = within(secs(60), secs(90 * DAY), "1m to 90d");
}

/// The longest duration oncall takes anywhere: longer ones would overflow clocks and timers.
const MAX_DURATION: Duration = secs(3650 * 86_400);

/// Parses a duration and holds it to a field's range.
pub fn parse_duration_in(text: &str, bounds: Bounds) -> Result<Duration, String> {
    let parsed = parse_any_duration(text)?;
    if parsed < bounds.min || parsed > bounds.max {
        return Err(format!(
            "'{text}' is out of range: it may be {}",
            bounds.words
        ));
    }
    Ok(parsed)
}

/// Parses `30s`, `15m`, `1h30m`, `2h 30m`, up to the longest duration oncall takes anywhere.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    Some(parse_any_duration(text)?)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("'{text}' is out of range: at most 3650d"))
}

fn parse_any_duration(text: &str) -> Result<Duration, String> {
    let not = || match text.trim().parse::<u64>() {
        // A bare number: the unit is what is missing.
        Ok(n) => format!("'{text}' is not a duration: did you mean {n}s?"),
        Err(_) => format!("'{text}' is not a duration"),
    };
    // Days (`1d`, as in `find -mtime +1`) count as 24 hours.
    let parsed = match text.trim().parse::<jiff::SignedDuration>() {
        Ok(d) => d,
        Err(_) => {
            let span: jiff::Span = text.trim().parse().map_err(|_| not())?;
            span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|_| not())?
        }
    };
    if parsed.is_negative() || parsed.is_zero() {
        return Err(format!("'{text}' must be a positive duration"));
    }
    Duration::try_from(parsed).map_err(|_| not())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999h").is_err());
        assert!(parse_duration_in("2h", bounds::TIMEOUT).is_err());
        assert!(parse_duration_in("1h", bounds::TIMEOUT).is_ok());
    }
}
