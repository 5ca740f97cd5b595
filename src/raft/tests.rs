//! The log store and state machine against openraft's storage conformance suite.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

use super::{LogStore, MemBackend, RedbBackend, StateMachine, TypeConfig};
use crate::state::StateStore;

struct MemBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<u64>> {
        let sm = StateMachine::open(Arc::new(StateStore::new()), None).expect("state machine");
        Ok(((), LogStore::new(Arc::new(MemBackend::default())), sm))
    }
}

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = RedbBackend::open(&dir.path().join("raft.redb")).expect("redb");
        let sm = StateMachine::open(Arc::new(StateStore::new()), Some(dir.path().join("snapshots")))
            .expect("state machine");
        Ok((dir, LogStore::new(Arc::new(backend)), sm))
    }
}

#[test]
fn memory_log_store_passes_openraft_suite() {
    Suite::test_all(MemBuilder).expect("suite");
}

#[test]
fn redb_log_store_passes_openraft_suite() {
    Suite::test_all(RedbBuilder).expect("suite");
}
