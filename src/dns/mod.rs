//! The DNS interface: Consul's names (`web.service.consul`, `db1.node.consul`, RFC 2782
//! `_web._tcp.service.consul`, `.addr.`, PTR, SOA/NS) answered from the catalog, prepared
//! queries (`<q>.query.consul`, answered by their execution, `query.rs`), over UDP and TCP
//! on one port, with everything outside the domain forwarded to `recursors`.
//!
//! ```text
//!  UDP / TCP ─► hickory Server ─► handler::Handler::handle_request
//!                                   │ name::Zones::classify (pure)
//!                                   ├─ in domain / alt_domain ─► catalog::CatalogRead (state reads)
//!                                   │                            └► answer::Answerer (pure records)
//!                                   │                               └► trim::fit (UDP/TCP budget, TC)
//!                                   ├─ outside, recursors set ──► recursor::Recursor (relay, RA)
//!                                   └─ outside, no recursors ───► REFUSED
//!                                 handler::send: the one place every response leaves from
//! ```
//!
//! hickory types stay inside this module; the rest of the agent only sees [`DnsContext`],
//! [`bind`] and [`serve`].

mod answer;
mod catalog;
pub(crate) use catalog::{DnsRead, serve_dc_rpc, serve_rpc};
mod handler;
mod name;
mod query;
mod recursor;
mod trim;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::config::{DnsConfig, RuntimeConfig};
use crate::server::Server;

/// How long an idle TCP connection may stay open between queries.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// How many times [`bind`] retries when port 0 gave UDP a port whose TCP twin is taken.
const BIND_ATTEMPTS: usize = 8;

/// Everything the DNS server needs to answer.
#[derive(Debug, Clone)]
pub struct DnsContext {
    /// Where catalog reads go (the local state store for now).
    pub server: Server,
    /// The local datacenter; names qualified with another one are answered SERVFAIL.
    pub datacenter: String,
    /// This agent's node name.
    pub node_name: String,
    /// `domain`, without the trailing dot (`consul`).
    pub domain: String,
    /// `alt_domain`, answered like `domain`, in the domain asked.
    pub alt_domain: Option<String>,
    /// Upstream servers for names outside the domains; empty means REFUSED.
    pub recursors: Vec<SocketAddr>,
    /// `dns_config`.
    pub config: DnsConfig,
    /// ACLs: answers show what the agent's default token (else anonymous) may read.
    pub acl: Option<std::sync::Arc<crate::acl::Acl>>,
    /// `translate_wan_addrs`: other datacenters' nodes are answered with their WAN address.
    pub translate_wan_addrs: bool,
}

impl DnsContext {
    /// The context for an agent running `cfg`. Recursors that do not parse (config
    /// validation already rejects them) are skipped with a warning.
    pub fn from_config(cfg: &RuntimeConfig, server: Server) -> DnsContext {
        let recursors = cfg
            .recursors
            .iter()
            .filter_map(|r| {
                let addr = parse_recursor(r);
                if addr.is_none() {
                    tracing::warn!(recursor = %r, "ignoring a recursor that is not an IP or IP:port");
                }
                addr
            })
            .collect();
        DnsContext {
            server,
            datacenter: cfg.datacenter.clone(),
            node_name: cfg.node_name.clone(),
            domain: cfg.domain.clone(),
            alt_domain: cfg.alt_domain.clone(),
            recursors,
            config: cfg.dns.clone(),
            acl: None,
            translate_wan_addrs: cfg.translate_wan_addrs,
        }
    }
}

/// A response as [`PacketAnswerer::answer`] encoded it, or why it could not be.
pub type Encoded = Result<Vec<u8>, String>;

/// The request handler of [`serve`] without its sockets: answers raw packets in process
/// (the fuzz targets, [`crate::fuzzing`]).
pub struct PacketAnswerer(handler::Handler);

impl std::fmt::Debug for PacketAnswerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketAnswerer").finish_non_exhaustive()
    }
}

impl PacketAnswerer {
    /// The handler [`serve`] would run with `ctx`.
    pub fn new(ctx: DnsContext) -> PacketAnswerer {
        PacketAnswerer(handler::Handler::new(ctx))
    }

    /// Answers one packet as received over TCP (`tcp`) or UDP. `Err`: it does not decode
    /// (hickory answers FORMERR or drops it before the handler); `Ok(None)`: nothing is sent
    /// (a response, or a handler that did not answer); `Ok(Some(Err))`: the response could not be
    /// encoded within the transport's size.
    pub async fn answer(&self, raw: &[u8], tcp: bool) -> Result<Option<Encoded>, String> {
        handler::answer_raw(&self.0, raw, tcp).await
    }
}

/// Parses a `recursors` entry: `ip`, `ip:port` or `[ipv6]:port`; the port defaults to 53.
pub fn parse_recursor(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>().ok().or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// Binds UDP and TCP on the same address. With port 0, UDP picks a free port first and TCP
/// takes the same one, retrying with a new port a few times when TCP finds it taken.
pub async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free UDP+TCP port pair")))
}

/// Serves DNS on `udp` and `tcp` until `stop` is cancelled. Returns an error only when a
/// listener fails on its own; malformed packets never end it (hickory drops packets shorter
/// than a header and answers undecodable ones FORMERR).
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    ctx: DnsContext,
    stop: CancellationToken,
) -> io::Result<()> {
    let mut server = hickory_server::Server::new(handler::Handler::new(ctx));
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    let shutdown = server.shutdown_token().clone();
    let done = server.block_until_done();
    tokio::pin!(done);
    let result = tokio::select! {
        r = &mut done => r,
        _ = stop.cancelled() => {
            shutdown.cancel();
            done.await
        }
    };
    result.map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursor_addresses_default_to_port_53() {
        let cases = [
            ("8.8.8.8", Some("8.8.8.8:53")),
            ("127.0.0.1:5353", Some("127.0.0.1:5353")),
            ("::1", Some("[::1]:53")),
            ("[::1]:5300", Some("[::1]:5300")),
            ("dns.example", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = parse_recursor(input).map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "{input:?}");
        }
    }

    #[tokio::test]
    async fn bind_puts_udp_and_tcp_on_one_free_port() {
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(tcp.local_addr().unwrap().port(), port);
    }
}
