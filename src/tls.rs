//! Agent TLS: loads the certificate files named by the configuration, builds the rustls
//! configs of server RPC (port 8300) and the HTTPS API through `sekisho_pki`, and reloads
//! them when the files change or on `sekisho reload`.
//!
//! ```text
//!  RuntimeConfig.tls ─► AgentTls::load ─► Loaded { rpc_server, rpc_client, https_server }
//!                                             ▲   (RwLock; each new connection reads it)
//!  SIGHUP / reload / file change ─► reload() ─┘   a bad new file: error, old configs stay
//!  refused peer certificate ─► RejectHook ─► warn!(subject, serial, expiry, reason)
//! ```
//!
//! New connections use the current configs; connections already open keep theirs, so a
//! rotation never cuts a running blocking query.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use rustls::{ClientConfig, ServerConfig};
use sekisho_pki::{
    CertInfo, ClientAuth, RejectHook, Rejection, ServerNameCheck, TlsMaterial, TlsOptions, TlsVersion,
};

use crate::config::RuntimeConfig;
use crate::config::tls::{TlsInterface, TlsMinVersion};

/// ALPN of server RPC (HTTP/2 only).
pub const RPC_ALPN: &[u8] = b"h2";

/// Why TLS files could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// A certificate this agent presents, for expiry reporting.
#[derive(Debug, Clone)]
pub struct OwnCert {
    /// Which setting it came from (`tls.internal_rpc.cert_file`, ...).
    pub label: String,
    /// Its parsed details.
    pub info: CertInfo,
}

/// Files read, with their modification time and length then (`None`: missing).
type Stamps = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

/// The configs in use, rebuilt as a whole on reload.
#[derive(Debug, Clone, Default)]
struct Loaded {
    rpc_server: Option<Arc<ServerConfig>>,
    rpc_client: Option<Arc<ClientConfig>>,
    https_server: Option<Arc<ServerConfig>>,
    /// The files read, with what they looked like, to notice changes.
    stamps: Stamps,
    own: Vec<OwnCert>,
}

/// Certificate material obtained at run time instead of from files (auto_encrypt).
#[derive(Debug, Clone)]
struct AutoCert {
    cert_pem: String,
    key_pem: String,
}

/// The agent's TLS state.
#[derive(Debug)]
pub struct AgentTls {
    dc: String,
    domain: String,
    rpc: TlsInterface,
    https: Option<TlsInterface>,
    /// `auto_encrypt.allow_tls`: TLS clients without a certificate may ask for one.
    allow_tls: bool,
    loaded: RwLock<Loaded>,
    auto: RwLock<Option<AutoCert>>,
    /// CA certificates trusted besides the files (servers: the auto_encrypt CA).
    extra_roots: RwLock<String>,
}

impl AgentTls {
    /// Loads the TLS files of `cfg`; `None` when no TLS is configured at all.
    pub fn load(cfg: &RuntimeConfig) -> Result<Option<Arc<AgentTls>>, TlsError> {
        if cfg.tls.is_empty() {
            return Ok(None);
        }
        let rpc = cfg.tls.rpc().map_err(TlsError)?;
        let https = match cfg.ports.https {
            Some(_) => Some(cfg.tls.https().map_err(TlsError)?),
            None => None,
        };
        let tls = AgentTls {
            dc: cfg.datacenter.clone(),
            domain: cfg.domain.clone(),
            rpc,
            https,
            allow_tls: cfg.tls.auto_encrypt.allow_tls,
            loaded: RwLock::new(Loaded::default()),
            auto: RwLock::new(None),
            extra_roots: RwLock::new(String::new()),
        };
        *tls.loaded.write() = tls.build()?;
        tls.report_expiry(SystemTime::now());
        Ok(Some(Arc::new(tls)))
    }

    /// Re-reads every file. On any error the configs in use stay as they were.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = self.build()?;
        *self.loaded.write() = next;
        tracing::info!("tls: certificates reloaded");
        self.report_expiry(SystemTime::now());
        Ok(())
    }

    /// Reloads if any file changed since the last load. Errors are logged, not returned: a
    /// half-written file is retried at the next look.
    pub fn reload_if_changed(&self) {
        let changed = self.loaded.read().stamps.iter().any(|(p, seen)| stamp(p) != *seen);
        if changed && let Err(e) = self.reload() {
            tracing::error!("tls: certificate files changed but cannot be used; keeping the old ones: {e}");
        }
    }

    /// The server RPC acceptor config, when this agent has a certificate for it.
    pub fn rpc_server(&self) -> Option<Arc<ServerConfig>> {
        self.loaded.read().rpc_server.clone()
    }

    /// Whether server RPC refuses plaintext and anonymous clients.
    pub fn rpc_requires_tls(&self) -> bool {
        self.rpc.verify_incoming
    }

    /// The outgoing RPC client config, when `verify_outgoing`.
    pub fn rpc_client(&self) -> Option<Arc<ClientConfig>> {
        self.loaded.read().rpc_client.clone()
    }

    /// Whether servers must prove `server.<dc>.<domain>` (to clients and to other servers).
    pub fn verify_server_hostname(&self) -> bool {
        self.rpc.verify_server_hostname
    }

    /// The name a server of `dc` must present.
    pub fn server_name(&self, dc: &str) -> String {
        format!("server.{dc}.{}", self.domain)
    }

    /// This agent's datacenter.
    pub fn datacenter(&self) -> &str {
        &self.dc
    }

    /// The DNS domain server names end in.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The HTTPS config, when `ports.https` is set.
    pub fn https_server(&self) -> Option<Arc<ServerConfig>> {
        self.loaded.read().https_server.clone()
    }

    /// Whether this agent gets its RPC certificate from a server (auto_encrypt) and has none
    /// yet.
    pub fn needs_auto_cert(&self) -> bool {
        !self.rpc.has_cert() && self.auto.read().is_none()
    }

    /// Uses `cert_pem`/`key_pem` (signed by a server through auto_encrypt) for RPC.
    pub fn set_auto_cert(&self, cert_pem: String, key_pem: String) -> Result<(), TlsError> {
        let previous = self.auto.write().replace(AutoCert { cert_pem, key_pem });
        match self.build() {
            Ok(next) => {
                *self.loaded.write() = next;
                self.report_expiry(SystemTime::now());
                Ok(())
            }
            Err(e) => {
                *self.auto.write() = previous;
                Err(e)
            }
        }
    }

    /// Also trusts `pem` for client certificates (the auto_encrypt CA on servers). A no-op
    /// when it is already trusted.
    pub fn set_extra_roots(&self, pem: &str) -> Result<(), TlsError> {
        if *self.extra_roots.read() == pem {
            return Ok(());
        }
        let previous = std::mem::replace(&mut *self.extra_roots.write(), pem.to_owned());
        match self.build() {
            Ok(next) => {
                *self.loaded.write() = next;
                Ok(())
            }
            Err(e) => {
                *self.extra_roots.write() = previous;
                Err(e)
            }
        }
    }

    /// The CA certificates this agent trusts, as PEM (what auto_encrypt hands out).
    pub fn ca_pem(&self) -> Result<String, TlsError> {
        read_roots(&self.rpc).map(|(pem, _)| pem)
    }

    /// The certificates this agent presents.
    pub fn own_certs(&self) -> Vec<OwnCert> {
        self.loaded.read().own.clone()
    }

    fn build(&self) -> Result<Loaded, TlsError> {
        let mut out = Loaded::default();
        let (mut roots_pem, mut stamps) = read_roots(&self.rpc)?;
        out.stamps.append(&mut stamps);
        roots_pem.push_str(&self.extra_roots.read());
        let hook = Some(reject_hook());
        let opts = |min: TlsMinVersion, alpn: Vec<Vec<u8>>| {
            let mut o = TlsOptions::new(version(min), alpn);
            o.on_reject.clone_from(&hook);
            o
        };
        let rpc_material = self.rpc_pair(&roots_pem, &mut out)?;
        if let Some(m) = &rpc_material {
            // With allow_tls a client without a certificate may connect, for auto_encrypt/sign
            // only (the RPC handler refuses every other path to it).
            let required = self.rpc.verify_incoming && !self.allow_tls;
            let auth = if required { ClientAuth::Required } else { ClientAuth::Optional };
            let auth = if m.ca_roots.is_empty() { ClientAuth::None } else { auth };
            let o = opts(self.rpc.min_version, vec![RPC_ALPN.to_vec()]);
            out.rpc_server =
                Some(sekisho_pki::server_config(m, auth, &o).map_err(|e| err("internal_rpc", e))?);
        }
        if self.rpc.verify_outgoing {
            let check = if self.rpc.verify_server_hostname {
                ServerNameCheck::Verify
            } else {
                ServerNameCheck::ChainOnly
            };
            let o = opts(self.rpc.min_version, vec![RPC_ALPN.to_vec()]);
            let cfg = match &rpc_material {
                Some(m) => sekisho_pki::client_config(m, check, &o),
                None => {
                    let roots = sekisho_pki::parse_certificates(&roots_pem).map_err(|e| err("ca_file", e))?;
                    sekisho_pki::client_config_with_resolver(&roots, None, check, &o)
                }
            };
            out.rpc_client = Some(cfg.map_err(|e| err("internal_rpc", e))?);
        }
        if let Some(h) = &self.https {
            let (https_roots, mut stamps) = read_roots(h)?;
            out.stamps.append(&mut stamps);
            let m = read_pair(h, &https_roots, "https", &mut out)?.ok_or_else(|| {
                TlsError("tls.https: cert_file and key_file are required for ports.https".into())
            })?;
            let auth = match (h.verify_incoming, m.ca_roots.is_empty()) {
                (true, _) => ClientAuth::Required,
                (false, false) => ClientAuth::Optional,
                (false, true) => ClientAuth::None,
            };
            // The API speaks HTTP/1.1 (axum's http1 server).
            let o = opts(h.min_version, vec![b"http/1.1".to_vec()]);
            out.https_server = Some(sekisho_pki::server_config(&m, auth, &o).map_err(|e| err("https", e))?);
        }
        Ok(out)
    }

    /// The RPC certificate: from files, or the one auto_encrypt obtained.
    fn rpc_pair(&self, roots_pem: &str, out: &mut Loaded) -> Result<Option<TlsMaterial>, TlsError> {
        if self.rpc.has_cert() {
            return read_pair(&self.rpc, roots_pem, "internal_rpc", out);
        }
        let Some(auto) = self.auto.read().clone() else { return Ok(None) };
        let m = TlsMaterial::from_pem(roots_pem, &auto.cert_pem, &auto.key_pem)
            .map_err(|e| err("auto_encrypt", e))?;
        if let Ok(info) = sekisho_pki::parse_pem_chain(&auto.cert_pem) {
            out.own.push(OwnCert { label: "auto_encrypt certificate".into(), info: info[0].clone() });
        }
        Ok(Some(m))
    }

    /// Sets the expiry gauge of every certificate in use and warns 30 and 7 days ahead.
    pub fn report_expiry(&self, now: SystemTime) {
        for c in self.own_certs() {
            let left = c.info.not_after - unix(now);
            crate::telemetry::gauge(
                crate::telemetry::names::TLS_CERT_EXPIRY,
                &[("cert", c.label.as_str())],
                left as f64,
            );
            let days = left.div_euclid(86_400);
            let subject = &c.info.subject;
            if left <= 0 {
                tracing::error!("tls: {} ({subject}) expired {} days ago", c.label, -days);
            } else if days < 7 {
                tracing::error!("tls: {} ({subject}) expires in {days} days", c.label);
            } else if days < 30 {
                tracing::warn!("tls: {} ({subject}) expires in {days} days", c.label);
            }
        }
    }
}

fn version(v: TlsMinVersion) -> TlsVersion {
    match v {
        TlsMinVersion::Tls12 => TlsVersion::Tls12,
        TlsMinVersion::Tls13 => TlsVersion::Tls13,
    }
}

fn err(what: &str, e: sekisho_pki::Error) -> TlsError {
    TlsError(format!("tls.{what}: {e}"))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Logs every refused peer certificate with what identifies it.
fn reject_hook() -> RejectHook {
    RejectHook::new(|r: &Rejection| {
        let expiry = UNIX_EPOCH + Duration::from_secs(r.not_after.max(0) as u64);
        let side = match r.side {
            sekisho_pki::PeerSide::Client => "client",
            _ => "server",
        };
        tracing::warn!(
            "tls: refused the {side} certificate {} (serial {}, DNS SANs {:?}, valid until {}): {}",
            r.subject,
            r.serial,
            r.dns_sans,
            humantime::format_rfc3339_seconds(expiry),
            r.reason
        );
    })
}

/// What a file looks like now (modification time and length), `None` if it is missing.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read_file(path: &Path, what: &str, stamps: &mut Stamps) -> Result<String, TlsError> {
    stamps.push((path.to_path_buf(), stamp(path)));
    std::fs::read_to_string(path).map_err(|e| TlsError(format!("reading {what} {}: {e}", path.display())))
}

/// The CA certificates of an interface (ca_file, then every `*.pem`/`*.crt` in ca_path), as
/// one PEM text, checked to parse.
fn read_roots(i: &TlsInterface) -> Result<(String, Stamps), TlsError> {
    let mut stamps = Vec::new();
    let mut pem = String::new();
    let mut files: Vec<PathBuf> = i.ca_file.iter().cloned().collect();
    if let Some(dir) = &i.ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| TlsError(format!("reading ca_path {}: {e}", dir.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        found.sort();
        files.extend(found);
    }
    for f in files {
        let text = read_file(&f, "ca_file", &mut stamps)?;
        sekisho_pki::parse_certificates(&text)
            .map_err(|e| TlsError(format!("CA file {}: {e}", f.display())))?;
        pem.push_str(&text);
        pem.push('\n');
    }
    Ok((pem, stamps))
}

/// The certificate and key of an interface, with the CA roots; `None` when none is set.
fn read_pair(
    i: &TlsInterface,
    roots_pem: &str,
    what: &str,
    out: &mut Loaded,
) -> Result<Option<TlsMaterial>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&i.cert_file, &i.key_file) else { return Ok(None) };
    let cert = read_file(cert_file, "cert_file", &mut out.stamps)?;
    let key = read_file(key_file, "key_file", &mut out.stamps)?;
    let m = TlsMaterial::from_pem(roots_pem, &cert, &key).map_err(|e| {
        TlsError(format!("tls.{what}: {} / {}: {e}", cert_file.display(), key_file.display()))
    })?;
    if let Ok(chain) = sekisho_pki::parse_pem_chain(&cert) {
        let label = format!("tls.{what}.cert_file {}", cert_file.display());
        out.own.push(OwnCert { label, info: chain[0].clone() });
    }
    Ok(Some(m))
}
