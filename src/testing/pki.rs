//! A throwaway CA for tests: certificates for servers and clients written to a directory,
//! and the configuration that turns on mutual TLS with them.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sekisho_pki::{CaBundle, CaParams, LeafBundle, LeafParams, Role};

use crate::config::RuntimeConfig;
use crate::config::tls::TlsBlock;

/// A CA in a directory.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    ca: CaBundle,
    ca_file: PathBuf,
}

/// A certificate and key written to files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
}

impl TestPki {
    /// Creates a CA and writes `ca.pem` (and `ca-key.pem`) into `dir`.
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca = sekisho_pki::create_ca(&CaParams::new(SystemTime::now())).expect("test CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).expect("write ca.pem");
        std::fs::write(dir.join("ca-key.pem"), &ca.key_pem).expect("write ca-key.pem");
        TestPki { dir: dir.to_path_buf(), ca, ca_file }
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA (to issue more certificates with).
    pub fn ca(&self) -> &CaBundle {
        &self.ca
    }

    /// Issues a `role` certificate for datacenter `dc` (valid from `now`, 365 days) and writes
    /// it as `<name>.pem` / `<name>-key.pem`.
    pub fn issue(&self, name: &str, role: Role, dc: &str) -> CertFiles {
        let mut p = LeafParams::new(role, SystemTime::now());
        p.dc = dc.to_owned();
        self.issue_with(name, &p)
    }

    /// Issues a certificate with `params` and writes it as `<name>.pem` / `<name>-key.pem`
    /// (replacing files of that name: rotation tests).
    pub fn issue_with(&self, name: &str, params: &LeafParams) -> CertFiles {
        let leaf = sekisho_pki::issue(&self.ca.cert_pem, &self.ca.key_pem, params).expect("issue");
        self.write(name, &leaf)
    }

    /// Writes `leaf` as `<name>.pem` / `<name>-key.pem` (the key first, so a watcher never
    /// sees a new certificate beside the old key for long).
    pub fn write(&self, name: &str, leaf: &LeafBundle) -> CertFiles {
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&files.key, &leaf.key_pem).expect("write key");
        std::fs::write(&files.cert, &leaf.cert_pem).expect("write cert");
        files
    }

    /// Turns on `verify_incoming`, `verify_outgoing` and `verify_server_hostname` with
    /// `files` in `cfg`.
    pub fn mtls(&self, cfg: &mut RuntimeConfig, files: &CertFiles) {
        cfg.tls.defaults = TlsBlock {
            ca_file: Some(self.ca_file.clone()),
            cert_file: Some(files.cert.clone()),
            key_file: Some(files.key.clone()),
            verify_incoming: Some(true),
            verify_outgoing: Some(true),
            verify_server_hostname: Some(true),
            ..TlsBlock::default()
        };
    }
}
