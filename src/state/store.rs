//! The in-memory tables, their per-table Raft indexes, and the undo log that makes a
//! transaction atomic.
//!
//! Every mutation goes through a helper here, which records the previous row when a
//! transaction is open, so that a failed `/v1/txn` rolls back exactly what it touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::query::PreparedQuery;
use super::types::{DirEntry, HealthCheck, Node, Service, Session};
use sekisho_wan::coordinate::Coordinate;

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
    /// Network coordinates of nodes.
    Coordinates,
    /// ACL tokens.
    AclTokens,
    /// ACL policies.
    AclPolicies,
    /// ACL roles.
    AclRoles,
    /// ACL auth methods.
    AclAuthMethods,
    /// ACL binding rules.
    AclBindingRules,
    /// Prepared queries.
    PreparedQueries,
}

impl Table {
    /// All tables, in a fixed order.
    pub const ALL: [Table; 13] = [
        Table::Kv,
        Table::Tombstones,
        Table::Nodes,
        Table::Services,
        Table::Checks,
        Table::Sessions,
        Table::Coordinates,
        Table::AclTokens,
        Table::AclPolicies,
        Table::AclRoles,
        Table::AclAuthMethods,
        Table::AclBindingRules,
        Table::PreparedQueries,
    ];
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
    Coordinate(String, Option<Coordinate>),
    Query(String, Option<PreparedQuery>),
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
    /// Network coordinates by node name (LAN; Consul's `coordinates` table, default segment).
    #[serde(default)]
    pub(crate) coordinates: BTreeMap<String, Coordinate>,
    /// The CA that signs client agents' certificates (auto_encrypt), once a leader with
    /// `auto_encrypt.allow_tls` created it. Its key is a secret, like everything in snapshots.
    #[serde(default)]
    pub(crate) auto_encrypt_ca: Option<super::auto_encrypt::AutoEncryptCa>,
    /// The autopilot configuration, once an operator set one.
    #[serde(default)]
    pub(crate) autopilot: Option<super::autopilot::AutopilotConfig>,
    /// ACL tokens, policies and roles (secrets included, like everything in snapshots).
    #[serde(default)]
    pub(crate) acl: super::acl::AclTables,
    /// Prepared queries by ID.
    #[serde(default)]
    pub(crate) queries: BTreeMap<String, PreparedQuery>,
    /// Gateway federation: each datacenter's gateways, as its servers reported them to the
    /// primary (Consul's federation states).
    #[serde(default)]
    pub(crate) federation_states: BTreeMap<String, FederationState>,
    /// Lock-delay expirations per key: local wall-clock state, never replicated (as in Consul).
    #[serde(skip)]
    pub(crate) lock_delays: HashMap<String, Instant>,
    #[serde(skip)]
    undo: Option<Vec<Undo>>,
    #[serde(skip)]
    pub(crate) touched: BTreeSet<Table>,
}

/// One datacenter's entry in the gateway federation table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationState {
    /// The datacenter.
    pub datacenter: String,
    /// Its gateways' WAN addresses.
    pub gateways: Vec<String>,
}

/// Two stores are equal when their replicated contents are; local state (lock-delays, an
/// open transaction) is not compared.
impl PartialEq for Store {
    fn eq(&self, o: &Store) -> bool {
        self.kv == o.kv
            && self.tombstones == o.tombstones
            && self.nodes == o.nodes
            && self.services == o.services
            && self.checks == o.checks
            && self.sessions == o.sessions
            && self.indexes == o.indexes
            && self.coordinates == o.coordinates
            && self.autopilot == o.autopilot
            && self.auto_encrypt_ca == o.auto_encrypt_ca
            && self.acl == o.acl
            && self.queries == o.queries
            && self.federation_states == o.federation_states
    }
}

impl Eq for Store {}

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
                Undo::Coordinate(k, v) => restore(&mut self.coordinates, k, v),
                Undo::Query(k, v) => restore(&mut self.queries, k, v),
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

    /// Replaces the whole state with `from` (a snapshot restore committed at `idx`).
    ///
    /// Indexes stay monotonic so that blocking queries wake and see a newer index: every
    /// table's index is raised to `idx`, and every KV key whose entry changed or vanished
    /// gets a tombstone at `idx`, so prefix lists report `idx` too. Rows keep the indexes
    /// they had in the snapshot, except that none may exceed `idx` (see
    /// [`Store::clamp_indexes`]). Local lock-delays survive.
    pub(crate) fn restore(&mut self, idx: u64, from: &Store) {
        let changed: Vec<String> =
            self.kv.iter().filter(|(k, e)| from.kv.get(*k) != Some(*e)).map(|(k, _)| k.clone()).collect();
        let mut next = Store {
            kv: from.kv.clone(),
            tombstones: from.tombstones.clone(),
            nodes: from.nodes.clone(),
            services: from.services.clone(),
            checks: from.checks.clone(),
            sessions: from.sessions.clone(),
            indexes: from.indexes.clone(),
            coordinates: from.coordinates.clone(),
            autopilot: from.autopilot.clone(),
            auto_encrypt_ca: from.auto_encrypt_ca.clone(),
            acl: from.acl.clone(),
            queries: from.queries.clone(),
            federation_states: from.federation_states.clone(),
            lock_delays: std::mem::take(&mut self.lock_delays),
            undo: None,
            touched: BTreeSet::new(),
        };
        for key in changed {
            next.tombstones.insert(key, idx);
        }
        next.clamp_indexes(idx);
        *self = next;
        for t in Table::ALL {
            self.bump(t, idx);
        }
    }

    /// Lowers every Raft index recorded in the rows to at most `max`. A snapshot taken on
    /// a cluster whose log had gone further than this one's carries indexes from the future;
    /// left as they are, later writes (at lower indexes) would not move list indexes and
    /// blocking queries would miss them. A no-op for snapshots of this cluster's past.
    fn clamp_indexes(&mut self, max: u64) {
        let c = |i: &mut u64| *i = (*i).min(max);
        for e in self.kv.values_mut() {
            c(&mut e.create_index);
            c(&mut e.modify_index);
        }
        self.tombstones.values_mut().for_each(c);
        for n in self.nodes.values_mut() {
            c(&mut n.create_index);
            c(&mut n.modify_index);
        }
        for s in self.services.values_mut().flat_map(|m| m.values_mut()) {
            c(&mut s.create_index);
            c(&mut s.modify_index);
        }
        for h in self.checks.values_mut().flat_map(|m| m.values_mut()) {
            c(&mut h.create_index);
            c(&mut h.modify_index);
        }
        for s in self.sessions.values_mut() {
            c(&mut s.create_index);
            c(&mut s.modify_index);
        }
        if let Some(a) = self.autopilot.as_mut() {
            c(&mut a.create_index);
            c(&mut a.modify_index);
        }
        for t in self.acl.tokens.values_mut() {
            c(&mut t.create_index);
            c(&mut t.modify_index);
        }
        for p in self.acl.policies.values_mut() {
            c(&mut p.create_index);
            c(&mut p.modify_index);
        }
        for r in self.acl.roles.values_mut() {
            c(&mut r.create_index);
            c(&mut r.modify_index);
        }
        for m in self.acl.auth_methods.values_mut() {
            c(&mut m.create_index);
            c(&mut m.modify_index);
        }
        for r in self.acl.binding_rules.values_mut() {
            c(&mut r.create_index);
            c(&mut r.modify_index);
        }
        for q in self.queries.values_mut() {
            c(&mut q.create_index);
            c(&mut q.modify_index);
        }
        c(&mut self.acl.bootstrap_index);
        self.indexes.values_mut().for_each(c);
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

    pub(crate) fn set_coordinate(&mut self, idx: u64, node: &str, c: Coordinate) {
        self.record(|s| Undo::Coordinate(node.to_string(), s.coordinates.get(node).cloned()));
        self.coordinates.insert(node.to_string(), c);
        self.bump(Table::Coordinates, idx);
    }

    pub(crate) fn remove_coordinate(&mut self, idx: u64, node: &str) {
        let Some(old) = self.coordinates.get(node).cloned() else { return };
        self.record(|_| Undo::Coordinate(node.to_string(), Some(old)));
        self.coordinates.remove(node);
        self.bump(Table::Coordinates, idx);
    }

    pub(crate) fn set_query(&mut self, idx: u64, q: PreparedQuery) {
        self.record(|s| Undo::Query(q.id.clone(), s.queries.get(&q.id).cloned()));
        self.queries.insert(q.id.clone(), q);
        self.bump(Table::PreparedQueries, idx);
    }

    /// Removes a prepared query; returns it when it existed.
    pub(crate) fn remove_query(&mut self, idx: u64, id: &str) -> Option<PreparedQuery> {
        let old = self.queries.get(id).cloned()?;
        self.record(|_| Undo::Query(id.to_string(), Some(old.clone())));
        self.queries.remove(id);
        self.bump(Table::PreparedQueries, idx);
        Some(old)
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
