//! The foca identity of a member: its gossip address, node name, tags, and the generation and
//! intent that let a restarted, re-tagged, leaving or force-left member replace its previous
//! identity at the same address.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Largest encoded identity. A foca header carries up to three identities (source, destination
/// and an indirect-probe target) and must fit in one datagram.
pub(crate) const MAX_IDENTITY_BYTES: usize = 420;

/// What the identity says about its member's plans. Ordered: at the same generation a later
/// intent replaces an earlier one, which is how `leave` and `force-leave` override an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Intent {
    /// A normal member.
    None,
    /// Leaving gracefully (by itself, or forced by `force-leave`): when down, it is `left`.
    Leave,
    /// Removed by `force-leave -prune`: dropped from every member list.
    Prune,
}

/// One incarnation of a member as foca sees it. Foca keeps one identity per address; a newer
/// identity at the same address (higher `gen`, or same `gen` and later `intent`) replaces it.
/// Fields are append-only: postcard is not self-describing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct NodeIdentity {
    /// The advertised gossip address (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// The node name, unique in the pool.
    pub(crate) name: String,
    /// Generation: milliseconds since the epoch at start, plus one per renewal.
    pub(crate) generation: u64,
    /// Leave and force-leave marks.
    pub(crate) intent: Intent,
    /// Serf-style tags (role, dc, id, port, build, ...).
    pub(crate) tags: BTreeMap<String, String>,
}

impl NodeIdentity {
    /// A fresh identity whose generation beats any earlier run of the same node (clock permitting).
    pub(crate) fn new(addr: SocketAddr, name: String, tags: BTreeMap<String, String>) -> Self {
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2))
            .unwrap_or(1);
        NodeIdentity { addr, name, generation, intent: Intent::None, tags }
    }

    /// The next generation of this identity with other tags or intent.
    pub(crate) fn successor(&self, tags: BTreeMap<String, String>, intent: Intent) -> Self {
        NodeIdentity { generation: self.generation.saturating_add(1), intent, tags, ..self.clone() }
    }

    /// Encoded size in bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        postcard::to_allocvec(self).map(|v| v.len()).unwrap_or(usize::MAX)
    }

    /// The node ID tag, when set.
    pub(crate) fn node_id(&self) -> Option<&str> {
        self.tags.get("id").map(String::as_str).filter(|s| !s.is_empty())
    }

    fn rank(&self, other: &Self) -> Ordering {
        (self.generation, self.intent)
            .cmp(&(other.generation, other.intent))
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| self.tags.cmp(&other.tags))
    }
}

impl foca::Identity for NodeIdentity {
    type Addr = SocketAddr;

    /// Declared down while alive (a false failure, or a partition that healed): come back as
    /// the next generation. A leaving or force-left identity stays down.
    fn renew(&self) -> Option<Self> {
        (self.intent == Intent::None).then(|| self.successor(self.tags.clone(), Intent::None))
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.rank(adversary) == Ordering::Greater
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity as _;

    use super::*;

    fn id(generation: u64, intent: Intent) -> NodeIdentity {
        let addr = "127.0.0.1:8301".parse().expect("addr");
        NodeIdentity { addr, name: "a".into(), generation, intent, tags: BTreeMap::new() }
    }

    #[test]
    fn newer_generation_and_later_intent_win() {
        assert!(id(2, Intent::None).win_addr_conflict(&id(1, Intent::Prune)));
        assert!(id(1, Intent::Leave).win_addr_conflict(&id(1, Intent::None)));
        assert!(id(1, Intent::Prune).win_addr_conflict(&id(1, Intent::Leave)));
        assert!(!id(1, Intent::None).win_addr_conflict(&id(1, Intent::Leave)));
        let renewed = id(1, Intent::None).renew().expect("renews");
        assert!(renewed.win_addr_conflict(&id(1, Intent::Prune)));
    }

    #[test]
    fn leaving_identities_do_not_renew() {
        assert!(id(5, Intent::Leave).renew().is_none());
        assert!(id(5, Intent::Prune).renew().is_none());
    }
}
