//! Autopilot health, computed on the leader: each server reports its own Raft stats over
//! `/rpc/v1/operator/stats`; the leader judges them against the autopilot configuration
//! (Consul's rules: alive in gossip, heard from the leader within `LastContactThreshold`,
//! within `MaxTrailingLogs` of the leader's log, same term) and remembers since when each
//! server has been in its current state (`StableSince`, kept in memory on the leader).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Server, display_id, matched, rpc};
use crate::http::decode::go_duration;
use crate::state::types::{CRITICAL, PASSING, SERF_CHECK_ID};

/// What a server reports about itself to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ServerStats {
    pub(super) version: String,
    /// Milliseconds since this server last heard from the leader (0 on the leader).
    pub(super) last_contact_ms: u64,
    pub(super) last_log_index: u64,
    pub(super) term: u64,
}

/// One server in `/v1/operator/autopilot/health` (Consul's `ServerHealth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerHealth {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    /// `alive`, `failed`, `left` or `none`, from the node's `serfHealth` check.
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    /// A Go duration (`"12ms"`).
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub voter: bool,
    /// RFC 3339 time since which `Healthy` has had its current value.
    pub stable_since: String,
}

/// `/v1/operator/autopilot/health` (Consul's `OperatorHealthReply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotHealth {
    pub healthy: bool,
    /// How many voters may fail before the cluster loses its quorum.
    pub failure_tolerance: u64,
    pub servers: Vec<ServerHealth>,
}

/// One server in `/v1/operator/autopilot/state` (Consul's `AutopilotServer`, a subset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotServer {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    pub node_status: String,
    pub version: String,
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub stable_since: String,
    pub read_replica: bool,
    /// `leader`, `voter` or `non-voter`.
    pub status: String,
    pub meta: BTreeMap<String, String>,
    pub node_type: String,
}

/// `/v1/operator/autopilot/state` (Consul's `AutopilotState` without zones and upgrades).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotState {
    pub healthy: bool,
    pub failure_tolerance: u64,
    /// The failure tolerance if every voter were healthy.
    pub optimistic_failure_tolerance: u64,
    pub servers: BTreeMap<String, AutopilotServer>,
    pub leader: String,
    pub voters: Vec<String>,
}

impl From<AutopilotHealth> for AutopilotState {
    fn from(h: AutopilotHealth) -> AutopilotState {
        let voters: Vec<String> = h.servers.iter().filter(|s| s.voter).map(|s| s.id.clone()).collect();
        let leader = h.servers.iter().find(|s| s.leader).map(|s| s.id.clone()).unwrap_or_default();
        let servers = h
            .servers
            .into_iter()
            .map(|s| {
                let status = match (s.leader, s.voter) {
                    (true, _) => "leader",
                    (false, true) => "voter",
                    (false, false) => "non-voter",
                };
                let server = AutopilotServer {
                    id: s.id.clone(),
                    name: s.name,
                    address: s.address,
                    node_status: s.serf_status,
                    version: s.version,
                    last_contact: s.last_contact,
                    last_term: s.last_term,
                    last_index: s.last_index,
                    healthy: s.healthy,
                    stable_since: s.stable_since,
                    read_replica: false,
                    status: status.into(),
                    meta: BTreeMap::new(),
                    node_type: "voter".into(),
                };
                (s.id, server)
            })
            .collect();
        AutopilotState {
            healthy: h.healthy,
            failure_tolerance: h.failure_tolerance,
            optimistic_failure_tolerance: (voters.len() as u64).saturating_sub(quorum(voters.len())),
            servers,
            leader,
            voters,
        }
    }
}

fn quorum(voters: usize) -> u64 {
    (voters / 2 + 1) as u64
}

/// What the leader remembers per server between health requests.
#[derive(Debug, Clone, Copy)]
struct Track {
    healthy: bool,
    since: SystemTime,
    /// When the server last answered a stats call.
    last_ok: Option<Instant>,
}

/// `(leader Raft ID, server Raft ID)` → memory. Keyed by leader so that several servers in
/// one process (tests) keep separate views; a new leader starts afresh, as in Consul.
static TRACKS: LazyLock<Mutex<HashMap<(u64, u64), Track>>> = LazyLock::new(Default::default);

fn serf_status(check: Option<&String>) -> &'static str {
    match check.map(String::as_str) {
        Some(PASSING) => "alive",
        Some(CRITICAL) => "failed",
        Some(_) => "alive",
        None => "none",
    }
}

impl Server {
    /// This server's own stats.
    pub(super) fn own_stats(&self) -> ServerStats {
        let m = self.metrics();
        ServerStats {
            version: crate::VERSION.to_owned(),
            last_contact_ms: self.last_contact_ms(),
            last_log_index: m.last_log_index.unwrap_or(0),
            term: m.current_term,
        }
    }

    pub(super) async fn autopilot_health_local(&self) -> AutopilotHealth {
        let cfg = self.autopilot_config();
        let m = self.metrics();
        let me = self.node_id();
        let mem = m.membership_config.membership().clone();
        let voters: Vec<u64> = mem.voter_ids().collect();
        let nodes: Vec<(u64, crate::raft::ServerNode)> =
            mem.nodes().map(|(id, n)| (*id, n.clone())).collect();
        // A server that does not answer within a second or two is reported, not waited for.
        let timeout = (cfg.last_contact_threshold * 2).clamp(Duration::from_secs(1), Duration::from_secs(2));
        let stats = futures::future::join_all(nodes.iter().map(|(id, node)| async move {
            if *id == me {
                return Some(self.own_stats());
            }
            self.inner.client.call::<_, ServerStats>(&node.rpc_addr, rpc::STATS, &(), timeout).await.ok()
        }))
        .await;
        let (ids, serf) = self.state().read(|st| {
            let ids: BTreeMap<String, String> =
                st.nodes.values().map(|n| (n.node.clone(), n.id.clone())).collect();
            let serf: BTreeMap<String, String> = st
                .checks
                .iter()
                .filter_map(|(n, cs)| cs.get(SERF_CHECK_ID).map(|c| (n.clone(), c.status.clone())))
                .collect();
            (ids, serf)
        });
        let leader_last = m.last_log_index.unwrap_or(0);
        let now = Instant::now();
        let mut tracks = TRACKS.lock();
        tracks.retain(|(leader, id), _| *leader != me || nodes.iter().any(|(n, _)| n == id));
        let mut servers = Vec::new();
        for ((id, node), stat) in nodes.iter().zip(stats) {
            let track = tracks.entry((me, *id)).or_insert(Track {
                healthy: false,
                since: SystemTime::now(),
                last_ok: None,
            });
            if stat.is_some() {
                track.last_ok = Some(now);
            }
            let leader = *id == me;
            let contact = match (&stat, leader) {
                (_, true) => Duration::ZERO,
                (Some(s), false) => Duration::from_millis(s.last_contact_ms),
                (None, false) => track.last_ok.map_or(Duration::MAX, |t| now.duration_since(t)),
            };
            let serf_status = serf_status(serf.get(&node.name));
            let last_index = stat.as_ref().map_or_else(|| matched(&m, *id), |s| s.last_log_index);
            let term = stat.as_ref().map_or(0, |s| s.term);
            let healthy = stat.is_some()
                && serf_status == "alive"
                && contact <= cfg.last_contact_threshold
                && leader_last.saturating_sub(last_index) <= cfg.max_trailing_logs
                && term == m.current_term;
            if healthy != track.healthy {
                *track = Track { healthy, since: SystemTime::now(), last_ok: track.last_ok };
            }
            servers.push(ServerHealth {
                id: display_id(*id, node, &ids),
                name: node.name.clone(),
                address: node.rpc_addr.clone(),
                serf_status: serf_status.into(),
                version: stat.as_ref().map(|s| s.version.clone()).unwrap_or_default(),
                leader,
                last_contact: if contact == Duration::MAX { "-1ns".into() } else { go_duration(contact) },
                last_term: term,
                last_index,
                healthy,
                voter: voters.contains(id),
                stable_since: humantime::format_rfc3339_seconds(track.since).to_string(),
            });
        }
        drop(tracks);
        let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count() as u64;
        AutopilotHealth {
            healthy: servers.iter().all(|s| s.healthy),
            failure_tolerance: healthy_voters.saturating_sub(quorum(voters.len())),
            servers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(id: &str, leader: bool, voter: bool, healthy: bool) -> ServerHealth {
        ServerHealth {
            id: id.into(),
            name: format!("n-{id}"),
            address: "127.0.0.1:8300".into(),
            serf_status: "alive".into(),
            version: "0.1.0".into(),
            leader,
            last_contact: "0s".into(),
            last_term: 2,
            last_index: 10,
            healthy,
            voter,
            stable_since: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn state_names_the_leader_voters_and_tolerances() {
        let h = AutopilotHealth {
            healthy: false,
            failure_tolerance: 0,
            servers: vec![
                health("a", true, true, true),
                health("b", false, true, false),
                health("c", false, true, true),
                health("d", false, false, true),
            ],
        };
        let s = AutopilotState::from(h);
        assert_eq!(s.leader, "a");
        assert_eq!(s.voters, ["a", "b", "c"]);
        assert_eq!(s.optimistic_failure_tolerance, 1);
        assert_eq!(s.servers["b"].status, "voter");
        assert_eq!(s.servers["d"].status, "non-voter");
        assert_eq!(s.servers["a"].status, "leader");
    }

    #[test]
    fn serf_status_follows_the_serf_health_check() {
        assert_eq!(serf_status(Some(&PASSING.to_string())), "alive");
        assert_eq!(serf_status(Some(&CRITICAL.to_string())), "failed");
        assert_eq!(serf_status(None), "none");
    }
}
