//! Consul watches: blocking-query loops over our own HTTP API that hand each changed view to
//! a handler. Used by `sekisho watch` and by the agent's `watches` config entries.
//!
//! ```text
//!  plan (WatchKind + HandlerSpec) ─► HttpSource ─► runner::run ─► Handler
//!   key, keyprefix, services,        GET path?index=N&wait=     poller + coalescing     script (stdin JSON,
//!   nodes, service, checks, event    (Client: token, dc, stale)  handler loop            CONSUL_INDEX) / HTTP
//! ```
//!
//! [`runner`] holds the semantics (fire once at start, then on each changed result; back off
//! on errors; reset when the index goes backwards; never two handler runs at once). The
//! agent runs its config watches as a [`WatchSet`] against its own HTTP address.

pub mod handler;
pub mod plan;
pub mod runner;
pub mod source;

use std::net::SocketAddr;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{Client, ClientConfig};
pub use handler::{HttpHandler, LoggingHandler, ScriptHandler};
pub use plan::{HandlerSpec, HttpHandlerConfig, WatchKind, WatchSpec, parse_config_watches};
pub use runner::{Backoff, Handler, Source, Update};
pub use source::HttpSource;

/// The agent's running config watches. A reload keeps those whose definition is unchanged
/// and stops or starts the others.
#[derive(Debug)]
pub struct WatchSet {
    addr: SocketAddr,
    backoff: Backoff,
    running: Mutex<Vec<(WatchSpec, CancellationToken)>>,
    stopped: CancellationToken,
    tasks: TaskTracker,
}

impl WatchSet {
    /// Starts `specs` against the agent's HTTP API at `addr`.
    pub fn start(addr: SocketAddr, specs: &[WatchSpec], backoff: Backoff) -> WatchSet {
        let addr = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
            ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
            _ => addr,
        };
        let set = WatchSet {
            addr,
            backoff,
            running: Mutex::new(Vec::new()),
            stopped: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        set.replace(specs);
        set
    }

    /// Makes `specs` the running watches: one unchanged definition keeps running (once per
    /// copy: two identical entries are two watches), the rest are stopped, and new ones are
    /// started (their handler runs once at start). Returns how many were started.
    pub fn replace(&self, specs: &[WatchSpec]) -> usize {
        let mut running = self.running.lock();
        let mut old = std::mem::take(&mut *running);
        let mut started = 0;
        for (i, spec) in specs.iter().enumerate() {
            if let Some(pos) = old.iter().position(|(s, _)| s == spec) {
                running.push(old.remove(pos));
                continue;
            }
            let stop = self.stopped.child_token();
            self.spawn(i, spec, stop.clone());
            running.push((spec.clone(), stop));
            started += 1;
        }
        for (_, stop) in old {
            stop.cancel();
        }
        started
    }

    /// How many watches run.
    pub fn len(&self) -> usize {
        self.running.lock().len()
    }

    /// Whether no watch runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every watch and waits for them.
    pub async fn shutdown(&self) {
        self.stopped.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn spawn(&self, i: usize, spec: &WatchSpec, stop: CancellationToken) {
        let mut config = ClientConfig::new(self.addr.to_string());
        config.token.clone_from(&spec.token);
        config.datacenter.clone_from(&spec.datacenter);
        config.stale = spec.stale;
        let source = HttpSource::new(Client::new(config), spec.kind.clone());
        let name = format!("watches[{i}] ({})", spec.kind.type_name());
        let handler = LoggingHandler::new(name.clone(), &spec.handler);
        let backoff = self.backoff;
        self.tasks.spawn(async move {
            tracing::debug!(watch = %name, "watch started");
            let _ = runner::run(source, handler, backoff, stop).await;
            tracing::debug!(watch = %name, "watch stopped");
        });
    }
}
