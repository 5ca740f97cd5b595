//! A loaded CA (certificate + key) that signs leaves.

use rcgen::{CertificateParams, Issuer, KeyPair, PublicKeyData};
use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;

use crate::clock;
use crate::error::{Error, Result};
use crate::keys::{load_key_pair, public_key_bits};
use crate::pem::parse_certificates;

/// A CA ready to sign: rcgen issuer plus the CA's validity end.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    not_after: i64,
}

/// Parses a DER certificate with x509-parser, rejecting trailing bytes.
pub(crate) fn parse_x509<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Certificate(format!("cannot decode X.509 DER: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::Certificate(format!("{} trailing bytes after the certificate", rest.len())));
    }
    Ok(cert)
}

impl Authority {
    /// Loads the CA from PEM. With several certificates in `ca_cert_pem`, the first one is the
    /// signing CA. Checks that it is a CA and that the key belongs to it.
    pub(crate) fn load(ca_cert_pem: &str, ca_key_pem: &str) -> Result<Self> {
        let der: CertificateDer<'static> = parse_certificates(ca_cert_pem)?.swap_remove(0);
        let key = load_key_pair(ca_key_pem)?;
        let not_after = {
            let cert = parse_x509(&der)?;
            if !cert.is_ca() {
                return Err(Error::Certificate("the signing certificate is not a CA".into()));
            }
            if cert.public_key().subject_public_key.data.as_ref() != public_key_bits(&key) {
                return Err(Error::KeyMismatch);
            }
            cert.validity().not_after.timestamp()
        };
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| Error::Certificate(format!("cannot use the CA certificate: {e}")))?;
        Ok(Self { issuer, not_after })
    }

    /// Clamps a leaf validity window to the CA's `not_after`. Errors when the CA has
    /// already expired at `now`.
    pub(crate) fn clamp(&self, now: i64, window: (i64, i64)) -> Result<(i64, i64)> {
        if self.not_after <= now {
            return Err(Error::InvalidParams(format!(
                "the CA certificate expired at {}",
                clock::format_utc(self.not_after)
            )));
        }
        Ok((window.0, window.1.min(self.not_after)))
    }

    /// Signs `params` for `public_key` and returns the certificate PEM.
    pub(crate) fn sign(&self, params: &CertificateParams, public_key: &impl PublicKeyData) -> Result<String> {
        let cert = params.signed_by(public_key, &self.issuer).map_err(Error::generate)?;
        Ok(cert.pem())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::ca::{CaParams, create_ca};

    #[test]
    fn clamps_to_ca_end_and_rejects_expired_ca() {
        let mut params = CaParams::new(SystemTime::now());
        params.days = 2;
        let ca = create_ca(&params).unwrap();
        let authority = Authority::load(&ca.cert_pem, &ca.key_pem).unwrap();
        let now = clock::unix_secs(SystemTime::now());
        let (nb, na) = authority.clamp(now, (now - 60, now + 365 * clock::DAY_SECS)).unwrap();
        assert_eq!((nb, na), (now - 60, authority.not_after));
        assert_eq!(authority.clamp(now, (now, now + 10)).unwrap(), (now, now + 10));
        assert!(matches!(authority.clamp(authority.not_after, (0, 1)), Err(Error::InvalidParams(_))));
    }

    #[test]
    fn parse_x509_rejects_trailing_bytes() {
        let ca = create_ca(&CaParams::new(SystemTime::now())).unwrap();
        let mut der = parse_certificates(&ca.cert_pem).unwrap().remove(0).to_vec();
        parse_x509(&der).unwrap();
        der.push(0);
        assert!(matches!(parse_x509(&der), Err(Error::Certificate(m)) if m.contains("trailing")));
    }
}
