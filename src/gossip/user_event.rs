//! User events (Serf's `UserEvent`): small messages spread to every member by epidemic
//! rebroadcast, best effort, without persistence or ordering. Consul builds `consul event` and
//! `consul exec` on them; the filters they carry are applied by the receiver (`crate::event`).
//!
//! ```text
//!  fire ─► ltime = clock, clock += 1 ─► seen? no ─► queue (retransmit_limit sends) ─► publish
//!  datagram (channel 2) ─► witness(ltime) ─► too old / seen? drop
//!                                          └► new: remember (ltime, id), queue, publish
//!  every gossip_interval: up to gossip_nodes random live members each get one datagram
//!  packed with the queued events that have sends left (fewest sends made first)
//! ```
//!
//! The Lamport clock is Serf's event clock: firing uses the current time and increments it; a
//! received time `t` moves the clock to at least `t + 1`. Duplicates are detected by
//! `(ltime, id)` in a ring of the last [`EVENT_BUFFER`] Lamport times, so an event older than
//! that window is refused rather than delivered twice. This module is the pure core: the
//! driver does the I/O.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Serf's `UserEventSizeLimit`: name, payload and filters together.
pub const USER_EVENT_SIZE_LIMIT: usize = 512;
/// Serf's `EventBuffer`: how many recent Lamport times are remembered for de-duplication.
pub(crate) const EVENT_BUFFER: usize = 512;
/// At most this many events wait for their rebroadcasts; the oldest are dropped first.
const MAX_QUEUED: usize = 256;
/// How many of the newest events each push-pull carries, so that a member which missed every
/// rebroadcast (loss, a short partition) still gets them at its next full-state exchange, as
/// Serf's push-pull carries its event buffer.
pub(crate) const RECENT_EVENTS: usize = 128;

/// The one version of the event format.
pub const USER_EVENT_VERSION: u8 = 1;

/// A user event as it travels (one postcard record; a datagram carries a `Vec` of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    /// Unique per fire.
    pub id: Uuid,
    /// The event name (`deploy`, `_rexec`).
    pub name: String,
    /// Opaque bytes.
    pub payload: Vec<u8>,
    /// Regex on node names (empty: every node).
    pub node_filter: String,
    /// Regex on local service names (empty: no service needed).
    pub service_filter: String,
    /// Regex on the tags of the matching service (needs a service filter).
    pub tag_filter: String,
    /// Format version ([`USER_EVENT_VERSION`]).
    pub version: u8,
    /// Lamport time in the pool's event clock, set when fired.
    pub ltime: u64,
}

impl UserEvent {
    /// A new event with a fresh ID and no filters; the clock sets `ltime` when it is fired.
    pub fn new(name: impl Into<String>, payload: Vec<u8>) -> Self {
        UserEvent {
            id: Uuid::new_v4(),
            name: name.into(),
            payload,
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            version: USER_EVENT_VERSION,
            ltime: 0,
        }
    }

    /// Bytes counted against [`USER_EVENT_SIZE_LIMIT`]: `(name, payload, filters)`.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let filters = self.node_filter.len() + self.service_filter.len() + self.tag_filter.len();
        (self.name.len(), self.payload.len(), filters)
    }

    /// Whether the event fits in [`USER_EVENT_SIZE_LIMIT`].
    pub fn fits(&self) -> bool {
        let (n, p, f) = self.sizes();
        n + p + f <= USER_EVENT_SIZE_LIMIT
    }
}

#[derive(Debug, Default, Clone)]
struct Seen {
    ltime: u64,
    ids: Vec<Uuid>,
}

#[derive(Debug)]
struct Queued {
    /// The event, encoded once, to pack datagrams by size.
    bytes: Vec<u8>,
    sends_left: u32,
    sent: u32,
}

/// The event clock, the de-duplication ring, the rebroadcast queue and the newest events of
/// one pool member.
#[derive(Debug)]
pub(crate) struct UserEvents {
    clock: u64,
    /// Events older than this are ignored: the pool's event time when this member joined, so a
    /// new member does not replay history (Consul's default `-replay=false`).
    min_time: u64,
    seen: Vec<Seen>,
    queue: VecDeque<Queued>,
    recent: VecDeque<UserEvent>,
}

impl Default for UserEvents {
    fn default() -> Self {
        UserEvents {
            clock: 0,
            min_time: 0,
            seen: vec![Seen::default(); EVENT_BUFFER],
            queue: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }
}

impl UserEvents {
    /// The current Lamport time (`event_time` in `consul info`).
    pub(crate) fn time(&self) -> u64 {
        self.clock
    }

    /// Events waiting for rebroadcasts (`event_queue`).
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Stamps a locally fired event with the clock, remembers and queues it `sends` times.
    pub(crate) fn fire(&mut self, mut event: UserEvent, sends: u32) -> UserEvent {
        event.ltime = self.clock;
        self.clock += 1;
        self.remember(&event);
        self.enqueue(&event, sends);
        self.keep(&event);
        event
    }

    /// Folds in a received event; `true` when it is new (deliver it), `false` for a
    /// duplicate or an event older than the de-duplication window.
    pub(crate) fn receive(&mut self, event: UserEvent, sends: u32) -> bool {
        self.clock = self.clock.max(event.ltime.saturating_add(1));
        let window = EVENT_BUFFER as u64;
        if self.clock > window && event.ltime < self.clock - window {
            return false;
        }
        if event.ltime < self.min_time || !self.remember(&event) {
            return false;
        }
        self.enqueue(&event, sends);
        self.keep(&event);
        true
    }

    /// The newest events (at most [`RECENT_EVENTS`]), for a push-pull.
    pub(crate) fn recent(&self) -> Vec<UserEvent> {
        self.recent.iter().cloned().collect()
    }

    /// Joining: the pool's history up to `time` (the event time of the member we joined
    /// through) is not delivered here; later events are.
    pub(crate) fn joined_at(&mut self, time: u64) {
        self.clock = self.clock.max(time);
        self.min_time = self.min_time.max(time);
    }

    fn keep(&mut self, event: &UserEvent) {
        if self.recent.len() >= RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
    }

    /// Records `(ltime, id)`; `false` when it was already there.
    fn remember(&mut self, event: &UserEvent) -> bool {
        let slot = &mut self.seen[(event.ltime % EVENT_BUFFER as u64) as usize];
        if slot.ltime != event.ltime {
            *slot = Seen { ltime: event.ltime, ids: Vec::new() };
        }
        if slot.ids.contains(&event.id) {
            return false;
        }
        slot.ids.push(event.id);
        true
    }

    fn enqueue(&mut self, event: &UserEvent, sends: u32) {
        if sends == 0 {
            return;
        }
        let Ok(bytes) = postcard::to_allocvec(event) else { return };
        if self.queue.len() >= MAX_QUEUED {
            self.queue.pop_front();
        }
        self.queue.push_back(Queued { bytes, sends_left: sends, sent: 0 });
    }

    /// The next datagram body for one target: queued events, fewest sends first, up to
    /// `budget` encoded bytes; each counts one send. `None` when nothing is queued.
    pub(crate) fn next_packet(&mut self, budget: usize) -> Option<Vec<u8>> {
        let mut order: Vec<usize> = (0..self.queue.len()).collect();
        order.sort_by_key(|&i| self.queue[i].sent);
        let mut chosen = Vec::new();
        let mut size = 1; // the length varint (a datagram holds far fewer than 128 events)
        for i in order {
            let q = &self.queue[i];
            if size + q.bytes.len() <= budget && chosen.len() < 127 {
                size += q.bytes.len();
                chosen.push(i);
            }
        }
        if chosen.is_empty() {
            return None;
        }
        let mut body = Vec::with_capacity(size);
        body.push(u8::try_from(chosen.len()).unwrap_or(0));
        for &i in &chosen {
            let q = &mut self.queue[i];
            body.extend_from_slice(&q.bytes);
            q.sent += 1;
            q.sends_left -= 1;
        }
        self.queue.retain(|q| q.sends_left > 0);
        Some(body)
    }
}

/// Decodes a datagram body (`Vec<UserEvent>` in postcard).
pub(crate) fn decode(body: &[u8]) -> Option<Vec<UserEvent>> {
    postcard::from_bytes(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> UserEvent {
        UserEvent::new(name, b"x".to_vec())
    }

    #[test]
    fn firing_uses_the_clock_then_advances_it() {
        let mut u = UserEvents::default();
        assert_eq!(u.fire(event("a"), 3).ltime, 0);
        assert_eq!(u.fire(event("b"), 3).ltime, 1);
        assert_eq!(u.time(), 2);
    }

    #[test]
    fn receiving_witnesses_the_senders_time() {
        let mut u = UserEvents::default();
        let mut e = event("a");
        e.ltime = 41;
        assert!(u.receive(e, 3));
        assert_eq!(u.time(), 42, "clock = max(clock, ltime + 1)");
        let mut older = event("b");
        older.ltime = 7;
        assert!(u.receive(older, 3), "an older event inside the window is still new");
        assert_eq!(u.time(), 42, "an older time never moves the clock back");
        assert_eq!(u.fire(event("c"), 3).ltime, 42);
    }

    #[test]
    fn each_event_is_delivered_once_and_same_time_events_are_kept_apart() {
        let mut u = UserEvents::default();
        let mut a = event("a");
        a.ltime = 5;
        let mut b = event("b");
        b.ltime = 5;
        assert!(u.receive(a.clone(), 3));
        assert!(!u.receive(a.clone(), 3), "duplicate");
        assert!(u.receive(b.clone(), 3), "same ltime, another ID");
        assert!(!u.receive(b, 3));
        let fired = u.fire(event("c"), 3);
        assert!(!u.receive(fired, 3), "our own event coming back");
        assert!(!u.receive(a, 3));
    }

    #[test]
    fn events_older_than_the_window_are_refused() {
        let mut u = UserEvents::default();
        let mut recent = event("new");
        recent.ltime = 10_000;
        assert!(u.receive(recent, 3));
        let mut old = event("old");
        old.ltime = 10_001 - EVENT_BUFFER as u64 - 1;
        assert!(!u.receive(old.clone(), 3), "outside the 512-time window");
        old.ltime += 1;
        assert!(u.receive(old, 3), "the oldest time inside the window");
    }

    #[test]
    fn a_slot_reused_by_a_later_time_forgets_the_earlier_ids() {
        let mut u = UserEvents::default();
        let mut e = event("a");
        e.ltime = 3;
        assert!(u.receive(e.clone(), 0));
        let mut later = event("b");
        later.ltime = 3 + EVENT_BUFFER as u64;
        assert!(u.receive(later, 0));
        // `e` now falls outside the window, so it is refused, not delivered again.
        assert!(!u.receive(e, 0));
    }

    #[test]
    fn each_event_is_sent_its_quota_of_times_then_leaves_the_queue() {
        let mut u = UserEvents::default();
        let fired = u.fire(event("a"), 3);
        for _ in 0..3 {
            let body = u.next_packet(1200).expect("a packet");
            assert_eq!(decode(&body), Some(vec![fired.clone()]));
        }
        assert_eq!(u.next_packet(1200), None);
        assert_eq!(u.queued(), 0);
    }

    #[test]
    fn packets_respect_the_budget_and_prefer_events_sent_least() {
        let mut u = UserEvents::default();
        let big = |name: &str| UserEvent::new(name, vec![7; 400]);
        let a = u.fire(big("a"), 5);
        u.next_packet(1200).expect("first packet");
        let b = u.fire(big("b"), 5);
        let c = u.fire(big("c"), 5);
        let body = u.next_packet(900).expect("packet");
        assert!(body.len() <= 900);
        let got = decode(&body).expect("decodes");
        assert_eq!(got, vec![b, c], "the fresh ones first, and only two fit");
        let got = decode(&u.next_packet(900).expect("packet")).expect("decodes");
        assert_eq!(got[0], a);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut u = UserEvents::default();
        for i in 0..(MAX_QUEUED + 10) {
            u.fire(event(&format!("e{i}")), 2);
        }
        assert_eq!(u.queued(), MAX_QUEUED);
    }

    #[test]
    fn size_counts_name_payload_and_filters() {
        let mut e = UserEvent::new("deploy", vec![0; 501]);
        assert!(e.fits());
        e.node_filter = "web-.*".into();
        assert_eq!(e.sizes(), (6, 501, 6));
        assert!(!e.fits());
    }

    /// Five members over real sockets with 20% of datagrams dropped: an event fired on one
    /// reaches all, once each, encrypted like the rest of the pool.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_event_reaches_every_member_once_despite_loss() {
        use std::time::Duration;

        use crate::gossip::tests::{KEY_A, cluster};
        use crate::gossip::{MemberStatus, decode_key};
        use crate::net::fault::Faults;
        use crate::testing::eventually;

        let faults = Faults::none();
        let key = decode_key(KEY_A).expect("key");
        let nodes = cluster(5, &faults, |c| c.keys = vec![key.clone()]).await;
        eventually(Duration::from_secs(10), "everyone sees five live members", || async {
            let all = nodes
                .iter()
                .all(|n| n.members().iter().filter(|m| m.status == MemberStatus::Alive).count() == 5);
            all.then_some(())
        })
        .await;
        let mut subs: Vec<_> = nodes.iter().map(|n| n.subscribe_user_events()).collect();
        faults.set_drop_rate(0.2);
        let fired = nodes[2].user_event(UserEvent::new("deploy", b"v2".to_vec())).expect("fired");
        for (i, rx) in subs.iter_mut().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            let got = got.unwrap_or_else(|_| panic!("node {i} got no event")).expect("event");
            assert_eq!(got, fired, "node {i}");
        }
        let window = nodes[0].inner.shared.timing.gossip_interval * 20;
        for (i, rx) in subs.iter_mut().enumerate() {
            let again = tokio::time::timeout(window, rx.recv()).await;
            assert!(again.is_err(), "node {i} got the event twice");
        }
        for n in &nodes {
            n.shutdown().await;
        }
    }

    #[test]
    fn the_newest_events_are_kept_for_push_pull_and_a_joiner_skips_history() {
        let mut u = UserEvents::default();
        for i in 0..RECENT_EVENTS + 5 {
            u.fire(event(&format!("e{i}")), 1);
        }
        let recent = u.recent();
        assert_eq!(recent.len(), RECENT_EVENTS);
        assert_eq!(recent.first().map(|e| e.name.as_str()), Some("e5"), "the oldest fall out");
        assert_eq!(recent.last().map(|e| e.ltime), Some(u.time() - 1));

        let mut joiner = UserEvents::default();
        joiner.joined_at(u.time());
        assert_eq!(joiner.time(), u.time(), "the joiner's clock moves to the pool's");
        for e in recent {
            assert!(!joiner.receive(e, 1), "history from before the join is not replayed");
        }
        let later = u.fire(event("after"), 1);
        assert!(joiner.receive(later, 1), "an event fired after the join is delivered");
    }

    #[tokio::test]
    async fn a_member_cut_off_while_an_event_spread_gets_it_at_the_next_push_pull() {
        use std::time::Duration;

        use crate::gossip::tests::{cluster, converged, ip};
        use crate::net::fault::Faults;
        use crate::testing::eventually;

        let faults = Faults::none();
        let nodes = cluster(3, &faults, |_| {}).await;
        converged(&nodes, Duration::from_secs(10)).await;
        let mut rx = nodes[2].subscribe_user_events();
        faults.isolate(ip(3), true);
        let fired = nodes[0].user_event(UserEvent::new("deploy", b"v3".to_vec())).expect("fired");
        eventually(Duration::from_secs(10), "every rebroadcast is spent", || async {
            let spent =
                nodes[..2].iter().all(|n| n.stats().get("event_queue").map(String::as_str) == Some("0"));
            spent.then_some(())
        })
        .await;
        assert!(rx.try_recv().is_err(), "the isolated member got nothing yet");
        faults.isolate(ip(3), false);
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        assert_eq!(got.expect("delivered after healing").expect("event"), fired);
        for n in &nodes {
            n.shutdown().await;
        }
    }

    #[tokio::test]
    async fn a_member_that_joins_later_does_not_replay_earlier_events() {
        use std::time::Duration;

        use crate::gossip::tests::{cluster, config, converged, start};
        use crate::net::fault::Faults;

        let faults = Faults::none();
        let mut nodes = cluster(2, &faults, |_| {}).await;
        converged(&nodes, Duration::from_secs(10)).await;
        let old = nodes[0].user_event(UserEvent::new("deploy", b"old".to_vec())).expect("fired");
        let late = start(config(3, &faults)).await;
        let mut rx = late.subscribe_user_events();
        late.join(&[nodes[0].local_addr().to_string()]).await.expect("join");
        nodes.push(late);
        converged(&nodes, Duration::from_secs(10)).await;
        let new = nodes[1].user_event(UserEvent::new("deploy", b"new".to_vec())).expect("fired");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let got = got.expect("the new event arrives").expect("event");
        assert_eq!(got, new, "the first event the late member sees is the one fired after it joined");
        assert!(old.ltime < new.ltime);
        for n in &nodes {
            n.shutdown().await;
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        assert_eq!(decode(&[3, 1, 2]), None);
    }
}
