//! The validated configuration the agent runs with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Ports the agent listens on. `None` means disabled (Consul's `-1`); `Some(0)` means
/// "pick a free port" (tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// HTTP API (8500).
    pub http: Option<u16>,
    /// HTTPS API (disabled by default).
    pub https: Option<u16>,
    /// DNS (8600).
    pub dns: Option<u16>,
    /// Server RPC and Raft (8300).
    pub server: u16,
    /// LAN gossip (8301).
    pub serf_lan: u16,
    /// WAN gossip (8302), `None` when disabled.
    pub serf_wan: Option<u16>,
}

/// Everything the agent needs, after defaults, files and flags were merged and validated.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// `-dev`: in-memory server.
    pub dev: bool,
    pub datacenter: String,
    pub primary_datacenter: String,
    pub node_name: String,
    /// Stable node ID (UUID); read from `<data_dir>/node-id` or generated.
    pub node_id: String,
    /// `None` in dev mode: nothing is written to disk.
    pub data_dir: Option<PathBuf>,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: Option<u32>,
    pub bind_addr: IpAddr,
    /// Address the HTTP and DNS interfaces bind to unless `addresses` overrides.
    pub client_addr: IpAddr,
    pub advertise_addr: IpAddr,
    pub http_addr: IpAddr,
    pub dns_addr: IpAddr,
    pub ports: Ports,
    pub log_level: String,
    pub domain: String,
    /// `limits.kv_max_value_size` (bytes, default 524288).
    pub kv_max_value_size: u64,
    /// `limits.txn_max_req_len` (bytes, default 524288).
    pub txn_max_req_len: u64,
    /// `session_ttl_min` (default 10s).
    pub session_ttl_min: Duration,
    /// `performance.raft_multiplier` (default 5, 1..=10).
    pub raft_multiplier: u32,
    /// `raft_snapshot_threshold`: entries between snapshots (default 16384).
    pub raft_snapshot_threshold: u64,
    /// `raft_trailing_logs`: entries kept after a snapshot (default 10240).
    pub raft_trailing_logs: u64,
    /// `telemetry.prometheus_retention_time` (default 0 = disabled).
    pub prometheus_retention_time: Duration,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    /// Default true.
    pub disable_remote_exec: bool,
    pub ui_enabled: bool,
    /// Service definitions as written (normalised to JSON objects); later issues give them behaviour.
    pub services: Vec<serde_json::Value>,
    /// Check definitions as written.
    pub checks: Vec<serde_json::Value>,
    pub watches: Vec<serde_json::Value>,
    /// The `acl` stanza as written (`Null` when absent).
    pub acl: serde_json::Value,
    /// The `tls` stanza as written (`Null` when absent).
    pub tls: serde_json::Value,
    pub encrypt: Option<String>,
    pub retry_join: Vec<String>,
    pub retry_join_wan: Vec<String>,
}
