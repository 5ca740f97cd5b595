//! LAN gossip (Consul's serf_lan pool): membership with failure detection over SWIM, driven
//! by foca, plus the Serf-like layer Consul relies on: tags, `leave` / `force-leave`,
//! failed-member reaping, name and node-ID conflict detection, full-state push-pull over TCP,
//! and AES-GCM encryption with Consul's `encrypt` keys, rotated at runtime across the pool
//! ([`Gossip::keyring`]) and saved in the keyring file.
//!
//! ```text
//!  API (Gossip, Clone) ──commands──►  driver task (owns foca)  ◄── UDP datagrams (:8301)
//!   members(), stats() ◄── View ◄──── notifications             ──► UDP sends (via Faults)
//!   subscribe()       ◄── MemberEvent broadcast                 ◄── timers (heap)
//!   join() ── TCP push-pull ─► seed      listener task (:8301/tcp) ──Incoming──► driver
//! ```
//!
//! Every member carries an identity `{addr, name, generation, intent, tags}`
//! (`identity.rs`). Changing tags, leaving, or being declared failed while alive produces the
//! next generation, which replaces the previous one at the same address everywhere, so a
//! restarted or healed node rejoins without waiting for the cluster to forget it. Failure
//! detection timing is in [`Timing`]'s docs.

mod coord;
mod driver;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod fuzz;
mod identity;
mod keyfile;
mod keyring;
mod keyring_op;
pub mod sim;
mod stream;
mod timing;
mod user_event;
mod view;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use keyfile::LAN_KEYRING_FILE;
pub use keyring::decode_key;
pub use keyring_op::{KeyringOp, KeyringResponse};
pub use sekisho_wan::coordinate::Coordinate;
pub use timing::Timing;
pub use user_event::{USER_EVENT_SIZE_LIMIT, USER_EVENT_VERSION, UserEvent};

use driver::{Command, Driver};
use identity::{MAX_IDENTITY_BYTES, NodeIdentity};
use keyring::{Keyring, SharedRing};
use view::View;
use wire::StreamMsg;

use crate::net::fault::Faults;

/// The default gossip port (Consul's `ports.serf_lan`), used when a join address has none.
pub const DEFAULT_PORT: u16 = 8301;

const EVENT_BUFFER: usize = 4096;

/// How to run one gossip pool.
#[derive(Clone)]
pub struct GossipConfig {
    /// The node name, unique in the pool.
    pub node_name: String,
    /// UDP and TCP listen address (same port for both; port 0 picks one).
    pub bind: SocketAddr,
    /// The address others reach this node at. An unspecified IP means the bind IP; port 0
    /// means the bound port.
    pub advertise: SocketAddr,
    /// Serf tags: role ("consul" | "node"), dc, id (node ID), port (server RPC), build, vsn...
    pub tags: BTreeMap<String, String>,
    /// Gossip encryption keys (16, 24 or 32 bytes, see [`decode_key`]); the first encrypts,
    /// all decrypt. Empty means plaintext. Replaced by the keyring file's keys when it exists.
    pub keys: Vec<Vec<u8>>,
    /// Where the keyring is saved after every change (Consul's `<data_dir>/serf/local.keyring`;
    /// `None`: not saved). When it exists at start, its keys win over [`GossipConfig::keys`];
    /// when it does not, it is written with them.
    pub keyring_file: Option<PathBuf>,
    /// `encrypt_verify_incoming`: with keys, refuse plaintext frames (default true).
    pub verify_incoming: bool,
    /// `encrypt_verify_outgoing`: with keys, encrypt what is sent (default true).
    pub verify_outgoing: bool,
    /// Protocol timers.
    pub timing: Timing,
    /// Failed and left members are removed from the list after this long (Consul: 72h).
    pub reconnect_timeout: Duration,
    /// Fault injection for tests ([`Faults::none`] in production).
    pub faults: Arc<Faults>,
}

impl GossipConfig {
    /// A plaintext LAN pool member called `node_name` on `bind`, with Consul's defaults.
    pub fn new(node_name: impl Into<String>, bind: SocketAddr) -> Self {
        GossipConfig {
            node_name: node_name.into(),
            bind,
            advertise: SocketAddr::new(bind.ip(), 0),
            tags: BTreeMap::new(),
            keys: Vec::new(),
            keyring_file: None,
            verify_incoming: true,
            verify_outgoing: true,
            timing: Timing::lan(),
            reconnect_timeout: Duration::from_secs(72 * 3600),
            faults: Faults::none(),
        }
    }
}

/// Key material stays out of logs: the keys show as a count.
impl fmt::Debug for GossipConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipConfig")
            .field("node_name", &self.node_name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("tags", &self.tags)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("keyring_file", &self.keyring_file)
            .field("verify_incoming", &self.verify_incoming)
            .field("verify_outgoing", &self.verify_outgoing)
            .field("timing", &self.timing)
            .field("reconnect_timeout", &self.reconnect_timeout)
            .field("faults", &self.faults)
            .finish()
    }
}

/// A member's state, as `consul members` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Reachable.
    Alive,
    /// Announced a graceful leave that is still spreading.
    Leaving,
    /// Left gracefully (or was force-left).
    Left,
    /// Unreachable: failed its probes and the suspicion timeout.
    Failed,
}

impl MemberStatus {
    /// Consul's numeric code in `/v1/agent/members` (`Status`).
    pub fn code(self) -> u8 {
        match self {
            MemberStatus::Alive => 1,
            MemberStatus::Leaving => 2,
            MemberStatus::Left => 3,
            MemberStatus::Failed => 4,
        }
    }

    /// The lowercase name `consul members` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Advertised gossip IP.
    pub addr: IpAddr,
    /// Advertised gossip port.
    pub port: u16,
    /// Serf tags.
    pub tags: BTreeMap<String, String>,
    /// Current state.
    pub status: MemberStatus,
}

/// Which uniqueness rule two members break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// Same node name, different addresses.
    Name,
    /// Same `id` tag, different node names.
    NodeId,
}

/// Two live members that break a uniqueness rule. The first one keeps its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The rule broken.
    pub kind: ConflictKind,
    /// The member that holds the name or ID (possibly this node).
    pub existing: Member,
    /// The member that claims it too.
    pub other: Member,
    /// A message naming both, in Consul's words.
    pub message: String,
}

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member appeared, or came back after failing or leaving.
    Join(Member),
    /// A live member changed tags or address.
    Update(Member),
    /// A member left gracefully (or was force-left).
    Leave(Member),
    /// A member failed.
    Failed(Member),
    /// A failed or left member was removed: `reconnect_timeout` passed, or `force-leave -prune`.
    Reap(Member),
    /// A name or node-ID conflict (also logged as an error).
    Conflict(Conflict),
}

/// Gossip errors.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The UDP or TCP socket could not be bound.
    #[error("failed to bind gossip address {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An invalid configuration value.
    #[error("invalid gossip configuration: {0}")]
    Config(String),
    /// An invalid `encrypt` key.
    #[error("invalid gossip encryption key: {0}")]
    Key(String),
    /// The keyring file cannot be read or written.
    #[error("keyring file {path}: {reason}")]
    KeyringFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A keyring operation on a node without gossip encryption.
    #[error("Gossip encryption is not enabled; set encrypt to use a keyring")]
    EncryptionDisabled,
    /// No join address could be contacted; one message per address, like Consul's.
    #[error("{}", multi_error(.0))]
    Join(Vec<String>),
    /// `force-leave` of a node that is not a member.
    #[error("No node found with name '{0}'")]
    UnknownMember(String),
    /// The leave was not disseminated before the timeout (the node still left).
    #[error("timeout waiting for leave broadcast")]
    LeaveTimeout,
    /// The tags do not fit in a gossip packet.
    #[error("node name and tags take {0} bytes encoded; the limit is {MAX_IDENTITY_BYTES}")]
    TagsTooLarge(usize),
    /// The gossip tasks have stopped.
    #[error("gossip has shut down")]
    Shutdown,
    /// A user event larger than Serf's limit.
    #[error(
        "User event exceeds {USER_EVENT_SIZE_LIMIT} bytes (name {name} + payload {payload} + filters {filters})"
    )]
    UserEventTooLarge {
        /// Bytes of the name.
        name: usize,
        /// Bytes of the payload.
        payload: usize,
        /// Bytes of the three filters.
        filters: usize,
    },
}

/// Formats errors like Go's multierror (what `consul join` prints).
fn multi_error(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    match errors.len() {
        1 => format!("1 error occurred:\n\t{}\n\n", points.join("\n\t")),
        n => format!("{n} errors occurred:\n\t{}\n\n", points.join("\n\t")),
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    undecryptable: AtomicU64,
    oversized: AtomicU64,
    faulted: AtomicU64,
    backlog: AtomicU64,
}

/// State shared by the API, the driver and the TCP listener.
#[derive(Debug)]
pub(crate) struct Shared {
    view: Mutex<View>,
    coords: Mutex<coord::Coords>,
    events: broadcast::Sender<MemberEvent>,
    user_events: Mutex<user_event::UserEvents>,
    user_tx: broadcast::Sender<UserEvent>,
    counters: Counters,
    keyring: SharedRing,
    faults: Arc<Faults>,
    timing: Timing,
    advertise: SocketAddr,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A running gossip pool member. Cheap to clone; dropping the last clone stops it.
#[derive(Debug, Clone)]
pub struct Gossip {
    inner: Arc<Inner>,
}

impl Gossip {
    /// Binds UDP and TCP on the same port and starts gossiping (alone until [`Gossip::join`]).
    pub async fn start(cfg: GossipConfig) -> Result<Gossip, GossipError> {
        if cfg.node_name.is_empty() {
            return Err(GossipError::Config("node name must not be empty".into()));
        }
        Keyring::new(&cfg.keys)?; // refuse bad keys before anything is saved
        let keys = keyfile::initial_keys(&cfg.keys, cfg.keyring_file.as_deref())?;
        let ring = Keyring::new(&keys)?.with_verify(cfg.verify_incoming, cfg.verify_outgoing);
        let keyring = SharedRing::new(ring, cfg.keyring_file.clone());
        let (socket, listener) = bind(cfg.bind).await?;
        let bind_err = |source| GossipError::Bind { addr: cfg.bind, source };
        let local_addr = socket.local_addr().map_err(bind_err)?;
        let advertise = advertise_addr(cfg.advertise, local_addr)?;
        let identity = NodeIdentity::new(advertise, cfg.node_name.clone(), cfg.tags);
        check_size(&identity)?;
        let shared = Arc::new(Shared {
            view: Mutex::new(View::new(identity, cfg.reconnect_timeout)),
            coords: Mutex::new(coord::Coords::new(&cfg.node_name)),
            events: broadcast::channel(EVENT_BUFFER).0,
            user_events: Mutex::new(user_event::UserEvents::default()),
            user_tx: broadcast::channel(EVENT_BUFFER).0,
            counters: Counters::default(),
            keyring,
            faults: cfg.faults,
            timing: cfg.timing,
            advertise,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let socket = Arc::new(socket);
        let driver = Driver::new(shared.clone(), socket, rx, tx.clone(), cfg.reconnect_timeout);
        let tasks = vec![
            tokio::spawn(driver.run(cancel.clone())),
            tokio::spawn(stream::serve(listener, shared.clone(), tx.clone(), cancel.clone())),
        ];
        tracing::info!("gossip: {} listening on {local_addr} (advertise {advertise})", cfg.node_name);
        let inner = Inner { shared, cmds: tx, local_addr, cancel, tasks: Mutex::new(tasks) };
        Ok(Gossip { inner: Arc::new(inner) })
    }

    /// The bound UDP/TCP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address other members reach this one at.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner.shared.advertise
    }

    /// Exchanges full state with each address ("host:port", "ip" or "host"; port 8301 by
    /// default) and returns how many were contacted. Fails only if none was, with one line
    /// per address. A seed refuses a node whose name or node ID is taken by a live member.
    pub async fn join(&self, addrs: &[String]) -> Result<usize, GossipError> {
        let mut joined = 0;
        let mut errors = Vec::new();
        for addr in addrs {
            match self.join_one(addr).await {
                Ok(()) => joined += 1,
                Err(e) => errors.push(e),
            }
        }
        if joined == 0 && !errors.is_empty() {
            return Err(GossipError::Join(errors));
        }
        Ok(joined)
    }

    async fn join_one(&self, addr: &str) -> Result<(), String> {
        let targets = resolve(addr).await.map_err(|e| format!("Failed to resolve {addr}: {e}"))?;
        let mut last = format!("Failed to join {addr}: no addresses");
        for target in targets {
            match self.push_pull(target).await {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("Failed to join {}: {e}", target.ip()),
            }
        }
        Err(last)
    }

    async fn push_pull(&self, target: SocketAddr) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::State { join: true, reply: tx }).map_err(|e| e.to_string())?;
        let state = rx.await.map_err(|_| GossipError::Shutdown.to_string())?;
        let reply = stream::exchange(&self.inner.shared, target, &StreamMsg::PushPull(state)).await?;
        let msg = match reply {
            StreamMsg::PushPull(msg) => msg,
            StreamMsg::Refuse(reason) => return Err(reason),
            StreamMsg::KeyringRequest(_) | StreamMsg::KeyringReply(_) => {
                return Err(format!("unexpected reply from {target}"));
            }
        };
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Remote { msg, join: true, reply: Some(tx) };
        self.command(cmd).map_err(|e| e.to_string())?;
        rx.await.map_err(|_| GossipError::Shutdown.to_string())?
    }

    /// Announces a graceful leave and waits until it has been gossiped (or `timeout`). Other
    /// members then list this node as left. The sockets stay open until [`Gossip::shutdown`].
    pub async fn leave(&self, timeout: Duration) -> Result<(), GossipError> {
        let (tx, rx) = oneshot::channel();
        let deadline = tokio::time::Instant::now() + timeout;
        self.command(Command::Leave { deadline, reply: tx })?;
        let grace = self.inner.shared.timing.gossip_interval * 2;
        match tokio::time::timeout(timeout + grace, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) | Err(_) => Err(GossipError::LeaveTimeout),
            Ok(Err(_)) => Err(GossipError::Shutdown),
        }
    }

    /// Marks a member left cluster-wide (`prune`: removes it from every list). Meant for
    /// failed members; a live one rejoins as a new generation, as in Consul.
    pub fn force_leave(&self, node: &str, prune: bool) -> Result<(), GossipError> {
        let known = self.inner.shared.view.lock().identity_of(node).is_some();
        if !known {
            return Err(GossipError::UnknownMember(node.to_owned()));
        }
        self.command(Command::ForceLeave { name: node.to_owned(), prune })
    }

    /// Every member, this node included, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.inner.shared.view.lock().members()
    }

    /// Membership events from now on (a lagging receiver loses the oldest ones).
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Fires a user event: stamps it with the pool's event clock, delivers it to this node's
    /// [`Gossip::subscribe_user_events`] and spreads it to every member (best effort). Events
    /// larger than [`USER_EVENT_SIZE_LIMIT`] are refused.
    pub fn user_event(&self, event: UserEvent) -> Result<UserEvent, GossipError> {
        if !event.fits() {
            let (name, payload, filters) = event.sizes();
            return Err(GossipError::UserEventTooLarge { name, payload, filters });
        }
        if self.inner.cancel.is_cancelled() {
            return Err(GossipError::Shutdown);
        }
        let shared = &self.inner.shared;
        let live = shared.view.lock().live_count();
        let sends = u32::from(shared.timing.retransmit_limit(live));
        let fired = shared.user_events.lock().fire(event, sends);
        let _ = shared.user_tx.send(fired.clone());
        Ok(fired)
    }

    /// Every user event this node fires or receives, once each, unfiltered, from now on (a
    /// lagging receiver loses the oldest ones).
    pub fn subscribe_user_events(&self) -> broadcast::Receiver<UserEvent> {
        self.inner.shared.user_tx.subscribe()
    }

    /// Replaces this node's tags; other members see an [`MemberEvent::Update`].
    pub fn set_tags(&self, tags: BTreeMap<String, String>) -> Result<(), GossipError> {
        let probe = self.inner.shared.view.lock().local().successor(tags.clone(), identity::Intent::None);
        check_size(&probe)?;
        self.command(Command::SetTags(tags))
    }

    /// This node's network coordinate, estimated from the round trips of coordinate pings
    /// to random live members (one per probe interval).
    pub fn coordinate(&self) -> Coordinate {
        self.inner.shared.coords.lock().coordinate()
    }

    /// The coordinate `node` last reported to this node, if it answered one of its pings.
    pub fn peer_coordinate(&self, node: &str) -> Option<Coordinate> {
        self.inner.shared.coords.lock().peer(node)
    }

    /// The `serf_lan` section of `consul info`, plus packet counters.
    pub fn stats(&self) -> BTreeMap<String, String> {
        let shared = &self.inner.shared;
        let (members, failed, left, member_time, live) = {
            let v = shared.view.lock();
            let (m, f, l) = v.counts();
            (m, f, l, v.member_time, v.live_count())
        };
        // Temporaries in the array below live until its end: take this lock once, here.
        let (event_queue, event_time) = {
            let u = shared.user_events.lock();
            (u.queued(), u.time())
        };
        let c = &shared.counters;
        let n = |a: &AtomicU64| a.load(Relaxed).to_string();
        let pairs = [
            ("coordinate_resets", shared.coords.lock().resets().to_string()),
            ("encrypted", shared.keyring.read().is_enabled().to_string()),
            ("event_queue", event_queue.to_string()),
            ("event_time", event_time.to_string()),
            ("failed", failed.to_string()),
            ("health_score", "0".into()),
            ("intent_queue", "0".into()),
            ("left", left.to_string()),
            ("member_time", member_time.to_string()),
            ("members", members.to_string()),
            ("query_queue", "0".into()),
            ("query_time", "1".into()),
            ("packets_received", n(&c.received)),
            ("packets_sent", n(&c.sent)),
            ("packets_malformed", n(&c.malformed)),
            ("packets_undecryptable", n(&c.undecryptable)),
            ("packets_oversized", n(&c.oversized)),
            ("packets_dropped_by_faults", n(&c.faulted)),
            ("updates_backlog", n(&c.backlog)),
            ("suspicion_timeout", format!("{:?}", shared.timing.suspicion_timeout(live))),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Closes the sockets and stops the tasks without leaving: to the others this looks like
    /// a crash (call [`Gossip::leave`] first for a graceful exit).
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }

    fn command(&self, cmd: Command) -> Result<(), GossipError> {
        if self.inner.cancel.is_cancelled() {
            return Err(GossipError::Shutdown);
        }
        self.inner.cmds.send(cmd).map_err(|_| GossipError::Shutdown)
    }
}

fn check_size(id: &NodeIdentity) -> Result<(), GossipError> {
    match id.encoded_len() {
        n if n > MAX_IDENTITY_BYTES => Err(GossipError::TagsTooLarge(n)),
        _ => Ok(()),
    }
}

/// Binds UDP, then TCP on the same port; with port 0, retries when TCP finds it taken.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), GossipError> {
    let err = |source| GossipError::Bind { addr, source };
    let tries = if addr.port() == 0 { 10 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr).await.map_err(err)?;
        let bound = udp.local_addr().map_err(err)?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| std::io::Error::other("no port found"))))
}

fn advertise_addr(advertise: SocketAddr, bound: SocketAddr) -> Result<SocketAddr, GossipError> {
    let ip = if advertise.ip().is_unspecified() { bound.ip() } else { advertise.ip() };
    if ip.is_unspecified() {
        return Err(GossipError::Config(format!(
            "bound to {bound}: set an advertise address other members can reach"
        )));
    }
    let port = if advertise.port() == 0 { bound.port() } else { advertise.port() };
    Ok(SocketAddr::new(ip, port))
}

/// Resolves a join address: "ip", "ip:port", "[v6]:port", "host" or "host:port".
async fn resolve(addr: &str) -> std::io::Result<Vec<SocketAddr>> {
    let addr = addr.trim();
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, DEFAULT_PORT)]);
    }
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => {
            let port = p.parse::<u16>().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("invalid port in {addr:?}"))
            })?;
            (h, port)
        }
        None => (addr, DEFAULT_PORT),
    };
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

#[cfg(test)]
mod keyring_tests;
#[cfg(test)]
mod tests;
