//! Key generation and loading, random serial numbers.

use rcgen::{KeyPair, PublicKeyData, SerialNumber};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::PrivateKeyDer;

use crate::error::{Error, Result};
use crate::pem::first_private_key;
use crate::pkcs8::to_pkcs8;

/// Length of generated serial numbers in bytes (RFC 5280 allows up to 20).
const SERIAL_LEN: usize = 16;

/// Key algorithm for newly generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (Consul's choice and the default).
    #[default]
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures. **Generation is not available** with the
    /// ring backend and returns [`Error::Unsupported`]; pass an existing RSA key as PEM
    /// instead (`key_pem` in [`CaParams`](crate::CaParams) / [`LeafParams`](crate::LeafParams)).
    Rsa2048,
}

/// Generates a new key pair.
pub(crate) fn generate(alg: KeyAlgorithm) -> Result<KeyPair> {
    let sig_alg = match alg {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        KeyAlgorithm::Rsa2048 => {
            return Err(Error::Unsupported(
                "RSA key generation needs the aws-lc-rs backend, which this build does not use; \
                 generate an RSA-2048 key elsewhere (e.g. `openssl genpkey -algorithm RSA \
                 -pkeyopt rsa_keygen_bits:2048`) and pass it in as PEM"
                    .into(),
            ));
        }
    };
    KeyPair::generate_for(sig_alg).map_err(Error::generate)
}

/// Uses the key in `key_pem` when given, else generates one for `alg`.
pub(crate) fn load_or_generate(key_pem: Option<&str>, alg: KeyAlgorithm) -> Result<KeyPair> {
    match key_pem {
        Some(pem) => load_key_pair(pem),
        None => generate(alg),
    }
}

/// Loads a PKCS#8, SEC1 or PKCS#1 PEM key as an rcgen signing key.
pub(crate) fn load_key_pair(pem: &str) -> Result<KeyPair> {
    let pkcs8 = to_pkcs8(&first_private_key(pem)?)?;
    KeyPair::try_from(&pkcs8).map_err(|e| Error::PrivateKey(format!("unsupported or malformed key: {e}")))
}

/// True for RSA keys (which also get the KeyEncipherment key usage).
pub(crate) fn is_rsa(key: &impl PublicKeyData) -> bool {
    let alg = key.algorithm();
    [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_RSA_SHA384, &rcgen::PKCS_RSA_SHA512].contains(&alg)
}

/// The raw subject public key bits of `key`, for comparing against a certificate.
pub(crate) fn public_key_bits(key: &KeyPair) -> &[u8] {
    key.der_bytes()
}

/// Parses the first private key in `pem` (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or
/// PKCS#1 `RSA PRIVATE KEY`) for use with rustls. Certificate blocks in the same text are
/// skipped. Errors with [`Error::NoPrivateKey`] when there is none and [`Error::PrivateKey`]
/// when the ring provider cannot use it.
pub fn parse_private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    let key = first_private_key(pem)?;
    rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| Error::PrivateKey(e.to_string()))?;
    Ok(key)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Generate("system random number generator failed".into()))?;
    Ok(bytes)
}

/// A random positive 16-byte serial number. The top bit is cleared (positive INTEGER) and
/// the next one set, so the encoding always has the full 16 bytes.
pub(crate) fn random_serial() -> Result<SerialNumber> {
    let mut bytes = random_bytes::<SERIAL_LEN>()?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A random `u64`, for the default CA common name.
pub(crate) fn random_u64() -> Result<u64> {
    Ok(u64::from_be_bytes(random_bytes::<8>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_generation_is_unsupported() {
        let err = generate(KeyAlgorithm::Rsa2048).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn generated_keys_reload() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let key = generate(alg).unwrap();
            let again = load_key_pair(&key.serialize_pem()).unwrap();
            assert_eq!(public_key_bits(&key), public_key_bits(&again));
            assert!(!is_rsa(&key));
            parse_private_key(&key.serialize_pem()).unwrap();
        }
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_eq!(a.len(), SERIAL_LEN);
        assert_eq!(a[0] & 0xc0, 0x40);
        assert_ne!(a, b);
    }
}
