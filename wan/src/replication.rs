//! The replication cursor: what a secondary datacenter's leader needs to pull a set of
//! objects from the primary and keep its copy equal, without I/O.
//!
//! ```text
//!  loop: fetch(min_index = cursor.index) ─ ok ─► diff(local, remote) ─► apply upserts/deletes
//!          │                                     cursor.succeeded(index, now)   (backoff reset)
//!          └ error ─► cursor.failed(msg, now) ─► wait cursor.backoff() (250 ms doubling to 30 s)
//!  status: Enabled, Running, ReplicatedIndex, LastSuccess, LastError; lag(now) = how long the
//!          copy has not been confirmed current (0 while every poll succeeds)
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The first retry delay after a failed fetch.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where a replication loop stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Replication is configured here (a secondary with a replication token).
    pub enabled: bool,
    /// The loop runs (this server leads its datacenter).
    pub running: bool,
    /// The index of the source the copy last matched (blocking queries start from it).
    pub index: u64,
    /// When a fetch last succeeded.
    pub last_success: Option<SystemTime>,
    /// When a fetch last failed.
    pub last_error: Option<SystemTime>,
    /// Why it failed.
    pub last_error_message: String,
    failures: u32,
}

impl Cursor {
    /// A fetch answered at source index `index`: the copy is current as of `now`.
    pub fn succeeded(&mut self, index: u64, now: SystemTime) {
        self.index = index;
        self.last_success = Some(now);
        self.failures = 0;
    }

    /// A fetch or apply failed with `message`.
    pub fn failed(&mut self, message: impl Into<String>, now: SystemTime) {
        self.last_error = Some(now);
        self.last_error_message = message.into();
        self.failures = self.failures.saturating_add(1);
    }

    /// The source's index went backwards (a restored snapshot, a new primary): start over.
    pub fn reset_index(&mut self) {
        self.index = 0;
    }

    /// How long to wait before the next fetch: nothing after a success, else 250 ms doubling
    /// per consecutive failure up to 30 s.
    pub fn backoff(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let shift = (self.failures - 1).min(16);
        BACKOFF_MIN.saturating_mul(1 << shift).min(BACKOFF_MAX)
    }

    /// How long the copy has gone unconfirmed: zero while the last fetch succeeded, else the
    /// time since the last success (since `started` when none ever did).
    pub fn lag(&self, now: SystemTime, started: SystemTime) -> Duration {
        let failing = match (self.last_error, self.last_success) {
            (Some(e), Some(s)) => e > s,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !failing && self.last_success.is_some() {
            return Duration::ZERO;
        }
        now.duration_since(self.last_success.unwrap_or(started)).unwrap_or_default()
    }
}

/// What to change so the copy equals the source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diff<T> {
    /// Objects new or changed in the source.
    pub upsert: Vec<T>,
    /// IDs present in the copy and gone from the source.
    pub delete: Vec<String>,
}

impl<T> Diff<T> {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.delete.is_empty()
    }
}

impl<T> Default for Diff<T> {
    fn default() -> Self {
        Diff { upsert: Vec::new(), delete: Vec::new() }
    }
}

/// The changes that make `copy` (by ID) equal `source`. `same` compares two versions of an
/// object, ignoring what legitimately differs between datacenters (Raft indexes).
pub fn diff<T: Clone>(
    copy: &BTreeMap<String, T>,
    source: &[T],
    id_of: impl Fn(&T) -> &str,
    same: impl Fn(&T, &T) -> bool,
) -> Diff<T> {
    let mut out = Diff::default();
    for s in source {
        match copy.get(id_of(s)) {
            Some(c) if same(c, s) => {}
            _ => out.upsert.push(s.clone()),
        }
    }
    for id in copy.keys() {
        if !source.iter().any(|s| id_of(s) == id) {
            out.delete.push(id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Obj {
        id: String,
        body: &'static str,
        index: u64,
    }

    fn obj(id: &str, body: &'static str, index: u64) -> Obj {
        Obj { id: id.into(), body, index }
    }

    #[test]
    fn diff_upserts_changes_and_deletes_what_is_gone_ignoring_indexes() {
        let copy: BTreeMap<String, Obj> = [obj("a", "x", 5), obj("b", "y", 6), obj("c", "z", 7)]
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect();
        let source = [obj("a", "x", 100), obj("b", "changed", 101), obj("d", "new", 102)];
        let d = diff(&copy, &source, |o| &o.id, |a, b| a.body == b.body);
        assert_eq!(d.upsert, vec![obj("b", "changed", 101), obj("d", "new", 102)]);
        assert_eq!(d.delete, vec!["c".to_owned()]);
        let same = diff(
            &copy,
            &[obj("a", "x", 1), obj("b", "y", 1), obj("c", "z", 1)],
            |o| &o.id,
            |a, b| a.body == b.body,
        );
        assert!(same.is_empty());
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets_on_success() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut c = Cursor::default();
        assert_eq!(c.backoff(), Duration::ZERO);
        c.failed("down", t0);
        assert_eq!(c.backoff(), Duration::from_millis(250));
        c.failed("down", t0);
        assert_eq!(c.backoff(), Duration::from_millis(500));
        for _ in 0..20 {
            c.failed("down", t0);
        }
        assert_eq!(c.backoff(), BACKOFF_MAX);
        c.succeeded(9, t0);
        assert_eq!((c.backoff(), c.index), (Duration::ZERO, 9));
    }

    #[test]
    fn lag_grows_only_while_fetches_fail() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Duration::from_secs;
        let mut c = Cursor::default();
        assert_eq!(c.lag(t0 + s(3), t0), s(3), "never succeeded: since the start");
        c.succeeded(1, t0 + s(4));
        assert_eq!(c.lag(t0 + s(60), t0), Duration::ZERO, "current");
        c.failed("partition", t0 + s(70));
        assert_eq!(c.lag(t0 + s(75), t0), s(71));
        c.succeeded(2, t0 + s(80));
        assert_eq!(c.lag(t0 + s(81), t0), Duration::ZERO, "caught up");
    }
}
