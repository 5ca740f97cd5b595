//! Keyring rotation across a pool, persistence, and the verify flags, on 127.0.0.x.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::broadcast::Receiver;

use super::keyring::encode_key;
use super::tests::{KEY_A, KEY_B, cluster, config, converged, ip, saw, shutdown_all, start};
use super::*;
use crate::net::fault::Faults;
use crate::testing::eventually;

fn key(encoded: &str) -> Vec<u8> {
    decode_key(encoded).expect("key")
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

fn counter(node: &Gossip, name: &str) -> u64 {
    node.stats().get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Asserts that `op` succeeded on all `n` members.
async fn everywhere(node: &Gossip, op: KeyringOp, n: usize) -> KeyringResponse {
    let verb = op.verb();
    let r = node.keyring(op).await.expect("encryption is on");
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (n, n, 0), "{verb}: {r:?}");
    assert_eq!(r.error(), None, "{verb}: {:?}", r.messages);
    r
}

/// After a step, every node keeps receiving gossip (several probe rounds' worth), lists
/// every member alive, and no node saw a failure or dropped a packet it could not decrypt.
async fn undisturbed(nodes: &[Gossip], events: &mut [Receiver<MemberEvent>], step: &str) {
    tracing::info!("--- {step}");
    let before: Vec<u64> = nodes.iter().map(|n| counter(n, "packets_received")).collect();
    eventually(Duration::from_secs(10), &format!("{step}: gossip keeps flowing"), || async {
        let flowing = nodes.iter().zip(&before).all(|(n, b)| counter(n, "packets_received") >= b + 30);
        flowing.then_some(())
    })
    .await;
    converged(nodes, Duration::from_secs(5)).await;
    for (node, rx) in nodes.iter().zip(events.iter_mut()) {
        assert!(!saw(rx, |e| matches!(e, MemberEvent::Failed(_))), "{step}: a member failed");
        assert_eq!(counter(node, "packets_undecryptable"), 0, "{step}: undecryptable packets");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_across_five_members_without_interrupting_gossip() {
    let faults = Faults::none();
    let nodes = cluster(5, &faults, |c| c.keys = vec![key(KEY_A)]).await;
    let mut events: Vec<_> = nodes.iter().map(Gossip::subscribe).collect();
    undisturbed(&nodes, &mut events, "five members share KEY_A").await;
    let r = everywhere(&nodes[2], KeyringOp::List, 5).await;
    assert_eq!((r.keys, r.primary_keys), (counts(&[(KEY_A, 5)]), counts(&[(KEY_A, 5)])));

    everywhere(&nodes[0], KeyringOp::Install(key(KEY_B)), 5).await;
    undisturbed(&nodes, &mut events, "KEY_B installed").await;
    let r = everywhere(&nodes[4], KeyringOp::List, 5).await;
    assert_eq!(r.keys, counts(&[(KEY_A, 5), (KEY_B, 5)]));
    assert_eq!(r.primary_keys, counts(&[(KEY_A, 5)]));

    everywhere(&nodes[1], KeyringOp::Use(key(KEY_B)), 5).await;
    undisturbed(&nodes, &mut events, "KEY_B primary").await;
    let r = everywhere(&nodes[0], KeyringOp::List, 5).await;
    assert_eq!(r.primary_keys, counts(&[(KEY_B, 5)]));

    let refused = nodes[0].keyring(KeyringOp::Remove(key(KEY_B))).await.expect("answered");
    assert_eq!((refused.num_err, refused.error().as_deref()), (5, Some("5/5 nodes reported failure")));
    assert!(refused.messages.values().all(|m| m == "Removing the primary key is not allowed"), "{refused:?}");
    assert_eq!(refused.messages.len(), 5);

    everywhere(&nodes[3], KeyringOp::Remove(key(KEY_A)), 5).await;
    undisturbed(&nodes, &mut events, "KEY_A removed").await;
    let r = everywhere(&nodes[0], KeyringOp::List, 5).await;
    assert_eq!((r.keys, r.primary_keys), (counts(&[(KEY_B, 5)]), counts(&[(KEY_B, 5)])));
    let r = nodes[0].keyring(KeyringOp::Use(key(KEY_A))).await.expect("answered");
    assert!(r.messages.values().all(|m| m == "Requested key is not in the keyring"), "{r:?}");

    tracing::info!("--- a member with only the old key is refused, one with the new key joins");
    let seed = vec![nodes[0].local_addr().to_string()];
    let mut cfg = config(6, &faults);
    cfg.keys = vec![key(KEY_A)];
    let stale = start(cfg).await;
    let e = stale.join(&seed).await.expect_err("old key only");
    assert!(e.to_string().contains("No installed keys could decrypt the message"), "{e}");
    stale.shutdown().await;
    let mut cfg = config(7, &faults);
    cfg.keys = vec![key(KEY_B)];
    let late = start(cfg).await;
    late.join(&seed).await.expect("new key");
    let mut all = nodes.clone();
    all.push(late);
    converged(&all, Duration::from_secs(5)).await;
    everywhere(&all[5], KeyringOp::List, 6).await;
    shutdown_all(&all).await;
}

#[tokio::test]
async fn a_member_that_does_not_answer_counts_as_a_failure() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |c| c.keys = vec![key(KEY_A)]).await;
    converged(&nodes, Duration::from_secs(5)).await;
    // Still listed alive: failure detection takes several probe rounds.
    faults.isolate(ip(3), true);
    let r = nodes[0].keyring(KeyringOp::Install(key(KEY_B))).await.expect("answered");
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (3, 2, 1), "{r:?}");
    assert_eq!(r.error().as_deref(), Some("1/3 nodes reported failure"));
    let why = r.messages.get("node-3").expect("a message for node-3");
    assert!(why.contains("i/o timeout"), "{why}");
    let text = r.error_text("dc1 (LAN)").expect("an error");
    assert!(
        text.starts_with("2 errors occurred:\n\t* dc1 (LAN) error: 1/3 nodes reported failure"),
        "{text}"
    );
    faults.isolate(ip(3), false);
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn a_plaintext_pool_has_no_keyring_to_operate_on() {
    let node = start(config(1, &Faults::none())).await;
    for op in [KeyringOp::List, KeyringOp::Install(key(KEY_A))] {
        let e = node.keyring(op).await.expect_err("no encryption");
        assert_eq!(e.to_string(), "Gossip encryption is not enabled; set encrypt to use a keyring");
    }
    assert!(matches!(node.keyring_local().await, Err(GossipError::EncryptionDisabled)));
    node.shutdown().await;
}

#[tokio::test]
async fn a_rotation_is_saved_and_wins_over_the_configured_key_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(LAN_KEYRING_FILE);
    let faults = Faults::none();
    let mut cfg = config(1, &faults);
    cfg.keys = vec![key(KEY_A)];
    cfg.keyring_file = Some(file.clone());
    let node = start(cfg.clone()).await;
    let saved = || serde_json::from_slice::<Vec<String>>(&std::fs::read(&file).expect("file")).expect("JSON");
    assert_eq!(saved(), [KEY_A], "written on first start");
    everywhere(&node, KeyringOp::Install(key(KEY_B)), 1).await;
    assert_eq!(saved(), [KEY_A, KEY_B]);
    everywhere(&node, KeyringOp::Use(key(KEY_B)), 1).await;
    assert_eq!(saved(), [KEY_B, KEY_A]);
    node.shutdown().await;

    let node = start(cfg.clone()).await;
    let r = node.keyring_local().await.expect("keys");
    assert_eq!(r.primary_keys, counts(&[(KEY_B, 1)]), "the file beats encrypt");
    assert_eq!((r.keys.len(), r.num_nodes), (2, 1));
    node.shutdown().await;

    std::fs::write(&file, b"[\"oops\"").expect("damaged");
    let e = Gossip::start(cfg).await.expect_err("damaged file").to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
}

#[tokio::test]
async fn local_listing_counts_this_node_only() {
    let faults = Faults::none();
    let nodes = cluster(2, &faults, |c| c.keys = vec![key(KEY_A), key(KEY_B)]).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let r = nodes[1].keyring_local().await.expect("keys");
    assert_eq!(r.keys, counts(&[(KEY_A, 1), (KEY_B, 1)]));
    assert_eq!((r.primary_keys, r.num_nodes), (counts(&[(KEY_A, 1)]), 1));
    assert_eq!(encode_key(&key(KEY_A)), KEY_A);
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn encryption_rolls_out_with_the_verify_flags_off() {
    let faults = Faults::none();
    let lenient = |c: &mut GossipConfig| {
        c.keys = vec![key(KEY_A)];
        c.verify_incoming = false;
        c.verify_outgoing = false;
    };
    tracing::info!("--- step 1: a plaintext member and a keyed one with both checks off");
    let plain = start(config(1, &faults)).await;
    let mut cfg = config(2, &faults);
    lenient(&mut cfg);
    let keyed = start(cfg).await;
    keyed.join(&[plain.local_addr().to_string()]).await.expect("plaintext both ways");
    let step1 = [plain, keyed];
    converged(&step1, Duration::from_secs(5)).await;

    tracing::info!("--- step 2: encrypting outgoing while still accepting plaintext");
    let mut cfg = config(3, &faults);
    lenient(&mut cfg);
    let mut cfg4 = config(4, &faults);
    lenient(&mut cfg4);
    cfg4.verify_outgoing = true;
    let (old, new) = (start(cfg).await, start(cfg4).await);
    new.join(&[old.local_addr().to_string()]).await.expect("mixed");
    let step2 = [old, new];
    converged(&step2, Duration::from_secs(5)).await;
    assert_eq!(step2[1].stats().get("encrypted").map(String::as_str), Some("true"));
    shutdown_all(&step1).await;
    shutdown_all(&step2).await;
}
