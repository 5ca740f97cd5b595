//! Applies one checked source (a file, or the flags) onto the configuration being built,
//! enforcing each key's value rules. Later sources override scalars, merge `acl`/`tls`
//! and append to the list keys (`services`, `checks`, `watches`, `retry_join`, ...).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::duration::parse_go_duration;
use super::error::ConfigError;
use super::keys::{describe, merge};
use super::runtime::{RequestLimitMode, RuntimeConfig};

/// The configuration under construction, plus what must be resolved at the end.
pub(crate) struct Builder {
    pub(crate) rt: RuntimeConfig,
    /// `advertise_addr` if set; otherwise derived from `bind_addr` at the end.
    pub(crate) advertise: Option<IpAddr>,
    /// `addresses.http` if set; otherwise `client_addr`.
    pub(crate) http_addr: Option<IpAddr>,
    /// `addresses.dns` if set; otherwise `client_addr`.
    pub(crate) dns_addr: Option<IpAddr>,
    /// `node_id` if set; otherwise read from or written to the data dir.
    pub(crate) node_id: Option<String>,
    /// `primary_datacenter` if set; otherwise `datacenter`.
    pub(crate) primary_dc: Option<String>,
}

impl Builder {
    pub(crate) fn new(rt: RuntimeConfig) -> Builder {
        Builder { rt, advertise: None, http_addr: None, dns_addr: None, node_id: None, primary_dc: None }
    }
}

/// Applies every key of a checked source, in order.
pub(crate) fn apply(
    b: &mut Builder,
    obj: &serde_json::Map<String, Value>,
    origin: &str,
) -> Result<(), ConfigError> {
    for (key, value) in obj {
        apply_key(b, &At { key, origin }, value)?;
    }
    Ok(())
}

/// Where a value came from, for error messages.
struct At<'a> {
    key: &'a str,
    origin: &'a str,
}

fn apply_key(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<(), ConfigError> {
    if let (
        "ports"
        | "addresses"
        | "limits"
        | "limits.request_limits"
        | "performance"
        | "telemetry"
        | "ui_config"
        | "dns_config"
        | "dns_config.soa"
        | "autopilot"
        | "tls"
        | "tls.defaults"
        | "tls.internal_rpc"
        | "tls.https"
        | "tls.grpc"
        | "auto_encrypt",
        Value::Object(inner),
    ) = (at.key, v)
    {
        for (child, value) in inner {
            let key = format!("{}.{child}", at.key);
            apply_key(b, &At { key: &key, origin: at.origin }, value)?;
        }
        return Ok(());
    }
    if apply_identity(b, at, v)?
        || apply_network(b, at, v)?
        || apply_tuning(b, at, v)?
        || apply_tls(b, at, v)?
    {
        return Ok(());
    }
    apply_collections(b, at, v)
}

fn apply_identity(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let rt = &mut b.rt;
    match at.key {
        "datacenter" => rt.datacenter = at.basic_name(v)?,
        "primary_datacenter" => b.primary_dc = Some(at.basic_name(v)?),
        "node_name" => rt.node_name = at.non_empty(v)?,
        "node_id" => b.node_id = Some(at.uuid(v)?),
        "data_dir" => rt.data_dir = Some(PathBuf::from(at.non_empty(v)?)),
        "server" => rt.server = at.bool(v)?,
        "bootstrap" => rt.bootstrap = at.bool(v)?,
        "bootstrap_expect" => {
            rt.bootstrap_expect = Some(at.int(v, 0, u32::MAX.into())?).filter(|&n| n > 0).map(|n| n as u32)
        }
        "log_level" => rt.log_level = at.non_empty(v)?,
        "domain" => rt.domain = at.domain(v)?,
        "alt_domain" => rt.alt_domain = Some(at.domain(v)?),
        "encrypt" => rt.encrypt = Some(at.non_empty(v)?),
        "encrypt_verify_incoming" => rt.encrypt_verify_incoming = at.bool(v)?,
        "encrypt_verify_outgoing" => rt.encrypt_verify_outgoing = at.bool(v)?,
        "disable_keyring_file" => rt.disable_keyring_file = at.bool(v)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn apply_network(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let ports = &mut b.rt.ports;
    match at.key {
        "bind_addr" => b.rt.bind_addr = at.ip(v)?,
        "client_addr" => b.rt.client_addr = at.ip(v)?,
        "advertise_addr" => b.advertise = Some(at.ip(v)?),
        "advertise_addr_wan" => b.rt.advertise_addr_wan = Some(at.ip(v)?),
        "addresses.http" => b.http_addr = Some(at.ip(v)?),
        "addresses.dns" => b.dns_addr = Some(at.ip(v)?),
        "ports.http" => ports.http = at.optional_port(v)?,
        "ports.https" => ports.https = at.optional_port(v)?,
        "ports.dns" => ports.dns = at.optional_port(v)?,
        "ports.serf_wan" => ports.serf_wan = at.optional_port(v)?,
        "ports.server" => ports.server = at.port(v)?,
        "ports.serf_lan" => ports.serf_lan = at.port(v)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn apply_tuning(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let rt = &mut b.rt;
    match at.key {
        "limits.kv_max_value_size" => rt.kv_max_value_size = at.uint(v)?,
        "limits.txn_max_req_len" => rt.txn_max_req_len = at.uint(v)?,
        key if key.starts_with("limits.") => return apply_limits(b, at, v),
        "session_ttl_min" => rt.session_ttl_min = at.duration(v)?,
        "disable_coordinates" => rt.disable_coordinates = at.bool(v)?,
        "sync_coordinate_interval_min" => rt.sync_coordinate_interval_min = at.duration(v)?,
        "sync_coordinate_rate_target" => rt.sync_coordinate_rate_target = at.positive_float(v)?,
        "performance.raft_multiplier" => rt.raft_multiplier = at.int(v, 1, 10)? as u32,
        "raft_snapshot_threshold" => rt.raft_snapshot_threshold = at.uint(v)?,
        "raft_trailing_logs" => rt.raft_trailing_logs = at.uint(v)?,
        "telemetry.prometheus_retention_time" => rt.prometheus_retention_time = at.duration(v)?,
        "enable_script_checks" => rt.enable_script_checks = at.bool(v)?,
        "enable_local_script_checks" => rt.enable_local_script_checks = at.bool(v)?,
        "disable_remote_exec" => rt.disable_remote_exec = at.bool(v)?,
        "ui" | "ui_config.enabled" => rt.ui_enabled = at.bool(v)?,
        "autopilot.cleanup_dead_servers" => rt.autopilot_cleanup_dead_servers = at.bool(v)?,
        "autopilot.min_quorum" => rt.autopilot_min_quorum = at.int(v, 0, 100)? as u32,
        "check_output_max_size" => rt.check_output_max_size = at.int(v, 1, i64::from(u32::MAX))? as usize,
        _ => return apply_dns(b, at, v),
    }
    Ok(true)
}

fn apply_limits(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let l = &mut b.rt.limits;
    let count = |at: &At<'_>, v: &Value| at.int(v, 0, i64::from(u32::MAX)).map(|n| n as u32);
    match at.key {
        "limits.http_max_conns_per_client" => l.http_max_conns_per_client = count(at, v)?,
        "limits.rpc_max_conns_per_client" => l.rpc_max_conns_per_client = count(at, v)?,
        "limits.https_handshake_timeout" => l.https_handshake_timeout = at.positive_duration(v)?,
        "limits.rpc_handshake_timeout" => l.rpc_handshake_timeout = at.positive_duration(v)?,
        "limits.http_max_body_size" => l.http_max_body_size = at.int(v, 1, i64::from(u32::MAX))? as u64,
        "limits.http_read_header_timeout" => l.http_read_header_timeout = at.duration(v)?,
        "limits.http_max_blocking_queries" => l.http_max_blocking_queries = count(at, v)?,
        "limits.http_max_concurrent_requests" => l.http_max_concurrent_requests = count(at, v)?,
        "limits.request_limits.mode" => {
            l.request_limits.mode = match at.str(v)? {
                "disabled" => RequestLimitMode::Disabled,
                "permissive" => RequestLimitMode::Permissive,
                "enforcing" => RequestLimitMode::Enforcing,
                s => {
                    return Err(at.invalid(format!(
                        "{s:?} is invalid: must be \"disabled\", \"permissive\" or \"enforcing\""
                    )));
                }
            }
        }
        "limits.request_limits.read_rate" => l.request_limits.read_rate = at.rate(v)?,
        "limits.request_limits.write_rate" => l.request_limits.write_rate = at.rate(v)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn apply_dns(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let d = &mut b.rt.dns;
    let secs = |at: &At<'_>, v: &Value| at.int(v, 0, i64::from(u32::MAX)).map(|n| n as u32);
    match at.key {
        "dns_config.allow_stale" => d.allow_stale = at.bool(v)?,
        "dns_config.max_stale" => d.max_stale = at.duration(v)?,
        "dns_config.node_ttl" => d.node_ttl = at.duration(v)?,
        "dns_config.only_passing" => d.only_passing = at.bool(v)?,
        "dns_config.a_record_limit" => d.a_record_limit = secs(at, v)?,
        "dns_config.udp_answer_limit" => d.udp_answer_limit = secs(at, v)?,
        "dns_config.rate_limit_per_client" => d.rate_limit_per_client = secs(at, v)?,
        "dns_config.enable_truncate" => d.enable_truncate = at.bool(v)?,
        "dns_config.enable_additional_node_meta_txt" => d.enable_additional_node_meta_txt = at.bool(v)?,
        "dns_config.disable_compression" => d.disable_compression = at.bool(v)?,
        "dns_config.recursor_timeout" => d.recursor_timeout = at.duration(v)?,
        "dns_config.recursor_strategy" => {
            d.recursor_strategy = match at.str(v)? {
                s @ ("sequential" | "random") => s.to_owned(),
                s => {
                    return Err(at.invalid(format!("{s:?} is invalid: must be \"sequential\" or \"random\"")));
                }
            }
        }
        "dns_config.soa.refresh" => d.soa_refresh = secs(at, v)?,
        "dns_config.soa.retry" => d.soa_retry = secs(at, v)?,
        "dns_config.soa.expire" => d.soa_expire = secs(at, v)?,
        "dns_config.soa.min_ttl" => d.soa_min_ttl = secs(at, v)?,
        "dns_config.service_ttl" => {
            let Value::Object(m) = v else { return Err(at.type_error("object", v)) };
            for (name, ttl) in m {
                let inner = format!("{}.{name}", at.key);
                d.service_ttl.insert(name.clone(), At { key: &inner, origin: at.origin }.duration(ttl)?);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn apply_tls(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<bool, ConfigError> {
    let t = &mut b.rt.tls;
    if let Some(rest) = at.key.strip_prefix("tls.") {
        let (block, field) = rest.split_once('.').unwrap_or((rest, ""));
        let known = t.block_mut(block).is_some_and(|blk| blk.set(field, v));
        return if known { Ok(true) } else { Err(at.invalid("not a TLS setting".to_owned())) };
    }
    match at.key {
        "verify_incoming_rpc" => t.verify_incoming_rpc = Some(at.bool(v)?),
        "verify_incoming_https" => t.verify_incoming_https = Some(at.bool(v)?),
        "auto_encrypt.allow_tls" => t.auto_encrypt.allow_tls = at.bool(v)?,
        "auto_encrypt.tls" => t.auto_encrypt.tls = at.bool(v)?,
        "auto_encrypt.dns_san" => t.auto_encrypt.dns_san = at.strings(v)?,
        "auto_encrypt.ip_san" => {
            for s in at.strings(v)? {
                let ip = s.parse().map_err(|_| at.invalid(format!("{s:?} is not an IP address")))?;
                t.auto_encrypt.ip_san.push(ip);
            }
        }
        key => return Ok(t.deprecated.set(key, v)),
    }
    Ok(true)
}

fn apply_collections(b: &mut Builder, at: &At<'_>, v: &Value) -> Result<(), ConfigError> {
    let rt = &mut b.rt;
    match at.key {
        "service" | "services" => rt.services.extend(at.objects(v)?),
        "check" | "checks" => rt.checks.extend(at.objects(v)?),
        "watches" => rt.watches.extend(at.objects(v)?),
        "template" => rt.templates.extend(at.objects(v)?),
        "retry_join" => rt.retry_join.extend(at.strings(v)?),
        // `start_join_wan` (removed in Consul 1.15) joined once at start; retrying is safer.
        "retry_join_wan" | "start_join_wan" => rt.retry_join_wan.extend(at.strings(v)?),
        "federation_gateways" => rt.federation_gateways.extend(at.strings(v)?),
        "primary_gateways" => rt.primary_gateways.extend(at.strings(v)?),
        "translate_wan_addrs" => rt.translate_wan_addrs = at.bool(v)?,
        "recursors" => {
            for r in at.strings(v)? {
                let ok = r.parse::<std::net::SocketAddr>().is_ok() || r.parse::<IpAddr>().is_ok();
                if !ok {
                    return Err(at.invalid(format!("{r:?} is not an IP address or IP:port")));
                }
                rt.recursors.push(r);
            }
        }
        "acl" => merge(&mut rt.acl, at.object(v)?),
        _ => {
            return Err(at.invalid("Sekisho has no handler for this key (schema out of date)".to_owned()));
        }
    }
    Ok(())
}

impl At<'_> {
    fn type_error(&self, expected: &'static str, v: &Value) -> ConfigError {
        ConfigError::Type {
            key: self.key.to_owned(),
            origin: self.origin.to_owned(),
            expected,
            found: describe(v),
        }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid { key: self.key.to_owned(), origin: self.origin.to_owned(), message }
    }

    fn str<'v>(&self, v: &'v Value) -> Result<&'v str, ConfigError> {
        v.as_str().ok_or_else(|| self.type_error("string", v))
    }

    fn non_empty(&self, v: &Value) -> Result<String, ConfigError> {
        match self.str(v)? {
            "" => Err(self.invalid("cannot be empty".to_owned())),
            s => Ok(s.to_owned()),
        }
    }

    fn bool(&self, v: &Value) -> Result<bool, ConfigError> {
        v.as_bool().ok_or_else(|| self.type_error("boolean", v))
    }

    fn int(&self, v: &Value, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n = match v.as_i64() {
            Some(n) => n,
            None if v.is_u64() => i64::MAX,
            None => return Err(self.type_error("integer", v)),
        };
        if n < min || n > max {
            return Err(self.invalid(format!("{v} is out of range: must be between {min} and {max}")));
        }
        Ok(n)
    }

    fn positive_float(&self, v: &Value) -> Result<f64, ConfigError> {
        match v.as_f64() {
            Some(f) if f > 0.0 && f.is_finite() => Ok(f),
            Some(_) => Err(self.invalid(format!("{v} is out of range: must be greater than 0"))),
            None => Err(self.type_error("number", v)),
        }
    }

    /// A duration that must not be zero (timeouts that would refuse every client).
    fn positive_duration(&self, v: &Value) -> Result<Duration, ConfigError> {
        match self.duration(v)? {
            d if d.is_zero() => Err(self.invalid(format!("{v} is out of range: must be greater than 0"))),
            d => Ok(d),
        }
    }

    /// A rate per second: a negative number (Consul's `-1`) is no limit (`None`).
    fn rate(&self, v: &Value) -> Result<Option<f64>, ConfigError> {
        match v.as_f64() {
            Some(f) if f < 0.0 => Ok(None),
            Some(f) if f > 0.0 && f.is_finite() => Ok(Some(f)),
            Some(_) => {
                Err(self.invalid(format!("{v} is out of range: must be greater than 0, or -1 for no limit")))
            }
            None => Err(self.type_error("number", v)),
        }
    }

    fn uint(&self, v: &Value) -> Result<u64, ConfigError> {
        match v.as_u64() {
            Some(n) => Ok(n),
            None if v.is_i64() => Err(self.invalid(format!("{v} is out of range: must not be negative"))),
            None => Err(self.type_error("integer", v)),
        }
    }

    /// A port that can be disabled with -1 (`None`); 0 asks for any free port.
    fn optional_port(&self, v: &Value) -> Result<Option<u16>, ConfigError> {
        match v.as_i64() {
            Some(-1) => Ok(None),
            Some(n) => u16::try_from(n).map(Some).map_err(|_| self.bad_port(v, true)),
            None if v.is_u64() => Err(self.bad_port(v, true)),
            None => Err(self.type_error("integer", v)),
        }
    }

    /// A port that cannot be disabled.
    fn port(&self, v: &Value) -> Result<u16, ConfigError> {
        match v.as_i64() {
            Some(n) => u16::try_from(n).map_err(|_| self.bad_port(v, false)),
            None if v.is_u64() => Err(self.bad_port(v, false)),
            None => Err(self.type_error("integer", v)),
        }
    }

    fn bad_port(&self, v: &Value, can_disable: bool) -> ConfigError {
        let rule = if can_disable {
            "must be 1..=65535, 0 for any free port, or -1 to disable"
        } else {
            "must be 1..=65535 or 0 for any free port (this port cannot be disabled)"
        };
        self.invalid(format!("{v} is not a valid port: {rule}"))
    }

    fn ip(&self, v: &Value) -> Result<IpAddr, ConfigError> {
        let s = self.str(v)?;
        s.trim().parse().map_err(|_| self.invalid(format!("{s:?} is not a valid IP address")))
    }

    fn duration(&self, v: &Value) -> Result<Duration, ConfigError> {
        if let Value::Number(_) = v {
            let secs = self.uint(v)?;
            return Ok(Duration::from_secs(secs));
        }
        let s = self.str(v)?;
        parse_go_duration(s).map_err(|e| self.invalid(e))
    }

    /// A DNS domain: labels of letters, digits, `-` and `_`, without the trailing dot.
    fn domain(&self, v: &Value) -> Result<String, ConfigError> {
        let d = self.non_empty(v)?.trim_end_matches('.').to_lowercase();
        let ok = !d.is_empty()
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if ok { Ok(d) } else { Err(self.invalid(format!("{d:?} is not a valid DNS domain"))) }
    }

    /// Datacenter names: lowercased, then `^[a-z0-9_-]+$` (Consul's rule).
    fn basic_name(&self, v: &Value) -> Result<String, ConfigError> {
        let name = self.non_empty(v)?.to_lowercase();
        if name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
            return Ok(name);
        }
        Err(self.invalid(format!(
            "{name:?} is invalid: can only contain lowercase alphanumeric, - or _ characters"
        )))
    }

    fn uuid(&self, v: &Value) -> Result<String, ConfigError> {
        let s = self.str(v)?;
        uuid::Uuid::parse_str(s)
            .map(|u| u.hyphenated().to_string())
            .map_err(|_| self.invalid(format!("{s:?} is not a valid UUID")))
    }

    fn strings(&self, v: &Value) -> Result<Vec<String>, ConfigError> {
        let items = v.as_array().ok_or_else(|| self.type_error("list of strings", v))?;
        items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| self.type_error("list of strings", v)))
            .collect()
    }

    fn object(&self, v: &Value) -> Result<Value, ConfigError> {
        if v.is_object() { Ok(v.clone()) } else { Err(self.type_error("object", v)) }
    }

    fn objects(&self, v: &Value) -> Result<Vec<Value>, ConfigError> {
        let expected = "object or list of objects";
        match v {
            Value::Object(_) => Ok(vec![v.clone()]),
            Value::Array(items) if items.iter().all(Value::is_object) => Ok(items.clone()),
            _ => Err(self.type_error(expected, v)),
        }
    }
}
