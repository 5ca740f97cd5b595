//! Network plumbing shared by gossip, server RPC and Raft: fault injection for tests, and
//! outgoing TLS for hyper clients.

pub mod fault;
pub mod tls;
