//! `consul tls cert create -server|-client|-cli`: leaf certificates signed by the CA.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};

use crate::authority::Authority;
use crate::clock;
use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, is_rsa, load_or_generate, random_serial};
use crate::names::{validate_dns_name, validate_san_dns_name};

/// The kind of leaf certificate, as in Consul's `-server`, `-client` and `-cli` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A server agent: `server.<dc>.<domain>`, EKU ServerAuth + ClientAuth.
    Server,
    /// A client agent: `client.<dc>.<domain>`, EKU ClientAuth + ServerAuth.
    Client,
    /// A CLI user: `cli.<dc>.<domain>`, no IP SAN and no EKU extension.
    Cli,
}

impl Role {
    /// `"server"`, `"client"` or `"cli"`, as used in names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Cli => "cli",
        }
    }

    fn ext_key_usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        match self {
            Self::Server => vec![ServerAuth, ClientAuth],
            Self::Client => vec![ClientAuth, ServerAuth],
            Self::Cli => Vec::new(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parameters for [`issue`] and [`sign_csr`](crate::sign_csr). Build with
/// [`LeafParams::new`] and adjust the fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeafParams {
    /// Which kind of certificate.
    pub role: Role,
    /// Datacenter (default `"dc1"`).
    pub dc: String,
    /// Cluster domain (default `"consul"`; one trailing dot is ignored in SANs).
    pub domain: String,
    /// Node name, adding the SAN `<node>.server.<dc>.<domain>`. Only valid for
    /// [`Role::Server`] (Consul: "-node requires -server").
    pub node: Option<String>,
    /// Validity in days (default 365). The end is clamped to the CA's `not_after`.
    pub days: u32,
    /// Extra DNS SANs (Consul's `-additional-dnsname`); a leading `*.` is allowed.
    pub additional_dns: Vec<String>,
    /// Extra IP SANs (Consul's `-additional-ipaddress`).
    pub additional_ips: Vec<IpAddr>,
    /// Algorithm of the generated key (default ECDSA P-256). Ignored when `key_pem` is set
    /// and by [`sign_csr`](crate::sign_csr).
    pub algorithm: KeyAlgorithm,
    /// Use this existing private key (PKCS#8, SEC1 or PKCS#1 PEM) instead of generating one.
    pub key_pem: Option<String>,
    /// The current time; the certificate is valid from one minute before it.
    pub now: SystemTime,
}

impl LeafParams {
    /// Consul's defaults (`dc1`, `consul`, 365 days) for `role` at time `now`.
    pub fn new(role: Role, now: SystemTime) -> Self {
        Self {
            role,
            dc: "dc1".into(),
            domain: "consul".into(),
            node: None,
            days: 365,
            additional_dns: Vec::new(),
            additional_ips: Vec::new(),
            algorithm: KeyAlgorithm::default(),
            key_pem: None,
            now,
        }
    }

    fn domain(&self) -> &str {
        self.domain.strip_suffix('.').unwrap_or(&self.domain)
    }

    /// The subject common name and main SAN: `<role>.<dc>.<domain>`.
    pub fn common_name(&self) -> String {
        format!("{}.{}.{}", self.role.as_str(), self.dc, self.domain())
    }

    /// All DNS SANs: the common name, `<node>.server.<dc>.<domain>` (server with node),
    /// `localhost`, then `additional_dns`, without duplicates.
    pub fn dns_names(&self) -> Vec<String> {
        let mut names = vec![self.common_name()];
        if let (Role::Server, Some(node)) = (self.role, &self.node) {
            names.push(format!("{node}.{}", self.common_name()));
        }
        names.push("localhost".into());
        for extra in &self.additional_dns {
            let extra = extra.trim().to_owned();
            if !names.contains(&extra) {
                names.push(extra);
            }
        }
        names
    }

    /// All IP SANs: `127.0.0.1` for server and client, then `additional_ips`.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        let mut ips = match self.role {
            Role::Server | Role::Client => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            Role::Cli => Vec::new(),
        };
        for ip in &self.additional_ips {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_dns_name("datacenter", &self.dc)?;
        validate_dns_name("domain", &self.domain)?;
        if let Some(node) = &self.node {
            if self.role != Role::Server {
                return Err(Error::InvalidParams(
                    "a node name requires the server role (Consul: \"-node requires -server\")".into(),
                ));
            }
            validate_dns_name("node name", node)?;
        }
        self.additional_dns.iter().try_for_each(|name| validate_san_dns_name(name.trim()))
    }

    /// rcgen parameters for this leaf, validity clamped to the CA.
    pub(crate) fn cert_params(&self, ca: &Authority, rsa_key: bool) -> Result<CertificateParams> {
        let window = clock::validity_window(self.now, self.days)?;
        let (not_before, not_after) = ca.clamp(clock::unix_secs(self.now), window)?;
        let mut cp = CertificateParams::default();
        cp.distinguished_name = rcgen::DistinguishedName::new();
        cp.distinguished_name.push(DnType::CommonName, self.common_name());
        cp.subject_alt_names = self.subject_alt_names()?;
        cp.not_before = clock::offset(not_before)?;
        cp.not_after = clock::offset(not_after)?;
        cp.serial_number = Some(random_serial()?);
        cp.is_ca = IsCa::ExplicitNoCa;
        cp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if rsa_key {
            cp.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        cp.extended_key_usages = self.role.ext_key_usages();
        cp.use_authority_key_identifier_extension = true;
        Ok(cp)
    }

    fn subject_alt_names(&self) -> Result<Vec<SanType>> {
        let mut sans = Vec::new();
        for name in self.dns_names() {
            let ia5 = name
                .as_str()
                .try_into()
                .map_err(|e| Error::InvalidParams(format!("DNS name {name:?}: {e}")))?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(self.ip_addresses().into_iter().map(SanType::IpAddress));
        Ok(sans)
    }
}

/// A leaf certificate and its private key, both PEM. The key is PKCS#8 (`PRIVATE KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct LeafBundle {
    /// The leaf certificate, signed by the CA.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

impl fmt::Debug for LeafBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafBundle")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Issues a leaf certificate like `consul tls cert create`.
///
/// `ca_cert_pem` is the signing CA (the first certificate if there are several) and
/// `ca_key_pem` its key in PKCS#8, SEC1 or PKCS#1 PEM. The certificate gets a random 16-byte
/// serial, the SANs from [`LeafParams::dns_names`] / [`LeafParams::ip_addresses`], Consul's
/// extended key usages for the role, key usage DigitalSignature (plus KeyEncipherment for
/// RSA keys) and authority/subject key identifiers. Its end is clamped to the CA's
/// `not_after`; a CA that has expired at `now` is an error.
pub fn issue(ca_cert_pem: &str, ca_key_pem: &str, params: &LeafParams) -> Result<LeafBundle> {
    params.validate()?;
    let ca = Authority::load(ca_cert_pem, ca_key_pem)?;
    let key = load_or_generate(params.key_pem.as_deref(), params.algorithm)?;
    let cert_params = params.cert_params(&ca, is_rsa(&key))?;
    let cert_pem = ca.sign(&cert_params, &key)?;
    Ok(LeafBundle { cert_pem, key_pem: key.serialize_pem() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_per_role() {
        let now = SystemTime::UNIX_EPOCH;
        let mut server = LeafParams::new(Role::Server, now);
        server.node = Some("node1".into());
        assert_eq!(server.dns_names(), ["server.dc1.consul", "node1.server.dc1.consul", "localhost"]);
        assert_eq!(server.ip_addresses(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let mut cli = LeafParams::new(Role::Cli, now);
        cli.domain = "consul.".into();
        assert_eq!(cli.common_name(), "cli.dc1.consul");
        assert!(cli.ip_addresses().is_empty());
    }

    #[test]
    fn node_requires_server() {
        let mut p = LeafParams::new(Role::Client, SystemTime::UNIX_EPOCH);
        p.node = Some("n1".into());
        let err = p.validate().unwrap_err();
        assert!(err.to_string().contains("-node requires -server"), "{err}");
    }
}
