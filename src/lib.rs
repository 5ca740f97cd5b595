//! Sekisho: a Consul-compatible service-discovery, KV and federation agent.
//!
//! # Layout
//!
//! ```text
//! cli ─► client (HTTP)            cli::agent alone starts agent::Agent
//! agent ─► http, server, config
//! http ─► server (reads, writes, blocking queries), filter
//! server ─► raft ─► fsm ─► state
//! ```
//!
//! # The path of one request
//!
//! `PUT /v1/kv/x` arrives in [`http`], which parses Consul's query parameters and body,
//! runs the leader-side checks (lock-delay), and hands a typed [`fsm::Command`] to
//! [`server::Server::write`]. The server batches concurrent writes into one Raft entry
//! (group commit: one log append and one fsync for many clients), openraft replicates and
//! commits it, and [`fsm::apply`] applies it to the in-memory [`state::Store`], waking every
//! blocking query that watches the touched table. The HTTP layer answers with Consul's JSON.
//! A blocking `GET /v1/kv/x?index=N` re-runs its query each time the KV table advances
//! until the key's index moves past `N` or `wait` elapses.

pub mod acl;
pub mod agent;
pub mod bench;
pub mod checks;
pub mod cli;
pub mod client;
pub mod config;
pub mod dns;
pub mod event;
pub mod exec;
pub mod filter;
pub mod fsm;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod gateway;
pub mod gossip;
pub mod http;
pub mod local;
pub mod net;
pub mod raft;
pub mod rpc;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod watch;

/// Sekisho's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Consul version reported to clients so that their version gates pass.
pub const CONSUL_COMPAT_VERSION: &str = "1.22.0";
