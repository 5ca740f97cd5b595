//! `TestCluster`: several servers (and client agents) of one datacenter in one process, each on its own loopback
//! address (127.x.y.z, free ports), sharing a [`Faults`] set so tests can partition, drop,
//! delay, kill and restart them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::agent::{Agent, AgentHandle, Tuning};
use crate::config::RuntimeConfig;
use crate::net::fault::Faults;

/// A fresh loopback address per node, unique within the process (127.0.0.1 is left alone).
pub(super) fn next_ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1 << 8);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let [_, a, b, c] = n.to_be_bytes();
        // Skip x.y.z.0 and x.y.z.255 so every node gets a distinct, ordinary host address.
        if c != 0 && c != 255 {
            return IpAddr::V4(Ipv4Addr::new(127, a, b, c));
        }
    }
}

/// One node of the cluster.
#[derive(Debug)]
pub struct ClusterNode {
    /// Its configuration (ports are filled in after the first start so restarts keep them).
    pub config: RuntimeConfig,
    /// Its address.
    pub ip: IpAddr,
    handle: Option<AgentHandle>,
}

/// A datacenter of servers for tests.
#[derive(Debug)]
pub struct TestCluster {
    /// The faults every node's traffic goes through.
    pub faults: Arc<Faults>,
    nodes: Vec<ClusterNode>,
    tuning: Tuning,
    dc: String,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl TestCluster {
    /// Starts `n` servers: the first bootstraps, the others join through the leader, and
    /// returns once every server is a voter.
    pub async fn start(n: usize) -> TestCluster {
        Self::start_with(n, |_, _| {}).await
    }

    /// [`TestCluster::start`] after `tune(index, config)` adjusted each node's configuration.
    pub async fn start_with(n: usize, tune: impl Fn(usize, &mut RuntimeConfig)) -> TestCluster {
        Self::start_full(n, 0, tune).await
    }

    /// `servers` servers (indexes `0..servers`) and `clients` client agents after them, all
    /// joined through gossip; returns once every server is a voter and every client knows a
    /// server.
    pub async fn start_full(
        servers: usize,
        clients: usize,
        tune: impl Fn(usize, &mut RuntimeConfig),
    ) -> TestCluster {
        Self::start_in("dc1", Faults::none(), servers, clients, tune).await
    }

    /// [`TestCluster::start_full`] for datacenter `dc`, its traffic going through `faults`
    /// (shared by the datacenters of a [`crate::testing::TestFederation`]).
    pub async fn start_in(
        dc: &str,
        faults: Arc<Faults>,
        servers: usize,
        clients: usize,
        tune: impl Fn(usize, &mut RuntimeConfig),
    ) -> TestCluster {
        Self::start_tuned(dc, faults, servers, clients, tune, |_| {}).await
    }

    /// [`TestCluster::start_in`] after `tuning` adjusted the timings every node runs with.
    pub async fn start_tuned(
        dc: &str,
        faults: Arc<Faults>,
        servers: usize,
        clients: usize,
        tune: impl Fn(usize, &mut RuntimeConfig),
        tune_tuning: impl FnOnce(&mut Tuning),
    ) -> TestCluster {
        let n = servers + clients;
        let dir = tempfile::tempdir().expect("tempdir for the cluster");
        let tuning = Tuning {
            leader_tick: Duration::from_millis(50),
            rpc_hold_timeout: Duration::from_secs(2),
            server_stabilization_time: Duration::ZERO,
            gossip_timing: crate::gossip::Timing::fast(),
            wan_gossip_timing: crate::gossip::Timing::fast(),
            reconcile_interval: Duration::from_millis(200),
            retry_interval: Duration::from_millis(200),
            faults: faults.clone(),
            tls_watch_interval: Duration::from_millis(100),
            acl_replication_wait: Duration::from_secs(2),
            ..Tuning::default()
        };
        let mut tuning = tuning;
        tune_tuning(&mut tuning);
        let mut c = TestCluster {
            faults,
            nodes: Vec::new(),
            tuning,
            dc: dc.to_owned(),
            dir: dir.path().to_path_buf(),
            _dir: dir,
        };
        for i in 0..n {
            let mut node = c.new_node(i, i < servers);
            node.config.bootstrap = i == 0;
            tune(i, &mut node.config);
            c.nodes.push(node);
            c.boot(i).await;
        }
        c.wait_voters(servers).await;
        for i in servers..n {
            let server = c.agent(i).server().clone();
            crate::testing::eventually(Duration::from_secs(20), "the client agent knows the servers", || {
                let server = server.clone();
                async move { (server.servers().len() == servers).then_some(()) }
            })
            .await;
        }
        c
    }

    /// A node's configuration: its own loopback address, port 0 everywhere, a data dir.
    fn new_node(&self, i: usize, server: bool) -> ClusterNode {
        let ip = next_ip();
        let kind = if server { "s" } else { "c" };
        let name = format!("{kind}{}-{}", i + 1, ip.to_string().replace('.', "-"));
        let mut cfg = RuntimeConfig::for_test(&self.dc, &name);
        cfg.dev = false;
        cfg.server = server;
        cfg.bootstrap = false;
        cfg.data_dir = Some(self.dir.join(&name));
        cfg.bind_addr = ip;
        cfg.advertise_addr = ip;
        cfg.http_addr = ip;
        cfg.dns_addr = ip;
        cfg.ports.dns = None;
        cfg.session_ttl_min = Duration::from_secs(1);
        // Elections in 300-600 ms: fast, yet not triggered by a busy test machine.
        cfg.raft_multiplier = 2;
        ClusterNode { config: cfg, ip, handle: None }
    }

    /// Starts one more node (`server` or client agent) that joins the others through gossip,
    /// after `tune` adjusted its configuration; returns its index. Does not wait for it to
    /// become a voter (see [`TestCluster::wait_voters`]).
    pub async fn add_node(&mut self, server: bool, tune: impl FnOnce(&mut RuntimeConfig)) -> usize {
        let i = self.nodes.len();
        let mut node = self.new_node(i, server);
        tune(&mut node.config);
        self.nodes.push(node);
        self.boot(i).await;
        i
    }

    /// Waits until the leader has applied a Raft configuration with `n` voters and every
    /// running server has that configuration too. (The leader's effective configuration
    /// changes when the entry is appended, before it commits, so its count alone is not
    /// enough for a test that then asks a follower.)
    pub async fn wait_voters(&self, n: usize) {
        crate::testing::eventually(Duration::from_secs(20), "every server joins Raft as a voter", || async {
            let l = self.leader()?;
            let m = self.agent(l).server().metrics();
            let config = m.membership_config.log_id().map(|id| id.index);
            let committed = m.last_applied.map(|id| id.index);
            let voters = m.membership_config.membership().voter_ids().count();
            let everywhere = self.running_servers().iter().all(|&i| {
                let m = self.agent(i).server().metrics();
                m.membership_config.log_id().map(|id| id.index) == config
            });
            (voters == n && config <= committed && everywhere).then_some(())
        })
        .await;
    }

    /// Gossip addresses of the other running nodes (`retry_join` for a node being started).
    fn peers_of(&self, i: usize) -> Vec<String> {
        (0..self.nodes.len())
            .filter(|&j| j != i)
            .filter_map(|j| self.nodes[j].handle.as_ref().map(|h| h.gossip().local_addr().to_string()))
            .collect()
    }

    async fn boot(&mut self, i: usize) {
        let mut cfg = self.nodes[i].config.clone();
        cfg.retry_join = self.peers_of(i);
        // A restart reuses the node's ports; a socket of the stopped instance can hold one for
        // a moment, so a bind failure is retried (for up to 5 s) before it fails the test.
        let mut attempts = 0;
        let handle = loop {
            match Agent::start_with(cfg.clone(), self.tuning.clone()).await {
                Ok(h) => break h,
                Err(crate::agent::AgentError::Bind { what, addr, .. }) if attempts < 50 => {
                    attempts += 1;
                    tracing::info!("--- {what} address {addr} still in use; retrying the start");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cluster node starts: {e:?}"),
            }
        };
        // Keep the bound ports so a restart comes back at the same addresses.
        let node = &mut self.nodes[i];
        node.config.ports.http = Some(handle.http_addr().port());
        node.config.ports.https = handle.https_addr().map(|a| a.port());
        let rpc: SocketAddr = handle.server().config().rpc_addr.parse().expect("rpc addr");
        node.config.ports.server = rpc.port();
        node.config.ports.serf_lan = handle.gossip().local_addr().port();
        if let Some(wan) = handle.wan() {
            node.config.ports.serf_wan = Some(wan.local_addr().port());
        }
        node.config.bootstrap = false;
        node.handle = Some(handle);
    }

    /// The running agent of node `i` (panics if it is stopped).
    pub fn agent(&self, i: usize) -> &AgentHandle {
        self.nodes[i].handle.as_ref().unwrap_or_else(|| panic!("node {i} is not running"))
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &ClusterNode {
        &self.nodes[i]
    }

    /// Node `i`, to change its configuration before a [`TestCluster::restart`].
    pub fn node_mut(&mut self, i: usize) -> &mut ClusterNode {
        &mut self.nodes[i]
    }

    /// The datacenter's name.
    pub fn datacenter(&self) -> &str {
        &self.dc
    }

    /// Every node's address (running or not).
    pub fn ips(&self) -> Vec<IpAddr> {
        self.nodes.iter().map(|n| n.ip).collect()
    }

    /// Number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Indexes of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].handle.is_some()).collect()
    }

    /// Indexes of the running servers.
    pub fn running_servers(&self) -> Vec<usize> {
        self.running().into_iter().filter(|&i| self.nodes[i].config.server).collect()
    }

    /// The running node that believes it leads, if exactly one of the running nodes does.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> =
            self.running().into_iter().filter(|&i| self.agent(i).server().is_leader()).collect();
        match leaders.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Waits until exactly one running node leads and the others agree; returns it.
    pub async fn wait_leader(&self, deadline: Duration) -> usize {
        crate::testing::eventually(deadline, "one leader that every running server follows", || async {
            let l = self.leader()?;
            let id = self.agent(l).server().node_id();
            let all_agree = self
                .running_servers()
                .iter()
                .all(|&i| self.agent(i).server().metrics().current_leader == Some(id));
            all_agree.then_some(l)
        })
        .await
    }

    /// Stops node `i` abruptly (its sockets close; its data dir stays).
    pub async fn kill(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].handle.take() {
            h.shutdown().await;
        }
    }

    /// Starts node `i` again with the same data dir, node ID and addresses.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].handle.is_none(), "node {i} is still running");
        self.boot(i).await;
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }
}
