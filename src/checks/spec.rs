//! Check definitions: one parser for config-file (`snake_case`) and HTTP-body (`PascalCase`)
//! spellings, with Consul's validation texts (`structs.CheckType.Validate`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::Status;
use crate::http::decode::{Obj, go_duration};
use crate::state::types::CheckDefinition;

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Critical unless refreshed through `/v1/agent/check/pass|warn|fail|update` within `ttl`.
    Ttl {
        /// Time to live of the last update.
        ttl: Duration,
    },
    /// An HTTP(S) request; 2xx passing, 429 warning, anything else critical.
    Http {
        /// Absolute `http://` or `https://` URL.
        url: String,
        /// Request method (`GET` when the definition has none).
        method: String,
        /// Extra request headers, names as written.
        headers: BTreeMap<String, Vec<String>>,
        /// Request body.
        body: String,
        /// Accept any server certificate.
        tls_skip_verify: bool,
        /// SNI and verified name; the URL's host when empty.
        tls_server_name: String,
        /// Report a 3xx as is instead of following it.
        disable_redirects: bool,
    },
    /// A TCP connect to `host:port`.
    Tcp {
        /// `host:port`.
        addr: String,
    },
    /// An empty UDP datagram to `host:port`; only an ICMP error (or a local error) fails it.
    Udp {
        /// `host:port`.
        addr: String,
    },
    /// `grpc.health.v1.Health/Check`.
    Grpc {
        /// `host:port[/service]`.
        target: String,
        /// TLS (ALPN `h2`) instead of cleartext HTTP/2.
        use_tls: bool,
        /// Accept any server certificate.
        tls_skip_verify: bool,
        /// SNI and verified name; the target's host when empty.
        tls_server_name: String,
    },
    /// A program run directly (no shell): exit 0 passing, 1 warning, else critical.
    Script {
        /// Program and arguments.
        args: Vec<String>,
    },
    /// Mirrors the aggregated health of another service instance.
    Alias {
        /// Service ID (not name) to mirror.
        service: String,
        /// Node of that service; `None` means this agent's node.
        node: Option<String>,
    },
}

/// One parsed, validated check definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// `ID`/`CheckID`; empty when absent (the caller applies Consul's default).
    pub id: String,
    /// Empty when absent (the caller applies Consul's default).
    pub name: String,
    /// Free-form notes.
    pub notes: String,
    /// Owning service, empty for a node check.
    pub service_id: String,
    /// What the check probes.
    pub kind: CheckKind,
    /// As written; `Duration::ZERO` for TTL and alias checks. The runner clamps it to
    /// [`super::MIN_INTERVAL`].
    pub interval: Duration,
    /// As written; `Duration::ZERO` when absent (see [`CheckSpec::effective_timeout`]).
    pub timeout: Duration,
    /// `Status` of the definition; the caller shows it (or critical) until the first result.
    pub initial_status: Option<Status>,
    /// Consecutive successes before passing is reported.
    pub success_before_passing: u32,
    /// Consecutive failures before warning is reported (defaults to `failures_before_critical`).
    pub failures_before_warning: u32,
    /// Consecutive failures before critical is reported.
    pub failures_before_critical: u32,
    /// Reap the owning service after this long critical.
    pub deregister_critical_service_after: Option<Duration>,
    /// Per-check output limit in bytes (`OutputMaxSize`); 0 when absent. Only lowers the
    /// agent's `check_output_max_size`.
    pub output_max_size: usize,
    /// What the catalog shows as `Definition`.
    pub definition: CheckDefinition,
}

/// Consul's default timeout of HTTP, TCP, UDP and gRPC probes.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Consul's default timeout of script checks.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

fn invalid(msg: &str) -> String {
    format!("Invalid check: {msg}")
}

/// The raw fields, before the kind is decided.
struct Raw {
    args: Vec<String>,
    http: String,
    tcp: String,
    udp: String,
    grpc: String,
    alias_service: String,
    alias_node: String,
    interval: Duration,
    ttl: Duration,
}

impl CheckSpec {
    /// Parses one check definition as written in a config file (`snake_case`) or an HTTP
    /// body (`PascalCase`); keys match case- and underscore-insensitively. Errors are texts
    /// ready for a client: `Request decode failed: …` for wrong JSON types, `Bad check status`,
    /// and `Invalid check: …` with Consul's validation messages.
    pub fn parse(v: &Value) -> Result<CheckSpec, String> {
        let o = Obj::new(v, "check").map_err(|e| e.message)?;
        parse_obj(&o).map_err(|ParseError(m)| m)
    }

    /// True for `args` checks (refused unless script checks are enabled).
    pub fn is_script(&self) -> bool {
        matches!(self.kind, CheckKind::Script { .. })
    }

    /// Consul's `HealthCheck.Type`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            CheckKind::Ttl { .. } => "ttl",
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Grpc { .. } => "grpc",
            CheckKind::Script { .. } => "script",
            CheckKind::Alias { .. } => "alias",
        }
    }

    /// The timeout a probe runs with: the definition's, else Consul's default (10s for
    /// network probes, 30s for scripts). Zero for TTL and alias checks.
    pub fn effective_timeout(&self) -> Duration {
        match self.kind {
            CheckKind::Ttl { .. } | CheckKind::Alias { .. } => Duration::ZERO,
            _ if !self.timeout.is_zero() => self.timeout,
            CheckKind::Script { .. } => DEFAULT_SCRIPT_TIMEOUT,
            _ => DEFAULT_PROBE_TIMEOUT,
        }
    }
}

/// A client-ready error text.
struct ParseError(String);

impl From<crate::http::error::ApiError> for ParseError {
    fn from(e: crate::http::error::ApiError) -> Self {
        ParseError(e.message)
    }
}

fn parse_obj(o: &Obj<'_>) -> Result<CheckSpec, ParseError> {
    if o.get("script").is_some() {
        return Err(ParseError(invalid(
            "'script' is not supported; use 'args' (the program and its arguments as a list)",
        )));
    }
    for (field, what) in
        [("docker_container_id", "Docker"), ("h2ping", "H2PING"), ("os_service", "OSService")]
    {
        if !o.str(field)?.is_empty() {
            return Err(ParseError(invalid(&format!("{what} checks are not supported by this agent"))));
        }
    }
    let mut args = o.strings("args")?;
    if args.is_empty() {
        args = o.strings("script_args")?;
    }
    let raw = Raw {
        args,
        http: o.str("http")?,
        tcp: o.str("tcp")?,
        udp: o.str("udp")?,
        grpc: o.str("grpc")?,
        alias_service: o.str("alias_service")?,
        alias_node: o.str("alias_node")?,
        interval: o.duration("interval")?.unwrap_or_default(),
        ttl: o.duration("ttl")?.unwrap_or_default(),
    };
    let counts = (u32_field(o, "success_before_passing")?, u32_field(o, "failures_before_warning")?);
    let failures_before_critical = u32_field(o, "failures_before_critical")?;
    validate(&raw, counts.1, failures_before_critical).map_err(|m| ParseError(invalid(m)))?;

    let status = o.str("status")?;
    let initial_status = match status.as_str() {
        "" => None,
        s => Some(Status::parse(s).ok_or_else(|| ParseError("Bad check status".into()))?),
    };
    let timeout = o.duration("timeout")?.unwrap_or_default();
    let dcsa = o.duration("deregister_critical_service_after")?.filter(|d| !d.is_zero());
    let kind = kind(o, &raw)?;
    let interval = if matches!(kind, CheckKind::Ttl { .. } | CheckKind::Alias { .. }) {
        Duration::ZERO
    } else {
        raw.interval
    };
    let definition = CheckDefinition {
        http: raw.http.clone(),
        tcp: raw.tcp.clone(),
        interval: nonzero_go(raw.interval),
        timeout: nonzero_go(timeout),
        deregister_critical_service_after: dcsa.map(go_duration).unwrap_or_default(),
    };
    Ok(CheckSpec {
        id: if o.get("id").is_some() { o.str("id")? } else { o.str("check_id")? },
        name: o.str("name")?,
        notes: o.str("notes")?,
        service_id: o.str("service_id")?,
        kind,
        interval,
        timeout,
        initial_status,
        success_before_passing: counts.0,
        // Consul (agent.addCheck): FailuresBeforeWarning defaults to FailuresBeforeCritical.
        failures_before_warning: if counts.1 == 0 { failures_before_critical } else { counts.1 },
        failures_before_critical,
        deregister_critical_service_after: dcsa,
        output_max_size: usize::try_from(o.u64("output_max_size")?).unwrap_or(usize::MAX),
        definition,
    })
}

fn nonzero_go(d: Duration) -> String {
    if d.is_zero() { String::new() } else { go_duration(d) }
}

fn u32_field(o: &Obj<'_>, field: &str) -> Result<u32, ParseError> {
    let v = o.u64(field)?;
    u32::try_from(v)
        .map_err(|_| ParseError(format!("Request decode failed: field check.{field}: {v} out of range")))
}

/// Consul's `CheckType.Validate`, in its order and with its texts.
fn validate(
    r: &Raw,
    failures_before_warning: u32,
    failures_before_critical: u32,
) -> Result<(), &'static str> {
    let interval_check = !r.args.is_empty()
        || !r.http.is_empty()
        || !r.tcp.is_empty()
        || !r.udp.is_empty()
        || !r.grpc.is_empty();
    let alias = !r.alias_service.is_empty() || !r.alias_node.is_empty();
    if !r.interval.is_zero() && !r.ttl.is_zero() {
        return Err("Interval and TTL cannot both be specified");
    }
    if interval_check && r.interval.is_zero() {
        return Err("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks");
    }
    if interval_check && alias {
        return Err("Interval cannot be set for Alias checks");
    }
    if alias && !r.ttl.is_zero() {
        return Err("TTL must be not be set for Alias checks");
    }
    if !interval_check && !alias && r.ttl.is_zero() {
        return Err("TTL must be > 0 for TTL checks");
    }
    if failures_before_warning > failures_before_critical {
        return Err("FailuresBeforeWarning can't be higher than FailuresBeforeCritical");
    }
    Ok(())
}

/// The runner Consul's `agent.addCheck` would pick, in its order: TTL, HTTP, TCP, UDP, gRPC,
/// script, alias.
fn kind(o: &Obj<'_>, r: &Raw) -> Result<CheckKind, ParseError> {
    let tls_skip_verify = o.bool("tls_skip_verify")?;
    let tls_server_name = o.str("tls_server_name")?;
    Ok(if !r.ttl.is_zero() {
        CheckKind::Ttl { ttl: r.ttl }
    } else if !r.http.is_empty() {
        let method = o.str("method")?;
        CheckKind::Http {
            url: r.http.clone(),
            method: if method.is_empty() { "GET".into() } else { method },
            headers: headers(o)?,
            body: o.str("body")?,
            tls_skip_verify,
            tls_server_name,
            disable_redirects: o.bool("disable_redirects")?,
        }
    } else if !r.tcp.is_empty() {
        CheckKind::Tcp { addr: r.tcp.clone() }
    } else if !r.udp.is_empty() {
        CheckKind::Udp { addr: r.udp.clone() }
    } else if !r.grpc.is_empty() {
        CheckKind::Grpc {
            target: r.grpc.clone(),
            use_tls: o.bool("grpc_use_tls")?,
            tls_skip_verify,
            tls_server_name,
        }
    } else if !r.args.is_empty() {
        CheckKind::Script { args: r.args.clone() }
    } else {
        CheckKind::Alias {
            service: r.alias_service.clone(),
            node: Some(r.alias_node.clone()).filter(|n| !n.is_empty()),
        }
    })
}

/// `Header`: `{"Name": ["v1", "v2"]}`.
fn headers(o: &Obj<'_>) -> Result<BTreeMap<String, Vec<String>>, ParseError> {
    let Some(h) = o.obj("header")? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (name, v) in h.entries() {
        let Value::Array(items) = v else {
            return Err(ParseError(format!(
                "Request decode failed: json: cannot unmarshal {} into field check.Header of type []string",
                json_kind(v)
            )));
        };
        let values = items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(ParseError(format!(
                    "Request decode failed: json: cannot unmarshal {} into field check.Header of type string",
                    json_kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(name.clone(), values);
    }
    Ok(out)
}

use crate::http::decode::json_kind;

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
