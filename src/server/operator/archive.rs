//! Snapshot archives: the file `GET /v1/snapshot` returns, `PUT /v1/snapshot` restores and
//! `sekisho snapshot inspect` reads. One self-checking file, version 1:
//!
//! ```text
//! offset      size  field
//! 0           8     magic "SEKISNAP"
//! 8           2     format version, big-endian u16 (1)
//! 10          4     metadata length M, big-endian u32 (at most 1 MiB)
//! 14          M     metadata, JSON (SnapshotMeta: ID, Version, Index, Term, CreatedAt, ...)
//! 14+M        8     state length S, big-endian u64
//! 22+M        S     the whole state store, msgpack with named fields (as in Raft snapshots)
//! 22+M+S      32    SHA-256 of every byte before it
//! ```
//!
//! A reader checks the magic, the version, that the file is exactly `54 + M + S` bytes
//! long, and the digest before it decodes anything, so a truncated or altered archive is
//! refused before it can touch the state. Consul's archive is a gzipped tar (`meta.json`,
//! `state.bin`, `SHA256SUMS`); ours keeps the same three parts in one flat layout.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::state::Store;

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"SEKISNAP";
/// The archive layout this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Largest metadata block accepted.
pub const MAX_META: usize = 1 << 20;
const DIGEST: usize = 32;

/// What an archive says about itself (`meta.json` in Consul's archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotMeta {
    /// `<term>-<index>-<unix millis>`, Consul's snapshot ID form.
    #[serde(rename = "ID")]
    pub id: String,
    /// The archive layout version ([`FORMAT_VERSION`]).
    pub version: u16,
    /// The Raft index the state was read at.
    pub index: u64,
    /// The Raft term of that index.
    pub term: u64,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The Sekisho version that wrote it.
    pub sekisho_version: String,
    /// The datacenter it was taken in.
    pub datacenter: String,
    /// The server that answered.
    pub node: String,
}

impl SnapshotMeta {
    /// Metadata for a snapshot taken now.
    pub fn now(index: u64, term: u64, datacenter: &str, node: &str) -> SnapshotMeta {
        let now = SystemTime::now();
        let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        SnapshotMeta {
            id: format!("{term}-{index}-{millis}"),
            version: FORMAT_VERSION,
            index,
            term,
            created_at: humantime::format_rfc3339_seconds(now).to_string(),
            sekisho_version: crate::VERSION.to_owned(),
            datacenter: datacenter.to_owned(),
            node: node.to_owned(),
        }
    }
}

/// A decoded, verified archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub meta: SnapshotMeta,
    pub store: Store,
    /// Size of the whole archive in bytes.
    pub size: usize,
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a Sekisho snapshot archive (bad magic bytes)")]
    BadMagic,
    #[error("unsupported snapshot archive format version {0} (this build reads version {FORMAT_VERSION})")]
    Version(u16),
    #[error("snapshot archive is truncated: {0}")]
    Truncated(String),
    #[error("snapshot archive has {0} unexpected bytes after its end")]
    Trailing(usize),
    #[error(
        "snapshot archive checksum mismatch: the file is corrupt (SHA-256 {actual}, expected {expected})"
    )]
    Checksum { expected: String, actual: String },
    #[error("snapshot archive metadata is invalid: {0}")]
    Meta(String),
    #[error("snapshot archive state is invalid: {0}")]
    State(String),
    #[error("encoding the snapshot archive: {0}")]
    Encode(String),
}

fn sha256(bytes: &[u8]) -> [u8; DIGEST] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; DIGEST];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes an archive of `store` described by `meta`.
pub fn encode(meta: &SnapshotMeta, store: &Store) -> Result<Vec<u8>, ArchiveError> {
    let meta_json = serde_json::to_vec(meta).map_err(|e| ArchiveError::Encode(e.to_string()))?;
    if meta_json.len() > MAX_META {
        return Err(ArchiveError::Encode("metadata too large".into()));
    }
    let state = rmp_serde::to_vec_named(store).map_err(|e| ArchiveError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(54 + meta_json.len() + state.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(meta_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(&(state.len() as u64).to_be_bytes());
    out.extend_from_slice(&state);
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Reads `N` bytes at `at`, or says how far the file falls short.
fn field<const N: usize>(bytes: &[u8], at: usize, what: &str) -> Result<[u8; N], ArchiveError> {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ArchiveError::Truncated(format!("{} bytes end before the {what}", bytes.len())))
}

/// The layout: `(meta range, state range, total length)`, checked against the file length.
fn layout(bytes: &[u8]) -> Result<(std::ops::Range<usize>, std::ops::Range<usize>, usize), ArchiveError> {
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            ArchiveError::Truncated(format!("{} bytes end before the header", bytes.len()))
        } else {
            ArchiveError::BadMagic
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(ArchiveError::BadMagic);
    }
    let version = u16::from_be_bytes(field::<2>(bytes, 8, "format version")?);
    if version != FORMAT_VERSION {
        return Err(ArchiveError::Version(version));
    }
    let meta_len = u32::from_be_bytes(field::<4>(bytes, 10, "metadata length")?) as usize;
    if meta_len > MAX_META {
        return Err(ArchiveError::Meta(format!("metadata length {meta_len} exceeds {MAX_META} bytes")));
    }
    let meta = 14..14 + meta_len;
    let state_len = u64::from_be_bytes(field::<8>(bytes, meta.end, "state length")?);
    let state_start = meta.end + 8;
    let total = usize::try_from(state_len)
        .ok()
        .and_then(|s| state_start.checked_add(s)?.checked_add(DIGEST))
        .ok_or_else(|| ArchiveError::Truncated(format!("state length {state_len} is impossible")))?;
    match bytes.len() {
        n if n < total => Err(ArchiveError::Truncated(format!("expected {total} bytes, got {n}"))),
        n if n > total => Err(ArchiveError::Trailing(n - total)),
        _ => Ok((meta, state_start..total - DIGEST, total)),
    }
}

/// Verifies and decodes an archive. Nothing is decoded before the length and the digest
/// check out.
pub fn decode(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    let (meta_range, state_range, total) = layout(bytes)?;
    let body = &bytes[..total - DIGEST];
    let actual = sha256(body);
    let expected = &bytes[total - DIGEST..];
    if actual.as_slice() != expected {
        return Err(ArchiveError::Checksum { expected: hex(expected), actual: hex(&actual) });
    }
    let meta: SnapshotMeta =
        serde_json::from_slice(&bytes[meta_range]).map_err(|e| ArchiveError::Meta(e.to_string()))?;
    if meta.version != FORMAT_VERSION {
        return Err(ArchiveError::Meta(format!("metadata names format version {}", meta.version)));
    }
    let store: Store =
        crate::rpc::decode_msgpack(&bytes[state_range]).map_err(|e| ArchiveError::State(e.to_string()))?;
    Ok(Archive { meta, store, size: bytes.len() })
}

/// One row of `sekisho snapshot inspect`'s table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStat {
    /// The kind of record (`KVEntry`, `Node`, `Service`, ...).
    pub name: &'static str,
    pub count: usize,
    /// Encoded size of these records in bytes.
    pub size: usize,
}

fn stat<T: Serialize>(name: &'static str, count: usize, rows: &T) -> TableStat {
    let size = rmp_serde::to_vec_named(rows).map_or(0, |v| v.len());
    TableStat { name, count, size }
}

/// Record counts and sizes per kind, largest first (Consul's `Type Count Size` table).
pub fn table_stats(store: &Store) -> Vec<TableStat> {
    let services = store.services.values().map(|m| m.len()).sum();
    let checks = store.checks.values().map(|m| m.len()).sum();
    let mut out = vec![
        stat("KVEntry", store.kv.len(), &store.kv),
        stat("Tombstone", store.tombstones.len(), &store.tombstones),
        stat("Node", store.nodes.len(), &store.nodes),
        stat("Service", services, &store.services),
        stat("HealthCheck", checks, &store.checks),
        stat("Session", store.sessions.len(), &store.sessions),
        stat("Index", store.indexes.len(), &store.indexes),
        stat("Autopilot", usize::from(store.autopilot.is_some()), &store.autopilot),
    ];
    out.retain(|s| s.count > 0);
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.name.cmp(b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::types::DirEntry;

    fn sample() -> (SnapshotMeta, Store) {
        let mut st = Store::default();
        for i in 0..3 {
            let key = format!("k{i}");
            let e = DirEntry {
                lock_index: 0,
                key: key.clone(),
                flags: 0,
                value: Some(b"v".to_vec()),
                session: None,
                create_index: 5 + i,
                modify_index: 5 + i,
            };
            st.set_kv(5 + i, e);
        }
        st.touched.clear();
        (SnapshotMeta::now(7, 2, "dc1", "n1"), st)
    }

    #[test]
    fn an_archive_round_trips() {
        let (meta, st) = sample();
        let bytes = encode(&meta, &st).unwrap();
        let a = decode(&bytes).unwrap();
        assert_eq!(a.meta, meta);
        assert_eq!(a.store, st);
        assert_eq!(a.size, bytes.len());
        assert!(meta.id.starts_with("2-7-"), "{}", meta.id);
        let stats = table_stats(&a.store);
        assert!(stats.iter().any(|s| s.name == "KVEntry" && s.count == 3), "{stats:?}");
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (meta, st) = sample();
        let bytes = encode(&meta, &st).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flipping byte {i} of {} went unnoticed", bytes.len());
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let (meta, st) = sample();
        let bytes = encode(&meta, &st).unwrap();
        for n in 0..bytes.len() {
            let e = decode(&bytes[..n]).unwrap_err();
            assert!(matches!(e, ArchiveError::Truncated(_)), "cut at {n}: {e}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err(), ArchiveError::Trailing(1));
    }

    #[test]
    fn foreign_files_get_a_clear_error() {
        assert_eq!(decode(b"\x1f\x8b\x08\x00 a gzip file").unwrap_err(), ArchiveError::BadMagic);
        let mut v2 = encode(&sample().0, &sample().1).unwrap();
        v2[9] = 2;
        assert_eq!(decode(&v2).unwrap_err(), ArchiveError::Version(2));
        let e = decode(b"SEKISNAP\x00\x01\x00\x00\x00\x05{}").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
