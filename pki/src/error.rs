//! The crate's error type.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input held no PEM `CERTIFICATE` block (empty input, plain garbage, or only
    /// unrecognised blocks).
    #[error("no PEM CERTIFICATE block found in the input")]
    NoCertificate,
    /// The input held no PEM private key block.
    #[error("no PEM private key block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY) found in the input")]
    NoPrivateKey,
    /// The PEM text is malformed (truncated block, bad base64, bad header line...).
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// A PEM block of the wrong kind was found, e.g. a private key where certificates belong.
    #[error("unexpected PEM block {found} where {expected} was expected")]
    UnexpectedPemBlock {
        /// What the caller asked for.
        expected: &'static str,
        /// The label of the block that was found.
        found: String,
    },
    /// A certificate could not be decoded or is unusable for the requested operation.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// A private key could not be decoded or is not supported by the ring backend.
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    /// A certificate signing request could not be decoded or its signature is invalid.
    #[error("invalid certificate signing request: {0}")]
    Csr(String),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The caller's parameters are invalid (for example `-node` without `-server`).
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The operation is not available in this build (for example RSA key generation).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Certificate or key generation failed inside rcgen or ring.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// Certificate chain verification failed.
    #[error("certificate verification failed ({kind}): {detail}")]
    Verify {
        /// The broad reason, for programmatic checks.
        kind: VerifyErrorKind,
        /// A human-readable description from webpki/rustls.
        detail: String,
    },
    /// Building a rustls configuration failed.
    #[error("TLS configuration error: {0}")]
    Tls(String),
}

impl Error {
    /// The verification failure kind, if this is an [`Error::Verify`].
    pub fn verify_kind(&self) -> Option<VerifyErrorKind> {
        match self {
            Self::Verify { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn generate(err: rcgen::Error) -> Self {
        Self::Generate(err.to_string())
    }

    pub(crate) fn tls(err: impl fmt::Display) -> Self {
        Self::Tls(err.to_string())
    }
}

/// Why a certificate chain failed to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// The chain does not lead to any of the given CA roots.
    UnknownIssuer,
    /// A certificate in the chain has expired.
    Expired,
    /// A certificate in the chain is not valid yet.
    NotYetValid,
    /// The leaf is not valid for the requested name.
    NotValidForName,
    /// The leaf's extended key usage does not allow the requested purpose.
    InvalidPurpose,
    /// A name in the leaf is outside the CA's name constraints.
    NameConstraintViolation,
    /// A signature in the chain is invalid.
    BadSignature,
    /// A certificate is malformed.
    BadEncoding,
    /// Any other webpki failure; see the detail text.
    Other,
}

impl fmt::Display for VerifyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::UnknownIssuer => "unknown issuer",
            Self::Expired => "expired",
            Self::NotYetValid => "not yet valid",
            Self::NotValidForName => "not valid for name",
            Self::InvalidPurpose => "invalid purpose",
            Self::NameConstraintViolation => "name constraints violated",
            Self::BadSignature => "bad signature",
            Self::BadEncoding => "bad encoding",
            Self::Other => "other",
        };
        f.write_str(text)
    }
}
