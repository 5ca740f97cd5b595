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

/// Starts the WAN pool member of a server; `None` on client agents or with `ports.serf_wan = -1`.
pub(super) async fn start(
    cfg: &RuntimeConfig,
    tuning: &Tuning,
    rpc_port: u16,
) -> Result<Option<Gossip>, AgentError> {
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
