//! The member list as Consul shows it, built from foca's notifications. Pure: it takes
//! identities and `now`, and returns the events to publish.
//!
//! Foca tracks one identity per *address* and knows only alive, suspect and down. This view
//! tracks members by *name*: it picks which address owns a name (a live one first, so a node
//! that comes back on a new address takes over its failed entry), maps down identities to
//! `failed` or `left` through their intent, reports name and node-ID conflicts, and reaps
//! failed and left members after `reconnect_timeout`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::identity::{Intent, NodeIdentity};
use super::{Conflict, ConflictKind, Member, MemberEvent, MemberStatus};

#[derive(Debug)]
struct Peer {
    id: NodeIdentity,
    active: bool,
    /// When it last went up or down.
    since: Instant,
    /// First-seen order, to prefer the older of two live members claiming a name.
    seq: u64,
}

impl Peer {
    fn member(&self) -> Option<Member> {
        let status = match (self.active, self.id.intent) {
            (_, Intent::Prune) => return None,
            (true, Intent::None) => MemberStatus::Alive,
            (true, Intent::Leave) => MemberStatus::Leaving,
            (false, Intent::None) => MemberStatus::Failed,
            (false, Intent::Leave) => MemberStatus::Left,
        };
        Some(member_of(&self.id, status))
    }
}

fn member_of(id: &NodeIdentity, status: MemberStatus) -> Member {
    Member { name: id.name.clone(), addr: id.addr.ip(), port: id.addr.port(), tags: id.tags.clone(), status }
}

fn name_conflict(name: &str, existing: SocketAddr, other: SocketAddr) -> String {
    format!(
        "Node name conflicts with another node at {existing}. Names must be unique! \
         (node {name} at {other} was refused)"
    )
}

fn id_conflict(a: &NodeIdentity, b: &NodeIdentity, node_id: &str) -> String {
    format!(
        "Member '{}' at {} has conflicting node ID '{node_id}' with member '{}' at {}",
        a.name, a.addr, b.name, b.addr
    )
}

/// The member list of one gossip pool.
#[derive(Debug)]
pub(crate) struct View {
    local: NodeIdentity,
    local_status: MemberStatus,
    peers: HashMap<SocketAddr, Peer>,
    by_name: HashMap<String, Vec<SocketAddr>>,
    owners: HashMap<String, SocketAddr>,
    /// What subscribers were last told, by name (the local node excluded).
    published: BTreeMap<String, Member>,
    /// Reaped identities, so stale full-state syncs do not bring them back.
    reaped: HashMap<SocketAddr, (u64, Instant)>,
    reported: HashSet<(ConflictKind, SocketAddr, SocketAddr)>,
    reconnect_timeout: Duration,
    next_seq: u64,
    /// Serf's member Lamport time, here a count of membership changes.
    pub(crate) member_time: u64,
}

impl View {
    pub(crate) fn new(local: NodeIdentity, reconnect_timeout: Duration) -> Self {
        View {
            local,
            local_status: MemberStatus::Alive,
            peers: HashMap::new(),
            by_name: HashMap::new(),
            owners: HashMap::new(),
            published: BTreeMap::new(),
            reaped: HashMap::new(),
            reported: HashSet::new(),
            reconnect_timeout,
            next_seq: 0,
            member_time: 1,
        }
    }

    pub(crate) fn local(&self) -> &NodeIdentity {
        &self.local
    }

    pub(crate) fn set_local(&mut self, id: NodeIdentity) {
        self.local = id;
    }

    pub(crate) fn local_status(&self) -> MemberStatus {
        self.local_status
    }

    pub(crate) fn set_local_status(&mut self, status: MemberStatus) {
        self.local_status = status;
    }

    /// Foca saw `id` come up.
    pub(crate) fn up(&mut self, id: &NodeIdentity, now: Instant) -> Vec<MemberEvent> {
        self.reaped.remove(&id.addr);
        self.set(id, Some(true), now)
    }

    /// Foca declared `id` down.
    pub(crate) fn down(&mut self, id: &NodeIdentity, now: Instant) -> Vec<MemberEvent> {
        match self.peers.get(&id.addr) {
            Some(p) if p.id != *id => Vec::new(),
            _ => self.set(id, Some(false), now),
        }
    }

    /// Foca replaced `old` by `new` at the same address; liveness changes follow separately.
    pub(crate) fn rename(
        &mut self,
        old: &NodeIdentity,
        new: &NodeIdentity,
        now: Instant,
    ) -> Vec<MemberEvent> {
        if !self.peers.contains_key(&old.addr) {
            return Vec::new();
        }
        self.set(new, None, now)
    }

    /// A down identity learned from a full-state sync (foca does not notify those).
    pub(crate) fn learn_down(&mut self, id: &NodeIdentity, now: Instant) -> Vec<MemberEvent> {
        let stale = self.reaped.get(&id.addr).is_some_and(|(g, _)| *g >= id.generation);
        if id.intent == Intent::Prune || stale || self.peers.contains_key(&id.addr) {
            return Vec::new();
        }
        self.set(id, Some(false), now)
    }

    /// Removes failed and left members older than `reconnect_timeout`.
    pub(crate) fn reap(&mut self, now: Instant) -> Vec<MemberEvent> {
        let timeout = self.reconnect_timeout;
        self.reaped.retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
        let expired: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| !p.active && now.saturating_duration_since(p.since) >= timeout)
            .map(|p| p.id.addr)
            .collect();
        let mut events = Vec::new();
        for addr in expired {
            let Some(peer) = self.peers.remove(&addr) else { continue };
            self.unindex(&peer.id.name, addr);
            self.reaped.insert(addr, (peer.id.generation, now));
            self.reported.retain(|(_, a, b)| *a != addr && *b != addr);
            self.recompute(&peer.id.name, &mut events);
        }
        events
    }

    fn set(&mut self, id: &NodeIdentity, active: Option<bool>, now: Instant) -> Vec<MemberEvent> {
        let mut events = Vec::new();
        if id.addr == self.local.addr {
            return events;
        }
        let mut renamed_from = None;
        match self.peers.get_mut(&id.addr) {
            Some(peer) => {
                if peer.id.name != id.name {
                    renamed_from = Some(peer.id.name.clone());
                }
                peer.id = id.clone();
                if let Some(active) = active.filter(|a| *a != peer.active) {
                    peer.active = active;
                    peer.since = now;
                }
            }
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let active = active.unwrap_or(false);
                self.peers.insert(id.addr, Peer { id: id.clone(), active, since: now, seq });
            }
        }
        if let Some(old) = &renamed_from {
            self.unindex(old, id.addr);
        }
        let addrs = self.by_name.entry(id.name.clone()).or_default();
        if !addrs.contains(&id.addr) {
            addrs.push(id.addr);
        }
        self.recompute(&id.name, &mut events);
        if let Some(old) = renamed_from {
            self.recompute(&old, &mut events);
        }
        events
    }

    fn unindex(&mut self, name: &str, addr: SocketAddr) {
        if let Some(addrs) = self.by_name.get_mut(name) {
            addrs.retain(|a| *a != addr);
            if addrs.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    fn candidates(&self, name: &str) -> impl Iterator<Item = &Peer> {
        let addrs = self.by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        addrs.iter().filter_map(|a| self.peers.get(a))
    }

    fn pick_owner(&self, name: &str) -> Option<SocketAddr> {
        let current = self.owners.get(name).and_then(|a| self.peers.get(a));
        if let Some(p) = current.filter(|p| p.active && p.id.name == name) {
            return Some(p.id.addr);
        }
        let live = self.candidates(name).filter(|p| p.active).min_by_key(|p| p.seq);
        if let Some(p) = live {
            return Some(p.id.addr);
        }
        match current.filter(|p| p.id.name == name) {
            Some(p) => Some(p.id.addr),
            None => self.candidates(name).max_by_key(|p| p.since).map(|p| p.id.addr),
        }
    }

    fn recompute(&mut self, name: &str, events: &mut Vec<MemberEvent>) {
        if name == self.local.name {
            let live: Vec<NodeIdentity> =
                self.candidates(name).filter(|p| p.active).map(|p| p.id.clone()).collect();
            let local = self.local_member();
            for other in live {
                let message = name_conflict(name, self.local.addr, other.addr);
                self.report(ConflictKind::Name, &local, &other, message, events);
            }
            return;
        }
        let owner = self.pick_owner(name);
        let current = owner.and_then(|a| self.peers.get(&a)).and_then(Peer::member);
        match owner {
            Some(a) => self.owners.insert(name.to_owned(), a),
            None => self.owners.remove(name),
        };
        let previous = self.published.get(name).cloned();
        let event = diff(previous.as_ref(), current.as_ref());
        match current {
            Some(m) => self.published.insert(name.to_owned(), m),
            None => self.published.remove(name),
        };
        if let Some(event) = event {
            self.member_time += 1;
            let joined = matches!(event, MemberEvent::Join(_) | MemberEvent::Update(_));
            events.push(event);
            if let (true, Some(a)) = (joined, owner) {
                self.check_node_id(a, events);
            }
        }
        self.check_name(name, owner, events);
    }

    /// Reports live members that claim a name owned by another live member.
    fn check_name(&mut self, name: &str, owner: Option<SocketAddr>, events: &mut Vec<MemberEvent>) {
        let Some(owner) = owner.and_then(|a| self.peers.get(&a)).filter(|p| p.active) else {
            return;
        };
        let Some(existing) = owner.member() else { return };
        let owner_addr = owner.id.addr;
        let others: Vec<NodeIdentity> = self
            .candidates(name)
            .filter(|p| p.active && p.id.addr != owner_addr)
            .map(|p| p.id.clone())
            .collect();
        for other in others {
            let message = name_conflict(name, owner_addr, other.addr);
            self.report(ConflictKind::Name, &existing, &other, message, events);
        }
    }

    fn check_node_id(&mut self, addr: SocketAddr, events: &mut Vec<MemberEvent>) {
        let Some(peer) = self.peers.get(&addr) else { return };
        let Some(node_id) = peer.id.node_id() else { return };
        let id = peer.id.clone();
        let mut clashes = Vec::new();
        if self.local.node_id() == Some(node_id) && self.local.name != id.name {
            clashes.push(self.local.clone());
        }
        for (name, m) in &self.published {
            let live = matches!(m.status, MemberStatus::Alive | MemberStatus::Leaving);
            let same_id = m.tags.get("id").map(String::as_str) == Some(node_id);
            if live && same_id && *name != id.name {
                let owner = self.owners.get(name).and_then(|a| self.peers.get(a));
                clashes.extend(owner.map(|p| p.id.clone()));
            }
        }
        let node_id = node_id.to_owned();
        for existing in clashes {
            let message = id_conflict(&id, &existing, &node_id);
            let status = if existing == self.local { self.local_status } else { MemberStatus::Alive };
            let existing = member_of(&existing, status);
            self.report(ConflictKind::NodeId, &existing, &id, message, events);
        }
    }

    fn report(
        &mut self,
        kind: ConflictKind,
        existing: &Member,
        other: &NodeIdentity,
        message: String,
        events: &mut Vec<MemberEvent>,
    ) {
        let a = SocketAddr::new(existing.addr, existing.port);
        let key = if a <= other.addr { (kind, a, other.addr) } else { (kind, other.addr, a) };
        if self.reported.insert(key) {
            tracing::error!("{message}");
            let other = member_of(other, MemberStatus::Alive);
            events.push(MemberEvent::Conflict(Conflict { kind, existing: existing.clone(), other, message }));
        }
    }

    fn local_member(&self) -> Member {
        member_of(&self.local, self.local_status)
    }

    /// Every member, this node included, sorted by name.
    pub(crate) fn members(&self) -> Vec<Member> {
        let mut all: Vec<Member> = self.published.values().cloned().collect();
        let local = self.local_member();
        let at = all.partition_point(|m| m.name < local.name);
        all.insert(at, local);
        all
    }

    /// The current identity of the member called `name` (not the local node).
    pub(crate) fn identity_of(&self, name: &str) -> Option<&NodeIdentity> {
        let addr = self.owners.get(name)?;
        self.published.get(name)?;
        self.peers.get(addr).map(|p| &p.id)
    }

    /// Members foca considers live, this node included (sizes the timers).
    pub(crate) fn live_count(&self) -> usize {
        1 + self.peers.values().filter(|p| p.active).count()
    }

    /// Addresses of live peers, and of failed ones (for reconnect attempts).
    pub(crate) fn addrs(&self, status: MemberStatus) -> Vec<SocketAddr> {
        self.published
            .iter()
            .filter(|(_, m)| m.status == status)
            .filter_map(|(name, _)| self.owners.get(name).copied())
            .collect()
    }

    /// `(members, failed, left)` counts, this node included.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let count = |s| self.published.values().filter(|m| m.status == s).count();
        (self.published.len() + 1, count(MemberStatus::Failed), count(MemberStatus::Left))
    }

    /// Refuses a joiner whose name or node ID is already taken by a live member.
    pub(crate) fn check_joiner(&self, from: &NodeIdentity) -> Result<(), String> {
        if from.addr == self.local.addr {
            return Ok(());
        }
        if from.name == self.local.name {
            return Err(name_conflict(&from.name, self.local.addr, from.addr));
        }
        let owner = self.owners.get(&from.name).and_then(|a| self.peers.get(a));
        if let Some(owner) = owner.filter(|p| p.active && p.id.addr != from.addr) {
            return Err(name_conflict(&from.name, owner.id.addr, from.addr));
        }
        let Some(node_id) = from.node_id() else { return Ok(()) };
        if self.local.node_id() == Some(node_id) {
            return Err(id_conflict(from, &self.local, node_id));
        }
        let clash = self.published.iter().find(|(name, m)| {
            m.status == MemberStatus::Alive
                && **name != from.name
                && m.tags.get("id").map(String::as_str) == Some(node_id)
        });
        match clash.and_then(|(name, _)| self.identity_of(name)) {
            Some(existing) => Err(id_conflict(from, existing, node_id)),
            None => Ok(()),
        }
    }

    /// Refuses to merge a cluster's state in which our name or node ID is taken.
    pub(crate) fn check_state(&self, members: &[foca::Member<NodeIdentity>]) -> Result<(), String> {
        let live = members.iter().filter(|m| m.state() != foca::State::Down).map(|m| m.id());
        for id in live.filter(|id| id.addr != self.local.addr) {
            if id.name == self.local.name {
                return Err(name_conflict(&id.name, id.addr, self.local.addr));
            }
            if let Some(node_id) = id.node_id().filter(|n| self.local.node_id() == Some(*n)) {
                return Err(id_conflict(&self.local, id, node_id));
            }
        }
        Ok(())
    }
}

fn diff(old: Option<&Member>, new: Option<&Member>) -> Option<MemberEvent> {
    let live = |m: &Member| matches!(m.status, MemberStatus::Alive | MemberStatus::Leaving);
    match (old, new) {
        (None, None) => None,
        (Some(o), None) => Some(MemberEvent::Reap(o.clone())),
        (Some(o), Some(n)) if live(o) && live(n) => {
            let changed = o.addr != n.addr || o.port != n.port || o.tags != n.tags;
            changed.then(|| MemberEvent::Update(n.clone()))
        }
        (_, Some(n)) if live(n) => Some(MemberEvent::Join(n.clone())),
        (Some(o), Some(n)) if o.status == n.status => None,
        (_, Some(n)) => match n.status {
            MemberStatus::Left => Some(MemberEvent::Leave(n.clone())),
            _ => Some(MemberEvent::Failed(n.clone())),
        },
    }
}

#[cfg(test)]
mod tests;
