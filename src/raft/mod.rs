//! Raft: openraft's type configuration, the log store (redb or memory), the state machine
//! over [`crate::state::StateStore`] and the network seam. All openraft types stay in here.

// openraft's `StorageError` is large; it is the trait's error type, so we keep it as is.
#![allow(clippy::result_large_err)]

mod log_store;
mod network;
mod state_machine;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Cursor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use serde::{Deserialize, Serialize};

pub use log_store::{
    LogBackend, LogStore, MemBackend, RedbBackend, Verified, decode_entry, encode_entry, verify,
};
pub use network::{Network, handle as handle_rpc};
pub use state_machine::StateMachine;
#[cfg(any(test, feature = "testing"))]
pub(crate) use state_machine::{decode_file as decode_snapshot_file, encode_file as encode_snapshot_file};

use crate::fsm::{Command, Response};
use crate::state::StateStore;

/// A Raft server as known to the cluster configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerNode {
    /// Node name.
    pub name: String,
    /// `ip:port` of its server RPC listener.
    pub rpc_addr: String,
}

impl fmt::Display for ServerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.rpc_addr)
    }
}

openraft::declare_raft_types!(
    /// Sekisho's Raft types.
    pub TypeConfig:
        D = Command,
        R = Response,
        Node = ServerNode,
);

/// The running Raft instance.
pub type Raft = openraft::Raft<TypeConfig>;
/// Raft metrics.
pub type Metrics = openraft::RaftMetrics<u64, ServerNode>;

/// What a Raft server needs to start.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    pub node_id: u64,
    pub node: ServerNode,
    /// `None`: memory only (dev mode).
    pub data_dir: Option<PathBuf>,
    pub raft_multiplier: u32,
    pub snapshot_threshold: u64,
    pub trailing_logs: u64,
    /// Initialize a one-voter cluster of this server when no configuration exists yet
    /// (`bootstrap`, `-dev`). Otherwise the server waits to be initialized or joined.
    pub bootstrap: bool,
}

/// Errors starting Raft.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the raft log: {0}")]
    Log(#[source] io::Error),
    #[error("loading the latest snapshot: {0}")]
    Snapshot(#[source] io::Error),
    #[error("invalid raft configuration: {0}")]
    Config(String),
    #[error("starting raft: {0}")]
    Raft(String),
}

/// A stable Raft node ID from the agent's node ID (a UUID).
pub fn node_id_from_uuid(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| c.is_ascii_hexdigit()).take(16).collect();
    u64::from_str_radix(&hex, 16).unwrap_or_else(|_| crc32fast::hash(id.as_bytes()) as u64) | 1
}

fn raft_config(o: &RaftOptions) -> Result<Config, StartError> {
    let m = u64::from(o.raft_multiplier.max(1));
    let cfg = Config {
        cluster_name: "sekisho".into(),
        heartbeat_interval: 50 * m,
        election_timeout_min: 150 * m,
        election_timeout_max: 300 * m,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(o.snapshot_threshold.max(1)),
        max_in_snapshot_log_to_keep: o.trailing_logs,
        ..Default::default()
    };
    cfg.validate().map_err(|e| StartError::Config(e.to_string()))
}

/// Opens storage, loads the newest snapshot and starts Raft. A fresh server with
/// `bootstrap` initializes a one-voter cluster of itself.
pub async fn start(
    o: &RaftOptions,
    state: Arc<StateStore>,
    client: crate::rpc::RpcClient,
) -> Result<Raft, StartError> {
    let backend: Arc<dyn LogBackend> = match &o.data_dir {
        Some(dir) => {
            Arc::new(RedbBackend::open(&dir.join("raft").join("raft.redb")).map_err(StartError::Log)?)
        }
        None => Arc::new(MemBackend::default()),
    };
    start_on(o, state, client, backend).await
}

/// [`start`] over a given log backend (tests inject failing ones).
pub(crate) async fn start_on(
    o: &RaftOptions,
    state: Arc<StateStore>,
    client: crate::rpc::RpcClient,
    backend: Arc<dyn LogBackend>,
) -> Result<Raft, StartError> {
    let db = o.data_dir.as_ref().map(|d| d.join("raft").join("raft.redb"));
    let name = || db.as_ref().map_or_else(|| "the in-memory log".to_owned(), |p| p.display().to_string());
    verify(backend.as_ref())
        .map_err(|e| StartError::Log(io::Error::new(e.kind(), format!("{}: {e}", name()))))?;
    let snap_dir = o.data_dir.as_ref().map(|d| d.join("raft").join("snapshots"));
    let sm = StateMachine::open(state, snap_dir).map_err(StartError::Snapshot)?;
    // The log after a snapshot must start where the snapshot ends: when the newest intact
    // snapshot is older than the log's compaction point (the snapshot that covered the gap
    // is damaged or gone), the entries in between exist nowhere here.
    let purged = log_store::purged_index(backend.as_ref()).map_err(StartError::Log)?;
    let covered = sm.last_applied_index();
    if purged > covered {
        return Err(StartError::Log(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the log was compacted up to entry {purged} but the newest intact snapshot ends at entry \
                 {covered}; entries {}..={purged} exist nowhere on this server. Refusing to start: restore a \
                 snapshot (sekisho snapshot restore) or remove the data dir and let this server rejoin",
                name(),
                covered + 1
            ),
        )));
    }
    let cfg = Arc::new(raft_config(o)?);
    let raft = Raft::new(o.node_id, cfg, Network::new(client), LogStore::new(backend), sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
    if !initialized && o.bootstrap {
        let members = BTreeMap::from([(o.node_id, o.node.clone())]);
        raft.initialize(members).await.map_err(|e| StartError::Raft(e.to_string()))?;
    }
    Ok(raft)
}

/// Waits until this server is the leader, up to `timeout`.
pub async fn wait_leader(raft: &Raft, id: u64, timeout: Duration) -> bool {
    raft.wait(Some(timeout)).current_leader(id, "leader elected").await.is_ok()
}

#[cfg(test)]
mod tests;
