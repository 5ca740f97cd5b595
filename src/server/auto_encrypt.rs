//! auto_encrypt on servers: signing client agents' certificate requests with the replicated
//! auto_encrypt CA (`state/auto_encrypt.rs`). The request's own names are ignored: the
//! certificate is a client certificate of this datacenter (`client.<dc>.<domain>`,
//! `localhost`, 127.0.0.1) plus the `dns_san`/`ip_san` the agent was configured with.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Error, Server};
use crate::state::auto_encrypt::auto_encrypt_ca;

/// The RPC path of [`SignRequest`].
pub(crate) const SIGN_PATH: &str = super::rpc::AUTO_ENCRYPT_SIGN;

/// How long an auto_encrypt certificate is valid (Consul's leaf TTL, 72h); agents renew it
/// at half-life.
pub const CERT_TTL: Duration = Duration::from_secs(72 * 3600);

/// A client agent's certificate request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignRequest {
    /// The agent's node name.
    pub node: String,
    /// PEM certificate signing request (only its public key is used).
    pub csr_pem: String,
    /// `auto_encrypt.dns_san`.
    pub dns_san: Vec<String>,
    /// `auto_encrypt.ip_san`.
    pub ip_san: Vec<IpAddr>,
}

/// The signed certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignResponse {
    /// The client certificate (PEM).
    pub cert_pem: String,
    /// The auto_encrypt CA that signed it (PEM).
    pub ca_pem: String,
}

impl Server {
    /// Signs `req` with the auto_encrypt CA (`auto_encrypt.allow_tls` servers only).
    pub fn auto_encrypt_sign(&self, req: &SignRequest) -> Result<SignResponse, Error> {
        let cfg = self.config();
        if !cfg.auto_encrypt_allow_tls {
            return Err(Error::BadRequest("auto_encrypt.allow_tls is not enabled on this server".into()));
        }
        let Some(ca) = self.state().read(|s| auto_encrypt_ca(s).cloned()) else {
            return Err(Error::Internal("the auto_encrypt CA is not ready yet; retry".into()));
        };
        let mut p = sekisho_pki::LeafParams::new(sekisho_pki::Role::Client, SystemTime::now());
        p.dc.clone_from(&cfg.datacenter);
        p.domain.clone_from(&cfg.domain);
        p.days = 3;
        p.additional_dns.clone_from(&req.dns_san);
        p.additional_ips.clone_from(&req.ip_san);
        let cert_pem =
            sekisho_pki::sign_csr(&ca.cert_pem, &ca.key_pem, req.csr_pem.as_bytes(), &p).map_err(|e| {
                Error::BadRequest(format!("cannot sign the certificate request of {}: {e}", req.node))
            })?;
        tracing::info!(node = %req.node, "auto_encrypt: signed a client certificate");
        Ok(SignResponse { cert_pem, ca_pem: ca.cert_pem })
    }
}
