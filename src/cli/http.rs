//! The HTTP API options every client command takes, and the [`Client`] they build.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::client::{Client, ClientConfig, read_token_file};

/// `-http-addr`, `-token`, `-token-file`, `-datacenter`, `-stale`, as in Consul's CLI.
///
/// Precedence: flags, then `SEKISHO_*` variables, then `CONSUL_*` ones, then defaults.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "HTTP API Options")]
pub(crate) struct HttpArgs {
    /// Address of the agent's HTTP API, `host:port` or `http://host:port`
    /// [env: SEKISHO_HTTP_ADDR, CONSUL_HTTP_ADDR] [default: 127.0.0.1:8500]
    #[arg(long = "http-addr", value_name = "ADDR", global = true)]
    pub(crate) http_addr: Option<String>,

    /// ACL token sent as X-Consul-Token [env: SEKISHO_HTTP_TOKEN, CONSUL_HTTP_TOKEN]
    #[arg(long, value_name = "TOKEN", global = true)]
    pub(crate) token: Option<String>,

    /// File whose (trimmed) contents are the ACL token
    /// [env: SEKISHO_HTTP_TOKEN_FILE, CONSUL_HTTP_TOKEN_FILE]
    #[arg(long = "token-file", value_name = "FILE", global = true)]
    pub(crate) token_file: Option<PathBuf>,

    /// Datacenter to query; defaults to the agent's own
    #[arg(long, value_name = "DC", global = true)]
    pub(crate) datacenter: Option<String>,

    /// Let any server answer reads, not only the leader (faster, possibly stale)
    #[arg(long, global = true)]
    pub(crate) stale: bool,

    /// CA certificate that signed the agent's HTTPS certificate [env: CONSUL_CACERT]
    #[arg(long = "ca-file", value_name = "FILE", global = true)]
    pub(crate) ca_file: Option<PathBuf>,

    /// Directory of CA certificates [env: CONSUL_CAPATH]
    #[arg(long = "ca-path", value_name = "DIR", global = true)]
    pub(crate) ca_path: Option<PathBuf>,

    /// Client certificate, for agents with https verify_incoming [env: CONSUL_CLIENT_CERT]
    #[arg(long = "client-cert", value_name = "FILE", global = true)]
    pub(crate) client_cert: Option<PathBuf>,

    /// Key of -client-cert [env: CONSUL_CLIENT_KEY]
    #[arg(long = "client-key", value_name = "FILE", global = true)]
    pub(crate) client_key: Option<PathBuf>,

    /// Name to verify in the agent's certificate instead of the address' host
    /// [env: CONSUL_TLS_SERVER_NAME]
    #[arg(long = "tls-server-name", value_name = "NAME", global = true)]
    pub(crate) tls_server_name: Option<String>,
}

impl HttpArgs {
    /// The client configuration: the environment overlaid with these flags.
    pub(crate) fn config(&self) -> anyhow::Result<ClientConfig> {
        let explicit_token = self.token.is_some() || self.token_file.is_some();
        let mut config = ClientConfig::from_lookup(|name| {
            // An explicit token makes the environment's token (and its file) irrelevant.
            if explicit_token && name.contains("TOKEN") {
                return None;
            }
            std::env::var(name).ok()
        })?;
        if let Some(addr) = &self.http_addr {
            config.address.clone_from(addr);
        }
        if let Some(token) = &self.token {
            config.token = Some(token.clone());
        } else if let Some(path) = &self.token_file {
            config.token = read_token_file(path).context("reading -token-file")?;
        }
        if let Some(dc) = &self.datacenter {
            config.datacenter = Some(dc.clone());
        }
        config.stale |= self.stale;
        let tls = &mut config.tls;
        for (flag, slot) in [
            (&self.ca_file, &mut tls.ca_file),
            (&self.ca_path, &mut tls.ca_path),
            (&self.client_cert, &mut tls.client_cert),
            (&self.client_key, &mut tls.client_key),
        ] {
            if let Some(p) = flag {
                *slot = Some(p.clone());
            }
        }
        if let Some(n) = &self.tls_server_name {
            tls.server_name = Some(n.clone());
        }
        Ok(config)
    }

    /// A client for these options.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(self.config()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "from-file\n").unwrap();
        let args = HttpArgs {
            http_addr: Some("10.1.1.1:1".into()),
            token_file: Some(file),
            datacenter: Some("dc2".into()),
            stale: true,
            ..HttpArgs::default()
        };
        let cfg = args.config().unwrap();
        assert_eq!(cfg.address, "10.1.1.1:1");
        assert_eq!(cfg.token.as_deref(), Some("from-file"));
        assert_eq!(cfg.datacenter.as_deref(), Some("dc2"));
        assert!(cfg.stale);
    }
}
