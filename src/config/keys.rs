//! The configuration schema: every key Consul accepts, whether Sekisho implements it, and
//! the type it takes. [`check`] validates one source against it: unknown keys are errors
//! (with a suggestion), known but unimplemented keys become [`Warning`]s and are dropped,
//! and implemented keys are type-checked.

use serde_json::{Map, Value};

use super::error::{ConfigError, Warning};

/// The type a key takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Bool,
    Int,
    /// Any JSON number (Consul's float64 keys).
    Float,
    /// A Go duration string (`"10s"`); an integer counts seconds.
    Duration,
    StrList,
    /// Any JSON object, kept as written (`acl`, `tls`).
    Object,
    /// An object or a list of objects (`service`, `checks`, ...).
    ObjectOrList,
    /// Anything: used for keys Sekisho does not implement.
    Any,
    /// A nested stanza with its own keys (`ports`, `limits`, ...).
    Section(&'static [Key]),
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Float => "number",
            Kind::Duration => "duration string (\"10s\", \"1m30s\") or integer seconds",
            Kind::StrList => "list of strings",
            Kind::Object | Kind::Section(_) => "object",
            Kind::ObjectOrList => "object or list of objects",
            Kind::Any => "any value",
        }
    }
}

/// One key of the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// False for keys Consul knows that Sekisho accepts with a warning.
    pub(crate) implemented: bool,
}

const fn yes(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, implemented: true }
}

const fn not(name: &'static str) -> Key {
    Key { name, kind: Kind::Any, implemented: false }
}

const PORTS: &[Key] = &[
    yes("dns", Kind::Int),
    yes("http", Kind::Int),
    yes("https", Kind::Int),
    yes("server", Kind::Int),
    yes("serf_lan", Kind::Int),
    yes("serf_wan", Kind::Int),
    not("grpc"),
    not("grpc_tls"),
    not("proxy_min_port"),
    not("proxy_max_port"),
    not("sidecar_min_port"),
    not("sidecar_max_port"),
    not("expose_min_port"),
    not("expose_max_port"),
];

const ADDRESSES: &[Key] =
    &[yes("dns", Kind::Str), yes("http", Kind::Str), not("https"), not("grpc"), not("grpc_tls")];

const REQUEST_LIMITS: &[Key] =
    &[yes("mode", Kind::Str), yes("read_rate", Kind::Float), yes("write_rate", Kind::Float)];

const LIMITS: &[Key] = &[
    yes("kv_max_value_size", Kind::Int),
    yes("txn_max_req_len", Kind::Int),
    yes("http_max_conns_per_client", Kind::Int),
    yes("https_handshake_timeout", Kind::Duration),
    yes("request_limits", Kind::Section(REQUEST_LIMITS)),
    not("rpc_client_timeout"),
    yes("rpc_handshake_timeout", Kind::Duration),
    not("rpc_max_burst"),
    yes("rpc_max_conns_per_client", Kind::Int),
    not("rpc_rate"),
    // Sekisho's own keys (no Consul equivalent).
    yes("http_max_body_size", Kind::Int),
    yes("http_read_header_timeout", Kind::Duration),
    yes("http_max_blocking_queries", Kind::Int),
    yes("http_max_concurrent_requests", Kind::Int),
];

const PERFORMANCE: &[Key] = &[
    yes("raft_multiplier", Kind::Int),
    not("leave_drain_time"),
    not("rpc_hold_timeout"),
    not("grpc_keepalive_interval"),
    not("grpc_keepalive_timeout"),
];

const TELEMETRY: &[Key] = &[
    yes("prometheus_retention_time", Kind::Duration),
    not("circonus_api_app"),
    not("circonus_api_token"),
    not("circonus_api_url"),
    not("circonus_broker_id"),
    not("circonus_broker_select_tag"),
    not("circonus_check_display_name"),
    not("circonus_check_force_metric_activation"),
    not("circonus_check_id"),
    not("circonus_check_instance_id"),
    not("circonus_check_search_tag"),
    not("circonus_check_tags"),
    not("circonus_submission_interval"),
    not("circonus_submission_url"),
    not("disable_compat_1.9"),
    not("disable_hostname"),
    not("disable_per_tenancy_usage_metrics"),
    not("dogstatsd_addr"),
    not("dogstatsd_tags"),
    not("enable_host_metrics"),
    not("filter_default"),
    not("metrics_prefix"),
    not("prefix_filter"),
    not("retry_failed_connection"),
    not("statsd_address"),
    not("statsite_address"),
];

const DNS_SOA: &[Key] = &[
    yes("expire", Kind::Int),
    yes("min_ttl", Kind::Int),
    yes("refresh", Kind::Int),
    yes("retry", Kind::Int),
];

const DNS_CONFIG: &[Key] = &[
    yes("a_record_limit", Kind::Int),
    yes("allow_stale", Kind::Bool),
    yes("disable_compression", Kind::Bool),
    yes("enable_additional_node_meta_txt", Kind::Bool),
    yes("enable_truncate", Kind::Bool),
    yes("max_stale", Kind::Duration),
    yes("node_ttl", Kind::Duration),
    yes("only_passing", Kind::Bool),
    yes("recursor_strategy", Kind::Str),
    yes("recursor_timeout", Kind::Duration),
    yes("service_ttl", Kind::Object),
    yes("soa", Kind::Section(DNS_SOA)),
    yes("udp_answer_limit", Kind::Int),
    // Sekisho's own key (no Consul equivalent).
    yes("rate_limit_per_client", Kind::Int),
    not("cache_max_age"),
    not("prefer_namespace"),
    not("use_cache"),
];

const AUTOPILOT: &[Key] = &[
    yes("cleanup_dead_servers", Kind::Bool),
    yes("min_quorum", Kind::Int),
    not("disable_upgrade_migration"),
    not("last_contact_threshold"),
    not("max_trailing_logs"),
    not("redundancy_zone_tag"),
    not("server_stabilization_time"),
    not("upgrade_version_tag"),
];

/// Keys of one `tls` block (`defaults`, `internal_rpc`, `https`, `grpc`) and, deprecated,
/// of the top level.
const TLS_BLOCK: &[Key] = &[
    yes("ca_file", Kind::Str),
    yes("ca_path", Kind::Str),
    yes("cert_file", Kind::Str),
    yes("key_file", Kind::Str),
    yes("tls_min_version", Kind::Str),
    yes("tls_cipher_suites", Kind::Str),
    yes("verify_incoming", Kind::Bool),
    yes("verify_outgoing", Kind::Bool),
    yes("verify_server_hostname", Kind::Bool),
    not("use_auto_cert"),
];

const TLS: &[Key] = &[
    yes("defaults", Kind::Section(TLS_BLOCK)),
    yes("internal_rpc", Kind::Section(TLS_BLOCK)),
    yes("https", Kind::Section(TLS_BLOCK)),
    yes("grpc", Kind::Section(TLS_BLOCK)),
];

const AUTO_ENCRYPT: &[Key] = &[
    yes("allow_tls", Kind::Bool),
    yes("tls", Kind::Bool),
    yes("dns_san", Kind::StrList),
    yes("ip_san", Kind::StrList),
];

const UI_CONFIG: &[Key] = &[
    yes("enabled", Kind::Bool),
    not("content_path"),
    not("dashboard_url_templates"),
    not("dir"),
    not("hcp_enabled"),
    not("metrics_provider"),
    not("metrics_provider_files"),
    not("metrics_provider_options_json"),
    not("metrics_proxy"),
];

/// Top-level keys Sekisho implements.
const IMPLEMENTED: &[Key] = &[
    yes("acl", Kind::Object),
    yes("addresses", Kind::Section(ADDRESSES)),
    yes("advertise_addr", Kind::Str),
    yes("advertise_addr_wan", Kind::Str),
    yes("alt_domain", Kind::Str),
    yes("auto_encrypt", Kind::Section(AUTO_ENCRYPT)),
    yes("autopilot", Kind::Section(AUTOPILOT)),
    yes("ca_file", Kind::Str),
    yes("ca_path", Kind::Str),
    yes("cert_file", Kind::Str),
    yes("key_file", Kind::Str),
    yes("tls_cipher_suites", Kind::Str),
    yes("tls_min_version", Kind::Str),
    yes("verify_incoming", Kind::Bool),
    yes("verify_incoming_https", Kind::Bool),
    yes("verify_incoming_rpc", Kind::Bool),
    yes("verify_outgoing", Kind::Bool),
    yes("verify_server_hostname", Kind::Bool),
    yes("bind_addr", Kind::Str),
    yes("bootstrap", Kind::Bool),
    yes("bootstrap_expect", Kind::Int),
    yes("check", Kind::ObjectOrList),
    yes("check_output_max_size", Kind::Int),
    yes("checks", Kind::ObjectOrList),
    yes("client_addr", Kind::Str),
    yes("data_dir", Kind::Str),
    yes("datacenter", Kind::Str),
    yes("disable_coordinates", Kind::Bool),
    yes("disable_keyring_file", Kind::Bool),
    yes("disable_remote_exec", Kind::Bool),
    yes("dns_config", Kind::Section(DNS_CONFIG)),
    yes("domain", Kind::Str),
    yes("enable_local_script_checks", Kind::Bool),
    yes("enable_script_checks", Kind::Bool),
    yes("encrypt", Kind::Str),
    yes("encrypt_verify_incoming", Kind::Bool),
    yes("encrypt_verify_outgoing", Kind::Bool),
    yes("limits", Kind::Section(LIMITS)),
    yes("log_level", Kind::Str),
    yes("node_id", Kind::Str),
    yes("node_name", Kind::Str),
    yes("performance", Kind::Section(PERFORMANCE)),
    yes("ports", Kind::Section(PORTS)),
    yes("primary_datacenter", Kind::Str),
    yes("primary_gateways", Kind::StrList),
    yes("federation_gateways", Kind::StrList),
    yes("raft_snapshot_threshold", Kind::Int),
    yes("raft_trailing_logs", Kind::Int),
    yes("recursors", Kind::StrList),
    yes("retry_join", Kind::StrList),
    yes("retry_join_wan", Kind::StrList),
    yes("start_join_wan", Kind::StrList),
    yes("translate_wan_addrs", Kind::Bool),
    yes("server", Kind::Bool),
    yes("service", Kind::ObjectOrList),
    yes("services", Kind::ObjectOrList),
    yes("session_ttl_min", Kind::Duration),
    yes("sync_coordinate_interval_min", Kind::Duration),
    yes("sync_coordinate_rate_target", Kind::Float),
    yes("telemetry", Kind::Section(TELEMETRY)),
    yes("tls", Kind::Section(TLS)),
    yes("ui", Kind::Bool),
    yes("ui_config", Kind::Section(UI_CONFIG)),
    yes("template", Kind::ObjectOrList),
    yes("watches", Kind::ObjectOrList),
];

/// Top-level keys Consul accepts (including deprecated and internal ones) that Sekisho
/// does not implement yet.
const UNIMPLEMENTED: &[&str] = &[
    "acl_agent_master_token",
    "acl_agent_token",
    "acl_datacenter",
    "acl_default_policy",
    "acl_down_policy",
    "acl_enable_key_list_policy",
    "acl_enforce_version_8",
    "acl_master_token",
    "acl_replication_token",
    "acl_token",
    "acl_ttl",
    "advertise_addr_ipv4",
    "advertise_addr_ipv6",
    "advertise_addr_wan_ipv4",
    "advertise_addr_wan_ipv6",
    "advertise_addrs",
    "advertise_reconnect_timeout",
    "ae_interval",
    "audit",
    "auto_config",
    "auto_reload_config",
    "build_date",
    "cache",
    "check_deregister_interval_min",
    "check_reap_interval",
    "check_update_interval",
    "cloud",
    "config_entries",
    "connect",
    "consul",
    "default_query_time",
    "disable_anonymous_signature",
    "disable_host_node_id",
    "disable_http_unprintable_char_filter",
    "disable_update_check",
    "discard_check_output",
    "discovery_max_stale",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "enable_acl_replication",
    "enable_agent_tls_for_checks",
    "enable_central_service_config",
    "enable_debug",
    "enable_syslog",
    "experiments",
    "gossip_lan",
    "gossip_wan",
    "http_api_response_headers",
    "http_config",
    "leave_on_terminate",
    "license_path",
    "license_poll_base_time",
    "license_poll_max_time",
    "license_update_base_time",
    "license_update_max_time",
    "locality",
    "log_file",
    "log_json",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "max_query_time",
    "node_meta",
    "non_voting_server",
    "partition",
    "peering",
    "pid_file",
    "primary_gateways_interval",
    "protocol",
    "raft_boltdb",
    "raft_logstore",
    "raft_protocol",
    "raft_snapshot_interval",
    "read_replica",
    "reconnect_timeout",
    "reconnect_timeout_wan",
    "rejoin_after_leave",
    "reporting",
    "retry_interval",
    "retry_interval_wan",
    "retry_max",
    "retry_max_wan",
    "revision",
    "rpc",
    "segment",
    "segment_limit",
    "segment_name_limit",
    "segments",
    "serf_lan",
    "serf_lan_allowed_cidrs",
    "serf_wan",
    "serf_wan_allowed_cidrs",
    "server_name",
    "server_rejoin_age_max",
    "skip_leave_on_interrupt",
    "snapshot_agent",
    "start_join",
    "statsd_addr",
    "statsite_addr",
    "statsite_prefix",
    "syslog_facility",
    "tagged_addresses",
    "tls_prefer_server_cipher_suites",
    "ui_content_path",
    "ui_dir",
    "unix_sockets",
    "use_streaming_backend",
    "version",
    "version_metadata",
    "version_prerelease",
    "xds",
];

/// Every top-level key, implemented first.
pub(crate) fn top_level() -> Vec<Key> {
    let mut keys = IMPLEMENTED.to_vec();
    keys.extend(UNIMPLEMENTED.iter().map(|&name| not(name)));
    keys
}

/// Validates one source in place: drops unimplemented keys (one warning each), merges
/// repeated HCL blocks of a stanza into one object, and type-checks the rest.
pub(crate) fn check(
    obj: &mut Map<String, Value>,
    origin: &str,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    check_section("", obj, &top_level(), &mut Ctx { origin, warnings })
}

struct Ctx<'a> {
    origin: &'a str,
    warnings: &'a mut Vec<Warning>,
}

fn check_section(
    prefix: &str,
    obj: &mut Map<String, Value>,
    schema: &[Key],
    ctx: &mut Ctx<'_>,
) -> Result<(), ConfigError> {
    let names: Vec<String> = obj.keys().cloned().collect();
    for name in names {
        let path = format!("{prefix}{name}");
        let Some(key) = schema.iter().find(|k| k.name == name) else {
            return Err(unknown(prefix, &name, schema, ctx.origin));
        };
        if !key.implemented {
            ctx.warnings.push(Warning::unimplemented(&path, ctx.origin));
            obj.remove(&name);
            continue;
        }
        if let Some(value) = obj.get_mut(&name) {
            check_value(&path, key.kind, value, ctx)?;
        }
    }
    Ok(())
}

fn check_value(path: &str, kind: Kind, v: &mut Value, ctx: &mut Ctx<'_>) -> Result<(), ConfigError> {
    if matches!(kind, Kind::Object | Kind::Section(_)) {
        merge_repeated_blocks(v);
    }
    let ok = match (kind, &mut *v) {
        (Kind::Section(schema), Value::Object(inner)) => {
            return check_section(&format!("{path}."), inner, schema, ctx);
        }
        (Kind::Str, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => true,
        (Kind::Object, Value::Object(_)) | (Kind::ObjectOrList, Value::Object(_)) => true,
        (Kind::Int | Kind::Duration, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Kind::Float, Value::Number(_)) => true,
        (Kind::Duration, Value::String(_)) => true,
        (Kind::StrList, Value::Array(items)) => items.iter().all(Value::is_string),
        (Kind::ObjectOrList, Value::Array(items)) => items.iter().all(Value::is_object),
        (Kind::Any, _) => true,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(ConfigError::Type {
        key: path.to_owned(),
        origin: ctx.origin.to_owned(),
        expected: kind.expected(),
        found: describe(v),
    })
}

/// HCL turns a stanza written twice (`ports { .. } ports { .. }`) into a list of
/// objects; for stanzas that take one object, merge them in order.
fn merge_repeated_blocks(v: &mut Value) {
    let Value::Array(items) = v else {
        return;
    };
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return;
    }
    let mut merged = Value::Object(Map::new());
    for item in items.drain(..) {
        merge(&mut merged, item);
    }
    *v = merged;
}

/// Deep-merges `src` into `dst`: objects merge key by key, anything else replaces.
pub(crate) fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (dst, src) => *dst = src,
    }
}

/// Describes a value for type errors: `string "abc"`, `integer 5`, `list`, ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "list".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

fn unknown(prefix: &str, name: &str, schema: &[Key], origin: &str) -> ConfigError {
    let suggestion = closest(name, schema.iter().map(|k| k.name)).map(|s| format!("{prefix}{s}"));
    ConfigError::UnknownKey { key: format!("{prefix}{name}"), origin: origin.to_owned(), suggestion }
}

/// The candidate nearest to `name` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3 + 1).min(3);
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_no_duplicate_keys() {
        let mut names: Vec<&str> = top_level().iter().map(|k| k.name).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len);
        for section in [
            PORTS,
            ADDRESSES,
            LIMITS,
            REQUEST_LIMITS,
            PERFORMANCE,
            TELEMETRY,
            UI_CONFIG,
            DNS_CONFIG,
            DNS_SOA,
            AUTOPILOT,
        ] {
            let mut n: Vec<&str> = section.iter().map(|k| k.name).collect();
            n.sort_unstable();
            n.dedup();
            assert_eq!(n.len(), section.len());
        }
    }

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(levenshtein("datacentre", "datacenter"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
        let keys = ["datacenter", "data_dir", "domain"];
        assert_eq!(closest("datacentre", keys.into_iter()), Some("datacenter"));
        assert_eq!(closest("data-dir", keys.into_iter()), Some("data_dir"));
        assert_eq!(closest("zzz", keys.into_iter()), None);
    }
}
