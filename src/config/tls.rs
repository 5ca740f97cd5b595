//! TLS settings: the `tls { defaults internal_rpc https grpc }` stanza (Consul 1.12+), the
//! deprecated top-level keys (`ca_file`, `verify_incoming_rpc`, ...), and `auto_encrypt`.
//!
//! Each interface resolves field by field: its own block, then `tls.defaults`, then the
//! deprecated key for that interface (`verify_incoming_rpc`, `verify_incoming_https`), then the
//! deprecated top-level key, then the default.

use std::net::IpAddr;
use std::path::PathBuf;

/// One block as written; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsBlock {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
}

impl TlsBlock {
    /// Field by field, `self` where set, else `fallback`.
    fn or(&self, fallback: &TlsBlock) -> TlsBlock {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        TlsBlock {
            ca_file: pick(&self.ca_file, &fallback.ca_file),
            ca_path: pick(&self.ca_path, &fallback.ca_path),
            cert_file: pick(&self.cert_file, &fallback.cert_file),
            key_file: pick(&self.key_file, &fallback.key_file),
            verify_incoming: pick(&self.verify_incoming, &fallback.verify_incoming),
            verify_outgoing: pick(&self.verify_outgoing, &fallback.verify_outgoing),
            verify_server_hostname: pick(&self.verify_server_hostname, &fallback.verify_server_hostname),
            tls_min_version: pick(&self.tls_min_version, &fallback.tls_min_version),
            tls_cipher_suites: pick(&self.tls_cipher_suites, &fallback.tls_cipher_suites),
        }
    }

    /// Sets `field` (a key of a block) from its already type-checked value. Returns false for
    /// a field this block does not have.
    pub(crate) fn set(&mut self, field: &str, v: &serde_json::Value) -> bool {
        let path = || v.as_str().map(PathBuf::from);
        let text = || v.as_str().map(str::to_owned);
        match field {
            "ca_file" => self.ca_file = path(),
            "ca_path" => self.ca_path = path(),
            "cert_file" => self.cert_file = path(),
            "key_file" => self.key_file = path(),
            "verify_incoming" => self.verify_incoming = v.as_bool(),
            "verify_outgoing" => self.verify_outgoing = v.as_bool(),
            "verify_server_hostname" => self.verify_server_hostname = v.as_bool(),
            "tls_min_version" => self.tls_min_version = text(),
            "tls_cipher_suites" => self.tls_cipher_suites = text(),
            _ => return false,
        }
        true
    }
}

/// The lowest TLS version an interface accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMinVersion {
    /// TLS 1.2 (Consul's default `TLSv1_2`).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Parses Consul's spellings (`TLSv1_2`, and the deprecated `tls12`). TLS 1.0 and 1.1 are
/// refused: rustls does not implement them.
pub fn parse_min_version(s: &str) -> Result<TlsMinVersion, String> {
    match s {
        "TLSv1_2" | "tls12" => Ok(TlsMinVersion::Tls12),
        "TLSv1_3" | "tls13" => Ok(TlsMinVersion::Tls13),
        "TLSv1_0" | "TLSv1_1" | "tls10" | "tls11" => {
            Err(format!("{s:?} is not supported: Sekisho speaks TLS 1.2 and 1.3 only"))
        }
        _ => Err(format!("{s:?} is invalid: must be one of TLSv1_2, TLSv1_3")),
    }
}

/// One interface's settings after resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInterface {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Every incoming connection must use TLS and present a certificate our CA signed.
    pub verify_incoming: bool,
    /// Outgoing connections use TLS and verify the peer against the CA.
    pub verify_outgoing: bool,
    /// Servers must present `server.<dc>.<domain>` (internal RPC only).
    pub verify_server_hostname: bool,
    pub min_version: TlsMinVersion,
    /// Set but not applied (rustls' own suites are used); warned about at load.
    pub cipher_suites: Option<String>,
}

impl TlsInterface {
    /// Whether a certificate and key are configured.
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// Whether a CA is configured.
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }
}

/// `auto_encrypt { allow_tls tls dns_san ip_san }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoEncrypt {
    /// Servers: sign client agents' certificate requests.
    pub allow_tls: bool,
    /// Client agents: ask a server for a certificate at start and renew it.
    pub tls: bool,
    /// Extra DNS SANs for the client certificate.
    pub dns_san: Vec<String>,
    /// Extra IP SANs for the client certificate.
    pub ip_san: Vec<IpAddr>,
}

/// Everything TLS-related, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `tls.defaults`.
    pub defaults: TlsBlock,
    /// `tls.internal_rpc`.
    pub internal_rpc: TlsBlock,
    /// `tls.https`.
    pub https: TlsBlock,
    /// `tls.grpc` (parsed; Sekisho has no gRPC listener).
    pub grpc: TlsBlock,
    /// The deprecated top-level keys.
    pub deprecated: TlsBlock,
    /// `verify_incoming_rpc` (deprecated).
    pub verify_incoming_rpc: Option<bool>,
    /// `verify_incoming_https` (deprecated).
    pub verify_incoming_https: Option<bool>,
    /// `auto_encrypt`.
    pub auto_encrypt: AutoEncrypt,
}

impl TlsConfig {
    /// The block a `tls.<name>` key belongs to.
    pub(crate) fn block_mut(&mut self, name: &str) -> Option<&mut TlsBlock> {
        match name {
            "defaults" => Some(&mut self.defaults),
            "internal_rpc" => Some(&mut self.internal_rpc),
            "https" => Some(&mut self.https),
            "grpc" => Some(&mut self.grpc),
            _ => None,
        }
    }

    /// The server RPC interface (port 8300).
    pub fn rpc(&self) -> Result<TlsInterface, String> {
        let legacy = TlsBlock { verify_incoming: self.verify_incoming_rpc, ..TlsBlock::default() };
        let b = self.internal_rpc.or(&self.defaults).or(&legacy.or(&self.deprecated));
        let mut i = resolve(&b)?;
        // A server name can only be checked over TLS, and an auto_encrypt client talks TLS to
        // get its certificate: either turns outgoing TLS on.
        i.verify_outgoing |= i.verify_server_hostname || self.auto_encrypt.tls;
        Ok(i)
    }

    /// The HTTPS API (`ports.https`).
    pub fn https(&self) -> Result<TlsInterface, String> {
        let legacy = TlsBlock { verify_incoming: self.verify_incoming_https, ..TlsBlock::default() };
        let mut b = self.https.or(&self.defaults).or(&legacy.or(&self.deprecated));
        b.verify_server_hostname = None;
        resolve(&b)
    }

    /// Whether any TLS key was set at all.
    pub fn is_empty(&self) -> bool {
        self == &TlsConfig::default()
    }
}

fn resolve(b: &TlsBlock) -> Result<TlsInterface, String> {
    let min_version = match &b.tls_min_version {
        Some(v) => parse_min_version(v)?,
        None => TlsMinVersion::default(),
    };
    Ok(TlsInterface {
        ca_file: b.ca_file.clone(),
        ca_path: b.ca_path.clone(),
        cert_file: b.cert_file.clone(),
        key_file: b.key_file.clone(),
        verify_incoming: b.verify_incoming.unwrap_or(false),
        verify_outgoing: b.verify_outgoing.unwrap_or(false),
        verify_server_hostname: b.verify_server_hostname.unwrap_or(false),
        min_version,
        cipher_suites: b.tls_cipher_suites.clone(),
    })
}

/// Checks one interface (Consul's rules) and collects warnings for settings that would
/// silently do nothing.
pub(crate) fn check_interface(
    name: &str,
    i: &TlsInterface,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if (i.cert_file.is_some()) != (i.key_file.is_some()) {
        return Err(format!("tls.{name}: cert_file and key_file must be set together"));
    }
    if i.verify_incoming && !i.has_cert() {
        return Err(format!("tls.{name}: verify_incoming is set but no cert_file/key_file pair is"));
    }
    if (i.verify_incoming || i.verify_outgoing) && !i.has_ca() {
        let which = if i.verify_incoming { "verify_incoming" } else { "verify_outgoing" };
        return Err(format!("tls.{name}: {which} is set but no CA certificate (ca_file or ca_path) is"));
    }
    if i.has_cert() && !i.verify_incoming && !i.verify_outgoing && name == "internal_rpc" {
        warnings.push(format!(
            "tls.{name}: certificate files are set but verify_incoming and verify_outgoing are both off, \
             so agents still talk plaintext RPC to each other and accept it; set verify_outgoing (and \
             verify_incoming, verify_server_hostname) to turn TLS on"
        ));
    }
    if i.cipher_suites.is_some() {
        warnings.push(format!(
            "tls.{name}.tls_cipher_suites is not applied: Sekisho uses rustls' default suites (all AEAD, \
             forward-secret)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ca: Option<&str>, vi: Option<bool>, vo: Option<bool>) -> TlsBlock {
        TlsBlock {
            ca_file: ca.map(PathBuf::from),
            verify_incoming: vi,
            verify_outgoing: vo,
            ..TlsBlock::default()
        }
    }

    #[test]
    fn interface_blocks_override_defaults_which_override_deprecated_keys() {
        let mut t = TlsConfig {
            deprecated: block(Some("old.pem"), Some(true), Some(true)),
            defaults: block(Some("new.pem"), None, None),
            ..TlsConfig::default()
        };
        t.internal_rpc.verify_incoming = Some(false);
        let rpc = t.rpc().unwrap();
        assert_eq!(rpc.ca_file, Some(PathBuf::from("new.pem")));
        assert!(!rpc.verify_incoming && rpc.verify_outgoing);
        let https = t.https().unwrap();
        assert!(https.verify_incoming, "deprecated verify_incoming still applies to https");
        t.verify_incoming_https = Some(false);
        assert!(!t.https().unwrap().verify_incoming);
    }

    #[test]
    fn verify_server_hostname_turns_outgoing_tls_on_for_rpc_only() {
        let t = TlsConfig {
            internal_rpc: TlsBlock { verify_server_hostname: Some(true), ..TlsBlock::default() },
            defaults: TlsBlock { verify_server_hostname: Some(true), ..TlsBlock::default() },
            ..TlsConfig::default()
        };
        assert!(t.rpc().unwrap().verify_outgoing);
        let https = t.https().unwrap();
        assert!(!https.verify_outgoing && !https.verify_server_hostname);
    }

    #[test]
    fn min_versions_parse_both_spellings_and_refuse_old_protocols() {
        assert_eq!(parse_min_version("TLSv1_3"), Ok(TlsMinVersion::Tls13));
        assert_eq!(parse_min_version("tls12"), Ok(TlsMinVersion::Tls12));
        assert!(parse_min_version("TLSv1_0").unwrap_err().contains("not supported"));
        assert!(parse_min_version("ssl3").unwrap_err().contains("invalid"));
    }

    #[test]
    fn the_rules_name_what_is_missing_and_warn_about_tls_that_is_off() {
        let mut w = Vec::new();
        let i = TlsInterface { verify_incoming: true, ..TlsInterface::default() };
        assert!(check_interface("internal_rpc", &i, &mut w).unwrap_err().contains("no cert_file/key_file"));
        let i = TlsInterface { verify_outgoing: true, ..TlsInterface::default() };
        assert!(check_interface("internal_rpc", &i, &mut w).unwrap_err().contains("verify_outgoing is set"));
        let i = TlsInterface { cert_file: Some("c".into()), ..TlsInterface::default() };
        assert!(check_interface("internal_rpc", &i, &mut w).unwrap_err().contains("set together"));
        let i = TlsInterface {
            cert_file: Some("c".into()),
            key_file: Some("k".into()),
            ca_file: Some("ca".into()),
            ..TlsInterface::default()
        };
        check_interface("internal_rpc", &i, &mut w).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("plaintext"), "{w:?}");
    }
}
