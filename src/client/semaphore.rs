//! The semaphore half of [`super::lock`]: Go `api.Semaphore`, N holders on one prefix.
//!
//! Each contender holds `<prefix>/<session>` with its session (Behavior `delete`, so the key
//! vanishes with the session); the slots are the `Holders` of the JSON in `<prefix>/.lock`,
//! changed only by check-and-set. A holder whose contender key has no live session is
//! pruned by whoever reads the lock next.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lock::{
    DEFAULT_SEMAPHORE_KEY, Fence, Held, LockError, LockOptions, Probe, Session, join_key, kv_read, put_bool,
};
use super::{Client, KvEntry};

/// The flags of every semaphore key (Go `api.SemaphoreFlagValue`, above 2^63).
pub const SEMAPHORE_FLAG_VALUE: u64 = 0xe0f6_9a2b_aa41_4de0;

/// The value of `<prefix>/.lock` (Go `semaphoreLock`): `{"Limit":2,"Holders":{"<sid>":true}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SemaphoreLock {
    /// The number of slots every contender must agree on.
    pub limit: u32,
    /// The sessions holding a slot (a set: the values are `true`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub holders: BTreeMap<String, bool>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

impl SemaphoreLock {
    /// Decodes the `.lock` entry; no entry (or no value) is an empty lock with `limit`.
    pub fn decode(entry: Option<&KvEntry>, limit: u32) -> Result<Self, LockError> {
        match entry.and_then(|e| e.value.as_deref()) {
            None => Ok(Self { limit, holders: BTreeMap::new() }),
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| LockError::Decode(e.to_string())),
        }
    }

    /// The JSON stored in `.lock` (keys sorted, like Go's encoder).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Drops the holders that no key of `pairs` carries as its session any more.
    pub fn prune_dead_holders(&mut self, pairs: &[KvEntry]) {
        let alive: std::collections::HashSet<&str> =
            pairs.iter().filter_map(|p| p.session.as_deref()).filter(|s| !s.is_empty()).collect();
        self.holders.retain(|holder, _| alive.contains(holder.as_str()));
    }

    /// True when every slot is taken.
    pub fn is_full(&self) -> bool {
        self.holders.len() >= self.limit as usize
    }
}

/// The `.lock` entry among a prefix listing.
pub(super) fn find_lock<'a>(prefix: &str, pairs: &'a [KvEntry]) -> Option<&'a KvEntry> {
    let key = join_key(prefix, DEFAULT_SEMAPHORE_KEY);
    pairs.iter().find(|p| p.key == key)
}

/// The monitor's test: after pruning, `session` still holds a slot.
pub(super) fn holds(prefix: &str, limit: u32, pairs: &[KvEntry], session: &str) -> bool {
    let Ok(mut lock) = SemaphoreLock::decode(find_lock(prefix, pairs), limit) else {
        return false;
    };
    lock.prune_dead_holders(pairs);
    lock.holders.contains_key(session)
}

/// A counting semaphore on a prefix (Go `api.Semaphore`).
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    prefix: String,
    limit: u32,
    opts: LockOptions,
}

impl Semaphore {
    /// A semaphore with `limit` slots (at least 1) under `prefix`.
    pub fn new(client: Client, prefix: impl Into<String>, limit: u32, opts: LockOptions) -> Self {
        Self { client, prefix: prefix.into(), limit: limit.max(1), opts }
    }

    fn lock_key(&self) -> String {
        join_key(&self.prefix, DEFAULT_SEMAPHORE_KEY)
    }

    /// Blocks until a slot is ours; `Ok(None)` when `stop` fired or `deadline` passed first.
    pub async fn acquire(
        &self,
        stop: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<Option<Held>, LockError> {
        let session = Session::create(&self.client, &self.opts, "delete").await?;
        let outcome = tokio::select! {
            r = self.acquire_with(&session.id) => Some(r),
            () = stop.cancelled() => None,
            () = super::lock::sleep_until(deadline) => None,
        };
        match outcome {
            Some(Ok(fence)) => {
                let probe = Probe::Semaphore { prefix: self.prefix.clone(), limit: self.limit };
                Ok(Some(Held::start(self.client.clone(), session, fence, probe, &self.opts)))
            }
            other => {
                if other.is_none() {
                    let _ = self.release_slot(&session.id).await;
                }
                session.close().await;
                other.transpose().map(|_| None)
            }
        }
    }

    async fn acquire_with(&self, sid: &str) -> Result<Fence, LockError> {
        let contender = join_key(&self.prefix, sid);
        let path = format!(
            "/v1/kv/{}?acquire={sid}&flags={SEMAPHORE_FLAG_VALUE}",
            super::url::escape_path(&contender)
        );
        match put_bool(&self.client, &path, self.opts.value.clone()).await {
            Ok(true) => {}
            Ok(false) => return Err(LockError::Contender("<nil>".to_owned())),
            Err(e) => return Err(LockError::Contender(e.to_string())),
        }
        let mut index = 0;
        loop {
            let (pairs, meta) = self.list(index, false).await?;
            let entry = find_lock(&self.prefix, &pairs);
            if entry.is_some_and(|e| e.flags != SEMAPHORE_FLAG_VALUE) {
                return Err(LockError::SemaphoreConflict);
            }
            let mut lock = SemaphoreLock::decode(entry, self.limit)?;
            if lock.limit != self.limit {
                return Err(LockError::LimitConflict { lock: lock.limit, local: self.limit });
            }
            lock.prune_dead_holders(&pairs);
            if lock.is_full() {
                index = meta;
                continue;
            }
            lock.holders.insert(sid.to_owned(), true);
            let cas = entry.map_or(0, |e| e.modify_index);
            if self.write_lock(&lock, cas).await? {
                return self.fence(sid).await;
            }
            index = 0;
        }
    }

    async fn list(&self, index: u64, consistent: bool) -> Result<(Vec<KvEntry>, u64), LockError> {
        kv_read(&self.client, &self.prefix, true, index, self.opts.wait_time, consistent)
            .await
            .map_err(LockError::ReadPrefix)
    }

    async fn write_lock(&self, lock: &SemaphoreLock, cas: u64) -> Result<bool, LockError> {
        let path = format!(
            "/v1/kv/{}?cas={cas}&flags={SEMAPHORE_FLAG_VALUE}",
            super::url::escape_path(&self.lock_key())
        );
        put_bool(&self.client, &path, lock.encode()).await.map_err(LockError::Update)
    }

    /// The contender key's `LockIndex` and the `.lock` write's `ModifyIndex`.
    async fn fence(&self, sid: &str) -> Result<Fence, LockError> {
        let (pairs, _) = self.list(0, true).await?;
        let contender = join_key(&self.prefix, sid);
        let lock_index = pairs.iter().find(|p| p.key == contender).map_or(0, |p| p.lock_index);
        let modify_index = find_lock(&self.prefix, &pairs).map_or(0, |p| p.modify_index);
        Ok(Fence { lock_index, modify_index })
    }

    /// CAS ourselves out of `Holders`, then delete our contender key.
    async fn release_slot(&self, sid: &str) -> Result<(), LockError> {
        loop {
            let (entries, _) = kv_read(&self.client, &self.lock_key(), false, 0, self.opts.wait_time, false)
                .await
                .map_err(LockError::Read)?;
            let entry = entries.first();
            let mut lock = SemaphoreLock::decode(entry, self.limit)?;
            if lock.holders.remove(sid).is_none() {
                break;
            }
            if self.write_lock(&lock, entry.map_or(0, |e| e.modify_index)).await? {
                break;
            }
        }
        let contender = join_key(&self.prefix, sid);
        self.client.kv_delete(&contender, false).await.map(drop).map_err(LockError::Release)
    }

    /// Gives the slot back, then stops renewing and destroys the session.
    pub async fn release(&self, held: Held) -> Result<(), LockError> {
        let released = self.release_slot(held.session_id()).await;
        held.close().await;
        released
    }

    /// Deletes `.lock` when no live session holds a slot (Go `Semaphore.Destroy`);
    /// [`LockError::SemaphoreInUse`] otherwise.
    pub async fn destroy(&self) -> Result<(), LockError> {
        let (pairs, _) = self.list(0, false).await?;
        let Some(entry) = find_lock(&self.prefix, &pairs) else { return Ok(()) };
        if entry.flags != SEMAPHORE_FLAG_VALUE {
            return Err(LockError::SemaphoreConflict);
        }
        let mut lock = SemaphoreLock::decode(Some(entry), self.limit)?;
        lock.prune_dead_holders(&pairs);
        if !lock.holders.is_empty() {
            return Err(LockError::SemaphoreInUse);
        }
        match self.client.kv_delete_cas(&entry.key, entry.modify_index).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(LockError::SemaphoreInUse),
            Err(e) => Err(LockError::Remove(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, session: Option<&str>, value: Option<&str>) -> KvEntry {
        KvEntry {
            key: key.to_owned(),
            session: session.map(str::to_owned),
            value: value.map(|v| v.as_bytes().to_vec()),
            flags: SEMAPHORE_FLAG_VALUE,
            ..KvEntry::default()
        }
    }

    #[test]
    fn lock_json_is_the_go_shape() {
        let mut lock = SemaphoreLock { limit: 2, holders: BTreeMap::new() };
        lock.holders.insert("b-sid".into(), true);
        lock.holders.insert("a-sid".into(), true);
        assert_eq!(
            String::from_utf8(lock.encode()).unwrap(),
            r#"{"Limit":2,"Holders":{"a-sid":true,"b-sid":true}}"#
        );
        let go = entry("p/.lock", None, Some(r#"{"Limit":3,"Holders":null}"#));
        assert_eq!(
            SemaphoreLock::decode(Some(&go), 3).unwrap(),
            SemaphoreLock { limit: 3, holders: BTreeMap::new() }
        );
    }

    #[test]
    fn a_missing_lock_is_empty_with_our_limit_and_garbage_is_an_error() {
        assert_eq!(SemaphoreLock::decode(None, 4).unwrap().limit, 4);
        assert_eq!(SemaphoreLock::decode(Some(&entry("p/.lock", None, None)), 4).unwrap().limit, 4);
        let bad = entry("p/.lock", None, Some("not json"));
        assert!(matches!(SemaphoreLock::decode(Some(&bad), 4), Err(LockError::Decode(_))));
    }

    #[test]
    fn pruning_drops_holders_without_a_live_contender_key() {
        let pairs = [
            entry("p/.lock", None, Some(r#"{"Limit":2,"Holders":{"alive":true,"dead":true}}"#)),
            entry("p/alive", Some("alive"), None),
            entry("p/released", Some(""), None),
        ];
        let mut lock = SemaphoreLock::decode(find_lock("p", &pairs), 2).unwrap();
        assert!(lock.is_full());
        lock.prune_dead_holders(&pairs);
        assert_eq!(lock.holders.keys().collect::<Vec<_>>(), ["alive"]);
        assert!(!lock.is_full());
        assert!(holds("p", 2, &pairs, "alive"));
        assert!(!holds("p", 2, &pairs, "dead"));
    }

    #[test]
    fn find_lock_matches_only_the_dot_lock_key() {
        let pairs = [entry("p/x", Some("x"), None), entry("p/.lock", None, None)];
        assert_eq!(find_lock("p/", &pairs).map(|e| e.key.as_str()), Some("p/.lock"));
        assert!(find_lock("q", &pairs).is_none());
    }
}
