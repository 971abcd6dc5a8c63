//! Latency series, table rows and number formatting.

use super::*;

/// Latency samples of one series, sorted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub(crate) samples: Vec<Duration>,
}

impl Series {
    pub(crate) fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self { samples }
    }

    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i.min(self.samples.len() - 1)].as_secs_f64() * 1e3
    }
}

/// One concurrency level of a row: latencies, invokes/s, start kinds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Level {
    pub(crate) latency: Series,
    pub(crate) rate: f64,
    pub(crate) kinds: String,
}

impl Level {
    pub(crate) fn of(load: Load) -> Self {
        Self {
            latency: Series::from(load.latencies),
            rate: load.rate,
            kinds: summarise_kinds(&load.kinds),
        }
    }
}

/// One row of the main table.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) c1: Level,
    pub(crate) c8: Option<Level>,
    pub(crate) baseline: bool,
}

/// The phase medians of one series.
#[derive(Debug)]
pub(crate) struct PhaseRow {
    pub(crate) label: String,
    pub(crate) client_p50: f64,
    pub(crate) phases: Phases,
}

pub(crate) fn summarise_kinds(kinds: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for kind in kinds {
        match counts.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

pub(crate) fn fmt_rate(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `met`, or `missed by N %` (relative to the target) for a value that
/// must stay at most (`at_most`) or at least the target.
pub(crate) fn verdict(value: f64, target: f64, at_most: bool) -> String {
    if value.is_nan() {
        return "not measured".into();
    }
    let met = if at_most { value <= target } else { value >= target };
    if met {
        "met".into()
    } else {
        format!("missed by {:.0} %", ((value - target).abs() / target) * 100.0)
    }
}
