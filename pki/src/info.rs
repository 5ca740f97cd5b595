//! Certificate inspection: PEM/DER to [`CertInfo`].

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use crate::authority::parse_x509;
use crate::clock::{self, DAY_SECS};
use crate::error::{Error, Result};
use crate::pem::parse_certificates;

const OID_ED25519: &str = "1.3.101.112";

/// What a certificate is for, inferred from its basic constraints and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertRole {
    /// A CA certificate.
    Ca,
    /// Has a `server.<dc>.<domain>` name.
    Server,
    /// Has a `client.<dc>.<domain>` name.
    Client,
    /// Has a `cli.<dc>.<domain>` name.
    Cli,
    /// Anything else.
    Other,
}

/// The extended key usage extension's content (the TLS-relevant parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExtKeyUsage {
    /// id-kp-serverAuth.
    pub server_auth: bool,
    /// id-kp-clientAuth.
    pub client_auth: bool,
    /// anyExtendedKeyUsage.
    pub any: bool,
    /// Any other purpose (code signing, e-mail...).
    pub other: bool,
}

/// A decoded certificate, as shown by `sekisho pki show`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertInfo {
    /// The subject's first common name.
    pub subject_cn: Option<String>,
    /// The subject distinguished name, e.g. `CN=server.dc1.consul`.
    pub subject: String,
    /// The issuer distinguished name.
    pub issuer: String,
    /// Serial number as colon-separated lowercase hex.
    pub serial: String,
    /// Basic constraints say CA.
    pub is_ca: bool,
    /// DNS SANs, in certificate order.
    pub dns_sans: Vec<String>,
    /// IP SANs, in certificate order.
    pub ip_sans: Vec<IpAddr>,
    /// URI SANs (e.g. SPIFFE IDs).
    pub uri_sans: Vec<String>,
    /// The extended key usage extension, `None` when absent (any purpose allowed).
    pub ext_key_usage: Option<ExtKeyUsage>,
    /// Permitted DNS subtrees of a name-constrained CA.
    pub permitted_dns_domains: Vec<String>,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Public key algorithm, e.g. `ECDSA P-256`, `Ed25519`, `RSA 2048`.
    pub key_algorithm: String,
    /// Inferred role.
    pub role: CertRole,
    /// `(datacenter, domain)` inferred from a `<role>.<dc>.<domain>` name.
    pub dc_and_domain: Option<(String, String)>,
    /// SHA-256 of the DER, colon-separated lowercase hex.
    pub fingerprint_sha256: String,
    /// Issuer and subject are the same name.
    pub self_issued: bool,
}

impl CertInfo {
    /// Whole days until `not_after` (negative once expired).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        (self.not_after - clock::unix_secs(now)).div_euclid(DAY_SECS)
    }

    /// `now` is after `not_after`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        clock::unix_secs(now) > self.not_after
    }

    /// `now` is before `not_before`.
    pub fn is_not_yet_valid(&self, now: SystemTime) -> bool {
        clock::unix_secs(now) < self.not_before
    }

    /// The certificate is expired at `now + within` (also true when already expired).
    pub fn expires_within(&self, now: SystemTime, within: Duration) -> bool {
        self.is_expired(now + within)
    }

    /// `not_before` as `SystemTime`.
    pub fn not_before_time(&self) -> SystemTime {
        clock::system_time(self.not_before)
    }

    /// `not_after` as `SystemTime`.
    pub fn not_after_time(&self) -> SystemTime {
        clock::system_time(self.not_after)
    }

    /// The DNS SANs contain `server.<dc>.<domain>` (ASCII case-insensitive).
    pub fn has_server_name(&self, dc: &str, domain: &str) -> bool {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let want = format!("server.{dc}.{domain}");
        self.dns_sans.iter().any(|name| name.eq_ignore_ascii_case(&want))
    }

    /// The datacenters this certificate names a server of (`server.<dc>.<domain>` SANs).
    pub fn server_datacenters(&self, domain: &str) -> Vec<String> {
        let domain = domain.strip_suffix('.').unwrap_or(domain).to_ascii_lowercase();
        let suffix = format!(".{domain}");
        self.dns_sans
            .iter()
            .filter_map(|name| {
                let name = name.to_ascii_lowercase();
                let dc = name.strip_prefix("server.")?.strip_suffix(&suffix)?;
                (!dc.is_empty() && !dc.contains('.')).then(|| dc.to_owned())
            })
            .collect()
    }

    /// The EKU extension is absent or allows TLS server authentication.
    pub fn allows_server_auth(&self) -> bool {
        self.ext_key_usage.is_none_or(|e| e.server_auth || e.any)
    }

    /// The EKU extension is absent or allows TLS client authentication.
    pub fn allows_client_auth(&self) -> bool {
        self.ext_key_usage.is_none_or(|e| e.client_auth || e.any)
    }
}

/// Parses every certificate in `pem`, in order. Errors on empty input, garbage, truncated
/// blocks, non-certificate blocks and undecodable DER; never panics.
pub fn parse_pem_chain(pem: &str) -> Result<Vec<CertInfo>> {
    parse_certificates(pem)?.iter().map(|der| parse_certificate_der(der)).collect()
}

/// Parses one DER certificate.
pub fn parse_certificate_der(der: &[u8]) -> Result<CertInfo> {
    let cert = parse_x509(der)?;
    let (dns_sans, ip_sans, uri_sans) = sans(&cert)?;
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    let (role, dc_and_domain) = infer_role(cert.is_ca(), &dns_sans, cn.as_deref());
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        is_ca: cert.is_ca(),
        ext_key_usage: ext_key_usage(&cert)?,
        permitted_dns_domains: permitted_dns(&cert)?,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_algorithm: key_algorithm(&cert),
        fingerprint_sha256: hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        subject_cn: cn,
        dns_sans,
        ip_sans,
        uri_sans,
        role,
        dc_and_domain,
    })
}

fn bad(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Certificate(format!("malformed {what} extension: {err}"))
}

type Sans = (Vec<String>, Vec<IpAddr>, Vec<String>);

fn sans(cert: &X509Certificate<'_>) -> Result<Sans> {
    let mut out: Sans = Default::default();
    let Some(ext) = cert.subject_alternative_name().map_err(|e| bad("subjectAltName", e))? else {
        return Ok(out);
    };
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(dns) => out.0.push((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => out.1.extend(ip_from_bytes(bytes)),
            GeneralName::URI(uri) => out.2.push((*uri).to_owned()),
            _ => {}
        }
    }
    Ok(out)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn ext_key_usage(cert: &X509Certificate<'_>) -> Result<Option<ExtKeyUsage>> {
    let ext = cert.extended_key_usage().map_err(|e| bad("extendedKeyUsage", e))?;
    Ok(ext.map(|ext| {
        let e = ext.value;
        let other = e.code_signing || e.email_protection || e.time_stamping || e.ocsp_signing;
        ExtKeyUsage {
            server_auth: e.server_auth,
            client_auth: e.client_auth,
            any: e.any,
            other: other || !e.other.is_empty(),
        }
    }))
}

fn permitted_dns(cert: &X509Certificate<'_>) -> Result<Vec<String>> {
    let ext = cert.name_constraints().map_err(|e| bad("nameConstraints", e))?;
    let subtrees = ext.and_then(|ext| ext.value.permitted_subtrees.as_ref());
    Ok(subtrees
        .into_iter()
        .flatten()
        .filter_map(|t| match t.base {
            GeneralName::DNSName(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect())
}

fn key_algorithm(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::EC(point)) => format!("ECDSA P-{}", point.key_size()),
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        _ if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => "Ed25519".into(),
        _ => format!("unknown ({})", spki.algorithm.algorithm.to_id_string()),
    }
}

/// Finds `<prefix>.<dc>.<domain>` among the names, trying server, client, cli in turn.
fn infer_role(is_ca: bool, dns: &[String], cn: Option<&str>) -> (CertRole, Option<(String, String)>) {
    if is_ca {
        return (CertRole::Ca, None);
    }
    let names: Vec<&str> = dns.iter().map(String::as_str).chain(cn).collect();
    for (prefix, role) in
        [("server.", CertRole::Server), ("client.", CertRole::Client), ("cli.", CertRole::Cli)]
    {
        let found = names.iter().find_map(|name| {
            let (dc, domain) = name.strip_prefix(prefix)?.split_once('.')?;
            (!dc.is_empty() && !domain.is_empty()).then(|| (dc.to_owned(), domain.to_owned()))
        });
        if let Some(scope) = found {
            return (role, Some(scope));
        }
    }
    (CertRole::Other, None)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_inference() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (role, scope) = infer_role(false, &names(&["localhost", "server.dc2.example.com"]), None);
        assert_eq!((role, scope), (CertRole::Server, Some(("dc2".into(), "example.com".into()))));
        assert_eq!(infer_role(false, &names(&["cli.dc1.consul"]), None).0, CertRole::Cli);
        assert_eq!(infer_role(false, &[], Some("client.dc1.consul")).0, CertRole::Client);
        assert_eq!(infer_role(false, &names(&["server.x"]), None).0, CertRole::Other);
        assert_eq!(infer_role(true, &names(&["server.dc1.consul"]), None).0, CertRole::Ca);
    }

    #[test]
    fn hex_and_ips() {
        assert_eq!(hex(&[0x0a, 0xff]), "0a:ff");
        assert_eq!(ip_from_bytes(&[127, 0, 0, 1]), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn garbage_der_is_an_error() {
        assert!(matches!(parse_certificate_der(&[0x30, 0x03, 1, 2, 3]), Err(Error::Certificate(_))));
        assert!(matches!(parse_certificate_der(&[]), Err(Error::Certificate(_))));
    }
}
