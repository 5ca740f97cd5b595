//! `sekisho pki show`: explain the certificates in a PEM file and warn about problems an
//! agent would trip over (a server certificate for another datacenter, expiry, a CA that
//! did not sign it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::Args;
use sekisho_pki::{CertInfo, CertRole, Purpose, explain, parse_pem_chain, verify_chain};

use super::super::output::Output;
use super::domain_name;

const LONG_ABOUT: &str = "\
Show every certificate in a PEM file: subject, role (CA, server, client, cli) with its
datacenter and domain, issuer, serial, key type, DNS names and IP addresses, extended key
usage, validity, days left and SHA-256 fingerprint. Sekisho addition; Consul has no
equivalent command.

Lines starting with `WARNING:` report problems:
  - the certificate has expired, is not valid yet, or expires within 30 days;
  - a server certificate lacks the DNS name server.<dc>.<domain>, so servers with
    verify_server_hostname reject it (checked against -dc and -domain when given, else
    against the datacenter and domain in the certificate's own name);
  - a server certificate whose extended key usage forbids TLS server authentication;
  - with -ca, the chain does not verify against that CA (the reason is given).

Exit codes: 0 when the file was shown, warnings or not (unless -strict); 1 when the file
cannot be read or holds no valid certificate (garbage, truncated PEM, a key file), or with
-strict when there was any warning; 2 for usage errors.";

const EXAMPLES: &str = "\
Examples:
  Inspect a server certificate and check it against the CA:
    $ sekisho pki show dc1-server-consul-0.pem -ca=consul-agent-ca.pem
    Subject:      CN=server.dc1.consul
    Role:         server (datacenter dc1, domain consul)
    ...
    DNS names:    server.dc1.consul, localhost
    IP addresses: 127.0.0.1
    ...
    chain: verified against consul-agent-ca.pem

  In a script, fail when the certificate would not work as a server of dc2:
    $ sekisho pki show -strict -dc=dc2 dc1-server-consul-0.pem
    ...
    WARNING: no DNS name server.dc2.consul; servers with verify_server_hostname will reject ...
    Error: 1 warning (-strict)";

/// `sekisho pki show` flags.
#[derive(Args, Debug)]
#[command(
    about = "Explain the certificates in a PEM file and warn about problems",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub(crate) struct ShowArgs {
    /// The PEM file (a certificate, a chain or a CA bundle)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Check server certificates against this datacenter (default: the certificate's own, else dc1)
    #[arg(long, value_name = "DC")]
    dc: Option<String>,
    /// Check server certificates against this domain (default: the certificate's own, else consul)
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Also verify the chain (the file's first certificate, then intermediates) against this CA file
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Exit 1 when there is any warning
    #[arg(long)]
    strict: bool,
}

impl ShowArgs {
    /// The `(dc, domain)` to check `info` against: the flags when given, else the names
    /// in the certificate itself.
    fn expectation<'a>(&'a self, info: &'a CertInfo) -> Option<(&'a str, &'a str)> {
        if self.dc.is_none() && self.domain.is_none() {
            return info.dc_and_domain.as_ref().map(|(dc, domain)| (dc.as_str(), domain.as_str()));
        }
        let dc = self.dc.as_deref().unwrap_or("dc1");
        Some((dc, domain_name(self.domain.as_deref().unwrap_or("consul"))))
    }
}

/// Prints the explanation; the exit code reflects `-strict`.
pub(crate) fn run(args: &ShowArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let pem = read_pem(&args.file)?;
    let certs = parse_pem_chain(&pem).with_context(|| format!("parsing {}", args.file.display()))?;
    let now = SystemTime::now();
    let mut lines = Vec::new();
    for (i, info) in certs.iter().enumerate() {
        if certs.len() > 1 {
            lines.push(format!("{}Certificate {} of {}:", if i > 0 { "\n" } else { "" }, i + 1, certs.len()));
        }
        lines.extend(explain(info, now, args.expectation(info)));
    }
    if let (Some(ca), Some(leaf)) = (&args.ca, certs.first()) {
        lines.push(String::new());
        lines.push(chain_line(&pem, leaf, ca, now)?);
    }
    for line in &lines {
        out.line(line)?;
    }
    let warnings = lines.iter().filter(|l| l.starts_with("WARNING:")).count();
    if args.strict && warnings > 0 {
        let plural = if warnings == 1 { "" } else { "s" };
        out.error(format!("Error: {warnings} warning{plural} (-strict)"))?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_pem(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("parsing {}: not a PEM file (not UTF-8 text)", path.display()))
}

/// `chain: verified against <ca>` or a `WARNING: chain: …` line. A server certificate is
/// checked for server auth, other leaves for either purpose; names are checked by
/// `explain`'s warnings, not here.
fn chain_line(pem: &str, leaf: &CertInfo, ca: &Path, now: SystemTime) -> anyhow::Result<String> {
    let ca_pem = read_pem(ca)?;
    let roots = parse_pem_chain(&ca_pem).with_context(|| format!("parsing CA file {}", ca.display()))?;
    if leaf.role == CertRole::Ca {
        let known = roots.iter().any(|r| r.fingerprint_sha256 == leaf.fingerprint_sha256);
        return Ok(if known {
            format!("chain: the CA is one of the CAs in {}", ca.display())
        } else {
            format!("WARNING: chain: this CA is not among the CAs in {}", ca.display())
        });
    }
    let purpose = (leaf.role == CertRole::Server).then_some(Purpose::ServerAuth);
    Ok(match verify_chain(pem, &ca_pem, now, purpose, None) {
        Ok(()) => format!("chain: verified against {}", ca.display()),
        Err(e) => format!("WARNING: chain: does not verify against {}: {e}", ca.display()),
    })
}
