//! Where the client connects and with which token, from code or from the environment.

use std::path::{Path, PathBuf};

use super::ClientError;

/// The address used when nothing else is configured.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// How a [`Client`](super::Client) reaches the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host:port` (`127.0.0.1:8500`) or a URL (`http://127.0.0.1:8500`).
    pub address: String,
    /// Sent as `X-Consul-Token` on every request.
    pub token: Option<String>,
    /// Sent as `?dc=` on every request.
    pub datacenter: Option<String>,
    /// Adds `?stale` to reads, so any server may answer.
    pub stale: bool,
    /// HTTPS settings.
    pub tls: super::tls::ClientTls,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADDRESS.to_owned(),
            token: None,
            datacenter: None,
            stale: false,
            tls: super::tls::ClientTls::default(),
        }
    }
}

impl ClientConfig {
    /// A config for the agent at `address` with no token.
    pub fn new(address: impl Into<String>) -> Self {
        Self { address: address.into(), ..Self::default() }
    }

    /// Reads the environment like Consul's Go client.
    ///
    /// - address: `SEKISHO_HTTP_ADDR`, else `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`;
    /// - token: the contents of `SEKISHO_HTTP_TOKEN_FILE` or `CONSUL_HTTP_TOKEN_FILE`
    ///   (trimmed, as Consul reads it, and winning over a literal token), else
    ///   `SEKISHO_HTTP_TOKEN`, else `CONSUL_HTTP_TOKEN`.
    ///
    /// Fails only when a token file is named but cannot be read.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] over any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let first = |names: [&str; 2]| names.into_iter().find_map(|n| lookup(n).filter(|v| !v.is_empty()));
        let address =
            first(["SEKISHO_HTTP_ADDR", "CONSUL_HTTP_ADDR"]).unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let token_file = first(["SEKISHO_HTTP_TOKEN_FILE", "CONSUL_HTTP_TOKEN_FILE"]);
        let from_file = match token_file {
            Some(path) => read_token_file(Path::new(&path))?,
            None => None,
        };
        let token = from_file.or_else(|| first(["SEKISHO_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"]));
        let tls = super::tls::ClientTls::from_lookup(first);
        Ok(Self { address, token, tls, ..Self::default() })
    }
}

/// Reads a token file: its trimmed contents, `None` when it is blank.
pub fn read_token_file(path: &Path) -> Result<Option<String>, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ClientError::TokenFile { path: PathBuf::from(path), source })?;
    let token = text.trim();
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_without_environment() {
        let cfg = ClientConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(cfg, ClientConfig::default());
    }

    #[test]
    fn sekisho_variables_win_over_consul_ones() {
        let cfg = ClientConfig::from_lookup(lookup(&[
            ("CONSUL_HTTP_ADDR", "10.0.0.1:8500"),
            ("SEKISHO_HTTP_ADDR", "10.0.0.2:8500"),
            ("CONSUL_HTTP_TOKEN", "c"),
        ]))
        .unwrap();
        assert_eq!(cfg.address, "10.0.0.2:8500");
        assert_eq!(cfg.token.as_deref(), Some("c"));
    }

    #[test]
    fn token_file_wins_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  secret\n").unwrap();
        let p = path.to_str().unwrap();
        let cfg = ClientConfig::from_lookup(lookup(&[
            ("CONSUL_HTTP_TOKEN", "literal"),
            ("CONSUL_HTTP_TOKEN_FILE", p),
        ]))
        .unwrap();
        assert_eq!(cfg.token.as_deref(), Some("secret"));
        let missing = dir.path().join("nope");
        let err = ClientConfig::from_lookup(lookup(&[("CONSUL_HTTP_TOKEN_FILE", missing.to_str().unwrap())]))
            .unwrap_err();
        assert!(matches!(err, ClientError::TokenFile { .. }));
    }
}
