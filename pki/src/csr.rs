//! Certificate signing requests, for auto-encrypt style issuance.

use std::fmt;
use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, SanType, SubjectPublicKeyInfo};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, generate, is_rsa};
use crate::leaf::LeafParams;
use crate::names::validate_san_dns_name;
use crate::pem::csr_der;

/// A CSR and the private key it was made with, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrBundle {
    /// The `CERTIFICATE REQUEST`.
    pub csr_pem: String,
    /// The requester's PKCS#8 private key. It never leaves the requester.
    pub key_pem: String,
}

impl fmt::Debug for CsrBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrBundle").field("csr_pem", &self.csr_pem).field("key_pem", &"[redacted]").finish()
    }
}

/// Generates a key and a CSR for it with the given subject common name and SANs (the
/// requesting side of auto-encrypt). The signer is free to ignore the requested names.
pub fn generate_csr(
    algorithm: KeyAlgorithm,
    common_name: &str,
    dns_sans: &[String],
    ip_sans: &[IpAddr],
) -> Result<CsrBundle> {
    let key = generate(algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    for name in dns_sans {
        validate_san_dns_name(name)?;
        let ia5 =
            name.as_str().try_into().map_err(|e| Error::InvalidParams(format!("DNS name {name:?}: {e}")))?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params.subject_alt_names.extend(ip_sans.iter().copied().map(SanType::IpAddress));
    let csr = params.serialize_request(&key).map_err(Error::generate)?;
    let csr_pem = csr.pem().map_err(Error::generate)?;
    Ok(CsrBundle { csr_pem, key_pem: key.serialize_pem() })
}

/// Signs a CSR (PEM `CERTIFICATE REQUEST` or raw DER) with the CA.
///
/// Only the CSR's public key is used, after checking the CSR's self-signature. Its subject,
/// requested SANs and extensions are **ignored**: the certificate gets exactly what
/// [`issue`](crate::issue) would give for `params` (for [`Role::Client`](crate::Role::Client):
/// `client.<dc>.<domain>`, `localhost`, `127.0.0.1` plus `params.additional_dns` /
/// `params.additional_ips`). `params.algorithm` and `params.key_pem` are not used.
/// Returns the certificate PEM.
pub fn sign_csr(ca_cert_pem: &str, ca_key_pem: &str, csr: &[u8], params: &LeafParams) -> Result<String> {
    params.validate()?;
    let ca = Authority::load(ca_cert_pem, ca_key_pem)?;
    let public_key = csr_public_key(&csr_der(csr)?)?;
    let cert_params = params.cert_params(&ca, is_rsa(&public_key))?;
    ca.sign(&cert_params, &public_key)
}

/// Decodes a DER CSR, checks its signature and returns its public key.
fn csr_public_key(der: &[u8]) -> Result<SubjectPublicKeyInfo> {
    let (rest, request) =
        X509CertificationRequest::from_der(der).map_err(|e| Error::Csr(format!("cannot decode DER: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::Csr(format!("{} trailing bytes after the request", rest.len())));
    }
    request.verify_signature().map_err(|e| Error::Csr(format!("signature check failed: {e}")))?;
    SubjectPublicKeyInfo::from_der(request.certification_request_info.subject_pki.raw)
        .map_err(|e| Error::Csr(format!("unsupported public key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_csr_verifies() {
        let bundle = generate_csr(KeyAlgorithm::Ed25519, "agent", &["a.example".into()], &[]).unwrap();
        let der = csr_der(bundle.csr_pem.as_bytes()).unwrap();
        csr_public_key(&der).unwrap();
    }

    #[test]
    fn tampered_csr_is_rejected() {
        let bundle = generate_csr(KeyAlgorithm::EcdsaP256, "agent", &[], &[]).unwrap();
        let mut der = csr_der(bundle.csr_pem.as_bytes()).unwrap();
        let idx = der.len() / 3;
        der[idx] ^= 0x01;
        assert!(matches!(csr_public_key(&der), Err(Error::Csr(_))));
        assert!(matches!(csr_public_key(b"garbage"), Err(Error::Csr(_))));
    }
}
