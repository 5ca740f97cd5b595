use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

const REAP: Duration = Duration::from_secs(60);

fn id(name: &str, addr: &str, generation: u64) -> NodeIdentity {
    let addr: SocketAddr = addr.parse().expect("addr");
    let tags = BTreeMap::from([("id".to_owned(), format!("id-{name}"))]);
    NodeIdentity { addr, name: name.into(), generation, intent: Intent::None, tags }
}

fn with(id: &NodeIdentity, generation: u64, intent: Intent) -> NodeIdentity {
    NodeIdentity { generation, intent, ..id.clone() }
}

fn view() -> View {
    View::new(id("local", "127.0.0.1:1", 1), REAP)
}

fn status(v: &View, name: &str) -> Option<MemberStatus> {
    v.members().into_iter().find(|m| m.name == name).map(|m| m.status)
}

fn kinds(events: &[MemberEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            MemberEvent::Join(_) => "join",
            MemberEvent::Update(_) => "update",
            MemberEvent::Leave(_) => "leave",
            MemberEvent::Failed(_) => "failed",
            MemberEvent::Reap(_) => "reap",
            MemberEvent::Conflict(_) => "conflict",
        })
        .collect()
}

#[test]
fn a_member_joins_fails_comes_back_and_is_reaped_after_the_timeout() {
    let (mut v, t0) = (view(), Instant::now());
    let b = id("b", "127.0.0.2:1", 1);
    assert_eq!(kinds(&v.up(&b, t0)), ["join"]);
    assert_eq!(kinds(&v.down(&b, t0)), ["failed"]);
    assert_eq!(status(&v, "b"), Some(MemberStatus::Failed));
    let b2 = with(&b, 2, Intent::None);
    assert!(v.rename(&b, &b2, t0).is_empty(), "a rename alone changes no state");
    assert_eq!(kinds(&v.up(&b2, t0)), ["join"]);
    assert_eq!(kinds(&v.down(&b2, t0)), ["failed"]);
    assert!(v.reap(t0 + REAP / 2).is_empty());
    assert_eq!(kinds(&v.reap(t0 + REAP)), ["reap"]);
    assert_eq!(status(&v, "b"), None);
    assert!(v.learn_down(&b2, t0 + REAP).is_empty(), "a stale sync does not resurrect it");
}

#[test]
fn a_graceful_leave_shows_leaving_then_left() {
    let (mut v, t0) = (view(), Instant::now());
    let b = id("b", "127.0.0.2:1", 1);
    v.up(&b, t0);
    let leaving = with(&b, 2, Intent::Leave);
    assert!(v.rename(&b, &leaving, t0).is_empty());
    assert_eq!(status(&v, "b"), Some(MemberStatus::Leaving));
    assert_eq!(kinds(&v.down(&leaving, t0)), ["leave"]);
    assert_eq!(status(&v, "b"), Some(MemberStatus::Left));
    assert_eq!(v.counts(), (2, 0, 1));
}

#[test]
fn force_leave_turns_failed_into_left_and_prune_removes_it() {
    let (mut v, t0) = (view(), Instant::now());
    let b = id("b", "127.0.0.2:1", 1);
    v.up(&b, t0);
    v.down(&b, t0);
    let left = with(&b, 1, Intent::Leave);
    assert_eq!(kinds(&v.rename(&b, &left, t0)), ["leave"]);
    let pruned = with(&b, 1, Intent::Prune);
    assert_eq!(kinds(&v.rename(&left, &pruned, t0)), ["reap"]);
    assert_eq!(status(&v, "b"), None);
    assert!(v.identity_of("b").is_none());
    assert!(v.learn_down(&pruned, t0).is_empty());
}

#[test]
fn tag_changes_are_updates() {
    let (mut v, t0) = (view(), Instant::now());
    let b = id("b", "127.0.0.2:1", 1);
    v.up(&b, t0);
    let mut b2 = with(&b, 2, Intent::None);
    b2.tags.insert("role".into(), "consul".into());
    let events = v.rename(&b, &b2, t0);
    assert_eq!(kinds(&events), ["update"]);
    let MemberEvent::Update(m) = &events[0] else { unreachable!() };
    assert_eq!(m.tags.get("role").map(String::as_str), Some("consul"));
}

#[test]
fn a_second_live_member_with_a_taken_name_is_reported_not_listed() {
    let (mut v, t0) = (view(), Instant::now());
    let first = id("b", "127.0.0.2:1", 1);
    let second = id("b", "127.0.0.3:1", 1);
    v.up(&first, t0);
    let events = v.up(&second, t0);
    assert_eq!(kinds(&events), ["conflict"]);
    let MemberEvent::Conflict(c) = &events[0] else { unreachable!() };
    assert_eq!(c.kind, ConflictKind::Name);
    assert!(c.message.contains("Names must be unique"), "{}", c.message);
    assert!(c.message.contains("127.0.0.2:1") && c.message.contains("127.0.0.3:1"), "{}", c.message);
    let listed: Vec<_> = v.members().into_iter().filter(|m| m.name == "b").collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].addr.to_string(), "127.0.0.2");
    assert!(v.up(&second, t0).is_empty(), "reported once");
}

#[test]
fn a_node_back_on_a_new_address_takes_over_its_failed_entry() {
    let (mut v, t0) = (view(), Instant::now());
    let old = id("b", "127.0.0.2:1", 1);
    v.up(&old, t0);
    v.down(&old, t0);
    let new = id("b", "127.0.0.2:2", 5);
    let events = v.up(&new, t0);
    assert_eq!(kinds(&events), ["join"]);
    let member = v.members().into_iter().find(|m| m.name == "b").expect("listed");
    assert_eq!((member.port, member.status), (2, MemberStatus::Alive));
}

#[test]
fn a_peer_using_our_name_is_a_conflict_naming_both_addresses() {
    let (mut v, t0) = (view(), Instant::now());
    let impostor = id("local", "127.0.0.9:1", 1);
    let events = v.up(&impostor, t0);
    assert_eq!(kinds(&events), ["conflict"]);
    let MemberEvent::Conflict(c) = &events[0] else { unreachable!() };
    assert!(c.message.contains("127.0.0.1:1") && c.message.contains("127.0.0.9:1"));
    assert_eq!(v.members().len(), 1);
}

#[test]
fn a_duplicate_node_id_is_reported_with_both_members() {
    let (mut v, t0) = (view(), Instant::now());
    let mut b = id("b", "127.0.0.2:1", 1);
    b.tags.insert("id".into(), "id-local".into());
    let events = v.up(&b, t0);
    assert_eq!(kinds(&events), ["join", "conflict"]);
    let MemberEvent::Conflict(c) = &events[1] else { unreachable!() };
    assert_eq!(c.kind, ConflictKind::NodeId);
    assert!(c.message.contains("'b'") && c.message.contains("'local'"), "{}", c.message);
    assert!(c.message.contains("conflicting node ID 'id-local'"), "{}", c.message);
}

#[test]
fn joiners_with_taken_names_or_ids_are_refused() {
    let (mut v, t0) = (view(), Instant::now());
    let b = id("b", "127.0.0.2:1", 1);
    v.up(&b, t0);
    let e = v.check_joiner(&id("b", "127.0.0.3:1", 1)).expect_err("name taken");
    assert!(e.contains("127.0.0.2:1") && e.contains("127.0.0.3:1"), "{e}");
    let e = v.check_joiner(&id("local", "127.0.0.3:1", 1)).expect_err("our name");
    assert!(e.contains("Names must be unique"), "{e}");
    let mut clone = id("c", "127.0.0.4:1", 1);
    clone.tags.insert("id".into(), "id-b".into());
    let e = v.check_joiner(&clone).expect_err("id taken");
    assert!(e.contains("conflicting node ID"), "{e}");
    assert!(v.check_joiner(&with(&b, 2, Intent::None)).is_ok(), "a restart at the same address");
    v.down(&b, t0);
    assert!(v.check_joiner(&id("b", "127.0.0.3:1", 1)).is_ok(), "a failed name can be reclaimed");
}

#[test]
fn a_cluster_state_holding_our_name_is_not_merged() {
    let v = view();
    let theirs = foca::Member::alive(id("local", "127.0.0.5:1", 1));
    let e = v.check_state(&[theirs]).expect_err("conflict");
    assert!(e.contains("127.0.0.5:1") && e.contains("127.0.0.1:1"), "{e}");
    let dead = foca::Member::down(id("local", "127.0.0.5:1", 1));
    assert!(v.check_state(&[dead]).is_ok(), "a failed holder does not block");
}

#[test]
fn members_are_sorted_and_include_the_local_node() {
    let (mut v, t0) = (view(), Instant::now());
    v.up(&id("zed", "127.0.0.3:1", 1), t0);
    v.up(&id("alpha", "127.0.0.2:1", 1), t0);
    let names: Vec<String> = v.members().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["alpha", "local", "zed"]);
    assert_eq!(v.live_count(), 3);
}
