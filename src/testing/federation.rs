//! `TestFederation`: several datacenters ([`TestCluster`]s) in one process, their servers
//! joined in one WAN pool, all traffic through one shared [`Faults`] set so tests can delay
//! or cut the links between datacenters.
//!
//! ```text
//!   dc1 (primary)            dc2                    dc3
//!   s1 s2 s3 c4  ◄── WAN ──► s1 s2 s3 c4 ◄── WAN ──► s1 s2 s3 c4
//!   127.a.b.*                127.a.b.*              127.a.b.*   (each node its own address)
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::TestCluster;
use crate::config::RuntimeConfig;
use crate::net::fault::Faults;

/// Datacenters of servers (and client agents) federated over the WAN pool.
#[derive(Debug)]
pub struct TestFederation {
    /// The faults every node's traffic goes through (LAN and WAN).
    pub faults: Arc<Faults>,
    dcs: Vec<TestCluster>,
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
        let mut out = TestFederation { faults: faults.clone(), dcs: Vec::new() };
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

    /// Delays traffic between datacenters `a` and `b` by `one_way` each way (zero: none).
    pub fn set_wan_delay(&self, a: &str, b: &str, one_way: Duration) {
        self.faults.set_link_delay(&self.ips(a), &self.ips(b), one_way);
    }

    /// Cuts datacenter `a` off from `b` (other links stay up); [`Faults::heal`] on
    /// [`TestFederation::faults`] undoes it, with every other fault.
    pub fn partition_dcs(&self, a: &str, b: &str) {
        self.faults.partition(&[&self.ips(a), &self.ips(b)]);
    }

    /// Stops every node of every datacenter.
    pub async fn shutdown(self) {
        for c in self.dcs {
            c.shutdown().await;
        }
    }
}
