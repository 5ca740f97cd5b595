//! Offline chain verification with webpki (through rustls' verifiers).

use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, RootCertStore};

use crate::clock;
use crate::error::{Error, Result, VerifyErrorKind};
use crate::pem::parse_certificates;
use crate::tls::{provider, root_store};

/// The TLS role a certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Acting as a TLS server (EKU serverAuth, if the extension is present).
    ServerAuth,
    /// Acting as a TLS client (EKU clientAuth, if the extension is present).
    ClientAuth,
}

struct Chain<'a> {
    leaf: &'a CertificateDer<'static>,
    intermediates: &'a [CertificateDer<'static>],
    roots: Arc<RootCertStore>,
    now: UnixTime,
}

/// Verifies that `leaf_pem` chains to one of the CAs in `ca_pem` at time `now`.
///
/// `leaf_pem` holds the leaf first, optionally followed by intermediates; `ca_pem` holds one
/// or more trusted roots (several during CA rotation). `purpose` selects the EKU check;
/// `None` accepts a leaf valid for either purpose. `name` (a DNS name or an IP address)
/// must then match a SAN, e.g. `server.dc1.consul`.
///
/// Failures are [`Error::Verify`] whose [`VerifyErrorKind`] says why: unknown issuer,
/// expired, not yet valid, not valid for the name, wrong purpose, name constraints violated,
/// bad signature... PEM problems are reported as for [`parse_certificates`].
pub fn verify_chain(
    leaf_pem: &str,
    ca_pem: &str,
    now: SystemTime,
    purpose: Option<Purpose>,
    name: Option<&str>,
) -> Result<()> {
    let certs = parse_certificates(leaf_pem)?;
    let (leaf, intermediates) = certs.split_first().ok_or(Error::NoCertificate)?;
    let roots = root_store(&parse_certificates(ca_pem)?)?;
    let chain = Chain { leaf, intermediates, roots, now: clock::unix_time(now) };
    let name = name.map(parse_name).transpose()?;
    match purpose {
        Some(Purpose::ServerAuth) => server_auth(&chain, name.as_ref()),
        Some(Purpose::ClientAuth) => client_auth(&chain, name.as_ref()),
        None => server_auth(&chain, name.as_ref()).or_else(|err| match err.verify_kind() {
            Some(VerifyErrorKind::InvalidPurpose) => client_auth(&chain, name.as_ref()),
            _ => Err(err),
        }),
    }
}

fn parse_name(name: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(name)
        .map(|n| n.to_owned())
        .map_err(|_| Error::InvalidParams(format!("{name:?} is neither a DNS name nor an IP address")))
}

fn server_auth(chain: &Chain<'_>, name: Option<&ServerName<'static>>) -> Result<()> {
    let Some(name) = name else {
        let parsed = ParsedCertificate::try_from(chain.leaf).map_err(verify_error)?;
        let algs = provider().signature_verification_algorithms.all;
        return verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &chain.roots,
            chain.intermediates,
            chain.now,
            algs,
        )
        .map_err(verify_error);
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(chain.roots.clone(), provider())
        .build()
        .map_err(Error::tls)?;
    verifier
        .verify_server_cert(chain.leaf, chain.intermediates, name, &[], chain.now)
        .map_err(verify_error)?;
    Ok(())
}

fn client_auth(chain: &Chain<'_>, name: Option<&ServerName<'static>>) -> Result<()> {
    let verifier = WebPkiClientVerifier::builder_with_provider(chain.roots.clone(), provider())
        .build()
        .map_err(Error::tls)?;
    verifier.verify_client_cert(chain.leaf, chain.intermediates, chain.now).map_err(verify_error)?;
    if let Some(name) = name {
        let parsed = ParsedCertificate::try_from(chain.leaf).map_err(verify_error)?;
        verify_server_name(&parsed, name).map_err(verify_error)?;
    }
    Ok(())
}

/// Maps a rustls verification error to [`Error::Verify`].
pub(crate) fn verify_error(err: rustls::Error) -> Error {
    let kind = match &err {
        rustls::Error::InvalidCertificate(cert_err) => certificate_kind(cert_err),
        _ => VerifyErrorKind::Other,
    };
    let detail = match kind {
        VerifyErrorKind::UnknownIssuer => {
            format!("the certificate is not signed by any of the given CAs ({err})")
        }
        VerifyErrorKind::NameConstraintViolation => {
            format!("a name in the certificate is outside the CA's permitted name constraints ({err})")
        }
        _ => err.to_string(),
    };
    Error::Verify { kind, detail }
}

fn certificate_kind(err: &CertificateError) -> VerifyErrorKind {
    use VerifyErrorKind as K;
    #[allow(deprecated)]
    match err {
        CertificateError::UnknownIssuer => K::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => K::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => K::NotYetValid,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            K::NotValidForName
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            K::InvalidPurpose
        }
        CertificateError::BadSignature => K::BadSignature,
        CertificateError::BadEncoding => K::BadEncoding,
        CertificateError::Other(other) if format!("{other:?}").contains("NameConstraintViolation") => {
            K::NameConstraintViolation
        }
        _ => K::Other,
    }
}
