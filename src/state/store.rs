//! The in-memory tables, their per-table Raft indexes, and the undo log that makes a
//! transaction atomic.
//!
//! Every mutation goes through a helper here, which records the previous row when a
//! transaction is open, so that a failed `/v1/txn` rolls back exactly what it touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::types::{DirEntry, HealthCheck, Node, Service, Session};

/// The tables whose indexes blocking queries watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    /// KV entries.
    Kv,
    /// Deleted KV keys (so list indexes never go backwards).
    Tombstones,
    /// Catalog nodes.
    Nodes,
    /// Catalog services.
    Services,
    /// Health checks.
    Checks,
    /// Sessions.
    Sessions,
}

impl Table {
    /// All tables, in a fixed order.
    pub const ALL: [Table; 6] =
        [Table::Kv, Table::Tombstones, Table::Nodes, Table::Services, Table::Checks, Table::Sessions];
    /// The catalog tables.
    pub const CATALOG: [Table; 3] = [Table::Nodes, Table::Services, Table::Checks];
    /// KV and its graveyard.
    pub const KV: [Table; 2] = [Table::Kv, Table::Tombstones];

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Undo {
    Kv(String, Option<DirEntry>),
    Tomb(String, Option<u64>),
    Node(String, Option<Node>),
    Service(String, String, Option<Service>),
    Check(String, String, Option<HealthCheck>),
    Session(String, Option<Session>),
    Index(Table, u64),
}

/// The whole replicated state. Cloned for snapshots; serialized with msgpack.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Store {
    pub(crate) kv: BTreeMap<String, DirEntry>,
    pub(crate) tombstones: BTreeMap<String, u64>,
    pub(crate) nodes: BTreeMap<String, Node>,
    pub(crate) services: BTreeMap<String, BTreeMap<String, Service>>,
    pub(crate) checks: BTreeMap<String, BTreeMap<String, HealthCheck>>,
    pub(crate) sessions: BTreeMap<String, Session>,
    pub(crate) indexes: BTreeMap<Table, u64>,
    /// Lock-delay expirations per key: local wall-clock state, never replicated (as in Consul).
    #[serde(skip)]
    pub(crate) lock_delays: HashMap<String, Instant>,
    #[serde(skip)]
    undo: Option<Vec<Undo>>,
    #[serde(skip)]
    pub(crate) touched: BTreeSet<Table>,
}

impl Store {
    /// The Raft index of the last write to `table`.
    pub fn index(&self, table: Table) -> u64 {
        self.indexes.get(&table).copied().unwrap_or(0)
    }

    /// The highest index among `tables`.
    pub fn max_index(&self, tables: &[Table]) -> u64 {
        tables.iter().map(|t| self.index(*t)).max().unwrap_or(0)
    }

    pub(crate) fn bump(&mut self, table: Table, idx: u64) {
        let old = self.index(table);
        if let Some(u) = self.undo.as_mut() {
            u.push(Undo::Index(table, old));
        }
        self.indexes.insert(table, idx.max(old));
        self.touched.insert(table);
    }

    /// Opens a transaction: later mutations can be rolled back.
    pub(crate) fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// Keeps the mutations made since [`Store::begin`].
    pub(crate) fn commit(&mut self) {
        self.undo = None;
    }

    /// Undoes every mutation made since [`Store::begin`].
    pub(crate) fn rollback(&mut self) {
        let Some(log) = self.undo.take() else { return };
        for u in log.into_iter().rev() {
            match u {
                Undo::Kv(k, v) => restore(&mut self.kv, k, v),
                Undo::Tomb(k, v) => restore(&mut self.tombstones, k, v),
                Undo::Node(k, v) => restore(&mut self.nodes, k, v),
                Undo::Service(n, id, v) => restore(self.services.entry(n).or_default(), id, v),
                Undo::Check(n, id, v) => restore(self.checks.entry(n).or_default(), id, v),
                Undo::Session(k, v) => restore(&mut self.sessions, k, v),
                Undo::Index(t, v) => {
                    self.indexes.insert(t, v);
                }
            }
        }
        self.services.retain(|_, m| !m.is_empty());
        self.checks.retain(|_, m| !m.is_empty());
    }

    fn record(&mut self, u: impl FnOnce(&Self) -> Undo) {
        if self.undo.is_some() {
            let entry = u(self);
            if let Some(log) = self.undo.as_mut() {
                log.push(entry);
            }
        }
    }

    pub(crate) fn set_kv(&mut self, idx: u64, e: DirEntry) {
        self.record(|s| Undo::Kv(e.key.clone(), s.kv.get(&e.key).cloned()));
        self.kv.insert(e.key.clone(), e);
        self.bump(Table::Kv, idx);
    }

    /// Removes a key and leaves a tombstone at `idx`. Returns whether it existed.
    pub(crate) fn remove_kv(&mut self, idx: u64, key: &str) -> bool {
        if !self.kv.contains_key(key) {
            return false;
        }
        self.record(|s| Undo::Kv(key.to_string(), s.kv.get(key).cloned()));
        self.kv.remove(key);
        self.record(|s| Undo::Tomb(key.to_string(), s.tombstones.get(key).copied()));
        self.tombstones.insert(key.to_string(), idx);
        self.bump(Table::Kv, idx);
        self.bump(Table::Tombstones, idx);
        true
    }

    /// Drops tombstones at or below `idx` (tombstone GC). Does not bump indexes, like Consul.
    pub(crate) fn reap_tombstones(&mut self, idx: u64) -> usize {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, i| *i > idx);
        before - self.tombstones.len()
    }

    pub(crate) fn set_node(&mut self, idx: u64, n: Node) {
        self.record(|s| Undo::Node(n.node.clone(), s.nodes.get(&n.node).cloned()));
        self.nodes.insert(n.node.clone(), n);
        self.bump(Table::Nodes, idx);
    }

    pub(crate) fn remove_node(&mut self, idx: u64, name: &str) {
        self.record(|s| Undo::Node(name.to_string(), s.nodes.get(name).cloned()));
        if self.nodes.remove(name).is_some() {
            self.bump(Table::Nodes, idx);
        }
    }

    pub(crate) fn set_service(&mut self, idx: u64, node: &str, svc: Service) {
        self.record(|s| {
            let old = s.services.get(node).and_then(|m| m.get(&svc.id)).cloned();
            Undo::Service(node.to_string(), svc.id.clone(), old)
        });
        self.services.entry(node.to_string()).or_default().insert(svc.id.clone(), svc);
        self.bump(Table::Services, idx);
    }

    pub(crate) fn remove_service(&mut self, idx: u64, node: &str, id: &str) {
        let Some(old) = self.services.get(node).and_then(|m| m.get(id)).cloned() else {
            return;
        };
        self.record(|_| Undo::Service(node.to_string(), id.to_string(), Some(old)));
        if let Some(m) = self.services.get_mut(node) {
            m.remove(id);
            if m.is_empty() {
                self.services.remove(node);
            }
        }
        self.bump(Table::Services, idx);
    }

    pub(crate) fn set_check(&mut self, idx: u64, c: HealthCheck) {
        self.record(|s| {
            let old = s.checks.get(&c.node).and_then(|m| m.get(&c.check_id)).cloned();
            Undo::Check(c.node.clone(), c.check_id.clone(), old)
        });
        self.checks.entry(c.node.clone()).or_default().insert(c.check_id.clone(), c);
        self.bump(Table::Checks, idx);
    }

    pub(crate) fn remove_check(&mut self, idx: u64, node: &str, id: &str) {
        let Some(old) = self.checks.get(node).and_then(|m| m.get(id)).cloned() else {
            return;
        };
        self.record(|_| Undo::Check(node.to_string(), id.to_string(), Some(old)));
        if let Some(m) = self.checks.get_mut(node) {
            m.remove(id);
            if m.is_empty() {
                self.checks.remove(node);
            }
        }
        self.bump(Table::Checks, idx);
    }

    pub(crate) fn set_session(&mut self, idx: u64, s: Session) {
        self.record(|st| Undo::Session(s.id.clone(), st.sessions.get(&s.id).cloned()));
        self.sessions.insert(s.id.clone(), s);
        self.bump(Table::Sessions, idx);
    }

    pub(crate) fn remove_session_row(&mut self, idx: u64, id: &str) -> Option<Session> {
        let old = self.sessions.get(id).cloned()?;
        self.record(|_| Undo::Session(id.to_string(), Some(old.clone())));
        self.sessions.remove(id);
        self.bump(Table::Sessions, idx);
        Some(old)
    }
}

fn restore<V>(map: &mut BTreeMap<String, V>, k: String, v: Option<V>) {
    match v {
        Some(v) => {
            map.insert(k, v);
        }
        None => {
            map.remove(&k);
        }
    }
}
