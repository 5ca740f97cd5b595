//! Network coordinates for the pool (Serf's coordinate subsystem). Every probe interval the
//! driver sends a coordinate ping to one random live member; the member answers with its own
//! coordinate; the round trip time and that coordinate feed this node's Vivaldi client
//! (`sekisho_wan::coordinate`). Serf piggybacks the same exchange on memberlist's probes; foca
//! keeps its probes to itself, so ours travel beside them on the same socket, on their own
//! channel (see `wire`), encrypted like every other datagram.
//!
//! ```text
//!  tick ─► probe(peer) ─► Ping{seq}  ───────────────►  peer: on_ping ─► Ack{seq, name, coord}
//!  on_ack(seq, from) ◄──────────────────────────────────┘
//!    rtt = now − sent  ─► Client::update(name, coord, rtt) ─► our coordinate
//!                     └─► peer coordinate cache (what `sekisho rtt` reads before a sync)
//! ```
//!
//! This module is the pure core: the driver passes `now` and does the I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sekisho_wan::coordinate::{Client, Config, Coordinate};
use serde::{Deserialize, Serialize};

/// A ping not answered within this long is forgotten (its ack, if it comes, is ignored).
const PENDING_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many pings wait for acks at once.
const MAX_PENDING: usize = 64;

/// A coordinate datagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum CoordMsg {
    /// Asks the receiver for its coordinate.
    Ping { seq: u64 },
    /// The answer: the responder's name and coordinate.
    Ack { seq: u64, name: String, coord: WireCoord },
}

/// A coordinate as postcard carries it. (`Coordinate`'s serde form is tuned for Consul's
/// JSON, where `Vec` may be `null`; postcard is not self-describing and needs exact types.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireCoord {
    vec: Vec<f64>,
    error: f64,
    adjustment: f64,
    height: f64,
}

impl From<Coordinate> for WireCoord {
    fn from(c: Coordinate) -> Self {
        WireCoord { vec: c.vec, error: c.error, adjustment: c.adjustment, height: c.height }
    }
}

impl From<WireCoord> for Coordinate {
    fn from(w: WireCoord) -> Self {
        Coordinate { vec: w.vec, error: w.error, adjustment: w.adjustment, height: w.height }
    }
}

#[derive(Debug)]
struct Pending {
    peer: String,
    addr: SocketAddr,
    sent: Instant,
}

/// This node's Vivaldi client, its pings in flight and the last coordinate seen per peer.
#[derive(Debug)]
pub(crate) struct Coords {
    name: String,
    client: Client,
    pending: HashMap<u64, Pending>,
    peers: HashMap<String, Coordinate>,
    next_seq: u64,
    refused: u64,
}

impl Coords {
    pub(crate) fn new(name: &str) -> Self {
        // The default configuration always validates.
        let client = Client::new(Config::default()).unwrap_or_else(|e| unreachable!("{e}"));
        Coords {
            name: name.to_owned(),
            client,
            pending: HashMap::new(),
            peers: HashMap::new(),
            next_seq: 1,
            refused: 0,
        }
    }

    /// The ping to send to `peer` at `addr`.
    pub(crate) fn probe(&mut self, peer: &str, addr: SocketAddr, now: Instant) -> CoordMsg {
        self.pending.retain(|_, p| now.duration_since(p.sent) < PENDING_TIMEOUT);
        if self.pending.len() >= MAX_PENDING {
            let oldest = self.pending.iter().min_by_key(|(_, p)| p.sent).map(|(s, _)| *s);
            oldest.map(|s| self.pending.remove(&s));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(seq, Pending { peer: peer.to_owned(), addr, sent: now });
        CoordMsg::Ping { seq }
    }

    /// The answer to a ping.
    pub(crate) fn on_ping(&self, seq: u64) -> CoordMsg {
        CoordMsg::Ack { seq, name: self.name.clone(), coord: self.client.coordinate().clone().into() }
    }

    /// Folds an ack in. Acks that match no ping in flight (wrong sequence, sender or source
    /// address, or too late) and coordinates the client refuses change nothing; returns
    /// whether the ack was used.
    pub(crate) fn on_ack(
        &mut self,
        seq: u64,
        name: &str,
        coord: Coordinate,
        from: SocketAddr,
        now: Instant,
    ) -> bool {
        let matches = self.pending.get(&seq).is_some_and(|p| p.peer == name && p.addr == from);
        if !matches {
            return false;
        }
        let Some(p) = self.pending.remove(&seq) else { return false };
        let rtt = now.duration_since(p.sent);
        match self.client.update(name, &coord, rtt) {
            Ok(_) => {
                self.peers.insert(name.to_owned(), coord);
                true
            }
            Err(e) => {
                self.refused += 1;
                tracing::debug!("gossip: coordinate from {name} refused: {e}");
                false
            }
        }
    }

    /// This node's coordinate.
    pub(crate) fn coordinate(&self) -> Coordinate {
        self.client.coordinate().clone()
    }

    /// The last coordinate `peer` reported.
    pub(crate) fn peer(&self, peer: &str) -> Option<Coordinate> {
        self.peers.get(peer).cloned()
    }

    /// Drops what is known about a member that left or was reaped.
    pub(crate) fn forget(&mut self, peer: &str) {
        self.peers.remove(peer);
        self.client.forget_node(peer);
        self.pending.retain(|_, p| p.peer != peer);
    }

    /// How often the coordinate was reset after going invalid (`coordinate_resets` in info).
    pub(crate) fn resets(&self) -> u64 {
        self.client.stats().resets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// `x` pings `y` once; the answer comes back after `rtt`.
    fn exchange(x: &mut Coords, y: &Coords, port: u16, now: &mut Instant, rtt: Duration) {
        let CoordMsg::Ping { seq } = x.probe(&y.name, addr(port), *now) else { panic!("a ping") };
        let CoordMsg::Ack { seq, name, coord } = y.on_ping(seq) else { panic!("an ack") };
        *now += rtt;
        assert!(x.on_ack(seq, &name, coord.into(), addr(port), *now), "ack accepted");
    }

    /// Two nodes `rtt` apart, pinging each other for `rounds` rounds.
    fn converse(a: &mut Coords, b: &mut Coords, rounds: usize, rtt: Duration) {
        let mut now = Instant::now();
        for _ in 0..rounds {
            exchange(a, b, 2, &mut now, rtt);
            exchange(b, a, 1, &mut now, rtt);
        }
    }

    #[test]
    fn acks_move_both_coordinates_towards_the_measured_rtt() {
        let (mut a, mut b) = (Coords::new("a"), Coords::new("b"));
        converse(&mut a, &mut b, 60, Duration::from_millis(10));
        let est = a.coordinate().distance_to(&b.coordinate());
        assert!(est > Duration::from_millis(7) && est < Duration::from_millis(13), "estimate {est:?}");
        assert!(a.peer("b").is_some() && b.peer("a").is_some());
    }

    #[test]
    fn acks_that_match_no_ping_change_nothing() {
        let mut a = Coords::new("a");
        let b = Coords::new("b");
        let now = Instant::now();
        let CoordMsg::Ping { seq } = a.probe("b", addr(2), now) else { panic!() };
        let CoordMsg::Ack { coord, .. } = b.on_ping(seq) else { panic!() };
        let coord = Coordinate::from(coord);
        let before = a.coordinate();
        let later = now + Duration::from_millis(5);
        assert!(!a.on_ack(seq + 1, "b", coord.clone(), addr(2), later), "unknown sequence");
        assert!(!a.on_ack(seq, "mallory", coord.clone(), addr(2), later), "another sender's name");
        assert!(!a.on_ack(seq, "b", coord.clone(), addr(9), later), "another source address");
        assert_eq!(a.coordinate(), before);
        assert!(a.on_ack(seq, "b", coord.clone(), addr(2), later));
        assert!(!a.on_ack(seq, "b", coord, addr(2), later), "an ack counts once");
    }

    #[test]
    fn late_acks_and_bad_coordinates_are_ignored() {
        let mut a = Coords::new("a");
        let now = Instant::now();
        let CoordMsg::Ping { seq } = a.probe("b", addr(2), now) else { panic!() };
        let coord = Coords::new("b").coordinate();
        // Another probe after the timeout expires the first ping.
        a.probe("c", addr(3), now + PENDING_TIMEOUT);
        assert!(!a.on_ack(seq, "b", coord.clone(), addr(2), now + PENDING_TIMEOUT));

        let CoordMsg::Ping { seq } = a.probe("b", addr(2), now) else { panic!() };
        let mut bad = coord;
        bad.vec[0] = f64::INFINITY;
        assert!(!a.on_ack(seq, "b", bad, addr(2), now + Duration::from_millis(1)));
        assert!(a.coordinate().is_valid());
        assert_eq!(a.peer("b"), None);
    }

    #[test]
    fn messages_round_trip_through_postcard() {
        let a = Coords::new("a");
        let ack = a.on_ping(7);
        let bytes = postcard::to_allocvec(&ack).expect("encodes");
        assert_eq!(postcard::from_bytes::<CoordMsg>(&bytes).expect("decodes"), ack);
        assert!(postcard::from_bytes::<CoordMsg>(&bytes[..bytes.len() - 3]).is_err(), "truncated");
    }

    #[test]
    fn pending_pings_are_bounded_and_forgotten_with_their_peer() {
        let mut a = Coords::new("a");
        let now = Instant::now();
        for i in 0..(MAX_PENDING as u16 * 2) {
            a.probe("b", addr(i), now);
        }
        assert!(a.pending.len() <= MAX_PENDING);
        a.forget("b");
        assert!(a.pending.is_empty());
    }
}
