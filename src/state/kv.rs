//! KV operations: the verbs shared by single-key writes and `/v1/txn`, and the reads.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::store::{Store, Table};
use super::types::DirEntry;

/// Consul's KV verbs (`api.KVOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteCas,
    DeleteTree,
}

impl KvVerb {
    /// Parses Consul's verb spelling (`"delete-tree"`).
    pub fn parse(s: &str) -> Option<KvVerb> {
        Some(match s {
            "set" => KvVerb::Set,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "get" => KvVerb::Get,
            "get-or-empty" => KvVerb::GetOrEmpty,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            "delete" => KvVerb::Delete,
            "delete-cas" => KvVerb::DeleteCas,
            "delete-tree" => KvVerb::DeleteTree,
            _ => return None,
        })
    }

    /// Whether the verb changes state.
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            KvVerb::Get
                | KvVerb::GetOrEmpty
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

/// One KV operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    pub value: Option<Vec<u8>>,
    pub flags: u64,
    /// The CAS / check index.
    pub index: u64,
    pub session: Option<String>,
}

impl KvOp {
    /// An op with only a verb and a key.
    pub fn new(verb: KvVerb, key: impl Into<String>) -> KvOp {
        KvOp { verb, key: key.into(), value: None, flags: 0, index: 0, session: None }
    }
}

/// What a KV operation did: `ok == false` is a failed CAS / lock / check (a `false` reply
/// for single-key calls, a rollback with a message in a transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvOutcome {
    pub ok: bool,
    pub entries: Vec<DirEntry>,
}

impl KvOutcome {
    fn done(ok: bool) -> KvOutcome {
        KvOutcome { ok, entries: Vec::new() }
    }
    fn with(entry: Option<DirEntry>) -> KvOutcome {
        KvOutcome { ok: entry.is_some(), entries: entry.into_iter().collect() }
    }
}

/// Applies one KV operation at Raft index `idx`. `Err` is a hard error (invalid session).
pub fn kv_apply(st: &mut Store, idx: u64, op: &KvOp) -> Result<KvOutcome, String> {
    if !op.verb.is_write() {
        return Ok(kv_read(st, op));
    }
    let existing = st.kv.get(&op.key).cloned();
    let out = match op.verb {
        KvVerb::Set => KvOutcome::with(Some(set(st, idx, op, existing, None))),
        KvVerb::Cas => {
            let ok = match &existing {
                None => op.index == 0,
                Some(e) => op.index != 0 && e.modify_index == op.index,
            };
            if !ok {
                return Ok(KvOutcome::done(false));
            }
            KvOutcome::with(Some(set(st, idx, op, existing, None)))
        }
        KvVerb::Lock => return lock(st, idx, op, existing),
        KvVerb::Unlock => match &existing {
            Some(e) if e.session.is_some() && e.session == op.session => {
                KvOutcome::with(Some(set(st, idx, op, existing, Some(None))))
            }
            _ => KvOutcome::done(false),
        },
        KvVerb::Delete => {
            st.remove_kv(idx, &op.key);
            KvOutcome::done(true)
        }
        KvVerb::DeleteCas => match &existing {
            Some(e) if e.modify_index != op.index => KvOutcome::done(false),
            Some(_) => KvOutcome::done(st.remove_kv(idx, &op.key)),
            None => KvOutcome::done(true),
        },
        KvVerb::DeleteTree => {
            kv_delete_tree(st, idx, &op.key);
            KvOutcome::done(true)
        }
        _ => kv_read(st, op),
    };
    Ok(out)
}

/// Applies a read-only KV verb.
pub fn kv_read(st: &Store, op: &KvOp) -> KvOutcome {
    let existing = st.kv.get(&op.key).cloned();
    match op.verb {
        KvVerb::Get => KvOutcome::with(existing),
        KvVerb::GetOrEmpty => KvOutcome { ok: true, entries: existing.into_iter().collect() },
        KvVerb::GetTree => KvOutcome { ok: true, entries: kv_list(st, &op.key).0 },
        KvVerb::CheckIndex => KvOutcome::with(existing.filter(|e| e.modify_index == op.index)),
        KvVerb::CheckSession => KvOutcome::with(existing.filter(|e| e.session == op.session)),
        KvVerb::CheckNotExists => KvOutcome::done(existing.is_none()),
        _ => KvOutcome::done(false),
    }
}

fn lock(st: &mut Store, idx: u64, op: &KvOp, existing: Option<DirEntry>) -> Result<KvOutcome, String> {
    let sid = op.session.clone().unwrap_or_default();
    if !st.sessions.contains_key(&sid) {
        return Err(format!("invalid session {sid:?}"));
    }
    match &existing {
        Some(e) if e.session.is_some() && e.session.as_deref() != Some(&sid) => Ok(KvOutcome::done(false)),
        _ => Ok(KvOutcome::with(Some(set(st, idx, op, existing, Some(Some(sid)))))),
    }
}

/// Writes `op`'s value, keeping CreateIndex, LockIndex and (unless `session` is given) the
/// holder, as Consul does. A new holder increments LockIndex.
fn set(
    st: &mut Store,
    idx: u64,
    op: &KvOp,
    existing: Option<DirEntry>,
    session: Option<Option<String>>,
) -> DirEntry {
    let (create_index, mut lock_index, old_session) = match &existing {
        Some(e) => (e.create_index, e.lock_index, e.session.clone()),
        None => (idx, 0, None),
    };
    let new_session = match session {
        Some(s) => {
            if s.is_some() && s != old_session {
                lock_index += 1;
            }
            s
        }
        None => old_session,
    };
    let entry = DirEntry {
        lock_index,
        key: op.key.clone(),
        flags: op.flags,
        value: op.value.clone(),
        session: new_session,
        create_index,
        modify_index: idx,
    };
    st.set_kv(idx, entry.clone());
    entry
}

/// Deletes every key under `prefix`.
pub fn kv_delete_tree(st: &mut Store, idx: u64, prefix: &str) {
    let keys: Vec<String> = prefixed(st, prefix).map(|e| e.key.clone()).collect();
    for k in keys {
        st.remove_kv(idx, &k);
    }
}

fn prefixed<'a>(st: &'a Store, prefix: &'a str) -> impl Iterator<Item = &'a DirEntry> + 'a {
    st.kv.range(prefix.to_string()..).take_while(move |(k, _)| k.starts_with(prefix)).map(|(_, e)| e)
}

/// The KV table index (entries and graveyard), Consul's `kvsMaxIndex`.
pub fn kv_table_index(st: &Store) -> u64 {
    st.max_index(&Table::KV)
}

/// A single key: the entry, the table index to report, and the key's own index to watch.
pub fn kv_get(st: &Store, key: &str) -> (Option<DirEntry>, u64, u64) {
    let e = st.kv.get(key).cloned();
    let own = e.as_ref().map(|e| e.modify_index).or_else(|| st.tombstones.get(key).copied()).unwrap_or(0);
    (e, kv_table_index(st), own)
}

/// Every entry under `prefix` and the list index (highest ModifyIndex or tombstone under it).
pub fn kv_list(st: &Store, prefix: &str) -> (Vec<DirEntry>, u64) {
    let entries: Vec<DirEntry> = prefixed(st, prefix).cloned().collect();
    (entries, list_index(st, prefix))
}

/// Keys under `prefix`, truncated after the first `separator` past the prefix.
pub fn kv_keys(st: &Store, prefix: &str, separator: &str) -> (Vec<String>, u64) {
    let mut keys: Vec<String> = Vec::new();
    for e in prefixed(st, prefix) {
        let rest = &e.key[prefix.len()..];
        let key = match (separator.is_empty(), rest.find(separator)) {
            (false, Some(pos)) => format!("{prefix}{}", &rest[..pos + separator.len()]),
            _ => e.key.clone(),
        };
        if keys.last() != Some(&key) {
            keys.push(key);
        }
    }
    (keys, list_index(st, prefix))
}

fn list_index(st: &Store, prefix: &str) -> u64 {
    if prefix.is_empty() {
        return kv_table_index(st);
    }
    let live = prefixed(st, prefix).map(|e| e.modify_index).max().unwrap_or(0);
    let dead = st
        .tombstones
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(_, i)| *i)
        .max()
        .unwrap_or(0);
    match live.max(dead) {
        0 => kv_table_index(st),
        i => i,
    }
}

/// When a lock on `key` may be acquired again (lock-delay), if it is still delayed at `now`.
pub fn lock_delay_until(st: &Store, key: &str, now: Instant) -> Option<Instant> {
    st.lock_delays.get(key).copied().filter(|t| *t > now)
}

pub(crate) fn set_lock_delay(st: &mut Store, key: &str, now: Instant, delay: Duration) {
    if !delay.is_zero() {
        st.lock_delays.insert(key.to_string(), now + delay);
    }
}
