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

mod leader;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fsm::{Command, Response};
use crate::raft::{self, Raft, RaftOptions};
use crate::state::{StateStore, Store, Table};

/// Errors of server operations; `http::error` turns them into Consul's status codes and texts.
#[derive(Debug, Clone, thiserror::Error)]
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
}

type Reply = oneshot::Sender<Result<Response, Error>>;

struct Inner {
    raft: Raft,
    node_id: u64,
    cfg: ServerConfig,
    state: Arc<StateStore>,
    writer: mpsc::Sender<(Command, Reply)>,
    session_deadlines: Mutex<HashMap<String, Instant>>,
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
    pub async fn start(cfg: ServerConfig, ro: RaftOptions) -> Result<Server, raft::StartError> {
        let state = Arc::new(StateStore::new());
        let raft = raft::start(&ro, state.clone()).await?;
        let (tx, rx) = mpsc::channel(4096);
        let inner = Arc::new(Inner {
            raft,
            node_id: ro.node_id,
            cfg,
            state,
            writer: tx,
            session_deadlines: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let server = Server { inner };
        server.inner.tasks.spawn(batcher(server.inner.raft.clone(), rx));
        server.inner.tasks.spawn(leader::run(server.clone()));
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

    /// Whether this server is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.metrics().current_leader == Some(self.inner.node_id)
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
    pub async fn write(&self, cmd: Command) -> Result<Response, Error> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let (tx, rx) = oneshot::channel();
        self.inner.writer.send((cmd, tx)).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Resets the TTL timer of a session (leader only, like Consul, not replicated).
    pub fn renew_session_timer(&self, id: &str, ttl: Duration) {
        self.inner.session_deadlines.lock().insert(id.to_string(), Instant::now() + ttl * 2);
    }

    async fn barrier(&self, c: Consistency) -> Result<(), Error> {
        match c {
            Consistency::Stale => Ok(()),
            Consistency::Default if self.is_leader() => Ok(()),
            Consistency::Default => Err(Error::NoLeader),
            Consistency::Consistent => {
                self.inner.raft.ensure_linearizable().await.map(|_| ()).map_err(|_| Error::NoLeader)
            }
        }
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
            last_contact_ms: 0,
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
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit_batch(&raft, batch).await;
            drop(permit);
        });
    }
}

async fn commit_batch(raft: &Raft, mut batch: Vec<(Command, Reply)>) {
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
