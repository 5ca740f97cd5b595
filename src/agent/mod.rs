//! The agent: wires configuration, the server (Raft + state store) and the HTTP API together,
//! and owns their shutdown.
//!
//! ```text
//!  RuntimeConfig ─► Agent::start ─► Server::start (raft, batcher, leader loops)
//!                                 └► http::serve (listener bound before start returns)
//!  PUT /v1/agent/leave ─► leave token ─► AgentHandle::stopped() resolves ─► shutdown()
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RuntimeConfig;
use crate::http::{self, AgentInfo, HttpState};
use crate::raft::{self, RaftOptions, ServerNode};
use crate::server::{Server, ServerConfig};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A listener could not be bound.
    #[error("failed to bind the {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Raft could not start.
    #[error(transparent)]
    Raft(#[from] raft::StartError),
    /// No leader was elected in time.
    #[error("no cluster leader was elected within {0:?}")]
    NoLeader(Duration),
    /// A configuration this version cannot run.
    #[error("{0}")]
    Unsupported(String),
}

/// Internal timings that tests shorten.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// How long KV tombstones are kept (Consul: 15m).
    pub tombstone_ttl: Duration,
    /// Period of the leader loops (session TTL checks, tombstone GC).
    pub leader_tick: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { tombstone_ttl: Duration::from_secs(15 * 60), leader_tick: Duration::from_millis(250) }
    }
}

/// Starts agents.
#[derive(Debug)]
pub struct Agent;

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    http_addr: Option<SocketAddr>,
    server: Server,
    leave: CancellationToken,
    stop_http: CancellationToken,
    tasks: TaskTracker,
}

fn server_config(cfg: &RuntimeConfig, tuning: Tuning) -> ServerConfig {
    let rpc_port = if cfg.ports.server == 0 { 8300 } else { cfg.ports.server };
    ServerConfig {
        datacenter: cfg.datacenter.clone(),
        node_name: cfg.node_name.clone(),
        node_id: cfg.node_id.clone(),
        address: cfg.advertise_addr.to_string(),
        rpc_addr: SocketAddr::new(cfg.advertise_addr, rpc_port).to_string(),
        rpc_port,
        session_ttl_min: cfg.session_ttl_min,
        tombstone_ttl: tuning.tombstone_ttl,
        leader_tick: tuning.leader_tick,
    }
}

fn check_supported(cfg: &RuntimeConfig) -> Result<(), AgentError> {
    if !cfg.server {
        return Err(AgentError::Unsupported(
            "client agents are not implemented yet: start a server with -server -bootstrap, or use -dev"
                .into(),
        ));
    }
    if cfg.bootstrap_expect.is_some_and(|n| n > 1) {
        return Err(AgentError::Unsupported(
            "bootstrap_expect > 1 needs multi-server clustering, which is not implemented yet; use -bootstrap".into(),
        ));
    }
    Ok(())
}

impl Agent {
    /// Starts an agent with default tuning.
    pub async fn start(cfg: RuntimeConfig) -> Result<AgentHandle, AgentError> {
        Self::start_with(cfg, Tuning::default()).await
    }

    /// Starts an agent: binds the HTTP listener, starts Raft and waits for a leader.
    pub async fn start_with(cfg: RuntimeConfig, tuning: Tuning) -> Result<AgentHandle, AgentError> {
        check_supported(&cfg)?;
        let listener = match cfg.ports.http {
            Some(port) => {
                let addr = SocketAddr::new(cfg.http_addr, port);
                let l = TcpListener::bind(addr).await.map_err(|source| AgentError::Bind {
                    what: "HTTP",
                    addr,
                    source,
                })?;
                Some(l)
            }
            None => None,
        };
        let scfg = server_config(&cfg, tuning);
        let ro = RaftOptions {
            node_id: raft::node_id_from_uuid(&cfg.node_id),
            node: ServerNode { name: cfg.node_name.clone(), rpc_addr: scfg.rpc_addr.clone() },
            data_dir: cfg.data_dir.clone(),
            raft_multiplier: cfg.raft_multiplier,
            snapshot_threshold: cfg.raft_snapshot_threshold,
            trailing_logs: cfg.raft_trailing_logs,
        };
        let server = Server::start(scfg, ro).await?;
        let wait = Duration::from_secs(10);
        if !server.wait_leader(wait).await {
            server.shutdown().await;
            return Err(AgentError::NoLeader(wait));
        }
        if !server.register_self().await {
            tracing::warn!("could not register this server in the catalog yet; the leader loop retries");
        }
        let leave = CancellationToken::new();
        let stop_http = CancellationToken::new();
        let tasks = TaskTracker::new();
        let http_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = listener {
            let state =
                HttpState { server: server.clone(), agent: Arc::new(agent_info(&cfg)), leave: leave.clone() };
            let stop = stop_http.clone();
            tasks.spawn(async move {
                if let Err(e) = http::serve(l, state, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            });
        }
        tasks.close();
        tracing::info!(node = %cfg.node_name, dc = %cfg.datacenter, http = ?http_addr, "agent started");
        Ok(AgentHandle { http_addr, server, leave, stop_http, tasks })
    }
}

fn agent_info(cfg: &RuntimeConfig) -> AgentInfo {
    AgentInfo {
        node_name: cfg.node_name.clone(),
        node_id: cfg.node_id.clone(),
        datacenter: cfg.datacenter.clone(),
        primary_datacenter: cfg.primary_datacenter.clone(),
        address: cfg.advertise_addr.to_string(),
        serf_lan_port: cfg.ports.serf_lan,
        server: cfg.server,
        domain: cfg.domain.clone(),
        kv_max_value_size: cfg.kv_max_value_size,
        txn_max_req_len: cfg.txn_max_req_len,
        session_ttl_min: cfg.session_ttl_min,
    }
}

impl AgentHandle {
    /// The bound HTTP address (useful with port 0). Panics if HTTP is disabled.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr.expect("the HTTP API is disabled on this agent")
    }

    /// The server of this agent.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Resolves when the agent was asked to stop itself (`PUT /v1/agent/leave`).
    pub async fn stopped(&self) {
        self.leave.cancelled().await;
    }

    /// Stops HTTP, the leader loops and Raft, and waits for them.
    pub async fn shutdown(self) {
        self.stop_http.cancel();
        self.tasks.wait().await;
        self.server.shutdown().await;
    }
}
