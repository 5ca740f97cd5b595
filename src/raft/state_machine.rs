//! openraft's state machine over the in-memory [`StateStore`], with snapshots.
//!
//! A snapshot is the whole store serialized with msgpack, plus the last applied log id and
//! membership. With a data dir, each snapshot is written to `raft/snapshots/<id>.snap`
//! (magic, CRC-32, body), fsynced, renamed into place and the directory fsynced before
//! openraft may purge the log it covers. Start-up loads the newest snapshot whose checksum
//! verifies, and openraft replays the log after it.

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{ServerNode, TypeConfig};
use crate::fsm::{self, Response};
use crate::state::{StateStore, Store};

type NodeId = u64;
type Meta = SnapshotMeta<NodeId, ServerNode>;

const MAGIC: &[u8; 8] = b"SKSNAP01";

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ServerNode>,
    store: Store,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ServerNode>,
    snapshot_seq: u64,
    current: Option<StoredSnapshot>,
}

/// The state machine handle given to openraft. Clones share everything.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: Arc<StateStore>,
    applied: Arc<Mutex<Applied>>,
    snapshot_dir: Option<PathBuf>,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageError::from_io_error(ErrorSubject::StateMachine, verb, io::Error::other(e.to_string()))
}

impl StateMachine {
    /// A state machine over `state`; with `snapshot_dir`, the newest valid snapshot there is
    /// loaded into `state` first.
    pub fn open(state: Arc<StateStore>, snapshot_dir: Option<PathBuf>) -> io::Result<StateMachine> {
        let mut applied = Applied::default();
        if let Some(dir) = &snapshot_dir {
            std::fs::create_dir_all(dir)?;
            if let Some(snap) = load_newest(dir)? {
                let body: SnapshotBody = crate::rpc::decode_msgpack(&snap.data).map_err(io::Error::other)?;
                state.replace(body.store);
                state.set_applied(body.last_applied.map_or(0, |l| l.index));
                applied.last_applied = body.last_applied;
                applied.membership = body.membership;
                applied.current = Some(snap);
            }
        }
        Ok(StateMachine { state, applied: Arc::new(Mutex::new(applied)), snapshot_dir })
    }

    /// The index of the last entry applied (0: none), e.g. the loaded snapshot's end.
    pub fn last_applied_index(&self) -> u64 {
        self.applied.lock().last_applied.map_or(0, |l| l.index)
    }

    fn install(&self, snap: StoredSnapshot) -> Result<(), StorageError<NodeId>> {
        let body: SnapshotBody =
            crate::rpc::decode_msgpack(&snap.data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        self.state.replace(body.store);
        self.state.set_applied(body.last_applied.map_or(0, |l| l.index));
        let mut a = self.applied.lock();
        a.last_applied = body.last_applied;
        a.membership = body.membership;
        a.current = Some(snap);
        Ok(())
    }
}

fn snapshot_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.snap"))
}

/// Writes a snapshot file durably: temp file, fsync, rename, fsync the directory.
fn persist(dir: &Path, snap: &StoredSnapshot) -> io::Result<()> {
    let body = rmp_serde::to_vec_named(snap).map_err(io::Error::other)?;
    let tmp = dir.join(format!("{}.tmp", snap.meta.snapshot_id));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, snapshot_path(dir, &snap.meta.snapshot_id))?;
    std::fs::File::open(dir)?.sync_all()?;
    prune(dir, &snap.meta.snapshot_id)
}

/// Keeps the newest two snapshot files.
fn prune(dir: &Path, keep: &str) -> io::Result<()> {
    let mut files = list(dir)?;
    files.retain(|(_, p)| p.file_stem().and_then(|s| s.to_str()) != Some(keep));
    files.sort();
    let n = files.len().saturating_sub(1);
    for (_, p) in files.into_iter().take(n) {
        std::fs::remove_file(p)?;
    }
    Ok(())
}

fn list(dir: &Path) -> io::Result<Vec<(std::time::SystemTime, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) == Some("snap") {
            out.push((std::fs::metadata(&p)?.modified()?, p));
        }
    }
    Ok(out)
}

fn read_file(p: &Path) -> io::Result<StoredSnapshot> {
    parse_file(&std::fs::read(p)?)
}

fn parse_file(raw: &[u8]) -> io::Result<StoredSnapshot> {
    if raw.len() < 12 || &raw[..8] != MAGIC {
        return Err(io::Error::other("not a Sekisho snapshot"));
    }
    let crc = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
    if crc32fast::hash(&raw[12..]) != crc {
        return Err(io::Error::other("snapshot checksum mismatch"));
    }
    crate::rpc::decode_msgpack(&raw[12..]).map_err(io::Error::other)
}

/// What start-up does with one snapshot file's bytes: verify, decode, and decode the state in
/// it (the fuzz targets, [`crate::fuzzing::snapshot_archive`]).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn decode_file(raw: &[u8]) -> io::Result<Store> {
    let snap = parse_file(raw)?;
    let body: SnapshotBody = crate::rpc::decode_msgpack(&snap.data).map_err(io::Error::other)?;
    Ok(body.store)
}

/// A snapshot file of `store` as [`persist`] writes it (the fuzz corpus).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn encode_file(store: &Store) -> io::Result<Vec<u8>> {
    let body =
        SnapshotBody { last_applied: None, membership: StoredMembership::default(), store: store.clone() };
    let data = rmp_serde::to_vec_named(&body).map_err(io::Error::other)?;
    let snap = StoredSnapshot { meta: Meta::default(), data };
    let body = rmp_serde::to_vec_named(&snap).map_err(io::Error::other)?;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The newest snapshot that verifies, by last log index.
fn load_newest(dir: &Path) -> io::Result<Option<StoredSnapshot>> {
    let mut best: Option<StoredSnapshot> = None;
    for (_, p) in list(dir)? {
        match read_file(&p) {
            Ok(s) => {
                let idx = |s: &StoredSnapshot| s.meta.last_log_id.map(|l| l.index);
                if best.as_ref().is_none_or(|b| idx(&s) > idx(b)) {
                    best = Some(s);
                }
            }
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "skipping unreadable snapshot"),
        }
    }
    Ok(best)
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (store, last_applied, membership, seq) = {
            let mut a = self.applied.lock();
            a.snapshot_seq += 1;
            // The store and the applied id are read under the same lock that apply holds.
            (self.state.clone_store(), a.last_applied, a.membership.clone(), a.snapshot_seq)
        };
        let body = SnapshotBody { last_applied, membership: membership.clone(), store };
        let data = rmp_serde::to_vec_named(&body).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let id = match last_applied {
            Some(l) => format!("{:020}-{}-{seq}", l.index, l.leader_id.term),
            None => format!("{:020}-0-{seq}", 0),
        };
        let meta = Meta { last_log_id: last_applied, last_membership: membership, snapshot_id: id };
        let snap = StoredSnapshot { meta: meta.clone(), data: data.clone() };
        if let Some(dir) = self.snapshot_dir.clone() {
            let s = snap.clone();
            tokio::task::spawn_blocking(move || persist(&dir, &s))
                .await
                .map_err(|e| sm_err(ErrorVerb::Write, e))?
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        }
        self.applied.lock().current = Some(snap);
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ServerNode>), StorageError<NodeId>> {
        let a = self.applied.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut a = self.applied.lock();
        for e in entries {
            a.last_applied = Some(e.log_id);
            let r = match e.payload {
                EntryPayload::Blank => Response::None,
                EntryPayload::Normal(cmd) => self.state.write(|st| fsm::apply(st, e.log_id.index, &cmd, now)),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(e.log_id), m);
                    Response::None
                }
            };
            self.state.set_applied(e.log_id.index);
            out.push(r);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let snap = StoredSnapshot { meta: meta.clone(), data: snapshot.into_inner() };
        if let Some(dir) = self.snapshot_dir.clone() {
            let s = snap.clone();
            tokio::task::spawn_blocking(move || persist(&dir, &s))
                .await
                .map_err(|e| sm_err(ErrorVerb::Write, e))?
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        }
        self.install(snap)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let cur = self.applied.lock().current.clone();
        Ok(cur.map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
