//! Network plumbing shared by gossip, server RPC and Raft: fault injection for tests,
//! outgoing TLS for hyper clients, and the admission limits of the listeners (`limit`).

pub mod fault;
pub mod limit;
pub mod tls;
