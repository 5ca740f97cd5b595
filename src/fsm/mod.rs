//! The finite state machine: one typed [`Command`] per kind of write, applied to the
//! [`Store`] by a small function each. User mistakes (a failed CAS, an unknown session) come
//! back inside the [`Response`]; they are never Raft errors. `apply` is deterministic: the
//! only wall-clock input is `now`, used for lock-delay, which is local state as in Consul.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::state::Store;
use crate::state::acl::{AclOp, AclResult, acl_apply};
use crate::state::auto_encrypt::{AutoEncryptCa, auto_encrypt_ca_set};
use crate::state::autopilot::{AutopilotConfig, autopilot_set};
use crate::state::catalog::{DeregisterRequest, RegisterRequest, deregister, register};
use crate::state::coordinate::{CoordinateEntry, coordinate_batch_update};
use crate::state::kv::{KvOp, kv_apply};
use crate::state::query::{QueryOp, query_apply};
use crate::state::session::{session_create, session_destroy};
use crate::state::txn::{TxnOp, TxnOutcome, txn_apply};
use crate::state::types::Session;

/// A replicated write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A single-key KV write (`PUT`/`DELETE /v1/kv`).
    Kv(KvOp),
    /// An atomic transaction.
    Txn(Vec<TxnOp>),
    /// Catalog registration.
    Register(Box<RegisterRequest>),
    /// Catalog deregistration.
    Deregister(DeregisterRequest),
    /// A new session (its ID is chosen before the entry is proposed).
    SessionCreate(Session),
    /// Session invalidation (destroy, TTL expiry).
    SessionDestroy(String),
    /// Tombstone GC: drop tombstones at or below the index.
    TombstoneReap(u64),
    /// Several client writes committed as one Raft entry (group commit).
    Batch(Vec<Command>),
    /// Replaces the whole state with a snapshot's (`PUT /v1/snapshot`). Every server applies
    /// it, so a restore reaches the whole cluster. Indexes stay monotonic: every table's index
    /// becomes the entry's, changed or vanished keys get tombstones at it, and no restored
    /// row keeps an index above it (`Store::restore`).
    Restore(Box<Store>),
    /// Sets the autopilot configuration; with `cas`, only over that ModifyIndex.
    AutopilotSet { config: AutopilotConfig, cas: Option<u64> },
    /// Network coordinates reported by agents; updates for unknown nodes are dropped.
    CoordinateBatchUpdate(Vec<CoordinateEntry>),
    /// The auto_encrypt CA, stored only if none is.
    AutoEncryptCaSet(AutoEncryptCa),
    /// An ACL write (tokens, policies, roles, bootstrap).
    Acl(AclOp),
    /// A prepared-query create, update or delete.
    PreparedQuery(QueryOp),
    /// Records a datacenter's gateways (gateway federation, in the primary).
    FederationStateSet(crate::state::FederationState),
}

/// The result of applying a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Nothing to report (blank and membership entries, reaps).
    None,
    /// `true`/`false` for KV writes and session destroy.
    Bool(bool),
    /// A user error (invalid session, missing node, ...), reported as HTTP 500 like Consul.
    Error(String),
    /// A transaction's results or errors.
    Txn(TxnOutcome),
    /// One response per command of a [`Command::Batch`].
    Batch(Vec<Response>),
    /// An ACL write's commit index, or its error.
    Acl(AclResult),
}

/// Applies `cmd` at Raft index `idx`.
pub fn apply(st: &mut Store, idx: u64, cmd: &Command, now: Instant) -> Response {
    match cmd {
        Command::Kv(op) => match kv_apply(st, idx, op) {
            Ok(out) => Response::Bool(out.ok),
            Err(e) => Response::Error(e),
        },
        Command::Txn(ops) => Response::Txn(txn_apply(st, idx, ops, now)),
        Command::Register(req) => atomic(st, |st| register(st, idx, req, now)),
        Command::Deregister(req) => atomic(st, |st| deregister(st, idx, req, now)),
        Command::SessionCreate(s) => atomic(st, |st| session_create(st, idx, s)),
        Command::SessionDestroy(id) => Response::Bool(session_destroy(st, idx, id, now)),
        Command::TombstoneReap(upto) => {
            st.reap_tombstones(*upto);
            Response::None
        }
        Command::Batch(cmds) => Response::Batch(cmds.iter().map(|c| apply(st, idx, c, now)).collect()),
        Command::Restore(from) => {
            st.restore(idx, from);
            Response::Bool(true)
        }
        Command::AutopilotSet { config, cas } => Response::Bool(autopilot_set(st, idx, config, *cas)),
        Command::AutoEncryptCaSet(ca) => Response::Bool(auto_encrypt_ca_set(st, ca)),
        Command::Acl(op) => Response::Acl(acl_apply(st, idx, op)),
        Command::PreparedQuery(op) => atomic(st, |st| query_apply(st, idx, op)),
        Command::FederationStateSet(fs) => {
            let changed = st.federation_states.get(&fs.datacenter) != Some(fs);
            st.federation_states.insert(fs.datacenter.clone(), fs.clone());
            Response::Bool(changed)
        }
        Command::CoordinateBatchUpdate(updates) => {
            coordinate_batch_update(st, idx, updates);
            Response::None
        }
    }
}

fn atomic(st: &mut Store, f: impl FnOnce(&mut Store) -> Result<(), String>) -> Response {
    st.begin();
    match f(st) {
        Ok(()) => {
            st.commit();
            Response::Bool(true)
        }
        Err(e) => {
            st.rollback();
            Response::Error(e)
        }
    }
}
