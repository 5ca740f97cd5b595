//! Cross-datacenter calls: the WAN router (which server of which datacenter to ask, from WAN
//! gossip) and forwarding to another datacenter.
//!
//! ```text
//!  ?dc=dc2 on a dc1 server ─► forward_dc("dc2", req) ─► router.route("dc2") ─► servers in order
//!       ─► /rpc/v1/http on a dc2 server (TLS name server.dc2.<domain>) ─► its router serves it
//!          unreachable ─► notify_failed (to the back), next server; none left ─► "No path to datacenter"
//! ```
//! Client agents have no WAN view: they hand the request to a local server, which forwards.

use std::collections::HashMap;
use std::time::Duration;

use sekisho_wan::coordinate::Coordinate;
use sekisho_wan::router::Router;

use super::{Error, ProxyRequest, ProxyResponse, Server};

/// A server of some datacenter, as WAN gossip shows it.
pub use sekisho_wan::router::ServerInfo as WanServer;

/// What this server knows of the WAN: the router and the coordinates of the WAN pool.
#[derive(Debug)]
pub(super) struct WanView {
    router: Router,
    /// This server's WAN coordinate.
    local: Option<Coordinate>,
    /// (dc, server name) → WAN coordinate.
    coords: HashMap<(String, String), Coordinate>,
    /// Whether a WAN pool feeds this view (servers with `ports.serf_wan`).
    enabled: bool,
}

impl WanView {
    pub(super) fn new(local_dc: &str) -> WanView {
        WanView {
            router: Router::new(local_dc, rand::random()),
            local: None,
            coords: HashMap::new(),
            enabled: false,
        }
    }
}

/// How often a forwarded call is retried on the next server before giving up.
const MAX_ATTEMPTS: usize = 3;

impl Server {
    /// Replaces the WAN view (called by the agent from WAN gossip).
    pub fn set_wan_members(
        &self,
        servers: Vec<WanServer>,
        local: Option<Coordinate>,
        coords: HashMap<(String, String), Coordinate>,
    ) {
        let mut w = self.inner.wan.write();
        w.router.set_members(servers);
        w.local = local;
        w.coords = coords;
        w.enabled = true;
    }

    /// Known datacenters, nearest first (the local one first, then by median WAN RTT).
    pub fn datacenters_by_distance(&self) -> Vec<String> {
        let w = self.inner.wan.read();
        w.router.datacenters_by_distance(w.local.as_ref(), |dc, name| {
            w.coords.get(&(dc.to_owned(), name.to_owned())).cloned()
        })
    }

    /// The servers of every datacenter and their WAN coordinates (`/v1/coordinate/datacenters`).
    pub fn wan_servers(&self) -> Vec<(WanServer, Option<Coordinate>)> {
        let w = self.inner.wan.read();
        let mut out = Vec::new();
        for dc in w.router.datacenters() {
            for s in w.router.servers(&dc) {
                let c = if s.dc == self.inner.cfg.datacenter && s.name == self.inner.cfg.node_name {
                    w.local.clone()
                } else {
                    w.coords.get(&(s.dc.clone(), s.name.clone())).cloned()
                };
                out.push((s, c));
            }
        }
        out
    }

    /// The median estimated RTT from this server to `dc`'s servers (`None` without coordinates).
    pub fn median_rtt(&self, dc: &str) -> Option<Duration> {
        let w = self.inner.wan.read();
        let local = w.local.as_ref()?;
        w.router.median_rtt(dc, local, |dc, name| w.coords.get(&(dc.to_owned(), name.to_owned())).cloned())
    }

    /// Sends an RPC to a server of `dc` (not the local one), trying the next server when one
    /// cannot be reached. A client agent asks a local server to do it ([`Server::call_servers`]
    /// then forwards).
    pub async fn call_dc<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        dc: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, Error> {
        let no_path = || Error::NoPathToDatacenter(dc.to_owned());
        let addrs = self.inner.wan.read().router.route(dc).map_err(|e| {
            tracing::debug!(dc, error = ?e, "no route to datacenter");
            no_path()
        })?;
        for addr in addrs.iter().take(MAX_ATTEMPTS) {
            match self.inner.client.call_dc(dc, addr, path, req, timeout).await {
                Ok(r) => return Ok(r),
                Err(crate::rpc::RpcError::Unreachable { detail, .. }) => {
                    tracing::debug!(dc, addr, detail, "a server of another datacenter did not answer");
                    self.inner.wan.write().router.notify_failed(dc, addr);
                }
                Err(e) => return Err(Error::Internal(e.to_string())),
            }
        }
        Err(no_path())
    }

    /// Runs an HTTP API request on a server of datacenter `dc` and returns its answer. The
    /// local datacenter is served by this server's own API; client agents go through a
    /// local server.
    pub async fn forward_dc(
        &self,
        dc: &str,
        req: ProxyRequest,
        timeout: Duration,
    ) -> Result<ProxyResponse, Error> {
        let mut req = req;
        req.path_and_query = with_dc(&req.path_and_query, dc);
        if self.is_client() {
            return self.proxy_http(req, timeout).await;
        }
        if dc == self.inner.cfg.datacenter {
            let hook = self.inner.http_hook.get().cloned();
            let hook = hook.ok_or_else(|| Error::Internal("this server has no HTTP API".into()))?;
            return Ok(hook(req).await);
        }
        self.call_dc(dc, super::rpc::HTTP, &req, timeout).await
    }
}

/// `path_and_query` with `dc=<dc>` (replacing any `dc` already there).
fn with_dc(path_and_query: &str, dc: &str) -> String {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && *p != "dc" && !p.starts_with("dc="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("dc={}", crate::client::url::escape_query(dc)));
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_dc_replaces_or_adds_the_parameter() {
        assert_eq!(super::with_dc("/v1/kv/a", "dc2"), "/v1/kv/a?dc=dc2");
        assert_eq!(super::with_dc("/v1/kv/a?dc=dc1&recurse", "dc2"), "/v1/kv/a?recurse&dc=dc2");
        assert_eq!(super::with_dc("/v1/kv/a?index=5", "dc3"), "/v1/kv/a?index=5&dc=dc3");
    }
}
