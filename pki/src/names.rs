//! Consul's file names, index selection and name validation.

use crate::error::{Error, Result};
use crate::leaf::Role;

/// The highest index [`next_free_index`] tries (Consul stops at 10000 too).
pub const MAX_FILE_INDEX: u32 = 10_000;

/// The warning `consul tls cert create -server` prints; print it when issuing server
/// certificates.
pub const SERVER_CERT_WARNING: &str = "WARNING: Server Certificates grants authority to become a server and \
access all state in the cluster including root keys and all ACL tokens. Do not distribute them to \
production hosts that are not server nodes. Store them as securely as CA keys.";

/// Consul's CA file names for `domain`: `("<domain>-agent-ca.pem", "<domain>-agent-ca-key.pem")`,
/// e.g. `consul-agent-ca.pem` and `consul-agent-ca-key.pem`.
pub fn ca_file_names(domain: &str) -> (String, String) {
    (format!("{domain}-agent-ca.pem"), format!("{domain}-agent-ca-key.pem"))
}

/// Consul's certificate and key file names: `("<dc>-<role>-<domain>-<index>.pem",
/// "<dc>-<role>-<domain>-<index>-key.pem")`, e.g. `dc1-server-consul-0.pem` and
/// `dc1-server-consul-0-key.pem`.
pub fn file_names(role: Role, dc: &str, domain: &str, index: u32) -> (String, String) {
    let prefix = format!("{dc}-{}-{domain}-{index}", role.as_str());
    (format!("{prefix}.pem"), format!("{prefix}-key.pem"))
}

/// The first index in `0..=MAX_FILE_INDEX` whose certificate and key names (see
/// [`file_names`]) are both free according to `exists`, or `None` when all are taken. The
/// caller decides what "exists" means (a directory listing, a set of names...).
///
/// ```
/// use std::collections::HashSet;
/// use sekisho_pki::{next_free_index, Role};
///
/// let used: HashSet<&str> = ["dc1-server-consul-0.pem", "dc1-server-consul-1-key.pem"].into();
/// assert_eq!(next_free_index(Role::Server, "dc1", "consul", |n| used.contains(n)), Some(2));
/// ```
pub fn next_free_index(role: Role, dc: &str, domain: &str, exists: impl Fn(&str) -> bool) -> Option<u32> {
    (0..=MAX_FILE_INDEX).find(|i| {
        let (cert, key) = file_names(role, dc, domain, *i);
        !exists(&cert) && !exists(&key)
    })
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks that `name` is a DNS name (one trailing dot allowed).
pub(crate) fn validate_dns_name(what: &str, name: &str) -> Result<()> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() && trimmed.len() <= 253 && trimmed.split('.').all(valid_label) {
        Ok(())
    } else {
        Err(Error::InvalidParams(format!("invalid {what} {name:?}: expected a DNS name")))
    }
}

/// Like [`validate_dns_name`] but also allows a leading `*.` wildcard label.
pub(crate) fn validate_san_dns_name(name: &str) -> Result<()> {
    validate_dns_name("DNS name", name.strip_prefix("*.").unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_file_names() {
        assert_eq!(ca_file_names("consul"), ("consul-agent-ca.pem".into(), "consul-agent-ca-key.pem".into()));
        assert_eq!(ca_file_names("example.com").0, "example.com-agent-ca.pem");
        assert_eq!(
            file_names(Role::Server, "dc1", "consul", 0),
            ("dc1-server-consul-0.pem".into(), "dc1-server-consul-0-key.pem".into())
        );
        assert_eq!(file_names(Role::Client, "dc2", "consul", 3).0, "dc2-client-consul-3.pem");
        assert_eq!(file_names(Role::Cli, "dc1", "consul", 1).1, "dc1-cli-consul-1-key.pem");
    }

    #[test]
    fn next_free_index_skips_used_and_gives_up() {
        let used = ["dc1-client-consul-0.pem", "dc1-client-consul-1-key.pem", "dc1-client-consul-2.pem"];
        assert_eq!(next_free_index(Role::Client, "dc1", "consul", |n| used.contains(&n)), Some(3));
        assert_eq!(next_free_index(Role::Server, "dc1", "consul", |n| used.contains(&n)), Some(0));
        assert_eq!(next_free_index(Role::Cli, "dc1", "consul", |_| true), None);
    }

    #[test]
    fn dns_name_validation() {
        assert!(validate_dns_name("domain", "consul").is_ok());
        assert!(validate_dns_name("domain", "consul.").is_ok());
        assert!(validate_dns_name("domain", "example.com").is_ok());
        for bad in ["", ".", "a..b", "bad name", "ünï", "a/b"] {
            assert!(validate_dns_name("domain", bad).is_err(), "{bad:?}");
        }
        assert!(validate_san_dns_name("*.example.com").is_ok());
        assert!(validate_san_dns_name("a.*.example.com").is_err());
    }
}
