//! Typed helpers over [`Client::request`], one per endpoint the CLI and tests use.

use std::collections::BTreeMap;

use http::{Method, StatusCode};

use super::url::{append_param, escape_path};
use super::{CatalogNode, Client, ClientError, KeyringResponse, KvEntry, Member};

impl Client {
    /// `GET /v1/kv/<key>`: the entry, or `None` when the key does not exist.
    pub async fn kv_get(&self, key: &str) -> Result<Option<KvEntry>, ClientError> {
        let entries: Option<Vec<KvEntry>> = self.get_json(&kv_path(key)).await?;
        Ok(entries.and_then(|e| e.into_iter().next()))
    }

    /// `GET /v1/kv/<prefix>?recurse`: every entry under `prefix`, sorted by key.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<KvEntry>, ClientError> {
        let mut path = kv_path(prefix);
        append_param(&mut path, "recurse", None);
        Ok(self.get_json(&path).await?.unwrap_or_default())
    }

    /// `GET /v1/kv/<prefix>?keys[&separator=]`: the key names under `prefix`; with a
    /// separator, deeper keys fold into `dir/` entries.
    pub async fn kv_keys(&self, prefix: &str, separator: Option<&str>) -> Result<Vec<String>, ClientError> {
        let mut path = kv_path(prefix);
        append_param(&mut path, "keys", None);
        if let Some(sep) = separator.filter(|s| !s.is_empty()) {
            append_param(&mut path, "separator", Some(sep));
        }
        Ok(self.get_json(&path).await?.unwrap_or_default())
    }

    /// `PUT /v1/kv/<key>[?flags=&cas=]`: `false` when a check-and-set lost (`cas = Some(0)`
    /// means "only if absent").
    pub async fn kv_put(
        &self,
        key: &str,
        value: Vec<u8>,
        flags: Option<u64>,
        cas: Option<u64>,
    ) -> Result<bool, ClientError> {
        let mut path = kv_path(key);
        if let Some(flags) = flags {
            append_param(&mut path, "flags", Some(&flags.to_string()));
        }
        if let Some(cas) = cas {
            append_param(&mut path, "cas", Some(&cas.to_string()));
        }
        self.send_bool(Method::PUT, &path, Some(value)).await
    }

    /// `DELETE /v1/kv/<key>[?recurse]`.
    pub async fn kv_delete(&self, key: &str, recurse: bool) -> Result<bool, ClientError> {
        let mut path = kv_path(key);
        if recurse {
            append_param(&mut path, "recurse", None);
        }
        self.send_bool(Method::DELETE, &path, None).await
    }

    /// `DELETE /v1/kv/<key>?cas=<index>`: `false` when the key changed since `index`.
    pub async fn kv_delete_cas(&self, key: &str, index: u64) -> Result<bool, ClientError> {
        let mut path = kv_path(key);
        append_param(&mut path, "cas", Some(&index.to_string()));
        self.send_bool(Method::DELETE, &path, None).await
    }

    /// `GET /v1/catalog/datacenters`, nearest first.
    pub async fn catalog_datacenters(&self) -> Result<Vec<String>, ClientError> {
        self.get_required("/v1/catalog/datacenters").await
    }

    /// `GET /v1/catalog/nodes`.
    pub async fn catalog_nodes(&self) -> Result<Vec<CatalogNode>, ClientError> {
        self.get_required("/v1/catalog/nodes").await
    }

    /// `GET /v1/catalog/services`: service name → union of its tags.
    pub async fn catalog_services(&self) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        self.get_required("/v1/catalog/services").await
    }

    /// `GET /v1/agent/members[?wan]`: the agent's gossip view.
    pub async fn agent_members(&self, wan: bool) -> Result<Vec<Member>, ClientError> {
        let path = if wan { "/v1/agent/members?wan=1" } else { "/v1/agent/members" };
        self.get_required(path).await
    }

    /// `GET /v1/agent/self` as raw JSON (`Config`, `Member`, `Stats`, ...).
    pub async fn agent_self(&self) -> Result<serde_json::Value, ClientError> {
        self.get_required("/v1/agent/self").await
    }

    /// `PUT /v1/agent/leave`: the agent leaves the cluster and shuts down.
    pub async fn agent_leave(&self) -> Result<(), ClientError> {
        self.request(Method::PUT, "/v1/agent/leave", None).await?.error_for_status().map(drop)
    }

    /// `GET /v1/operator/keyring[?local-only&relay-factor=]`: one entry per gossip pool.
    pub async fn keyring_list(
        &self,
        local_only: bool,
        relay_factor: Option<u8>,
    ) -> Result<Vec<KeyringResponse>, ClientError> {
        let mut path = "/v1/operator/keyring".to_owned();
        if local_only {
            append_param(&mut path, "local-only", Some("true"));
        }
        if let Some(n) = relay_factor {
            append_param(&mut path, "relay-factor", Some(&n.to_string()));
        }
        self.get_required(&path).await
    }

    /// `POST /v1/operator/keyring`: installs `key` (base64) on every member.
    pub async fn keyring_install(&self, key: &str, relay_factor: Option<u8>) -> Result<(), ClientError> {
        self.keyring_change(Method::POST, key, relay_factor).await
    }

    /// `PUT /v1/operator/keyring`: every member encrypts with `key` from now on.
    pub async fn keyring_use(&self, key: &str, relay_factor: Option<u8>) -> Result<(), ClientError> {
        self.keyring_change(Method::PUT, key, relay_factor).await
    }

    /// `DELETE /v1/operator/keyring`: removes `key` from every member.
    pub async fn keyring_remove(&self, key: &str, relay_factor: Option<u8>) -> Result<(), ClientError> {
        self.keyring_change(Method::DELETE, key, relay_factor).await
    }

    async fn keyring_change(
        &self,
        method: Method,
        key: &str,
        relay_factor: Option<u8>,
    ) -> Result<(), ClientError> {
        let mut path = "/v1/operator/keyring".to_owned();
        if let Some(n) = relay_factor {
            append_param(&mut path, "relay-factor", Some(&n.to_string()));
        }
        let body = serde_json::json!({ "Key": key }).to_string().into_bytes();
        self.request(method, &path, Some(body)).await?.error_for_status().map(drop)
    }

    /// GET where a 404 is an error like any other non-2xx.
    async fn get_required<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.request(Method::GET, path, None).await?;
        response.error_for_status()?.json(path)
    }

    /// A write answered with a literal `true` / `false`.
    async fn send_bool(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<bool, ClientError> {
        let response = self.request(method, path, body).await?.error_for_status()?;
        if response.status == StatusCode::NO_CONTENT || response.body.is_empty() {
            return Ok(true);
        }
        response.json(path)
    }
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", escape_path(key))
}
