//! Gossip timers (Consul's `gossip_lan` / `gossip_wan` knobs) and the failure-detection
//! arithmetic derived from them.
//!
//! # Failure detection
//!
//! Every member probes one other member per `probe_interval` (round robin over a shuffled
//! list). A probe that gets no ack within `probe_timeout`, directly or through
//! `indirect_checks` helpers, makes the prober mark the target *suspect* at its next probe
//! tick. Unless the target refutes within the suspicion timeout
//!
//! ```text
//! suspicion_timeout(n) = suspicion_mult × max(1, log10(n)) × probe_interval
//! ```
//!
//! (memberlist's formula, `n` = live members including this one), the prober declares it
//! failed and gossips that to `gossip_nodes` members every `gossip_interval`. So a crashed
//! member is reported failed everywhere after
//!
//! ```text
//! detection ≈ first probe      + probe_interval + suspicion_timeout(n) + dissemination
//!             (0..probe_interval)  (suspect at       (4 s LAN, n ≤ 10)   (a few
//!                                   the next tick)                         gossip_interval)
//! ```
//!
//! [`Timing::detection_bound`] adds margins to that for tests. Measured in-process on
//! 127.0.0.x with [`Timing::lan`] (7 crashes each, `measure_failure_detection` in
//! `gossip/tests.rs`), time until every survivor lists the member as failed:
//!
//! | members | suspicion timeout | median | min-max |
//! |---|---|---|---|
//! | 3 | 4 s | 6.0 s | 5.8-7.0 s |
//! | 10 | 4 s | 6.0 s | 5.2-7.0 s |
//! | 50 | 6.8 s | 9.3 s | 8.5-10.5 s |
//!
//! [`Timing::fast`] (everything ÷10) gives 0.59 s, 0.67 s and 1.04 s. Lifeguard's adaptive
//! suspicion (shorter with more confirmations, longer under local CPU starvation) is not
//! implemented: the timeout is always memberlist's minimum.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use super::wire;

/// Gossip protocol timers.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// How often each member probes another one.
    pub probe_interval: Duration,
    /// How long a direct probe waits for an ack before asking helpers.
    pub probe_timeout: Duration,
    /// How often pending updates are gossiped.
    pub gossip_interval: Duration,
    /// How many members each gossip round targets.
    pub gossip_nodes: usize,
    /// How many members are asked to probe indirectly.
    pub indirect_checks: usize,
    /// Multiplier of the suspicion timeout (see the module docs).
    pub suspicion_mult: u32,
    /// Each update is retransmitted `retransmit_mult × ceil(log10(n + 1))` times.
    pub retransmit_mult: u32,
    /// How often full state is exchanged with a random live member over TCP.
    pub push_pull_interval: Duration,
    /// How often a failed member is contacted to heal partitions (Consul's reconnect_interval).
    pub reconnect_interval: Duration,
    /// Deadline of one TCP state exchange (connect, send, receive).
    pub tcp_timeout: Duration,
}

impl Timing {
    /// Consul's LAN defaults (memberlist `DefaultLANConfig`).
    pub fn lan() -> Self {
        Timing {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            indirect_checks: 3,
            suspicion_mult: 4,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(30),
            tcp_timeout: Duration::from_secs(10),
        }
    }

    /// Consul's WAN defaults (memberlist `DefaultWANConfig`).
    pub fn wan() -> Self {
        Timing {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            suspicion_mult: 6,
            push_pull_interval: Duration::from_secs(60),
            tcp_timeout: Duration::from_secs(30),
            ..Timing::lan()
        }
    }

    /// LAN timing scaled down 10× (probe every 100 ms) for in-process tests.
    pub fn fast() -> Self {
        Timing {
            probe_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_millis(50),
            gossip_interval: Duration::from_millis(20),
            push_pull_interval: Duration::from_secs(3),
            reconnect_interval: Duration::from_millis(300),
            tcp_timeout: Duration::from_secs(3),
            ..Timing::lan()
        }
    }

    /// The suspicion timeout with `members` live members (this one included).
    pub fn suspicion_timeout(&self, members: usize) -> Duration {
        let scale = (members.max(1) as f64).log10().max(1.0);
        self.probe_interval.mul_f64(scale * f64::from(self.suspicion_mult))
    }

    /// How many times each update is sent with `members` live members.
    pub fn retransmit_limit(&self, members: usize) -> u8 {
        let rounds = ((members as f64) + 1.0).log10().ceil().max(1.0);
        (rounds * f64::from(self.retransmit_mult)).clamp(1.0, 255.0) as u8
    }

    /// A generous bound on the time for every live member to mark a crashed one failed:
    /// two probe rounds, the suspicion timeout, and ten gossip rounds (tests poll against it).
    pub fn detection_bound(&self, members: usize) -> Duration {
        self.probe_interval * 3 + self.suspicion_timeout(members) + self.gossip_interval * 10
    }

    /// The foca configuration for a pool of `members` live members.
    pub(crate) fn foca_config(&self, members: usize, remove_down_after: Duration) -> foca::Config {
        let one = NonZeroUsize::MIN;
        let mut c = foca::Config::simple();
        c.probe_period = self.probe_interval;
        c.probe_rtt = self.probe_timeout;
        c.num_indirect_probes = NonZeroUsize::new(self.indirect_checks).unwrap_or(one);
        c.max_transmissions = NonZeroU8::new(self.retransmit_limit(members)).unwrap_or(NonZeroU8::MIN);
        c.suspect_to_down_after = self.suspicion_timeout(members);
        c.remove_down_after = Some(remove_down_after);
        c.max_packet_size = NonZeroUsize::new(wire::MAX_FOCA_PACKET).unwrap_or(one);
        c.notify_down_members = true;
        c.periodic_gossip = Some(foca::PeriodicParams {
            frequency: self.gossip_interval,
            num_members: NonZeroUsize::new(self.gossip_nodes).unwrap_or(one),
        });
        c.periodic_announce_to_down_members =
            Some(foca::PeriodicParams { frequency: self.reconnect_interval, num_members: one });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicion_and_retransmits_follow_memberlist() {
        let lan = Timing::lan();
        assert_eq!(lan.suspicion_timeout(3), Duration::from_secs(4));
        assert_eq!(lan.suspicion_timeout(10), Duration::from_secs(4));
        assert_eq!(lan.suspicion_timeout(100), Duration::from_secs(8));
        assert_eq!(lan.suspicion_timeout(50).as_millis(), 6795);
        assert_eq!(Timing::wan().suspicion_timeout(15).as_millis(), 35282);
        assert_eq!(lan.retransmit_limit(3), 4);
        assert_eq!(lan.retransmit_limit(10), 8);
        assert_eq!(lan.retransmit_limit(1000), 16);
    }

    #[test]
    fn foca_config_carries_the_timers() {
        let c = Timing::fast().foca_config(10, Duration::from_secs(5));
        assert_eq!(c.probe_period, Duration::from_millis(100));
        assert_eq!(c.suspect_to_down_after, Duration::from_millis(400));
        assert_eq!(c.max_transmissions.get(), 8);
        assert!(c.max_packet_size.get() <= 1400);
    }
}
