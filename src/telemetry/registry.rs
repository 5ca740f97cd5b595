//! The metrics registry: series keyed by kind, name and labels, each aggregated two ways.
//!
//! * Per interval (10 s, aligned to the wall clock like go-metrics' in-memory sink): count,
//!   sum, sum of squares, min and max of what was recorded in the current and the previous
//!   interval. `/v1/agent/metrics` shows the last finished interval, as Consul does.
//! * Cumulative, for Prometheus: the total count and sum since the series appeared, and for
//!   samples the observations of the last [`QUANTILE_WINDOW`] for the 0.5/0.9/0.99 quantiles
//!   (go-metrics' Prometheus sink uses a 10 s `MaxAge`).
//!
//! Time comes in as an argument (`now: Instant`), so the tests drive a fake clock. Lookups
//! take a read lock on the map and then a lock on one series, so unrelated series never
//! contend; only the first record of a new series takes the write lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

/// How far back the Prometheus quantiles of a sample look.
pub(crate) const QUANTILE_WINDOW: Duration = Duration::from_secs(10);

/// At most this many recent observations are kept per sample and shard for quantiles.
const WINDOW_CAP: usize = 1024;

/// Each counter and sample keeps its state in this many shards, so that threads recording
/// into the same series (every GET of `/v1/kv`) mostly take different locks; readers merge
/// them. Gauges use shard 0 only.
const SHARDS: usize = 8;

/// The shard the current thread records into (threads are spread round-robin).
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
    SHARD.with(|s| *s)
}

/// One shard on its own cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<State>);

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Increments (Consul's `IncrCounter`); a Prometheus counter.
    Counter,
    /// A last value (Consul's `SetGauge`); a Prometheus gauge.
    Gauge,
    /// Observations such as latencies in ms (Consul's `AddSample`); a Prometheus summary.
    Sample,
}

/// Count, sum, sum of squares, min and max of some observations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Agg {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) sum_sq: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Agg {
    fn ingest(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if self.count == 1 || v < self.min {
            self.min = v;
        }
        if self.count == 1 || v > self.max {
            self.max = v;
        }
    }

    fn merge(&mut self, o: &Agg) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The mean, 0 when empty.
    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// The sample standard deviation, computed as go-metrics does (0 below two values).
    pub(crate) fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        let num = n * self.sum_sq - self.sum * self.sum;
        (num / div).max(0.0).sqrt()
    }
}

#[derive(Debug)]
struct State {
    /// Index of the interval `cur` belongs to.
    interval: u64,
    cur: Agg,
    /// The interval just before `interval`.
    prev: Agg,
    total_count: u64,
    total_sum: f64,
    /// A gauge's value.
    value: f64,
    /// Recent observations of a sample, oldest first.
    window: VecDeque<(Instant, f64)>,
    updated: Instant,
}

impl State {
    fn new(now: Instant, interval: u64) -> State {
        State {
            interval,
            cur: Agg::default(),
            prev: Agg::default(),
            total_count: 0,
            total_sum: 0.0,
            value: 0.0,
            window: VecDeque::new(),
            updated: now,
        }
    }

    /// Moves to interval `idx`: the current aggregate becomes the previous one when `idx`
    /// directly follows it; after a gap both start empty.
    fn roll(&mut self, idx: u64) {
        if idx <= self.interval {
            return;
        }
        self.prev = if idx == self.interval + 1 { self.cur } else { Agg::default() };
        self.cur = Agg::default();
        self.interval = idx;
    }

    fn trim_window(&mut self, now: Instant) {
        while let Some(&(t, _)) = self.window.front() {
            if now.saturating_duration_since(t) <= QUANTILE_WINDOW && self.window.len() <= WINDOW_CAP {
                break;
            }
            self.window.pop_front();
        }
    }
}

/// One metric series: a kind, a dotted name and its labels.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) kind: Kind,
    pub(crate) name: Box<str>,
    pub(crate) labels: Box<[(Box<str>, Box<str>)]>,
    shards: Box<[Shard]>,
}

impl Series {
    fn new(kind: Kind, name: &str, labels: &[(&str, &str)], now: Instant, idx: u64) -> Series {
        Series {
            kind,
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (Box::from(*k), Box::from(*v))).collect(),
            shards: (0..SHARDS).map(|_| Shard(Mutex::new(State::new(now, idx)))).collect(),
        }
    }

    /// The state the current thread records into.
    fn shard(&self) -> &Mutex<State> {
        let i = if self.kind == Kind::Gauge { 0 } else { shard_index() };
        &self.shards[i % self.shards.len()].0
    }

    /// When any shard last changed.
    fn updated(&self) -> Option<Instant> {
        self.shards.iter().map(|s| s.0.lock().updated).max()
    }

    fn matches(&self, kind: Kind, name: &str, labels: &[(&str, &str)]) -> bool {
        self.kind == kind
            && &*self.name == name
            && self.labels.len() == labels.len()
            && self.labels.iter().zip(labels).all(|((k, v), (k2, v2))| &**k == *k2 && &**v == *v2)
    }

    /// go-metrics' key: `name;label=value;…`, the sort key of the JSON rendering.
    pub(crate) fn key(&self) -> String {
        let mut key = self.name.to_string();
        for (k, v) in self.labels.iter() {
            key.push(';');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }
}

/// What a reader sees of one series at one moment.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) series: Arc<Series>,
    /// The aggregate of the interval asked for (empty when nothing was recorded in it).
    pub(crate) interval: Agg,
    pub(crate) total_count: u64,
    pub(crate) total_sum: f64,
    /// A gauge's value.
    pub(crate) value: f64,
    /// The 0.5, 0.9 and 0.99 quantiles of a sample's recent observations (NaN when none).
    pub(crate) quantiles: [f64; 3],
}

/// The quantiles Prometheus users expect from Consul's summaries.
pub(crate) const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A set of series with an interval length and a clock origin.
#[derive(Debug)]
pub(crate) struct Registry {
    interval: Duration,
    /// `origin.0` happened at wall time `origin.1`; later instants map to wall time from it.
    origin: (Instant, SystemTime),
    series: RwLock<HashMap<u64, Vec<Arc<Series>>>>,
}

impl Registry {
    /// A registry whose clock origin is now.
    pub(crate) fn new(interval: Duration) -> Registry {
        Registry::with_origin(interval, Instant::now(), SystemTime::now())
    }

    /// A registry whose instant `at` is wall time `wall` (tests pin both).
    pub(crate) fn with_origin(interval: Duration, at: Instant, wall: SystemTime) -> Registry {
        let interval = interval.max(Duration::from_millis(1));
        Registry { interval, origin: (at, wall), series: RwLock::new(HashMap::new()) }
    }

    /// The aggregation interval.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Index of the interval `now` falls in (wall-clock aligned).
    pub(crate) fn interval_index(&self, now: Instant) -> u64 {
        let since_origin = now.saturating_duration_since(self.origin.0).as_millis();
        let origin_ms = self.origin.1.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        ((origin_ms + since_origin) / self.interval.as_millis()) as u64
    }

    /// Wall-clock start of interval `idx`.
    pub(crate) fn interval_start(&self, idx: u64) -> SystemTime {
        let ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        UNIX_EPOCH + Duration::from_millis(idx.saturating_mul(ms))
    }

    /// The interval `/v1/agent/metrics` shows at `now`: the last finished one when the
    /// registry existed during it, else the current one.
    pub(crate) fn shown_interval(&self, now: Instant) -> u64 {
        let cur = self.interval_index(now);
        let born = self.interval_index(self.origin.0);
        if cur > born { cur - 1 } else { cur }
    }

    /// Runs `f` on the state of a series, creating the series first when it is new. The map's
    /// read lock is held meanwhile (lock order: map, then series), which saves touching the
    /// series' reference count on every record.
    fn with_state<R>(
        &self,
        kind: Kind,
        name: &str,
        labels: &[(&str, &str)],
        now: Instant,
        f: impl FnOnce(&mut State) -> R,
    ) -> R {
        let hash = hash_of(kind, name, labels);
        {
            let map = self.series.read();
            if let Some(s) = map.get(&hash).and_then(|b| b.iter().find(|s| s.matches(kind, name, labels))) {
                return f(&mut s.shard().lock());
            }
        }
        let mut map = self.series.write();
        let bucket = map.entry(hash).or_default();
        let i = match bucket.iter().position(|s| s.matches(kind, name, labels)) {
            Some(i) => i,
            None => {
                bucket.push(Arc::new(Series::new(kind, name, labels, now, self.interval_index(now))));
                bucket.len() - 1
            }
        };
        f(&mut bucket[i].shard().lock())
    }

    /// Adds `v` to a counter.
    pub(crate) fn incr(&self, name: &str, labels: &[(&str, &str)], v: f64, now: Instant) {
        self.observe(Kind::Counter, name, labels, v, now);
    }

    /// Records one observation of a sample.
    pub(crate) fn sample(&self, name: &str, labels: &[(&str, &str)], v: f64, now: Instant) {
        self.observe(Kind::Sample, name, labels, v, now);
    }

    fn observe(&self, kind: Kind, name: &str, labels: &[(&str, &str)], v: f64, now: Instant) {
        if !v.is_finite() {
            return;
        }
        let idx = self.interval_index(now);
        self.with_state(kind, name, labels, now, |st| {
            st.roll(idx);
            st.cur.ingest(v);
            st.total_count += 1;
            st.total_sum += v;
            st.updated = now;
            if kind == Kind::Sample {
                st.window.push_back((now, v));
                st.trim_window(now);
            }
        });
    }

    /// Sets a gauge.
    pub(crate) fn set_gauge(&self, name: &str, labels: &[(&str, &str)], v: f64, now: Instant) {
        self.update_gauge(name, labels, now, |g| *g = v);
    }

    /// Adds `delta` (possibly negative) to a gauge.
    pub(crate) fn add_gauge(&self, name: &str, labels: &[(&str, &str)], delta: f64, now: Instant) {
        self.update_gauge(name, labels, now, |g| *g += delta);
    }

    fn update_gauge(&self, name: &str, labels: &[(&str, &str)], now: Instant, f: impl FnOnce(&mut f64)) {
        self.with_state(Kind::Gauge, name, labels, now, |st| {
            f(&mut st.value);
            if !st.value.is_finite() {
                st.value = 0.0;
            }
            st.updated = now;
        });
    }

    /// Every series as seen at `now`, with the aggregate of interval `idx`, sorted by
    /// go-metrics' key. Counters and samples not updated within `max_idle` are left out.
    pub(crate) fn views(&self, idx: u64, now: Instant, max_idle: Option<Duration>) -> Vec<View> {
        let all: Vec<Arc<Series>> = self.series.read().values().flatten().cloned().collect();
        let mut views: Vec<(String, View)> = all
            .into_iter()
            .filter_map(|series| {
                let view = self.view(&series, idx, now, max_idle)?;
                Some((series.key(), view))
            })
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        views.into_iter().map(|(_, v)| v).collect()
    }

    fn view(&self, series: &Arc<Series>, idx: u64, now: Instant, max_idle: Option<Duration>) -> Option<View> {
        let current = self.interval_index(now);
        let mut merged = View {
            series: series.clone(),
            interval: Agg::default(),
            total_count: 0,
            total_sum: 0.0,
            value: 0.0,
            quantiles: [f64::NAN; 3],
        };
        let mut window = Vec::new();
        let mut updated = None;
        for (i, shard) in series.shards.iter().enumerate() {
            let mut st = shard.0.lock();
            updated = updated.max(Some(st.updated));
            st.roll(current);
            st.trim_window(now);
            let agg = if st.interval == idx {
                st.cur
            } else if st.interval == idx + 1 {
                st.prev
            } else {
                Agg::default()
            };
            merged.interval.merge(&agg);
            merged.total_count += st.total_count;
            merged.total_sum += st.total_sum;
            if i == 0 {
                merged.value = st.value;
            }
            window.extend(st.window.iter().map(|(_, v)| *v));
        }
        let idle = updated.map_or(Duration::ZERO, |u| now.saturating_duration_since(u));
        if series.kind != Kind::Gauge && max_idle.is_some_and(|m| idle > m) {
            return None;
        }
        merged.quantiles = quantiles(window.into_iter());
        Some(merged)
    }

    /// Drops counters and samples not updated for longer than `max_idle`.
    pub(crate) fn expire(&self, now: Instant, max_idle: Duration) {
        let mut map = self.series.write();
        for bucket in map.values_mut() {
            bucket.retain(|s| {
                s.kind == Kind::Gauge
                    || s.updated().is_none_or(|u| now.saturating_duration_since(u) <= max_idle)
            });
        }
        map.retain(|_, b| !b.is_empty());
    }

    /// How many series exist (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.read().values().map(Vec::len).sum()
    }

    /// Whether no series exists.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// FNV-1a over the kind, name and labels (with separators): the map key of a series. Much
/// cheaper than SipHash for these short keys, and the keys are ours, not an attacker's.
fn hash_of(kind: Kind, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(&[kind as u8]);
    h.write(name.as_bytes());
    for (k, v) in labels {
        h.write(&[0xff]);
        h.write(k.as_bytes());
        h.write(&[0xfe]);
        h.write(v.as_bytes());
    }
    h.0
}

struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Nearest-rank quantiles of `values`; NaN each when there are none (as Prometheus' client).
fn quantiles(values: impl Iterator<Item = f64>) -> [f64; 3] {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return [f64::NAN; 3];
    }
    v.sort_by(f64::total_cmp);
    QUANTILES.map(|q| {
        let rank = (q * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    })
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
