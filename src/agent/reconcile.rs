//! Gossip ↔ cluster glue, run on every server:
//!
//! - `bootstrap_expect`: once N alive servers of this datacenter are in the LAN pool, the one
//!   with the lowest name initializes Raft with all N as voters (the others wait for it).
//! - Leader reconciliation (Consul's `reconcileMember`): every member gets a catalog node with
//!   a `serfHealth` check (passing when alive, critical when failed), servers also the
//!   `consul` service; members that left or were reaped are deregistered, so their services
//!   leave DNS and their sessions (and locks) are released. Servers that appear in the pool
//!   join Raft (learner, then voter); servers that leave it are removed.
//!
//! It runs on every gossip event and every `interval`, acting only while this server leads.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::fsm::Command;
use crate::gossip::{Gossip, Member, MemberStatus};
use crate::raft::{ServerNode, node_id_from_uuid};
use crate::server::Server;
use crate::state::catalog::{DeregisterRequest, RegisterRequest};
use crate::state::types::{CRITICAL, HealthCheck, Node, PASSING, SERF_CHECK_ID, Service};

/// Gossip tag values.
pub(crate) const ROLE_SERVER: &str = "consul";

/// A server member's Raft identity, from its tags (`id`, `port`, `dc`).
pub(crate) fn server_identity(m: &Member, dc: &str) -> Option<(u64, ServerNode)> {
    if m.tags.get("role").map(String::as_str) != Some(ROLE_SERVER)
        || m.tags.get("dc").map(String::as_str) != Some(dc)
    {
        return None;
    }
    let id = m.tags.get("id")?;
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    let node = ServerNode { name: m.name.clone(), rpc_addr: SocketAddr::new(m.addr, port).to_string() };
    Some((node_id_from_uuid(id), node))
}

/// Waits for `expect` servers and bootstraps Raft when this server has the lowest name.
pub(crate) async fn bootstrap_expect(server: Server, gossip: Gossip, expect: usize, stop: CancellationToken) {
    let dc = server.config().datacenter.clone();
    let mut events = gossip.subscribe();
    loop {
        if server.raft().is_initialized().await.unwrap_or(true) {
            return;
        }
        let servers: BTreeMap<String, (u64, ServerNode)> = gossip
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter_map(|m| server_identity(m, &dc).map(|s| (m.name.clone(), s)))
            .collect();
        if servers.len() >= expect {
            let first = servers.keys().next().cloned().unwrap_or_default();
            if first == server.config().node_name {
                let members: BTreeMap<u64, ServerNode> = servers.into_values().take(expect).collect();
                tracing::info!(
                    servers = members.len(),
                    "bootstrap_expect reached; bootstrapping the cluster"
                );
                if let Err(e) = server.bootstrap_cluster(members).await {
                    tracing::error!(error = %e, "bootstrapping the cluster failed");
                }
                return;
            }
        } else {
            tracing::debug!(have = servers.len(), expect, "waiting for more servers before bootstrapping");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Client agents: keeps the server's list of server RPC addresses current from gossip.
pub(crate) async fn track_servers(server: Server, gossip: Gossip, stop: CancellationToken) {
    let dc = server.config().datacenter.clone();
    let mut events = gossip.subscribe();
    loop {
        let addrs: Vec<String> = gossip
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter_map(|m| server_identity(m, &dc).map(|(_, n)| n.rpc_addr))
            .collect();
        server.set_servers(addrs);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Runs leader reconciliation until `stop`.
/// Autopilot settings the reconciler applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Autopilot {
    pub(crate) cleanup_dead_servers: bool,
    pub(crate) min_quorum: usize,
}

pub(crate) async fn run(
    server: Server,
    gossip: Gossip,
    interval: Duration,
    ap: Autopilot,
    stop: CancellationToken,
) {
    let mut events = gossip.subscribe();
    let joining: Arc<Mutex<HashSet<u64>>> = Arc::default();
    loop {
        if server.is_leader()
            && let Err(e) = reconcile(&server, &gossip, &joining, ap).await
        {
            tracing::debug!(error = %e, "reconciling members with the catalog failed; will retry");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

fn serf_check(node: &str, status: &str) -> HealthCheck {
    let output =
        if status == PASSING { "Agent alive and reachable" } else { "Agent not live or unreachable" };
    HealthCheck {
        node: node.to_owned(),
        check_id: SERF_CHECK_ID.into(),
        name: "Serf Health Status".into(),
        status: status.to_owned(),
        output: output.into(),
        check_type: "serf".into(),
        ..Default::default()
    }
}

async fn reconcile(
    server: &Server,
    gossip: &Gossip,
    joining: &Arc<Mutex<HashSet<u64>>>,
    ap: Autopilot,
) -> Result<(), String> {
    let dc = server.config().datacenter.clone();
    let members = gossip.members();
    let (nodes, serf_status) = server.state().read(|s| {
        let nodes: BTreeMap<String, Node> = s.nodes.clone();
        let serf: BTreeMap<String, String> = s
            .checks
            .iter()
            .filter_map(|(n, m)| m.get(SERF_CHECK_ID).map(|c| (n.clone(), c.status.clone())))
            .collect();
        (nodes, serf)
    });
    let mut cmds = Vec::new();
    let mut known = BTreeSet::new();
    for m in &members {
        if m.tags.get("dc").is_some_and(|d| d != &dc) {
            continue;
        }
        known.insert(m.name.clone());
        match m.status {
            MemberStatus::Alive | MemberStatus::Failed => {
                let want = if m.status == MemberStatus::Alive { PASSING } else { CRITICAL };
                let node_ok = nodes.get(&m.name).is_some_and(|n| n.address == m.addr.to_string());
                if node_ok && serf_status.get(&m.name).map(String::as_str) == Some(want) {
                    continue;
                }
                cmds.push(register_member(m, &dc, want));
            }
            MemberStatus::Left | MemberStatus::Leaving => {
                if m.status == MemberStatus::Left && nodes.contains_key(&m.name) {
                    cmds.push(Command::Deregister(DeregisterRequest {
                        node: m.name.clone(),
                        service_id: None,
                        check_id: None,
                    }));
                }
            }
        }
    }
    // Nodes the pool has forgotten (reaped) that were ours (they carry serfHealth).
    for name in serf_status.keys() {
        if !known.contains(name) {
            cmds.push(Command::Deregister(DeregisterRequest {
                node: name.clone(),
                service_id: None,
                check_id: None,
            }));
        }
    }
    let results = futures::future::join_all(cmds.into_iter().map(|c| server.write(c))).await;
    for r in results {
        match r {
            Ok(crate::fsm::Response::Error(e)) => return Err(e),
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
    }
    // Settings stored with `operator autopilot set-config` win over the agent's config file.
    let stored = server.state().read(|st| crate::state::autopilot::autopilot_get(st).cloned());
    let ap = match stored {
        Some(c) => {
            Autopilot { cleanup_dead_servers: c.cleanup_dead_servers, min_quorum: c.min_quorum as usize }
        }
        None => ap,
    };
    reconcile_raft(server, &members, &dc, joining, ap);
    Ok(())
}

fn register_member(m: &Member, dc: &str, serf: &str) -> Command {
    let addr = m.addr.to_string();
    let tagged = BTreeMap::from([
        ("lan".to_string(), addr.clone()),
        ("lan_ipv4".to_string(), addr.clone()),
        ("wan".to_string(), addr.clone()),
        ("wan_ipv4".to_string(), addr.clone()),
    ]);
    let service = server_identity(m, dc).map(|(_, node)| {
        let port = node.rpc_addr.parse::<SocketAddr>().map_or(8300, |a| a.port());
        Service {
            id: "consul".into(),
            service: "consul".into(),
            port,
            weights: Default::default(),
            ..Default::default()
        }
    });
    Command::Register(Box::new(RegisterRequest {
        node: Node {
            id: m.tags.get("id").cloned().unwrap_or_default(),
            node: m.name.clone(),
            address: addr,
            datacenter: dc.to_owned(),
            tagged_addresses: Some(tagged),
            meta: Some(BTreeMap::from([("consul-network-segment".to_string(), String::new())])),
            ..Default::default()
        },
        service,
        checks: vec![serf_check(&m.name, serf)],
        skip_node_update: false,
    }))
}

/// Adds alive servers missing from the Raft configuration, removes servers that left.
fn reconcile_raft(
    server: &Server,
    members: &[Member],
    dc: &str,
    joining: &Arc<Mutex<HashSet<u64>>>,
    ap: Autopilot,
) {
    let metrics = server.metrics();
    let mem = metrics.membership_config.membership();
    let in_config: BTreeSet<u64> = mem.nodes().map(|(id, _)| *id).collect();
    let voters: BTreeSet<u64> = mem.voter_ids().collect();
    for m in members {
        let Some((id, node)) = server_identity(m, dc) else { continue };
        match m.status {
            MemberStatus::Alive if !voters.contains(&id) => {
                if !joining.lock().insert(id) {
                    continue;
                }
                let (server, joining) = (server.clone(), joining.clone());
                tokio::spawn(async move {
                    tracing::info!(server = %node, "adding a server to the Raft configuration");
                    if let Err(e) = server.add_server(id, node.clone()).await {
                        tracing::warn!(server = %node, error = %e, "adding the server failed; will retry");
                    }
                    joining.lock().remove(&id);
                });
            }
            MemberStatus::Left if in_config.contains(&id) && id != server.node_id() => {
                if !joining.lock().insert(id) {
                    continue;
                }
                let (server, joining) = (server.clone(), joining.clone());
                tokio::spawn(async move {
                    tracing::info!(server = %node, "removing a server that left from the Raft configuration");
                    if let Err(e) = server.remove_server(id).await {
                        tracing::warn!(server = %node, error = %e, "removing the server failed; will retry");
                    }
                    joining.lock().remove(&id);
                });
            }
            _ => {}
        }
    }
    if ap.cleanup_dead_servers {
        cleanup_dead_servers(server, members, dc, &voters, joining, ap.min_quorum);
    }
}

/// Autopilot's dead-server cleanup: a server the pool marks failed is removed from the Raft
/// configuration once enough healthy voters remain (a majority of the configuration without
/// it, and at least `max(3, min_quorum)`), typically when its replacement has joined. A failed server is
/// otherwise kept, so a crashed server that restarts finds its seat.
fn cleanup_dead_servers(
    server: &Server,
    members: &[Member],
    dc: &str,
    voters: &BTreeSet<u64>,
    joining: &Arc<Mutex<HashSet<u64>>>,
    min_quorum: usize,
) {
    let status: BTreeMap<u64, (MemberStatus, ServerNode)> =
        members.iter().filter_map(|m| server_identity(m, dc).map(|(id, n)| (id, (m.status, n)))).collect();
    let healthy =
        voters.iter().filter(|id| status.get(id).is_some_and(|(s, _)| *s == MemberStatus::Alive)).count();
    let failed: Vec<(u64, ServerNode)> = voters
        .iter()
        .filter_map(|id| match status.get(id) {
            Some((MemberStatus::Failed, n)) => Some((*id, n.clone())),
            _ => None,
        })
        .collect();
    let min_quorum = min_quorum.max(3);
    for (id, node) in failed {
        let remaining = voters.len() - 1;
        if healthy < min_quorum || healthy <= remaining / 2 || !joining.lock().insert(id) {
            continue;
        }
        let (server, joining) = (server.clone(), joining.clone());
        tokio::spawn(async move {
            tracing::info!(server = %node, "autopilot: removing a dead server");
            if let Err(e) = server.remove_server(id).await {
                tracing::warn!(server = %node, error = %e, "removing the dead server failed; will retry");
            }
            joining.lock().remove(&id);
        });
        // One removal per round: the next round sees the new configuration.
        break;
    }
}
