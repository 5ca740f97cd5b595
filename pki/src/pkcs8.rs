//! Wraps SEC1 (`EC PRIVATE KEY`) and PKCS#1 (`RSA PRIVATE KEY`) keys into PKCS#8.
//!
//! rcgen on the ring backend only loads PKCS#8, while Consul writes its CA and certificate
//! keys as SEC1. The wrapping is plain DER: `PrivateKeyInfo { 0, AlgorithmIdentifier, OCTET
//! STRING(inner key) }`; ring accepts the SEC1 structure unchanged inside it.

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;

/// OID 1.2.840.10045.2.1 (id-ecPublicKey), content bytes.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.3.132.0.34 (secp384r1 / P-384).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// OID 1.2.840.113549.1.1.1 (rsaEncryption).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER NULL, the RSA algorithm parameters.
const DER_NULL: &[u8] = &[0x05, 0x00];

/// Returns the key as PKCS#8, converting SEC1 and PKCS#1 encodings.
pub(crate) fn to_pkcs8(key: &PrivateKeyDer<'_>) -> Result<PrivatePkcs8KeyDer<'static>> {
    let der = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Sec1(k) => wrap_sec1(k.secret_sec1_der())?,
        PrivateKeyDer::Pkcs1(k) => wrap(&algorithm(OID_RSA, DER_NULL), k.secret_pkcs1_der()),
        _ => return Err(Error::PrivateKey("unsupported private key encoding".into())),
    };
    Ok(PrivatePkcs8KeyDer::from(der))
}

fn wrap_sec1(sec1: &[u8]) -> Result<Vec<u8>> {
    let curve = sec1_curve(sec1)
        .ok_or_else(|| Error::PrivateKey("malformed SEC1 EC private key or unsupported curve".into()))?;
    Ok(wrap(&algorithm(OID_EC_PUBLIC_KEY, &tlv(TAG_OID, curve)), sec1))
}

/// The curve OID of a SEC1 `ECPrivateKey`: from its `[0] parameters`, or else from the
/// private scalar's length.
fn sec1_curve(sec1: &[u8]) -> Option<&'static [u8]> {
    let (tag, body, _) = read_tlv(sec1)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, _version, rest) = read_tlv(body)?;
    if tag != TAG_INTEGER {
        return None;
    }
    let (tag, scalar, rest) = read_tlv(rest)?;
    if tag != TAG_OCTET_STRING {
        return None;
    }
    match read_tlv(rest) {
        Some((TAG_CONTEXT_0, params, _)) => match read_tlv(params)? {
            (TAG_OID, oid, _) if oid == OID_P256 => Some(OID_P256),
            (TAG_OID, oid, _) if oid == OID_P384 => Some(OID_P384),
            _ => None,
        },
        _ => match scalar.len() {
            32 => Some(OID_P256),
            48 => Some(OID_P384),
            _ => None,
        },
    }
}

fn algorithm(oid: &[u8], params: &[u8]) -> Vec<u8> {
    let mut body = tlv(TAG_OID, oid);
    body.extend_from_slice(params);
    tlv(TAG_SEQUENCE, &body)
}

fn wrap(algorithm: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut body = tlv(TAG_INTEGER, &[0]);
    body.extend_from_slice(algorithm);
    body.extend_from_slice(&tlv(TAG_OCTET_STRING, inner));
    tlv(TAG_SEQUENCE, &body)
}

/// Encodes one DER TLV (definite length).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one DER TLV: `(tag, content, rest)`.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_round_trip_long_form() {
        let content = vec![7u8; 300];
        let enc = tlv(TAG_OCTET_STRING, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, body, rest) = read_tlv(&enc).unwrap();
        assert_eq!((tag, body.len(), rest.len()), (TAG_OCTET_STRING, 300, 0));
    }

    #[test]
    fn truncated_der_is_rejected() {
        assert!(read_tlv(&[0x30, 0x05, 0x00]).is_none());
        assert!(sec1_curve(&[0x30, 0x00]).is_none());
        let err = to_pkcs8(&PrivateKeyDer::Sec1(vec![0x30, 0x00].into())).unwrap_err();
        assert!(matches!(err, Error::PrivateKey(_)));
    }

    #[test]
    fn sec1_curve_from_parameters_and_length() {
        let scalar = tlv(TAG_OCTET_STRING, &[1u8; 32]);
        let mut body = tlv(TAG_INTEGER, &[1]);
        body.extend_from_slice(&scalar);
        assert_eq!(sec1_curve(&tlv(TAG_SEQUENCE, &body)), Some(OID_P256));
        body.extend_from_slice(&tlv(TAG_CONTEXT_0, &tlv(TAG_OID, OID_P384)));
        assert_eq!(sec1_curve(&tlv(TAG_SEQUENCE, &body)), Some(OID_P384));
    }
}
