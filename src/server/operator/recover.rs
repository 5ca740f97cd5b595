//! Offline recovery of a cluster that lost its quorum (`sekisho operator raft recover`),
//! Sekisho's replacement for Consul's `peers.json`.
//!
//! Run on every surviving server while its agent is stopped, with the same list of
//! survivors. It replaces the Raft configuration wherever this server stores one (every
//! membership entry of its log and the membership recorded in its snapshot files) by a
//! configuration of exactly the survivors, keeping every log ID as it is:
//!
//! ```text
//!  open raft/raft.redb (exclusive lock: refuses while the agent runs)
//!   ─► read vote, log, snapshots; show the current configuration
//!   ─► check the survivors (IDs, addresses, names, this server among them)
//!   ─► back up raft.redb and snapshots/ to raft/recover-backup-<unix time>/
//!   ─► rewrite membership entries in place (same index, same term) and snapshot files
//! ```
//!
//! Why in place: no new log entry and no new term means the survivors' logs compare
//! exactly as before, so the ordinary election picks the survivor with the most complete
//! log and nothing committed on the survivors is lost. The only change is who votes. All
//! survivors must get the same list, or their configurations disagree; the command prints
//! a fingerprint to compare.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use openraft::{Entry, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote};
use serde::{Deserialize, Serialize};

use crate::raft::{LogBackend, RedbBackend, ServerNode, TypeConfig, node_id_from_uuid};
use crate::state::Store;

/// A surviving server as the operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    /// Node ID (UUID) or numeric Raft ID.
    pub id: String,
    /// `ip:port` of its server RPC.
    pub address: String,
    /// Node name; looked up in the current configuration when not given.
    pub name: Option<String>,
    /// Whether it votes (Consul's `non_voter: false`).
    pub voter: bool,
}

/// Why recovery refused to run or failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("invalid survivor list: {0}")]
    Input(String),
    #[error("the agent appears to be running: the Raft log {} is locked ({detail}); stop the agent first", .path.display())]
    Running { path: PathBuf, detail: String },
    #[error("no Raft log at {}: is this a server's data directory?", .0.display())]
    NoLog(PathBuf),
    #[error("this server has no Raft configuration (it never joined a cluster): nothing to recover")]
    Uninitialized,
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn input(msg: impl Into<String>) -> RecoverError {
    RecoverError::Input(msg.into())
}

/// Parses `id=ID,address=IP:PORT[,name=NODE][,non_voter=true]`.
pub fn parse_server_spec(spec: &str) -> Result<Survivor, RecoverError> {
    let mut s = Survivor { id: String::new(), address: String::new(), name: None, voter: true };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) =
            part.split_once('=').ok_or_else(|| input(format!("{part:?} in {spec:?} is not key=value")))?;
        match k.trim() {
            "id" => s.id = v.trim().to_owned(),
            "address" => s.address = v.trim().to_owned(),
            "name" => s.name = Some(v.trim().to_owned()),
            "non_voter" => {
                s.voter = !v
                    .trim()
                    .parse::<bool>()
                    .map_err(|_| input(format!("non_voter={v:?} is not true|false")))?
            }
            other => {
                return Err(input(format!(
                    "unknown key {other:?} in {spec:?} (expected id, address, name, non_voter)"
                )));
            }
        }
    }
    if s.id.is_empty() || s.address.is_empty() {
        return Err(input(format!("{spec:?} needs both id= and address=")));
    }
    Ok(s)
}

#[derive(Deserialize)]
struct PeersJsonEntry {
    id: String,
    address: String,
    #[serde(default)]
    non_voter: bool,
    #[serde(default)]
    name: Option<String>,
}

/// Parses Consul's `peers.json` (Raft protocol 3 form): `[{"id","address","non_voter"}]`,
/// with an optional `"name"`.
pub fn parse_peers_json(raw: &[u8]) -> Result<Vec<Survivor>, RecoverError> {
    let entries: Vec<PeersJsonEntry> = serde_json::from_slice(raw).map_err(|e| {
        input(format!("expected [{{\"id\": ..., \"address\": ..., \"non_voter\": false}}, ...]: {e}"))
    })?;
    Ok(entries
        .into_iter()
        .map(|e| Survivor { id: e.id, address: e.address, name: e.name, voter: !e.non_voter })
        .collect())
}

/// The Raft ID a survivor's `id` names.
fn raft_id(id: &str) -> Result<u64, RecoverError> {
    if let Ok(n) = id.parse::<u64>() {
        return Ok(n);
    }
    if uuid::Uuid::parse_str(id).is_ok() {
        return Ok(node_id_from_uuid(id));
    }
    Err(input(format!("id {id:?} is neither a node ID (UUID) nor a numeric Raft ID")))
}

// The snapshot file layout of `raft/state_machine.rs` (magic, CRC-32, msgpack body).
const SNAP_MAGIC: &[u8; 8] = b"SKSNAP01";

#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, ServerNode>,
    data: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, ServerNode>,
    store: Store,
}

fn read_snapshot(p: &Path) -> io::Result<(StoredSnapshot, SnapshotBody)> {
    let raw = std::fs::read(p)?;
    if raw.len() < 12 || &raw[..8] != SNAP_MAGIC {
        return Err(io::Error::other("not a Sekisho Raft snapshot"));
    }
    let crc = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
    if crc32fast::hash(&raw[12..]) != crc {
        return Err(io::Error::other("checksum mismatch"));
    }
    let snap: StoredSnapshot = rmp_serde::from_slice(&raw[12..]).map_err(io::Error::other)?;
    let body: SnapshotBody = rmp_serde::from_slice(&snap.data).map_err(io::Error::other)?;
    Ok((snap, body))
}

fn write_snapshot(p: &Path, snap: &StoredSnapshot) -> io::Result<()> {
    let body = rmp_serde::to_vec_named(snap).map_err(io::Error::other)?;
    let tmp = p.with_extension("recover-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(SNAP_MAGIC)?;
        f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, p)?;
    if let Some(dir) = p.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn snapshot_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) == Some("snap") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn describe(m: &Membership<u64, ServerNode>) -> Vec<String> {
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    m.nodes()
        .map(|(id, n)| {
            let role = if voters.contains(id) { "voter" } else { "non-voter" };
            format!("    {} (raft id {id}) {} {role}", n.name, n.rpc_addr)
        })
        .collect()
}

/// CRC-32 of the sorted `(raft id, address, name, voter)` list: equal on every survivor
/// when they all got the same list.
fn fingerprint(m: &Membership<u64, ServerNode>) -> String {
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    let text: String = m
        .nodes()
        .map(|(id, n)| format!("{id}={}={}={}\n", n.rpc_addr, n.name, voters.contains(id)))
        .collect();
    format!("{:08x}", crc32fast::hash(text.as_bytes()))
}

/// What this server stores: log entries after the purged prefix, and the snapshots.
struct OnDisk {
    entries: Vec<Entry<TypeConfig>>,
    snapshots: Vec<(PathBuf, StoredSnapshot, SnapshotBody)>,
}

impl OnDisk {
    /// The newest configuration: the last membership entry of the log, else the membership
    /// of the newest snapshot.
    fn current(&self) -> Option<(u64, Membership<u64, ServerNode>)> {
        let from_log = self.entries.iter().rev().find_map(|e| match &e.payload {
            EntryPayload::Membership(m) => Some((e.log_id.index, m.clone())),
            _ => None,
        });
        from_log.or_else(|| {
            self.snapshots.iter().max_by_key(|(_, s, _)| s.meta.last_log_id.map(|l| l.index)).map(
                |(_, _, b)| (b.membership.log_id().map_or(0, |l| l.index), b.membership.membership().clone()),
            )
        })
    }
}

fn open_log(db: &Path) -> Result<RedbBackend, RecoverError> {
    if !db.exists() {
        return Err(RecoverError::NoLog(db.to_path_buf()));
    }
    RedbBackend::open(db).map_err(|e| RecoverError::Running { path: db.to_path_buf(), detail: e.to_string() })
}

fn load(backend: &RedbBackend, snap_dir: &Path, log: &mut Log<'_>) -> Result<OnDisk, RecoverError> {
    let purged: Option<LogId<u64>> = backend
        .get_meta("last_purged")?
        .map(|b| rmp_serde::from_slice(&b))
        .transpose()
        .map_err(io::Error::other)?;
    let start = purged.map_or(0, |l| l.index + 1);
    let entries = backend
        .range_indexed(start, u64::MAX)?
        .iter()
        .map(|(i, b)| crate::raft::decode_entry(*i, b))
        .collect::<io::Result<Vec<_>>>()?;
    let mut snapshots = Vec::new();
    for p in snapshot_files(snap_dir)? {
        match read_snapshot(&p) {
            Ok((s, b)) => snapshots.push((p, s, b)),
            Err(e) => log(&format!("    (skipping unreadable snapshot {}: {e})", p.display()))?,
        }
    }
    Ok(OnDisk { entries, snapshots })
}

/// Builds the new configuration: survivors checked for consistency, names filled in from
/// the current configuration.
fn new_membership(
    survivors: &[Survivor],
    current: &Membership<u64, ServerNode>,
) -> Result<Membership<u64, ServerNode>, RecoverError> {
    if survivors.is_empty() {
        return Err(input("no surviving server given"));
    }
    let mut nodes = BTreeMap::new();
    let mut voters = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for s in survivors {
        let id = raft_id(&s.id)?;
        s.address
            .parse::<SocketAddr>()
            .map_err(|_| input(format!("address {:?} of {} is not ip:port", s.address, s.id)))?;
        if !addrs.insert(s.address.clone()) {
            return Err(input(format!("address {} is listed twice", s.address)));
        }
        let known = current
            .get_node(&id)
            .map(|n| n.name.clone())
            .or_else(|| current.nodes().find(|(_, n)| n.rpc_addr == s.address).map(|(_, n)| n.name.clone()));
        let name = s.name.clone().or(known).ok_or_else(|| {
            input(format!(
                "server {} is not in the current configuration; give its node name with name=",
                s.id
            ))
        })?;
        if nodes.insert(id, ServerNode { name, rpc_addr: s.address.clone() }).is_some() {
            return Err(input(format!("server {} is listed twice", s.id)));
        }
        if s.voter {
            voters.insert(id);
        }
    }
    if voters.is_empty() {
        return Err(input("at least one survivor must be a voter"));
    }
    Ok(Membership::new(vec![voters], nodes))
}

type Log<'a> = dyn FnMut(&str) -> io::Result<()> + 'a;

/// What recovery changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverReport {
    /// Log indexes of the rewritten membership entries.
    pub entries: Vec<u64>,
    /// Rewritten snapshot files.
    pub snapshots: Vec<PathBuf>,
    /// Where the originals were copied.
    pub backup: PathBuf,
    /// The new configuration's fingerprint.
    pub fingerprint: String,
}

/// Rewrites the Raft configuration of the stopped server whose data directory is
/// `data_dir` to `survivors`, printing each step through `log`.
pub fn recover(
    data_dir: &Path,
    survivors: &[Survivor],
    log: &mut Log<'_>,
) -> Result<RecoverReport, RecoverError> {
    let raft_dir = data_dir.join("raft");
    let db = raft_dir.join("raft.redb");
    let snap_dir = raft_dir.join("snapshots");
    log(&format!("==> Opening the Raft log {} (this fails while the agent runs)", db.display()))?;
    let backend = open_log(&db)?;
    let vote: Option<Vote<u64>> =
        backend.get_meta("vote")?.map(|b| rmp_serde::from_slice(&b)).transpose().map_err(io::Error::other)?;
    let disk = load(&backend, &snap_dir, log)?;
    let last = disk.entries.last().map(|e| e.log_id);
    log(&format!(
        "==> Found {} log entries (last: {}), {} snapshot(s), vote {}",
        disk.entries.len(),
        last.map_or_else(|| "none".to_owned(), |l| format!("index {} term {}", l.index, l.leader_id.term)),
        disk.snapshots.len(),
        vote.map_or_else(|| "none".to_owned(), |v| v.to_string()),
    ))?;
    let (at, current) = disk.current().ok_or(RecoverError::Uninitialized)?;
    log(&format!("==> Current configuration (from index {at}):"))?;
    for line in describe(&current) {
        log(&line)?;
    }
    let new = new_membership(survivors, &current)?;
    check_self(data_dir, &new, log)?;
    log("==> New configuration:")?;
    for line in describe(&new) {
        log(&line)?;
    }
    let fingerprint = fingerprint(&new);
    log(&format!("    fingerprint {fingerprint} (must be the same on every surviving server)"))?;

    let backup = raft_dir.join(format!("recover-backup-{}", unix_now()));
    back_up(&db, &snap_dir, &backup)?;
    log(&format!("==> Copied the Raft log and snapshots to {}", backup.display()))?;

    let mut rows = Vec::new();
    let mut entries = Vec::new();
    for e in &disk.entries {
        if let EntryPayload::Membership(_) = &e.payload {
            let rewritten =
                Entry::<TypeConfig> { log_id: e.log_id, payload: EntryPayload::Membership(new.clone()) };
            rows.push((e.log_id.index, crate::raft::encode_entry(&rewritten)?));
            entries.push(e.log_id.index);
        }
    }
    backend.append(rows)?;
    for (index, term) in disk
        .entries
        .iter()
        .filter(|e| entries.contains(&e.log_id.index))
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
    {
        log(&format!("==> Rewrote the configuration entry at log index {index} (term {term})"))?;
    }
    let mut snapshots = Vec::new();
    for (path, mut snap, mut body) in disk.snapshots {
        body.membership = StoredMembership::new(*body.membership.log_id(), new.clone());
        snap.meta.last_membership = StoredMembership::new(*snap.meta.last_membership.log_id(), new.clone());
        snap.data = rmp_serde::to_vec_named(&body).map_err(io::Error::other)?;
        write_snapshot(&path, &snap)?;
        log(&format!("==> Rewrote the configuration in snapshot {}", path.display()))?;
        snapshots.push(path);
    }
    drop(backend);
    log("==> Done. Repeat this with the same survivors on every surviving server (same fingerprint), then")?;
    log("    start them; they elect the server with the most complete log. Do not restart removed")?;
    log("    servers with their old data directory: wipe it and let them join as new servers.")?;
    Ok(RecoverReport { entries, snapshots, backup, fingerprint })
}

/// When the data dir records this server's node ID, it must be among the voters.
fn check_self(
    data_dir: &Path,
    new: &Membership<u64, ServerNode>,
    log: &mut Log<'_>,
) -> Result<(), RecoverError> {
    let Ok(raw) = std::fs::read_to_string(data_dir.join("node-id")) else {
        log("    (no node-id file in the data dir: cannot check that this server is among the survivors)")?;
        return Ok(());
    };
    let me = node_id_from_uuid(raw.trim());
    if !new.voter_ids().any(|v| v == me) {
        return Err(input(format!(
            "this server (node ID {}) is not a voter in the given list; list it too, or do not run recover here",
            raw.trim()
        )));
    }
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn back_up(db: &Path, snap_dir: &Path, backup: &Path) -> io::Result<()> {
    std::fs::create_dir_all(backup.join("snapshots"))?;
    std::fs::copy(db, backup.join("raft.redb"))?;
    for p in snapshot_files(snap_dir)? {
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, backup.join("snapshots").join(name))?;
        }
    }
    std::fs::File::open(backup)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addr: &str) -> ServerNode {
        ServerNode { name: name.into(), rpc_addr: addr.into() }
    }

    fn current() -> Membership<u64, ServerNode> {
        let nodes = BTreeMap::from([
            (3, node("a", "10.0.0.1:8300")),
            (5, node("b", "10.0.0.2:8300")),
            (7, node("c", "10.0.0.3:8300")),
        ]);
        Membership::new(vec![BTreeSet::from([3, 5, 7])], nodes)
    }

    #[test]
    fn specs_and_peers_json_parse() {
        let s = parse_server_spec("id=3, address=10.0.0.1:8300,non_voter=true").unwrap();
        assert_eq!((s.id.as_str(), s.address.as_str(), s.voter), ("3", "10.0.0.1:8300", false));
        assert!(parse_server_spec("id=3").is_err());
        assert!(parse_server_spec("id=3,address=x,color=red").is_err());
        let v = parse_peers_json(br#"[{"id":"5","address":"10.0.0.2:8300","non_voter":false}]"#).unwrap();
        assert_eq!(v[0].id, "5");
        assert!(parse_peers_json(br#"["10.0.0.2:8300"]"#).is_err());
    }

    #[test]
    fn the_new_configuration_takes_names_from_the_old_and_rejects_inconsistent_lists() {
        let spec = |s: &str| parse_server_spec(s).unwrap();
        let m = new_membership(
            &[spec("id=3,address=10.0.0.1:8300"), spec("id=5,address=10.0.0.2:8300")],
            &current(),
        )
        .unwrap();
        assert_eq!(m.voter_ids().collect::<Vec<_>>(), [3, 5]);
        assert_eq!(m.get_node(&5).unwrap().name, "b");
        let dup = new_membership(
            &[spec("id=3,address=10.0.0.1:8300"), spec("id=3,address=10.0.0.9:8300")],
            &current(),
        );
        assert!(dup.unwrap_err().to_string().contains("listed twice"));
        let addr = new_membership(&[spec("id=3,address=nowhere")], &current());
        assert!(addr.unwrap_err().to_string().contains("not ip:port"));
        let unknown = new_membership(&[spec("id=9,address=10.0.0.9:8300")], &current());
        assert!(unknown.unwrap_err().to_string().contains("name="));
        let named = new_membership(&[spec("id=9,address=10.0.0.9:8300,name=z")], &current()).unwrap();
        assert_eq!(named.get_node(&9).unwrap().name, "z");
        let none = new_membership(&[spec("id=3,address=10.0.0.1:8300,non_voter=true")], &current());
        assert!(none.unwrap_err().to_string().contains("voter"));
        assert!(raft_id("nope").is_err());
    }

    #[test]
    fn the_fingerprint_depends_on_the_list_only() {
        let spec = |s: &str| parse_server_spec(s).unwrap();
        let a = new_membership(
            &[spec("id=3,address=10.0.0.1:8300"), spec("id=5,address=10.0.0.2:8300")],
            &current(),
        );
        let b = new_membership(
            &[spec("id=5,address=10.0.0.2:8300"), spec("id=3,address=10.0.0.1:8300")],
            &current(),
        );
        assert_eq!(fingerprint(&a.unwrap()), fingerprint(&b.unwrap()));
    }

    #[test]
    fn a_directory_without_a_raft_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = parse_server_spec("id=3,address=10.0.0.1:8300").unwrap();
        let e = recover(dir.path(), &[spec], &mut |_| Ok(())).unwrap_err();
        assert!(matches!(e, RecoverError::NoLog(_)), "{e}");
    }
}
