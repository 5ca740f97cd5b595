//! Several gossip members in one process on 127.0.0.x, with fast timers and fault injection.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::broadcast::Receiver;

use super::*;
use crate::net::fault::Faults;
use crate::testing::eventually;

pub(super) const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";
pub(super) const KEY_B: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

pub(super) fn ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(i).expect("small index")))
}

fn name(i: usize) -> String {
    format!("node-{i}")
}

pub(super) fn config(i: usize, faults: &Arc<Faults>) -> GossipConfig {
    let mut c = GossipConfig::new(name(i), SocketAddr::new(ip(i), 0));
    c.timing = Timing::fast();
    c.faults = faults.clone();
    c.reconnect_timeout = Duration::from_secs(60);
    c.tags = BTreeMap::from([
        ("role".to_owned(), if i == 1 { "consul" } else { "node" }.to_owned()),
        ("dc".to_owned(), "dc1".to_owned()),
        ("id".to_owned(), format!("00000000-0000-0000-0000-{i:012}")),
    ]);
    c
}

pub(super) async fn start(cfg: GossipConfig) -> Gossip {
    Gossip::start(cfg).await.expect("gossip starts")
}

/// Starts nodes 1..=n (node i on 127.0.0.i) and joins each to node 1, retrying through loss.
pub(super) async fn cluster(n: usize, faults: &Arc<Faults>, tune: impl Fn(&mut GossipConfig)) -> Vec<Gossip> {
    let mut nodes = Vec::new();
    for i in 1..=n {
        let mut cfg = config(i, faults);
        tune(&mut cfg);
        nodes.push(start(cfg).await);
    }
    let seed = vec![nodes[0].local_addr().to_string()];
    for node in &nodes[1..] {
        eventually(Duration::from_secs(10), "join the seed", || async { node.join(&seed).await.ok() }).await;
    }
    nodes
}

fn status_of(node: &Gossip, member: &str) -> Option<MemberStatus> {
    node.members().into_iter().find(|m| m.name == member).map(|m| m.status)
}

async fn all_see(nodes: &[Gossip], member: &str, status: Option<MemberStatus>, within: Duration) {
    let what = format!("every node sees {member} as {status:?}");
    eventually(within, &what, || async {
        nodes.iter().all(|n| status_of(n, member) == status).then_some(())
    })
    .await;
}

pub(super) async fn converged(nodes: &[Gossip], within: Duration) {
    let n = nodes.len();
    eventually(within, &format!("{n} nodes see {n} alive members"), || async {
        nodes
            .iter()
            .all(|g| {
                let m = g.members();
                m.len() == n && m.iter().all(|m| m.status == MemberStatus::Alive)
            })
            .then_some(())
    })
    .await;
}

/// Drains `rx` and tells whether `pred` matched an event.
pub(super) fn saw(rx: &mut Receiver<MemberEvent>, pred: impl Fn(&MemberEvent) -> bool) -> bool {
    let mut found = false;
    while let Ok(e) = rx.try_recv() {
        found |= pred(&e);
    }
    found
}

pub(super) async fn shutdown_all(nodes: &[Gossip]) {
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn three_nodes_join_and_see_each_others_tags() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    for node in &nodes {
        let members = node.members();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2", "node-3"]);
        for (i, m) in members.iter().enumerate() {
            assert_eq!(m.addr, ip(i + 1));
            assert_eq!(m.port, nodes[i].local_addr().port());
            assert_eq!(m.tags.get("dc").map(String::as_str), Some("dc1"));
            let want_id = format!("00000000-0000-0000-0000-{:012}", i + 1);
            assert_eq!(m.tags.get("id"), Some(&want_id));
        }
        assert_eq!(members[0].tags.get("role").map(String::as_str), Some("consul"));
        let stats = node.stats();
        assert_eq!(stats.get("members").map(String::as_str), Some("3"));
        assert_eq!(stats.get("encrypted").map(String::as_str), Some("false"));
    }
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_converge_with_tags_everywhere() {
    let faults = Faults::none();
    let nodes = cluster(10, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(10)).await;
    for node in &nodes {
        let roles: Vec<_> = node.members().into_iter().filter_map(|m| m.tags.get("role").cloned()).collect();
        assert_eq!(roles.iter().filter(|r| *r == "consul").count(), 1);
        assert_eq!(roles.len(), 10);
    }
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn with_lan_timers_every_member_lists_a_joiner_within_two_seconds() {
    let faults = Faults::none();
    let mut nodes: Vec<Gossip> = Vec::new();
    for i in 1..=5 {
        let mut cfg = config(i, &faults);
        cfg.timing = Timing::lan();
        let node = start(cfg).await;
        if let Some(seed) = nodes.first() {
            node.join(&[seed.local_addr().to_string()]).await.expect("join");
        }
        nodes.push(node);
        let started = tokio::time::Instant::now();
        converged(&nodes, Duration::from_secs(2)).await;
        tracing::info!("{i} members converged in {:?}", started.elapsed());
    }
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn a_graceful_leave_is_seen_as_left() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let mut events = nodes[0].subscribe();
    nodes[2].leave(Duration::from_secs(5)).await.expect("leave propagated");
    assert_eq!(status_of(&nodes[2], "node-3"), Some(MemberStatus::Left));
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Left), Duration::from_secs(5)).await;
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Leave(m) if m.name == "node-3")));
    nodes[2].shutdown().await;
    let bound = Timing::fast().detection_bound(3) * 3;
    tokio::time::sleep(bound).await; // a left member must stay left, never turn failed
    assert_eq!(status_of(&nodes[0], "node-3"), Some(MemberStatus::Left));
    assert_eq!(nodes[0].stats().get("left").map(String::as_str), Some("1"));
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn a_crashed_member_is_failed_within_the_detection_bound_and_rejoins_on_restart() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let mut events = nodes[0].subscribe();
    let addr = nodes[2].local_addr();
    nodes[2].shutdown().await;
    let started = tokio::time::Instant::now();
    let bound = Timing::fast().detection_bound(3);
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Failed), bound * 2).await;
    tracing::info!("failure detected in {:?} (bound {bound:?})", started.elapsed());
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Failed(m) if m.name == "node-3")));
    assert_eq!(nodes[0].stats().get("failed").map(String::as_str), Some("1"));

    let mut cfg = config(3, &faults);
    cfg.bind = addr;
    let restarted = start(cfg).await;
    let n = restarted.join(&[nodes[0].local_addr().to_string()]).await.expect("rejoin");
    assert_eq!(n, 1);
    let nodes = vec![nodes[0].clone(), nodes[1].clone(), restarted];
    converged(&nodes, Duration::from_secs(5)).await;
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Join(m) if m.name == "node-3")));
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn an_isolated_member_fails_and_comes_back_when_healed() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    faults.isolate(ip(3), true);
    let bound = Timing::fast().detection_bound(3) * 2;
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Failed), bound).await;
    all_see(&nodes[2..], "node-1", Some(MemberStatus::Failed), bound).await;
    faults.isolate(ip(3), false);
    converged(&nodes, Duration::from_secs(10)).await;
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn a_minority_partition_fails_and_heals() {
    let faults = Faults::none();
    let nodes = cluster(5, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    faults.partition(&[&[ip(1), ip(2), ip(3)], &[ip(4), ip(5)]]);
    let bound = Timing::fast().detection_bound(5) * 2;
    all_see(&nodes[..3], "node-4", Some(MemberStatus::Failed), bound).await;
    all_see(&nodes[3..], "node-1", Some(MemberStatus::Failed), bound).await;
    all_see(&nodes[3..], "node-5", Some(MemberStatus::Alive), bound).await;
    faults.heal();
    converged(&nodes, Duration::from_secs(10)).await;
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn force_leave_marks_a_failed_member_left_and_prune_removes_it() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    nodes[2].shutdown().await;
    let bound = Timing::fast().detection_bound(3) * 2;
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Failed), bound).await;
    let mut events = nodes[1].subscribe();

    nodes[0].force_leave("node-3", false).expect("known member");
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Left), Duration::from_secs(3)).await;
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Leave(m) if m.name == "node-3")));

    nodes[0].force_leave("node-3", true).expect("still listed");
    all_see(&nodes[..2], "node-3", None, Duration::from_secs(3)).await;
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Reap(m) if m.name == "node-3")));

    let e = nodes[0].force_leave("nobody", false).expect_err("unknown");
    assert_eq!(e.to_string(), "No node found with name 'nobody'");
    shutdown_all(&nodes[..2]).await;
}

#[tokio::test]
async fn failed_members_are_reaped_after_the_reconnect_timeout() {
    let faults = Faults::none();
    let reconnect = Duration::from_secs(1);
    let nodes = cluster(3, &faults, |c| c.reconnect_timeout = reconnect).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let mut events = nodes[0].subscribe();
    nodes[2].shutdown().await;
    let bound = Timing::fast().detection_bound(3) * 2;
    all_see(&nodes[..2], "node-3", Some(MemberStatus::Failed), bound).await;
    let failed_at = tokio::time::Instant::now();
    all_see(&nodes[..2], "node-3", None, reconnect * 4).await;
    assert!(failed_at.elapsed() >= reconnect / 2, "reaped too early: {:?}", failed_at.elapsed());
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Reap(m) if m.name == "node-3")));
    // Periodic full-state syncs between the survivors must not bring it back.
    tokio::time::sleep(Timing::fast().push_pull_interval).await;
    assert_eq!(status_of(&nodes[0], "node-3"), None);
    shutdown_all(&nodes[..2]).await;
}

#[tokio::test]
async fn a_second_node_with_a_taken_name_is_refused_naming_both_addresses() {
    let faults = Faults::none();
    let nodes = cluster(2, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let mut cfg = config(3, &faults);
    cfg.node_name = name(2);
    let impostor = start(cfg).await;
    let e = impostor.join(&[nodes[0].local_addr().to_string()]).await.expect_err("refused");
    let text = e.to_string();
    assert!(text.starts_with("1 error occurred:\n\t* Failed to join 127.0.0.1: "), "{text}");
    assert!(text.contains("Names must be unique"), "{text}");
    assert!(text.contains(&nodes[1].local_addr().to_string()), "{text}");
    assert!(text.contains(&impostor.local_addr().to_string()), "{text}");
    let listed = nodes[0].members().into_iter().find(|m| m.name == "node-2").expect("listed");
    assert_eq!(listed.addr, ip(2));

    let mut cfg = config(4, &faults);
    cfg.tags.insert("id".into(), "00000000-0000-0000-0000-000000000001".into());
    let clone = start(cfg).await;
    let e = clone.join(&[nodes[1].local_addr().to_string()]).await.expect_err("refused");
    assert!(e.to_string().contains("conflicting node ID"), "{e}");
    assert!(e.to_string().contains("node-1") && e.to_string().contains("node-4"), "{e}");
    assert_eq!(nodes[0].members().len(), 2);
    shutdown_all(&[nodes[0].clone(), nodes[1].clone(), impostor, clone]).await;
}

#[tokio::test]
async fn a_name_conflict_learned_through_gossip_is_reported() {
    let faults = Faults::none();
    let left = cluster(2, &faults, |_| {}).await;
    converged(&left, Duration::from_secs(5)).await;
    // A second cluster also has a "node-2"; its other member joins the first cluster, which
    // accepts it (its own name is free) and learns the duplicate from its state.
    let mut dup_cfg = config(3, &faults);
    dup_cfg.node_name = name(2);
    let dup = start(dup_cfg).await;
    let mut events = left[0].subscribe();
    let mut dup_events = dup.subscribe();
    let bridge = start(config(4, &faults)).await;
    bridge.join(&[dup.local_addr().to_string()]).await.expect("joins the duplicate");
    bridge.join(&[left[0].local_addr().to_string()]).await.expect("joins the first cluster");
    let (first, second) = (dup.local_addr().to_string(), left[1].local_addr().to_string());
    let conflict = |e: &MemberEvent| {
        matches!(e, MemberEvent::Conflict(c) if c.kind == ConflictKind::Name
            && c.message.contains("Names must be unique")
            && c.message.contains(&first) && c.message.contains(&second))
    };
    let seen = std::cell::Cell::new((false, false));
    eventually(Duration::from_secs(5), "conflict reported on both sides", || {
        let (a, b) = seen.get();
        seen.set((a || saw(&mut events, conflict), b || saw(&mut dup_events, conflict)));
        let done = seen.get() == (true, true);
        async move { done.then_some(()) }
    })
    .await;
    let listed = left[0].members().into_iter().find(|m| m.name == "node-2").expect("listed");
    assert_eq!(listed.addr, ip(2), "the first holder keeps the name");
    shutdown_all(&[left[0].clone(), left[1].clone(), dup, bridge]).await;
}

#[tokio::test]
async fn different_encryption_keys_keep_clusters_apart() {
    let faults = Faults::none();
    let key_a = decode_key(KEY_A).expect("key");
    let key_b = decode_key(KEY_B).expect("key");
    let a = cluster(2, &faults, |c| c.keys = vec![key_a.clone()]).await;
    converged(&a, Duration::from_secs(5)).await;
    assert_eq!(a[0].stats().get("encrypted").map(String::as_str), Some("true"));
    let seed = vec![a[0].local_addr().to_string()];

    let mut cfg = config(3, &faults);
    cfg.keys = vec![key_b.clone()];
    let other = start(cfg).await;
    let e = other.join(&seed).await.expect_err("other key");
    assert!(e.to_string().contains("No installed keys could decrypt the message"), "{e}");

    let plain = start(config(4, &faults)).await;
    let e = plain.join(&seed).await.expect_err("no key");
    assert!(e.to_string().contains("requires gossip encryption"), "{e}");

    // A node rotating keys (old primary, new installed) talks to the cluster.
    let mut cfg = config(5, &faults);
    cfg.keys = vec![key_a.clone(), key_b];
    let rotating = start(cfg).await;
    rotating.join(&seed).await.expect("shared key");
    let joined = vec![a[0].clone(), a[1].clone(), rotating.clone()];
    converged(&joined, Duration::from_secs(5)).await;
    assert_eq!(other.members().len(), 1);
    assert_eq!(plain.members().len(), 1);
    assert!(a.iter().all(|n| n.members().len() == 3));
    shutdown_all(&[a[0].clone(), a[1].clone(), other, plain, rotating]).await;
}

#[tokio::test]
async fn coordinates_estimate_a_slow_member_farther_away() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    // 15 ms each way to node-3: a 30 ms round trip, under the fast probe timeout (50 ms).
    faults.set_node_delay(ip(3), Duration::from_millis(15));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (near, far) =
        eventually(Duration::from_secs(20), "node-1 places node-3 about 30 ms away", || async {
            let me = nodes[0].coordinate();
            let near = me.distance_to(&nodes[0].peer_coordinate("node-2")?);
            let far = me.distance_to(&nodes[0].peer_coordinate("node-3")?);
            (ms(far) > 20.0 && ms(far) < 45.0 && ms(near) < 8.0).then_some((near, far))
        })
        .await;
    tracing::info!("estimates from node-1: node-2 {near:?}, node-3 {far:?}");
    let own = nodes[2].coordinate().distance_to(&nodes[1].coordinate());
    assert!(ms(own) > 15.0, "node-3 sees itself far from node-2 too: {own:?}");
    assert!(nodes.iter().all(|n| n.coordinate().is_valid()));
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn bad_keys_are_refused_at_start() {
    let mut cfg = config(1, &Faults::none());
    cfg.keys = vec![vec![0u8; 20]];
    let e = Gossip::start(cfg).await.expect_err("bad key");
    assert!(e.to_string().contains("16, 24 or 32"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_converges_despite_thirty_percent_packet_loss() {
    let faults = Faults::none();
    faults.set_drop_rate(0.3);
    let nodes = cluster(5, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(20)).await;
    faults.heal();
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn garbage_datagrams_and_streams_are_dropped_and_counted() {
    let faults = Faults::none();
    let nodes = cluster(2, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let target = nodes[0].local_addr();
    let raw = UdpSocket::bind((ip(9), 0)).await.expect("raw socket");
    let junk: [&[u8]; 5] =
        [b"", b"hello", &[0xA7, 1, 0, 0xFF, 0xFF, 0xFF], &[0xA7, 1, 1, 1, 2, 3], &[0xA7; 1399]];
    for j in junk {
        raw.send_to(j, target).await.expect("sent");
    }
    raw.send_to(&[0u8; 5000], target).await.expect("sent");
    eventually(Duration::from_secs(5), "garbage counted", || async {
        let s = nodes[0].stats();
        let n = |k: &str| s.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (n("packets_malformed") >= 4 && n("packets_undecryptable") >= 1 && n("packets_oversized") >= 1)
            .then_some(())
    })
    .await;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(target).await.expect("connect");
    s.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink).await; // closed without reading 4 GiB
    let mut s = tokio::net::TcpStream::connect(target).await.expect("connect");
    s.write_all(&[0, 0, 0, 3, 0xA7, 1, 0]).await.expect("write");
    let _ = s.read_to_end(&mut sink).await;

    let late = start(config(3, &faults)).await;
    late.join(&[target.to_string()]).await.expect("still serving joins");
    converged(&[nodes[0].clone(), nodes[1].clone(), late.clone()], Duration::from_secs(5)).await;
    shutdown_all(&[nodes[0].clone(), nodes[1].clone(), late]).await;
}

#[tokio::test]
async fn new_tags_reach_the_other_members() {
    let faults = Faults::none();
    let nodes = cluster(3, &faults, |_| {}).await;
    converged(&nodes, Duration::from_secs(5)).await;
    let mut events = nodes[1].subscribe();
    let mut tags = config(1, &faults).tags;
    tags.insert("build".into(), "1.22.0".into());
    nodes[0].set_tags(tags).expect("small tags");
    eventually(Duration::from_secs(5), "new tags everywhere", || async {
        nodes
            .iter()
            .all(|n| n.members().iter().any(|m| m.name == "node-1" && m.tags.contains_key("build")))
            .then_some(())
    })
    .await;
    assert!(saw(&mut events, |e| matches!(e, MemberEvent::Update(m) if m.name == "node-1")));
    converged(&nodes, Duration::from_secs(5)).await;
    let huge = BTreeMap::from([("x".to_owned(), "y".repeat(600))]);
    assert!(matches!(nodes[0].set_tags(huge), Err(GossipError::TagsTooLarge(_))));
    shutdown_all(&nodes).await;
}

#[tokio::test]
async fn join_errors_list_every_address_like_consul() {
    let faults = Faults::none();
    let node = start(config(1, &faults)).await;
    let closed = TcpListener::bind((ip(1), 0)).await.expect("bind");
    let dead = closed.local_addr().expect("addr");
    drop(closed);
    let e = node.join(&[dead.to_string(), "127.0.0.1:notaport".into()]).await.expect_err("none");
    let text = e.to_string();
    assert!(text.starts_with("2 errors occurred:\n\t* Failed to join 127.0.0.1: dial tcp"), "{text}");
    assert!(text.contains("\n\t* Failed to resolve 127.0.0.1:notaport"), "{text}");
    assert_eq!(node.join(&[]).await.expect("nothing to do"), 0);
    node.shutdown().await;
    assert!(matches!(node.join(&[dead.to_string()]).await, Err(GossipError::Join(_))));
    assert!(matches!(node.leave(Duration::from_secs(1)).await, Err(GossipError::Shutdown)));
}

/// Failure-detection time (crash to "failed" on the first and on every survivor) at 3, 10 and
/// 50 members; each round crashes one member and restarts it, so the size stays put.
/// `cargo test --lib gossip::tests::measure -- --ignored --nocapture`; GOSSIP_TIMING=fast for
/// the scaled-down timers, GOSSIP_ROUNDS=n for more samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: measures failure detection with Consul's LAN timers"]
async fn measure_failure_detection() {
    let fast = std::env::var("GOSSIP_TIMING").is_ok_and(|v| v == "fast");
    let rounds = std::env::var("GOSSIP_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let timing = if fast { Timing::fast() } else { Timing::lan() };
    for n in [3usize, 10, 50] {
        let faults = Faults::none();
        let t = timing.clone();
        let mut nodes = cluster(n, &faults, |c| c.timing = t.clone()).await;
        converged(&nodes, Duration::from_secs(60)).await;
        let (mut first, mut all) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let victim = 1 + (round + 1) % (n - 1);
            let (f, a) = detect(&nodes, victim).await;
            first.push(f);
            all.push(a);
            let mut cfg = config(victim + 1, &faults);
            cfg.timing = timing.clone();
            cfg.bind = nodes[victim].local_addr();
            nodes[victim] = start(cfg).await;
            nodes[victim].join(&[nodes[0].local_addr().to_string()]).await.expect("rejoin");
            converged(&nodes, Duration::from_secs(60)).await;
        }
        report(n, &timing, &mut first, &mut all);
        shutdown_all(&nodes).await;
    }
}

/// Crashes `nodes[victim]`; returns when the first and when the last survivor saw it failed.
async fn detect(nodes: &[Gossip], victim: usize) -> (Duration, Duration) {
    let victim_name = name(victim + 1);
    nodes[victim].shutdown().await;
    let t0 = tokio::time::Instant::now();
    let mut first = None;
    loop {
        let seen = nodes
            .iter()
            .enumerate()
            .filter(|(i, g)| *i != victim && status_of(g, &victim_name) == Some(MemberStatus::Failed))
            .count();
        if seen > 0 && first.is_none() {
            first = Some(t0.elapsed());
        }
        if seen == nodes.len() - 1 {
            return (first.unwrap_or_default(), t0.elapsed());
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{victim_name} never failed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[allow(clippy::print_stdout)]
fn report(n: usize, timing: &Timing, first: &mut [Duration], all: &mut [Duration]) {
    first.sort();
    all.sort();
    let ms = |d: &Duration| d.as_millis();
    println!(
        "members={n} probe={:?} suspicion={:?}: first survivor median {} ms (min {}, max {}); \
         all survivors median {} ms (min {}, max {}); {} rounds",
        timing.probe_interval,
        timing.suspicion_timeout(n),
        ms(&first[first.len() / 2]),
        ms(&first[0]),
        ms(&first[first.len() - 1]),
        ms(&all[all.len() / 2]),
        ms(&all[0]),
        ms(&all[all.len() - 1]),
        all.len(),
    );
}
