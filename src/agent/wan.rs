//! The WAN pool (servers only): a second gossip pool on `ports.serf_wan` whose members are
//! named `<node>.<dc>`, and the task that keeps the server's datacenter router
//! ([`crate::server::Server::set_wan_members`]) in step with it.
//!
//! ```text
//!  WAN gossip events / every second ─► members with role=consul ─► ServerInfo{name, dc,
//!      rpc_addr = advertised WAN ip : tag port, alive} ─► router; coordinates ─► router view
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{AgentError, Tuning};
use crate::config::RuntimeConfig;
use crate::gossip::{Gossip, GossipConfig, Member, MemberStatus};
use crate::server::{Server, WanServer};

/// Where the WAN keyring is saved, beside the LAN one (Consul's name).
pub const WAN_KEYRING_FILE: &str = "serf/remote.keyring";

/// This server's name in the WAN pool.
pub fn wan_name(node: &str, dc: &str) -> String {
    format!("{node}.{dc}")
}

/// The gateways a server federates through (`federation_gateways`, else
/// `primary_gateways`); `None`: classic federation over the WAN pool.
pub(super) fn gateways(cfg: &RuntimeConfig) -> Option<Vec<String>> {
    let g = if cfg.federation_gateways.is_empty() { &cfg.primary_gateways } else { &cfg.federation_gateways };
    (cfg.server && !g.is_empty()).then(|| g.clone())
}

/// Starts the WAN pool member of a server; `None` on client agents, with
/// `ports.serf_wan = -1`, or when the server federates through gateways.
pub(super) async fn start(
    cfg: &RuntimeConfig,
    tuning: &Tuning,
    rpc_port: u16,
) -> Result<Option<Gossip>, AgentError> {
    if let Some(g) = gateways(cfg) {
        tracing::info!(gateways = ?g, "federating through gateways: no WAN gossip pool");
        return Ok(None);
    }
    let Some(port) = cfg.ports.serf_wan.filter(|_| cfg.server) else { return Ok(None) };
    let bind = SocketAddr::new(cfg.bind_addr, port);
    let mut g = GossipConfig::new(wan_name(&cfg.node_name, &cfg.datacenter), bind);
    g.advertise = SocketAddr::new(cfg.advertise_addr_wan.unwrap_or(cfg.advertise_addr), 0);
    g.tags = std::collections::BTreeMap::from([
        ("role".to_owned(), super::reconcile::ROLE_SERVER.to_owned()),
        ("dc".to_owned(), cfg.datacenter.clone()),
        ("id".to_owned(), cfg.node_id.clone()),
        ("port".to_owned(), rpc_port.to_string()),
        ("build".to_owned(), format!("{}:sekisho-{}", crate::CONSUL_COMPAT_VERSION, crate::VERSION)),
        ("vsn".to_owned(), "2".to_owned()),
        ("segment".to_owned(), String::new()),
    ]);
    if let Some(key) = &cfg.encrypt {
        let k = crate::gossip::decode_key(key)
            .map_err(|e| AgentError::Gossip(format!("invalid encrypt key: {e}")))?;
        g.keys = vec![k];
    }
    g.keyring_file = (!cfg.disable_keyring_file)
        .then(|| cfg.data_dir.as_ref().map(|d| d.join(WAN_KEYRING_FILE)))
        .flatten();
    g.verify_incoming = cfg.encrypt_verify_incoming;
    g.verify_outgoing = cfg.encrypt_verify_outgoing;
    g.timing = tuning.wan_gossip_timing.clone();
    g.faults = tuning.faults.clone();
    let gossip = Gossip::start(g)
        .await
        .map_err(|e| AgentError::Gossip(format!("starting WAN gossip on {bind}: {e}")))?;
    Ok(Some(gossip))
}

/// A WAN member as the router sees it (`None` for members that are not servers).
fn server_info(m: &Member) -> Option<WanServer> {
    if m.tags.get("role").map(String::as_str) != Some(super::reconcile::ROLE_SERVER) {
        return None;
    }
    let dc = m.tags.get("dc")?.clone();
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    let name = m.name.strip_suffix(&format!(".{dc}")).unwrap_or(&m.name).to_owned();
    Some(WanServer {
        name,
        dc,
        rpc_addr: SocketAddr::new(m.addr, port).to_string(),
        alive: m.status == MemberStatus::Alive,
    })
}

/// Feeds WAN membership and coordinates to the server's router until `stop`.
pub(super) async fn track(server: Server, wan: Gossip, stop: CancellationToken) {
    let mut events = wan.subscribe();
    loop {
        let members = wan.members();
        let servers: Vec<WanServer> = members.iter().filter_map(server_info).collect();
        let coords = members
            .iter()
            .filter_map(|m| Some(((server_info(m)?.dc, server_info(m)?.name), wan.peer_coordinate(&m.name)?)))
            .collect();
        server.set_wan_members(servers, Some(wan.coordinate()), coords);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// How often a server federating through gateways reports to the primary and pings the
/// other datacenters.
const GATEWAY_SYNC: Duration = Duration::from_secs(1);

/// Gateway federation, in place of the WAN pool: report this datacenter's gateways to the
/// primary, learn the others', ping each through the gateways (health and RTT), and keep
/// the router pointing every other datacenter at the gateways.
///
/// ```text
///  every second: federation_sync_with_primary(dc, gateways) ─► [dc1, dc2, dc3] (kept on error)
///      ─► ping server.<dc>.<domain> via each gateway ─► alive, RTT (smoothed) ─► router
/// ```
pub(super) async fn via_gateways(server: Server, cfg: RuntimeConfig, stop: CancellationToken) {
    let Some(gateways) = gateways(&cfg) else { return };
    let me = crate::state::FederationState {
        datacenter: cfg.datacenter.clone(),
        gateways: cfg.federation_gateways.clone(),
    };
    let mut known: std::collections::BTreeSet<String> = [cfg.primary_datacenter.clone()].into();
    let mut rtts: std::collections::HashMap<String, Duration> = std::collections::HashMap::new();
    server.set_gateway_view(&gateways, vec![(cfg.primary_datacenter.clone(), true, None)]);
    loop {
        match server.federation_sync_with_primary(me.clone()).await {
            Ok(states) => known.extend(states.into_iter().map(|s| s.datacenter)),
            Err(e) => tracing::debug!("gateway federation: the primary did not answer: {e}"),
        }
        let mut view = Vec::new();
        for dc in known.iter().filter(|dc| **dc != cfg.datacenter) {
            match server.ping_dc_via(dc, &gateways, Duration::from_secs(2)).await {
                Ok(rtt) => {
                    let smooth = rtts.get(dc).map_or(rtt, |old| (*old * 3 + rtt) / 4);
                    rtts.insert(dc.clone(), smooth);
                    view.push((dc.clone(), true, Some(smooth)));
                }
                Err(e) => {
                    tracing::debug!(dc, "gateway federation: no answer through the gateways: {e}");
                    view.push((dc.clone(), false, rtts.get(dc).copied()));
                }
            }
        }
        server.set_gateway_view(&gateways, view);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(GATEWAY_SYNC) => {}
        }
    }
}
