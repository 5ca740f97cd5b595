//! `/v1/txn`: up to 128 KV and catalog operations applied atomically (all or nothing).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::catalog::{ensure_check, remove_service};
use super::kv::{KvOp, KvVerb, kv_apply, kv_read};
use super::store::Store;
use super::types::{DirEntry, HealthCheck, Node, Service};

/// Verbs of the catalog operations in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    Set,
    Cas,
    Get,
    Delete,
    DeleteCas,
}

impl CatalogVerb {
    /// Parses Consul's spelling.
    pub fn parse(s: &str) -> Option<CatalogVerb> {
        Some(match s {
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "get" => CatalogVerb::Get,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            _ => return None,
        })
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum TxnOp {
    Kv(KvOp),
    Node { verb: CatalogVerb, node: Node },
    Service { verb: CatalogVerb, node: String, service: Service },
    Check { verb: CatalogVerb, check: HealthCheck },
}

impl TxnOp {
    /// Whether the operation changes state.
    pub fn is_write(&self) -> bool {
        match self {
            TxnOp::Kv(op) => op.verb.is_write(),
            TxnOp::Node { verb, .. } | TxnOp::Service { verb, .. } | TxnOp::Check { verb, .. } => {
                *verb != CatalogVerb::Get
            }
        }
    }
}

/// One result of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum TxnResult {
    Kv(DirEntry),
    Node(Node),
    Service(Service),
    Check(HealthCheck),
}

/// Why a transaction rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// The outcome of a transaction.
pub type TxnOutcome = Result<Vec<TxnResult>, Vec<TxnError>>;

/// Applies `ops` atomically at Raft index `idx`.
pub fn txn_apply(st: &mut Store, idx: u64, ops: &[TxnOp], now: Instant) -> TxnOutcome {
    st.begin();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        // Like Consul, keep going after a failure so that every failed operation is reported.
        match apply_one(st, idx, op, now) {
            Ok(r) => results.extend(r),
            Err(what) => errors.push(TxnError { op_index: i, what }),
        }
    }
    if errors.is_empty() {
        st.commit();
        Ok(results)
    } else {
        st.rollback();
        Err(errors)
    }
}

/// Runs a read-only transaction.
pub fn txn_read(st: &Store, ops: &[TxnOp]) -> TxnOutcome {
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            TxnOp::Kv(kv) => {
                let out = kv_read(st, kv);
                kv_result(kv, out.ok, out.entries)
            }
            other => read_catalog(st, other),
        };
        match r {
            Ok(r) => results.extend(r),
            Err(what) => errors.push(TxnError { op_index: i, what }),
        }
    }
    if errors.is_empty() { Ok(results) } else { Err(errors) }
}

fn apply_one(st: &mut Store, idx: u64, op: &TxnOp, now: Instant) -> Result<Vec<TxnResult>, String> {
    match op {
        TxnOp::Kv(kv) => {
            let out = kv_apply(st, idx, kv)?;
            kv_result(kv, out.ok, out.entries)
        }
        TxnOp::Node { verb, node } => node_op(st, idx, *verb, node, now),
        TxnOp::Service { verb, node, service } => service_op(st, idx, *verb, node, service, now),
        TxnOp::Check { verb, check } => check_op(st, idx, *verb, check, now),
    }
}

fn kv_result(op: &KvOp, ok: bool, entries: Vec<DirEntry>) -> Result<Vec<TxnResult>, String> {
    let key = &op.key;
    if !ok {
        return Err(match op.verb {
            KvVerb::Cas => format!("failed to set key {key:?}, index is stale"),
            KvVerb::Lock => format!("failed to lock key {key:?}, lock is already held"),
            KvVerb::Unlock => {
                format!("failed to unlock key {key:?}, lock isn't held, or is held by another session")
            }
            KvVerb::Get => format!("key {key:?} doesn't exist"),
            KvVerb::CheckIndex => format!("failed index check for key {key:?}, modify index != {}", op.index),
            KvVerb::CheckSession => format!("failed session check for key {key:?}"),
            KvVerb::CheckNotExists => format!("key {key:?} exists"),
            KvVerb::DeleteCas => format!("failed to delete key {key:?}, index is stale"),
            _ => format!("operation on key {key:?} failed"),
        });
    }
    let keep_value = matches!(op.verb, KvVerb::Get | KvVerb::GetOrEmpty | KvVerb::GetTree);
    Ok(entries
        .into_iter()
        .map(|mut e| {
            if !keep_value {
                e.value = None;
            }
            TxnResult::Kv(e)
        })
        .collect())
}

fn read_catalog(st: &Store, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
    match op {
        TxnOp::Node { node, .. } => st
            .nodes
            .get(&node.node)
            .map(|n| vec![TxnResult::Node(n.clone())])
            .ok_or_else(|| format!("node {:?} doesn't exist", node.node)),
        TxnOp::Service { node, service, .. } => st
            .services
            .get(node)
            .and_then(|m| m.get(&service.id))
            .map(|s| vec![TxnResult::Service(s.clone())])
            .ok_or_else(|| format!("service {:?} on node {node:?} doesn't exist", service.id)),
        TxnOp::Check { check, .. } => st
            .checks
            .get(&check.node)
            .and_then(|m| m.get(&check.check_id))
            .map(|c| vec![TxnResult::Check(c.clone())])
            .ok_or_else(|| format!("check {:?} on node {:?} doesn't exist", check.check_id, check.node)),
        TxnOp::Kv(_) => Ok(Vec::new()),
    }
}

fn cas_ok(current: Option<u64>, want: u64) -> bool {
    match current {
        None => want == 0,
        Some(i) => i == want,
    }
}

fn node_op(
    st: &mut Store,
    idx: u64,
    verb: CatalogVerb,
    n: &Node,
    now: Instant,
) -> Result<Vec<TxnResult>, String> {
    let cur = st.nodes.get(&n.node).map(|x| x.modify_index);
    match verb {
        CatalogVerb::Get => read_catalog(st, &TxnOp::Node { verb, node: n.clone() }),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if verb == CatalogVerb::Cas && !cas_ok(cur, n.modify_index) {
                return Err(format!("failed to set node {:?}, index is stale", n.node));
            }
            let req = super::catalog::RegisterRequest { node: n.clone(), ..Default::default() };
            super::catalog::register(st, idx, &req, now)?;
            read_catalog(st, &TxnOp::Node { verb, node: n.clone() })
        }
        CatalogVerb::Delete | CatalogVerb::DeleteCas => {
            if verb == CatalogVerb::DeleteCas && cur.is_some_and(|c| c != n.modify_index) {
                return Err(format!("failed to delete node {:?}, index is stale", n.node));
            }
            let req = super::catalog::DeregisterRequest { node: n.node.clone(), ..Default::default() };
            super::catalog::deregister(st, idx, &req, now)?;
            Ok(Vec::new())
        }
    }
}

fn service_op(
    st: &mut Store,
    idx: u64,
    verb: CatalogVerb,
    node: &str,
    s: &Service,
    now: Instant,
) -> Result<Vec<TxnResult>, String> {
    let mut s = s.clone();
    if s.id.is_empty() {
        s.id = s.service.clone();
    }
    let cur = st.services.get(node).and_then(|m| m.get(&s.id)).map(|x| x.modify_index);
    let this = TxnOp::Service { verb, node: node.to_string(), service: s.clone() };
    match verb {
        CatalogVerb::Get => read_catalog(st, &this),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if verb == CatalogVerb::Cas && !cas_ok(cur, s.modify_index) {
                return Err(format!("failed to set service {:?} on node {node:?}, index is stale", s.id));
            }
            let Some(n) = st.nodes.get(node).cloned() else {
                return Err(format!("node {node:?} doesn't exist"));
            };
            let req = super::catalog::RegisterRequest {
                node: n,
                service: Some(s.clone()),
                skip_node_update: true,
                ..Default::default()
            };
            super::catalog::register(st, idx, &req, now)?;
            read_catalog(st, &this)
        }
        CatalogVerb::Delete | CatalogVerb::DeleteCas => {
            if verb == CatalogVerb::DeleteCas && cur.is_some_and(|c| c != s.modify_index) {
                return Err(format!("failed to delete service {:?}, index is stale", s.id));
            }
            remove_service(st, idx, node, &s.id, now);
            Ok(Vec::new())
        }
    }
}

fn check_op(
    st: &mut Store,
    idx: u64,
    verb: CatalogVerb,
    c: &HealthCheck,
    now: Instant,
) -> Result<Vec<TxnResult>, String> {
    let cur = st.checks.get(&c.node).and_then(|m| m.get(&c.check_id)).map(|x| x.modify_index);
    let this = TxnOp::Check { verb, check: c.clone() };
    match verb {
        CatalogVerb::Get => read_catalog(st, &this),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if verb == CatalogVerb::Cas && !cas_ok(cur, c.modify_index) {
                return Err(format!("failed to set check {:?}, index is stale", c.check_id));
            }
            ensure_check(st, idx, &c.node.clone(), c, now)?;
            read_catalog(st, &this)
        }
        CatalogVerb::Delete | CatalogVerb::DeleteCas => {
            if verb == CatalogVerb::DeleteCas && cur.is_some_and(|x| x != c.modify_index) {
                return Err(format!("failed to delete check {:?}, index is stale", c.check_id));
            }
            let req = super::catalog::DeregisterRequest {
                node: c.node.clone(),
                check_id: Some(c.check_id.clone()),
                service_id: None,
            };
            super::catalog::deregister(st, idx, &req, now)?;
            Ok(Vec::new())
        }
    }
}
