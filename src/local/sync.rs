//! Anti-entropy: makes the catalog entries of this node match the local state.
//!
//! Each round diffs the local services and checks against the catalog's view of this node
//! and writes only the differences: missing or changed entries are registered, entries the
//! agent does not own are deregistered (except the `consul` service and `serfHealth`, which
//! the servers manage). A round runs on every local change, whenever this node's catalog
//! entries change (so an entry deleted by hand comes back at once), and periodically.
//! A check whose only change is its output is synced at most every `output_interval`
//! (Consul's `check_update_interval`), so chatty checks do not flood Raft.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::LocalState;
use crate::fsm::Command;
use crate::server::Server;
use crate::state::Table;
use crate::state::catalog::{DeregisterRequest, RegisterRequest};
use crate::state::types::{HealthCheck, Node, SERF_CHECK_ID, Service};

/// Timings of the sync loop.
#[derive(Debug, Clone, Copy)]
pub struct SyncTuning {
    /// Full sync period (Consul's `ae_interval`, 1m).
    pub period: Duration,
    /// Minimum time between syncs of output-only check changes (Consul: 5m).
    pub output_interval: Duration,
    /// Period of the `deregister_critical_service_after` reaper (Consul: 30s).
    pub reap_interval: Duration,
}

impl Default for SyncTuning {
    fn default() -> Self {
        SyncTuning {
            period: Duration::from_secs(60),
            output_interval: Duration::from_secs(300),
            reap_interval: Duration::from_secs(30),
        }
    }
}

fn same_service(a: &Service, b: &Service, ignore_tags: bool) -> bool {
    let mut a = a.clone();
    a.create_index = b.create_index;
    a.modify_index = b.modify_index;
    if ignore_tags {
        a.tags.clone_from(&b.tags);
    }
    a == *b
}

/// Compares a local check with the catalog's; `Some(true)` = equal, `Some(false)` = only the
/// output differs, `None` = something else differs.
fn compare_check(local: &HealthCheck, cat: &HealthCheck) -> Option<bool> {
    let mut l = local.clone();
    l.create_index = cat.create_index;
    l.modify_index = cat.modify_index;
    l.output.clone_from(&cat.output);
    if l != *cat {
        return None;
    }
    Some(local.output == cat.output)
}

/// State the loop keeps between rounds.
#[derive(Debug, Default)]
struct Memory {
    /// When each check's output was last written.
    output_synced: HashMap<String, Instant>,
}

/// One round: returns the number of writes made.
async fn sync_once(
    local: &LocalState,
    server: &Server,
    mem: &mut Memory,
    t: SyncTuning,
) -> Result<usize, String> {
    let node_name = local.cfg.node_name.clone();
    let (cat_node, cat_services, cat_checks) =
        server.node_entries(&node_name).await.map_err(|e| e.to_string())?;
    let local_services = local.services();
    let local_checks = local.checks();
    let count = |st: &str| local_checks.iter().filter(|c| c.status == st).count();
    crate::telemetry::check_status_counts(count("passing"), count("warning"), count("critical"));
    let mut cmds = Vec::new();
    let node = match &cat_node {
        Some(n) => n.clone(),
        None => Node {
            id: local.cfg.node_id.clone(),
            node: node_name.clone(),
            address: local.cfg.address.clone(),
            datacenter: local.cfg.datacenter.clone(),
            ..Default::default()
        },
    };
    let register = |service: Option<Service>, checks: Vec<HealthCheck>| {
        Command::Register(Box::new(RegisterRequest {
            node: node.clone(),
            service,
            checks,
            skip_node_update: cat_node.is_some(),
        }))
    };
    let now = Instant::now();
    let mut synced_checks = Vec::new();
    for svc in &local_services {
        let cat = cat_services.get(&svc.id);
        if let Some(c) = cat
            && svc.enable_tag_override
            && c.tags != svc.tags
            && same_service(svc, c, true)
        {
            local.adopt_tags(&svc.id, c.tags.clone());
            continue;
        }
        if cat.is_some_and(|c| same_service(svc, c, false)) {
            continue;
        }
        let checks: Vec<HealthCheck> =
            local_checks.iter().filter(|c| c.service_id == svc.id).cloned().collect();
        synced_checks.extend(checks.iter().map(|c| c.check_id.clone()));
        cmds.push(register(Some(svc.clone()), checks));
    }
    for chk in &local_checks {
        if synced_checks.contains(&chk.check_id) {
            continue;
        }
        let needed = match cat_checks.get(&chk.check_id).and_then(|c| compare_check(chk, c)) {
            None => true,
            Some(true) => false,
            // The first output a check produces goes out at once; later output-only changes wait.
            Some(false) => {
                let first = cat_checks.get(&chk.check_id).is_some_and(|c| c.output.is_empty());
                first || mem.output_synced.get(&chk.check_id).is_none_or(|at| now - *at >= t.output_interval)
            }
        };
        if needed {
            synced_checks.push(chk.check_id.clone());
            cmds.push(register(None, vec![chk.clone()]));
        }
    }
    for id in &synced_checks {
        mem.output_synced.insert(id.clone(), now);
    }
    for id in cat_services.keys() {
        if id != "consul" && !local_services.iter().any(|s| &s.id == id) {
            cmds.push(Command::Deregister(DeregisterRequest {
                node: node_name.clone(),
                service_id: Some(id.clone()),
                check_id: None,
            }));
        }
    }
    for (id, c) in &cat_checks {
        let owned_by_removed_service =
            !c.service_id.is_empty() && !local_services.iter().any(|s| s.id == c.service_id);
        if id != SERF_CHECK_ID && !owned_by_removed_service && !local_checks.iter().any(|l| &l.check_id == id)
        {
            cmds.push(Command::Deregister(DeregisterRequest {
                node: node_name.clone(),
                service_id: None,
                check_id: Some(id.clone()),
            }));
        }
    }
    mem.output_synced.retain(|id, _| local_checks.iter().any(|c| &c.check_id == id));
    let n = cmds.len();
    let results = futures::future::join_all(cmds.into_iter().map(|c| server.write(c))).await;
    for r in results {
        match r {
            Ok(crate::fsm::Response::Error(e)) => return Err(e),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(n)
}

/// Runs anti-entropy and the reaper until `stop` is cancelled.
pub async fn run(local: Arc<LocalState>, stop: CancellationToken, t: SyncTuning) {
    let server = local.server.clone();
    let mut changes = local.subscribe();
    let mut catalog = server.state().subscribe(&[Table::Nodes, Table::Services, Table::Checks]);
    let mut mem = Memory::default();
    let mut next_reap = Instant::now() + t.reap_interval;
    let mut failures = 0u32;
    loop {
        changes.borrow_and_update();
        for c in &mut catalog {
            c.borrow_and_update();
        }
        match sync_once(&local, &server, &mut mem, t).await {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(writes = n, "synced local services and checks to the catalog");
                }
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures <= 3 || failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, "anti-entropy sync failed; retrying");
                }
            }
        }
        if Instant::now() >= next_reap {
            local.reap(Instant::now());
            next_reap = Instant::now() + t.reap_interval;
        }
        // After a failure retry soon; otherwise wait for a change or the period.
        let wait = if failures > 0 { Duration::from_millis(500).min(t.period) } else { t.period };
        let wait = wait.min(next_reap.saturating_duration_since(Instant::now()));
        let cat_changed = futures::future::select_all(catalog.iter_mut().map(|c| Box::pin(c.changed())));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = changes.changed() => {}
            _ = cat_changed => {}
            _ = tokio::time::sleep(wait) => {}
        }
        // Let a burst of changes (a reload, several registrations) settle into one round.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
