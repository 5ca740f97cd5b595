//! The server: Raft plus the state store, the write path (group commit), the read path
//! (consistency modes and blocking queries) and the leader loops (session TTLs, tombstone GC,
//! registering this server in the catalog).
//!
//! ```text
//!  write(cmd) ─► mpsc ─► batcher: drain up to 512 queued commands ─► one Raft entry
//!                         (Command::Batch) ─► append + fsync once ─► apply ─► replies
//!  query(opts, tables, f) ─► consistency barrier ─► f(store) ─► index > min? reply
//!                                                    └─ else wait on table watches / timeout
//! ```

pub mod auto_encrypt;
mod leader;
pub mod operator;
mod rpc;
#[cfg(any(test, feature = "testing"))]
pub(crate) use rpc::decode_request as decode_rpc_request;
mod wan;
pub use wan::WanServer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fsm::{Command, Response};
use crate::raft::{self, Raft, RaftOptions, ServerNode};
use crate::state::kv::KvVerb;
use crate::state::types::Session;
use crate::state::{StateStore, Store, Table};
use crate::telemetry::{self, names};

/// Errors of server operations; `http::error` turns them into Consul's status codes and texts.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// No leader is known (Consul's exact text).
    #[error("No cluster leader")]
    NoLeader,
    /// The agent is shutting down.
    #[error("agent is shutting down")]
    ShuttingDown,
    /// A referenced object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// A Raft or storage failure.
    #[error("{0}")]
    Internal(String),
    /// No server of the named datacenter is known or reachable (Consul's text).
    #[error("No path to datacenter")]
    NoPathToDatacenter(String),
}

/// Consul's read consistency modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Served by the leader without a quorum round.
    #[default]
    Default,
    /// Served by any server.
    Stale,
    /// The leader confirms leadership with a quorum first.
    Consistent,
}

impl Consistency {
    /// The `X-Consul-Effective-Consistency` value.
    pub fn header_value(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

/// Options of a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryOptions {
    /// Block until the index passes this value (0: do not block).
    pub min_index: u64,
    /// How long to block at most (before jitter).
    pub wait: Duration,
    pub consistency: Consistency,
}

/// What a read reports besides its value.
#[derive(Debug, Clone, Copy)]
pub struct QueryMeta {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
    pub consistency: Consistency,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub datacenter: String,
    /// `primary_datacenter`: where global ACL objects live.
    pub primary_datacenter: String,
    /// The DNS domain (server certificates name `server.<dc>.<domain>`).
    pub domain: String,
    /// `auto_encrypt.allow_tls`: sign client agents' certificate requests.
    pub auto_encrypt_allow_tls: bool,
    pub node_name: String,
    pub node_id: String,
    /// This node's advertised address.
    pub address: String,
    /// `ip:port` of server RPC.
    pub rpc_addr: String,
    pub rpc_port: u16,
    pub session_ttl_min: Duration,
    /// How long tombstones are kept before GC (Consul: 15m).
    pub tombstone_ttl: Duration,
    /// How often the leader loops run.
    pub leader_tick: Duration,
    /// How long a request waits for a leader before failing (Consul's `rpc_hold_timeout`, 7s).
    pub rpc_hold_timeout: Duration,
    /// How long a caught-up learner must stay healthy before it becomes a voter (autopilot's
    /// `server_stabilization_time`, 10s).
    pub server_stabilization_time: Duration,
    /// A client agent: no Raft state of its own; every write and catalog read goes to a
    /// server over RPC (the servers come from gossip, see [`Server::set_servers`]).
    pub client_mode: bool,
    /// Test only ([`crate::agent::Tuning::unsafe_local_reads`]): reads skip the barrier.
    pub unsafe_local_reads: bool,
}

/// The server RPC listener and the client this server dials peers with.
#[derive(Debug)]
pub struct RpcSetup {
    /// `None` on client agents, which serve no RPC.
    pub listener: Option<crate::rpc::RpcListener>,
    pub client: crate::rpc::RpcClient,
    /// TLS for the listener (the client carries its own).
    pub tls: Option<Arc<crate::tls::AgentTls>>,
}

type Reply = oneshot::Sender<Result<Response, Error>>;

/// A node's catalog entries: the node, its services and its checks by ID.
pub type NodeEntries = (
    Option<crate::state::types::Node>,
    std::collections::BTreeMap<String, crate::state::types::Service>,
    std::collections::BTreeMap<String, crate::state::types::HealthCheck>,
);

/// An HTTP API request a client agent hands to a server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProxyRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes_vec")]
    pub body: Vec<u8>,
}

/// The server's answer to a [`ProxyRequest`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes_vec")]
    pub body: Vec<u8>,
}

/// Bytes as a msgpack binary, not a list of integers.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Runs a proxied request through the local HTTP API.
pub type HttpHook =
    Arc<dyn Fn(ProxyRequest) -> std::pin::Pin<Box<dyn Future<Output = ProxyResponse> + Send>> + Send + Sync>;

struct Inner {
    raft: Raft,
    node_id: u64,
    cfg: ServerConfig,
    state: Arc<StateStore>,
    writer: mpsc::Sender<(Command, Reply)>,
    session_deadlines: Mutex<HashMap<String, Instant>>,
    /// Leader lease: how long a leader may go without a quorum acknowledgement.
    lease: Duration,
    /// How long a leader may answer default reads from its own state after a quorum last
    /// acknowledged it: openraft's `election_timeout_min`, half the time a follower refuses
    /// to vote for another candidate after hearing from the leader
    /// (`election_timeout_max`), so no other leader can have taken writes meanwhile.
    read_lease: Duration,
    /// When the leader last sent us entries or a heartbeat (followers).
    last_contact: Mutex<Option<Instant>>,
    client: crate::rpc::RpcClient,
    /// Server RPC addresses known from gossip (client agents).
    servers: parking_lot::RwLock<Vec<String>>,
    /// Runs a proxied HTTP request through this server's API (set by the agent).
    http_hook: std::sync::OnceLock<HttpHook>,
    /// The WAN router and coordinates (servers with a WAN pool).
    wan: parking_lot::RwLock<wan::WanView>,
    /// ACL replication from the primary (run by a secondary's leader; read by every server).
    acl_replication: crate::acl::replication::SharedStatus,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A running server. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("node", &self.inner.cfg.node_name).finish()
    }
}

const MAX_BATCH: usize = 512;

impl Server {
    /// Starts Raft, the write batcher and the leader loops.
    pub async fn start(
        cfg: ServerConfig,
        ro: RaftOptions,
        rpc: RpcSetup,
    ) -> Result<Server, raft::StartError> {
        let state = Arc::new(StateStore::new());
        let raft = raft::start(&ro, state.clone(), rpc.client.clone()).await?;
        let (tx, rx) = mpsc::channel(4096);
        let wan = parking_lot::RwLock::new(wan::WanView::new(&cfg.datacenter));
        let acl_replication = crate::acl::replication::new_status(&cfg.datacenter, &cfg.primary_datacenter);
        let inner = Arc::new(Inner {
            raft,
            node_id: ro.node_id,
            cfg,
            state,
            writer: tx,
            session_deadlines: Mutex::new(HashMap::new()),
            last_contact: Mutex::new(None),
            lease: Duration::from_millis(500 * u64::from(ro.raft_multiplier.max(1))),
            read_lease: Duration::from_millis(150 * u64::from(ro.raft_multiplier.max(1))),
            client: rpc.client,
            servers: parking_lot::RwLock::new(Vec::new()),
            http_hook: std::sync::OnceLock::new(),
            wan,
            acl_replication,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let server = Server { inner };
        server.inner.tasks.spawn(batcher(server.inner.raft.clone(), rx));
        server.inner.tasks.spawn(leader::run(server.clone()));
        if let Some(listener) = rpc.listener {
            let handler = rpc::handler(&server);
            let stop = server.inner.shutdown.clone();
            server.inner.tasks.spawn(crate::rpc::serve(listener, handler, rpc.tls.clone(), stop));
        }
        Ok(server)
    }

    /// The state store (local reads, no consistency check).
    pub fn state(&self) -> &StateStore {
        &self.inner.state
    }

    /// Server settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.cfg
    }

    /// Raft metrics.
    pub fn metrics(&self) -> raft::Metrics {
        self.inner.raft.metrics().borrow().clone()
    }

    /// Whether this server is the leader right now: Raft says so and, in a multi-server
    /// cluster, a quorum acknowledged it within the leader lease (Consul's
    /// `leader_lease_timeout`, 500 ms × `raft_multiplier`). A leader cut off from its quorum
    /// therefore stops serving reads and writes instead of answering stale data.
    pub fn is_leader(&self) -> bool {
        let m = self.metrics();
        if m.current_leader != Some(self.inner.node_id) {
            return false;
        }
        let voters = m.membership_config.membership().voter_ids().count();
        voters <= 1 || m.millis_since_quorum_ack.is_some_and(|ms| ms <= self.inner.lease.as_millis() as u64)
    }

    /// Whether this leader may answer a default read from its own state, or hand out its
    /// applied index as a read index. Stricter than [`Server::is_leader`] in two ways, both
    /// found by the robustness suite or its analysis (docs/robustness.md):
    /// - entries an earlier leader committed are known to be applied here only once an
    ///   entry of this leader's own term is (its blank entry; Raft §8), so a leader elected
    ///   a moment ago waits for that;
    /// - the lease is the read lease (shorter than any follower's vote lease), not Consul's
    ///   `leader_lease_timeout`, which outlasts an election and let a cut-off leader answer
    ///   reads after its successor had taken writes.
    fn serves_reads(&self) -> bool {
        let m = self.metrics();
        if m.current_leader != Some(self.inner.node_id) {
            return false;
        }
        if m.last_applied.map(|l| l.leader_id.term) != Some(m.current_term) {
            return false;
        }
        let voters = m.membership_config.membership().voter_ids().count();
        voters <= 1
            || m.millis_since_quorum_ack.is_some_and(|ms| ms <= self.inner.read_lease.as_millis() as u64)
    }

    /// This server's ACL replication status (see [`crate::acl::replication`]).
    pub fn acl_replication(&self) -> &crate::acl::replication::SharedStatus {
        &self.inner.acl_replication
    }

    /// Sends an RPC to the leader of this datacenter.
    pub async fn call_leader<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, Error> {
        let addr = self.leader_addr().ok_or(Error::NoLeader)?;
        self.inner.client.call(&addr, path, req, timeout).await.map_err(|e| Error::Internal(e.to_string()))
    }

    /// The leader's RPC address, if a leader is known.
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.metrics();
        let id = m.current_leader?;
        m.membership_config.membership().get_node(&id).map(|n| n.rpc_addr.clone())
    }

    /// RPC addresses of the voters.
    pub fn peers(&self) -> Vec<String> {
        let m = self.metrics();
        let mem = m.membership_config.membership();
        mem.voter_ids().filter_map(|id| mem.get_node(&id).map(|n| n.rpc_addr.clone())).collect()
    }

    /// Waits until this server leads, up to `timeout`.
    pub async fn wait_leader(&self, timeout: Duration) -> bool {
        raft::wait_leader(&self.inner.raft, self.inner.node_id, timeout).await
    }

    /// Registers this server in the catalog (node, `consul` service, `serfHealth`); the leader
    /// loop keeps doing it after each election, the agent does it once before serving.
    pub async fn register_self(&self) -> bool {
        leader::register_self(self).await
    }

    /// Commits a write through Raft (batched with concurrent writes) and returns its response.
    /// On a follower the write is forwarded to the leader. Without a leader the write waits
    /// up to `rpc_hold_timeout` for one (Consul's behaviour) before failing with
    /// `No cluster leader`.
    pub async fn write(&self, cmd: Command) -> Result<Response, Error> {
        if self.is_client() {
            return self.call_servers(rpc::WRITE_ANY, &cmd).await.and_then(|r| r);
        }
        let cmd = &cmd;
        self.on_leader(|addr| async move {
            match addr {
                None => self.write_local(cmd.clone()).await,
                Some(addr) => self.forward_once(&addr, rpc::WRITE, cmd).await.and_then(|r| r),
            }
        })
        .await
    }

    /// Runs `call` against the leader: with `None` on the leader itself, with the leader's
    /// RPC address on a follower. Without a leader (or when the one known is unreachable) it
    /// retries for up to `rpc_hold_timeout` (Consul's behaviour) before `No cluster leader`.
    async fn on_leader<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + self.inner.cfg.rpc_hold_timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            let r = match self.leader_addr() {
                _ if self.is_leader() => call(None).await,
                Some(addr) => call(Some(addr)).await,
                None => Err(Error::NoLeader),
            };
            match r {
                Err(Error::NoLeader) if Instant::now() < deadline && !self.inner.shutdown.is_cancelled() => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Whether this is a client agent (no Raft state).
    pub fn is_client(&self) -> bool {
        self.inner.cfg.client_mode
    }

    /// Sets the server RPC addresses a client agent talks to (from gossip).
    pub fn set_servers(&self, mut addrs: Vec<String>) {
        addrs.sort();
        *self.inner.servers.write() = addrs;
    }

    /// The server RPC addresses a client agent knows.
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers.read().clone()
    }

    /// Client agents: sends a call to one of the known servers (in random order, the next
    /// one when a server cannot be reached), waiting up to `rpc_hold_timeout` for one.
    pub async fn call_servers<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        self.call_servers_with(path, req, self.inner.cfg.rpc_hold_timeout.max(Duration::from_secs(1)) * 4)
            .await
    }

    /// [`Server::call_servers`] with a per-call timeout. A call that may have reached a
    /// server without an answer coming back is tried on the next server only when running
    /// it twice is harmless (not for writes, nor for proxied requests other than GET/HEAD).
    pub async fn call_servers_with<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, Error> {
        self.call_servers_retrying(path, req, timeout, path != rpc::WRITE_ANY && path != rpc::HTTP).await
    }

    async fn call_servers_retrying<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
        idempotent: bool,
    ) -> Result<Resp, Error> {
        let deadline = Instant::now() + self.inner.cfg.rpc_hold_timeout;
        loop {
            let mut servers = self.servers();
            rand::seq::SliceRandom::shuffle(&mut servers[..], &mut rand::rng());
            for addr in &servers {
                match self.inner.client.call(addr, path, req, timeout).await {
                    Ok(r) => return Ok(r),
                    Err(crate::rpc::RpcError::Unreachable { .. }) => continue,
                    Err(crate::rpc::RpcError::NoAnswer { .. }) if idempotent => continue,
                    Err(e) => return Err(Error::Internal(e.to_string())),
                }
            }
            if Instant::now() >= deadline || self.inner.shutdown.is_cancelled() {
                return Err(if servers.is_empty() {
                    Error::Internal("No known Consul servers".into())
                } else {
                    Error::NoLeader
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// This node's catalog entries: the node, its services and its checks (anti-entropy).
    /// Servers read their own store; client agents ask a server.
    pub async fn node_entries(&self, node: &str) -> Result<NodeEntries, Error> {
        if self.is_client() {
            return self.call_servers(rpc::NODE_ENTRIES, &node.to_owned()).await;
        }
        Ok(self.local_node_entries(node))
    }

    fn local_node_entries(&self, node: &str) -> NodeEntries {
        self.state().read(|s| {
            (
                s.nodes.get(node).cloned(),
                s.services.get(node).cloned().unwrap_or_default(),
                s.checks.get(node).cloned().unwrap_or_default(),
            )
        })
    }

    /// Installs the function that runs proxied HTTP requests through this server's API.
    pub fn set_http_hook(&self, hook: HttpHook) {
        let _ = self.inner.http_hook.set(hook);
    }

    /// Client agents: runs an HTTP API request on a server and returns its answer.
    pub async fn proxy_http(&self, req: ProxyRequest, timeout: Duration) -> Result<ProxyResponse, Error> {
        let idempotent = matches!(req.method.as_str(), "GET" | "HEAD");
        self.call_servers_retrying(rpc::HTTP, &req, timeout, idempotent).await
    }

    /// Sends a call to the leader. A peer that cannot be reached counts as "no leader" (the
    /// caller retries); an error answer is returned as is.
    async fn forward<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        let timeout = self.inner.cfg.rpc_hold_timeout.max(Duration::from_secs(1));
        match self.inner.client.call(addr, path, req, timeout).await {
            Ok(r) => Ok(r),
            Err(crate::rpc::RpcError::Unreachable { .. } | crate::rpc::RpcError::NoAnswer { .. }) => {
                Err(Error::NoLeader)
            }
            Err(e) => Err(Error::Internal(e.to_string())),
        }
    }

    /// [`Server::forward`] for a call that must not run twice (a write): when the leader
    /// may have received it but no answer came back, the caller gets an error saying so
    /// instead of a retry that could apply the write a second time (a CAS that succeeded,
    /// then answered `false` on its retry; found by the robustness suite).
    async fn forward_once<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        let timeout = self.inner.cfg.rpc_hold_timeout.max(Duration::from_secs(1));
        match self.inner.client.call(addr, path, req, timeout).await {
            Ok(r) => Ok(r),
            Err(crate::rpc::RpcError::Unreachable { .. }) => Err(Error::NoLeader),
            Err(e @ crate::rpc::RpcError::NoAnswer { .. }) => Err(Error::Internal(format!(
                "{e}: the leader may or may not have applied the write; read it back before retrying"
            ))),
            Err(e) => Err(Error::Internal(e.to_string())),
        }
    }

    /// Records contact from the leader (an append or heartbeat arrived).
    fn touch_contact(&self) {
        *self.inner.last_contact.lock() = Some(Instant::now());
    }

    /// Milliseconds since the leader was last heard from (0 on the leader).
    pub fn last_contact_ms(&self) -> u64 {
        if self.is_leader() {
            return 0;
        }
        match *self.inner.last_contact.lock() {
            Some(t) => t.elapsed().as_millis() as u64,
            None => u64::MAX / 2,
        }
    }

    /// On the leader: confirms with a quorum that this server still leads and returns the
    /// index a linearizable read must have applied. A round that misses its quorum while this
    /// server still leads (heartbeats answered after their timeout on a loaded machine; found
    /// by `benches/compare` at 256 clients) is tried again within `rpc_hold_timeout`, the
    /// time Consul gives an RPC to find a leader, instead of failing the read.
    async fn confirm_leadership(&self) -> Result<u64, Error> {
        use openraft::error::{CheckIsLeaderError, RaftError};
        let deadline = Instant::now() + self.inner.cfg.rpc_hold_timeout;
        loop {
            match self.inner.raft.ensure_linearizable().await {
                Ok(log_id) => return Ok(log_id.map_or(0, |l| l.index)),
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))
                    if self.is_leader()
                        && Instant::now() < deadline
                        && !self.inner.shutdown.is_cancelled() =>
                {
                    telemetry::incr(names::READ_QUORUM_RETRIES, &[]);
                }
                Err(_) => return Err(Error::NoLeader),
            }
        }
    }

    /// On the leader: the index a reader must have applied to see every write acknowledged
    /// before this call (`consistent`: after confirming leadership with a quorum).
    async fn leader_read_index(&self, consistent: bool) -> Result<u64, Error> {
        if consistent && self.is_leader() {
            return self.confirm_leadership().await;
        }
        if !consistent && self.serves_reads() {
            // Not openraft's metrics: they report an apply after its answer has left, so a
            // write just acknowledged could be missing from a read index taken from them
            // (found by the robustness suite).
            return Ok(self.inner.state.applied_index());
        }
        Err(Error::NoLeader)
    }

    /// Adds a server: as a learner first, a voter once it has caught up and stayed healthy for
    /// `server_stabilization_time`. Forwarded to the leader when called on a follower.
    pub async fn add_server(&self, id: u64, node: ServerNode) -> Result<(), Error> {
        if self.is_leader() {
            return self.add_server_local(id, node).await;
        }
        let addr = self.leader_addr().ok_or(Error::NoLeader)?;
        self.forward(&addr, rpc::ADD_SERVER, &(id, node)).await.and_then(|r| r)
    }

    async fn add_server_local(&self, id: u64, node: ServerNode) -> Result<(), Error> {
        use openraft::ChangeMembers;
        let raft = &self.inner.raft;
        let mem = self.metrics().membership_config.membership().clone();
        if mem.voter_ids().any(|v| v == id) {
            return Ok(());
        }
        // It must answer RPC as a server first: over TLS with verify_server_hostname, a node
        // whose certificate is not a server's never gets into the configuration.
        let probe: Result<String, _> =
            self.inner.client.call(&node.rpc_addr, rpc::PING, &(), Duration::from_secs(5)).await;
        if let Err(e) = probe {
            return Err(Error::Internal(format!("{} does not answer server RPC: {e}", node.name)));
        }
        raft.add_learner(id, node, true)
            .await
            .map_err(|e| Error::Internal(format!("adding learner {id}: {e}")))?;
        let stabilize = self.inner.cfg.server_stabilization_time;
        if !stabilize.is_zero() {
            tokio::time::sleep(stabilize).await;
        }
        raft.change_membership(ChangeMembers::AddVoterIds(std::collections::BTreeSet::from([id])), false)
            .await
            .map(drop)
            .map_err(|e| Error::Internal(format!("promoting {id} to voter: {e}")))
    }

    /// Removes a server from the Raft configuration (voter or learner).
    pub async fn remove_server(&self, id: u64) -> Result<(), Error> {
        if self.is_leader() {
            return self.remove_server_local(id).await;
        }
        let addr = self.leader_addr().ok_or(Error::NoLeader)?;
        self.forward(&addr, rpc::REMOVE_SERVER, &id).await.and_then(|r| r)
    }

    async fn remove_server_local(&self, id: u64) -> Result<(), Error> {
        use openraft::ChangeMembers;
        use std::collections::BTreeSet;
        let raft = &self.inner.raft;
        let mem = self.metrics().membership_config.membership().clone();
        if mem.voter_ids().any(|v| v == id) {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| Error::Internal(format!("removing voter {id}: {e}")))?;
        }
        if mem.get_node(&id).is_some() {
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(|e| Error::Internal(format!("removing server {id}: {e}")))?;
        }
        Ok(())
    }

    /// Initializes a new cluster of `members` (`bootstrap_expect`); a no-op when this server
    /// already has a configuration.
    pub async fn bootstrap_cluster(
        &self,
        members: std::collections::BTreeMap<u64, ServerNode>,
    ) -> Result<(), Error> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(|e| Error::Internal(e.to_string()))? {
            return Ok(());
        }
        raft.initialize(members).await.map_err(|e| Error::Internal(format!("bootstrapping: {e}")))
    }

    /// This server's Raft node ID.
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The Raft instance (operator endpoints, tests).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The local write path (leader only): the group-commit batcher.
    async fn write_local(&self, cmd: Command) -> Result<Response, Error> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let _timer = write_timer(&cmd);
        let (tx, rx) = oneshot::channel();
        self.inner.writer.send((cmd, tx)).await.map_err(|_| Error::ShuttingDown)?;
        // A leader that lost its quorum cannot commit; do not wait forever.
        let limit = self.inner.cfg.rpc_hold_timeout.max(Duration::from_secs(1)) * 2;
        match tokio::time::timeout(limit, rx).await {
            Ok(r) => r.map_err(|_| Error::ShuttingDown)?,
            Err(_) => Err(Error::Internal(format!(
                "timed out after {limit:?} waiting for the write to commit: no quorum of servers is reachable"
            ))),
        }
    }

    /// Resets the TTL timer of a session just created. The timers live on the leader (like
    /// Consul, not replicated), so a follower forwards the reset.
    pub async fn renew_session_timer(&self, id: &str) {
        if let Err(e) = self.renew_session(id).await {
            tracing::warn!(session = %id, error = %e, "starting the session TTL timer on the leader failed");
        }
    }

    /// Renews a session (`/v1/session/renew`): the leader resets its TTL timer and returns
    /// it; `Ok(None)` when it does not exist. A follower forwards the renewal to the leader,
    /// and without a leader the call waits up to `rpc_hold_timeout` for one, like a write,
    /// so a renewal that lands on any server during an election still reaches the timer.
    pub async fn renew_session(&self, id: &str) -> Result<Option<Session>, Error> {
        let id = &id.to_owned();
        self.on_leader(|addr| async move {
            match addr {
                None => Ok(self.renew_session_local(id)),
                Some(addr) => self.forward(&addr, rpc::SESSION_RENEW, id).await.and_then(|r| r),
            }
        })
        .await
    }

    /// On the leader: resets the session's timer to twice its TTL (Consul's grace) and
    /// returns it, `None` when it does not exist.
    fn renew_session_local(&self, id: &str) -> Option<Session> {
        let s = self.state().read(|st| st.sessions.get(id).cloned())?;
        if let Some(ttl) = crate::config::parse_go_duration(&s.ttl).ok().filter(|t| !t.is_zero()) {
            self.inner.session_deadlines.lock().insert(id.to_string(), Instant::now() + ttl * 2);
        }
        Some(s)
    }

    /// The leader's answer to a forwarded renewal; a server that no longer leads says so,
    /// and the caller retries with the new leader.
    pub(super) fn renew_session_rpc(&self, id: &str) -> Result<Option<Session>, Error> {
        if self.is_leader() { Ok(self.renew_session_local(id)) } else { Err(Error::NoLeader) }
    }

    /// Makes a read on this server as fresh as its consistency mode promises: the leader
    /// answers directly (`consistent`: after a quorum round); a follower asks the leader for
    /// its read index and waits until it has applied that far (Raft's read-index protocol),
    /// so default and consistent reads work on any server without forwarding the query.
    /// Waits until this server has applied everything the leader had committed when asked
    /// (a follower that may lag, e.g. before deciding that a token does not exist).
    pub async fn catch_up(&self) -> Result<(), Error> {
        self.barrier(Consistency::Default).await
    }

    /// Waits until this server has applied Raft index `index` (a write a follower forwarded
    /// to the leader, before it reads the written object back).
    pub async fn wait_applied(&self, index: u64) -> Result<(), Error> {
        if self.is_client() {
            return Ok(());
        }
        self.inner
            .raft
            .wait(Some(self.inner.cfg.rpc_hold_timeout))
            .applied_index_at_least(Some(index), "a write applied here")
            .await
            .map(drop)
            .map_err(|_| Error::Internal(format!("index {index} was committed but not applied here in time")))
    }

    async fn barrier(&self, c: Consistency) -> Result<(), Error> {
        if c == Consistency::Stale || self.inner.cfg.unsafe_local_reads {
            return Ok(());
        }
        let consistent = c == Consistency::Consistent;
        if consistent && self.is_leader() {
            return self.confirm_leadership().await.map(drop);
        }
        if !consistent && self.serves_reads() {
            return Ok(());
        }
        let deadline = Instant::now() + self.inner.cfg.rpc_hold_timeout;
        let index = loop {
            let r = match self.leader_addr() {
                Some(addr) => self.forward(&addr, rpc::READ_INDEX, &consistent).await.and_then(|r| r),
                None => Err(Error::NoLeader),
            };
            match r {
                Ok(i) => break i,
                Err(Error::NoLeader) if Instant::now() < deadline && !self.inner.shutdown.is_cancelled() => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        self.inner
            .raft
            .wait(Some(wait))
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map(drop)
            .map_err(|_| Error::NoLeader)
    }

    /// Runs `f` with Consul's blocking-query semantics. `f` returns the value, the index to
    /// report and the index of what it watches; the call returns at once when the reported
    /// index is past `min_index`, otherwise when the watched index changes or `wait` (plus
    /// up to wait/16 jitter) elapses.
    pub async fn query<T>(
        &self,
        opts: &QueryOptions,
        tables: &[Table],
        f: impl Fn(&Store) -> (T, u64, u64),
    ) -> Result<(T, QueryMeta), Error> {
        self.barrier(opts.consistency).await?;
        let mut rxs = self.inner.state.subscribe(tables);
        let (mut value, mut index, watch0) = self.inner.state.read(&f);
        if opts.min_index > 0 && index <= opts.min_index {
            let _blocking = telemetry::in_flight(names::QUERIES_BLOCKING, &[]);
            let wait = opts.wait;
            let jitter = wait / 16;
            let extra = if jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(rand::rng().random_range(0..jitter.as_nanos() as u64))
            };
            let deadline = tokio::time::Instant::now() + wait + extra;
            loop {
                let changed = wait_any(&mut rxs);
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = self.inner.shutdown.cancelled() => break,
                }
                let (v, i, w) = self.inner.state.read(&f);
                (value, index) = (v, i);
                if w != watch0 {
                    break;
                }
            }
            if let Consistency::Default = opts.consistency {
                self.barrier(opts.consistency).await?;
            }
        }
        Ok((value, self.meta(index, opts.consistency)))
    }

    /// Query metadata for a read done now.
    pub fn meta(&self, index: u64, consistency: Consistency) -> QueryMeta {
        let m = self.metrics();
        QueryMeta {
            index: index.max(1),
            known_leader: m.current_leader.is_some(),
            last_contact_ms: self.last_contact_ms().min(u64::from(u32::MAX)),
            consistency,
        }
    }

    /// Stops the leader loops and Raft.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let _ = self.inner.raft.shutdown().await;
    }

    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

async fn wait_any(rxs: &mut [tokio::sync::watch::Receiver<u64>]) {
    let futs: Vec<_> = rxs.iter_mut().map(|r| Box::pin(r.changed())).collect();
    if futs.is_empty() {
        return std::future::pending().await;
    }
    let _ = futures::future::select_all(futs).await;
}

/// Group commit: while one batch is being committed, new writes queue up and go out together
/// as the next Raft entry (at most two entries in flight).
async fn batcher(raft: Raft, mut rx: mpsc::Receiver<(Command, Reply)>) {
    let permits = Arc::new(Semaphore::new(2));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let batch = take_batch(first, &mut rx, |(c, _)| payload_hint(c));
        let raft = raft.clone();
        tokio::spawn(async move {
            commit_batch(&raft, batch).await;
            drop(permit);
        });
    }
}

/// The most value bytes one group-commit entry gathers (it still takes at least one write).
/// Replication sends at most 256 KiB of log per AppendEntries and must deliver it within one
/// heartbeat interval: an entry of hundreds of MiB (512 writes of 512 KiB) would never reach
/// a follower.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// The queued items that go into one entry: `first`, then whatever is already waiting, up to
/// `MAX_BATCH` items and about `MAX_BATCH_BYTES` of payload.
fn take_batch<T>(first: T, rx: &mut mpsc::Receiver<T>, size: impl Fn(&T) -> usize) -> Vec<T> {
    let mut bytes = size(&first);
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(item) => {
                bytes += size(&item);
                batch.push(item);
            }
            Err(_) => break,
        }
    }
    batch
}

/// The bytes of KV values a command carries (the bulk of any large write).
fn payload_hint(c: &Command) -> usize {
    use crate::state::txn::TxnOp;
    let kv = |op: &crate::state::kv::KvOp| op.value.as_ref().map_or(0, Vec::len) + op.key.len();
    match c {
        Command::Kv(op) => kv(op),
        Command::Txn(ops) => ops.iter().map(|o| if let TxnOp::Kv(op) = o { kv(op) } else { 256 }).sum(),
        Command::Batch(cs) => cs.iter().map(payload_hint).sum(),
        _ => 256,
    }
}

async fn commit_batch(raft: &Raft, mut batch: Vec<(Command, Reply)>) {
    telemetry::incr_by(names::RAFT_APPLY, &[], batch.len() as f64);
    let _timer = telemetry::timer(names::RAFT_COMMIT_TIME, &[]);
    if batch.len() == 1 {
        let Some((cmd, reply)) = batch.pop() else { return };
        let _ = reply.send(client_write(raft, cmd).await);
        return;
    }
    let (cmds, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().unzip();
    match client_write(raft, Command::Batch(cmds)).await {
        Ok(Response::Batch(rs)) => {
            for (r, reply) in rs.into_iter().zip(replies) {
                let _ = reply.send(Ok(r));
            }
        }
        Ok(other) => {
            for reply in replies {
                let _ = reply.send(Err(Error::Internal(format!("unexpected batch response {other:?}"))));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

async fn client_write(raft: &Raft, cmd: Command) -> Result<Response, Error> {
    use openraft::error::{ClientWriteError, RaftError};
    match raft.client_write(cmd).await {
        Ok(r) => Ok(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(Error::NoLeader),
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}

/// Consul's endpoint timer for a client write (`consul.kvs.apply` by op, `consul.txn.apply`, ...).
fn write_timer(cmd: &Command) -> Option<telemetry::Timer> {
    let (name, op) = match cmd {
        Command::Kv(op) => (names::KVS_APPLY, Some(kv_op(op.verb))),
        Command::Txn(_) => (names::TXN_APPLY, None),
        Command::Register(_) => (names::CATALOG_REGISTER, None),
        Command::Deregister(_) => (names::CATALOG_DEREGISTER, None),
        Command::SessionCreate(_) | Command::SessionDestroy(_) => (names::SESSION_APPLY, None),
        Command::TombstoneReap(_)
        | Command::Batch(_)
        | Command::Restore(_)
        | Command::AutopilotSet { .. }
        | Command::CoordinateBatchUpdate(_)
        | Command::AutoEncryptCaSet(_)
        | Command::PreparedQuery(_)
        | Command::FederationStateSet(_)
        | Command::Acl(_) => {
            return None;
        }
    };
    Some(telemetry::timer(name, &op.map(|op| ("op", op)).into_iter().collect::<Vec<_>>()))
}

/// Consul's spelling of a single-key KV write's verb.
fn kv_op(verb: KvVerb) -> &'static str {
    match verb {
        KvVerb::Set => "set",
        KvVerb::Cas => "cas",
        KvVerb::Lock => "lock",
        KvVerb::Unlock => "unlock",
        KvVerb::Delete => "delete",
        KvVerb::DeleteCas => "delete-cas",
        KvVerb::DeleteTree => "delete-tree",
        _ => "other",
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::state::kv::KvOp;

    fn put(bytes: usize) -> Command {
        Command::Kv(KvOp { value: Some(vec![b'v'; bytes]), ..KvOp::new(KvVerb::Set, "k") })
    }

    #[test]
    fn a_batch_stops_at_a_megabyte_of_values_but_takes_at_least_one_write() {
        let (tx, mut rx) = mpsc::channel(1024);
        for _ in 0..10 {
            tx.try_send(put(300 * 1024)).unwrap();
        }
        // 4 × 300 KiB passes 1 MiB: the fourth is the last in the batch.
        assert_eq!(take_batch(put(300 * 1024), &mut rx, payload_hint).len(), 4);
        // One write bigger than the cap goes alone.
        assert_eq!(take_batch(put(2 << 20), &mut rx, payload_hint).len(), 1);
        // Small writes fill a batch up to its count.
        let (tx, mut rx) = mpsc::channel(1024);
        for _ in 0..1000 {
            tx.try_send(put(10)).unwrap();
        }
        assert_eq!(take_batch(put(10), &mut rx, payload_hint).len(), MAX_BATCH);
    }
}
