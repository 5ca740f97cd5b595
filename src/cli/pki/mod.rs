//! `sekisho pki init|issue|show` and Consul's spellings `sekisho tls ca create` and
//! `sekisho tls cert create`: the built-in CA tooling on top of `sekisho_pki`.
//!
//! ```text
//! pki init  ┐                                   ┌─► <domain>-agent-ca.pem       (0644)
//! tls ca create ┴─► init::run ─► create_ca ─────┴─► <domain>-agent-ca-key.pem   (0600)
//! pki issue ┐      read CA + key, next_free_index ┌─► <dc>-<role>-<domain>-<i>.pem     (0644)
//! tls cert create ┴─► issue::run ─► issue ────────┴─► <dc>-<role>-<domain>-<i>-key.pem (0600)
//! pki show FILE ─► show::run ─► parse_pem_chain ─► explain (+ verify_chain with -ca)
//! ```
//!
//! None of these commands talks to an agent: they run locally, with no HTTP options and no
//! async runtime. Files are never overwritten: each one is written to a temporary file in
//! the target directory, fsynced, then hard-linked to its name (which fails if the name
//! exists) so a crash leaves either the whole file or nothing. Exit codes: 0 success, 1 error
//! (or, for `show -strict`, a warning), 2 usage error.

mod init;
mod issue;
mod show;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use sekisho_pki::KeyAlgorithm;

use super::output::Output;

/// Mode of certificates written by these commands (public material).
const CERT_MODE: u32 = 0o644;
/// Mode of private keys written by these commands.
const KEY_MODE: u32 = 0o600;

/// `sekisho pki …`
#[derive(Args, Debug)]
#[command(
    about = "Create a CA, issue agent certificates and inspect certificate files",
    long_about = "Built-in certificate authority tooling for TLS between agents, compatible with \
        Consul's `consul tls` commands: `init` creates a CA, `issue` signs server, client and CLI \
        certificates with Consul's names, `show` explains a certificate file and warns about \
        problems. Nothing talks to an agent; files are written in the current directory (or \
        -dir) and never overwritten.",
    after_long_help = "Examples:\n  $ sekisho pki init\n  ==> Saved consul-agent-ca.pem\n  \
        ==> Saved consul-agent-ca-key.pem\n  $ sekisho pki issue -server -node=node1\n  \
        $ sekisho pki show dc1-server-consul-0.pem -ca=consul-agent-ca.pem"
)]
pub(crate) struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

/// The pki subcommands.
#[derive(Subcommand, Debug)]
enum PkiCommand {
    Init(init::InitArgs),
    Issue(issue::IssueArgs),
    Show(show::ShowArgs),
}

/// `sekisho tls …`: Consul's names for `pki init` and `pki issue`.
#[derive(Args, Debug)]
#[command(
    about = "Consul-style aliases: `tls ca create` (= pki init), `tls cert create` (= pki issue)",
    long_about = "The `consul tls` commands under their Consul names, for scripts and habits \
        carried over from Consul. `sekisho tls ca create` is `sekisho pki init` and \
        `sekisho tls cert create` is `sekisho pki issue`: same flags, same files, same output.",
    after_long_help = "Examples:\n  $ sekisho tls ca create\n  ==> Saved consul-agent-ca.pem\n  \
        ==> Saved consul-agent-ca-key.pem\n  $ sekisho tls cert create -client\n  \
        ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n  \
        ==> Saved dc1-client-consul-0.pem\n  ==> Saved dc1-client-consul-0-key.pem"
)]
pub(crate) struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

/// `tls ca` and `tls cert`.
#[derive(Subcommand, Debug)]
enum TlsCommand {
    Ca(TlsCaArgs),
    Cert(TlsCertArgs),
}

/// `sekisho tls ca …`
#[derive(Args, Debug)]
#[command(
    about = "Create a certificate authority (`tls ca create` = `pki init`)",
    long_about = "Consul's `consul tls ca` family. `create` is `sekisho pki init`: it writes \
        <domain>-agent-ca.pem and <domain>-agent-ca-key.pem and never overwrites them.",
    after_long_help = "Example:\n  $ sekisho tls ca create\n  ==> Saved consul-agent-ca.pem\n  \
        ==> Saved consul-agent-ca-key.pem"
)]
struct TlsCaArgs {
    #[command(subcommand)]
    command: TlsCaCommand,
}

#[derive(Subcommand, Debug)]
enum TlsCaCommand {
    Create(init::InitArgs),
}

/// `sekisho tls cert …`
#[derive(Args, Debug)]
#[command(
    about = "Create agent certificates (`tls cert create` = `pki issue`)",
    long_about = "Consul's `consul tls cert` family. `create` is `sekisho pki issue`: one of \
        -server, -client or -cli, files <dc>-<role>-<domain>-<n>.pem and -key.pem at the first \
        free index.",
    after_long_help = "Example:\n  $ sekisho tls cert create -server\n  ==> WARNING: Server \
        Certificates grants authority to become a server ...\n  \
        ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n  \
        ==> Saved dc1-server-consul-0.pem\n  ==> Saved dc1-server-consul-0-key.pem"
)]
struct TlsCertArgs {
    #[command(subcommand)]
    command: TlsCertCommand,
}

#[derive(Subcommand, Debug)]
enum TlsCertCommand {
    Create(issue::IssueArgs),
}

/// Key algorithm of newly generated keys (`-algorithm`).
#[derive(ValueEnum, Clone, Copy, Debug, Default)]
enum Algorithm {
    /// ECDSA P-256, as Consul
    #[default]
    Ecdsa,
    /// Ed25519
    Ed25519,
}

impl From<Algorithm> for KeyAlgorithm {
    fn from(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Ecdsa => Self::EcdsaP256,
            Algorithm::Ed25519 => Self::Ed25519,
        }
    }
}

/// Runs `sekisho pki …`.
pub(crate) fn main(args: PkiArgs) -> ExitCode {
    run_local(|out| match args.command {
        PkiCommand::Init(a) => init::run(&a, out),
        PkiCommand::Issue(a) => issue::run(&a, out),
        PkiCommand::Show(a) => show::run(&a, out),
    })
}

/// Runs `sekisho tls …`, the same handlers as `pki`.
pub(crate) fn tls_main(args: TlsArgs) -> ExitCode {
    run_local(|out| match args.command {
        TlsCommand::Ca(TlsCaArgs { command: TlsCaCommand::Create(a) }) => init::run(&a, out),
        TlsCommand::Cert(TlsCertArgs { command: TlsCertCommand::Create(a) }) => issue::run(&a, out),
    })
}

/// Runs a local command on stdout/stderr; errors become `Error: …` and exit code 1.
fn run_local(command: impl FnOnce(&mut Output) -> anyhow::Result<ExitCode>) -> ExitCode {
    let mut out = Output::stdio();
    let result = command(&mut out);
    let flushed = out.flush();
    match result.and_then(|code| flushed.map(|()| code).map_err(Into::into)) {
        Ok(code) => code,
        Err(e) => super::report(&e),
    }
}

/// `name` inside `dir`, or `name` alone (relative to the current directory) without `-dir`.
fn in_dir(dir: Option<&Path>, name: &str) -> PathBuf {
    dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// The domain as used in file names and SANs: one trailing dot dropped.
fn domain_name(domain: &str) -> &str {
    domain.strip_suffix('.').unwrap_or(domain)
}

/// Something (a file, a dangling symlink...) exists at `path`.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Fails with a clear message if `-dir` is given and is not a directory.
fn check_dir(dir: Option<&Path>) -> anyhow::Result<()> {
    match dir {
        Some(d) if !d.is_dir() => bail!("-dir {}: no such directory", d.display()),
        _ => Ok(()),
    }
}

/// Writes `contents` to the new file `path` with permissions `mode`, never replacing an
/// existing file and never leaving a partial one.
///
/// The bytes go to a temporary file in the same directory (created exclusively, with
/// `mode` from the start), which is fsynced and then hard-linked to `path`; the link fails if
/// `path` exists. On filesystems without hard links the file is created with `create_new`
/// and removed again if writing fails.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().context("the path names no file")?.to_string_lossy();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    if let Err(e) = write_synced(&tmp, contents, mode) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&tmp);
        }
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => bail!(already_exists(path)),
        // EPERM/ENOTSUP: a filesystem without hard links (FAT, some network mounts).
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported) => {
            write_in_place(path, contents, mode)?;
        }
        Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
    }
    File::open(&dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// The fallback of [`write_new_file`]: `create_new`, write, fsync; removed on failure.
fn write_in_place(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    match write_synced(path, contents, mode) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => bail!(already_exists(path)),
        Err(e) => {
            let _ = fs::remove_file(path);
            Err(e).with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// Creates `path` exclusively with `mode` (exactly, whatever the umask), writes and fsyncs.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(mode);
        let mut file = options.open(path)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    }
}

fn already_exists(path: &Path) -> String {
    format!("{} already exists; refusing to overwrite it", path.display())
}

/// Writes a certificate and its key as new files, the certificate first; if the key cannot
/// be written, the certificate is removed again so no half pair remains.
fn write_pair(cert: &Path, cert_pem: &str, key: &Path, key_pem: &str) -> anyhow::Result<()> {
    write_new_file(cert, cert_pem.as_bytes(), CERT_MODE)?;
    if let Err(e) = write_new_file(key, key_pem.as_bytes(), KEY_MODE) {
        let _ = fs::remove_file(cert);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_get_their_mode_and_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_new_file(&path, b"first", KEY_MODE).unwrap();
        let err = write_new_file(&path, b"second", KEY_MODE).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, KEY_MODE);
        }
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["k.pem"], "no temporary file is left behind");
    }

    #[test]
    fn a_failed_key_write_removes_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("c-key.pem"));
        fs::write(&key, "taken").unwrap();
        assert!(write_pair(&cert, "cert", &key, "key").is_err());
        assert!(!exists(&cert));
        assert_eq!(fs::read_to_string(&key).unwrap(), "taken");
    }
}
