//! `rustls::ServerConfig` for the RPC listener and the HTTPS API.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};

use crate::error::{Error, Result};
use crate::tls::reject::ReportingClientVerifier;
use crate::tls::{ReloadableCert, TlsMaterial, TlsOptions, provider, root_store};

/// Whether the server asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A client certificate signed by one of the roots is mandatory (Consul's
    /// `verify_incoming = true`).
    Required,
    /// Clients may present a certificate; if they do, it must verify.
    Optional,
    /// Client certificates are not requested.
    None,
}

/// Builds a server config from `material`: its roots verify client certificates and its
/// chain and key are served (through a [`ReloadableCert`] that is not shared; use
/// [`server_config_with_resolver`] to keep a handle for reloads).
pub fn server_config(
    material: &TlsMaterial,
    client_auth: ClientAuth,
    opts: &TlsOptions,
) -> Result<Arc<ServerConfig>> {
    let resolver = Arc::new(ReloadableCert::new(material)?);
    server_config_with_resolver(&material.ca_roots, resolver, client_auth, opts)
}

/// Builds a server config that serves whatever `resolver` returns and verifies client
/// certificates against `roots` (required unless `client_auth` is [`ClientAuth::None`]).
/// The ring provider is used explicitly.
pub fn server_config_with_resolver(
    roots: &[CertificateDer<'static>],
    resolver: Arc<dyn ResolvesServerCert>,
    client_auth: ClientAuth,
    opts: &TlsOptions,
) -> Result<Arc<ServerConfig>> {
    let mut verifier = client_verifier(roots, client_auth)?;
    if let (Some(hook), false) = (&opts.on_reject, client_auth == ClientAuth::None) {
        verifier = Arc::new(ReportingClientVerifier { inner: verifier, hook: hook.clone() });
    }
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(opts.min_version.versions())
        .map_err(Error::tls)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = opts.alpn.clone();
    Ok(Arc::new(config))
}

fn client_verifier(
    roots: &[CertificateDer<'static>],
    client_auth: ClientAuth,
) -> Result<Arc<dyn ClientCertVerifier>> {
    if client_auth == ClientAuth::None {
        return Ok(WebPkiClientVerifier::no_client_auth());
    }
    if roots.is_empty() {
        return Err(Error::Tls("verifying client certificates needs at least one CA root".into()));
    }
    let builder = WebPkiClientVerifier::builder_with_provider(root_store(roots)?, provider());
    let builder = match client_auth {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder.build().map_err(Error::tls)
}
