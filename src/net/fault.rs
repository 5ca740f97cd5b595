//! Fault injection for multi-node tests. Every node of a test cluster has its own loopback
//! address (127.0.0.x); senders ask [`Faults::verdict`] before each message or connection and
//! drop or delay it. Production code holds a [`Faults`] that never interferes
//! ([`Faults::none`]), so the check costs one uncontended read lock.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rand::RngExt as _;

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it, after this delay (zero for none).
    Deliver(Duration),
    /// Lose it.
    Drop,
}

#[derive(Debug, Default)]
struct Plan {
    /// When set, messages only flow within a group; addresses in no group talk to everyone.
    groups: Vec<HashSet<IpAddr>>,
    /// Fraction of messages lost, 0.0..=1.0.
    drop_rate: f64,
    /// Delay added to every delivered message.
    delay: Duration,
    /// Extra delay of messages from or to an address (a host on a slow link).
    node_delays: HashMap<IpAddr, Duration>,
    /// Addresses cut off from everyone (a killed node's sockets may linger in-process).
    isolated: HashSet<IpAddr>,
    /// Extra delay of messages between two sets of addresses, either way (a WAN link).
    link_delays: Vec<(HashSet<IpAddr>, HashSet<IpAddr>, Duration)>,
    /// Links cut between two sets of addresses, either way.
    cut_links: Vec<(HashSet<IpAddr>, HashSet<IpAddr>)>,
}

/// A shared, adjustable set of network faults.
#[derive(Debug, Default)]
pub struct Faults {
    plan: RwLock<Plan>,
}

impl Faults {
    /// A fault set with nothing injected.
    pub fn none() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Splits the network: messages flow only between addresses of the same group.
    pub fn partition(&self, groups: &[&[IpAddr]]) {
        self.plan.write().groups = groups.iter().map(|g| g.iter().copied().collect()).collect();
    }

    /// Removes partitions, isolation, loss and delay.
    pub fn heal(&self) {
        *self.plan.write() = Plan::default();
    }

    /// Loses each message with probability `rate` (clamped to 0..=1).
    pub fn set_drop_rate(&self, rate: f64) {
        self.plan.write().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Delays every delivered message.
    pub fn set_delay(&self, delay: Duration) {
        self.plan.write().delay = delay;
    }

    /// Delays every message from or to `addr` by `delay` (on top of [`Faults::set_delay`]),
    /// so a round trip to it takes `2 × delay` longer; zero removes the delay.
    pub fn set_node_delay(&self, addr: IpAddr, delay: Duration) {
        let mut p = self.plan.write();
        if delay.is_zero() {
            p.node_delays.remove(&addr);
        } else {
            p.node_delays.insert(addr, delay);
        }
    }

    /// Delays every message between an address of `a` and one of `b` (either way) by `delay`,
    /// replacing an earlier delay between the same sets; zero removes it. Traffic within each
    /// set is untouched: a slow WAN link between two datacenters.
    pub fn set_link_delay(&self, a: &[IpAddr], b: &[IpAddr], delay: Duration) {
        let (a, b): (HashSet<IpAddr>, HashSet<IpAddr>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        let mut p = self.plan.write();
        p.link_delays.retain(|(x, y, _)| !((*x == a && *y == b) || (*x == b && *y == a)));
        if !delay.is_zero() {
            p.link_delays.push((a, b, delay));
        }
    }

    /// Cuts every link between an address of `a` and one of `b` (either way); other links
    /// stay as they are. [`Faults::heal`] restores them.
    pub fn cut_link(&self, a: &[IpAddr], b: &[IpAddr]) {
        self.plan.write().cut_links.push((a.iter().copied().collect(), b.iter().copied().collect()));
    }

    /// Cuts `addr` off from every other address (or reconnects it).
    pub fn isolate(&self, addr: IpAddr, isolated: bool) {
        let mut p = self.plan.write();
        if isolated {
            p.isolated.insert(addr);
        } else {
            p.isolated.remove(&addr);
        }
    }

    /// Whether a message from `from` to `to` is delivered, and after what delay.
    pub fn verdict(&self, from: IpAddr, to: IpAddr) -> Verdict {
        let p = self.plan.read();
        if from == to {
            return Verdict::Deliver(Duration::ZERO);
        }
        if p.isolated.contains(&from) || p.isolated.contains(&to) {
            return Verdict::Drop;
        }
        let group = |a: &IpAddr| p.groups.iter().position(|g| g.contains(a));
        if let (Some(a), Some(b)) = (group(&from), group(&to))
            && a != b
        {
            return Verdict::Drop;
        }
        if p.cut_links
            .iter()
            .any(|(a, b)| (a.contains(&from) && b.contains(&to)) || (b.contains(&from) && a.contains(&to)))
        {
            return Verdict::Drop;
        }
        if p.drop_rate > 0.0 && rand::rng().random::<f64>() < p.drop_rate {
            return Verdict::Drop;
        }
        let node_delay = |a: &IpAddr| p.node_delays.get(a).copied().unwrap_or_default();
        let link: Duration = p
            .link_delays
            .iter()
            .filter(|(a, b, _)| {
                (a.contains(&from) && b.contains(&to)) || (b.contains(&from) && a.contains(&to))
            })
            .map(|(_, _, d)| *d)
            .sum();
        Verdict::Deliver(p.delay + node_delay(&from) + node_delay(&to) + link)
    }

    /// Shorthand: `verdict` is not `Drop`.
    pub fn allows(&self, from: IpAddr, to: IpAddr) -> bool {
        self.verdict(from, to) != Verdict::Drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn partitions_isolation_and_healing() {
        let f = Faults::none();
        let (a, b, c) = (ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3"));
        assert!(f.allows(a, b));
        f.partition(&[&[a], &[b, c]]);
        assert!(!f.allows(a, b) && !f.allows(c, a));
        assert!(f.allows(b, c) && f.allows(a, a));
        f.heal();
        f.isolate(c, true);
        assert!(!f.allows(b, c) && f.allows(a, b));
        f.isolate(c, false);
        assert!(f.allows(b, c));
        f.set_drop_rate(1.0);
        assert!(!f.allows(a, b));
        f.set_drop_rate(0.0);
        f.set_delay(Duration::from_millis(5));
        assert_eq!(f.verdict(a, b), Verdict::Deliver(Duration::from_millis(5)));
        f.set_node_delay(c, Duration::from_millis(7));
        assert_eq!(f.verdict(c, b), Verdict::Deliver(Duration::from_millis(12)));
        assert_eq!(f.verdict(a, b), Verdict::Deliver(Duration::from_millis(5)), "other links unaffected");
        f.set_node_delay(c, Duration::ZERO);
        assert_eq!(f.verdict(b, c), Verdict::Deliver(Duration::from_millis(5)));
    }

    #[test]
    fn link_delays_apply_between_two_sets_only() {
        let f = Faults::none();
        let (a, b, c, d) = (ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4"));
        f.set_link_delay(&[a, b], &[c], Duration::from_millis(20));
        assert_eq!(f.verdict(a, c), Verdict::Deliver(Duration::from_millis(20)));
        assert_eq!(f.verdict(c, b), Verdict::Deliver(Duration::from_millis(20)), "both ways");
        assert_eq!(f.verdict(a, b), Verdict::Deliver(Duration::ZERO), "within a set");
        assert_eq!(f.verdict(a, d), Verdict::Deliver(Duration::ZERO), "other links");
        f.set_link_delay(&[c], &[a, b], Duration::from_millis(30));
        assert_eq!(f.verdict(a, c), Verdict::Deliver(Duration::from_millis(30)), "replaced, not added");
        f.set_link_delay(&[c], &[a, b], Duration::ZERO);
        assert_eq!(f.verdict(a, c), Verdict::Deliver(Duration::ZERO));
        f.cut_link(&[a], &[c]);
        assert!(!f.allows(a, c) && !f.allows(c, a) && f.allows(a, b) && f.allows(b, c));
        f.heal();
        assert!(f.allows(a, c));
    }
}
