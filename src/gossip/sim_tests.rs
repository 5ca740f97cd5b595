use super::*;
use crate::gossip::identity::Intent;

const SEC: Duration = Duration::from_secs(1);

fn sim(agents: usize, seed: u64) -> Sim {
    Sim::new(SimConfig::new(agents, seed))
}

#[test]
fn sim_identity_encodes_as_the_real_node_identity() {
    for (agent, generation, intent) in
        [(0, 0, Intent::None), (7, 3, Intent::Leave), (65_534, 900, Intent::Prune)]
    {
        let id = SimId { agent, generation, intent };
        let real = id.to_node_identity();
        assert_eq!(real.tags.get("role").map(String::as_str), Some("node"));
        assert_eq!(real.tags.get("id").map(String::len), Some(36));
        let ours = postcard::to_allocvec(&Member::alive(id)).expect("encode");
        let theirs = postcard::to_allocvec(&Member::alive(real)).expect("encode");
        assert_eq!(ours, theirs, "agent {agent}");
        let back: Member<SimId> = postcard::from_bytes(&ours).expect("decode");
        assert_eq!(back, Member::alive(id));
    }
}

#[test]
fn sim_members_stay_small_enough_for_ten_thousand_agents() {
    // 10,000 agents × 10,000 members each: 10 bytes apiece is 1 GB.
    assert!(size_of::<Member<SimId>>() <= 10);
}

#[test]
fn sim_identity_follows_node_identity_rules() {
    use foca::Identity as _;
    let id = SimId::new(4);
    let next = id.renew().expect("renews");
    assert!(next.win_addr_conflict(&id) && !id.win_addr_conflict(&next));
    let leaving = SimId { intent: Intent::Leave, ..id };
    assert!(leaving.win_addr_conflict(&id));
    assert!(leaving.renew().is_none());
}

#[test]
fn sim_crashed_member_is_detected_by_every_survivor_within_the_bound() {
    let (n, timing) = (30, Timing::lan());
    let mut s = sim(n, 7);
    s.run_for(10 * SEC);
    assert!(s.crash(5));
    let bound = timing.detection_bound(n);
    let took = s.run_until_detected(5, s.now() + bound * 2).expect("every survivor declares it down");
    let d = s.detection(5).expect("tracked");
    assert_eq!((d.survivors, d.per_survivor.len()), (n - 1, n - 1));
    assert!(took <= bound, "detection took {took:?}, bound {bound:?}");
    let (suspected, declared) = (d.first_suspected.expect("suspected"), d.first_declared.expect("declared"));
    assert!(declared >= suspected + timing.suspicion_timeout(n), "{suspected:?} then {declared:?}");
    assert_eq!(s.false_positives(), FalsePositives::default());
    for i in (0..n).filter(|i| *i != 5) {
        assert_eq!(s.members_known_by(i), n - 2, "agent {i}");
    }
}

#[test]
fn sim_no_false_positive_without_loss() {
    let mut s = sim(40, 11);
    s.run_for(180 * SEC);
    assert_eq!(s.false_positives(), FalsePositives::default());
    let t = s.traffic();
    assert_eq!((t.lost, t.to_crashed), (0, 0));
    // Every agent probes once a second: a ping and its ack.
    let per_agent_second = t.datagrams as f64 / 40.0 / 180.0;
    assert!((1.9..2.5).contains(&per_agent_second), "{per_agent_second} datagrams per agent-second");
    assert!(t.push_pulls > 0);
}

#[test]
fn sim_one_percent_loss_declares_no_live_member_down() {
    let mut cfg = SimConfig::new(40, 3);
    cfg.loss = 0.01;
    let mut s = Sim::new(cfg);
    s.run_for(300 * SEC);
    let t = s.traffic();
    assert!(t.lost > 0 && t.lost < t.datagrams / 50, "{t:?}");
    assert_eq!(s.false_positives().declarations, 0, "{:?}", s.false_positives());
}

#[test]
fn sim_total_loss_of_a_member_looks_like_a_crash_and_it_rejoins() {
    // Heavy loss (30%) over a small pool: some live members are declared down, find out
    // through TurnUndead or gossip, and come back as their next generation.
    let mut cfg = SimConfig::new(20, 5);
    cfg.loss = 0.3;
    let mut s = Sim::new(cfg);
    s.run_for(120 * SEC);
    let fp = s.false_positives();
    assert!(fp.suspicions > 0 && fp.declarations > 0 && fp.rejoins > 0, "{fp:?}");
}

fn fingerprint(seed: u64) -> (Traffic, u64, FalsePositives, Option<Detection>, Option<JoinSpread>) {
    let mut cfg = SimConfig::new(25, seed);
    cfg.loss = 0.05;
    let mut s = Sim::new(cfg);
    s.run_for(5 * SEC);
    let victim = s.pick_live(25).expect("live agent");
    s.crash(victim);
    s.run_for(30 * SEC);
    let seed = s.pick_live(25).expect("live agent");
    let j = s.join(seed).expect("joins");
    s.run_for(10 * SEC);
    (s.traffic(), s.events(), s.false_positives(), s.detection(victim), s.join_spread(j))
}

#[test]
fn sim_same_seed_gives_identical_results() {
    let a = fingerprint(42);
    assert_eq!(a, fingerprint(42));
    assert!(a.3.as_ref().is_some_and(|d| d.all_declared.is_some()), "{:?}", a.3);
    assert_ne!(a.0, fingerprint(43).0);
}

#[test]
fn sim_join_converges_both_ways() {
    let n = 30;
    let mut s = sim(n, 9);
    s.run_for(5 * SEC);
    let j = s.join(3).expect("joins");
    let took = s.run_until_joined(j, s.now() + 30 * SEC).expect("converges");
    assert!(took < 5 * SEC, "join took {took:?}");
    let spread = s.join_spread(j).expect("tracked");
    assert!(spread.joiner_knows_all.expect("joiner knows all") < SEC, "{spread:?}");
    for i in 0..=n {
        assert_eq!(s.members_known_by(i), n, "agent {i}");
    }
}

#[test]
fn sim_join_through_a_crashed_seed_is_refused() {
    let mut s = sim(5, 1);
    s.crash(2);
    assert_eq!(s.join(2), None);
    assert!(!s.crash(2));
}

#[test]
fn sim_push_pull_interval_scales_like_the_driver() {
    let base = Duration::from_secs(30);
    assert_eq!(push_pull_scale(base, 32), base);
    assert_eq!(push_pull_scale(base, 1000), base * 6);
    assert_eq!(push_pull_scale(base, 10_000), base * 10);
}

#[test]
fn sim_coordinate_datagrams_are_small() {
    let (ping, ack) = coordinate_datagram_sizes();
    assert!(ping > 0 && ping < 10, "{ping}");
    assert!(ack > 50 && ack < 200, "{ack}");
}
