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

mod integrity {
    //! Checksums on log entries, start-up checks, and a failing fsync.

    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    use crate::fsm::Command;
    use crate::raft::{
        LogBackend, MemBackend, RaftOptions, RedbBackend, ServerNode, StartError, TypeConfig, Verified,
        decode_entry, encode_entry, start, start_on, verify,
    };
    use crate::state::StateStore;
    use crate::state::kv::{KvOp, KvVerb};

    fn blank(i: u64) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), i), payload: EntryPayload::Blank }
    }

    fn log_of(n: u64) -> (tempfile::TempDir, RedbBackend) {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = RedbBackend::open(&dir.path().join("raft.redb")).expect("redb");
        b.append((1..=n).map(|i| (i, encode_entry(&blank(i)).expect("encode"))).collect()).expect("append");
        (dir, b)
    }

    /// Flips one byte of entry `i`'s body, as a bad sector would.
    fn damage(b: &RedbBackend, i: u64) {
        let (_, mut raw) = b.range_indexed(i, i + 1).expect("read").pop().expect("entry");
        let last = raw.len() - 1;
        raw[last] ^= 0x40;
        b.append(vec![(i, raw)]).expect("rewrite");
    }

    #[test]
    fn entries_carry_a_checksum_and_old_unchecksummed_entries_still_read() {
        let raw = encode_entry(&blank(7)).expect("encode");
        assert_eq!(raw[0], 0xC1);
        assert_eq!(decode_entry(7, &raw).expect("decode").log_id.index, 7);
        let legacy = rmp_serde::to_vec_named(&blank(8)).expect("msgpack");
        assert_eq!(decode_entry(8, &legacy).expect("legacy decode").log_id.index, 8);
        let e = decode_entry(7, &raw[..3]).unwrap_err();
        assert!(e.to_string().contains("entry 7 is truncated"), "{e}");
    }

    #[test]
    fn a_damaged_tail_is_truncated_at_start_and_the_rest_is_kept() {
        let (_dir, b) = log_of(10);
        assert_eq!(verify(&b).expect("verify"), Verified::Intact { entries: 10 });
        damage(&b, 9);
        damage(&b, 10);
        assert_eq!(verify(&b).expect("verify"), Verified::TruncatedTail { from: 9, to: 10 });
        let left = b.range_indexed(0, u64::MAX).expect("read");
        assert_eq!(left.len(), 8);
        assert!(left.iter().all(|(i, raw)| decode_entry(*i, raw).is_ok()));
        assert_eq!(verify(&b).expect("verify again"), Verified::Intact { entries: 8 });
    }

    #[test]
    fn damage_followed_by_intact_entries_refuses_the_start() {
        let (_dir, b) = log_of(10);
        damage(&b, 3);
        let e = verify(&b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("entry 3 fails its checksum but later entries are intact"), "{e}");
        // Nothing was changed.
        assert_eq!(b.range_indexed(0, u64::MAX).expect("read").len(), 10);
    }

    #[tokio::test]
    async fn one_append_entries_carries_a_bounded_number_of_bytes() {
        use openraft::storage::RaftLogReader as _;
        let value_entry = |i: u64, bytes: usize| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(Command::Kv(KvOp {
                value: Some(vec![b'v'; bytes]),
                ..KvOp::new(KvVerb::Set, format!("k{i}"))
            })),
        };
        let backend = MemBackend::default();
        // Entries 1-10: 100 KiB each; 11: 1 MiB; 12-20: empty.
        let mut entries: Vec<_> = (1..=10).map(|i| value_entry(i, 100 * 1024)).collect();
        entries.push(value_entry(11, 1024 * 1024));
        entries.extend((12..=20).map(blank));
        backend
            .append(entries.iter().map(|e| (e.log_id.index, encode_entry(e).expect("encode"))).collect())
            .expect("append");
        let mut store = super::LogStore::new(Arc::new(backend));
        let got = store.limited_get_log_entries(1, 11).await.expect("read");
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![1, 2],
            "256 KiB hold two entries of 100 KiB"
        );
        let got = store.limited_get_log_entries(11, 21).await.expect("read");
        assert_eq!(got.len(), 1, "an entry larger than the budget still goes, alone");
        let got = store.limited_get_log_entries(12, 21).await.expect("read");
        assert_eq!(got.len(), 9, "small entries all go");
        // Reads for other purposes are not limited.
        assert_eq!(store.try_get_log_entries(1..11).await.expect("read").len(), 10);
    }

    fn options(dir: Option<std::path::PathBuf>) -> RaftOptions {
        RaftOptions {
            node_id: 1,
            node: ServerNode { name: "n1".into(), rpc_addr: "127.0.0.1:1".into() },
            data_dir: dir,
            raft_multiplier: 1,
            snapshot_threshold: 1000,
            trailing_logs: 100,
            bootstrap: true,
        }
    }

    fn client() -> crate::rpc::RpcClient {
        crate::rpc::RpcClient::new("127.0.0.1".parse().expect("ip"), crate::net::fault::Faults::none())
    }

    #[tokio::test]
    async fn a_log_compacted_past_the_newest_intact_snapshot_refuses_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("raft").join("raft.redb");
        {
            let b = RedbBackend::open(&db).expect("redb");
            let purged = rmp_serde::to_vec_named(&Some(blank(5).log_id)).expect("meta");
            b.append((6..=8).map(|i| (i, encode_entry(&blank(i)).expect("encode"))).collect())
                .expect("append");
            b.purge(5, "last_purged", purged).expect("purge");
        }
        // No snapshot covers entries 1..=5 (as when the only one is damaged or deleted).
        let Err(e) =
            start(&options(Some(dir.path().to_path_buf())), Arc::new(StateStore::new()), client()).await
        else {
            panic!("raft started on a log with a gap before it");
        };
        assert!(matches!(e, StartError::Log(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("compacted up to entry 5") && msg.contains("entries 1..=5 exist nowhere"),
            "{msg}"
        );
    }

    /// A backend whose commits fail once `fail` is set (a disk that stops accepting fsyncs).
    #[derive(Debug, Default)]
    struct FailingDisk {
        inner: MemBackend,
        fail: AtomicBool,
    }

    impl FailingDisk {
        fn check(&self) -> io::Result<()> {
            if self.fail.load(Ordering::SeqCst) { Err(io::Error::other("fsync failed: EIO")) } else { Ok(()) }
        }
    }

    impl LogBackend for FailingDisk {
        fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
            self.check()?;
            self.inner.append(entries)
        }
        fn range_indexed(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
            self.inner.range_indexed(start, end)
        }
        fn last_indexed(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
            self.inner.last_indexed()
        }
        fn truncate(&self, from: u64) -> io::Result<()> {
            self.check()?;
            self.inner.truncate(from)
        }
        fn purge(&self, upto: u64, key: &str, meta: Vec<u8>) -> io::Result<()> {
            self.check()?;
            self.inner.purge(upto, key, meta)
        }
        fn get_meta(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
            self.inner.get_meta(key)
        }
        fn set_meta(&self, key: &str, value: Vec<u8>, durable: bool) -> io::Result<()> {
            self.check()?;
            self.inner.set_meta(key, value, durable)
        }
    }

    fn put(key: &str) -> Command {
        Command::Kv(KvOp { value: Some(b"v".to_vec()), ..KvOp::new(KvVerb::Set, key) })
    }

    #[tokio::test]
    async fn a_failing_fsync_stops_raft_instead_of_acknowledging() {
        let disk = Arc::new(FailingDisk::default());
        let state = Arc::new(StateStore::new());
        let raft = start_on(&options(None), state.clone(), client(), disk.clone()).await.expect("start");
        assert!(super::super::wait_leader(&raft, 1, std::time::Duration::from_secs(10)).await);
        raft.client_write(put("before")).await.expect("a write while the disk works");
        disk.fail.store(true, Ordering::SeqCst);
        let r = raft.client_write(put("lost")).await;
        assert!(r.is_err(), "a write was acknowledged although its fsync failed: {r:?}");
        // Raft has stopped: later writes are refused too, and the failed one was never applied.
        assert!(raft.client_write(put("after")).await.is_err());
        assert!(raft.metrics().borrow().running_state.is_err(), "raft keeps running after a storage error");
        assert!(state.read(|s| !s.kv.contains_key("lost") && s.kv.contains_key("before")));
        let _ = raft.shutdown().await;
    }
}
