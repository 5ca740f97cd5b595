//! Telemetry: a process-wide metrics registry with Consul's metric names, its two
//! renderings for `GET /v1/agent/metrics` (Consul's JSON and Prometheus text), and the log
//! stream behind `/v1/agent/monitor` ([`logs`]).
//!
//! ```text
//!  incr / gauge / sample_ms / timer / in_flight ─► Registry (series by name + labels)
//!     ├─ per 10 s interval: count, sum, min, max, mean, stddev ─► summary()    (JSON)
//!     └─ cumulative totals, 10 s quantiles, retention expiry  ─► prometheus() (text 0.0.4)
//! ```
//!
//! Names are Consul's dotted ones (`consul.api.http`, `consul.raft.commitTime`); Prometheus
//! sees them with `.` turned into `_`. The calls are cheap (a read lock and one series lock)
//! and never fail, so any layer may record without ceremony:
//!
//! ```
//! use sekisho::telemetry;
//! telemetry::incr("consul.dns.stale_queries", &[]);
//! telemetry::dns_query("A", "NOERROR");
//! let _t = telemetry::timer("consul.kvs.apply", &[("op", "set")]); // recorded on drop
//! ```

mod clock;
pub(crate) use clock::civil_from_days;
pub mod logs;
mod registry;
mod render;
mod runtime;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use registry::Registry;
pub use render::{GaugeValue, MetricsSummary, PointValue, SampledValue};

/// Consul's in-memory sink interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Metric names recorded by Sekisho itself (Consul's where Consul has one).
pub mod names {
    /// Sample (ms), labels `method`, `path`: every HTTP API request (Consul's name).
    pub const API_HTTP: &str = "consul.api.http";
    /// Counter, labels `method`, `path`, `code`: HTTP API requests by status code.
    pub const API_HTTP_REQUESTS: &str = "consul.api.http.requests";
    /// Counter: client writes committed through Raft (Consul: `consul.raft.apply`).
    pub const RAFT_APPLY: &str = "consul.raft.apply";
    /// Sample (ms): time from proposing a Raft entry to its commit and apply.
    pub const RAFT_COMMIT_TIME: &str = "consul.raft.commitTime";
    /// Sample (ms), label `op` (`set`, `cas`, `lock`, `delete-tree`, ...): KV writes.
    pub const KVS_APPLY: &str = "consul.kvs.apply";
    /// Sample (ms): transactions (`/v1/txn`).
    pub const TXN_APPLY: &str = "consul.txn.apply";
    /// Sample (ms): catalog registrations.
    pub const CATALOG_REGISTER: &str = "consul.catalog.register";
    /// Sample (ms): catalog deregistrations.
    pub const CATALOG_DEREGISTER: &str = "consul.catalog.deregister";
    /// Sample (ms): session creations and destructions.
    pub const SESSION_APPLY: &str = "consul.session.apply";
    /// Gauge: blocking queries waiting right now.
    pub const QUERIES_BLOCKING: &str = "consul.rpc.queries_blocking";
    /// Counter, labels `type`, `rcode`: DNS queries answered.
    pub const DNS_QUERIES: &str = "consul.dns.queries";
    /// Gauge, label `status` (`passing`, `warning`, `critical`): this agent's checks.
    pub const AGENT_CHECKS: &str = "consul.agent.checks";
    /// Gauge, label `cert`: seconds until a certificate this agent presents expires.
    pub const TLS_CERT_EXPIRY: &str = "consul.agent.tls.cert.expiry";
    /// Gauge (ms), secondary datacenters: how long the ACL replica has gone unconfirmed by
    /// the primary (0 while replication keeps up). Beyond Consul.
    pub const ACL_REPLICATION_LAG: &str = "sekisho.acl.replication.lag";
    /// Counter, labels `limit_type` (`global/read`, `global/write`) and `mode`
    /// (`permissive`, `enforcing`): requests over `limits.request_limits` (Consul's name).
    pub const RATE_LIMIT_EXCEEDED: &str = "consul.rpc.rate_limit.exceeded";
    /// Counter, label `limit` (the `limits.*` or `dns_config.*` key): connections, requests
    /// and DNS queries refused by a limit. Beyond Consul.
    pub const LIMIT_REJECTED: &str = "sekisho.limits.rejected";
    /// Counter: `consistent` reads whose quorum round missed while this server still led and
    /// were tried again. Beyond Consul.
    pub const READ_QUORUM_RETRIES: &str = "sekisho.raft.read_quorum_retries";
}

/// One-line descriptions for the Prometheus `# HELP` lines.
fn help(name: &str) -> Option<&'static str> {
    use names::*;
    Some(match name {
        API_HTTP => "Time (ms) to serve an HTTP API request, by method and route.",
        API_HTTP_REQUESTS => "HTTP API requests served, by method, route and status code.",
        RAFT_APPLY => "Client writes committed through Raft.",
        RAFT_COMMIT_TIME => "Time (ms) from proposing a Raft entry until it is committed and applied.",
        KVS_APPLY => "Time (ms) to complete a KV write, by operation.",
        TXN_APPLY => "Time (ms) to complete a transaction.",
        CATALOG_REGISTER => "Time (ms) to complete a catalog registration.",
        CATALOG_DEREGISTER => "Time (ms) to complete a catalog deregistration.",
        SESSION_APPLY => "Time (ms) to complete a session create or destroy.",
        QUERIES_BLOCKING => "Blocking queries currently waiting.",
        DNS_QUERIES => "DNS queries answered, by query type and response code.",
        AGENT_CHECKS => "This agent's health checks, by status.",
        TLS_CERT_EXPIRY => "Seconds until a certificate this agent presents expires, by certificate.",
        RATE_LIMIT_EXCEEDED => "Requests over limits.request_limits, by limit and mode.",
        LIMIT_REJECTED => "Connections, requests and DNS queries refused by a limit, by limit key.",
        READ_QUORUM_RETRIES => {
            "Consistent reads whose leadership check missed its quorum and was tried again."
        }
        ACL_REPLICATION_LAG => {
            "Milliseconds the ACL replica of a secondary datacenter has gone unconfirmed by the primary."
        }
        _ => return None,
    })
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let _ = *runtime::STARTED;
    let registry = Registry::new(INTERVAL);
    // Gauges an operator alerts on exist from the start, at zero.
    registry.set_gauge(names::QUERIES_BLOCKING, &[], 0.0, Instant::now());
    registry
});

/// `telemetry.prometheus_retention_time` in milliseconds; 0 disables the Prometheus format.
static RETENTION_MS: AtomicU64 = AtomicU64::new(0);

/// Sets `telemetry.prometheus_retention_time` for this process: how long a counter or sample
/// that stopped changing stays in the Prometheus output. Zero (Consul's default) makes
/// `?format=prometheus` answer 415, as Consul does. The agent calls this once at start.
pub fn configure(prometheus_retention: Duration) {
    let ms = u64::try_from(prometheus_retention.as_millis()).unwrap_or(u64::MAX);
    RETENTION_MS.store(ms, Ordering::Relaxed);
    LazyLock::force(&REGISTRY);
}

/// The configured Prometheus retention (zero when the Prometheus format is disabled).
pub fn prometheus_retention() -> Duration {
    Duration::from_millis(RETENTION_MS.load(Ordering::Relaxed))
}

/// Adds one to a counter.
pub fn incr(name: &str, labels: &[(&str, &str)]) {
    REGISTRY.incr(name, labels, 1.0, Instant::now());
}

/// Adds `n` to a counter.
pub fn incr_by(name: &str, labels: &[(&str, &str)], n: f64) {
    REGISTRY.incr(name, labels, n, Instant::now());
}

/// Sets a gauge.
pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64) {
    REGISTRY.set_gauge(name, labels, value, Instant::now());
}

/// Adds `delta` (may be negative) to a gauge.
pub fn gauge_add(name: &str, labels: &[(&str, &str)], delta: f64) {
    REGISTRY.add_gauge(name, labels, delta, Instant::now());
}

/// Records one observation, in milliseconds for timings.
pub fn sample_ms(name: &str, labels: &[(&str, &str)], ms: f64) {
    REGISTRY.sample(name, labels, ms, Instant::now());
}

/// Counts one DNS query answered with `rcode` (`NOERROR`, `NXDOMAIN`, ...) for a question of
/// type `qtype` (`A`, `SRV`, ...).
pub fn dns_query(qtype: &str, rcode: &str) {
    incr(names::DNS_QUERIES, &[("type", qtype), ("rcode", rcode)]);
}

/// Publishes how many of this agent's checks are in each status.
pub fn check_status_counts(passing: usize, warning: usize, critical: usize) {
    for (status, n) in [("passing", passing), ("warning", warning), ("critical", critical)] {
        gauge(names::AGENT_CHECKS, &[("status", status)], n as f64);
    }
}

type OwnedLabels = Vec<(String, String)>;

fn own(labels: &[(&str, &str)]) -> OwnedLabels {
    labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn borrow(labels: &OwnedLabels) -> Vec<(&str, &str)> {
    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Starts timing; the elapsed milliseconds are recorded as a sample when the guard drops.
pub fn timer(name: &'static str, labels: &[(&str, &str)]) -> Timer {
    Timer { name, labels: own(labels), start: Instant::now() }
}

/// A running [`timer`].
#[derive(Debug)]
#[must_use = "the time is recorded when the timer is dropped"]
pub struct Timer {
    name: &'static str,
    labels: OwnedLabels,
    start: Instant,
}

impl Drop for Timer {
    fn drop(&mut self) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        sample_ms(self.name, &borrow(&self.labels), ms);
    }
}

/// Adds one to a gauge now and takes it back when the guard drops (in-flight counts).
pub fn in_flight(name: &'static str, labels: &[(&str, &str)]) -> InFlight {
    gauge_add(name, labels, 1.0);
    InFlight { name, labels: own(labels) }
}

/// A running [`in_flight`] count.
#[derive(Debug)]
#[must_use = "the gauge goes down when the guard is dropped"]
pub struct InFlight {
    name: &'static str,
    labels: OwnedLabels,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge_add(self.name, &borrow(&self.labels), -1.0);
    }
}

/// Consul's JSON for `GET /v1/agent/metrics`: the last finished 10 s interval (the current
/// one while none has finished), with the runtime gauges read now.
pub fn render_json() -> MetricsSummary {
    let now = Instant::now();
    expire(now);
    render::summary(&REGISTRY, REGISTRY.shown_interval(now), now, &runtime::extras())
}

/// The Prometheus text format, or `None` when the retention is zero (format disabled).
pub fn render_prometheus() -> Option<String> {
    let retention = prometheus_retention();
    if retention.is_zero() {
        return None;
    }
    let now = Instant::now();
    expire(now);
    Some(render::prometheus(&REGISTRY, now, Some(retention), &runtime::extras(), help))
}

/// Forgets counters and samples idle past both the retention and what the JSON can show.
fn expire(now: Instant) {
    let keep = prometheus_retention().max(INTERVAL * 3);
    REGISTRY.expire(now, keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_and_in_flight_guards_record_on_drop() {
        {
            let _t = timer("test.mod.timer", &[("op", "x")]);
            let _g = in_flight("test.mod.inflight", &[]);
            let now = Instant::now();
            let v = REGISTRY.views(0, now, None);
            let g = v.iter().find(|v| &*v.series.name == "test.mod.inflight").unwrap();
            assert_eq!(g.value, 1.0);
        }
        let v = REGISTRY.views(0, Instant::now(), None);
        let g = v.iter().find(|v| &*v.series.name == "test.mod.inflight").unwrap();
        assert_eq!(g.value, 0.0);
        let t = v.iter().find(|v| &*v.series.name == "test.mod.timer").unwrap();
        assert_eq!(t.total_count, 1);
        assert_eq!(&*t.series.labels[0].1, "x");
    }

    #[test]
    fn check_counts_become_one_gauge_per_status() {
        check_status_counts(3, 1, 0);
        let json = render_json();
        let mut got: Vec<(String, f64)> = json
            .gauges
            .iter()
            .filter(|g| g.name == names::AGENT_CHECKS)
            .map(|g| (g.labels["status"].clone(), g.value))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, [("critical".into(), 0.0), ("passing".into(), 3.0), ("warning".into(), 1.0)]);
    }
}
