//! The state store: Consul's tables (KV, catalog, sessions) in memory, with a Raft index per
//! table and a watch channel per table that wakes blocking queries.
//!
//! ```text
//!  fsm::apply ──write lock──► Store (tables + indexes) ──touched tables──► watch::Sender per table
//!  http read  ──read lock───► query fn ─► (value, index, watch key)        │
//!                 blocking query waits on the receivers of its tables ◄───┘
//! ```
//!
//! Readers hold the lock only for the duration of one query function, never across an
//! `.await`, so the apply loop is never blocked by a slow client.

pub mod acl;
pub mod auto_encrypt;
pub mod autopilot;
pub mod catalog;
pub mod coordinate;
pub mod kv;
pub mod query;
pub mod session;
mod store;
pub mod txn;
pub mod types;

use parking_lot::RwLock;
use tokio::sync::watch;

pub use store::{FederationState, Store, Table};

/// The shared, watched state store.
#[derive(Debug)]
pub struct StateStore {
    store: RwLock<Store>,
    watches: Vec<watch::Sender<u64>>,
    /// The Raft index of the last entry applied to `store`, set before the entry's answer
    /// leaves (openraft's metrics report it a moment later).
    applied: std::sync::atomic::AtomicU64,
}

impl Default for StateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StateStore {
    /// An empty store.
    pub fn new() -> StateStore {
        let watches = Table::ALL.iter().map(|_| watch::channel(0).0).collect();
        StateStore { store: RwLock::new(Store::default()), watches, applied: Default::default() }
    }

    /// The Raft index of the last entry applied here (0: none). On the leader, every write
    /// it has acknowledged is at or below it: the read index of a default read.
    pub fn applied_index(&self) -> u64 {
        self.applied.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records that the entry at `index` (or a snapshot ending there) is applied.
    pub fn set_applied(&self, index: u64) {
        self.applied.store(index, std::sync::atomic::Ordering::Release);
    }

    /// Runs a read-only query.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.read())
    }

    /// Runs a mutation and then wakes the watchers of every table it touched.
    pub fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let (out, touched) = {
            let mut st = self.store.write();
            let out = f(&mut st);
            let touched: Vec<(Table, u64)> =
                std::mem::take(&mut st.touched).into_iter().map(|t| (t, st.index(t))).collect();
            (out, touched)
        };
        for (t, idx) in touched {
            self.watches[t.slot()].send_replace(idx);
        }
        out
    }

    /// Replaces the whole store (snapshot install) and wakes everyone.
    pub fn replace(&self, new: Store) {
        *self.store.write() = new;
        for w in &self.watches {
            w.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// A copy of the whole store (snapshot building).
    pub fn clone_store(&self) -> Store {
        self.store.read().clone()
    }

    /// Receivers for the given tables; each sees changes made after this call.
    pub fn subscribe(&self, tables: &[Table]) -> Vec<watch::Receiver<u64>> {
        tables.iter().map(|t| self.watches[t.slot()].subscribe()).collect()
    }
}

#[cfg(test)]
mod tests;
