//! `sekisho pki issue` (alias `sekisho tls cert create`): a server, client or CLI
//! certificate signed by the CA, as Consul's `consul tls cert create`.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use clap::Args;
use sekisho_pki::{
    LeafParams, MAX_FILE_INDEX, Role, SERVER_CERT_WARNING, ca_file_names, file_names, issue, next_free_index,
};

use super::super::output::Output;
use super::{Algorithm, check_dir, domain_name, exists, in_dir, write_pair};

const LONG_ABOUT: &str = "\
Create a certificate signed by the CA, like `consul tls cert create`. Exactly one of
-server, -client or -cli says which kind:

  -server  <dc>-server-<domain>-<n>.pem  DNS server.<dc>.<domain>, localhost
           (+ <node>.server.<dc>.<domain> with -node), IP 127.0.0.1;
           extended key usage server auth + client auth
  -client  <dc>-client-<domain>-<n>.pem  DNS client.<dc>.<domain>, localhost, IP 127.0.0.1;
           client auth + server auth
  -cli     <dc>-cli-<domain>-<n>.pem     DNS cli.<dc>.<domain>, localhost; no extended key usage

The key goes next to the certificate as <dc>-<role>-<domain>-<n>-key.pem (mode 0600). <n> is
the first index whose files do not exist yet, so repeated runs write -0, -1, ... and never
overwrite anything. The CA is read from <domain>-agent-ca.pem and <domain>-agent-ca-key.pem
in the current directory (or -dir) unless -ca and -key say otherwise; create it with
`sekisho pki init`. The certificate's validity ends no later than the CA's.

Server certificates let their holder act as a server and read every secret in the
cluster: only put them on server nodes.

Also available as `sekisho tls cert create` with the same flags.";

const EXAMPLES: &str = "\
Examples:
  A server certificate for node1 in dc1:
    $ sekisho pki issue -server -node=node1
    ==> WARNING: Server Certificates grants authority to become a server and access all ...
    ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
    ==> Saved dc1-server-consul-0.pem
    ==> Saved dc1-server-consul-0-key.pem

  A client certificate for dc2 of the example.com domain, also valid for an extra name:
    $ sekisho pki issue -client -dc=dc2 -domain=example.com -additional-dnsname=web.example.com
    ==> Using example.com-agent-ca.pem and example.com-agent-ca-key.pem
    ==> Saved dc2-client-example.com-0.pem
    ==> Saved dc2-client-example.com-0-key.pem

  Consul's spelling, with the CA elsewhere:
    $ sekisho tls cert create -cli -ca=/etc/ca/consul-agent-ca.pem \\
        -key=/etc/ca/consul-agent-ca-key.pem";

/// `sekisho pki issue` / `sekisho tls cert create` flags.
#[derive(Args, Debug)]
#[command(
    about = "Create a server, client or CLI certificate signed by the CA",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub(crate) struct IssueArgs {
    #[command(flatten)]
    role: RoleFlags,
    /// Datacenter of the certificate
    #[arg(long, value_name = "DC", default_value = "dc1")]
    dc: String,
    /// Cluster domain
    #[arg(long, value_name = "DOMAIN", default_value = "consul")]
    domain: String,
    /// Node name, adding the DNS name <node>.server.<dc>.<domain> (requires -server)
    #[arg(long, value_name = "NAME", requires = "server", conflicts_with_all = ["client", "cli"])]
    node: Option<String>,
    /// Validity in days (never past the CA's end)
    #[arg(long, value_name = "DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// An extra DNS name (a leading `*.` is allowed); may be repeated
    #[arg(long = "additional-dnsname", value_name = "NAME")]
    additional_dnsname: Vec<String>,
    /// An extra IP address; may be repeated
    #[arg(long = "additional-ipaddress", value_name = "IP")]
    additional_ipaddress: Vec<IpAddr>,
    /// The CA certificate (default <domain>-agent-ca.pem in the current directory or -dir)
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The CA private key (default <domain>-agent-ca-key.pem in the current directory or -dir)
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Key algorithm of the new certificate's key
    #[arg(long, value_enum, default_value_t)]
    algorithm: Algorithm,
    /// Write the files into (and read the default CA files from) this directory (Sekisho addition)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Exactly one of `-server`, `-client`, `-cli`.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct RoleFlags {
    /// A server certificate
    #[arg(long)]
    server: bool,
    /// A client agent certificate
    #[arg(long)]
    client: bool,
    /// A certificate for CLI users
    #[arg(long)]
    cli: bool,
}

impl RoleFlags {
    fn role(&self) -> Role {
        match (self.server, self.client) {
            (true, _) => Role::Server,
            (_, true) => Role::Client,
            _ => Role::Cli,
        }
    }
}

/// Issues the certificate and writes it with its key.
pub(crate) fn run(args: &IssueArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let dir = args.dir.as_deref();
    check_dir(dir)?;
    let domain = domain_name(&args.domain);
    let role = args.role.role();
    let (default_ca, default_key) = ca_file_names(domain);
    let ca = args.ca.clone().unwrap_or_else(|| in_dir(dir, &default_ca));
    let key = args.key.clone().unwrap_or_else(|| in_dir(dir, &default_key));
    let ca_pem = read_ca_file(&ca, "CA certificate")?;
    let key_pem = read_ca_file(&key, "CA private key")?;
    let index = next_free_index(role, &args.dc, domain, |name| exists(&in_dir(dir, name)))
        .ok_or_else(|| anyhow!("every index from 0 to {MAX_FILE_INDEX} is taken for {role} certificates"))?;
    let bundle = issue(&ca_pem, &key_pem, &leaf_params(args, role, domain))
        .with_context(|| format!("signing with {} and {}", ca.display(), key.display()))?;
    let (cert_name, key_name) = file_names(role, &args.dc, domain, index);
    let (cert_path, key_path) = (in_dir(dir, &cert_name), in_dir(dir, &key_name));
    if role == Role::Server {
        out.line(format!("==> {SERVER_CERT_WARNING}"))?;
    }
    out.line(format!("==> Using {} and {}", ca.display(), key.display()))?;
    write_pair(&cert_path, &bundle.cert_pem, &key_path, &bundle.key_pem)?;
    out.line(format!("==> Saved {}", cert_path.display()))?;
    out.line(format!("==> Saved {}", key_path.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn leaf_params(args: &IssueArgs, role: Role, domain: &str) -> LeafParams {
    let mut params = LeafParams::new(role, SystemTime::now());
    params.dc.clone_from(&args.dc);
    params.domain = domain.to_owned();
    params.node.clone_from(&args.node);
    params.days = args.days;
    params.additional_dns.clone_from(&args.additional_dnsname);
    params.additional_ips.clone_from(&args.additional_ipaddress);
    params.algorithm = args.algorithm.into();
    params
}

/// Reads a CA file; a missing one gets a hint to run `sekisho pki init`.
fn read_ca_file(path: &Path, what: &str) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(anyhow!(
            "{what} {} not found; create a CA with `sekisho pki init` or pass -ca and -key",
            path.display()
        )),
        Err(e) => Err(e).with_context(|| format!("reading {what} {}", path.display())),
    }
}
