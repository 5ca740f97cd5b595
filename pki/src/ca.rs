//! `consul tls ca create`: a self-signed CA.

use std::fmt;
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, GeneralSubtree, IsCa, KeyUsagePurpose, NameConstraints,
};

use crate::clock;
use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, load_or_generate, random_serial, random_u64};
use crate::names::validate_dns_name;

/// Parameters for [`create_ca`]. Build with [`CaParams::new`] and adjust the fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaParams {
    /// Subject common name. `None` means Consul's default, `"Consul Agent CA <random u64>"`.
    pub common_name: Option<String>,
    /// Validity in days from `now` (default 1825, five years). Must be at least 1.
    pub days: u32,
    /// The cluster domain (default `"consul"`), used for name constraints.
    pub domain: String,
    /// When true, the CA gets a critical name-constraints extension whose permitted DNS
    /// subtrees are `localhost`, `domain` and `additional_name_constraints`. Leaves with any
    /// other DNS name then fail verification. IP addresses stay unconstrained, as in Consul.
    pub name_constraint: bool,
    /// Extra permitted DNS subtrees (Consul's `-additional-name-constraint`).
    pub additional_name_constraints: Vec<String>,
    /// Algorithm of the generated key (default ECDSA P-256). Ignored when `key_pem` is set.
    pub algorithm: KeyAlgorithm,
    /// Use this existing private key (PKCS#8, SEC1 or PKCS#1 PEM) instead of generating one;
    /// this is the way to get an RSA CA.
    pub key_pem: Option<String>,
    /// The current time; the CA is valid from one minute before it.
    pub now: SystemTime,
}

impl CaParams {
    /// Consul's defaults at time `now`.
    pub fn new(now: SystemTime) -> Self {
        Self {
            common_name: None,
            days: 1825,
            domain: "consul".into(),
            name_constraint: false,
            additional_name_constraints: Vec::new(),
            algorithm: KeyAlgorithm::default(),
            key_pem: None,
            now,
        }
    }

    /// The permitted DNS subtrees when `name_constraint` is set (deduplicated, in order).
    pub fn permitted_dns_domains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = ["localhost", self.domain.as_str()]
            .into_iter()
            .chain(self.additional_name_constraints.iter().map(String::as_str));
        for name in all {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

/// A CA certificate and its private key, both PEM. The key is PKCS#8 (`PRIVATE KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct CaBundle {
    /// The self-signed CA certificate.
    pub cert_pem: String,
    /// The CA private key. Keep it secret.
    pub key_pem: String,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle").field("cert_pem", &self.cert_pem).field("key_pem", &"[redacted]").finish()
    }
}

/// Creates a self-signed CA like `consul tls ca create`: `IsCa` without a path length
/// limit, key usages KeyCertSign + CrlSign + DigitalSignature, a random 16-byte serial and a
/// subject key identifier.
pub fn create_ca(params: &CaParams) -> Result<CaBundle> {
    validate_dns_name("domain", &params.domain)?;
    let key = load_or_generate(params.key_pem.as_deref(), params.algorithm)?;
    let cert_params = ca_cert_params(params)?;
    let cert = cert_params.self_signed(&key).map_err(Error::generate)?;
    Ok(CaBundle { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

fn ca_cert_params(params: &CaParams) -> Result<CertificateParams> {
    let (not_before, not_after) = clock::validity_window(params.now, params.days)?;
    let common_name = match &params.common_name {
        Some(cn) if cn.trim().is_empty() => {
            return Err(Error::InvalidParams("common name must not be empty".into()));
        }
        Some(cn) => cn.clone(),
        None => format!("Consul Agent CA {}", random_u64()?),
    };
    let mut cp = CertificateParams::default();
    cp.distinguished_name = rcgen::DistinguishedName::new();
    cp.distinguished_name.push(DnType::CommonName, common_name);
    cp.not_before = clock::offset(not_before)?;
    cp.not_after = clock::offset(not_after)?;
    cp.serial_number = Some(random_serial()?);
    cp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    cp.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    if params.name_constraint {
        cp.name_constraints = Some(name_constraints(params)?);
    }
    Ok(cp)
}

fn name_constraints(params: &CaParams) -> Result<NameConstraints> {
    let domains = params.permitted_dns_domains();
    for name in &domains {
        validate_dns_name("name constraint", name)?;
    }
    Ok(NameConstraints {
        permitted_subtrees: domains.into_iter().map(GeneralSubtree::DnsName).collect(),
        excluded_subtrees: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permitted_domains_are_deduplicated() {
        let mut p = CaParams::new(SystemTime::UNIX_EPOCH);
        p.additional_name_constraints = vec!["Consul".into(), "example.com.".into()];
        assert_eq!(p.permitted_dns_domains(), ["localhost", "consul", "example.com"]);
    }

    #[test]
    fn invalid_params_are_rejected() {
        let mut p = CaParams::new(SystemTime::now());
        p.days = 0;
        assert!(matches!(create_ca(&p), Err(Error::InvalidParams(_))));
        let mut p = CaParams::new(SystemTime::now());
        p.common_name = Some("  ".into());
        assert!(matches!(create_ca(&p), Err(Error::InvalidParams(_))));
        let mut p = CaParams::new(SystemTime::now());
        p.domain = "bad domain".into();
        assert!(matches!(create_ca(&p), Err(Error::InvalidParams(_))));
    }
}
