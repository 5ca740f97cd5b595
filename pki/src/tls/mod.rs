//! rustls configuration builders on the ring provider.

mod client;
mod material;
mod reject;
mod reload;
mod server;

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

use crate::error::{Error, Result};
use crate::info::parse_certificate_der;

pub use client::{ServerNameCheck, client_config, client_config_with_resolver};
pub use material::TlsMaterial;
pub use reject::{PeerSide, RejectHook, Rejection};
pub use reload::ReloadableCert;
pub use server::{ClientAuth, server_config, server_config_with_resolver};

/// Lowest TLS protocol version to accept (Consul's `tls_min_version`; TLS 1.0 and 1.1 are
/// not supported by rustls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (Consul's default `TLSv1_2`).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    pub(crate) fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12_UP: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            Self::Tls12 => &TLS12_UP,
            Self::Tls13 => &TLS13_ONLY,
        }
    }
}

/// Options shared by server and client configs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Lowest protocol version.
    pub min_version: TlsVersion,
    /// ALPN protocols in preference order, e.g. `[b"h2".to_vec(), b"http/1.1".to_vec()]`.
    /// Leave empty for clients handed to hyper-rustls, which sets its own.
    pub alpn: Vec<Vec<u8>>,
    /// Told about every peer certificate the config's verifier refuses.
    pub on_reject: Option<RejectHook>,
}

impl TlsOptions {
    /// Options with the given minimum version and ALPN list.
    pub fn new(min_version: TlsVersion, alpn: Vec<Vec<u8>>) -> Self {
        Self { min_version, alpn, on_reject: None }
    }
}

/// The ring crypto provider, shared by every config this crate builds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// Builds a root store, failing on any certificate that is not a usable trust anchor.
pub(crate) fn root_store(roots: &[CertificateDer<'_>]) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for (i, der) in roots.iter().enumerate() {
        store.add(der.clone()).map_err(|e| {
            Error::Certificate(format!("CA certificate #{i} is not a usable trust anchor: {e}"))
        })?;
    }
    Ok(Arc::new(store))
}

/// The datacenters whose server the peer's leaf certificate names (`server.<dc>.<domain>`),
/// for authorizing cross-datacenter RPC from servers of other datacenters.
pub fn peer_server_datacenters(peer_certs: &[CertificateDer<'_>], domain: &str) -> Vec<String> {
    peer_certs
        .first()
        .and_then(|leaf| parse_certificate_der(leaf).ok())
        .map(|info| info.server_datacenters(domain))
        .unwrap_or_default()
}

/// Whether the peer's leaf certificate (the first of `peer_certs`, e.g. from
/// `ServerConnection::peer_certificates()`) has the DNS SAN `server.<dc>.<domain>`. Use it
/// to authorize server-only RPC (Raft, server-to-server) after the TLS handshake has
/// verified the chain. Unparseable or missing certificates give `false`.
pub fn peer_is_server(peer_certs: &[CertificateDer<'_>], dc: &str, domain: &str) -> bool {
    peer_certs
        .first()
        .and_then(|leaf| parse_certificate_der(leaf).ok())
        .is_some_and(|info| info.has_server_name(dc, domain))
}
