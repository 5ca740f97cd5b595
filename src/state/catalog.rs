//! Catalog writes (register, deregister) and reads (nodes, services, health).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::session::{invalidate_linked_sessions, invalidate_node_sessions};
use super::store::{Store, Table};
use super::types::{CRITICAL, HealthCheck, Node, PASSING, Service};

/// `PUT /v1/catalog/register` after decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RegisterRequest {
    pub node: Node,
    pub service: Option<Service>,
    pub checks: Vec<HealthCheck>,
    pub skip_node_update: bool,
}

/// `PUT /v1/catalog/deregister` after decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeregisterRequest {
    pub node: String,
    pub service_id: Option<String>,
    pub check_id: Option<String>,
}

/// Registers a node with an optional service and checks. `Err` leaves the store unchanged
/// only when the caller rolls back (the FSM wraps this in a transaction).
pub fn register(st: &mut Store, idx: u64, req: &RegisterRequest, now: Instant) -> Result<(), String> {
    ensure_node(st, idx, &req.node, req.skip_node_update)?;
    let name = &req.node.node;
    if let Some(svc) = &req.service {
        ensure_service(st, idx, name, svc)?;
    }
    for c in &req.checks {
        ensure_check(st, idx, name, c, now)?;
    }
    Ok(())
}

fn ensure_node(st: &mut Store, idx: u64, n: &Node, skip_update: bool) -> Result<(), String> {
    if n.node.is_empty() {
        return Err("Must provide node".into());
    }
    let existing = st.nodes.get(&n.node).cloned();
    if skip_update && existing.is_some() {
        return Ok(());
    }
    if !n.id.is_empty()
        && let Some(other) = st.nodes.values().find(|o| o.id == n.id && o.node != n.node)
    {
        return Err(format!(
            "Failed inserting node: Error while renaming Node ID: \"{}\": Node name {} is reserved by node {} with name {}",
            n.id, n.node, other.id, other.node
        ));
    }
    let mut node = n.clone();
    node.create_index = existing.as_ref().map_or(idx, |e| e.create_index);
    node.modify_index = idx;
    if let Some(e) = &existing {
        let mut same = node.clone();
        same.modify_index = e.modify_index;
        if same == *e {
            return Ok(());
        }
    }
    st.set_node(idx, node);
    Ok(())
}

fn ensure_service(st: &mut Store, idx: u64, node: &str, svc: &Service) -> Result<(), String> {
    let mut s = svc.clone();
    if s.id.is_empty() {
        s.id = s.service.clone();
    }
    if s.service.is_empty() {
        return Err("Must provide service name with ID".into());
    }
    let existing = st.services.get(node).and_then(|m| m.get(&s.id)).cloned();
    s.create_index = existing.as_ref().map_or(idx, |e| e.create_index);
    s.modify_index = existing.as_ref().map_or(idx, |e| e.modify_index);
    if existing.as_ref() == Some(&s) {
        return Ok(());
    }
    s.modify_index = idx;
    st.set_service(idx, node, s);
    Ok(())
}

/// Inserts or updates a check; a critical status invalidates the sessions linked to it.
pub fn ensure_check(
    st: &mut Store,
    idx: u64,
    node: &str,
    c: &HealthCheck,
    now: Instant,
) -> Result<(), String> {
    let mut chk = c.clone();
    if chk.node.is_empty() {
        chk.node = node.to_string();
    }
    if chk.node != node {
        return Err(format!("Node '{}' does not match register request", chk.node));
    }
    if !st.nodes.contains_key(node) {
        return Err("Missing node registration".into());
    }
    if chk.check_id.is_empty() {
        chk.check_id = chk.name.clone();
    }
    if chk.check_id.is_empty() {
        return Err("Missing check ID".into());
    }
    if chk.status.is_empty() {
        chk.status = CRITICAL.to_string();
    }
    if !chk.service_id.is_empty() {
        let svc = st.services.get(node).and_then(|m| m.get(&chk.service_id));
        let Some(svc) = svc else {
            return Err(format!("Missing service registration for check {:?}", chk.check_id));
        };
        chk.service_name = svc.service.clone();
        chk.service_tags = svc.tags.clone();
    }
    let existing = st.checks.get(node).and_then(|m| m.get(&chk.check_id)).cloned();
    chk.create_index = existing.as_ref().map_or(idx, |e| e.create_index);
    chk.modify_index = existing.as_ref().map_or(idx, |e| e.modify_index);
    if existing.as_ref() == Some(&chk) {
        return Ok(());
    }
    chk.modify_index = idx;
    let critical = chk.status == CRITICAL;
    let id = chk.check_id.clone();
    st.set_check(idx, chk);
    if critical {
        invalidate_linked_sessions(st, idx, node, &id, now);
    }
    Ok(())
}

/// Removes a check, a service (with its checks) or a whole node.
pub fn deregister(st: &mut Store, idx: u64, req: &DeregisterRequest, now: Instant) -> Result<(), String> {
    if req.node.is_empty() {
        return Err("Must provide node".into());
    }
    if let Some(cid) = &req.check_id {
        remove_check(st, idx, &req.node, cid, now);
    }
    if let Some(sid) = &req.service_id {
        remove_service(st, idx, &req.node, sid, now);
    }
    if req.check_id.is_none() && req.service_id.is_none() {
        remove_node(st, idx, &req.node, now);
    }
    Ok(())
}

fn remove_check(st: &mut Store, idx: u64, node: &str, id: &str, now: Instant) {
    st.remove_check(idx, node, id);
    invalidate_linked_sessions(st, idx, node, id, now);
}

/// Removes a service and the checks bound to it.
pub fn remove_service(st: &mut Store, idx: u64, node: &str, id: &str, now: Instant) {
    let bound: Vec<String> = st
        .checks
        .get(node)
        .map(|m| m.values().filter(|c| c.service_id == id).map(|c| c.check_id.clone()).collect())
        .unwrap_or_default();
    for c in bound {
        remove_check(st, idx, node, &c, now);
    }
    st.remove_service(idx, node, id);
}

fn remove_node(st: &mut Store, idx: u64, node: &str, now: Instant) {
    let services: Vec<String> =
        st.services.get(node).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for s in services {
        remove_service(st, idx, node, &s, now);
    }
    let checks: Vec<String> = st.checks.get(node).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for c in checks {
        st.remove_check(idx, node, &c);
    }
    invalidate_node_sessions(st, idx, node, now);
    st.remove_coordinate(idx, node);
    st.remove_node(idx, node);
}

/// The catalog's table index.
pub fn catalog_index(st: &Store) -> u64 {
    st.max_index(&Table::CATALOG)
}

/// Service name → union of tags.
pub fn services(st: &Store) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for svc in st.services.values().flat_map(|m| m.values()) {
        out.entry(svc.service.clone()).or_default().extend(svc.tags.iter().cloned());
    }
    out
}

fn has_tags(svc: &Service, tags: &[String]) -> bool {
    tags.iter().all(|t| svc.tags.iter().any(|s| s.eq_ignore_ascii_case(t)))
}

/// Instances of `name` having every tag in `tags` (case-insensitive), ordered by node then ID.
pub fn service_nodes(st: &Store, name: &str, tags: &[String]) -> Vec<(Node, Service)> {
    let mut out = Vec::new();
    for (node, m) in &st.services {
        for svc in m.values().filter(|s| s.service == name && has_tags(s, tags)) {
            if let Some(n) = st.nodes.get(node) {
                out.push((n.clone(), svc.clone()));
            }
        }
    }
    out
}

/// Every check on `node`.
pub fn node_checks(st: &Store, node: &str) -> Vec<HealthCheck> {
    st.checks.get(node).map(|m| m.values().cloned().collect()).unwrap_or_default()
}

/// Every check of service `name`, ordered by node then check ID.
pub fn service_checks(st: &Store, name: &str) -> Vec<HealthCheck> {
    all_checks(st).filter(|c| c.service_name == name).cloned().collect()
}

/// Every check in `state` (`any` for all).
pub fn checks_in_state(st: &Store, state: &str) -> Vec<HealthCheck> {
    all_checks(st).filter(|c| state == "any" || c.status == state).cloned().collect()
}

fn all_checks(st: &Store) -> impl Iterator<Item = &HealthCheck> {
    st.checks.values().flat_map(|m| m.values())
}

/// Health view of a service: instances with the node's checks and the instance's checks.
pub fn check_service_nodes(
    st: &Store,
    name: &str,
    tags: &[String],
    passing_only: bool,
) -> Vec<(Node, Service, Vec<HealthCheck>)> {
    let mut out = Vec::new();
    for (node, svc) in service_nodes(st, name, tags) {
        let checks: Vec<HealthCheck> = node_checks(st, &node.node)
            .into_iter()
            .filter(|c| c.service_id.is_empty() || c.service_id == svc.id)
            .collect();
        if passing_only && checks.iter().any(|c| c.status != PASSING) {
            continue;
        }
        out.push((node, svc, checks));
    }
    out
}
