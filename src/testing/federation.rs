//! `TestFederation`: several datacenters ([`TestCluster`]s) in one process, their servers
//! joined in one WAN pool, all traffic through one shared [`Faults`] set so tests can delay
//! or cut the links between datacenters.
//!
//! ```text
//!   dc1 (primary)            dc2                    dc3
//!   s1 s2 s3 c4  ◄── WAN ──► s1 s2 s3 c4 ◄── WAN ──► s1 s2 s3 c4
//!   127.a.b.*                127.a.b.*              127.a.b.*   (each node its own address)
//! ```
//!
//! With [`TestFederation::start_via_gateways`] each datacenter also gets a federation
//! gateway, and the fabric is partitioned so that nodes reach only their own datacenter and
//! the gateways; only the gateways reach each other:
//!
//! ```text
//!   [dc1 nodes] ── gw1 ═══ gw2 ── [dc2 nodes]        ═══ the only inter-DC links
//!                    ╚═══ gw3 ── [dc3 nodes]
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::TestCluster;
use crate::config::RuntimeConfig;
use crate::gateway::{Gateway, GatewayConfig};
use crate::net::fault::Faults;

/// Datacenters of servers (and client agents) federated over the WAN pool.
#[derive(Debug)]
pub struct TestFederation {
    /// The faults every node's traffic goes through (LAN and WAN).
    pub faults: Arc<Faults>,
    dcs: Vec<TestCluster>,
    /// Gateway mode: one gateway per datacenter, by datacenter name.
    gateways: Vec<(String, Gateway)>,
}

impl TestFederation {
    /// Starts each datacenter of `dcs` (the first is the primary) with `servers` servers and
    /// `clients` client agents, after `tune(dc, index, config)` adjusted each node; joins every
    /// server to the WAN pool and returns once each server sees every other server alive.
    pub async fn start(
        dcs: &[&str],
        servers: usize,
        clients: usize,
        tune: impl Fn(&str, usize, &mut RuntimeConfig),
    ) -> TestFederation {
        let faults = Faults::none();
        let primary = dcs.first().expect("at least one datacenter").to_string();
        let mut out = TestFederation { faults: faults.clone(), dcs: Vec::new(), gateways: Vec::new() };
        for dc in dcs {
            let c = TestCluster::start_in(dc, faults.clone(), servers, clients, |i, cfg| {
                cfg.primary_datacenter = primary.clone();
                tune(dc, i, cfg);
            })
            .await;
            out.dcs.push(c);
        }
        out.join_wan().await;
        out.wait_wan(Duration::from_secs(30)).await;
        out
    }

    /// [`TestFederation::start`] in gateway mode: a gateway per datacenter on its own
    /// address, servers configured with `federation_gateways` (no WAN gossip), and the fabric
    /// partitioned so that only the gateways link the datacenters. Needs TLS on every node
    /// (`tune` sets it: gateways route by the TLS server name).
    pub async fn start_via_gateways(
        dcs: &[&str],
        servers: usize,
        clients: usize,
        tune: impl Fn(&str, usize, &mut RuntimeConfig),
    ) -> TestFederation {
        let faults = Faults::none();
        let primary = dcs.first().expect("at least one datacenter").to_string();
        let mut out = TestFederation { faults: faults.clone(), dcs: Vec::new(), gateways: Vec::new() };
        for dc in dcs {
            let mut g = GatewayConfig::new(dc, std::net::SocketAddr::new(super::cluster::next_ip(), 0));
            g.faults = faults.clone();
            out.gateways.push((dc.to_string(), Gateway::start(g).await.expect("gateway starts")));
        }
        let remote: std::collections::BTreeMap<String, Vec<String>> =
            out.gateways.iter().map(|(dc, g)| (dc.clone(), vec![g.local_addr().to_string()])).collect();
        for (_, g) in &out.gateways {
            g.set_remote(remote.clone());
        }
        for dc in dcs {
            let gw = remote[*dc].clone();
            let c = TestCluster::start_in(dc, faults.clone(), servers, clients, |i, cfg| {
                cfg.primary_datacenter = primary.clone();
                if i < servers {
                    cfg.federation_gateways = gw.clone();
                }
                tune(dc, i, cfg);
            })
            .await;
            let local: Vec<(String, String)> = c
                .running_servers()
                .into_iter()
                .map(|i| (c.node(i).config.node_name.clone(), c.agent(i).server().config().rpc_addr.clone()))
                .collect();
            out.gateway(dc).set_servers(local);
            out.dcs.push(c);
            out.fabric_only_gateways_cross();
        }
        // Each datacenter joins before the next starts, so the fabric is in place already.
        out.wait_routes(Duration::from_secs(30)).await;
        out
    }

    /// The gateway of `dc` (gateway mode).
    pub fn gateway(&self, dc: &str) -> &Gateway {
        self.gateways
            .iter()
            .find(|(d, _)| d == dc)
            .map(|(_, g)| g)
            .unwrap_or_else(|| panic!("no gateway for {dc}"))
    }

    /// Whether the datacenters federate through gateways.
    pub fn via_gateways(&self) -> bool {
        !self.gateways.is_empty()
    }

    /// Gateway mode's fabric: every datacenter's nodes in their own group (gateways in
    /// none, so they reach everyone).
    fn fabric_only_gateways_cross(&self) {
        if !self.via_gateways() {
            return;
        }
        let groups: Vec<Vec<IpAddr>> = self.dcs.iter().map(TestCluster::ips).collect();
        let refs: Vec<&[IpAddr]> = groups.iter().map(Vec::as_slice).collect();
        self.faults.partition(&refs);
    }

    /// Waits until every running server can route to every other datacenter (WAN gossip
    /// or, in gateway mode, pings through the gateways).
    pub async fn wait_routes(&self, deadline: Duration) {
        let names: Vec<String> = self.dcs.iter().map(|c| c.datacenter().to_owned()).collect();
        super::eventually(deadline, "every server routes to every datacenter", || async {
            let all = self.dcs.iter().all(|c| {
                c.running_servers().iter().all(|&i| {
                    let seen = c.agent(i).server().wan_servers();
                    names
                        .iter()
                        .filter(|dc| *dc != c.datacenter())
                        .all(|dc| seen.iter().any(|(s, _)| s.dc == *dc && s.alive))
                })
            });
            all.then_some(())
        })
        .await;
    }

    /// Removes every injected fault (in gateway mode the fabric stays: only gateways cross).
    pub fn heal(&self) {
        self.faults.heal();
        self.fabric_only_gateways_cross();
    }

    /// WAN addresses of every running server.
    fn wan_addrs(&self) -> Vec<String> {
        self.dcs
            .iter()
            .flat_map(|c| c.running_servers().into_iter().map(move |i| (c, i)))
            .filter_map(|(c, i)| c.agent(i).wan().map(|w| w.local_addr().to_string()))
            .collect()
    }

    /// Joins every server to the WAN pool (and records the pool as its `retry_join_wan`, so
    /// a restarted server rejoins).
    async fn join_wan(&mut self) {
        let addrs = self.wan_addrs();
        for c in &mut self.dcs {
            for i in c.running_servers() {
                c.node_mut(i).config.retry_join_wan = addrs.clone();
                let wan = c.agent(i).wan().expect("servers have a WAN pool member").clone();
                wan.join(&addrs).await.expect("WAN join");
            }
        }
    }

    /// Waits until every running server's router knows every running server of every
    /// datacenter, alive.
    pub async fn wait_wan(&self, deadline: Duration) {
        let want: usize = self.dcs.iter().map(|c| c.running_servers().len()).sum();
        super::eventually(deadline, "every server sees the whole WAN pool alive", || async {
            let all = self.dcs.iter().all(|c| {
                c.running_servers().iter().all(|&i| {
                    let seen = c.agent(i).server().wan_servers();
                    seen.iter().filter(|(s, _)| s.alive).count() == want
                })
            });
            all.then_some(())
        })
        .await;
    }

    /// The datacenter named `dc`.
    pub fn dc(&self, dc: &str) -> &TestCluster {
        self.dcs.iter().find(|c| c.datacenter() == dc).unwrap_or_else(|| panic!("no datacenter {dc}"))
    }

    /// The datacenter named `dc`, to kill or restart its nodes.
    pub fn dc_mut(&mut self, dc: &str) -> &mut TestCluster {
        self.dcs.iter_mut().find(|c| c.datacenter() == dc).unwrap_or_else(|| panic!("no datacenter {dc}"))
    }

    /// Every datacenter, the primary first.
    pub fn datacenters(&self) -> impl Iterator<Item = &TestCluster> {
        self.dcs.iter()
    }

    /// The addresses of `dc`'s nodes.
    pub fn ips(&self, dc: &str) -> Vec<IpAddr> {
        self.dc(dc).ips()
    }

    /// The addresses that carry traffic between datacenters for `dc`: its nodes, or in
    /// gateway mode its gateway.
    fn wan_side(&self, dc: &str) -> Vec<IpAddr> {
        if self.via_gateways() { vec![self.gateway(dc).local_addr().ip()] } else { self.ips(dc) }
    }

    /// Delays traffic between datacenters `a` and `b` by `one_way` each way (zero: none).
    pub fn set_wan_delay(&self, a: &str, b: &str, one_way: Duration) {
        self.faults.set_link_delay(&self.wan_side(a), &self.wan_side(b), one_way);
    }

    /// Cuts datacenter `a` off from `b` (other links stay up); [`TestFederation::heal`]
    /// undoes it, with every other fault.
    pub fn partition_dcs(&self, a: &str, b: &str) {
        self.faults.cut_link(&self.wan_side(a), &self.wan_side(b));
    }

    /// Stops every node of every datacenter, then the gateways.
    pub async fn shutdown(self) {
        for c in self.dcs {
            c.shutdown().await;
        }
        for (_, g) in self.gateways {
            g.shutdown().await;
        }
    }
}
