//! What a gossip member does with the bytes it receives, without its sockets and task: the
//! fuzz targets' entry ([`crate::fuzzing::gossip_packet`]).
//!
//! The first input byte picks the path, the rest is what arrived:
//!
//! | byte % 4 | path |
//! |---|---|
//! | 0 | a UDP datagram, no `encrypt` key |
//! | 1 | a UDP datagram at a member with a key; also the rest sealed with that key |
//! | 2 | a TCP stream (length prefix, frame), no key |
//! | 3 | a TCP stream at a member with a key; also the rest sealed with that key |
//!
//! A datagram goes through [`wire::open`] and its channel: SWIM packets to a fresh foca
//! member (whose sends, timers and notifications are drained as the driver does), coordinate
//! pings and acks to [`Coords`], user events to [`UserEvents`]. A stream frame goes through
//! [`wire::read_frame`] and [`wire::decode_msg`]; push-pull state is checked and merged,
//! keyring requests run on an in-memory ring.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::coord::{CoordMsg, Coords};
use super::identity::NodeIdentity;
use super::keyring::{Keyring, SharedRing};
use super::timing::Timing;
use super::user_event::{self, UserEvents};
use super::view::View;
use super::wire::{self, StreamMsg};

/// The key of the keyed paths.
const KEY: [u8; 32] = [7; 32];

fn local() -> NodeIdentity {
    let tags =
        BTreeMap::from([("role".to_owned(), "consul".to_owned()), ("dc".to_owned(), "dc1".to_owned())]);
    NodeIdentity {
        addr: SocketAddr::from(([127, 0, 0, 1], 8301)),
        name: "fuzz-local".to_owned(),
        generation: 1,
        intent: super::identity::Intent::None,
        tags,
    }
}

fn ring(keyed: bool) -> Keyring {
    let keys = if keyed { vec![KEY.to_vec()] } else { Vec::new() };
    Keyring::new(&keys).unwrap_or_else(|e| unreachable!("a 32-byte key is valid: {e}"))
}

/// A fresh ring like `ring` (same keys or none).
fn ring_of(ring: &Keyring) -> Keyring {
    self::ring(ring.is_enabled())
}

/// One member's state, as the driver owns it.
struct Member {
    foca: Foca<NodeIdentity, PostcardCodec, StdRng, NoCustomBroadcast>,
    rt: AccumulatingRuntime<NodeIdentity>,
    view: View,
    coords: Coords,
    events: UserEvents,
    timing: Timing,
}

impl Member {
    fn new() -> Member {
        let timing = Timing::lan();
        let reconnect = Duration::from_secs(72 * 3600);
        let id = local();
        let foca =
            Foca::new(id.clone(), timing.foca_config(1, reconnect), StdRng::seed_from_u64(1), PostcardCodec);
        Member {
            foca,
            rt: AccumulatingRuntime::new(),
            view: View::new(id, reconnect),
            coords: Coords::new("fuzz-local"),
            events: UserEvents::default(),
            timing,
        }
    }

    /// Drains foca's output; due timers fire at once (a bounded number of rounds).
    fn drain(&mut self) {
        let now = Instant::now();
        for _ in 0..4 {
            while let Some((_, data)) = self.rt.to_send() {
                assert!(data.len() <= wire::MAX_FOCA_PACKET, "foca sent {} bytes", data.len());
            }
            let mut timers = Vec::new();
            while let Some((_, timer)) = self.rt.to_schedule() {
                timers.push(timer);
            }
            while let Some(n) = self.rt.to_notify() {
                match n {
                    OwnedNotification::MemberUp(id) => drop(self.view.up(&id, now)),
                    OwnedNotification::MemberDown(id) => drop(self.view.down(&id, now)),
                    OwnedNotification::Rename(old, new) => drop(self.view.rename(&old, &new, now)),
                    OwnedNotification::Rejoin(id) => self.view.set_local(id),
                    _ => {}
                }
            }
            if timers.is_empty() {
                break;
            }
            for t in timers {
                let _ = self.foca.handle_timer(t, &mut self.rt);
            }
        }
        let live = self.view.live_count();
        let _ = self.foca.set_config(self.timing.foca_config(live, Duration::from_secs(72 * 3600)));
        let _ = self.view.members();
        let _ = self.view.reap(now);
    }

    fn datagram(&mut self, ring: &Keyring, data: &[u8]) {
        if data.len() > wire::MAX_DATAGRAM {
            return;
        }
        let Ok(payload) = wire::open(ring, data) else { return };
        let from = SocketAddr::from(([127, 0, 0, 2], 8301));
        match payload.split_first() {
            Some((&wire::CHANNEL_FOCA, body)) => {
                let _ = self.foca.handle_data(body, &mut self.rt);
                self.drain();
            }
            Some((&wire::CHANNEL_COORD, body)) => match postcard::from_bytes::<CoordMsg>(body) {
                Ok(CoordMsg::Ping { seq }) => {
                    let ack = self.coords.on_ping(seq);
                    let _ = postcard::to_allocvec(&ack);
                }
                Ok(CoordMsg::Ack { seq, name, coord }) => {
                    // As if our ping to `name` were in flight (sequence 1).
                    let now = Instant::now();
                    let _ = self.coords.probe(&name, from, now);
                    let _ =
                        self.coords.on_ack(seq, &name, coord.into(), from, now + Duration::from_millis(3));
                    let _ = self.coords.coordinate();
                }
                Err(_) => {}
            },
            Some((&wire::CHANNEL_EVENT, body)) => {
                self.user_events(user_event::decode(body).unwrap_or_default())
            }
            _ => {}
        }
    }

    fn user_events(&mut self, events: Vec<super::UserEvent>) {
        for e in events.into_iter().filter(super::UserEvent::fits) {
            self.events.receive(e, 3);
        }
        let _ = self.events.recent();
        let _ = self.events.next_packet(wire::MAX_FOCA_PACKET);
    }

    fn stream(&mut self, ring: &Keyring, frame: &[u8]) {
        let Ok(msg) = wire::decode_msg(ring, frame) else { return };
        match msg {
            StreamMsg::PushPull(pp) => {
                let _ = self.view.check_joiner(&pp.from);
                let _ = self.view.check_state(&pp.members);
                let _ = self.foca.apply_many(pp.members.into_iter(), true, &mut self.rt);
                self.drain();
                let now = Instant::now();
                let down: Vec<NodeIdentity> = self
                    .foca
                    .iter_membership_state()
                    .filter(|m| m.state() == foca::State::Down)
                    .map(|m| m.id().clone())
                    .collect();
                for id in &down {
                    let _ = self.view.learn_down(id, now);
                }
                self.events.joined_at(pp.event_time);
                self.user_events(pp.events);
            }
            StreamMsg::KeyringRequest(op) => {
                let shared = SharedRing::new(ring_of(ring), None);
                let _ = shared.apply(&op);
            }
            StreamMsg::Refuse(_) | StreamMsg::KeyringReply(_) => {}
        }
    }
}

/// Feeds `data` to the receive paths (see the module docs). Panics only on a bug.
pub(crate) fn packet(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let keyed = mode & 1 == 1;
    let ring = ring(keyed);
    let mut m = Member::new();
    if mode & 2 == 0 {
        m.datagram(&ring, rest);
        if keyed {
            // The same payload as a member with the key would have sent it.
            let sealed = wire::seal(&ring, rest);
            assert_eq!(wire::open(&ring, &sealed).as_deref(), Ok(rest), "seal/open round trip");
            m.datagram(&ring, &sealed);
        }
    } else {
        let mut input = rest;
        let read = futures::executor::block_on(wire::read_frame(&mut input));
        if let Ok(frame) = read {
            m.stream(&ring, &frame);
        }
        if keyed {
            let sealed = wire::seal(&ring, rest);
            m.stream(&ring, &sealed);
        }
    }
}

/// Real packets for the corpus, made by the same encoders a member sends with: `(name, input)`
/// with the mode byte of [`packet`] first.
pub(crate) fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let plain = ring(false);
    let keyed = ring(true);
    let mut datagram = |name: &str, channel: u8, body: &[u8]| {
        let mut payload = vec![channel];
        payload.extend_from_slice(body);
        let mut p = vec![0u8];
        p.extend(wire::seal(&plain, &payload));
        out.push((format!("udp_{name}"), p));
        let mut k = vec![1u8];
        k.extend(wire::seal(&keyed, &payload));
        out.push((format!("udp_keyed_{name}"), k));
    };
    // SWIM: a peer announcing itself to us, and what we send back.
    let mut peer = NodeIdentity { name: "fuzz-peer".into(), ..local() };
    peer.addr = SocketAddr::from(([127, 0, 0, 2], 8301));
    let timing = Timing::lan();
    let mut foca = Foca::new(
        peer.clone(),
        timing.foca_config(1, Duration::from_secs(60)),
        StdRng::seed_from_u64(2),
        PostcardCodec,
    );
    let mut rt = AccumulatingRuntime::new();
    let _ = foca.announce(local(), &mut rt);
    let mut swim = Vec::new();
    while let Some((_, data)) = rt.to_send() {
        swim.push(data.to_vec());
    }
    let mut me = Member::new();
    if let Some(first) = swim.first() {
        let _ = me.foca.handle_data(first, &mut me.rt);
    }
    while let Some((_, data)) = me.rt.to_send() {
        swim.push(data.to_vec());
    }
    for (i, p) in swim.iter().enumerate() {
        datagram(&format!("swim_{i}"), wire::CHANNEL_FOCA, p);
    }
    let coords = Coords::new("fuzz-peer");
    let ping = postcard::to_allocvec(&CoordMsg::Ping { seq: 1 }).unwrap_or_default();
    datagram("coord_ping", wire::CHANNEL_COORD, &ping);
    let ack = postcard::to_allocvec(&coords.on_ping(1)).unwrap_or_default();
    datagram("coord_ack", wire::CHANNEL_COORD, &ack);
    let mut events = UserEvents::default();
    events.fire(super::UserEvent::new("deploy", b"v1.2.3".to_vec()), 3);
    if let Some(body) = events.next_packet(wire::MAX_FOCA_PACKET) {
        datagram("user_event", wire::CHANNEL_EVENT, &body);
    }
    // TCP: push-pull, a keyring request, a refusal.
    let members = vec![foca::Member::new(peer.clone(), 0, foca::State::Alive)];
    let pp = wire::PushPull {
        join: true,
        from: peer,
        members,
        event_time: 2,
        events: vec![super::UserEvent::new("deploy", b"x".to_vec())],
    };
    let msgs = [
        ("push_pull", StreamMsg::PushPull(pp)),
        ("keyring_list", StreamMsg::KeyringRequest(super::KeyringOp::List)),
        ("keyring_install", StreamMsg::KeyringRequest(super::KeyringOp::Install(vec![9; 32]))),
        ("refuse", StreamMsg::Refuse("Member 'x' has conflicting node ID".into())),
    ];
    for (name, msg) in msgs {
        for (mode, ring) in [(2u8, &plain), (3, &keyed)] {
            let Ok(frame) = wire::encode_msg(ring, &msg) else { continue };
            let mut p = vec![mode];
            p.extend_from_slice(&u32::try_from(frame.len()).unwrap_or(0).to_be_bytes());
            p.extend(frame);
            let tag = if mode == 3 { "keyed_" } else { "" };
            out.push((format!("tcp_{tag}{name}"), p));
        }
    }
    out
}
