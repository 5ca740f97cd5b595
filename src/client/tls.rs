//! HTTPS to the agent: Consul's client TLS settings (`-ca-file`, `-client-cert`, ...,
//! `CONSUL_CACERT`, `CONSUL_HTTP_SSL`, ...) and the rustls config they make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use sekisho_pki::{ServerNameCheck, TlsOptions};

/// How the client secures its connection to the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Use HTTPS even for a `host:port` address (`CONSUL_HTTP_SSL`).
    pub ssl: bool,
    /// CA certificate to verify the agent with (`-ca-file`, `CONSUL_CACERT`); the system
    /// roots when neither this nor `ca_path` is set.
    pub ca_file: Option<PathBuf>,
    /// A directory of CA certificates (`-ca-path`, `CONSUL_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// Client certificate (`-client-cert`, `CONSUL_CLIENT_CERT`), for `verify_incoming`.
    pub client_cert: Option<PathBuf>,
    /// Its key (`-client-key`, `CONSUL_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// The name to verify instead of the address' host (`-tls-server-name`,
    /// `CONSUL_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
}

impl ClientTls {
    /// Reads the `SEKISHO_*` / `CONSUL_*` variables.
    pub(crate) fn from_lookup(first: impl Fn([&str; 2]) -> Option<String>) -> Self {
        let path = |names: [&str; 2]| first(names).map(PathBuf::from);
        let ssl = first(["SEKISHO_HTTP_SSL", "CONSUL_HTTP_SSL"])
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes"));
        ClientTls {
            ssl,
            ca_file: path(["SEKISHO_CACERT", "CONSUL_CACERT"]),
            ca_path: path(["SEKISHO_CAPATH", "CONSUL_CAPATH"]),
            client_cert: path(["SEKISHO_CLIENT_CERT", "CONSUL_CLIENT_CERT"]),
            client_key: path(["SEKISHO_CLIENT_KEY", "CONSUL_CLIENT_KEY"]),
            server_name: first(["SEKISHO_TLS_SERVER_NAME", "CONSUL_TLS_SERVER_NAME"]),
        }
    }

    /// The rustls config (HTTP/1.1 ALPN).
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let mut roots_pem = String::new();
        if let Some(f) = &self.ca_file {
            roots_pem.push_str(&read(f, "CA file")?);
        }
        if let Some(dir) = &self.ca_path {
            let entries =
                std::fs::read_dir(dir).map_err(|e| format!("reading CA path {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.retain(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"));
            files.sort();
            for f in files {
                roots_pem.push_str(&read(&f, "CA file")?);
                roots_pem.push('\n');
            }
        }
        let roots = if roots_pem.trim().is_empty() {
            let found = rustls_native_certs::load_native_certs();
            found.certs
        } else {
            sekisho_pki::parse_certificates(&roots_pem).map_err(|e| format!("CA certificates: {e}"))?
        };
        let resolver: Option<Arc<dyn rustls::client::ResolvesClientCert>> =
            match (&self.client_cert, &self.client_key) {
                (Some(c), Some(k)) => {
                    let cert = sekisho_pki::ReloadableCert::from_pem(
                        &read(c, "client certificate")?,
                        &read(k, "client key")?,
                    )
                    .map_err(|e| format!("client certificate {}: {e}", c.display()))?;
                    Some(Arc::new(cert))
                }
                (None, None) => None,
                _ => return Err("-client-cert and -client-key must be given together".into()),
            };
        let opts = TlsOptions::new(sekisho_pki::TlsVersion::Tls12, vec![b"http/1.1".to_vec()]);
        sekisho_pki::client_config_with_resolver(&roots, resolver, ServerNameCheck::Verify, &opts)
            .map_err(|e| e.to_string())
    }
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {what} {}: {e}", path.display()))
}
