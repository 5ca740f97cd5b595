//! Strict PEM decoding on top of `rustls::pki_types::pem`.
//!
//! pki-types silently skips blocks it does not know; for certificate inputs we want a clear
//! error instead, so the `-----BEGIN <label>-----` lines are checked first.

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

const CERTIFICATE: &str = "CERTIFICATE";

/// Labels of all `-----BEGIN <label>-----` lines in `text`.
fn begin_labels(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        line.trim().strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----"))
    })
}

fn pem_error(err: pem::Error) -> Error {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    Error::Pem(match err {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("missing \"-----END {}-----\" line (truncated input?)", text(&end_marker))
        }
        pem::Error::IllegalSectionStart { line } => format!("malformed BEGIN line {:?}", text(&line)),
        other => other.to_string(),
    })
}

/// Decodes every `CERTIFICATE` block of `pem`, in order.
///
/// Errors: [`Error::NoCertificate`] for empty or non-PEM input, [`Error::UnexpectedPemBlock`]
/// when another kind of block (private key, CSR, ...) is present, [`Error::Pem`] for a
/// truncated or otherwise malformed block. The DER inside is not parsed here; see
/// [`parse_pem_chain`](crate::parse_pem_chain) for that.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    if let Some(found) = begin_labels(pem).find(|label| *label != CERTIFICATE) {
        return Err(Error::UnexpectedPemBlock { expected: CERTIFICATE, found: found.to_owned() });
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(Error::NoCertificate);
    }
    Ok(certs)
}

/// Decodes the first private key block (PKCS#8, SEC1 or PKCS#1). Other blocks, such as
/// certificates in a combined file, are skipped.
pub(crate) fn first_private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    if begin_labels(pem).any(|label| label == "ENCRYPTED PRIVATE KEY") {
        return Err(Error::PrivateKey("encrypted private keys are not supported".into()));
    }
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(Error::NoPrivateKey),
        Err(err) => Err(pem_error(err)),
    }
}

/// Accepts a `CERTIFICATE REQUEST` (or legacy `NEW CERTIFICATE REQUEST`) PEM block or raw
/// DER bytes and returns the DER.
pub(crate) fn csr_der(input: &[u8]) -> Result<Vec<u8>> {
    let text = match std::str::from_utf8(input) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => text,
        _ if input.is_empty() => return Err(Error::Csr("empty input".into())),
        _ => return Ok(input.to_vec()),
    };
    let normalized = text.replace("NEW CERTIFICATE REQUEST", "CERTIFICATE REQUEST");
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(normalized.as_bytes()) {
        let (kind, der) = section.map_err(pem_error)?;
        if kind == SectionKind::Csr {
            return Ok(der);
        }
    }
    Err(Error::Csr("no PEM CERTIFICATE REQUEST block found in the input".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_have_no_certificate() {
        assert!(matches!(parse_certificates(""), Err(Error::NoCertificate)));
        assert!(matches!(parse_certificates("hello world\n"), Err(Error::NoCertificate)));
    }

    #[test]
    fn truncated_block_is_a_pem_error() {
        let err = parse_certificates("-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert!(matches!(err, Error::Pem(_)), "{err}");
    }

    #[test]
    fn key_block_in_certificate_input_is_rejected() {
        let text = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = parse_certificates(text).unwrap_err();
        assert!(matches!(err, Error::UnexpectedPemBlock { .. }), "{err}");
    }

    #[test]
    fn missing_key_is_reported() {
        assert!(matches!(first_private_key(""), Err(Error::NoPrivateKey)));
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(first_private_key(enc), Err(Error::PrivateKey(_))));
    }

    #[test]
    fn csr_der_accepts_raw_der_and_rejects_empty() {
        assert_eq!(csr_der(&[0x30, 0x00]).unwrap(), vec![0x30, 0x00]);
        assert!(csr_der(b"").is_err());
        assert!(csr_der(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
