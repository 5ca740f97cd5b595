//! The federation gateway (`sekisho gateway`): one TCP port on the WAN per datacenter that
//! routes TLS connections by their server name (SNI) without terminating them.
//!
//! ```text
//!  dc1 server ──TLS(SNI server.dc2.consul)──► gateway dc1 ──splice──► gateway dc2 ──splice──► a dc2 server
//!             (mutual TLS end to end: the gateways read the ClientHello's name, nothing else)
//!  SNI server.<own dc>            ─► one of this datacenter's servers (next on failure)
//!  SNI <node>.server.<own dc>     ─► that server
//!  SNI server.<other dc>          ─► a gateway of that datacenter
//!  anything else (no TLS, no SNI, unknown datacenter) ─► closed, counted, logged at debug
//! ```
//!
//! The routing logic is [`sekisho_wan::gateway`]; this module is the sockets. Outgoing
//! connections and every forwarded chunk obey the [`Faults`] of the test harness.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use sekisho_wan::gateway::{MAX_HELLO, Route, RoutingTable, SniError, classify_sni, client_hello_sni};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::fault::{Faults, Verdict};

/// How a gateway is set up.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Its datacenter.
    pub datacenter: String,
    /// The DNS domain server names end in (`consul`).
    pub domain: String,
    /// Where it listens (the WAN side).
    pub bind: SocketAddr,
    /// `(node name, RPC address)` of its datacenter's servers (names may be empty).
    pub servers: Vec<(String, String)>,
    /// Gateway addresses of other datacenters.
    pub remote: BTreeMap<String, Vec<String>>,
    /// How long a new connection may take to send its ClientHello.
    pub handshake_timeout: Duration,
    /// Test fault injection (none in production).
    pub faults: Arc<Faults>,
}

impl GatewayConfig {
    /// A gateway of `datacenter` on `bind`, routing nowhere yet.
    pub fn new(datacenter: &str, bind: SocketAddr) -> GatewayConfig {
        GatewayConfig {
            datacenter: datacenter.to_owned(),
            domain: "consul".to_owned(),
            bind,
            servers: Vec::new(),
            remote: BTreeMap::new(),
            handshake_timeout: Duration::from_secs(5),
            faults: Faults::none(),
        }
    }
}

/// Connection counters.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Connections spliced to a server of this datacenter.
    pub local: AtomicU64,
    /// Connections spliced to another datacenter's gateway.
    pub remote: AtomicU64,
    /// Connections refused (not TLS, no or unknown name, nothing reachable).
    pub refused: AtomicU64,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    local: SocketAddr,
    table: Arc<RwLock<RoutingTable>>,
    stats: Arc<GatewayStats>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

struct Shared {
    table: Arc<RwLock<RoutingTable>>,
    stats: Arc<GatewayStats>,
    domain: String,
    faults: Arc<Faults>,
    ip: IpAddr,
    handshake_timeout: Duration,
    next: AtomicUsize,
}

impl Gateway {
    /// Binds and starts serving.
    pub async fn start(cfg: GatewayConfig) -> std::io::Result<Gateway> {
        let listener = TcpListener::bind(cfg.bind).await?;
        let local = listener.local_addr()?;
        let table = Arc::new(RwLock::new(RoutingTable {
            datacenter: cfg.datacenter.clone(),
            servers: cfg.servers.clone(),
            remote: cfg.remote.clone(),
        }));
        let stats = Arc::new(GatewayStats::default());
        let shared = Arc::new(Shared {
            table: table.clone(),
            stats: stats.clone(),
            domain: cfg.domain.clone(),
            faults: cfg.faults.clone(),
            ip: local.ip(),
            handshake_timeout: cfg.handshake_timeout,
            next: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (t, s) = (tasks.clone(), stop.clone());
        tasks.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = s.cancelled() => return,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let (shared, s) = (shared.clone(), s.clone());
                        t.spawn(async move {
                            tokio::select! {
                                () = s.cancelled() => {}
                                () = serve(shared, stream, peer) => {}
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("gateway: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        tracing::info!(dc = %cfg.datacenter, addr = %local, "gateway listening");
        Ok(Gateway { local, table, stats, stop, tasks })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Replaces the servers of its datacenter.
    pub fn set_servers(&self, servers: Vec<(String, String)>) {
        self.table.write().servers = servers;
    }

    /// Replaces the other datacenters' gateways.
    pub fn set_remote(&self, remote: BTreeMap<String, Vec<String>>) {
        self.table.write().remote = remote;
    }

    /// The routing table now.
    pub fn table(&self) -> RoutingTable {
        self.table.read().clone()
    }

    /// Connection counters.
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

async fn serve(shared: Arc<Shared>, mut client: TcpStream, peer: SocketAddr) {
    let _ = client.set_nodelay(true);
    let refuse = |why: String| {
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "gateway: refused a connection: {why}");
    };
    let mut hello = Vec::with_capacity(2048);
    let sni = tokio::time::timeout(shared.handshake_timeout, async {
        let mut buf = [0u8; 4096];
        loop {
            match client_hello_sni(&hello) {
                Err(SniError::Incomplete) if hello.len() < MAX_HELLO => {}
                other => return other.map_err(|e| e.to_string()),
            }
            match client.read(&mut buf).await {
                Ok(0) => return Err("closed before a complete ClientHello".to_owned()),
                Ok(n) => hello.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    let sni = match sni {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return refuse(e),
        Err(_) => return refuse("no ClientHello in time".into()),
    };
    let Some(target) = classify_sni(&sni, &shared.domain) else {
        return refuse(format!("server name {sni:?} is not routed here"));
    };
    let rotate = shared.next.fetch_add(1, Ordering::Relaxed);
    let route = shared.table.read().route(&target, rotate);
    let (addrs, remote) = match route {
        Route::Local(a) => (a, false),
        Route::Remote(a) => (a, true),
        Route::Unroutable(why) => return refuse(format!("{sni}: {why}")),
    };
    for addr in addrs {
        let Ok(to) = addr.parse::<SocketAddr>() else { continue };
        let Some(mut upstream) = connect(&shared, to).await else { continue };
        if !forward(&shared, to.ip(), &hello, &mut upstream).await {
            continue;
        }
        let counter = if remote { &shared.stats.remote } else { &shared.stats.local };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, sni, %to, "gateway: spliced");
        splice(&shared, client, upstream, to.ip()).await;
        return;
    }
    refuse(format!("{sni}: no target accepted the connection"));
}

async fn connect(shared: &Shared, to: SocketAddr) -> Option<TcpStream> {
    if shared.faults.verdict(shared.ip, to.ip()) == Verdict::Drop {
        return None;
    }
    let socket = if to.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.ok()?;
    if !shared.ip.is_unspecified() && shared.ip.is_ipv4() == to.is_ipv4() {
        socket.bind(SocketAddr::new(shared.ip, 0)).ok()?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(3), socket.connect(to)).await.ok()?.ok()?;
    let _ = stream.set_nodelay(true);
    Some(stream)
}

/// Writes `bytes` to `to` through the fault layer; false when dropped or failed.
async fn forward(shared: &Shared, to: IpAddr, bytes: &[u8], w: &mut (impl AsyncWriteExt + Unpin)) -> bool {
    match shared.faults.verdict(shared.ip, to) {
        Verdict::Drop => false,
        Verdict::Deliver(d) => {
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            w.write_all(bytes).await.is_ok()
        }
    }
}

/// Copies both ways until either side closes or the fault layer cuts the link; then both
/// sides are closed (TLS and HTTP/2 do not use half-closed connections).
async fn splice(shared: &Shared, client: TcpStream, upstream: TcpStream, to: IpAddr) {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if forward(shared, to, &buf[..n], &mut uw).await => {}
                Ok(_) => break,
            }
        }
        let _ = uw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if forward(shared, to, &buf[..n], &mut cw).await => {}
                Ok(_) => break,
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
