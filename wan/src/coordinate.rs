//! Network coordinates: Serf's Vivaldi estimator, as Consul uses it for `consul rtt`,
//! `?near=` sorting and datacenter ordering.
//!
//! Each node keeps a [`Client`] that places the node in a virtual space where the distance
//! between two coordinates estimates the round-trip time between the two nodes. Every probe
//! ack gives one observation (the peer's coordinate plus the measured RTT), and the client
//! moves a little to make its estimate agree with it:
//!
//! ```text
//!  peer coordinate ─┐
//!  measured rtt ────┴─► Client::update ── peer and rtt checked (valid, compatible, ≤ 10 s)
//!                            │
//!                            ├─► latency filter: median of the last 3 rtts from that peer
//!                            ├─► Vivaldi step: error estimate, then a spring force
//!                            ├─► adjustment: mean residual over the last 20 observations
//!                            ├─► gravity: a weak pull back towards the origin (no drift)
//!                            └─► still finite? if not, reset to the origin (stats().resets)
//! ```
//!
//! Every length is in seconds, as in Serf and on Consul's wire (`Vec`, `Height`, `Adjustment`).
//! The distance between two coordinates is `‖a.vec − b.vec‖ + a.height + b.height`, plus both
//! adjustments when that sum stays positive ([`Coordinate::distance_to`]).
//!
//! This module does no I/O and reads no clock: the caller measures the RTT and passes it in.
//! The only randomness (a direction to push apart two nodes sitting on the same point) comes
//! from a small seeded generator, so a run is reproducible ([`Client::with_seed`]).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest round-trip time [`Client::update`] accepts, as in Serf.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// Below this, two positions count as the same point and an RTT counts as zero (Serf's value).
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// Seed used by [`Client::new`].
const DEFAULT_SEED: u64 = 0x5e6b_1540_7a1d_0001;

/// Tuning parameters of the Vivaldi estimator. [`Config::default`] gives Serf's values; Consul
/// uses them unchanged for both the LAN and the WAN pool.
///
/// Papers cited: \[1\] Dabek et al., "Vivaldi: A decentralized network coordinate system"
/// (SIGCOMM 2004); \[2\] Ledlie, Gardner, Seltzer, "Network Coordinates in the Wild" (NSDI
/// 2007); \[3\] Lee et al., "On suitability of Euclidean embedding for host-based network
/// coordinate systems" (IEEE/ACM ToN 2010).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Number of Euclidean dimensions (length of [`Coordinate::vec`]); default 8. Must be > 0.
    pub dimensionality: usize,
    /// Error of a fresh coordinate and the ceiling of the error estimate; default 1.5.
    pub vivaldi_error_max: f64,
    /// How much one observation can move the error estimate (\[1\]'s `ce`); default 0.25.
    pub vivaldi_ce: f64,
    /// How much one observation can move the coordinate (\[1\]'s `cc`); default 0.25.
    pub vivaldi_cc: f64,
    /// Observations kept to compute the adjustment term (\[3\]); default 20, 0 disables it.
    pub adjustment_window_size: usize,
    /// Floor of the height term in seconds; default 10 µs (`10e-6`).
    pub height_min: f64,
    /// RTT samples kept per peer; the median of them is used (\[2\]); default 3.
    pub latency_filter_size: usize,
    /// Strength of the pull towards the origin: larger is weaker (\[2\]); default 150.
    pub gravity_rho: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dimensionality: 8,
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

impl Config {
    /// Checks every parameter; the error names the field and the rule it breaks.
    pub fn validate(&self) -> Result<(), CoordinateError> {
        let checks: [(bool, &'static str, &'static str); 7] = [
            (self.dimensionality > 0, "dimensionality", "must be > 0"),
            (positive(self.vivaldi_error_max), "vivaldi_error_max", "must be a finite number > 0"),
            (fraction(self.vivaldi_ce), "vivaldi_ce", "must be > 0 and <= 1"),
            (fraction(self.vivaldi_cc), "vivaldi_cc", "must be > 0 and <= 1"),
            (
                self.height_min.is_finite() && self.height_min >= 0.0,
                "height_min",
                "must be a finite number >= 0",
            ),
            (self.latency_filter_size > 0, "latency_filter_size", "must be > 0"),
            (positive(self.gravity_rho), "gravity_rho", "must be a finite number > 0"),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            Some((_, key, rule)) => Err(CoordinateError::InvalidConfig { key, rule }),
            None => Ok(()),
        }
    }
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn fraction(x: f64) -> bool {
    x > 0.0 && x <= 1.0
}

/// Why a coordinate operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinateError {
    /// A [`Config`] field is out of range.
    #[error("invalid coordinate config: {key} {rule}")]
    InvalidConfig {
        /// The field, as named in [`Config`].
        key: &'static str,
        /// The rule it breaks, e.g. "must be > 0".
        rule: &'static str,
    },
    /// The other coordinate has a different number of dimensions.
    #[error("dimensions aren't compatible: expected {expected}, got {got}")]
    Incompatible {
        /// Our dimensionality.
        expected: usize,
        /// The other coordinate's.
        got: usize,
    },
    /// The other coordinate has a NaN or infinite component.
    #[error("coordinate is invalid")]
    Invalid,
    /// The RTT is longer than [`MAX_RTT`].
    #[error("round trip time not in valid range, duration {rtt:?} is not a positive value less than 10s")]
    RttOutOfRange {
        /// The RTT that was passed in.
        rtt: Duration,
    },
}

/// A node's position in the network coordinate space, with Consul's JSON field names
/// (`{"Vec":[…],"Error":1.5,"Adjustment":0,"Height":1e-5}`). Lengths are in seconds.
///
/// A missing field decodes as zero (and a missing or `null` `Vec` as empty, which is then
/// incompatible with every real coordinate), as Go's decoder would leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Coordinate {
    /// The Euclidean part, one entry per dimension.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub vec: Vec<f64>,
    /// Confidence in this coordinate (dimensionless; lower is better).
    #[serde(default)]
    pub error: f64,
    /// Offset added to distances, learned from recent residuals.
    #[serde(default)]
    pub adjustment: f64,
    /// Non-Euclidean part: the node's access-link delay, added to every distance.
    #[serde(default)]
    pub height: f64,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Option::<Vec<f64>>::deserialize(d)?.unwrap_or_default())
}

impl Coordinate {
    /// A coordinate at the origin with the largest error and the smallest height: where every
    /// node starts.
    pub fn new(config: &Config) -> Self {
        Self {
            vec: vec![0.0; config.dimensionality],
            error: config.vivaldi_error_max,
            adjustment: 0.0,
            height: config.height_min,
        }
    }

    /// False when any component is NaN or infinite.
    pub fn is_valid(&self) -> bool {
        self.vec.iter().chain([&self.error, &self.adjustment, &self.height]).all(|x| x.is_finite())
    }

    /// True when both coordinates have the same number of dimensions.
    pub fn is_compatible_with(&self, other: &Self) -> bool {
        self.vec.len() == other.vec.len()
    }

    /// Estimated RTT to `other`, or `None` when the two are incompatible, either is invalid
    /// (see [`Self::is_valid`]) or the arithmetic overflows.
    pub fn checked_distance_to(&self, other: &Self) -> Option<Duration> {
        if !self.is_compatible_with(other) || !self.is_valid() || !other.is_valid() {
            return None;
        }
        let secs = self.distance_secs(other);
        secs.is_finite().then(|| secs_to_duration(secs))
    }

    /// Estimated RTT to `other`: Euclidean distance plus both heights, plus both adjustments
    /// when that keeps it positive; truncated to whole nanoseconds, as Serf does. Returns
    /// [`Duration::MAX`] ("unknown, infinitely far") where [`Self::checked_distance_to`] gives
    /// `None` (Serf panics on incompatible dimensions instead).
    pub fn distance_to(&self, other: &Self) -> Duration {
        self.checked_distance_to(other).unwrap_or(Duration::MAX)
    }

    /// Distance in seconds without the adjustment terms. Assumes compatible dimensions.
    fn raw_distance_secs(&self, other: &Self) -> f64 {
        magnitude(self.vec.iter().zip(&other.vec).map(|(a, b)| a - b)) + self.height + other.height
    }

    /// Distance in seconds with the adjustment terms when they keep it positive.
    fn distance_secs(&self, other: &Self) -> f64 {
        let raw = self.raw_distance_secs(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 { adjusted } else { raw }
    }

    /// Moves by `force` seconds away from `other` (towards it when negative). The height
    /// grows or shrinks in proportion, never below `height_min`. Assumes compatible dimensions.
    fn apply_force(&self, height_min: f64, force: f64, other: &Self, rng: &mut SplitMix64) -> Self {
        let mut moved = self.clone();
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec, rng);
        for (x, u) in moved.vec.iter_mut().zip(unit) {
            *x += u * force;
        }
        if mag > ZERO_THRESHOLD {
            moved.height += (self.height + other.height) * force / mag;
            // Written as a comparison, not `f64::max`, so a NaN stays NaN and triggers a reset.
            if moved.height < height_min {
                moved.height = height_min;
            }
        }
        moved
    }
}

/// Seconds to a `Duration`, truncated to nanoseconds; negative gives zero, huge saturates.
fn secs_to_duration(secs: f64) -> Duration {
    // `as` saturates at both ends, which is the clamping wanted here.
    Duration::from_nanos((secs * 1.0e9) as u64)
}

fn magnitude(components: impl Iterator<Item = f64>) -> f64 {
    components.map(|x| x * x).sum::<f64>().sqrt()
}

/// Unit vector pointing from `to` towards `from` (the way `from` moves when pushed away from
/// `to`), and the distance between them. On top of each other: a random direction, distance 0.
fn unit_vector_at(from: &[f64], to: &[f64], rng: &mut SplitMix64) -> (Vec<f64>, f64) {
    let diff: Vec<f64> = from.iter().zip(to).map(|(a, b)| a - b).collect();
    let mag = magnitude(diff.iter().copied());
    if mag > ZERO_THRESHOLD {
        return (diff.iter().map(|x| x / mag).collect(), mag);
    }
    let random: Vec<f64> = diff.iter().map(|_| rng.next_f64() - 0.5).collect();
    let random_mag = magnitude(random.iter().copied());
    if random_mag > ZERO_THRESHOLD {
        return (random.iter().map(|x| x / random_mag).collect(), 0.0);
    }
    let mut axis = vec![0.0; diff.len()];
    if let Some(first) = axis.first_mut() {
        *first = 1.0;
    }
    (axis, 0.0)
}

/// Counters of notable events inside a [`Client`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Times the coordinate became invalid (NaN or infinite) and was reset to the origin.
    pub resets: u64,
}

/// A node's own coordinate estimator (Serf's `coordinate.Client`). Not internally locked:
/// the driver that owns it serialises calls.
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
    coord: Coordinate,
    origin: Coordinate,
    adjustment_index: usize,
    adjustment_samples: Vec<f64>,
    latency_samples: HashMap<String, VecDeque<f64>>,
    stats: ClientStats,
    rng: SplitMix64,
}

impl Client {
    /// A client at the origin, after checking `config`. Uses a fixed seed for the rare random
    /// direction; see [`Self::with_seed`].
    pub fn new(config: Config) -> Result<Self, CoordinateError> {
        Self::with_seed(config, DEFAULT_SEED)
    }

    /// Like [`Self::new`], with the seed of the generator used to pick a direction when two
    /// nodes sit on the same point (a hash of the node name is a good choice).
    pub fn with_seed(config: Config, seed: u64) -> Result<Self, CoordinateError> {
        config.validate()?;
        Ok(Self {
            coord: Coordinate::new(&config),
            origin: Coordinate::new(&config),
            adjustment_index: 0,
            adjustment_samples: vec![0.0; config.adjustment_window_size],
            latency_samples: HashMap::new(),
            stats: ClientStats::default(),
            rng: SplitMix64::new(seed),
            config,
        })
    }

    /// The current estimate of this node's coordinate.
    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    /// Replaces the coordinate (e.g. one restored from disk) if it is valid and compatible.
    pub fn set_coordinate(&mut self, coord: Coordinate) -> Result<(), CoordinateError> {
        self.check(&coord)?;
        self.coord = coord;
        Ok(())
    }

    /// Counters since creation.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Drops the RTT samples kept for `node` (call when it leaves the cluster).
    pub fn forget_node(&mut self, node: &str) {
        self.latency_samples.remove(node);
    }

    /// Estimated RTT from this node to `other` (see [`Coordinate::distance_to`]).
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        self.coord.distance_to(other)
    }

    /// Folds one observation in: `other_node` is at `other` and answered a probe in `rtt`.
    /// Returns the new coordinate. A refused observation changes nothing.
    ///
    /// Refused: an `other` that is invalid or has different dimensions, and an `rtt` above
    /// [`MAX_RTT`]. A zero `rtt` is accepted (Serf does so since coarse clocks produce them,
    /// hashicorp/consul#3789) and counts as 1 µs in the spring step.
    pub fn update(
        &mut self,
        other_node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<Coordinate, CoordinateError> {
        self.check(other)?;
        if rtt > MAX_RTT {
            return Err(CoordinateError::RttOutOfRange { rtt });
        }
        let rtt_secs = self.latency_filter(other_node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt_secs);
        self.update_adjustment(other, rtt_secs);
        self.update_gravity();
        if !self.coord.is_valid() {
            self.reset();
        }
        Ok(self.coord.clone())
    }

    /// Back to the origin. Unlike Serf, the adjustment window is cleared too: the residual that
    /// broke the coordinate is usually in it, and would break the next 20 updates as well.
    fn reset(&mut self) {
        self.stats.resets += 1;
        self.coord = Coordinate::new(&self.config);
        self.adjustment_samples.iter_mut().for_each(|s| *s = 0.0);
        self.adjustment_index = 0;
    }

    fn check(&self, other: &Coordinate) -> Result<(), CoordinateError> {
        if !self.coord.is_compatible_with(other) {
            return Err(CoordinateError::Incompatible {
                expected: self.coord.vec.len(),
                got: other.vec.len(),
            });
        }
        if !other.is_valid() {
            return Err(CoordinateError::Invalid);
        }
        Ok(())
    }

    /// Records `rtt_secs` for `node` and returns the median of its last few samples.
    fn latency_filter(&mut self, node: &str, rtt_secs: f64) -> f64 {
        let size = self.config.latency_filter_size;
        let samples = self.latency_samples.entry(node.to_owned()).or_default();
        samples.push_back(rtt_secs);
        while samples.len() > size {
            samples.pop_front();
        }
        let mut sorted: Vec<f64> = samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    /// The Vivaldi step: update the error estimate, then push along the line to `other` in
    /// proportion to how wrong the current distance is.
    fn update_vivaldi(&mut self, other: &Coordinate, rtt_secs: f64) {
        let rtt = rtt_secs.max(ZERO_THRESHOLD);
        let dist = self.coord.distance_secs(other);
        let wrongness = (dist - rtt).abs() / rtt;
        // Clamps written as comparisons, not `f64::max`/`min`, so a NaN stays visible.
        let mut total_error = self.coord.error + other.error;
        if total_error < ZERO_THRESHOLD {
            total_error = ZERO_THRESHOLD;
        }
        let weight = self.coord.error / total_error;
        let ce = self.config.vivaldi_ce * weight;
        self.coord.error = ce * wrongness + self.coord.error * (1.0 - ce);
        if self.coord.error > self.config.vivaldi_error_max {
            self.coord.error = self.config.vivaldi_error_max;
        }
        let force = self.config.vivaldi_cc * weight * (rtt - dist);
        self.coord = self.coord.apply_force(self.config.height_min, force, other, &mut self.rng);
    }

    /// Keeps a window of `rtt − raw distance` residuals; the adjustment is half their mean.
    fn update_adjustment(&mut self, other: &Coordinate, rtt_secs: f64) {
        let window = self.config.adjustment_window_size;
        if window == 0 {
            return;
        }
        self.adjustment_samples[self.adjustment_index] = rtt_secs - self.coord.raw_distance_secs(other);
        self.adjustment_index = (self.adjustment_index + 1) % window;
        self.coord.adjustment = self.adjustment_samples.iter().sum::<f64>() / (2.0 * window as f64);
    }

    /// Pulls the coordinate towards the origin with a force growing with the square of its
    /// distance from it, so the whole system does not drift away.
    fn update_gravity(&mut self) {
        let dist = self.origin.distance_secs(&self.coord);
        let force = -(dist / self.config.gravity_rho).powi(2);
        self.coord = self.coord.apply_force(self.config.height_min, force, &self.origin, &mut self.rng);
    }
}

/// Stable-sorts `items` by estimated RTT from `origin`, nearest first, as Consul's `?near=`
/// does. Items for which `coord_of` gives no coordinate, or one that is incompatible with
/// `origin` or invalid, go last in their original order.
///
/// Consul leaves the list untouched when the `near` node itself has no coordinate (or is in
/// another datacenter); that check is the caller's.
pub fn sort_by_distance<T>(
    origin: &Coordinate,
    items: &mut [T],
    coord_of: impl Fn(&T) -> Option<&Coordinate>,
) {
    // `sort_by_cached_key` is stable; `None` sorts after every `Some`.
    items.sort_by_cached_key(|item| {
        let distance = coord_of(item).and_then(|c| origin.checked_distance_to(c));
        (distance.is_none(), distance)
    });
}

/// SplitMix64: a tiny, seedable generator, enough for picking a random direction.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sim_tests;
