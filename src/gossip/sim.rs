//! A deterministic simulation of a LAN gossip pool at scale: one real `foca` instance per
//! agent, configured exactly as the driver configures it (`Timing::foca_config`, resized
//! whenever the agent's live count changes), exchanging real encoded packets over a virtual
//! network, in virtual time, with seeded randomness. Used by `benches/gossip_sim.rs` to measure
//! failure detection, false positives under loss, join convergence and traffic at 1,000 and
//! 10,000 agents, which the in-process tests (`gossip/tests.rs`, real sockets) cannot reach.
//!
//! ```text
//!  queue (virtual time, then insertion order)            per agent: Foca<SimId>
//!   Datagram{to, bytes} ──► handle_data ─┐
//!   Timer{agent, timer} ──► handle_timer ├─► Outbox (Runtime) ─► sends:  loss? ─► +latency ─► queue
//!   PushPull{state}     ──► apply_many  ─┘                      timers: now + after  ─► queue
//!   PushPullTick                                                notes:  Up/Down/Suspect ─► trackers
//! ```
//!
//! What differs from a real agent, and why:
//! - Identities are `SimId`s (agent index, generation offset, intent: 6 bytes in memory) so
//!   that 10,000 agents × 10,000 members fit in memory, but they encode byte for byte as the
//!   real `NodeIdentity` of a client agent would (address, name, generation, intent and
//!   Consul's tags), so packet sizes are the real ones (a test checks the bytes).
//! - Foca takes no clock: it only asks for timers through its `Runtime`, so virtual time is
//!   exact. The TCP push-pull is an event carrying the state; members identical to what the
//!   receiver already holds are filtered out before `apply_many`, which foca would ignore
//!   anyway (same identity, incarnation and state), because applying all of them is O(n²).
//! - Coordinate pings and user events are not simulated (see [`coordinate_datagram_sizes`]);
//!   neither are reconnect attempts to failed members over TCP.
//! - A pool starts converged: every agent already knows every other one, and each agent's
//!   timers start at a random phase within one probe interval. Foca keeps its members in a
//!   `Vec` and scans it for every update, so this costs O(n²) per agent: about 0.2 s for
//!   1,000 agents and 2-3 minutes for 10,000 in release (steady state is then O(n) per packet).
//!
//! Measured with it (see the bench): foca sends `TurnUndead` when a suspicion timer expires
//! even if the suspect refuted in time, so a refuted suspicion still makes the suspect rejoin
//! as its next generation ([`FalsePositives::rejoins`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use foca::{Foca, Member, NoCustomBroadcast, Notification, PostcardCodec, Runtime, State, Timer};
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

use super::Timing;
use super::coord::{CoordMsg, Coords};
use super::driver::push_pull_scale;
use super::wire;

/// The largest pool a simulation can hold (agents are numbered with a `u16`).
pub const MAX_AGENTS: usize = u16::MAX as usize;

/// Framing added to each foca packet on the wire without encryption: channel byte + 3 bytes
/// of frame header (see `wire`).
pub const FRAME_PLAIN: usize = 4;
/// Framing added with an `encrypt` key: channel byte, header, nonce and AES-GCM tag.
pub const FRAME_ENCRYPTED: usize = wire::MAX_DATAGRAM - wire::MAX_FOCA_PACKET;

/// Generations are milliseconds since the epoch in a real agent; simulated ones start here.
const BASE_GENERATION: u64 = 1_750_000_000_000;
const GOSSIP_PORT: u16 = 8301;
const FIRST_ADDR: u32 = 0x0A00_0001; // 10.0.0.1
const FIELDS: &[&str] = &["addr", "name", "generation", "intent", "tags"];

type Nanos = u64;
type Core = Foca<SimId, PostcardCodec, SmallRng, NoCustomBroadcast>;

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How to build a simulated pool.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Agents at the start, all knowing each other (at most [`MAX_AGENTS`]).
    pub agents: usize,
    /// Probability that any datagram is lost (0.0..=1.0).
    pub loss: f64,
    /// Seed of every random choice (the network's and each agent's foca RNG).
    pub seed: u64,
    /// Protocol timers; the foca configuration derives from them as in the driver.
    pub timing: Timing,
    /// One-way datagram latency, drawn uniformly from `min..=max`.
    pub latency: (Duration, Duration),
    /// Run the periodic TCP push-pull (every `push_pull_interval`, scaled with the pool size).
    pub push_pull: bool,
    /// Failed members are forgotten after this long (the driver's `reconnect_timeout`).
    pub reconnect_timeout: Duration,
}

impl SimConfig {
    /// `agents` agents with [`Timing::lan`], no loss, 0.2-1 ms latency and push-pull on.
    pub fn new(agents: usize, seed: u64) -> Self {
        SimConfig {
            agents,
            loss: 0.0,
            seed,
            timing: Timing::lan(),
            latency: (Duration::from_micros(200), Duration::from_millis(1)),
            push_pull: true,
            reconnect_timeout: Duration::from_secs(72 * 3600),
        }
    }
}

/// Datagram and TCP counters, summed over all agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Bytes of those datagrams as foca encoded them (no framing).
    pub bytes: u64,
    /// Datagrams lost to the configured loss.
    pub lost: u64,
    /// Datagrams that reached a crashed agent.
    pub to_crashed: u64,
    /// Push-pull messages sent (requests and replies).
    pub push_pulls: u64,
    /// Estimated bytes of those messages (members × encoded member size).
    pub push_pull_bytes: u64,
}

impl Traffic {
    /// Bytes on the wire with framing, plaintext or encrypted.
    pub fn wire_bytes(&self, encrypted: bool) -> u64 {
        let per = if encrypted { FRAME_ENCRYPTED } else { FRAME_PLAIN };
        self.bytes + self.datagrams * per as u64
    }

    /// The counters accumulated since `earlier`.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            datagrams: self.datagrams - earlier.datagrams,
            bytes: self.bytes - earlier.bytes,
            lost: self.lost - earlier.lost,
            to_crashed: self.to_crashed - earlier.to_crashed,
            push_pulls: self.push_pulls - earlier.push_pulls,
            push_pull_bytes: self.push_pull_bytes - earlier.push_pull_bytes,
        }
    }
}

/// What live agents suffered from mistaken failure detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FalsePositives {
    /// Times an agent started a suspicion timer against a live agent.
    pub suspicions: u64,
    /// `MemberDown` notifications about live agents (one per observer).
    pub declarations: u64,
    /// Distinct live agents ever declared down.
    pub members_declared: usize,
    /// Times an agent was told it was down and rejoined as its next generation. Foca 2.0 sends
    /// `TurnUndead` (with `notify_down_members`) when a suspicion timer expires while the
    /// suspect is still listed, even when it refuted in time, so refuted suspicions end here.
    pub rejoins: u64,
}

/// How one crash was detected. Times are measured from the crash.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The crashed agent.
    pub agent: usize,
    /// When it crashed (virtual time since the start).
    pub crashed_at: Duration,
    /// Agents alive at the crash that are still alive.
    pub survivors: usize,
    /// The first suspicion timer started against it.
    pub first_suspected: Option<Duration>,
    /// The first survivor that declared it down.
    pub first_declared: Option<Duration>,
    /// The last survivor that declared it down, once all have.
    pub all_declared: Option<Duration>,
    /// When each survivor that has declared it down did so.
    pub per_survivor: Vec<Duration>,
}

/// How one join spread. Times are measured from the join.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinSpread {
    /// The new agent.
    pub agent: usize,
    /// The member it joined through.
    pub seed: usize,
    /// When it joined (virtual time since the start).
    pub joined_at: Duration,
    /// When the joiner listed every live member.
    pub joiner_knows_all: Option<Duration>,
    /// When every live member listed the joiner.
    pub all_know_joiner: Option<Duration>,
}

mod identity;

pub(crate) use identity::SimId;
use identity::splitmix;

/// The sizes of a coordinate ping and of its ack as the driver encodes them (without
/// framing); each agent sends one ping per probe interval and answers about one.
pub fn coordinate_datagram_sizes() -> (usize, usize) {
    let seq = 100_000; // about a day of pings
    let ping = postcard::to_allocvec(&CoordMsg::Ping { seq }).map(|v| v.len()).unwrap_or(0);
    let ack = Coords::new("node-00000").on_ping(seq);
    (ping, postcard::to_allocvec(&ack).map(|v| v.len()).unwrap_or(0))
}

enum Note {
    Up(SimId),
    Down(SimId),
    Suspect(SimId),
    Rejoin,
}

/// The foca `Runtime` of whichever agent is being stepped; drained after every step.
#[derive(Default)]
struct Outbox {
    sends: Vec<(u16, Vec<u8>)>,
    timers: Vec<(Timer<SimId>, Duration)>,
    notes: Vec<Note>,
    quiet: bool,
}

impl Runtime<SimId> for Outbox {
    fn notify(&mut self, n: Notification<'_, SimId>) {
        let note = match n {
            _ if self.quiet => return,
            Notification::MemberUp(id) => Note::Up(*id),
            Notification::MemberDown(id) => Note::Down(*id),
            Notification::Rejoin(_) => Note::Rejoin,
            _ => return,
        };
        self.notes.push(note);
    }

    fn send_to(&mut self, to: SimId, data: &[u8]) {
        self.sends.push((to.agent, data.to_vec()));
    }

    fn submit_after(&mut self, timer: Timer<SimId>, after: Duration) {
        if let Timer::ChangeSuspectToDown { member_id, .. } = &timer {
            self.notes.push(Note::Suspect(*member_id));
        }
        self.timers.push((timer, after));
    }
}

enum Kind {
    Datagram { to: u16, data: Vec<u8> },
    Timer { agent: u16, timer: Timer<SimId> },
    PushPullTick { agent: u16 },
    PushPull { from: u16, to: u16, state: Vec<Member<SimId>>, reply: bool },
}

struct Event {
    at: Nanos,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Agent {
    foca: Core,
    up: bool,
    sized_for: usize,
    sent: (u64, u64),
}

/// Which agents still have to see something (a crash or a join), and when each did.
struct Spread {
    at: Nanos,
    watchers: Vec<bool>,
    seen: Vec<Option<Nanos>>,
    pending: usize,
    last: Option<Nanos>,
}

impl Spread {
    fn new(at: Nanos, agents: &[Agent], subject: usize) -> Self {
        let watchers: Vec<bool> = agents.iter().enumerate().map(|(i, a)| a.up && i != subject).collect();
        let pending = watchers.iter().filter(|w| **w).count();
        let last = (pending == 0).then_some(at);
        Spread { at, seen: vec![None; watchers.len()], watchers, pending, last }
    }

    fn see(&mut self, agent: usize, now: Nanos) {
        if self.watchers.get(agent).copied().unwrap_or(false) && self.seen[agent].is_none() {
            self.seen[agent] = Some(now);
            self.pending -= 1;
            if self.pending == 0 {
                self.last = Some(now);
            }
        }
    }

    /// `agent` crashed: it will never see anything.
    fn drop_watcher(&mut self, agent: usize, now: Nanos) {
        if self.watchers.get(agent).copied().unwrap_or(false) {
            self.watchers[agent] = false;
            if self.seen[agent].is_none() {
                self.pending -= 1;
                if self.pending == 0 {
                    self.last = Some(now);
                }
            }
        }
    }

    fn delays(&self) -> Vec<Duration> {
        let live = self.seen.iter().zip(&self.watchers).filter(|(_, w)| **w);
        live.filter_map(|(s, _)| s.map(|s| Duration::from_nanos(s - self.at))).collect()
    }
}

struct CrashTrack {
    agent: usize,
    spread: Spread,
    first_suspected: Option<Nanos>,
    first_declared: Option<Nanos>,
}

struct JoinTrack {
    agent: usize,
    seed: usize,
    spread: Spread,
    joiner_knows_all: Option<Nanos>,
}

/// A simulated pool. See the module docs.
pub struct Sim {
    cfg: SimConfig,
    now: Nanos,
    seq: u64,
    queue: BinaryHeap<Reverse<Event>>,
    agents: Vec<Agent>,
    out: Outbox,
    rng: SmallRng,
    live: usize,
    events: u64,
    traffic: Traffic,
    fp: FalsePositives,
    declared: Vec<bool>,
    crashes: Vec<CrashTrack>,
    joins: Vec<JoinTrack>,
    scratch: Vec<Option<Member<SimId>>>,
    member_len: u64,
}

impl Sim {
    /// A converged pool of `cfg.agents` agents at time zero.
    ///
    /// # Panics
    /// With more than [`MAX_AGENTS`] agents.
    pub fn new(cfg: SimConfig) -> Sim {
        assert!(cfg.agents <= MAX_AGENTS, "at most {MAX_AGENTS} agents");
        let member_len = postcard::to_allocvec(&Member::alive(SimId::new(0))).map(|v| v.len()).unwrap_or(0);
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(cfg.seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            agents: Vec::with_capacity(cfg.agents + 1),
            out: Outbox::default(),
            live: 0,
            events: 0,
            traffic: Traffic::default(),
            fp: FalsePositives::default(),
            declared: Vec::new(),
            crashes: Vec::new(),
            joins: Vec::new(),
            scratch: Vec::new(),
            member_len: member_len as u64,
            cfg,
        };
        for a in 0..sim.cfg.agents {
            sim.bootstrap(a);
        }
        sim
    }

    fn new_agent(&mut self, members: usize) -> usize {
        let a = self.agents.len();
        let config = self.cfg.timing.foca_config(members, self.cfg.reconnect_timeout);
        let rng = SmallRng::seed_from_u64(splitmix(self.cfg.seed ^ splitmix(a as u64)));
        let foca = Foca::new(SimId::new(a), config, rng, PostcardCodec);
        self.agents.push(Agent { foca, up: true, sized_for: members, sent: (0, 0) });
        self.declared.push(false);
        self.live += 1;
        a
    }

    /// Agent `a` already knows all the others; its timers start at a random phase.
    fn bootstrap(&mut self, a: usize) {
        let n = self.cfg.agents;
        debug_assert_eq!(self.agents.len(), a);
        self.new_agent(n);
        let others = (0..n).filter(|b| *b != a).map(|b| Member::alive(SimId::new(b)));
        self.out.quiet = true;
        if let Err(e) = self.agents[a].foca.apply_many(others, false, &mut self.out) {
            tracing::debug!("gossip sim: bootstrap of {a}: {e}");
        }
        self.out.quiet = false;
        self.out.sends.clear();
        self.out.notes.clear();
        let phase = self.rng.random_range(0..nanos(self.cfg.timing.probe_interval).max(1));
        let timers = std::mem::take(&mut self.out.timers);
        for (timer, after) in timers {
            self.push(phase + nanos(after), Kind::Timer { agent: a as u16, timer });
        }
        self.schedule_push_pull(a, true);
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Agents ever created (crashed ones included); agent indexes are `0..len()`.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether the pool has no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Agents not crashed.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether agent `i` exists and has not crashed.
    pub fn is_up(&self, i: usize) -> bool {
        self.agents.get(i).is_some_and(|a| a.up)
    }

    /// How many members agent `i` lists as live (itself excluded).
    pub fn members_known_by(&self, i: usize) -> usize {
        self.agents.get(i).map_or(0, |a| a.foca.num_members())
    }

    /// Updates agent `i` still has to gossip (foca's `updates_backlog`).
    pub fn updates_backlog(&self, i: usize) -> usize {
        self.agents.get(i).map_or(0, |a| a.foca.updates_backlog())
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Traffic counters since the start.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Datagrams and foca bytes sent by agent `i` since the start.
    pub fn sent_by(&self, i: usize) -> (u64, u64) {
        self.agents.get(i).map_or((0, 0), |a| a.sent)
    }

    /// Mistaken detections of live agents since the start.
    pub fn false_positives(&self) -> FalsePositives {
        self.fp
    }

    /// A random live agent among the first `below` (for choosing what to crash or join
    /// through), from the simulation's seeded RNG.
    pub fn pick_live(&mut self, below: usize) -> Option<usize> {
        let candidates: Vec<usize> = (0..below.min(self.agents.len())).filter(|i| self.is_up(*i)).collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.random_range(0..candidates.len())])
    }

    /// Changes the datagram loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.cfg.loss = loss;
    }

    /// Processes every event due up to `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Duration) {
        let t = nanos(t);
        while self.step(t) {}
        self.now = self.now.max(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now() + d);
    }

    /// Stops agent `i` (it answers nothing from now on) and starts tracking its detection.
    /// Returns false when it was not up.
    pub fn crash(&mut self, i: usize) -> bool {
        if !self.is_up(i) {
            return false;
        }
        self.agents[i].up = false;
        self.live -= 1;
        let now = self.now;
        for t in &mut self.crashes {
            t.spread.drop_watcher(i, now);
        }
        for t in &mut self.joins {
            t.spread.drop_watcher(i, now);
        }
        let spread = Spread::new(now, &self.agents, i);
        self.crashes.push(CrashTrack { agent: i, spread, first_suspected: None, first_declared: None });
        true
    }

    /// Runs until every survivor has declared crashed agent `i` down, or until `deadline`
    /// (virtual time since the start). Returns the time from the crash to the last survivor.
    pub fn run_until_detected(&mut self, i: usize, deadline: Duration) -> Option<Duration> {
        let limit = nanos(deadline);
        let done = |s: &Sim| s.crash_track(i).is_none_or(|t| t.spread.last.is_some());
        while !done(self) && self.step(limit) {}
        self.detection(i).and_then(|d| d.all_declared)
    }

    fn crash_track(&self, i: usize) -> Option<&CrashTrack> {
        self.crashes.iter().rev().find(|t| t.agent == i)
    }

    /// The detection of crashed agent `i` so far (its latest crash).
    pub fn detection(&self, i: usize) -> Option<Detection> {
        let t = self.crash_track(i)?;
        let since = |x: Option<Nanos>| x.map(|x| Duration::from_nanos(x - t.spread.at));
        Some(Detection {
            agent: i,
            crashed_at: Duration::from_nanos(t.spread.at),
            survivors: t.spread.watchers.iter().filter(|w| **w).count(),
            first_suspected: since(t.first_suspected),
            first_declared: since(t.first_declared),
            all_declared: since(t.spread.last),
            per_survivor: t.spread.delays(),
        })
    }

    /// A new agent joins through `seed` with a push-pull, as `Gossip::join` does. Returns
    /// its index, or `None` when `seed` is not up or the pool is full.
    pub fn join(&mut self, seed: usize) -> Option<usize> {
        if !self.is_up(seed) || self.agents.len() >= MAX_AGENTS {
            return None;
        }
        let j = self.new_agent(1);
        let spread = Spread::new(self.now, &self.agents, j);
        self.joins.push(JoinTrack { agent: j, seed, spread, joiner_knows_all: None });
        let state = self.state_of(j);
        self.send_push_pull(j, seed, state, false);
        self.schedule_push_pull(j, false);
        Some(j)
    }

    /// Runs until the join of `j` has spread both ways, or until `deadline`. Returns the time
    /// from the join until both the joiner knows everyone and everyone knows it.
    pub fn run_until_joined(&mut self, j: usize, deadline: Duration) -> Option<Duration> {
        let limit = nanos(deadline);
        let done = |s: &Sim| {
            s.join_spread(j).is_none_or(|d| d.joiner_knows_all.is_some() && d.all_know_joiner.is_some())
        };
        while !done(self) && self.step(limit) {}
        let d = self.join_spread(j)?;
        Some(d.joiner_knows_all?.max(d.all_know_joiner?))
    }

    /// How the join of `j` has spread so far.
    pub fn join_spread(&self, j: usize) -> Option<JoinSpread> {
        let t = self.joins.iter().find(|t| t.agent == j)?;
        let since = |x: Option<Nanos>| x.map(|x| Duration::from_nanos(x - t.spread.at));
        Some(JoinSpread {
            agent: j,
            seed: t.seed,
            joined_at: Duration::from_nanos(t.spread.at),
            joiner_knows_all: since(t.joiner_knows_all),
            all_know_joiner: since(t.spread.last),
        })
    }

    /// Processes the next event if it is due by `limit`; false when none is.
    fn step(&mut self, limit: Nanos) -> bool {
        if self.queue.peek().is_none_or(|e| e.0.at > limit) {
            return false;
        }
        let Some(Reverse(event)) = self.queue.pop() else { return false };
        self.now = event.at;
        self.events += 1;
        match event.kind {
            Kind::Datagram { to, data } => self.deliver(usize::from(to), &data),
            Kind::Timer { agent, timer } => self.fire(usize::from(agent), timer),
            Kind::PushPullTick { agent } => self.push_pull_tick(usize::from(agent)),
            Kind::PushPull { from, to, state, reply } => {
                self.on_push_pull(usize::from(from), usize::from(to), state, reply);
            }
        }
        true
    }

    fn push(&mut self, at: Nanos, kind: Kind) {
        self.seq += 1;
        self.queue.push(Reverse(Event { at, seq: self.seq, kind }));
    }

    fn latency(&mut self) -> Nanos {
        let (lo, hi) = (nanos(self.cfg.latency.0), nanos(self.cfg.latency.1));
        if hi <= lo { lo } else { self.rng.random_range(lo..=hi) }
    }

    fn deliver(&mut self, to: usize, data: &[u8]) {
        if !self.agents[to].up {
            self.traffic.to_crashed += 1;
            return;
        }
        if let Err(e) = self.agents[to].foca.handle_data(data, &mut self.out) {
            tracing::trace!("gossip sim: datagram to {to}: {e}");
        }
        self.flush(to);
    }

    fn fire(&mut self, agent: usize, timer: Timer<SimId>) {
        if !self.agents[agent].up {
            return;
        }
        if let Err(e) = self.agents[agent].foca.handle_timer(timer, &mut self.out) {
            tracing::trace!("gossip sim: timer of {agent}: {e}");
        }
        self.flush(agent);
    }

    /// Sends, schedules and records what agent `a`'s last step produced, then resizes its
    /// configuration to its live count as the driver does.
    fn flush(&mut self, a: usize) {
        let mut out = std::mem::take(&mut self.out);
        for (to, data) in out.sends.drain(..) {
            self.send(a, to, data);
        }
        for (timer, after) in out.timers.drain(..) {
            self.push(self.now + nanos(after), Kind::Timer { agent: a as u16, timer });
        }
        for note in out.notes.drain(..) {
            self.on_note(a, note);
        }
        self.out = out;
        let agent = &mut self.agents[a];
        let live = agent.foca.num_members() + 1;
        if live != agent.sized_for {
            agent.sized_for = live;
            let config = self.cfg.timing.foca_config(live, self.cfg.reconnect_timeout);
            if let Err(e) = agent.foca.set_config(config) {
                tracing::debug!("gossip sim: resizing {a}: {e}");
            }
        }
        self.check_joiner(a);
    }

    fn send(&mut self, from: usize, to: u16, data: Vec<u8>) {
        let len = data.len() as u64;
        self.traffic.datagrams += 1;
        self.traffic.bytes += len;
        let sent = &mut self.agents[from].sent;
        *sent = (sent.0 + 1, sent.1 + len);
        if self.cfg.loss > 0.0 && self.rng.random_bool(self.cfg.loss.min(1.0)) {
            self.traffic.lost += 1;
            return;
        }
        let at = self.now + self.latency();
        self.push(at, Kind::Datagram { to, data });
    }

    fn on_note(&mut self, observer: usize, note: Note) {
        let now = self.now;
        match note {
            Note::Up(id) => {
                for t in self.joins.iter_mut().filter(|t| t.agent == id.index()) {
                    t.spread.see(observer, now);
                }
            }
            Note::Down(id) if self.is_up(id.index()) => {
                self.fp.declarations += 1;
                if !std::mem::replace(&mut self.declared[id.index()], true) {
                    self.fp.members_declared += 1;
                }
            }
            Note::Down(id) => {
                if let Some(t) = self.crashes.iter_mut().rev().find(|t| t.agent == id.index()) {
                    t.first_declared.get_or_insert(now);
                    t.spread.see(observer, now);
                }
            }
            Note::Suspect(id) if self.is_up(id.index()) => self.fp.suspicions += 1,
            Note::Suspect(id) => {
                if let Some(t) = self.crashes.iter_mut().rev().find(|t| t.agent == id.index()) {
                    t.first_suspected.get_or_insert(now);
                }
            }
            Note::Rejoin => self.fp.rejoins += 1,
        }
    }

    fn check_joiner(&mut self, a: usize) {
        let known = self.agents[a].foca.num_members();
        let want = self.live - 1;
        let now = self.now;
        for t in self.joins.iter_mut().filter(|t| t.agent == a && t.joiner_knows_all.is_none()) {
            if known >= want {
                t.joiner_knows_all = Some(now);
            }
        }
    }

    /// What the driver sends in a push-pull: itself alive, then every member foca holds.
    fn state_of(&self, a: usize) -> Vec<Member<SimId>> {
        let foca = &self.agents[a].foca;
        let mut members = Vec::with_capacity(foca.iter_membership_state().len() + 1);
        members.push(Member::new(*foca.identity(), 0, State::Alive));
        members.extend(foca.iter_membership_state().cloned());
        members
    }

    fn schedule_push_pull(&mut self, a: usize, random_phase: bool) {
        if !self.cfg.push_pull {
            return;
        }
        let live = self.agents[a].foca.num_members() + 1;
        let every = nanos(push_pull_scale(self.cfg.timing.push_pull_interval, live)).max(1);
        let after = if random_phase { self.rng.random_range(0..every) } else { every };
        self.push(self.now + after, Kind::PushPullTick { agent: a as u16 });
    }

    fn push_pull_tick(&mut self, a: usize) {
        if !self.agents[a].up {
            return;
        }
        self.schedule_push_pull(a, false);
        let count = self.agents[a].foca.num_members();
        if count == 0 {
            return;
        }
        let pick = self.rng.random_range(0..count);
        let Some(target) = self.agents[a].foca.iter_members().nth(pick).map(|m| m.id().index()) else {
            return;
        };
        let state = self.state_of(a);
        self.send_push_pull(a, target, state, false);
    }

    /// A TCP exchange: a request arrives after a handshake and one way, a reply one way later.
    fn send_push_pull(&mut self, from: usize, to: usize, state: Vec<Member<SimId>>, reply: bool) {
        self.traffic.push_pulls += 1;
        self.traffic.push_pull_bytes += (state.len() as u64 + 1) * self.member_len;
        let delay = if reply { self.latency() } else { self.latency() * 3 };
        let (from, to) = (from as u16, to as u16);
        self.push(self.now + delay, Kind::PushPull { from, to, state, reply });
    }

    fn on_push_pull(&mut self, from: usize, to: usize, state: Vec<Member<SimId>>, reply: bool) {
        if !self.agents[to].up {
            return;
        }
        if !reply {
            let mine = self.state_of(to);
            self.send_push_pull(to, from, mine, true);
        }
        self.merge(to, state);
    }

    /// `apply_many` of a peer's state, without the members `a` already holds identically.
    fn merge(&mut self, a: usize, state: Vec<Member<SimId>>) {
        self.scratch.clear();
        self.scratch.resize(self.agents.len(), None);
        let foca = &self.agents[a].foca;
        let me = foca.identity().agent;
        for m in foca.iter_membership_state() {
            if let Some(slot) = self.scratch.get_mut(m.id().index()) {
                *slot = Some(m.clone());
            }
        }
        let scratch = &self.scratch;
        let fresh: Vec<Member<SimId>> = state
            .into_iter()
            .filter(|m| m.id().agent == me || scratch.get(m.id().index()).and_then(Option::as_ref) != Some(m))
            .collect();
        if fresh.is_empty() {
            return;
        }
        if let Err(e) = self.agents[a].foca.apply_many(fresh.into_iter(), true, &mut self.out) {
            tracing::debug!("gossip sim: merge at {a}: {e}");
        }
        self.flush(a);
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
