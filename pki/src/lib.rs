//! `sekisho-pki`: Sekisho's built-in certificate authority tooling, certificate inspection and
//! rustls configuration builders.
//!
//! The crate mirrors Consul's `consul tls ca create` / `consul tls cert create` behaviour and
//! gives the agent what it needs for RPC mTLS and HTTPS. It performs **no I/O**: callers pass
//! PEM strings (or DER bytes) and the current time in, and get PEM strings, plain structs and
//! `Arc<rustls::ServerConfig>` / `Arc<rustls::ClientConfig>` out. Writing files, picking file
//! names on disk and watching them for reloads is the caller's job.
//!
//! # Overview
//!
//! * **CA creation**: [`create_ca`] with [`CaParams`] gives a [`CaBundle`] (certificate and
//!   PKCS#8 key PEM). [`ca_file_names`] gives Consul's file names (`consul-agent-ca.pem`, ...).
//! * **Leaf issuance**: [`issue`] with [`LeafParams`] for the [`Role`]s `server`, `client` and
//!   `cli`, using exactly Consul's SANs and extended key usages. [`file_names`] and
//!   [`next_free_index`] reproduce Consul's `dc1-server-consul-0.pem` naming without
//!   overwriting existing files. [`SERVER_CERT_WARNING`] is the warning Consul prints.
//! * **CSRs** (auto-encrypt): [`generate_csr`] on the requesting side, [`sign_csr`] on the CA
//!   side. The signer ignores the names requested in the CSR and uses its own.
//! * **Inspection**: [`parse_pem_chain`] turns PEM into [`CertInfo`]s; [`explain`] renders
//!   them for `sekisho pki show`; [`parse_private_key`] reads PKCS#8, SEC1 or PKCS#1 keys.
//! * **Verification**: [`verify_chain`] checks a leaf against CA roots at a given time, for a
//!   [`Purpose`] and optionally a name, with webpki; failures come back as
//!   [`Error::Verify`] with a [`VerifyErrorKind`].
//! * **rustls**: [`TlsMaterial`] holds parsed roots, chain and key; [`server_config`] and
//!   [`client_config`] (and their `_with_resolver` variants) build configs on the ring
//!   provider explicitly, so nothing depends on a process-wide default provider.
//!   [`ReloadableCert`] is a hot-swappable certificate resolver for both sides.
//!   [`ServerNameCheck::ChainOnly`] implements Consul's `verify_server_hostname = false`.
//!   [`peer_is_server`] authorizes server-only RPC from the peer's certificate.
//!
//! # Key algorithms
//!
//! ECDSA P-256 (the default, like Consul) and Ed25519 keys are generated. The ring backend
//! cannot generate RSA keys, so [`KeyAlgorithm::Rsa2048`] yields [`Error::Unsupported`];
//! an existing RSA key (or any other supported key) can be passed in PEM through
//! [`CaParams::key_pem`] / [`LeafParams::key_pem`]. PKCS#8, SEC1 (`EC PRIVATE KEY`, as written
//! by Consul) and PKCS#1 (`RSA PRIVATE KEY`) encodings are accepted everywhere a key is read.
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use sekisho_pki::{create_ca, issue, verify_chain, CaParams, LeafParams, Purpose, Role};
//!
//! let now = SystemTime::now();
//! let ca = create_ca(&CaParams::new(now))?;
//! let server = issue(&ca.cert_pem, &ca.key_pem, &LeafParams::new(Role::Server, now))?;
//! verify_chain(&server.cert_pem, &ca.cert_pem, now, Some(Purpose::ServerAuth), Some("server.dc1.consul"))?;
//! # Ok::<(), sekisho_pki::Error>(())
//! ```
#![warn(missing_docs)]

mod authority;
mod ca;
mod clock;
mod csr;
mod error;
mod explain;
mod info;
mod keys;
mod leaf;
mod names;
mod pem;
mod pkcs8;
mod tls;
mod verify;

pub use ca::{CaBundle, CaParams, create_ca};
pub use csr::{CsrBundle, generate_csr, sign_csr};
pub use error::{Error, Result, VerifyErrorKind};
pub use explain::{EXPIRY_WARNING_DAYS, explain};
pub use info::{CertInfo, CertRole, ExtKeyUsage, parse_certificate_der, parse_pem_chain};
pub use keys::{KeyAlgorithm, parse_private_key};
pub use leaf::{LeafBundle, LeafParams, Role, issue};
pub use names::{MAX_FILE_INDEX, SERVER_CERT_WARNING, ca_file_names, file_names, next_free_index};
pub use pem::parse_certificates;
pub use tls::{
    ClientAuth, PeerSide, RejectHook, Rejection, ReloadableCert, ServerNameCheck, TlsMaterial, TlsOptions,
    TlsVersion, client_config, client_config_with_resolver, peer_is_server, peer_server_datacenters,
    server_config, server_config_with_resolver,
};
pub use verify::{Purpose, verify_chain};

/// Re-export of the rustls version this crate builds configurations for.
pub use rustls;
