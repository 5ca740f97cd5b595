//! The two renderings of the registry: Consul's JSON `MetricsSummary` (go-metrics'
//! `DisplayMetrics`) and the Prometheus text exposition format 0.0.4.
//!
//! Prometheus names are the dotted names with every character outside `[a-zA-Z0-9_:]`
//! replaced by `_` (`consul.raft.commitTime` → `consul_raft_commitTime`), as go-metrics'
//! Prometheus sink does. Counters stay counters (no `_total` suffix), samples become
//! summaries with the 0.5/0.9/0.99 quantiles plus `_sum` and `_count`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::clock::Civil;
use super::registry::{Kind, QUANTILES, Registry, View};

/// `GET /v1/agent/metrics`: the aggregates of one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricsSummary {
    /// Start of the interval, as Go prints a UTC time (`2017-08-08 02:55:10 +0000 UTC`).
    pub timestamp: String,
    pub gauges: Vec<GaugeValue>,
    /// go-metrics' `EmitKey` points; always empty here.
    pub points: Vec<PointValue>,
    pub counters: Vec<SampledValue>,
    pub samples: Vec<SampledValue>,
}

/// A gauge's last value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GaugeValue {
    pub name: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
}

/// A named list of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointValue {
    pub name: String,
    pub points: Vec<f64>,
}

/// A counter's or sample's aggregate over the interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SampledValue {
    pub name: String,
    pub count: u64,
    /// `Sum` per second of the interval.
    pub rate: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: f64,
    pub labels: BTreeMap<String, String>,
}

/// A value computed at render time (process and runtime figures).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Extra {
    /// Dotted name for the JSON rendering; `None` for Prometheus-only figures.
    pub(crate) json_name: Option<&'static str>,
    /// Prometheus name (already in Prometheus spelling).
    pub(crate) prom_name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    pub(crate) value: f64,
}

/// The JSON rendering of interval `idx` at `now`, with `extra` as more gauges.
pub(crate) fn summary(reg: &Registry, idx: u64, now: Instant, extra: &[Extra]) -> MetricsSummary {
    let mut s = MetricsSummary {
        timestamp: Civil::of(reg.interval_start(idx)).go_string(),
        gauges: Vec::new(),
        points: Vec::new(),
        counters: Vec::new(),
        samples: Vec::new(),
    };
    let secs = reg.interval().as_secs_f64();
    for v in reg.views(idx, now, None) {
        let labels: BTreeMap<String, String> =
            v.series.labels.iter().map(|(k, val)| (k.to_string(), val.to_string())).collect();
        let name = v.series.name.to_string();
        match v.series.kind {
            Kind::Gauge => s.gauges.push(GaugeValue { name, value: v.value, labels }),
            kind if v.interval.count > 0 => {
                let a = v.interval;
                let sv = SampledValue {
                    name,
                    count: a.count,
                    rate: a.sum / secs,
                    sum: a.sum,
                    min: a.min,
                    max: a.max,
                    mean: a.mean(),
                    stddev: a.stddev(),
                    labels,
                };
                if kind == Kind::Counter { s.counters.push(sv) } else { s.samples.push(sv) }
            }
            _ => {}
        }
    }
    for e in extra.iter().filter(|e| e.kind == Kind::Gauge) {
        if let Some(name) = e.json_name {
            s.gauges.push(GaugeValue { name: name.to_owned(), value: e.value, labels: BTreeMap::new() });
        }
    }
    s.gauges.sort_by(|a, b| a.name.cmp(&b.name));
    s
}

/// One metric family of the text format: all its lines follow one `# TYPE`.
struct Family {
    kind: Kind,
    help: String,
    lines: Vec<String>,
}

/// The Prometheus text rendering at `now`; counters and samples idle for longer than
/// `max_idle` are left out (Consul's `prometheus_retention_time`). `help` names each family.
pub(crate) fn prometheus(
    reg: &Registry,
    now: Instant,
    max_idle: Option<Duration>,
    extra: &[Extra],
    help: impl Fn(&str) -> Option<&'static str>,
) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    // Only the cumulative figures are used here, so any interval index will do.
    for v in reg.views(0, now, max_idle) {
        let name = metric_name(&v.series.name);
        let family = families.entry(name.clone()).or_insert_with(|| Family {
            kind: v.series.kind,
            help: help(&v.series.name).map_or_else(|| name.clone(), str::to_owned),
            lines: Vec::new(),
        });
        if family.kind != v.series.kind {
            continue; // The same name used for two kinds: the first one wins.
        }
        family.lines.extend(series_lines(&name, &v));
    }
    for e in extra {
        let line = format!("{} {}", e.prom_name, number(e.value));
        let f = families.entry(e.prom_name.to_owned()).or_insert_with(|| Family {
            kind: e.kind,
            help: e.help.to_owned(),
            lines: Vec::new(),
        });
        if f.kind == e.kind {
            f.lines.push(line);
        }
    }
    let mut out = String::new();
    for (name, f) in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Sample => "summary",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for line in f.lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn series_lines(name: &str, v: &View) -> Vec<String> {
    let mut labels: Vec<(String, &str)> =
        v.series.labels.iter().map(|(k, val)| (label_name(k), &**val)).collect();
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|a, b| a.0 == b.0);
    let set = |extra: Option<(&str, String)>| label_set(&labels, extra);
    match v.series.kind {
        Kind::Counter => vec![format!("{name}{} {}", set(None), number(v.total_sum))],
        Kind::Gauge => vec![format!("{name}{} {}", set(None), number(v.value))],
        Kind::Sample => {
            let mut lines: Vec<String> = QUANTILES
                .iter()
                .zip(v.quantiles)
                .map(|(q, val)| format!("{name}{} {}", set(Some(("quantile", q.to_string()))), number(val)))
                .collect();
            lines.push(format!("{name}_sum{} {}", set(None), number(v.total_sum)));
            lines.push(format!("{name}_count{} {}", set(None), v.total_count));
            lines
        }
    }
}

fn label_set(labels: &[(String, &str)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_value(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape_value(&v)));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// A dotted name in Prometheus spelling.
pub(crate) fn metric_name(dotted: &str) -> String {
    sanitize(dotted, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn label_name(name: &str) -> String {
    let n = sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_');
    // `__` prefixes are reserved for Prometheus itself.
    if n.starts_with("__") { format!("x{n}") } else { n }
}

fn sanitize(s: &str, ok: impl Fn(char) -> bool) -> String {
    let mut out: String = s.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the text format spells it (`NaN`, `+Inf`, `-Inf`, else the shortest
/// decimal that round-trips).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
