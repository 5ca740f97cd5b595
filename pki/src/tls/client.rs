//! `rustls::ClientConfig` for outgoing RPC and HTTPS, including Consul's
//! `verify_server_hostname = false` mode.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::{Error, Result};
use crate::tls::reject::ReportingServerVerifier;
use crate::tls::{ReloadableCert, TlsMaterial, TlsOptions, provider, root_store};

/// How the client checks the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerNameCheck {
    /// Full webpki verification: chain, validity, EKU and the name the connection was opened
    /// for (e.g. `server.dc1.consul` while dialing an IP). Consul's
    /// `verify_server_hostname = true`.
    Verify,
    /// Verify the chain, validity and EKU but accept any name (Consul's
    /// `verify_server_hostname = false`, where any CA-signed certificate can act as a
    /// server).
    ChainOnly,
}

/// Builds a client config trusting `material.ca_roots` and presenting `material`'s chain and
/// key as client certificate.
pub fn client_config(
    material: &TlsMaterial,
    check: ServerNameCheck,
    opts: &TlsOptions,
) -> Result<Arc<ClientConfig>> {
    let resolver: Arc<dyn ResolvesClientCert> = Arc::new(ReloadableCert::new(material)?);
    client_config_with_resolver(&material.ca_roots, Some(resolver), check, opts)
}

/// Builds a client config trusting `roots` (at least one), presenting the certificate from
/// `client_cert` when given, and checking the server per `check`. The ring provider is used
/// explicitly. Connect with the name to verify, e.g.
/// `ServerName::try_from("server.dc1.consul")`, whatever address is dialed.
pub fn client_config_with_resolver(
    roots: &[CertificateDer<'static>],
    client_cert: Option<Arc<dyn ResolvesClientCert>>,
    check: ServerNameCheck,
    opts: &TlsOptions,
) -> Result<Arc<ClientConfig>> {
    if roots.is_empty() {
        return Err(Error::Tls("verifying servers needs at least one CA root".into()));
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(root_store(roots)?, provider())
        .build()
        .map_err(Error::tls)?;
    let mut verifier: Arc<dyn ServerCertVerifier> = match check {
        ServerNameCheck::Verify => webpki,
        ServerNameCheck::ChainOnly => Arc::new(ChainOnlyVerifier { inner: webpki }),
    };
    if let Some(hook) = &opts.on_reject {
        verifier = Arc::new(ReportingServerVerifier { inner: verifier, hook: hook.clone() });
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(opts.min_version.versions())
        .map_err(Error::tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = opts.alpn.clone();
    Ok(Arc::new(config))
}

/// Delegates to webpki but treats a name mismatch as success. webpki checks the name only
/// after the chain, validity and EKU have passed, so nothing else is skipped.
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}
