//! Parsed TLS material: CA roots, certificate chain and private key.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::error::{Error, Result};
use crate::keys::parse_private_key;
use crate::pem::parse_certificates;
use crate::tls::provider;

/// Parsed CA roots plus this node's certificate chain and key, ready for rustls.
pub struct TlsMaterial {
    /// Trusted CA certificates (may be empty when peers are not verified).
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// The node's certificate first, then any intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The node's private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// Parses PEM text: `ca_pem` may hold several roots and may be empty (or whitespace) for
    /// no roots; `cert_pem` the leaf then intermediates; `key_pem` a PKCS#8, SEC1 or PKCS#1
    /// key. Fails if the key does not belong to the leaf certificate.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let ca_roots = if ca_pem.trim().is_empty() { Vec::new() } else { parse_certificates(ca_pem)? };
        let material =
            Self { ca_roots, cert_chain: parse_certificates(cert_pem)?, key: parse_private_key(key_pem)? };
        material.certified_key()?;
        Ok(material)
    }

    /// Builds the rustls signing identity, checking that the key matches the leaf.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>> {
        certified_key(self.cert_chain.clone(), self.key.clone_key())
    }
}

/// Loads `key` with the ring provider and checks it against the first certificate.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>> {
    if chain.is_empty() {
        return Err(Error::NoCertificate);
    }
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::PrivateKey(format!("the ring provider cannot use the key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(Error::KeyMismatch),
        Err(e) => Err(Error::Certificate(e.to_string())),
    }
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        Self {
            ca_roots: self.ca_roots.clone(),
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_roots", &self.ca_roots.len())
            .field("cert_chain", &self.cert_chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}
