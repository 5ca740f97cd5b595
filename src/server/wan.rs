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
use crate::state::FederationState;

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
    /// Gateway federation: measured RTT to each other datacenter (through the gateways);
    /// used for ordering in place of WAN coordinates.
    rtts: HashMap<String, Duration>,
    /// Gateway federation is on.
    via_gateways: bool,
}

impl WanView {
    pub(super) fn new(local_dc: &str) -> WanView {
        WanView {
            router: Router::new(local_dc, rand::random()),
            local: None,
            coords: HashMap::new(),
            enabled: false,
            rtts: HashMap::new(),
            via_gateways: false,
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

    /// Gateway federation: every other datacenter is reached through `gateways` (this
    /// datacenter's gateways); `dcs` are the datacenters known, each with whether it answered
    /// and its measured RTT.
    pub fn set_gateway_view(&self, gateways: &[String], dcs: Vec<(String, bool, Option<Duration>)>) {
        let local_dc = self.inner.cfg.datacenter.clone();
        let mut servers = Vec::new();
        let mut rtts = HashMap::new();
        for (dc, alive, rtt) in dcs.into_iter().filter(|(dc, ..)| *dc != local_dc) {
            for (i, g) in gateways.iter().enumerate() {
                servers.push(WanServer {
                    name: format!("gateway-{i}"),
                    dc: dc.clone(),
                    rpc_addr: g.clone(),
                    alive,
                });
            }
            if let Some(rtt) = rtt {
                rtts.insert(dc, rtt);
            }
        }
        let mut w = self.inner.wan.write();
        w.router.set_members(servers);
        w.rtts = rtts;
        w.via_gateways = true;
        w.enabled = true;
    }

    /// Whether this server federates through gateways.
    pub fn federates_via_gateways(&self) -> bool {
        self.inner.wan.read().via_gateways
    }

    /// Known datacenters, nearest first (the local one first, then by median WAN RTT).
    pub fn datacenters_by_distance(&self) -> Vec<String> {
        let w = self.inner.wan.read();
        if w.via_gateways {
            let mut measured: Vec<(Duration, String)> = Vec::new();
            let mut rest = Vec::new();
            for dc in w.router.datacenters().into_iter().filter(|dc| *dc != self.inner.cfg.datacenter) {
                match w.rtts.get(&dc) {
                    Some(r) => measured.push((*r, dc)),
                    None => rest.push(dc),
                }
            }
            measured.sort();
            let mut out = vec![self.inner.cfg.datacenter.clone()];
            out.extend(measured.into_iter().map(|(_, dc)| dc));
            out.extend(rest);
            return out;
        }
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
        if w.via_gateways {
            return w.rtts.get(dc).copied();
        }
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
                // It may have run there: not retried on another server (a write would apply
                // twice).
                Err(e @ crate::rpc::RpcError::NoAnswer { .. }) => {
                    self.inner.wan.write().router.notify_failed(dc, addr);
                    return Err(Error::Internal(e.to_string()));
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

impl Server {
    /// On a server of the primary: records `fs` (through Raft, only when it changed) and
    /// returns every datacenter's gateways.
    pub async fn federation_sync(&self, fs: FederationState) -> Result<Vec<FederationState>, Error> {
        let cfg = &self.inner.cfg;
        if cfg.datacenter != cfg.primary_datacenter {
            return Err(Error::BadRequest(format!("{} is not the primary datacenter", cfg.datacenter)));
        }
        let known = self.state().read(|s| s.federation_states.get(&fs.datacenter).cloned());
        if known.as_ref() != Some(&fs) {
            self.write(crate::fsm::Command::FederationStateSet(fs)).await?;
            self.catch_up().await?;
        }
        Ok(self.state().read(|s| s.federation_states.values().cloned().collect()))
    }

    /// Reports this datacenter's gateways to the primary (here, or through the gateways)
    /// and returns every datacenter's.
    pub async fn federation_sync_with_primary(
        &self,
        fs: FederationState,
    ) -> Result<Vec<FederationState>, Error> {
        let primary = self.inner.cfg.primary_datacenter.clone();
        if primary == self.inner.cfg.datacenter {
            return self.federation_sync(fs).await;
        }
        let r: Result<Vec<FederationState>, String> =
            self.call_dc(&primary, super::rpc::FEDERATION_SYNC, &fs, Duration::from_secs(5)).await?;
        r.map_err(Error::Internal)
    }

    /// Pings a server of `dc` through the first of `gateways` that answers; the round trip.
    pub async fn ping_dc_via(
        &self,
        dc: &str,
        gateways: &[String],
        timeout: Duration,
    ) -> Result<Duration, Error> {
        let mut last = Error::NoPathToDatacenter(dc.to_owned());
        for g in gateways {
            let t = std::time::Instant::now();
            match self
                .inner
                .client
                .call_dc::<_, serde::de::IgnoredAny>(dc, g, super::rpc::PING, &(), timeout)
                .await
            {
                Ok(_) => return Ok(t.elapsed()),
                Err(e) => last = Error::Internal(e.to_string()),
            }
        }
        Err(last)
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
