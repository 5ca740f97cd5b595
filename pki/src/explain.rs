//! Human-readable rendering of a [`CertInfo`] for `sekisho pki show`.

use std::time::SystemTime;

use crate::clock::format_utc;
use crate::info::{CertInfo, CertRole, ExtKeyUsage};

/// Certificates expiring within this many days get a warning from [`explain`].
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Describes `info` as display lines: subject, role, issuer, serial, SANs, key usage,
/// validity and days left, fingerprint, then `WARNING: ...` lines for an expired,
/// not-yet-valid or soon (within [`EXPIRY_WARNING_DAYS`]) expiring certificate.
///
/// With `expect = Some((dc, domain))`, a server certificate (or one of unknown role) that
/// lacks the SAN `server.<dc>.<domain>` is flagged, since `verify_server_hostname` would
/// reject it; so is a server certificate whose extended key usage forbids server auth.
pub fn explain(info: &CertInfo, now: SystemTime, expect: Option<(&str, &str)>) -> Vec<String> {
    let mut lines = vec![
        format!("Subject:      {}", info.subject),
        format!("Role:         {}", role_text(info)),
        format!("Issuer:       {}{}", info.issuer, if info.self_issued { " (self-issued)" } else { "" }),
        format!("Serial:       {}", info.serial),
        format!("Key:          {}", info.key_algorithm),
    ];
    lines.extend(names(info));
    lines.push(format!("Usage (EKU):  {}", eku_text(info.ext_key_usage)));
    lines.push(format!("Valid from:   {}", format_utc(info.not_before)));
    lines.push(format!("Valid until:  {}", format_utc(info.not_after)));
    lines.push(format!("Days left:    {}", info.days_left(now)));
    lines.push(format!("SHA-256:      {}", info.fingerprint_sha256));
    lines.extend(validity_warnings(info, now));
    lines.extend(expect.and_then(|(dc, domain)| name_warning(info, dc, domain)));
    lines
}

fn role_text(info: &CertInfo) -> String {
    let role = match info.role {
        CertRole::Ca => "CA",
        CertRole::Server => "server",
        CertRole::Client => "client",
        CertRole::Cli => "cli",
        _ => "other",
    };
    match &info.dc_and_domain {
        Some((dc, domain)) => format!("{role} (datacenter {dc}, domain {domain})"),
        None => role.to_owned(),
    }
}

fn names(info: &CertInfo) -> Vec<String> {
    let join = |v: Vec<String>| if v.is_empty() { "(none)".to_owned() } else { v.join(", ") };
    let mut lines = vec![
        format!("DNS names:    {}", join(info.dns_sans.clone())),
        format!("IP addresses: {}", join(info.ip_sans.iter().map(ToString::to_string).collect())),
    ];
    if !info.uri_sans.is_empty() {
        lines.push(format!("URIs:         {}", info.uri_sans.join(", ")));
    }
    if !info.permitted_dns_domains.is_empty() {
        lines.push(format!("Constrained:  DNS names under {}", info.permitted_dns_domains.join(", ")));
    }
    lines
}

fn eku_text(eku: Option<ExtKeyUsage>) -> String {
    let Some(eku) = eku else {
        return "any (no extended key usage extension)".into();
    };
    let parts: Vec<&str> = [
        (eku.server_auth, "server auth"),
        (eku.client_auth, "client auth"),
        (eku.any, "any"),
        (eku.other, "other purposes"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

fn validity_warnings(info: &CertInfo, now: SystemTime) -> Option<String> {
    let days = info.days_left(now);
    if info.is_expired(now) {
        Some(format!("WARNING: the certificate expired on {}", format_utc(info.not_after)))
    } else if info.is_not_yet_valid(now) {
        Some(format!("WARNING: the certificate is not valid before {}", format_utc(info.not_before)))
    } else if days < EXPIRY_WARNING_DAYS {
        Some(format!("WARNING: the certificate expires in {days} days ({})", format_utc(info.not_after)))
    } else {
        None
    }
}

fn name_warning(info: &CertInfo, dc: &str, domain: &str) -> Option<String> {
    if !matches!(info.role, CertRole::Server | CertRole::Other) {
        return None;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if !info.has_server_name(dc, domain) {
        return Some(format!(
            "WARNING: no DNS name server.{dc}.{domain}; servers with verify_server_hostname will reject \
             this certificate as a server of {dc}"
        ));
    }
    (!info.allows_server_auth())
        .then(|| "WARNING: the extended key usage does not allow TLS server authentication".to_owned())
}
