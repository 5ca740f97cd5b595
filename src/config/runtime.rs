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
    /// `alt_domain`: a second domain DNS answers for (in the domain asked).
    pub alt_domain: Option<String>,
    /// `recursors`: upstream DNS servers for names outside the domain (`ip` or `ip:port`).
    pub recursors: Vec<String>,
    /// `dns_config`.
    pub dns: DnsConfig,
    /// `autopilot.cleanup_dead_servers` (default true).
    pub autopilot_cleanup_dead_servers: bool,
    /// `autopilot.min_quorum`: never remove dead servers below this many voters (default 0 =
    /// no minimum beyond a majority).
    pub autopilot_min_quorum: u32,
    /// `check_output_max_size` (bytes, default 4096).
    pub check_output_max_size: usize,
    /// `limits.kv_max_value_size` (bytes, default 524288).
    pub kv_max_value_size: u64,
    /// `limits.txn_max_req_len` (bytes, default 524288).
    pub txn_max_req_len: u64,
    /// The rest of `limits`: connection, handshake, body and request-rate limits.
    pub limits: Limits,
    /// `session_ttl_min` (default 10s).
    pub session_ttl_min: Duration,
    /// `disable_coordinates`: no network coordinates are computed or sent (default false).
    pub disable_coordinates: bool,
    /// `sync_coordinate_interval_min`: the shortest period between this agent's coordinate
    /// updates to the servers (default 15s).
    pub sync_coordinate_interval_min: Duration,
    /// `sync_coordinate_rate_target`: coordinate updates per second the whole datacenter
    /// aims at; larger pools sync less often (default 64).
    pub sync_coordinate_rate_target: f64,
    /// `performance.raft_multiplier` (default 1, Consul's is 5; 1..=10).
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
    /// `template` stanzas (`sekisho template` run by the agent), as written.
    pub templates: Vec<serde_json::Value>,
    /// The `acl` stanza as written (`Null` when absent).
    pub acl: serde_json::Value,
    /// TLS settings as written (resolve per interface with `tls.rpc()` / `tls.https()`).
    pub tls: super::tls::TlsConfig,
    pub encrypt: Option<String>,
    /// `encrypt_verify_incoming` (default true): with keys, refuse plaintext gossip.
    pub encrypt_verify_incoming: bool,
    /// `encrypt_verify_outgoing` (default true): with keys, encrypt outgoing gossip.
    pub encrypt_verify_outgoing: bool,
    /// `disable_keyring_file` (default false): keep the keyring out of
    /// `<data_dir>/serf/local.keyring`.
    pub disable_keyring_file: bool,
    pub retry_join: Vec<String>,
    pub retry_join_wan: Vec<String>,
    /// `advertise_addr_wan`: the address other datacenters reach this server at (WAN gossip
    /// and cross-DC RPC); `advertise_addr` when unset.
    pub advertise_addr_wan: Option<IpAddr>,
    /// `translate_wan_addrs`: answer other datacenters' nodes with their WAN address.
    pub translate_wan_addrs: bool,
    /// `federation_gateways` (beyond Consul): this datacenter's gateways. When set (or
    /// `primary_gateways`), servers federate through gateways only: no WAN gossip, every
    /// cross-DC RPC goes to a gateway with TLS SNI `server.<dc>.<domain>`.
    pub federation_gateways: Vec<String>,
    /// `primary_gateways`: the primary datacenter's gateways (used when
    /// `federation_gateways` is empty).
    pub primary_gateways: Vec<String>,
}

/// `dns_config` (Consul's keys and defaults, except `enable_truncate`, see below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Serve answers from the local (possibly stale) state (default true).
    pub allow_stale: bool,
    /// Staleness bound when `allow_stale` (default 87600h).
    pub max_stale: Duration,
    /// TTL of node records (default 0).
    pub node_ttl: Duration,
    /// TTL of service records by service name: exact names, `prefix*` patterns and `*`.
    pub service_ttl: std::collections::BTreeMap<String, Duration>,
    /// Leave out instances with warning checks too (default false).
    pub only_passing: bool,
    /// Maximum A/AAAA records in an answer, 0 = no limit.
    pub a_record_limit: u32,
    /// Maximum answers in a UDP response (default 3).
    pub udp_answer_limit: u32,
    /// Set the TC bit when a UDP answer was cut. Consul defaults to false (silent
    /// truncation); Sekisho defaults to true so resolvers retry over TCP.
    pub enable_truncate: bool,
    /// Add node meta TXT records to the additional section of SRV answers (default true).
    pub enable_additional_node_meta_txt: bool,
    pub disable_compression: bool,
    /// `sequential` (default) or `random`.
    pub recursor_strategy: String,
    /// Per-recursor timeout (default 2s).
    pub recursor_timeout: Duration,
    /// `rate_limit_per_client` (beyond Consul): DNS queries per second per client IP (a token
    /// bucket holding one second's worth); over it, queries are answered REFUSED. 0 (the
    /// default) is no limit: local forwarders send every query from one address.
    pub rate_limit_per_client: u32,
    /// `soa { refresh retry expire min_ttl }` (seconds; defaults 3600, 600, 86400, 0).
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub soa_min_ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            allow_stale: true,
            max_stale: Duration::from_secs(87600 * 3600),
            node_ttl: Duration::ZERO,
            service_ttl: std::collections::BTreeMap::new(),
            only_passing: false,
            a_record_limit: 0,
            udp_answer_limit: 3,
            enable_truncate: true,
            enable_additional_node_meta_txt: true,
            disable_compression: false,
            recursor_strategy: "sequential".to_owned(),
            recursor_timeout: Duration::from_secs(2),
            rate_limit_per_client: 0,
            soa_refresh: 3600,
            soa_retry: 600,
            soa_expire: 86400,
            soa_min_ttl: 0,
        }
    }
}

/// `limits`: how much one client, or all of them together, may ask of this agent. Consul's
/// keys and defaults, plus Sekisho's own (marked so), which have no Consul equivalent.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `http_max_conns_per_client` (default 200, 0 = no limit): concurrent HTTP and HTTPS
    /// connections per client IP; one more is answered 429 and closed.
    pub http_max_conns_per_client: u32,
    /// `rpc_max_conns_per_client` (default 100, 0 = no limit): concurrent server RPC
    /// connections per client IP; one more is closed at once.
    pub rpc_max_conns_per_client: u32,
    /// `https_handshake_timeout` (default 5s): time allowed for an HTTPS client's TLS
    /// handshake.
    pub https_handshake_timeout: Duration,
    /// `rpc_handshake_timeout` (default 5s): time allowed for a server RPC client's first
    /// byte and TLS handshake.
    pub rpc_handshake_timeout: Duration,
    /// `http_max_body_size` (Sekisho, default 4 MiB): the largest JSON request body of the
    /// endpoints without a limit of their own (KV and txn have theirs; snapshot restores 60
    /// MiB). Larger bodies get 413 and are never buffered.
    pub http_max_body_size: u64,
    /// `http_read_header_timeout` (Sekisho, default 10s, 0 = none): time a client may take to
    /// send a request's headers, from the request's first byte (from the accept for a new
    /// connection). Keep-alive connections idle between requests for up to 2 minutes.
    pub http_read_header_timeout: Duration,
    /// `http_max_blocking_queries` (Sekisho, default 20000, 0 = no limit): blocking queries
    /// (`?index=` > 0) waiting at once on this agent; one more is answered 429.
    pub http_max_blocking_queries: u32,
    /// `http_max_concurrent_requests` (Sekisho, default 4096, 0 = no limit): other HTTP
    /// requests in progress at once; one more is answered 503.
    pub http_max_concurrent_requests: u32,
    /// `request_limits`: Consul 1.16's global read and write rates.
    pub request_limits: RequestLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_max_conns_per_client: 200,
            rpc_max_conns_per_client: 100,
            https_handshake_timeout: Duration::from_secs(5),
            rpc_handshake_timeout: Duration::from_secs(5),
            http_max_body_size: 4 << 20,
            http_read_header_timeout: Duration::from_secs(10),
            http_max_blocking_queries: 20_000,
            http_max_concurrent_requests: 4096,
            request_limits: RequestLimits::default(),
        }
    }
}

/// `limits.request_limits { mode read_rate write_rate }` (Consul 1.16+).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestLimits {
    /// `mode` (default `disabled`).
    pub mode: RequestLimitMode,
    /// `read_rate`: reads per second, `None` (Consul's `-1`, the default) for no limit.
    pub read_rate: Option<f64>,
    /// `write_rate`: writes per second, `None` (Consul's `-1`, the default) for no limit.
    pub write_rate: Option<f64>,
}

/// What happens to a request over `request_limits`' rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestLimitMode {
    /// No limit is applied (Consul's default).
    #[default]
    Disabled,
    /// Over-limit requests are counted and logged but served.
    Permissive,
    /// Over-limit requests are refused (429, or 503 for writes on the leader).
    Enforcing,
}
