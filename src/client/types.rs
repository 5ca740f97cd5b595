//! Response shapes of the endpoints the typed helpers cover, in Consul's JSON spelling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One KV entry as `GET /v1/kv/<key>` returns it, with `Value` already base64-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KvEntry {
    /// Raft index that created the key.
    pub create_index: u64,
    /// Raft index of the last write.
    pub modify_index: u64,
    /// Number of successful lock acquisitions.
    pub lock_index: u64,
    /// The full key.
    pub key: String,
    /// Opaque client flags (u64: the Go lock helpers use values above 2^63).
    pub flags: u64,
    /// The value bytes; `None` when the API sent `null`.
    #[serde(with = "base64_value")]
    pub value: Option<Vec<u8>>,
    /// The session holding the lock, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl KvEntry {
    /// The value bytes, empty when the value is `null`.
    pub fn value_bytes(&self) -> &[u8] {
        self.value.as_deref().unwrap_or_default()
    }
}

/// One node of `GET /v1/catalog/nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CatalogNode {
    /// The node ID (a UUID).
    #[serde(rename = "ID")]
    pub id: String,
    /// The node name.
    pub node: String,
    /// The node's address.
    pub address: String,
    /// Its datacenter.
    pub datacenter: String,
    /// `lan`, `wan`, ... addresses; `null` on the wire becomes `None`.
    pub tagged_addresses: Option<BTreeMap<String, String>>,
    /// Node metadata.
    pub meta: Option<BTreeMap<String, String>>,
    /// Raft index that created the node.
    pub create_index: u64,
    /// Raft index of the last change.
    pub modify_index: u64,
}

/// One gossip member of `GET /v1/agent/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Member {
    /// The node name.
    pub name: String,
    /// The gossip address (an IP).
    pub addr: String,
    /// The gossip port.
    pub port: u16,
    /// Serf tags: `role` (`consul` for servers, `node` for clients), `dc`, `build`, `vsn`, ...
    pub tags: BTreeMap<String, String>,
    /// 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: u8,
    /// Lowest gossip protocol understood.
    pub protocol_min: u8,
    /// Highest gossip protocol understood.
    pub protocol_max: u8,
    /// Gossip protocol in use.
    pub protocol_cur: u8,
    /// Lowest delegate protocol understood.
    pub delegate_min: u8,
    /// Highest delegate protocol understood.
    pub delegate_max: u8,
    /// Delegate protocol in use.
    pub delegate_cur: u8,
}

impl Member {
    /// Serf's name for [`Member::status`]: `none`, `alive`, `leaving`, `left`, `failed`.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            0 => "none",
            1 => "alive",
            2 => "leaving",
            3 => "left",
            4 => "failed",
            _ => "unknown",
        }
    }

    /// True for servers (`role` tag `consul`).
    pub fn is_server(&self) -> bool {
        self.tags.get("role").is_some_and(|r| r == "consul")
    }
}

/// One gossip pool of `GET /v1/operator/keyring`: which keys its members hold and use.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyringResponse {
    /// True for the WAN pool.
    #[serde(rename = "WAN")]
    pub wan: bool,
    /// The pool's datacenter.
    pub datacenter: String,
    /// The network segment (always empty).
    pub segment: String,
    /// Node name → why that member failed.
    pub messages: BTreeMap<String, String>,
    /// Base64 key → how many members hold it.
    pub keys: BTreeMap<String, usize>,
    /// Base64 key → how many members encrypt with it.
    pub primary_keys: BTreeMap<String, usize>,
    /// Members asked.
    pub num_nodes: usize,
}

/// The keys are secrets: Debug shows how many there are.
impl std::fmt::Debug for KeyringResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringResponse")
            .field("wan", &self.wan)
            .field("datacenter", &self.datacenter)
            .field("keys", &self.keys.len())
            .field("primary_keys", &self.primary_keys.len())
            .field("num_nodes", &self.num_nodes)
            .field("messages", &self.messages)
            .finish()
    }
}

/// `Value` on the wire: base64 text or `null`.
mod base64_value {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        STANDARD.decode(text.as_bytes()).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_entry_decodes_base64_and_null() {
        let json = r#"[{"CreateIndex":5,"ModifyIndex":7,"LockIndex":0,"Key":"a/b","Flags":16210313421097356768,"Value":"aGVsbG8="},
                      {"CreateIndex":1,"ModifyIndex":1,"LockIndex":1,"Key":"c","Flags":0,"Value":null,"Session":"s1"}]"#;
        let entries: Vec<KvEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(entries[0].value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(entries[0].flags, 0xe0f6_9a2b_aa41_4de0);
        assert_eq!(entries[1].value, None);
        assert_eq!(entries[1].value_bytes(), b"");
        assert_eq!(entries[1].session.as_deref(), Some("s1"));
        let back = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(back["Value"], "aGVsbG8=");
        assert!(back.get("Session").is_none());
    }

    #[test]
    fn member_status_and_role() {
        let m: Member = serde_json::from_str(
            r#"{"Name":"n1","Addr":"10.0.0.1","Port":8301,"Tags":{"role":"consul"},"Status":1}"#,
        )
        .unwrap();
        assert_eq!(m.status_name(), "alive");
        assert!(m.is_server());
    }
}
