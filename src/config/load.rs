//! `load`: defaults → dev defaults → files → flags → derived values → validation.

use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::apply::{Builder, apply};
use super::error::{ConfigError, Warning};
use super::runtime::{Ports, RuntimeConfig};
use super::{hcl, host_name, keys};

/// Origin used in messages for values given on the command line.
const FLAGS_ORIGIN: &str = "command-line flags";

/// Command-line flags of `agent`; each `Some` overrides every file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `-dev`: start from the dev defaults (in-memory server on 127.0.0.1).
    pub dev: bool,
    /// `-config-file`, loaded in the order given (a directory is loaded like `-config-dir`).
    pub config_files: Vec<PathBuf>,
    /// `-config-dir`: every `*.json` and `*.hcl` file inside, in lexical order.
    pub config_dirs: Vec<PathBuf>,
    /// `-datacenter`.
    pub datacenter: Option<String>,
    /// `-node`.
    pub node_name: Option<String>,
    /// `-data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `-server`.
    pub server: Option<bool>,
    /// `-bootstrap`.
    pub bootstrap: Option<bool>,
    /// `-bootstrap-expect`.
    pub bootstrap_expect: Option<u32>,
    /// `-bind`.
    pub bind_addr: Option<String>,
    /// `-client`.
    pub client_addr: Option<String>,
    /// `-advertise`.
    pub advertise_addr: Option<String>,
    /// `-http-port` (-1 disables).
    pub http_port: Option<i64>,
    /// `-dns-port` (-1 disables).
    pub dns_port: Option<i64>,
    /// `-serf-lan-port`.
    pub serf_lan_port: Option<i64>,
    /// `-server-port`.
    pub server_port: Option<i64>,
    /// `-log-level`.
    pub log_level: Option<String>,
    /// `-domain`.
    pub domain: Option<String>,
    /// `-ui`.
    pub ui: Option<bool>,
    /// `-retry-join`, appended to the files' `retry_join`.
    pub retry_join: Vec<String>,
    /// `-serf-wan-port` (-1 disables).
    pub serf_wan_port: Option<i64>,
    /// `-advertise-wan`.
    pub advertise_addr_wan: Option<String>,
    /// `-retry-join-wan`, appended to the files' `retry_join_wan`.
    pub retry_join_wan: Vec<String>,
}

/// Loads, merges and validates the agent configuration.
///
/// Phases, each overriding the previous: Consul's defaults, the dev defaults when
/// `flags.dev`, each config file in order, then the flags. Unknown keys, type errors and
/// broken rules are errors naming the key and the file; keys Consul knows but Sekisho
/// does not implement yet are ignored with one [`Warning`] each.
pub fn load(flags: &Flags) -> Result<(RuntimeConfig, Vec<Warning>), ConfigError> {
    let base = if flags.dev { RuntimeConfig::dev() } else { defaults() };
    let mut b = Builder::new(base);
    let mut warnings = Vec::new();
    for path in config_paths(flags, &mut warnings)? {
        let Some(mut obj) = read_source(&path)? else {
            continue;
        };
        let origin = path.display().to_string();
        keys::check(&mut obj, &origin, &mut warnings)?;
        apply(&mut b, &obj, &origin)?;
    }
    apply_flags(&mut b, flags)?;
    let rt = finish(b, &mut warnings)?;
    Ok((rt, warnings))
}

/// [`load`] of one file's text (`hcl`, else JSON) and no flags, without touching the disk:
/// the node ID is not read from or written to `data_dir`. For the fuzz targets
/// ([`crate::fuzzing::config_text`]).
pub fn load_text(text: &str, hcl: bool) -> Result<(RuntimeConfig, Vec<Warning>), ConfigError> {
    let (format, origin) = if hcl { (Format::Hcl, "fuzz.hcl") } else { (Format::Json, "fuzz.json") };
    let mut b = Builder::new(defaults());
    let mut warnings = Vec::new();
    if let Some(mut obj) = parse_source(Path::new(origin), format, text)? {
        keys::check(&mut obj, origin, &mut warnings)?;
        apply(&mut b, &obj, origin)?;
    }
    apply_flags(&mut b, &Flags::default())?;
    b.node_id.get_or_insert_with(|| "00000000-0000-4000-8000-000000000000".to_owned());
    let rt = finish(b, &mut warnings)?;
    Ok((rt, warnings))
}

/// Consul's defaults for a non-dev agent.
fn defaults() -> RuntimeConfig {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    RuntimeConfig {
        dev: false,
        datacenter: "dc1".to_owned(),
        primary_datacenter: String::new(),
        node_name: host_name(),
        node_id: String::new(),
        data_dir: None,
        server: false,
        bootstrap: false,
        bootstrap_expect: None,
        bind_addr: any,
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
        dns: super::runtime::DnsConfig::default(),
        check_output_max_size: 4096,
        autopilot_cleanup_dead_servers: true,
        autopilot_min_quorum: 0,
        kv_max_value_size: 512 * 1024,
        txn_max_req_len: 512 * 1024,
        limits: super::runtime::Limits::default(),
        session_ttl_min: Duration::from_secs(10),
        disable_coordinates: false,
        sync_coordinate_interval_min: Duration::from_secs(15),
        sync_coordinate_rate_target: 64.0,
        raft_multiplier: 1,
        raft_snapshot_threshold: 16384,
        raft_trailing_logs: 10240,
        prometheus_retention_time: Duration::ZERO,
        enable_script_checks: false,
        enable_local_script_checks: false,
        disable_remote_exec: true,
        ui_enabled: false,
        services: Vec::new(),
        checks: Vec::new(),
        watches: Vec::new(),
        templates: Vec::new(),
        acl: Value::Null,
        tls: super::tls::TlsConfig::default(),
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

/// The files to load, in order: `config_files` as given, then each `config_dirs` entry.
fn config_paths(flags: &Flags, warnings: &mut Vec<Warning>) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for path in &flags.config_files {
        if path.is_dir() {
            out.extend(dir_entries(path, warnings)?);
        } else {
            out.push(path.clone());
        }
    }
    for dir in &flags.config_dirs {
        out.extend(dir_entries(dir, warnings)?);
    }
    Ok(out)
}

/// `*.json` and `*.hcl` files of `dir` in lexical order; other files are skipped with a
/// warning, sub-directories silently.
fn dir_entries(dir: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<PathBuf>, ConfigError> {
    let io = |error| ConfigError::Io { action: "list", path: dir.to_path_buf(), error };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            continue;
        }
        if format_of(&path).is_some() {
            paths.push(path);
        } else {
            let message = format!("skipping file {}, extension must be .hcl or .json", path.display());
            warnings.push(Warning::general(None, Some(&path.display().to_string()), message));
        }
    }
    paths.sort();
    Ok(paths)
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Hcl,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "json" => Some(Format::Json),
        "hcl" => Some(Format::Hcl),
        _ => None,
    }
}

/// Reads and parses one file; `None` when it is empty (Consul skips those).
fn read_source(path: &Path) -> Result<Option<Map<String, Value>>, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
    let Some(format) = format_of(path) else {
        return Err(parse_error("extension must be .hcl or .json".to_owned()));
    };
    let text = fs::read_to_string(path).map_err(|error| ConfigError::Io {
        action: "read",
        path: path.to_path_buf(),
        error,
    })?;
    parse_source(path, format, &text)
}

/// Parses one file's text; `None` when it is empty.
fn parse_source(path: &Path, format: Format, text: &str) -> Result<Option<Map<String, Value>>, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?,
        Format::Hcl => hcl::parse(text).map_err(|e| parse_error(e.to_string()))?,
    };
    match value {
        Value::Object(obj) => Ok(Some(obj)),
        other => {
            Err(parse_error(format!("expected an object at the top level, found {}", keys::describe(&other))))
        }
    }
}

/// Applies the flags as a last source, so they get the same rules and messages.
fn apply_flags(b: &mut Builder, f: &Flags) -> Result<(), ConfigError> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("datacenter", f.datacenter.clone().map(Value::from));
    put("node_name", f.node_name.clone().map(Value::from));
    put("data_dir", f.data_dir.as_ref().map(|p| Value::from(p.to_string_lossy())));
    put("server", f.server.map(Value::from));
    put("bootstrap", f.bootstrap.map(Value::from));
    put("bootstrap_expect", f.bootstrap_expect.map(Value::from));
    put("bind_addr", f.bind_addr.clone().map(Value::from));
    put("client_addr", f.client_addr.clone().map(Value::from));
    put("advertise_addr", f.advertise_addr.clone().map(Value::from));
    put("ports.http", f.http_port.map(Value::from));
    put("ports.dns", f.dns_port.map(Value::from));
    put("ports.server", f.server_port.map(Value::from));
    put("ports.serf_lan", f.serf_lan_port.map(Value::from));
    put("ports.serf_wan", f.serf_wan_port.map(Value::from));
    put("advertise_addr_wan", f.advertise_addr_wan.clone().map(Value::from));
    put("retry_join_wan", (!f.retry_join_wan.is_empty()).then(|| json!(f.retry_join_wan)));
    put("log_level", f.log_level.clone().map(Value::from));
    put("domain", f.domain.clone().map(Value::from));
    put("ui", f.ui.map(Value::from));
    put("retry_join", (!f.retry_join.is_empty()).then(|| json!(f.retry_join)));
    apply(b, &m, FLAGS_ORIGIN)?;
    if let Some(dir) = &f.data_dir {
        b.rt.data_dir = Some(dir.clone());
    }
    Ok(())
}

/// Derives what depends on several keys, checks cross-key rules and settles the node ID.
fn finish(mut b: Builder, warnings: &mut Vec<Warning>) -> Result<RuntimeConfig, ConfigError> {
    let rt = &mut b.rt;
    rt.primary_datacenter = b.primary_dc.take().unwrap_or_else(|| rt.datacenter.clone());
    rt.advertise_addr = match b.advertise {
        Some(ip) => ip,
        None if rt.bind_addr.is_unspecified() => private_ipv4().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        None => rt.bind_addr,
    };
    rt.http_addr = b.http_addr.unwrap_or(rt.client_addr);
    rt.dns_addr = b.dns_addr.unwrap_or(rt.client_addr);
    rt.enable_local_script_checks |= rt.enable_script_checks;
    validate(rt, warnings)?;
    rt.node_id = node_id(b.node_id.take(), rt.data_dir.as_deref())?;
    Ok(b.rt)
}

/// Rules between keys, checked on the merged result (Consul's texts).
fn validate(rt: &mut RuntimeConfig, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    let conflict = |s: &str| Err(ConfigError::Conflict(s.to_owned()));
    if rt.advertise_addr.is_unspecified() {
        return conflict("advertise_addr cannot be 0.0.0.0, :: or [::]");
    }
    if rt.bootstrap && !rt.server {
        return conflict("'bootstrap = true' requires 'server = true'");
    }
    if let Some(expect) = rt.bootstrap_expect {
        if !rt.server {
            return conflict("'bootstrap_expect > 0' requires 'server = true'");
        }
        if rt.dev {
            return conflict("'bootstrap_expect > 0' not allowed in dev mode");
        }
        if rt.bootstrap {
            return conflict("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive");
        }
        if expect == 1 {
            rt.bootstrap_expect = None;
            rt.bootstrap = true;
            let message = "bootstrap_expect = 1 is the same as bootstrap = true; using bootstrap mode";
            warnings.push(Warning::general(Some("bootstrap_expect"), None, message.to_owned()));
        }
    }
    validate_tls(rt, warnings)?;
    if let Some(dir) = rt.data_dir.as_deref().filter(|d| d.exists() && !d.is_dir()) {
        let message = format!("data_dir {:?} is not a directory", dir.display().to_string());
        return Err(ConfigError::Conflict(message));
    }
    Ok(())
}

/// TLS rules between keys (Consul's), and warnings for settings that would do nothing.
fn validate_tls(rt: &RuntimeConfig, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    let conflict = |s: String| ConfigError::Conflict(s);
    let ae = &rt.tls.auto_encrypt;
    if ae.tls && rt.server {
        return Err(conflict("auto_encrypt.tls can only be used on client agents (server = false)".into()));
    }
    if ae.allow_tls && !rt.server {
        return Err(conflict("auto_encrypt.allow_tls can only be used on servers".into()));
    }
    let mut texts = Vec::new();
    let mut rpc = rt.tls.rpc().map_err(conflict)?;
    if ae.tls {
        if !rpc.has_ca() {
            return Err(conflict("auto_encrypt.tls needs the CA certificate (tls.defaults.ca_file)".into()));
        }
        // The certificate arrives from a server at start.
        rpc.verify_outgoing = true;
        rpc.cert_file = Some("<auto_encrypt>".into());
        rpc.key_file = Some("<auto_encrypt>".into());
    }
    super::tls::check_interface("internal_rpc", &rpc, &mut texts).map_err(conflict)?;
    if ae.allow_tls && !(rpc.has_ca() && rpc.has_cert()) {
        return Err(conflict(
            "auto_encrypt.allow_tls needs the server's TLS files (ca_file, cert_file, key_file)".into(),
        ));
    }
    let https = rt.tls.https().map_err(conflict)?;
    if rt.ports.https.is_some() {
        if !https.has_cert() {
            return Err(conflict("ports.https is set but tls.https has no cert_file/key_file".into()));
        }
        super::tls::check_interface("https", &https, &mut texts).map_err(conflict)?;
    }
    warnings.extend(texts.into_iter().map(|t| Warning::general(Some("tls"), None, t)));
    Ok(())
}

/// The node ID: the `node_id` key, else `<data_dir>/node-id`, else a new UUID v4 that is
/// saved to `<data_dir>/node-id` when there is a data dir.
fn node_id(explicit: Option<String>, data_dir: Option<&Path>) -> Result<String, ConfigError> {
    if let Some(id) = explicit {
        return Ok(id);
    }
    let Some(dir) = data_dir else {
        return Ok(uuid::Uuid::new_v4().to_string());
    };
    let path = dir.join("node-id");
    match fs::read_to_string(&path) {
        Ok(text) => uuid::Uuid::parse_str(text.trim()).map(|u| u.hyphenated().to_string()).map_err(|_| {
            ConfigError::Parse { path, message: format!("{:?} is not a valid UUID", text.trim()) }
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            let io = |error| ConfigError::Io { action: "write", path: path.clone(), error };
            fs::create_dir_all(dir).map_err(io)?;
            fs::write(&path, &id).map_err(io)?;
            Ok(id)
        }
        Err(error) => Err(ConfigError::Io { action: "read", path, error }),
    }
}

/// The host's private IPv4 address on its default route, if it has one. Connecting a
/// UDP socket sends nothing; it only makes the kernel pick the source address.
fn private_ipv4() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(10, 254, 254, 254), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(v4) if v4.is_private() => Some(IpAddr::V4(v4)),
        _ => None,
    }
}
