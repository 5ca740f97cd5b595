//! The Raft log and vote: a small synchronous [`LogBackend`] trait with an in-memory backend
//! (`-dev`) and a durable redb backend (`data_dir`), adapted to openraft's `RaftLogStorage`.
//!
//! Durability: `append` reports the entries flushed only after the redb commit, which is an
//! fsync (`Durability::Immediate`). The vote is saved the same way. The committed index is
//! stored without fsync: losing it only delays re-applying entries after a restart. A failed
//! commit (a failing fsync) is returned to openraft as a storage error, which stops Raft on
//! this server: nothing is acknowledged that is not on disk.
//!
//! Integrity: each entry is stored as `0xC1`, a CRC-32 of the body, then the msgpack body
//! (0xC1 never starts a msgpack value, so entries written before checksums still read).
//! [`verify`] runs at start-up: a damaged tail is truncated with an error line naming the
//! entries dropped (a server re-fetches them from the leader), damage followed by intact
//! entries refuses the start, and a damaged entry read later is a storage error, never data.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote};
use parking_lot::Mutex;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::TypeConfig;

type NodeId = u64;

/// Synchronous storage for log entries (encoded) and a few metadata values.
pub trait LogBackend: Send + Sync + Debug + 'static {
    /// Appends encoded entries keyed by index, durably.
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()>;
    /// Entries with index in `[start, end)`, with their indexes.
    fn range_indexed(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>>;
    /// The highest index and its entry.
    fn last_indexed(&self) -> io::Result<Option<(u64, Vec<u8>)>>;
    /// Deletes entries with index `>= from`.
    fn truncate(&self, from: u64) -> io::Result<()>;
    /// Deletes entries with index `<= upto` and stores `meta` under `key` in the same commit.
    fn purge(&self, upto: u64, key: &str, meta: Vec<u8>) -> io::Result<()>;
    /// Reads a metadata value.
    fn get_meta(&self, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Writes a metadata value; `durable` asks for an fsync before returning.
    fn set_meta(&self, key: &str, value: Vec<u8>, durable: bool) -> io::Result<()>;
}

/// The in-memory backend used by `-dev` and unit tests.
#[derive(Debug, Default)]
pub struct MemBackend {
    logs: Mutex<BTreeMap<u64, Vec<u8>>>,
    meta: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl LogBackend for MemBackend {
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
        self.logs.lock().extend(entries);
        Ok(())
    }
    fn range_indexed(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self.logs.lock().range(start..end).map(|(i, v)| (*i, v.clone())).collect())
    }
    fn last_indexed(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        Ok(self.logs.lock().iter().next_back().map(|(i, v)| (*i, v.clone())))
    }
    fn truncate(&self, from: u64) -> io::Result<()> {
        self.logs.lock().split_off(&from);
        Ok(())
    }
    fn purge(&self, upto: u64, key: &str, meta: Vec<u8>) -> io::Result<()> {
        self.meta.lock().insert(key.to_string(), meta);
        let mut logs = self.logs.lock();
        *logs = logs.split_off(&(upto + 1));
        Ok(())
    }
    fn get_meta(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.meta.lock().get(key).cloned())
    }
    fn set_meta(&self, key: &str, value: Vec<u8>, _durable: bool) -> io::Result<()> {
        self.meta.lock().insert(key.to_string(), value);
        Ok(())
    }
}

const LOGS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// The durable backend: one redb file, `raft/raft.redb`.
#[derive(Debug)]
pub struct RedbBackend {
    db: Database,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl RedbBackend {
    /// Opens (or creates) the log database at `path`.
    pub fn open(path: &Path) -> io::Result<RedbBackend> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::create(path).map_err(io_err)?;
        let tx = db.begin_write().map_err(io_err)?;
        tx.open_table(LOGS).map_err(io_err)?;
        tx.open_table(META).map_err(io_err)?;
        tx.commit().map_err(io_err)?;
        Ok(RedbBackend { db })
    }

    fn write(
        &self,
        durable: bool,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> io::Result<()> {
        let mut tx = self.db.begin_write().map_err(io_err)?;
        if !durable {
            tx.set_durability(Durability::None).map_err(io_err)?;
        }
        f(&tx).map_err(io_err)?;
        tx.commit().map_err(io_err)
    }
}

impl LogBackend for RedbBackend {
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
        self.write(true, |tx| {
            let mut t = tx.open_table(LOGS)?;
            for (i, v) in &entries {
                t.insert(*i, v.as_slice())?;
            }
            Ok(())
        })
    }
    fn range_indexed(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read().map_err(io_err)?;
        let t = tx.open_table(LOGS).map_err(io_err)?;
        let mut out = Vec::new();
        for row in t.range(start..end).map_err(io_err)? {
            let (k, v) = row.map_err(io_err)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }
    fn last_indexed(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let t = tx.open_table(LOGS).map_err(io_err)?;
        Ok(t.last().map_err(io_err)?.map(|(k, v)| (k.value(), v.value().to_vec())))
    }
    fn truncate(&self, from: u64) -> io::Result<()> {
        self.write(true, |tx| {
            let mut t = tx.open_table(LOGS)?;
            t.retain_in(from.., |_, _| false)?;
            Ok(())
        })
    }
    fn purge(&self, upto: u64, key: &str, meta: Vec<u8>) -> io::Result<()> {
        self.write(true, |tx| {
            tx.open_table(META)?.insert(key, meta.as_slice())?;
            tx.open_table(LOGS)?.retain_in(..=upto, |_, _| false)?;
            Ok(())
        })
    }
    fn get_meta(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let t = tx.open_table(META).map_err(io_err)?;
        Ok(t.get(key).map_err(io_err)?.map(|v| v.value().to_vec()))
    }
    fn set_meta(&self, key: &str, value: Vec<u8>, durable: bool) -> io::Result<()> {
        self.write(durable, |tx| {
            tx.open_table(META)?.insert(key, value.as_slice())?;
            Ok(())
        })
    }
}

/// openraft's log storage over a [`LogBackend`]. Cheap to clone (it is its own reader).
#[derive(Debug, Clone)]
pub struct LogStore {
    backend: Arc<dyn LogBackend>,
}

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

fn log_err(verb: ErrorVerb, e: io::Error) -> StorageError<NodeId> {
    StorageError::from_io_error(ErrorSubject::Logs, verb, e)
}

fn encode<T: serde::Serialize>(v: &T) -> io::Result<Vec<u8>> {
    rmp_serde::to_vec_named(v).map_err(io_err)
}

/// The tag of a checksummed entry (a byte msgpack never uses).
const CHECKSUMMED: u8 = 0xC1;

/// An entry as stored: tag, CRC-32 (little endian) of the body, body.
pub fn encode_entry(e: &Entry<TypeConfig>) -> io::Result<Vec<u8>> {
    let body = encode(e)?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(CHECKSUMMED);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The body of a stored entry, once its checksum verifies (entries from before checksums
/// are returned as they are).
fn entry_body(index: u64, raw: &[u8]) -> io::Result<&[u8]> {
    match raw.split_first() {
        Some((&CHECKSUMMED, rest)) if rest.len() >= 4 => {
            let (crc, body) = rest.split_at(4);
            if crc32fast::hash(body).to_le_bytes() == crc {
                Ok(body)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raft log entry {index} fails its checksum"),
                ))
            }
        }
        Some((&CHECKSUMMED, _)) => {
            Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft log entry {index} is truncated")))
        }
        _ => Ok(raw),
    }
}

/// A stored entry, once its checksum verifies.
pub fn decode_entry(index: u64, raw: &[u8]) -> io::Result<Entry<TypeConfig>> {
    decode(entry_body(index, raw)?).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("raft log entry {index} does not decode: {e}"))
    })
}

/// The index the log was compacted up to (0: never).
pub(super) fn purged_index(backend: &dyn LogBackend) -> io::Result<u64> {
    let purged: Option<Option<LogId<NodeId>>> = backend.get_meta(PURGED)?.map(|b| decode(&b)).transpose()?;
    Ok(purged.flatten().map_or(0, |l| l.index))
}

/// What [`verify`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Every entry verifies.
    Intact {
        /// Entries checked.
        entries: u64,
    },
    /// The last entries were damaged and have been deleted.
    TruncatedTail {
        /// The first entry deleted.
        from: u64,
        /// The last entry deleted.
        to: u64,
    },
}

/// Checks every entry's checksum at start-up. Damage confined to the tail (every entry from
/// the first bad one on is bad: an interrupted or corrupted last write) is truncated, with an
/// error line; damage followed by intact entries is refused (`InvalidData`), since dropping
/// it would silently lose entries in the middle of the log.
pub fn verify(backend: &dyn LogBackend) -> io::Result<Verified> {
    let rows = backend.range_indexed(0, u64::MAX)?;
    let bad: Vec<u64> =
        rows.iter().filter(|(i, raw)| decode_entry(*i, raw).is_err()).map(|(i, _)| *i).collect();
    let (Some(&first), Some(&(last, _))) = (bad.first(), rows.last()) else {
        return Ok(Verified::Intact { entries: rows.len() as u64 });
    };
    let tail = rows.iter().filter(|(i, _)| *i >= first).count();
    if tail != bad.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "raft log entry {first} fails its checksum but later entries are intact ({} damaged of {}): \
                 refusing to start on a damaged log; restore the data dir from a backup, or remove it and \
                 let this server rejoin and catch up from the leader",
                bad.len(),
                rows.len()
            ),
        ));
    }
    backend.truncate(first)?;
    tracing::error!(
        from = first,
        to = last,
        "raft log: entries {first}..={last} at the tail fail their checksum (an interrupted or damaged write); \
         truncated the log to entry {}; the leader sends them again",
        first.saturating_sub(1)
    );
    Ok(Verified::TruncatedTail { from: first, to: last })
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    rmp_serde::from_slice(b).map_err(io_err)
}

impl LogStore {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn LogBackend>) -> LogStore {
        LogStore { backend }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        verb: ErrorVerb,
        f: impl FnOnce(&dyn LogBackend) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StorageError<NodeId>> {
        let b = self.backend.clone();
        tokio::task::spawn_blocking(move || f(b.as_ref()))
            .await
            .map_err(|e| log_err(verb, io_err(e)))?
            .map_err(|e| log_err(verb, e))
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError<NodeId>> {
        let raw = self.backend.get_meta(key).map_err(|e| log_err(ErrorVerb::Read, e))?;
        raw.map(|b| decode(&b)).transpose().map_err(|e| log_err(ErrorVerb::Read, e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        let raw = self.blocking(ErrorVerb::Read, move |b| b.range_indexed(start, end)).await?;
        raw.iter().map(|(i, b)| decode_entry(*i, b).map_err(|e| log_err(ErrorVerb::Read, e))).collect()
    }

    /// What replication sends in one AppendEntries: a prefix of `[start, end)` of at most
    /// `MAX_APPEND_BYTES` (256 KiB; at least one entry). openraft gives each AppendEntries one
    /// heartbeat interval (50 ms) to be sent, written and fsynced by the follower; 300 entries
    /// of batched 1 KiB writes (up to 19 MiB) never made it, so a follower that fell behind
    /// during heavy writes never caught up, and the next leader kill left the cluster without
    /// a quorum (found by `benches/compare/run`).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let raw = self.blocking(ErrorVerb::Read, move |b| b.range_indexed(start, end)).await?;
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for (i, b) in &raw {
            bytes += b.len();
            if !out.is_empty() && bytes > MAX_APPEND_BYTES {
                break;
            }
            out.push(decode_entry(*i, b).map_err(|e| log_err(ErrorVerb::Read, e))?);
        }
        Ok(out)
    }
}

/// The most log bytes one AppendEntries carries (see `limited_get_log_entries`).
pub(super) const MAX_APPEND_BYTES: usize = 256 * 1024;

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let purged: Option<LogId<NodeId>> = self.meta(PURGED)?;
        let last = self.backend.last_indexed().map_err(|e| log_err(ErrorVerb::Read, e))?;
        let last = match last {
            Some((i, b)) => Some(decode_entry(i, &b).map_err(|e| log_err(ErrorVerb::Read, e))?.log_id),
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let v = encode(vote).map_err(|e| log_err(ErrorVerb::Write, e))?;
        self.blocking(ErrorVerb::Write, move |b| b.set_meta(VOTE, v, true)).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let v = encode(&committed).map_err(|e| log_err(ErrorVerb::Write, e))?;
        self.blocking(ErrorVerb::Write, move |b| b.set_meta(COMMITTED, v, false)).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.log_id.index, encode_entry(&e).map_err(|e| log_err(ErrorVerb::Write, e))?));
        }
        let res = self.blocking(ErrorVerb::Write, move |b| b.append(rows)).await;
        match &res {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(io::Error::other(e.to_string()))),
        }
        res
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.blocking(ErrorVerb::Delete, move |b| b.truncate(log_id.index)).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let meta = encode(&Some(log_id)).map_err(|e| log_err(ErrorVerb::Delete, e))?;
        self.blocking(ErrorVerb::Delete, move |b| b.purge(log_id.index, PURGED, meta)).await
    }
}
