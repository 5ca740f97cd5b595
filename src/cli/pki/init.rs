//! `sekisho pki init` (alias `sekisho tls ca create`): a new CA, as Consul's
//! `consul tls ca create`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use clap::Args;
use sekisho_pki::{CaParams, ca_file_names, create_ca};

use super::super::output::Output;
use super::{Algorithm, already_exists, check_dir, domain_name, exists, in_dir, write_pair};

const LONG_ABOUT: &str = "\
Create a certificate authority for agent TLS, like `consul tls ca create`: a self-signed
CA certificate <domain>-agent-ca.pem (mode 0644) and its private key
<domain>-agent-ca-key.pem (mode 0600), in the current directory or -dir. Keys are ECDSA
P-256 unless -algorithm says otherwise.

Existing files are never overwritten: if either file exists the command fails, names
it, and writes nothing. Keep the key safe; anyone holding it can mint server certificates.

Also available as `sekisho tls ca create` with the same flags.";

const EXAMPLES: &str = "\
Examples:
  Create the CA for the default domain `consul`:
    $ sekisho pki init
    ==> Saved consul-agent-ca.pem
    ==> Saved consul-agent-ca-key.pem

  A CA that may only sign names under example.com and localhost, valid for 10 years:
    $ sekisho pki init -domain=example.com -name-constraint -days=3650
    ==> Saved example.com-agent-ca.pem
    ==> Saved example.com-agent-ca-key.pem

  Consul's spelling, writing into /etc/sekisho.d/tls:
    $ sekisho tls ca create -dir=/etc/sekisho.d/tls";

/// `sekisho pki init` / `sekisho tls ca create` flags.
#[derive(Args, Debug)]
#[command(about = "Create a new certificate authority", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct InitArgs {
    /// Cluster domain; names the files and, with -name-constraint, limits the CA
    #[arg(long, value_name = "DOMAIN", default_value = "consul")]
    domain: String,
    /// Validity of the CA in days
    #[arg(long, value_name = "DAYS", default_value_t = 1825, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Subject common name (default "Consul Agent CA <random number>")
    #[arg(long = "common-name", value_name = "NAME")]
    common_name: Option<String>,
    /// Restrict the CA to names under -domain, localhost and -additional-name-constraint
    #[arg(long = "name-constraint")]
    name_constraint: bool,
    /// Another permitted DNS domain with -name-constraint; may be repeated
    #[arg(long = "additional-name-constraint", value_name = "NAME", requires = "name_constraint")]
    additional_name_constraint: Vec<String>,
    /// Key algorithm of the CA key
    #[arg(long, value_enum, default_value_t)]
    algorithm: Algorithm,
    /// Write the files into this directory instead of the current one (Sekisho addition)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Creates the CA and writes both files.
pub(crate) fn run(args: &InitArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let dir = args.dir.as_deref();
    check_dir(dir)?;
    let domain = domain_name(&args.domain);
    let (cert_name, key_name) = ca_file_names(domain);
    let (cert, key) = (in_dir(dir, &cert_name), in_dir(dir, &key_name));
    refuse_existing(&[&cert, &key])?;
    let ca = create_ca(&ca_params(args, domain)).context("creating the CA")?;
    write_pair(&cert, &ca.cert_pem, &key, &ca.key_pem)?;
    out.line(format!("==> Saved {}", cert.display()))?;
    out.line(format!("==> Saved {}", key.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn ca_params(args: &InitArgs, domain: &str) -> CaParams {
    let mut params = CaParams::new(SystemTime::now());
    params.days = args.days;
    params.domain = domain.to_owned();
    params.common_name.clone_from(&args.common_name);
    params.name_constraint = args.name_constraint;
    params.additional_name_constraints.clone_from(&args.additional_name_constraint);
    params.algorithm = args.algorithm.into();
    params
}

/// Fails, naming the first one, if any of `paths` exists.
fn refuse_existing(paths: &[&Path]) -> anyhow::Result<()> {
    match paths.iter().find(|p| exists(p)) {
        Some(p) => bail!("{}; nothing was written", already_exists(p)),
        None => Ok(()),
    }
}
