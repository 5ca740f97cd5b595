//! Test support shared by integration tests, benches and examples: an in-process agent on
//! port 0 and polling with a deadline instead of sleeps.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use crate::agent::{Agent, AgentHandle, Tuning};
use crate::config::RuntimeConfig;

mod cluster;
mod federation;
pub mod lincheck;
pub mod pki;
pub mod robustness;
pub mod secrets;
pub use cluster::{ClusterNode, TestCluster};
pub use federation::TestFederation;

/// A single in-process server with its HTTP API on 127.0.0.1 and a free port.
#[derive(Debug)]
pub struct TestAgent {
    handle: AgentHandle,
    /// The configuration it runs with.
    pub config: RuntimeConfig,
}

impl TestAgent {
    /// Starts a test agent (datacenter `dc1`, a unique node name, leader elected).
    pub async fn start() -> TestAgent {
        Self::start_with(|_, _| {}).await
    }

    /// Starts a test agent after `tune` adjusted its configuration and timings.
    pub async fn start_with(tune: impl FnOnce(&mut RuntimeConfig, &mut Tuning)) -> TestAgent {
        let node = format!("node-{}", &uuid::Uuid::new_v4().to_string()[..8]);
        let mut cfg = RuntimeConfig::for_test("dc1", &node);
        cfg.session_ttl_min = Duration::from_secs(1);
        let mut tuning = Tuning { leader_tick: Duration::from_millis(50), ..Tuning::default() };
        tune(&mut cfg, &mut tuning);
        let handle = Agent::start_with(cfg.clone(), tuning).await.expect("test agent starts");
        TestAgent { handle, config: cfg }
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.handle.http_addr()
    }

    /// The DNS address (UDP and TCP). Panics if DNS is disabled.
    pub fn dns_addr(&self) -> SocketAddr {
        self.handle.dns_addr().expect("DNS is disabled on this test agent")
    }

    /// The agent handle.
    pub fn handle(&self) -> &AgentHandle {
        &self.handle
    }

    /// Stops the agent.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(deadline, f).await {
        Some(v) => v,
        None => panic!("timed out after {deadline:?} waiting for: {what}"),
    }
}

/// Polls `f` until it returns `Some`; `None` after `deadline` (for callers that report the
/// timeout with their own diagnostics).
pub async fn poll_until<T, F, Fut>(deadline: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
