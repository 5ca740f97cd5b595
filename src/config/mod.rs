//! Agent configuration: Consul's JSON and HCL (v1) files and the `agent` flags, merged
//! and validated into one [`RuntimeConfig`].
//!
//! [`load`] follows Consul's phases; each later phase overrides the earlier ones, except
//! that list keys (`services`, `checks`, `watches`, `retry_join`, ...) append and the
//! `acl`/`tls` stanzas merge key by key:
//!
//! ```text
//! defaults ─► dev defaults (-dev) ─► files ─► flags ─► derived values ─► RuntimeConfig
//!                                      │                 (primary_datacenter, advertise,
//!   -config-file (in order),           │                  addresses, node_id)
//!   then each -config-dir's            ▼
//!   *.json / *.hcl (lexical)   parse (serde_json / hcl) ─► keys::check ─► apply
//!                                unknown key: error    unimplemented key: Warning
//! ```
//!
//! Every error names the key, the file (or `command-line flags`) and the rule.

mod apply;
mod duration;
mod error;
pub mod hcl;
mod keys;
mod load;
pub mod runtime;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr};

pub use duration::parse_go_duration;
pub use error::{ConfigError, Warning};
pub use load::{Flags, load, load_text};
pub use runtime::{DnsConfig, Limits, Ports, RequestLimitMode, RequestLimits, RuntimeConfig};

impl RuntimeConfig {
    /// The `agent -dev` configuration: an in-memory server in `dc1` that bootstraps
    /// itself, listens on 127.0.0.1 with Consul's standard ports and serves the UI.
    pub fn dev() -> RuntimeConfig {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        RuntimeConfig {
            dev: true,
            datacenter: "dc1".to_owned(),
            primary_datacenter: "dc1".to_owned(),
            node_name: host_name(),
            node_id: uuid::Uuid::new_v4().to_string(),
            data_dir: None,
            server: true,
            bootstrap: true,
            bootstrap_expect: None,
            bind_addr: localhost,
            client_addr: localhost,
            advertise_addr: localhost,
            http_addr: localhost,
            dns_addr: localhost,
            ports: Ports {
                http: Some(8500),
                https: None,
                dns: Some(8600),
                server: 8300,
                serf_lan: 8301,
                serf_wan: Some(8302),
            },
            log_level: "info".to_owned(),
            domain: "consul".to_owned(),
            alt_domain: None,
            recursors: Vec::new(),
            dns: DnsConfig::default(),
            check_output_max_size: 4096,
            autopilot_cleanup_dead_servers: true,
            autopilot_min_quorum: 0,
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
            limits: Limits::default(),
            session_ttl_min: std::time::Duration::from_secs(10),
            disable_coordinates: false,
            sync_coordinate_interval_min: std::time::Duration::from_secs(15),
            sync_coordinate_rate_target: 64.0,
            raft_multiplier: 1,
            raft_snapshot_threshold: 16384,
            raft_trailing_logs: 10240,
            prometheus_retention_time: std::time::Duration::ZERO,
            enable_script_checks: false,
            enable_local_script_checks: false,
            disable_remote_exec: true,
            ui_enabled: true,
            services: Vec::new(),
            checks: Vec::new(),
            watches: Vec::new(),
            templates: Vec::new(),
            acl: serde_json::Value::Null,
            tls: tls::TlsConfig::default(),
            encrypt: None,
            encrypt_verify_incoming: true,
            encrypt_verify_outgoing: true,
            disable_keyring_file: false,
            retry_join: Vec::new(),
            retry_join_wan: Vec::new(),
            advertise_addr_wan: None,
            translate_wan_addrs: false,
            federation_gateways: Vec::new(),
            primary_gateways: Vec::new(),
        }
    }

    /// A configuration for in-process tests: the dev configuration in datacenter `dc`
    /// with node name `node`, a fresh node ID and every listener on port 0 (the OS picks
    /// a free port). HTTPS stays disabled and nothing is written to disk.
    pub fn for_test(dc: &str, node: &str) -> RuntimeConfig {
        let mut rt = RuntimeConfig::dev();
        rt.datacenter = dc.to_owned();
        rt.primary_datacenter = dc.to_owned();
        rt.node_name = node.to_owned();
        rt.node_id = uuid::Uuid::new_v4().to_string();
        rt.ports =
            Ports { http: Some(0), https: None, dns: Some(0), server: 0, serf_lan: 0, serf_wan: Some(0) };
        rt.raft_snapshot_threshold = 16384;
        rt
    }
}

/// The machine's host name, Consul's default node name (`localhost` if unknown).
fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod limits_tests;
