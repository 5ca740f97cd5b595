//! The task that owns the foca state machine. Everything that touches foca happens here, one
//! event at a time: a datagram, a due timer, a command from the API or the TCP listener, or a
//! housekeeping tick. After each, the accumulated sends, timers and notifications are drained:
//! datagrams go out through the fault plan, timers enter a heap, notifications update the
//! [`View`] and become [`MemberEvent`]s.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::RngExt as _;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::coord::CoordMsg;
use super::identity::{Intent, NodeIdentity};
use super::user_event::{self, UserEvent};
use super::wire::{self, FrameError, PushPull, StreamMsg};
use super::{MemberEvent, MemberStatus, Shared, stream};
use crate::net::fault::Verdict;

type Core = Foca<NodeIdentity, PostcardCodec, StdRng, NoCustomBroadcast>;
type Member = foca::Member<NodeIdentity>;

/// Requests from the API and the TCP listener.
pub(crate) enum Command {
    /// Our full state, to send in a push-pull.
    State { join: bool, reply: oneshot::Sender<PushPull> },
    /// A peer's push-pull request; the reply is our state or a refusal.
    Incoming { msg: PushPull, reply: oneshot::Sender<StreamMsg> },
    /// The state a peer answered to our push-pull (checked for conflicts when joining).
    Remote { msg: PushPull, join: bool, reply: Option<oneshot::Sender<Result<(), String>>> },
    /// Leave gracefully; the reply says whether the leave was disseminated before `deadline`.
    Leave { deadline: Instant, reply: oneshot::Sender<bool> },
    /// Mark a member left (or remove it) cluster-wide.
    ForceLeave { name: String, prune: bool },
    /// Re-announce ourselves with new tags.
    SetTags(BTreeMap<String, String>),
}

struct Scheduled {
    at: Instant,
    seq: u64,
    timer: Timer<NodeIdentity>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Leaving {
    deadline: Instant,
    reply: Option<oneshot::Sender<bool>>,
    /// Gossip rounds still needed: the newest update goes first, so after this many rounds the
    /// leave was sent its quota of times even if other updates keep the backlog busy.
    rounds_left: usize,
}

pub(crate) struct Driver {
    foca: Core,
    rt: AccumulatingRuntime<NodeIdentity>,
    timers: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    cmds: mpsc::UnboundedReceiver<Command>,
    cmd_tx: mpsc::UnboundedSender<Command>,
    leaving: Option<Leaving>,
    reconnect_timeout: Duration,
    sized_for: usize,
    last_reap: Instant,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: Arc<UdpSocket>,
        cmds: mpsc::UnboundedReceiver<Command>,
        cmd_tx: mpsc::UnboundedSender<Command>,
        reconnect_timeout: Duration,
    ) -> Self {
        let identity = shared.view.lock().local().clone();
        let config = shared.timing.foca_config(1, reconnect_timeout);
        let foca = Foca::new(identity, config, rand::make_rng(), PostcardCodec);
        Driver {
            foca,
            rt: AccumulatingRuntime::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            shared,
            socket,
            cmds,
            cmd_tx,
            leaving: None,
            reconnect_timeout,
            sized_for: 1,
            last_reap: Instant::now(),
        }
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let timing = self.shared.timing.clone();
        let mut buf = vec![0u8; 64 * 1024];
        let mut tick = tokio::time::interval(timing.gossip_interval);
        let mut coord_tick = tokio::time::interval(timing.probe_interval);
        coord_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconnect =
            tokio::time::interval_at(Instant::now() + timing.reconnect_interval, timing.reconnect_interval);
        for t in [&mut tick, &mut reconnect] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let mut next_push_pull = Instant::now() + timing.push_pull_interval;
        loop {
            let next_timer = self.timers.peek().map(|s| s.0.at);
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from),
                    Err(e) => tracing::debug!("gossip: udp receive failed: {e}"),
                },
                Some(cmd) = self.cmds.recv() => self.on_command(cmd),
                _ = sleep_until(next_timer), if next_timer.is_some() => self.fire_timers(),
                _ = tick.tick() => self.housekeeping(),
                _ = coord_tick.tick() => self.probe_coordinate(),
                _ = tokio::time::sleep_until(next_push_pull) => {
                    self.push_pull(MemberStatus::Alive);
                    let live = self.shared.view.lock().live_count();
                    next_push_pull = Instant::now() + push_pull_scale(timing.push_pull_interval, live);
                }
                _ = reconnect.tick() => self.push_pull(MemberStatus::Failed),
            }
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        let c = &self.shared.counters;
        c.received.fetch_add(1, Relaxed);
        if data.len() > wire::MAX_DATAGRAM {
            c.oversized.fetch_add(1, Relaxed);
            return;
        }
        let opened = wire::open(&self.shared.keyring.read(), data);
        let payload = match opened {
            Ok(p) => match p.split_first() {
                Some((&wire::CHANNEL_FOCA, body)) => body.to_vec(),
                Some((&wire::CHANNEL_COORD, body)) => return self.on_coord(body, from),
                Some((&wire::CHANNEL_EVENT, body)) => return self.on_user_events(body),
                _ => {
                    c.malformed.fetch_add(1, Relaxed);
                    return;
                }
            },
            Err(FrameError::Malformed) => {
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
            Err(e) => {
                c.undecryptable.fetch_add(1, Relaxed);
                tracing::debug!("gossip: dropped a datagram from {from}: {}", e.reason());
                return;
            }
        };
        if let Err(e) = self.foca.handle_data(&payload, &mut self.rt) {
            match e {
                foca::Error::Decode(_) | foca::Error::MalformedPacket | foca::Error::DataTooBig => {
                    c.malformed.fetch_add(1, Relaxed);
                }
                _ => {}
            }
            tracing::trace!("gossip: datagram from {from} not handled: {e}");
        }
        self.drain();
    }

    fn on_coord(&mut self, body: &[u8], from: SocketAddr) {
        let Ok(msg) = postcard::from_bytes::<CoordMsg>(body) else {
            self.shared.counters.malformed.fetch_add(1, Relaxed);
            return;
        };
        match msg {
            CoordMsg::Ping { seq } => {
                let ack = self.shared.coords.lock().on_ping(seq);
                self.send_coord(from, &ack);
            }
            CoordMsg::Ack { seq, name, coord } => {
                let now = std::time::Instant::now();
                self.shared.coords.lock().on_ack(seq, &name, coord.into(), from, now);
            }
        }
    }

    /// Folds in received user events and publishes the new ones.
    fn on_user_events(&mut self, body: &[u8]) {
        let Some(events) = user_event::decode(body) else {
            self.shared.counters.malformed.fetch_add(1, Relaxed);
            return;
        };
        self.fold_user_events(events);
    }

    /// Delivers and queues for rebroadcast the events not seen before (from a datagram or a
    /// push-pull).
    fn fold_user_events(&mut self, events: Vec<UserEvent>) {
        let sends = self.user_event_sends();
        for event in events.into_iter().filter(UserEvent::fits) {
            if self.shared.user_events.lock().receive(event.clone(), sends) {
                let _ = self.shared.user_tx.send(event);
            }
        }
    }

    fn user_event_sends(&self) -> u32 {
        let live = self.shared.view.lock().live_count();
        u32::from(self.shared.timing.retransmit_limit(live))
    }

    /// Sends queued user events to up to `gossip_nodes` random live members (each gossip tick).
    fn gossip_user_events(&mut self) {
        if self.shared.user_events.lock().queued() == 0 {
            return;
        }
        let mut peers = self.shared.view.lock().addrs(MemberStatus::Alive);
        let mut rng = rand::rng();
        for _ in 0..self.shared.timing.gossip_nodes.min(peers.len()) {
            let to = peers.swap_remove(rng.random_range(0..peers.len()));
            let Some(body) = self.shared.user_events.lock().next_packet(wire::MAX_FOCA_PACKET) else { break };
            self.send(to, wire::CHANNEL_EVENT, &body);
        }
    }

    /// Pings one random live member for its coordinate (each probe interval).
    fn probe_coordinate(&mut self) {
        let peers: Vec<(String, SocketAddr)> = {
            let view = self.shared.view.lock();
            if view.local_status() != MemberStatus::Alive {
                return;
            }
            let me = view.local().name.clone();
            view.members()
                .into_iter()
                .filter(|m| m.status == MemberStatus::Alive && m.name != me)
                .map(|m| (m.name, SocketAddr::new(m.addr, m.port)))
                .collect()
        };
        if peers.is_empty() {
            return;
        }
        let (name, addr) = &peers[rand::rng().random_range(0..peers.len())];
        let ping = self.shared.coords.lock().probe(name, *addr, std::time::Instant::now());
        self.send_coord(*addr, &ping);
    }

    fn send_coord(&self, to: SocketAddr, msg: &CoordMsg) {
        match postcard::to_allocvec(msg) {
            Ok(body) => self.send(to, wire::CHANNEL_COORD, &body),
            Err(e) => tracing::debug!("gossip: encoding a coordinate message: {e}"),
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|s| s.0.at <= now) {
            let Some(Reverse(due)) = self.timers.pop() else { break };
            if let Err(e) = self.foca.handle_timer(due.timer, &mut self.rt) {
                tracing::trace!("gossip: timer: {e}");
            }
            self.drain();
        }
    }

    /// Sends, schedules and publishes what foca asked for.
    fn drain(&mut self) {
        while let Some((to, data)) = self.rt.to_send() {
            self.send(to.addr, wire::CHANNEL_FOCA, &data);
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.seq += 1;
            let at = Instant::now() + after;
            self.timers.push(Reverse(Scheduled { at, seq: self.seq, timer }));
        }
        while let Some(n) = self.rt.to_notify() {
            self.on_notification(n);
        }
        let live = self.shared.view.lock().live_count();
        if live != self.sized_for {
            self.sized_for = live;
            let config = self.shared.timing.foca_config(live, self.reconnect_timeout);
            if let Err(e) = self.foca.set_config(config) {
                tracing::debug!("gossip: resizing timers: {e}");
            }
        }
    }

    fn send(&self, to: SocketAddr, channel: u8, body: &[u8]) {
        let mut payload = Vec::with_capacity(body.len() + 1);
        payload.push(channel);
        payload.extend_from_slice(body);
        let frame = wire::seal(&self.shared.keyring.read(), &payload);
        let c = &self.shared.counters;
        match self.shared.faults.verdict(self.shared.advertise.ip(), to.ip()) {
            Verdict::Drop => {
                c.faulted.fetch_add(1, Relaxed);
            }
            Verdict::Deliver(delay) if delay.is_zero() => {
                c.sent.fetch_add(1, Relaxed);
                match self.socket.try_send_to(&frame, to) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let socket = self.socket.clone();
                        tokio::spawn(async move { socket.send_to(&frame, to).await });
                    }
                    Err(e) => tracing::debug!("gossip: udp send to {to} failed: {e}"),
                }
            }
            Verdict::Deliver(delay) => {
                c.sent.fetch_add(1, Relaxed);
                let socket = self.socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    socket.send_to(&frame, to).await
                });
            }
        }
    }

    fn on_notification(&mut self, n: OwnedNotification<NodeIdentity>) {
        let now = std::time::Instant::now();
        let events = {
            let mut view = self.shared.view.lock();
            match n {
                OwnedNotification::MemberUp(id) => view.up(&id, now),
                OwnedNotification::MemberDown(id) => view.down(&id, now),
                OwnedNotification::Rename(old, new) => view.rename(&old, &new, now),
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(
                        "gossip: this node was declared failed; rejoining as generation {}",
                        id.generation
                    );
                    view.set_local(id);
                    Vec::new()
                }
                OwnedNotification::Defunct => {
                    if view.local_status() == MemberStatus::Alive {
                        tracing::warn!("gossip: this node was declared down and cannot rejoin");
                    }
                    Vec::new()
                }
                OwnedNotification::Active | OwnedNotification::Idle => Vec::new(),
            }
        };
        self.shared.publish(events);
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::State { join, reply } => {
                let _ = reply.send(self.state(join));
            }
            Command::Incoming { msg, reply } => {
                let refused =
                    if msg.join { self.shared.view.lock().check_joiner(&msg.from).err() } else { None };
                if let Some(reason) = refused {
                    tracing::error!("gossip: refused a join from {}: {reason}", msg.from.addr);
                    let _ = reply.send(StreamMsg::Refuse(reason));
                    return;
                }
                let _ = reply.send(StreamMsg::PushPull(self.state(false)));
                self.merge(msg.members);
                self.fold_user_events(msg.events);
            }
            Command::Remote { msg, join, reply } => {
                let checked = if join { self.shared.view.lock().check_state(&msg.members) } else { Ok(()) };
                if checked.is_ok() {
                    self.merge(msg.members);
                    if join {
                        self.shared.user_events.lock().joined_at(msg.event_time);
                    }
                    self.fold_user_events(msg.events);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(checked);
                }
            }
            Command::Leave { deadline, reply } => self.start_leave(deadline, reply),
            Command::ForceLeave { name, prune } => self.force_leave(&name, prune),
            Command::SetTags(tags) => self.set_tags(tags),
        }
    }

    /// Our identity plus every member foca knows, for a push-pull.
    fn state(&self, join: bool) -> PushPull {
        let me = self.foca.identity().clone();
        let alive = self.shared.view.lock().local_status() == MemberStatus::Alive;
        let state = if alive { foca::State::Alive } else { foca::State::Down };
        let mut members = Vec::with_capacity(self.foca.iter_membership_state().len() + 1);
        members.push(Member::new(me.clone(), 0, state));
        members.extend(self.foca.iter_membership_state().cloned());
        let (event_time, events) = {
            let u = self.shared.user_events.lock();
            (u.time(), u.recent())
        };
        PushPull { join, from: me, members, event_time, events }
    }

    /// Applies a peer's full state; learns the failed and left members foca does not announce.
    fn merge(&mut self, members: Vec<Member>) {
        self.outrun(&members);
        if let Err(e) = self.foca.apply_many(members.into_iter(), true, &mut self.rt) {
            tracing::debug!("gossip: merging remote state: {e}");
        }
        self.drain();
        let now = std::time::Instant::now();
        let down: Vec<NodeIdentity> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() == foca::State::Down)
            .map(|m| m.id().clone())
            .collect();
        let events = {
            let mut view = self.shared.view.lock();
            down.iter().flat_map(|id| view.learn_down(id, now)).collect()
        };
        self.shared.publish(events);
    }

    /// A previous run at our address with a generation at least ours (the clock went back)
    /// would shadow us: move past it.
    fn outrun(&mut self, members: &[Member]) {
        let me = self.foca.identity();
        if self.shared.view.lock().local_status() != MemberStatus::Alive {
            return;
        }
        let newest = members
            .iter()
            .map(Member::id)
            .filter(|id| id.addr == me.addr && *id != me)
            .map(|id| id.generation)
            .max();
        if let Some(generation) = newest.filter(|g| *g >= me.generation) {
            let mut next = me.successor(me.tags.clone(), Intent::None);
            next.generation = generation.saturating_add(1);
            self.change_identity(next);
        }
    }

    fn change_identity(&mut self, id: NodeIdentity) {
        match self.foca.change_identity(id.clone(), &mut self.rt) {
            Ok(()) => self.shared.view.lock().set_local(id),
            Err(e) => tracing::warn!("gossip: changing identity: {e}"),
        }
        self.drain();
    }

    fn start_leave(&mut self, deadline: Instant, reply: oneshot::Sender<bool>) {
        let status = self.shared.view.lock().local_status();
        if status != MemberStatus::Alive || self.leaving.is_some() {
            let _ = reply.send(status == MemberStatus::Left);
            return;
        }
        tracing::info!("gossip: leaving the cluster");
        self.shared.view.lock().set_local_status(MemberStatus::Leaving);
        let me = self.foca.identity();
        self.change_identity(me.successor(me.tags.clone(), Intent::Leave));
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            tracing::warn!("gossip: leaving: {e}");
        }
        self.drain();
        let timing = &self.shared.timing;
        let live = self.shared.view.lock().live_count();
        let quota = usize::from(timing.retransmit_limit(live));
        let rounds_left = quota.div_ceil(timing.indirect_checks.max(1)) + 1;
        self.leaving = Some(Leaving { deadline, reply: Some(reply), rounds_left });
        self.progress_leave();
    }

    /// Re-gossips the leave until every update was sent its quota of times, or the deadline.
    fn progress_leave(&mut self) {
        let Some(leaving) = &mut self.leaving else { return };
        let sent =
            self.foca.updates_backlog() == 0 || self.foca.num_members() == 0 || leaving.rounds_left == 0;
        if sent || Instant::now() >= leaving.deadline {
            if let Some(reply) = leaving.reply.take() {
                let _ = reply.send(sent);
            }
            self.leaving = None;
            self.shared.view.lock().set_local_status(MemberStatus::Left);
            tracing::info!("gossip: left the cluster");
            return;
        }
        leaving.rounds_left -= 1;
        if let Err(e) = self.foca.gossip(&mut self.rt) {
            tracing::debug!("gossip: leave broadcast: {e}");
        }
        self.drain();
    }

    fn force_leave(&mut self, name: &str, prune: bool) {
        let Some(id) = self.shared.view.lock().identity_of(name).cloned() else {
            tracing::warn!("gossip: force-leave: no member named {name}");
            return;
        };
        let intent = if prune { Intent::Prune } else { Intent::Leave };
        if id.intent >= intent {
            return;
        }
        let forced = NodeIdentity { intent, ..id.clone() };
        tracing::info!("gossip: force-leave of {name} at {} (prune: {prune})", id.addr);
        let down = Member::new(forced.clone(), 0, foca::State::Down);
        if let Err(e) = self.foca.apply_many(std::iter::once(down), true, &mut self.rt) {
            tracing::warn!("gossip: force-leave: {e}");
        }
        self.drain();
        let events = self.shared.view.lock().rename(&id, &forced, std::time::Instant::now());
        self.shared.publish(events);
    }

    fn set_tags(&mut self, tags: BTreeMap<String, String>) {
        if self.shared.view.lock().local_status() != MemberStatus::Alive {
            return;
        }
        let next = self.foca.identity().successor(tags, Intent::None);
        self.change_identity(next);
    }

    fn housekeeping(&mut self) {
        self.progress_leave();
        self.gossip_user_events();
        let now = Instant::now();
        let every = (self.reconnect_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        if now.duration_since(self.last_reap) >= every {
            self.last_reap = now;
            let events = self.shared.view.lock().reap(now.into_std());
            self.shared.publish(events);
        }
        let backlog = self.foca.updates_backlog() as u64;
        self.shared.counters.backlog.store(backlog, Relaxed);
    }

    /// Starts a full-state exchange with a random member of `status` in the background.
    fn push_pull(&mut self, status: MemberStatus) {
        if self.shared.view.lock().local_status() != MemberStatus::Alive {
            return;
        }
        let targets = self.shared.view.lock().addrs(status);
        if targets.is_empty() {
            return;
        }
        let target = targets[rand::rng().random_range(0..targets.len())];
        let msg = StreamMsg::PushPull(self.state(false));
        let shared = self.shared.clone();
        let cmds = self.cmd_tx.clone();
        tokio::spawn(async move {
            match stream::exchange(&shared, target, &msg).await {
                Ok(StreamMsg::PushPull(state)) => {
                    let _ = cmds.send(Command::Remote { msg: state, join: false, reply: None });
                }
                Ok(StreamMsg::Refuse(reason)) => {
                    tracing::debug!("gossip: push-pull with {target} refused: {reason}");
                }
                Ok(_) => tracing::debug!("gossip: push-pull with {target}: unexpected reply"),
                Err(e) => tracing::debug!("gossip: push-pull with {target}: {e}"),
            }
        });
    }
}

/// memberlist's `pushPullScale`: past 32 members, one more interval per doubling, so the
/// cluster-wide rate of full-state exchanges stays bounded.
pub(super) fn push_pull_scale(interval: Duration, members: usize) -> Duration {
    const THRESHOLD: f64 = 32.0;
    let n = members as f64;
    if n <= THRESHOLD {
        return interval;
    }
    interval.mul_f64((n.log2() - THRESHOLD.log2()).ceil() + 1.0)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Shared {
    /// Logs and broadcasts membership events.
    pub(crate) fn publish(&self, events: Vec<MemberEvent>) {
        for event in events {
            match &event {
                MemberEvent::Join(m) => tracing::info!("gossip: member joined: {} {}", m.name, m.addr),
                MemberEvent::Update(m) => tracing::info!("gossip: member updated: {}", m.name),
                MemberEvent::Leave(m) => {
                    tracing::info!("gossip: member left: {}", m.name);
                    self.coords.lock().forget(&m.name);
                }
                MemberEvent::Failed(m) => tracing::info!("gossip: member failed: {}", m.name),
                MemberEvent::Reap(m) => {
                    tracing::info!("gossip: member reaped: {}", m.name);
                    self.coords.lock().forget(&m.name);
                }
                MemberEvent::Conflict(_) => {}
            }
            let _ = self.events.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_time_order_then_in_submission_order() {
        let at = Instant::now();
        let timer = || Timer::ProbeRandomMember(0);
        let mut heap = BinaryHeap::new();
        heap.push(Reverse(Scheduled { at: at + Duration::from_millis(5), seq: 1, timer: timer() }));
        heap.push(Reverse(Scheduled { at, seq: 3, timer: timer() }));
        heap.push(Reverse(Scheduled { at, seq: 2, timer: timer() }));
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|s| s.0.seq)).collect();
        assert_eq!(order, vec![2, 3, 1]);
    }

    #[test]
    fn push_pull_slows_down_in_large_clusters() {
        let base = Duration::from_secs(30);
        assert_eq!(push_pull_scale(base, 10), base);
        assert_eq!(push_pull_scale(base, 32), base);
        assert_eq!(push_pull_scale(base, 33), base * 2);
        assert_eq!(push_pull_scale(base, 1000), base * 6);
    }
}
