//! A hot-swappable certificate for both TLS sides.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::Result;
use crate::keys::parse_private_key;
use crate::pem::parse_certificates;
use crate::tls::material::{TlsMaterial, certified_key};

/// A certificate resolver whose certificate can be replaced at runtime (on `sekisho reload`
/// or when auto-encrypt renews). It implements both [`ResolvesServerCert`] and
/// [`ResolvesClientCert`], so one instance serves the listener and outgoing connections;
/// handshakes that start after [`ReloadableCert::replace`] see the new certificate at once.
///
/// The CA roots are part of the verifier, not of this resolver: to rotate roots, build a new
/// config.
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// A resolver serving `material`'s chain and key.
    pub fn new(material: &TlsMaterial) -> Result<Self> {
        Ok(Self { current: RwLock::new(material.certified_key()?) })
    }

    /// A resolver serving the chain in `cert_pem` with the key in `key_pem`.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        Ok(Self { current: RwLock::new(load_pem(cert_pem, key_pem)?) })
    }

    /// Replaces the certificate with `material`'s chain and key. The new pair is validated
    /// first (parseable, usable by ring, key matches the leaf); on error the old certificate
    /// stays in place.
    pub fn replace(&self, material: &TlsMaterial) -> Result<()> {
        self.store(material.certified_key()?);
        Ok(())
    }

    /// Like [`replace`](Self::replace), from PEM text.
    pub fn replace_pem(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        self.store(load_pem(cert_pem, key_pem)?);
        Ok(())
    }

    /// The certificate and key currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn store(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

fn load_pem(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>> {
    certified_key(parse_certificates(cert_pem)?, parse_private_key(key_pem)?)
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("chain_len", &self.current().cert.len())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadableCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
