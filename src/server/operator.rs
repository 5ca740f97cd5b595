//! Operator endpoints on the server: the Raft configuration, peer removal, leadership
//! transfer, the autopilot configuration and health, snapshot save and restore, and the
//! offline recovery of a cluster that lost its quorum ([`recover`]).
//!
//! ```text
//!  raft_configuration ─► barrier (consistency) ─► membership from local Raft metrics
//!  remove_peer(id|addr) ─► resolve in the membership ─► remove_server (leader)
//!  transfer_leader ─► leader: target caught up? ─► /rpc/v1/operator/elect on the target
//!                                                  └─ the target campaigns until it leads
//!  autopilot_health ─► leader: /rpc/v1/operator/stats on every server + its own metrics
//!  snapshot_save ─► barrier ─► clone the store ─► archive::encode
//!  snapshot_restore ─► archive::decode (verified) ─► Command::Restore through Raft
//! ```
//!
//! Server IDs are shown as Consul shows them: the node ID (a UUID) from the catalog, or the
//! numeric Raft ID when the catalog does not know the server. Either form is accepted.

pub mod archive;
mod autopilot;
pub mod recover;
mod rpc;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use self::archive::{Archive, ArchiveError, SnapshotMeta};
pub use self::autopilot::{AutopilotHealth, AutopilotServer, AutopilotState, ServerHealth};
#[cfg(any(test, feature = "testing"))]
pub(super) use self::rpc::decode_request as decode_rpc;
pub(super) use self::rpc::{PREFIX as RPC_PREFIX, dispatch as dispatch_rpc};
use super::{Consistency, Error, QueryOptions, Server};
use crate::fsm::{Command, Response};
use crate::raft::{ServerNode, node_id_from_uuid};
use crate::state::Table;
use crate::state::autopilot::{AutopilotConfig, autopilot_get};

/// One server of the Raft configuration (Consul's `RaftServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServer {
    /// The node ID (UUID), or the numeric Raft ID when the catalog does not know the server.
    #[serde(rename = "ID")]
    pub id: String,
    /// The node name.
    pub node: String,
    /// `ip:port` of its server RPC.
    pub address: String,
    /// Whether it is the current leader.
    pub leader: bool,
    /// Always `"3"`: servers are identified by ID, as in Raft protocol 3.
    pub protocol_version: String,
    /// Whether it votes (learners do not).
    pub voter: bool,
}

/// The Raft configuration (`GET /v1/operator/raft/configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfiguration {
    pub servers: Vec<RaftServer>,
    /// The Raft index of the configuration's log entry.
    pub index: u64,
}

/// Which server to act on: by ID (UUID or numeric Raft ID) or by RPC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Id(String),
    Address(String),
}

impl Server {
    /// The current Raft configuration. `Default` and `Consistent` need a leader (the read
    /// goes through the usual barrier); `Stale` answers from this server's own view.
    pub async fn raft_configuration(&self, consistency: Consistency) -> Result<RaftConfiguration, Error> {
        let opts = QueryOptions { consistency, ..QueryOptions::default() };
        self.query(&opts, &[], |_| ((), 0, 0)).await?;
        Ok(self.local_raft_configuration())
    }

    fn local_raft_configuration(&self) -> RaftConfiguration {
        let m = self.metrics();
        let mem = m.membership_config.membership();
        let voters: BTreeSet<u64> = mem.voter_ids().collect();
        let ids = self.catalog_ids();
        let servers = mem
            .nodes()
            .map(|(id, node)| RaftServer {
                id: display_id(*id, node, &ids),
                node: node.name.clone(),
                address: node.rpc_addr.clone(),
                leader: m.current_leader == Some(*id),
                protocol_version: "3".into(),
                voter: voters.contains(id),
            })
            .collect();
        RaftConfiguration { servers, index: m.membership_config.log_id().map_or(0, |l| l.index) }
    }

    /// Node name → node ID, from the catalog.
    fn catalog_ids(&self) -> BTreeMap<String, String> {
        self.state().read(|st| st.nodes.values().map(|n| (n.node.clone(), n.id.clone())).collect())
    }

    /// The Raft ID of `peer` in the current configuration; Consul's error texts otherwise.
    pub fn resolve_peer(&self, peer: &Peer) -> Result<u64, Error> {
        let m = self.metrics();
        let mem = m.membership_config.membership();
        let ids = self.catalog_ids();
        let found = mem.nodes().find(|(id, node)| match peer {
            Peer::Address(a) => node.rpc_addr == *a,
            Peer::Id(s) => {
                display_id(**id, node, &ids) == *s
                    || s.parse::<u64>().ok() == Some(**id)
                    || (uuid::Uuid::parse_str(s).is_ok() && node_id_from_uuid(s) == **id)
            }
        });
        match (found, peer) {
            (Some((id, _)), _) => Ok(*id),
            (None, Peer::Address(a)) => {
                Err(Error::Internal(format!("address {a:?} was not found in the Raft configuration")))
            }
            (None, Peer::Id(s)) => {
                Err(Error::Internal(format!("id {s:?} was not found in the Raft configuration")))
            }
        }
    }

    /// Removes a server from the Raft configuration (`DELETE /v1/operator/raft/peer`). A
    /// server that is still alive in the gossip pool is added back by the leader's
    /// reconciliation, as in Consul; use `leave` or `force-leave` for those.
    pub async fn remove_peer(&self, peer: &Peer) -> Result<(), Error> {
        let id = self.resolve_peer(peer)?;
        self.remove_server(id).await
    }

    /// Hands the leadership to `to` (an ID as [`Peer::Id`] accepts), or to the most
    /// up-to-date other voter. Returns the new leader's Raft ID once it leads.
    ///
    /// openraft 0.9 has no leadership-transfer call, so the leader waits until the target's
    /// log has caught up and then asks the target to campaign: with a log at least as long
    /// as everyone's and a higher term, it wins the election (the old leader grants its vote
    /// and steps down). Writes arriving meanwhile may delay the hand-over; the call fails
    /// after `rpc_hold_timeout` (at least 3 s) if the target does not lead by then.
    pub async fn transfer_leader(&self, to: Option<String>) -> Result<u64, Error> {
        if self.is_leader() {
            return self.transfer_leader_local(to).await;
        }
        let addr = self.leader_addr().ok_or(Error::NoLeader)?;
        // The leader may spend a whole transfer window on it: wait longer than `forward` does.
        let timeout = self.transfer_window() + Duration::from_secs(5);
        let r: Result<u64, Error> = self
            .inner
            .client
            .call(&addr, rpc::TRANSFER, &to, timeout)
            .await
            .map_err(|e| Error::Internal(format!("forwarding the transfer to the leader: {e}")))?;
        r
    }

    /// How long a leadership transfer may take before it is reported as failed.
    fn transfer_window(&self) -> Duration {
        self.config().rpc_hold_timeout.max(Duration::from_secs(3))
    }

    async fn transfer_leader_local(&self, to: Option<String>) -> Result<u64, Error> {
        let m = self.metrics();
        let me = self.node_id();
        let mem = m.membership_config.membership().clone();
        let others: Vec<u64> = mem.voter_ids().filter(|v| *v != me).collect();
        let target = match to.filter(|s| !s.is_empty()) {
            Some(s) => {
                let id = self.resolve_peer(&Peer::Id(s.clone()))?;
                if id == me {
                    return Err(Error::BadRequest("cannot transfer leadership to itself".into()));
                }
                if !others.contains(&id) {
                    return Err(Error::BadRequest(format!(
                        "server {s:?} is not a voter; only voters can lead"
                    )));
                }
                id
            }
            None => *others.iter().max_by_key(|id| (matched(&m, **id), **id)).ok_or_else(|| {
                Error::BadRequest("cannot transfer leadership: there is no other voting server".into())
            })?,
        };
        let node = mem.get_node(&target).cloned().ok_or_else(|| Error::Internal("target vanished".into()))?;
        let deadline = Instant::now() + self.transfer_window();
        self.wait_settled(deadline).await;
        self.wait_caught_up(target, deadline).await?;
        tracing::info!(target = %node, "transferring leadership");
        // This server must not compete with the target once it has stepped down.
        let _no_elections = NoElections::new(self.raft());
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        let r: Result<(), Error> = self
            .inner
            .client
            .call(
                &node.rpc_addr,
                rpc::ELECT,
                &(remaining.as_millis() as u64),
                remaining + Duration::from_secs(2),
            )
            .await
            .map_err(|e| Error::Internal(format!("asking {} to take over the leadership: {e}", node.name)))?;
        r?;
        let seen = self
            .raft()
            .wait(Some(Duration::from_secs(2)))
            .metrics(|x| x.current_leader == Some(target), "the new leader is known")
            .await;
        seen.map(|_| target).map_err(|_| {
            Error::Internal(format!(
                "{} won the election but this server has not heard from it yet",
                node.name
            ))
        })
    }

    /// Waits until this server has led for a whole leader lease (openraft's
    /// `election_timeout_max`). Until then it would turn the target's vote request down, and
    /// a new leader is still appending its own first entries, which the target would miss.
    /// The start of a term's leadership is remembered from the first time it is seen here.
    async fn wait_settled(&self, deadline: Instant) {
        let lease = Duration::from_millis(self.raft().config().election_timeout_max);
        let key = (self.node_id(), self.metrics().current_term);
        let since = {
            let mut seen = LEADING_SINCE.lock();
            seen.retain(|(id, _), _| *id != key.0);
            *seen.entry(key).or_insert_with(Instant::now)
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std((since + lease).min(deadline))).await;
    }

    /// Waits until `target`'s replicated log has matched this leader's last index for two
    /// heartbeats in a row (no write in flight that it could miss).
    async fn wait_caught_up(&self, target: u64, deadline: Instant) -> Result<(), Error> {
        let quiet = Duration::from_millis(self.raft().config().heartbeat_interval * 2);
        let mut level: Option<(u64, Instant)> = None;
        loop {
            let m = self.metrics();
            let last = m.last_log_index.unwrap_or(0);
            if matched(&m, target) >= last {
                match level {
                    Some((l, t)) if l == last && t.elapsed() >= quiet => return Ok(()),
                    Some((l, _)) if l == last => {}
                    _ => level = Some((last, Instant::now())),
                }
            } else {
                level = None;
            }
            if Instant::now() >= deadline {
                return Err(Error::Internal(format!(
                    "the target server did not catch up with the leader's log in time ({} entries \
                     behind, writes still arriving); leadership not transferred",
                    last.saturating_sub(matched(&m, target))
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// On the target of a transfer: start one election and wait until this server leads.
    /// The election is not restarted by hand: a candidate that was turned down retries on
    /// its own timer, and repeated elections with ever higher terms would only keep the
    /// cluster leaderless when this server misses an entry.
    async fn campaign(&self, within: Duration) -> Result<(), Error> {
        let me = self.node_id();
        self.raft().trigger().elect().await.map_err(|e| Error::Internal(e.to_string()))?;
        let won = self
            .raft()
            .wait(Some(within))
            .metrics(|m| m.current_leader == Some(me) && m.state.is_leader(), "won the election")
            .await;
        won.map(drop).map_err(|_| {
            let leader = self.metrics().current_leader;
            Error::Internal(format!(
                "leadership transfer did not complete in {within:?}; the leader is now {}",
                leader.map_or_else(|| "unknown".to_owned(), |l| l.to_string())
            ))
        })
    }

    /// The autopilot configuration in effect: the stored one, or the defaults.
    pub fn autopilot_config(&self) -> AutopilotConfig {
        self.state()
            .read(|st| autopilot_get(st).cloned())
            .unwrap_or_else(|| AutopilotConfig::defaults(self.config().server_stabilization_time))
    }

    /// [`Server::autopilot_config`] read with a consistency mode.
    pub async fn read_autopilot_config(&self, consistency: Consistency) -> Result<AutopilotConfig, Error> {
        let opts = QueryOptions { consistency, ..QueryOptions::default() };
        self.query(&opts, &[], |_| ((), 0, 0)).await?;
        Ok(self.autopilot_config())
    }

    /// Stores a new autopilot configuration through Raft; with `cas`, only if the stored
    /// ModifyIndex still equals it. Returns whether it was written.
    pub async fn set_autopilot_config(
        &self,
        config: AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<bool, Error> {
        match self.write(Command::AutopilotSet { config, cas }).await? {
            Response::Bool(ok) => Ok(ok),
            Response::Error(e) => Err(Error::BadRequest(e)),
            other => Err(Error::Internal(format!("unexpected response {other:?}"))),
        }
    }

    /// Autopilot's view of every server's health, computed by the leader.
    pub async fn autopilot_health(&self) -> Result<AutopilotHealth, Error> {
        if self.is_leader() {
            return Ok(self.autopilot_health_local().await);
        }
        let addr = self.leader_addr().ok_or(Error::NoLeader)?;
        self.forward(&addr, rpc::HEALTH, &()).await.and_then(|r| r)
    }

    /// Autopilot's state (`/v1/operator/autopilot/state`), derived from the health.
    pub async fn autopilot_state(&self) -> Result<AutopilotState, Error> {
        self.autopilot_health().await.map(AutopilotState::from)
    }

    /// A snapshot archive of the whole state and its metadata (`GET /v1/snapshot`).
    pub async fn snapshot_save(&self, consistency: Consistency) -> Result<(Vec<u8>, SnapshotMeta), Error> {
        let opts = QueryOptions { consistency, ..QueryOptions::default() };
        let (store, _) = self.query(&opts, &[], |st| (st.clone(), 0, 0)).await?;
        let applied = self.metrics().last_applied;
        let index = applied.map_or(0, |l| l.index).max(store.max_index(&Table::ALL));
        let term = applied.map_or(0, |l| l.leader_id.term);
        let cfg = self.config();
        let meta = SnapshotMeta::now(index, term, &cfg.datacenter, &cfg.node_name);
        let m = meta.clone();
        let bytes = tokio::task::spawn_blocking(move || archive::encode(&m, &store))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((bytes, meta))
    }

    /// Verifies an archive and replaces the whole state with it through Raft, so every
    /// server applies it. A corrupt or truncated archive is refused with
    /// [`Error::BadRequest`] and changes nothing.
    pub async fn snapshot_restore(&self, bytes: Vec<u8>) -> Result<SnapshotMeta, Error> {
        let archive = tokio::task::spawn_blocking(move || archive::decode(&bytes))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        tracing::info!(id = %archive.meta.id, index = archive.meta.index, "restoring a snapshot");
        match self.write(Command::Restore(Box::new(archive.store))).await? {
            Response::Bool(true) => Ok(archive.meta),
            Response::Error(e) => Err(Error::Internal(e)),
            other => Err(Error::Internal(format!("unexpected response {other:?}"))),
        }
    }
}

/// `(Raft ID, term)` → when this server was first seen leading in that term.
static LEADING_SINCE: std::sync::LazyLock<
    parking_lot::Mutex<std::collections::HashMap<(u64, u64), Instant>>,
> = std::sync::LazyLock::new(Default::default);

/// Keeps a server from starting elections while it lives.
struct NoElections(crate::raft::Raft);

impl NoElections {
    fn new(raft: &crate::raft::Raft) -> NoElections {
        raft.runtime_config().elect(false);
        NoElections(raft.clone())
    }
}

impl Drop for NoElections {
    fn drop(&mut self) {
        self.0.runtime_config().elect(true);
    }
}

/// The index replicated to `id` as the leader's metrics report it (the leader itself: its
/// last log index).
fn matched(m: &crate::raft::Metrics, id: u64) -> u64 {
    if m.id == id {
        return m.last_log_index.unwrap_or(0);
    }
    m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten()).map_or(0, |l| l.index)
}

/// Consul's server ID: the node ID when the catalog has one for this server's name that
/// maps to the same Raft ID; otherwise the numeric Raft ID.
fn display_id(id: u64, node: &ServerNode, ids: &BTreeMap<String, String>) -> String {
    match ids.get(&node.name) {
        Some(uuid) if !uuid.is_empty() && node_id_from_uuid(uuid) == id => uuid.clone(),
        _ => id.to_string(),
    }
}
