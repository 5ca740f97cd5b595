//! Leader loops: register this server in the catalog, expire sessions whose TTL ran out,
//! and garbage-collect old KV tombstones. They act only while this server leads; wall-clock
//! decisions are taken here, before the log entry, so that `apply` stays deterministic.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::Server;
use crate::fsm::Command;
use crate::state::catalog::RegisterRequest;
use crate::state::types::{HealthCheck, Node, PASSING, SERF_CHECK_ID, Service};
use crate::state::{Store, Table};

pub(super) async fn run(server: Server) {
    let token = server.shutdown_token();
    let tick = server.config().leader_tick;
    let mut registered = false;
    let mut hints: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut led_term = None;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        if !server.is_leader() {
            registered = false;
            led_term = None;
            server.inner.session_deadlines.lock().clear();
            continue;
        }
        // A new term (also one won again between two ticks) starts every session's TTL
        // timer afresh, as Consul's leader does: timers of an earlier term are not trusted.
        let term = server.metrics().current_term;
        if led_term != Some(term) {
            led_term = Some(term);
            server.inner.session_deadlines.lock().clear();
        }
        if !registered {
            registered = register_self(&server).await;
        }
        expire_sessions(&server).await;
        reap_tombstones(&server, &mut hints).await;
    }
}

/// The registration Consul's leader keeps for every server: the node, the `consul` service
/// and a passing `serfHealth` check.
pub(crate) fn self_registration(server: &Server) -> RegisterRequest {
    let c = server.config();
    let tagged = BTreeMap::from([
        ("lan".to_string(), c.address.clone()),
        ("lan_ipv4".to_string(), c.address.clone()),
        ("wan".to_string(), c.address.clone()),
        ("wan_ipv4".to_string(), c.address.clone()),
    ]);
    RegisterRequest {
        node: Node {
            id: c.node_id.clone(),
            node: c.node_name.clone(),
            address: c.address.clone(),
            datacenter: c.datacenter.clone(),
            tagged_addresses: Some(tagged),
            meta: Some(BTreeMap::from([("consul-network-segment".to_string(), String::new())])),
            ..Default::default()
        },
        service: Some(Service {
            id: "consul".into(),
            service: "consul".into(),
            port: c.rpc_port,
            ..Default::default()
        }),
        checks: vec![HealthCheck {
            node: c.node_name.clone(),
            check_id: SERF_CHECK_ID.into(),
            name: "Serf Health Status".into(),
            status: PASSING.into(),
            output: "Agent alive and reachable".into(),
            check_type: "serf".into(),
            ..Default::default()
        }],
        skip_node_update: false,
    }
}

pub(super) async fn register_self(server: &Server) -> bool {
    let req = self_registration(server);
    match server.write(Command::Register(Box::new(req))).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "failed to register this server in the catalog");
            false
        }
    }
}

fn ttl_of(s: &str) -> Option<Duration> {
    crate::config::parse_go_duration(s).ok().filter(|d| !d.is_zero())
}

async fn expire_sessions(server: &Server) {
    let now = Instant::now();
    let sessions: Vec<(String, Duration)> = server.state().read(|st: &Store| {
        st.sessions.values().filter_map(|s| ttl_of(&s.ttl).map(|t| (s.id.clone(), t))).collect()
    });
    let expired: Vec<String> = {
        let mut deadlines = server.inner.session_deadlines.lock();
        deadlines.retain(|id, _| sessions.iter().any(|(s, _)| s == id));
        for (id, ttl) in &sessions {
            deadlines.entry(id.clone()).or_insert(now + *ttl * 2);
        }
        deadlines.iter().filter(|(_, d)| **d <= now).map(|(id, _)| id.clone()).collect()
    };
    for id in expired {
        tracing::info!(session = %id, "session TTL expired; invalidating");
        if server.write(Command::SessionDestroy(id.clone())).await.is_ok() {
            server.inner.session_deadlines.lock().remove(&id);
        }
    }
}

async fn reap_tombstones(server: &Server, hints: &mut VecDeque<(Instant, u64)>) {
    let now = Instant::now();
    let ttl = server.config().tombstone_ttl;
    let (idx, oldest) = server
        .state()
        .read(|st: &Store| (st.index(Table::Tombstones), st.tombstones.values().min().copied()));
    if hints.back().is_none_or(|(_, i)| *i != idx) {
        hints.push_back((now, idx));
    }
    let mut upto = None;
    while let Some((t, i)) = hints.front().copied() {
        if now.duration_since(t) < ttl {
            break;
        }
        upto = Some(i);
        hints.pop_front();
    }
    if let (Some(upto), Some(oldest)) = (upto, oldest)
        && oldest <= upto
    {
        let _ = server.write(Command::TombstoneReap(upto)).await;
    }
}
