//! State-store tests: a property test driving random KV and transaction sequences through
//! [`crate::fsm::apply`] against a plain model, plus targeted cases.

use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;

use super::Store;
use super::kv::{KvOp, KvVerb, kv_get, kv_keys, kv_list};
use super::txn::TxnOp;
use crate::fsm::{Command, Response, apply};

/// The model: key → (value, flags, create index, modify index).
type Model = BTreeMap<String, (Vec<u8>, u64, u64, u64)>;

#[derive(Debug, Clone)]
enum Op {
    Set(String, Vec<u8>, u64),
    Cas(String, Option<u64>, Vec<u8>),
    Delete(String),
    DeleteCas(String, Option<u64>),
    DeleteTree(String),
    CheckNotExists(String),
    CheckIndex(String, Option<u64>),
    Get(String),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "a/b", "a/c", "a/c/d", "b", "bb", "c"]).prop_map(String::from)
}

/// `None` means "the key's current ModifyIndex"; `Some(i)` a (probably stale) guess.
fn index() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (0u64..6).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    let val = prop::collection::vec(any::<u8>(), 0..8);
    prop_oneof![
        (key(), val.clone(), any::<u64>()).prop_map(|(k, v, f)| Op::Set(k, v, f)),
        (key(), index(), val).prop_map(|(k, i, v)| Op::Cas(k, i, v)),
        key().prop_map(Op::Delete),
        (key(), index()).prop_map(|(k, i)| Op::DeleteCas(k, i)),
        prop::sample::select(vec!["a/", "a", "b", "z"]).prop_map(|p| Op::DeleteTree(p.into())),
        key().prop_map(Op::CheckNotExists),
        (key(), index()).prop_map(|(k, i)| Op::CheckIndex(k, i)),
        key().prop_map(Op::Get),
    ]
}

fn resolve(m: &Model, k: &str, i: Option<u64>) -> u64 {
    i.unwrap_or_else(|| m.get(k).map_or(0, |e| e.3))
}

fn to_kv(m: &Model, op: &Op) -> KvOp {
    let mut o = match op {
        Op::Set(k, v, f) => {
            let mut o = KvOp::new(KvVerb::Set, k.clone());
            o.value = Some(v.clone());
            o.flags = *f;
            o
        }
        Op::Cas(k, i, v) => {
            let mut o = KvOp::new(KvVerb::Cas, k.clone());
            o.value = Some(v.clone());
            o.index = resolve(m, k, *i);
            o
        }
        Op::Delete(k) => KvOp::new(KvVerb::Delete, k.clone()),
        Op::DeleteCas(k, i) => KvOp { index: resolve(m, k, *i), ..KvOp::new(KvVerb::DeleteCas, k.clone()) },
        Op::DeleteTree(p) => KvOp::new(KvVerb::DeleteTree, p.clone()),
        Op::CheckNotExists(k) => KvOp::new(KvVerb::CheckNotExists, k.clone()),
        Op::CheckIndex(k, i) => KvOp { index: resolve(m, k, *i), ..KvOp::new(KvVerb::CheckIndex, k.clone()) },
        Op::Get(k) => KvOp::new(KvVerb::Get, k.clone()),
    };
    if o.value.is_none() && matches!(o.verb, KvVerb::Set | KvVerb::Cas) {
        o.value = Some(Vec::new());
    }
    o
}

/// Applies `op` to the model at `idx`; returns whether it succeeded (false = failed check).
fn model_apply(m: &mut Model, idx: u64, op: &KvOp) -> bool {
    let cur = m.get(&op.key).cloned();
    let set = |m: &mut Model| {
        let create = cur.as_ref().map_or(idx, |e| e.2);
        m.insert(op.key.clone(), (op.value.clone().unwrap_or_default(), op.flags, create, idx));
    };
    match op.verb {
        KvVerb::Set => {
            set(m);
            true
        }
        KvVerb::Cas => {
            let ok = match &cur {
                None => op.index == 0,
                Some(e) => op.index != 0 && e.3 == op.index,
            };
            if ok {
                set(m);
            }
            ok
        }
        KvVerb::Delete => {
            m.remove(&op.key);
            true
        }
        KvVerb::DeleteCas => match &cur {
            Some(e) if e.3 != op.index => false,
            _ => {
                m.remove(&op.key);
                true
            }
        },
        KvVerb::DeleteTree => {
            m.retain(|k, _| !k.starts_with(&op.key));
            true
        }
        KvVerb::CheckNotExists => cur.is_none(),
        KvVerb::CheckIndex => cur.is_some_and(|e| e.3 == op.index),
        KvVerb::Get => cur.is_some(),
        _ => unreachable!("verb not generated"),
    }
}

fn assert_same(st: &Store, m: &Model) {
    let (entries, _) = kv_list(st, "");
    let got: Model = entries
        .into_iter()
        .map(|e| (e.key, (e.value.unwrap_or_default(), e.flags, e.create_index, e.modify_index)))
        .collect();
    assert_eq!(&got, m);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random single-key writes and transactions agree with the model, response by response.
    #[test]
    fn kv_and_txn_sequences_match_the_model(
        steps in prop::collection::vec(prop_oneof![
            op().prop_map(|o| vec![o]),
            prop::collection::vec(op(), 1..6),
        ], 1..40)
    ) {
        let mut st = Store::default();
        let mut m = Model::new();
        let now = Instant::now();
        for (n, step) in steps.iter().enumerate() {
            let idx = n as u64 + 1;
            if step.len() == 1 && !matches!(step[0], Op::CheckNotExists(_) | Op::CheckIndex(..) | Op::Get(_)) {
                let kv = to_kv(&m, &step[0]);
                let want = model_apply(&mut m, idx, &kv);
                let got = apply(&mut st, idx, &Command::Kv(kv), now);
                prop_assert_eq!(got, Response::Bool(want));
            } else {
                let ops: Vec<KvOp> = step.iter().map(|o| to_kv(&m, o)).collect();
                let mut trial = m.clone();
                let failed = ops.iter().position(|o| !model_apply(&mut trial, idx, o));
                let got = apply(&mut st, idx, &Command::Txn(ops.into_iter().map(TxnOp::Kv).collect()), now);
                match (failed, got) {
                    (None, Response::Txn(Ok(_))) => m = trial,
                    (Some(i), Response::Txn(Err(errs))) => prop_assert_eq!(errs[0].op_index, i),
                    (want, got) => prop_assert!(false, "model failed at {:?}, store said {:?}", want, got),
                }
            }
            assert_same(&st, &m);
        }
    }
}

fn set(st: &mut Store, idx: u64, k: &str, v: &str) {
    let mut o = KvOp::new(KvVerb::Set, k);
    o.value = Some(v.as_bytes().to_vec());
    assert_eq!(apply(st, idx, &Command::Kv(o), Instant::now()), Response::Bool(true));
}

#[test]
fn list_index_does_not_go_backwards_after_delete() {
    let mut st = Store::default();
    set(&mut st, 1, "a/x", "1");
    set(&mut st, 2, "a/y", "2");
    let before = kv_list(&st, "a/").1;
    apply(&mut st, 3, &Command::Kv(KvOp::new(KvVerb::Delete, "a/y")), Instant::now());
    assert!(kv_list(&st, "a/").1 >= before);
    assert_eq!(kv_get(&st, "a/y").2, 3, "the tombstone is the key's watch index");
}

#[test]
fn keys_are_cut_after_the_separator() {
    let mut st = Store::default();
    for (i, k) in ["web/bar", "web/foo", "web/subdir/x", "web/subdir/y"].iter().enumerate() {
        set(&mut st, i as u64 + 1, k, "v");
    }
    assert_eq!(kv_keys(&st, "web/", "/").0, vec!["web/bar", "web/foo", "web/subdir/"]);
    assert_eq!(kv_keys(&st, "web/", "").0.len(), 4);
}

fn kv_set(key: &str, value: &str) -> Command {
    Command::Kv(KvOp { value: Some(value.as_bytes().to_vec()), ..KvOp::new(KvVerb::Set, key) })
}

#[test]
fn restore_replaces_the_state_and_keeps_indexes_monotonic() {
    let now = Instant::now();
    let state = super::StateStore::new();
    state.write(|st| apply(st, 3, &kv_set("p/a", "old"), now));
    let snapshot = state.clone_store();
    state.write(|st| apply(st, 7, &kv_set("p/a", "new"), now));
    state.write(|st| apply(st, 8, &kv_set("p/b", "later"), now));
    state.write(|st| apply(st, 9, &kv_set("q", "untouched"), now));
    let mut watches = state.subscribe(&super::Table::ALL);

    let r = state.write(|st| apply(st, 12, &Command::Restore(Box::new(snapshot.clone())), now));
    assert_eq!(r, Response::Bool(true));
    for w in &mut watches {
        assert!(w.has_changed().unwrap(), "every table watch fires");
        assert_eq!(*w.borrow_and_update(), 12);
    }
    state.read(|st| {
        let (entry, index, _) = kv_get(st, "p/a");
        assert_eq!(entry.unwrap().value.as_deref(), Some(&b"old"[..]), "the snapshot's value is back");
        assert_eq!(index, 12, "the reported index moves forward, not back to 3");
        assert!(kv_get(st, "p/b").0.is_none(), "keys written after the snapshot are gone");
        assert!(kv_get(st, "q").0.is_none());
        assert_eq!(kv_list(st, "p/").1, 12, "prefix lists report the restore index");
        assert_eq!(kv_keys(st, "q", "").1, 12);
        for t in super::Table::ALL {
            assert_eq!(st.index(t), 12);
        }
    });
}

#[test]
fn restoring_a_snapshot_from_a_longer_log_keeps_later_writes_visible() {
    let now = Instant::now();
    let mut other = Store::default();
    apply(&mut other, 8000, &kv_set("p/a", "from another cluster"), now);
    let state = super::StateStore::new();
    state.write(|st| apply(st, 12, &Command::Restore(Box::new(other)), now));
    let before = state.read(|st| kv_list(st, "p/").1);
    assert_eq!(before, 12, "indexes from the other cluster's future are brought down to the restore");
    state.write(|st| apply(st, 13, &kv_set("p/b", "new"), now));
    state.read(|st| {
        assert_eq!(kv_list(st, "p/").1, 13, "a later write moves the prefix index");
        assert_eq!(kv_get(st, "p/a").0.unwrap().modify_index, 12);
    });
}
