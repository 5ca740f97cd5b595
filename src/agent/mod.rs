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

mod auto_encrypt;
mod coordinate;
mod reconcile;
mod reload;
pub mod wan;

pub use reload::{ConfigSource, ReloadedConfig, Reloader};

use crate::config::RuntimeConfig;
use crate::dns;
use crate::gossip::{Gossip, GossipConfig, Timing};
use crate::http::{self, AgentInfo, HttpState};
use crate::local::sync::SyncTuning;
use crate::local::{self, LocalConfig, LocalState};
use crate::raft::{self, RaftOptions, ServerNode};
use crate::server::{RpcSetup, Server, ServerConfig};

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
    /// A service or check definition in the config files is invalid.
    #[error("{0}")]
    Definitions(String),
    /// Gossip could not start (bind, bad `encrypt` key).
    #[error("{0}")]
    Gossip(String),
    /// The saved local state (API registrations, maintenance) cannot be loaded.
    #[error("{0}")]
    LocalState(String),
    /// The TLS files cannot be used.
    #[error("{0}")]
    Tls(String),
}

/// Internal timings that tests shorten, and the fault-injection hook of test clusters.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// How long KV tombstones are kept (Consul: 15m).
    pub tombstone_ttl: Duration,
    /// Period of the leader loops (session TTL checks, tombstone GC).
    pub leader_tick: Duration,
    /// Anti-entropy and reaper timings.
    pub sync: SyncTuning,
    /// How long requests wait for a leader (Consul's `rpc_hold_timeout`, 7s).
    pub rpc_hold_timeout: Duration,
    /// Autopilot's `server_stabilization_time` (10s).
    pub server_stabilization_time: Duration,
    /// LAN gossip timers (Consul's LAN defaults).
    pub gossip_timing: Timing,
    /// WAN gossip timers (Consul's WAN defaults).
    pub wan_gossip_timing: Timing,
    /// Full member reconciliation period on the leader (Consul: 60s); gossip events also
    /// trigger it.
    pub reconcile_interval: Duration,
    /// Pause between `retry_join` attempts (Consul's `retry_interval`, 30s).
    pub retry_interval: Duration,
    /// Network faults between agents (test clusters); nothing injected by default.
    pub faults: Arc<crate::net::fault::Faults>,
    /// How often the TLS files are checked for changes (reloaded when they change).
    pub tls_watch_interval: Duration,
    /// Backoff of config watches after failed queries.
    pub watch_backoff: crate::watch::Backoff,
    /// How long each ACL replication pull blocks at the primary (so a cut link shows as lag
    /// within about this long).
    pub acl_replication_wait: Duration,
    /// Test only, to show that the robustness suite's checker can fail: default and
    /// `consistent` reads skip the leader check and the read index and answer from this
    /// server's own state, which may be stale. No configuration key reaches it.
    pub unsafe_local_reads: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tombstone_ttl: Duration::from_secs(15 * 60),
            leader_tick: Duration::from_millis(250),
            sync: SyncTuning::default(),
            rpc_hold_timeout: Duration::from_secs(7),
            server_stabilization_time: Duration::from_secs(10),
            gossip_timing: Timing::lan(),
            wan_gossip_timing: Timing::wan(),
            reconcile_interval: Duration::from_secs(60),
            retry_interval: Duration::from_secs(30),
            faults: crate::net::fault::Faults::none(),
            tls_watch_interval: Duration::from_secs(5),
            watch_backoff: crate::watch::Backoff::default(),
            acl_replication_wait: crate::acl::replication::DEFAULT_WAIT,
            unsafe_local_reads: false,
        }
    }
}

/// Starts agents.
#[derive(Debug)]
pub struct Agent;

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    tls: Option<Arc<crate::tls::AgentTls>>,
    dns_addr: Option<SocketAddr>,
    server: Server,
    gossip: Gossip,
    /// The WAN pool member (servers with `ports.serf_wan`).
    wan: Option<Gossip>,
    local: Arc<LocalState>,
    events: Arc<crate::event::Events>,
    leave: CancellationToken,
    stop_http: CancellationToken,
    stop_dns: CancellationToken,
    tasks: TaskTracker,
    watches: Option<Arc<crate::watch::WatchSet>>,
    reloader: Arc<Reloader>,
    /// What the HTTP handlers get (for [`AgentHandle::http_router`]).
    http: HttpState,
}

fn server_config(cfg: &RuntimeConfig, tuning: &Tuning, rpc_port: u16) -> ServerConfig {
    ServerConfig {
        primary_datacenter: cfg.primary_datacenter.clone(),
        datacenter: cfg.datacenter.clone(),
        domain: cfg.domain.clone(),
        auto_encrypt_allow_tls: cfg.tls.auto_encrypt.allow_tls,
        node_name: cfg.node_name.clone(),
        node_id: cfg.node_id.clone(),
        address: cfg.advertise_addr.to_string(),
        rpc_addr: SocketAddr::new(cfg.advertise_addr, rpc_port).to_string(),
        rpc_port,
        session_ttl_min: cfg.session_ttl_min,
        tombstone_ttl: tuning.tombstone_ttl,
        leader_tick: tuning.leader_tick,
        rpc_hold_timeout: tuning.rpc_hold_timeout,
        server_stabilization_time: tuning.server_stabilization_time,
        client_mode: !cfg.server,
        unsafe_local_reads: tuning.unsafe_local_reads,
    }
}

fn check_supported(cfg: &RuntimeConfig) -> Result<(), AgentError> {
    if !cfg.server && cfg.retry_join.is_empty() && cfg.dev {
        return Err(AgentError::Unsupported("-dev runs a server; drop -server=false".into()));
    }
    if let Some(p) = acl_default_policy(cfg).filter(|p| !matches!(*p, "allow" | "deny")) {
        return Err(AgentError::Unsupported(format!(
            "acl.default_policy must be \"allow\" or \"deny\", not {p:?}"
        )));
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
        let acl_config = crate::acl::AclConfig::parse(&cfg.acl).map_err(AgentError::Unsupported)?;
        let audit_log = crate::acl::audit::AuditLog::open(&acl_config.audit, cfg.data_dir.as_deref())
            .map_err(AgentError::Unsupported)?;
        let retention = match cfg.prometheus_retention_time {
            d if d.is_zero() && cfg.dev => Duration::from_secs(60),
            d => d,
        };
        crate::telemetry::configure(retention);
        let tls = crate::tls::AgentTls::load(&cfg).map_err(|e| AgentError::Tls(e.to_string()))?;
        if wan::gateways(&cfg).is_some() && tls.as_ref().is_none_or(|t| t.rpc_client().is_none()) {
            return Err(AgentError::Tls(
                "federation through gateways (federation_gateways / primary_gateways) needs TLS on \
                 server RPC: gateways route by the TLS server name. Set tls.defaults (ca_file, \
                 cert_file, key_file, verify_outgoing = true)"
                    .into(),
            ));
        }
        let lcfg = local_config(&cfg);
        local::parse_config(&lcfg, &cfg.services, &cfg.checks).map_err(AgentError::Definitions)?;
        let watch_specs = config_watches(&cfg)?;
        let templates = config_templates(&cfg)?;
        let https_listener = match cfg.ports.https {
            Some(port) => {
                let addr = SocketAddr::new(cfg.http_addr, port);
                let bind_err = |source| AgentError::Bind { what: "HTTPS", addr, source };
                Some(TcpListener::bind(addr).await.map_err(bind_err)?)
            }
            None => None,
        };
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
        let dns_sockets = match cfg.ports.dns {
            Some(port) => {
                let addr = SocketAddr::new(cfg.dns_addr, port);
                let bound = dns::bind(addr).await;
                Some(bound.map_err(|source| AgentError::Bind { what: "DNS", addr, source })?)
            }
            None => None,
        };
        // Client agents serve no RPC and hold no Raft state.
        let (rpc_listener, rpc_port) = if cfg.server {
            let rpc_bind = SocketAddr::new(cfg.bind_addr, cfg.ports.server);
            let bind_err = |source| AgentError::Bind { what: "server RPC", addr: rpc_bind, source };
            let l = TcpListener::bind(rpc_bind).await.map_err(bind_err)?;
            let port = l.local_addr().map_err(bind_err)?.port();
            (Some(l), port)
        } else {
            (None, cfg.ports.server)
        };
        let gossip = start_gossip(&cfg, &tuning, rpc_port).await?;
        let wan = match wan::start(&cfg, &tuning, rpc_port).await {
            Ok(w) => w,
            Err(e) => {
                gossip.shutdown().await;
                return Err(e);
            }
        };
        if let Some(tls) = tls.as_ref().filter(|t| cfg.tls.auto_encrypt.tls && t.needs_auto_cert()) {
            auto_encrypt::obtain(&cfg, &gossip, tls, &tuning.faults).await;
        }
        let scfg = server_config(&cfg, &tuning, rpc_port);
        let bootstrap = cfg.server && (cfg.bootstrap || cfg.dev || cfg.bootstrap_expect == Some(1));
        let ro = RaftOptions {
            node_id: raft::node_id_from_uuid(&cfg.node_id),
            node: ServerNode { name: cfg.node_name.clone(), rpc_addr: scfg.rpc_addr.clone() },
            data_dir: if cfg.server { cfg.data_dir.clone() } else { None },
            raft_multiplier: cfg.raft_multiplier,
            snapshot_threshold: cfg.raft_snapshot_threshold,
            trailing_logs: cfg.raft_trailing_logs,
            bootstrap,
        };
        let rpc = RpcSetup {
            listener: rpc_listener
                .map(|l| crate::rpc::RpcListener::new(l, crate::rpc::RpcLimits::from_config(&cfg.limits))),
            client: crate::rpc::RpcClient::new(cfg.bind_addr, tuning.faults.clone()).with_tls(tls.clone()),
            tls: tls.clone(),
        };
        let server = match Server::start(scfg, ro, rpc).await {
            Ok(s) => s,
            Err(e) => {
                gossip.shutdown().await;
                if let Some(w) = &wan {
                    w.shutdown().await;
                }
                return Err(e.into());
            }
        };
        let wait = Duration::from_secs(10);
        if bootstrap && !server.wait_leader(wait).await {
            server.shutdown().await;
            return Err(AgentError::NoLeader(wait));
        }
        if bootstrap && !server.register_self().await {
            tracing::warn!("could not register this server in the catalog yet; the leader loop retries");
        }
        let local = match LocalState::new(lcfg, server.clone()) {
            Ok(l) => l,
            Err(e) => {
                server.shutdown().await;
                return Err(AgentError::LocalState(e));
            }
        };
        if let Err(e) = local.load_config(&cfg.services, &cfg.checks) {
            server.shutdown().await;
            return Err(AgentError::Definitions(e));
        }
        let leave = CancellationToken::new();
        let stop_http = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(local::sync::run(local.clone(), stop_http.clone(), tuning.sync));
        let events = crate::event::Events::new(cfg.node_name.clone(), local.clone(), gossip.clone());
        tasks.spawn(events.clone().run(stop_http.clone()));
        if cfg.server {
            let interval = tuning.reconcile_interval;
            let ap = reconcile::Autopilot {
                cleanup_dead_servers: cfg.autopilot_cleanup_dead_servers,
                min_quorum: cfg.autopilot_min_quorum as usize,
            };
            tasks.spawn(reconcile::run(server.clone(), gossip.clone(), interval, ap, stop_http.clone()));
        } else {
            tasks.spawn(reconcile::track_servers(server.clone(), gossip.clone(), stop_http.clone()));
        }
        if let Some(n) = cfg.bootstrap_expect.filter(|&n| n > 1 && cfg.server) {
            tasks.spawn(reconcile::bootstrap_expect(
                server.clone(),
                gossip.clone(),
                n as usize,
                stop_http.clone(),
            ));
        }
        if cfg.server && acl_config.enabled {
            let mut initial = acl_config.tokens.initial_management.clone();
            if initial.is_some() && cfg.datacenter != cfg.primary_datacenter {
                tracing::warn!(
                    "acl.tokens.initial_management is only used in the primary datacenter ({}); \
                     this secondary ignores it and replicates tokens from there",
                    cfg.primary_datacenter
                );
                initial = None;
            }
            tasks.spawn(crate::acl::leader::run(server.clone(), initial, stop_http.clone()));
        }
        if let Some(tls) = tls.clone() {
            if cfg.tls.auto_encrypt.allow_tls {
                let domain = cfg.domain.clone();
                tasks.spawn(auto_encrypt::serve_ca(server.clone(), tls, domain, stop_http.clone()));
            } else if cfg.tls.auto_encrypt.tls {
                let (c, g, f) = (cfg.clone(), gossip.clone(), tuning.faults.clone());
                tasks.spawn(auto_encrypt::renew(c, g, tls, f, stop_http.clone()));
            }
        }
        if !cfg.disable_coordinates {
            let rate = coordinate::SyncRate {
                min: cfg.sync_coordinate_interval_min,
                rate: cfg.sync_coordinate_rate_target,
            };
            let node = cfg.node_name.clone();
            tasks.spawn(coordinate::run(server.clone(), gossip.clone(), node, rate, stop_http.clone()));
        }
        if wan::gateways(&cfg).is_some() {
            tasks.spawn(wan::via_gateways(server.clone(), cfg.clone(), stop_http.clone()));
        }
        if let Some(w) = &wan {
            tasks.spawn(wan::track(server.clone(), w.clone(), stop_http.clone()));
            if !cfg.retry_join_wan.is_empty() {
                let (addrs, every) = (cfg.retry_join_wan.clone(), tuning.retry_interval);
                tasks.spawn(retry_join(w.clone(), addrs, every, stop_http.clone()));
            }
        }
        if !cfg.retry_join.is_empty() {
            tasks.spawn(retry_join(
                gossip.clone(),
                cfg.retry_join.clone(),
                tuning.retry_interval,
                stop_http.clone(),
            ));
        }
        let http_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let https_addr = https_listener.as_ref().and_then(|l| l.local_addr().ok());
        let reloader = Arc::new(Reloader::new(tls.clone(), local.clone()));
        let acl = Arc::new(
            crate::acl::Acl::new(
                acl_config.clone(),
                server.clone(),
                cfg.node_name.clone(),
                cfg.datacenter.clone(),
            )
            .with_token_persistence(cfg.data_dir.as_deref())
            .with_audit_log(audit_log),
        );
        if cfg.server && acl_config.enabled && cfg.datacenter != cfg.primary_datacenter {
            tasks.spawn(crate::acl::replication::run(
                server.clone(),
                acl.clone(),
                tuning.acl_replication_wait,
                stop_http.clone(),
            ));
        }
        let state = HttpState::new(http::HttpShared {
            reloader: reloader.clone(),
            server: server.clone(),
            agent: Arc::new(agent_info(&cfg)),
            local: local.clone(),
            gossip: gossip.clone(),
            wan: wan.clone(),
            leave: leave.clone(),
            tls: tls.clone(),
            events: events.clone(),
            acl: acl.clone(),
            limits: Arc::new(http::limits::HttpLimits::new(&cfg.limits)),
        });
        if cfg.server {
            server.set_http_hook(http::proxy::hook(http::router(state.clone())));
        }
        if let Some(l) = listener {
            let (state, stop) = (state.clone(), stop_http.clone());
            tasks.spawn(async move {
                if let Err(e) = http::serve(l, state, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            });
        }
        let http_state = state.clone();
        if let (Some(l), Some(tls)) = (https_listener, tls.clone()) {
            let stop = stop_http.clone();
            tasks.spawn(async move {
                if let Err(e) = http::https::serve_https(l, state, tls, stop).await {
                    tracing::error!(error = %e, "HTTPS server failed");
                }
            });
        }
        if let Some(addr) = http_addr {
            let (ev, node, enabled) = (events.clone(), cfg.node_name.clone(), !cfg.disable_remote_exec);
            tasks.spawn(crate::exec::serve(ev, addr, node, enabled, acl.clone(), stop_http.clone()));
        }
        if let Some(tls) = tls.clone() {
            tasks.spawn(watch_tls_files(tls, tuning.tls_watch_interval, stop_http.clone()));
        }
        let stop_dns = CancellationToken::new();
        let dns_addr = dns_sockets.as_ref().and_then(|(udp, _)| udp.local_addr().ok());
        if let Some((udp, tcp)) = dns_sockets {
            let mut ctx = dns::DnsContext::from_config(&cfg, server.clone());
            ctx.acl = acl_config.enabled.then(|| acl.clone());
            let stop = stop_dns.clone();
            tasks.spawn(async move {
                if let Err(e) = dns::serve(udp, tcp, ctx, stop).await {
                    tracing::error!(error = %e, "DNS server failed");
                }
            });
        }
        if let Some(addr) = http_addr {
            for (template, wait) in templates {
                let mut ccfg = crate::client::ClientConfig::new(addr.to_string());
                ccfg.token = acl.tokens().agent.filter(|t| !t.is_empty());
                let client = crate::client::Client::new(ccfg);
                let opts = crate::template::runner::Options { wait, ..Default::default() };
                let stop = stop_http.clone();
                tasks.spawn(async move {
                    let mut sink = std::io::sink();
                    if let Err(e) =
                        crate::template::runner::run(client, vec![template], opts, stop, &mut sink).await
                    {
                        tracing::error!("template: {e}");
                    }
                });
            }
        }
        let watches =
            http_addr.map(|a| Arc::new(crate::watch::WatchSet::start(a, &watch_specs, tuning.watch_backoff)));
        if let Some(w) = &watches {
            reloader.set_watches(w.clone());
        }
        tasks.close();
        tracing::info!(node = %cfg.node_name, dc = %cfg.datacenter, http = ?http_addr, dns = ?dns_addr, "agent started");
        Ok(AgentHandle {
            http_addr,
            https_addr,
            dns_addr,
            server,
            gossip,
            wan,
            local,
            events,
            tls,
            leave,
            stop_http,
            stop_dns,
            tasks,
            watches,
            reloader,
            http: http_state,
        })
    }
}

/// Starts LAN gossip with Consul's member tags.
async fn start_gossip(cfg: &RuntimeConfig, tuning: &Tuning, rpc_port: u16) -> Result<Gossip, AgentError> {
    let bind = SocketAddr::new(cfg.bind_addr, cfg.ports.serf_lan);
    let mut g = GossipConfig::new(cfg.node_name.clone(), bind);
    g.advertise = SocketAddr::new(cfg.advertise_addr, 0);
    let role = if cfg.server { reconcile::ROLE_SERVER } else { "node" };
    let mut tags = std::collections::BTreeMap::from([
        ("role".to_owned(), role.to_owned()),
        ("dc".to_owned(), cfg.datacenter.clone()),
        ("id".to_owned(), cfg.node_id.clone()),
        ("build".to_owned(), format!("{}:sekisho-{}", crate::CONSUL_COMPAT_VERSION, crate::VERSION)),
        ("vsn".to_owned(), "2".to_owned()),
        ("segment".to_owned(), String::new()),
    ]);
    if cfg.server {
        tags.insert("port".to_owned(), rpc_port.to_string());
        tags.insert("raft_vsn".to_owned(), "3".to_owned());
        if let Some(n) = cfg.bootstrap_expect {
            tags.insert("expect".to_owned(), n.to_string());
        }
    }
    g.tags = tags;
    if let Some(key) = &cfg.encrypt {
        let k = crate::gossip::decode_key(key)
            .map_err(|e| AgentError::Gossip(format!("invalid encrypt key: {e}")))?;
        g.keys = vec![k];
    }
    g.keyring_file = (!cfg.disable_keyring_file)
        .then(|| cfg.data_dir.as_ref().map(|d| d.join(crate::gossip::LAN_KEYRING_FILE)))
        .flatten();
    g.verify_incoming = cfg.encrypt_verify_incoming;
    g.verify_outgoing = cfg.encrypt_verify_outgoing;
    g.timing = tuning.gossip_timing.clone();
    g.faults = tuning.faults.clone();
    Gossip::start(g).await.map_err(|e| AgentError::Gossip(format!("starting LAN gossip on {bind}: {e}")))
}

/// Reloads the TLS files when they change, and re-reports certificate expiry daily.
async fn watch_tls_files(tls: Arc<crate::tls::AgentTls>, every: Duration, stop: CancellationToken) {
    let mut last_report = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        tls.reload_if_changed();
        if last_report.elapsed() >= Duration::from_secs(24 * 3600) {
            last_report = tokio::time::Instant::now();
            tls.report_expiry(std::time::SystemTime::now());
        }
    }
}

/// Joins the `retry_join` addresses, retrying until one answers (Consul's `retry_join`).
async fn retry_join(gossip: Gossip, addrs: Vec<String>, every: Duration, stop: CancellationToken) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match gossip.join(&addrs).await {
            Ok(n) => {
                tracing::info!(contacted = n, "joined the cluster");
                return;
            }
            Err(e) => tracing::warn!(attempt, error = %e, "join failed; retrying in {every:?}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// The config file watches, validated; they talk to this agent's HTTP API.
fn config_watches(cfg: &RuntimeConfig) -> Result<Vec<crate::watch::WatchSpec>, AgentError> {
    let specs = crate::watch::parse_config_watches(&cfg.watches).map_err(AgentError::Definitions)?;
    if !specs.is_empty() && cfg.ports.http.is_none() {
        return Err(AgentError::Definitions("watch plans require an HTTP endpoint (ports.http)".into()));
    }
    Ok(specs)
}

/// The `template` stanzas, parsed and loaded: a bad stanza or a template that does not parse
/// stops the agent at start, naming the stanza or the file, line and column.
type ConfigTemplate = (
    (crate::template::runner::TemplateSpec, crate::template::engine::Template),
    Option<(Duration, Duration)>,
);

fn config_templates(cfg: &RuntimeConfig) -> Result<Vec<ConfigTemplate>, AgentError> {
    use crate::template::runner;
    let mut out = Vec::new();
    for (i, v) in cfg.templates.iter().enumerate() {
        let (spec, wait) = runner::parse_config(i, v).map_err(AgentError::Definitions)?;
        let mut loaded = runner::load(std::slice::from_ref(&spec)).map_err(AgentError::Definitions)?;
        out.push((loaded.remove(0), wait));
    }
    if !out.is_empty() && cfg.ports.http.is_none() {
        return Err(AgentError::Definitions("template stanzas require an HTTP endpoint (ports.http)".into()));
    }
    Ok(out)
}

fn local_config(cfg: &RuntimeConfig) -> LocalConfig {
    LocalConfig {
        node_name: cfg.node_name.clone(),
        datacenter: cfg.datacenter.clone(),
        node_id: cfg.node_id.clone(),
        address: cfg.advertise_addr.to_string(),
        enable_script_checks: cfg.enable_script_checks,
        enable_local_script_checks: cfg.enable_local_script_checks,
        max_output: cfg.check_output_max_size,
        data_dir: cfg.data_dir.clone(),
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
        acl_default_policy: if acl_default_policy(cfg) == Some("deny") { "deny" } else { "allow" },
        data_dir: cfg.data_dir.clone(),
    }
}

/// `acl.default_policy` as written.
fn acl_default_policy(cfg: &RuntimeConfig) -> Option<&str> {
    cfg.acl.get("default_policy").and_then(serde_json::Value::as_str)
}

impl AgentHandle {
    /// The bound HTTP address (useful with port 0). Panics if HTTP is disabled.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr.expect("the HTTP API is disabled on this agent")
    }

    /// The bound HTTPS address, `None` when HTTPS is disabled.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The agent's TLS state, `None` without TLS settings.
    pub fn tls(&self) -> Option<&Arc<crate::tls::AgentTls>> {
        self.tls.as_ref()
    }

    /// The bound DNS address (UDP and TCP share it), `None` when DNS is disabled.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns_addr
    }

    /// The server of this agent.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The LAN gossip member of this agent.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// The WAN pool member of this server (`None` on client agents or without `ports.serf_wan`).
    pub fn wan(&self) -> Option<&Gossip> {
        self.wan.as_ref()
    }

    /// The agent's own services and checks.
    pub fn local(&self) -> &Arc<LocalState> {
        &self.local
    }

    /// User events fired and delivered on this agent.
    pub fn events(&self) -> &Arc<crate::event::Events> {
        &self.events
    }

    /// Re-reads the config files (SIGHUP, `sekisho reload`); an error changes nothing.
    pub async fn reload(&self) -> Result<(), String> {
        self.reloader.reload().await
    }

    /// Sets how [`reload`](Self::reload) re-reads the config files.
    pub fn set_config_source(&self, source: ConfigSource) {
        self.reloader.set_source(source);
    }

    /// How many config watches run.
    pub fn watch_count(&self) -> usize {
        self.watches.as_ref().map_or(0, |w| w.len())
    }

    /// Resolves when the agent was asked to stop itself (`PUT /v1/agent/leave`).
    pub async fn stopped(&self) {
        self.leave.cancelled().await;
    }

    /// The HTTP API's router over this agent's state, to drive in process (no socket).
    pub fn http_router(&self) -> axum::Router {
        http::router(self.http.clone())
    }

    /// Stops HTTP, DNS, the leader loops and Raft, and waits for them.
    pub async fn shutdown(self) {
        // Streaming monitors end on the leave token; open ones would hold the HTTP server's
        // graceful stop open.
        self.leave.cancel();
        if let Some(w) = &self.watches {
            w.shutdown().await;
        }
        self.stop_http.cancel();
        self.stop_dns.cancel();
        self.tasks.wait().await;
        self.local.stop();
        self.gossip.shutdown().await;
        if let Some(w) = &self.wan {
            w.shutdown().await;
        }
        self.server.shutdown().await;
    }
}
