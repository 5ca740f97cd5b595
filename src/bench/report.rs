//! What a run measured, as text for people and JSON for scripts.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{Api, Consistency, Options, Workload};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of `micros` (sorted in place); `None` when there are no samples.
    pub fn of(micros: &mut [u32]) -> Option<Self> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let at = |p: f64| {
            let rank = ((p / 100.0) * micros.len() as f64).ceil() as usize;
            f64::from(micros[rank.clamp(1, micros.len()) - 1]) / 1000.0
        };
        let sum: u64 = micros.iter().map(|&m| u64::from(m)).sum();
        Some(Self {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: f64::from(micros[micros.len() - 1]) / 1000.0,
            mean: sum as f64 / micros.len() as f64 / 1000.0,
        })
    }
}

/// The blocking-query part of a `watch` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fanout {
    /// Writes made while the watchers waited.
    pub writes: u64,
    /// Time from the start of a write to its last watcher's answer, over the writes.
    pub last_watcher: Option<Latency>,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The target's API.
    pub api: Api,
    /// The target's address.
    pub addr: String,
    /// The workload.
    pub workload: Workload,
    /// Read consistency asked for.
    pub consistency: Consistency,
    /// Clients (connections).
    pub concurrency: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Length of the timed loop in seconds.
    pub duration_s: f64,
    /// Successful operations (for `watch`: answers that carried a new write).
    pub ops: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Failed operations (transport errors and non-2xx answers).
    pub errors: u64,
    /// The first error's text.
    pub first_error: Option<String>,
    /// Latency of successful operations (for `watch`: write to each watcher's answer).
    pub latency: Option<Latency>,
    /// Only for `watch`.
    pub fanout: Option<Fanout>,
}

impl Report {
    /// Builds the report of a run of `o` that lasted `duration`.
    pub(super) fn new(
        o: &Options,
        duration: Duration,
        mut micros: Vec<u32>,
        errors: u64,
        first_error: Option<String>,
        watch: Option<(u64, Vec<u32>)>,
    ) -> Self {
        let secs = duration.as_secs_f64().max(f64::EPSILON);
        Self {
            api: o.api,
            addr: o.addr.clone(),
            workload: o.workload,
            consistency: o.consistency,
            concurrency: o.concurrency,
            value_size: o.value_size,
            keys: o.keys,
            duration_s: duration.as_secs_f64(),
            ops: micros.len() as u64,
            ops_per_sec: micros.len() as f64 / secs,
            errors,
            first_error,
            latency: Latency::of(&mut micros),
            fanout: watch.map(|(writes, mut last)| Fanout { writes, last_watcher: Latency::of(&mut last) }),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
            self.p50, self.p90, self.p99, self.max, self.mean
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let consistency = match (self.workload, self.consistency) {
            (Workload::Put, _) => String::new(),
            (_, c) => format!(", {} reads", serde_plain(&c)),
        };
        writeln!(
            f,
            "{} {} at {}: {} clients, {} keys, {}-byte values{consistency}",
            serde_plain(&self.api),
            serde_plain(&self.workload),
            self.addr,
            self.concurrency,
            self.keys,
            self.value_size,
        )?;
        writeln!(f, "Duration:    {:.1} s", self.duration_s)?;
        writeln!(f, "Operations:  {} ({:.0}/s)", self.ops, self.ops_per_sec)?;
        match &self.latency {
            Some(l) => writeln!(f, "Latency:     {l}")?,
            None => writeln!(f, "Latency:     no successful operation")?,
        }
        if let Some(w) = &self.fanout {
            writeln!(f, "Writes:      {}", w.writes)?;
            match &w.last_watcher {
                Some(l) => writeln!(f, "Last watcher: {l}")?,
                None => writeln!(f, "Last watcher: no write reached a watcher")?,
            }
        }
        write!(f, "Errors:      {}", self.errors)?;
        if let Some(e) = &self.first_error {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
}

/// The serde name of a unit variant (`put`, `sekisho`, ...).
fn serde_plain(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
