//! Reports of refused peer certificates. A TLS failure on its own says little ("certificate
//! expired"); operators need to know *which* certificate was refused. The verifiers built by
//! this crate call a [`RejectHook`] with the peer's certificate details and the reason, and
//! the caller logs it (this crate does no I/O).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::info::parse_certificate_der;

/// Which side presented the refused certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerSide {
    /// A client, refused by a server.
    Client,
    /// A server, refused by a client.
    Server,
}

/// A refused peer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejection {
    /// Who presented it.
    pub side: PeerSide,
    /// Its subject (`CN=...`), or a note when it could not be parsed.
    pub subject: String,
    /// Its serial number in hex.
    pub serial: String,
    /// Its DNS SANs.
    pub dns_sans: Vec<String>,
    /// Its expiry, in seconds since the Unix epoch (0 when unknown).
    pub not_after: i64,
    /// rustls' reason.
    pub reason: String,
}

/// Called for every refused peer certificate.
#[derive(Clone)]
pub struct RejectHook(Arc<dyn Fn(&Rejection) + Send + Sync>);

impl RejectHook {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&Rejection) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn report(&self, side: PeerSide, cert: &CertificateDer<'_>, err: &rustls::Error) {
        let (subject, serial, dns_sans, not_after) = match parse_certificate_der(cert) {
            Ok(i) => (i.subject, i.serial, i.dns_sans, i.not_after),
            Err(e) => (format!("(unparseable certificate: {e})"), String::new(), Vec::new(), 0),
        };
        (self.0)(&Rejection { side, subject, serial, dns_sans, not_after, reason: err.to_string() });
    }
}

impl fmt::Debug for RejectHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectHook")
    }
}

impl PartialEq for RejectHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RejectHook {}

/// A client-certificate verifier that reports refusals.
#[derive(Debug)]
pub(crate) struct ReportingClientVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) hook: RejectHook,
}

impl ClientCertVerifier for ReportingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let out = self.inner.verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &out {
            self.hook.report(PeerSide::Client, end_entity, e);
        }
        out
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
}

/// A server-certificate verifier that reports refusals.
#[derive(Debug)]
pub(crate) struct ReportingServerVerifier {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
    pub(crate) hook: RejectHook,
}

impl ServerCertVerifier for ReportingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let out = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(e) = &out {
            self.hook.report(PeerSide::Server, end_entity, e);
        }
        out
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
