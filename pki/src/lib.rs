//! `sekisho-pki`: certificate authority creation, certificate issuance and rustls configuration
//! builders for Sekisho's `verify_*` modes. This crate is filled in by the PKI/TLS issue; it
//! performs no I/O (callers write the PEM it returns).
#![warn(missing_docs)]
