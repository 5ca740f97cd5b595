//! The `acl { … }` stanza: parsed once, with errors that name the key.

use std::time::Duration;

use sekisho_acl::DefaultPolicy;
use serde_json::Value;

/// What to do when the servers cannot resolve a token (`acl.down_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownPolicy {
    /// Keep using cached entries past their TTL; uncached tokens get the default policy.
    ExtendCache,
    /// Like extend-cache (the refresh happens on the next request either way here).
    AsyncCache,
    /// Allow everything.
    Allow,
    /// Deny everything.
    Deny,
}

/// The tokens an agent holds (`acl.tokens`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgentTokens {
    /// `initial_management` (formerly `master`): created by the leader when missing.
    pub initial_management: Option<String>,
    /// `default`: used for requests that present no token (and for DNS).
    pub default: Option<String>,
    /// `agent`: the agent's own calls.
    pub agent: Option<String>,
    /// `agent_recovery` (formerly `agent_master`): agent endpoints even without servers.
    pub agent_recovery: Option<String>,
    /// `replication`: secondary datacenters' replication (federation).
    pub replication: Option<String>,
}

impl std::fmt::Debug for AgentTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("AgentTokens")
            .field("initial_management", &set(&self.initial_management))
            .field("default", &set(&self.default))
            .field("agent", &set(&self.agent))
            .field("agent_recovery", &set(&self.agent_recovery))
            .field("replication", &set(&self.replication))
            .finish()
    }
}

/// The parsed `acl` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclConfig {
    /// `enabled`.
    pub enabled: bool,
    /// `default_policy` (allow unless set).
    pub default_policy: DefaultPolicy,
    /// `down_policy` (extend-cache unless set).
    pub down_policy: DownPolicy,
    /// `token_ttl` (30s): how long client agents cache a resolved token.
    pub token_ttl: Duration,
    /// `enable_key_list_policy`.
    pub enable_key_list_policy: bool,
    /// `enable_token_persistence`.
    pub enable_token_persistence: bool,
    /// `enable_token_replication`: secondary datacenters copy the primary's global tokens
    /// (policies and roles are always copied).
    pub enable_token_replication: bool,
    /// `tokens`.
    pub tokens: AgentTokens,
    /// `audit`: the denial log (beyond Consul OSS).
    pub audit: super::audit::AuditConfig,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_policy: DefaultPolicy::Allow,
            down_policy: DownPolicy::ExtendCache,
            token_ttl: Duration::from_secs(30),
            enable_key_list_policy: false,
            enable_token_persistence: false,
            enable_token_replication: false,
            tokens: AgentTokens::default(),
            audit: super::audit::AuditConfig::default(),
        }
    }
}

fn boolean(v: &Value, key: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(format!("acl.{key}: expected a boolean, found {other}")),
    }
}

fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("acl.{key}: expected a string, found {v}"))
}

impl AclConfig {
    /// Parses the stanza as the config loader kept it (`Null` when absent).
    pub fn parse(v: &Value) -> Result<AclConfig, String> {
        let mut c = AclConfig::default();
        let obj = match v {
            Value::Null => return Ok(c),
            Value::Object(o) => o,
            other => return Err(format!("acl: expected an object, found {other}")),
        };
        for (key, val) in obj {
            match key.as_str() {
                "enabled" => c.enabled = boolean(val, key)?,
                "default_policy" => {
                    c.default_policy = match string(val, key)? {
                        "allow" => DefaultPolicy::Allow,
                        "deny" => DefaultPolicy::Deny,
                        p => {
                            return Err(format!(
                                "acl.default_policy must be \"allow\" or \"deny\", not {p:?}"
                            ));
                        }
                    }
                }
                "down_policy" => {
                    c.down_policy = match string(val, key)? {
                        "extend-cache" => DownPolicy::ExtendCache,
                        "async-cache" => DownPolicy::AsyncCache,
                        "allow" => DownPolicy::Allow,
                        "deny" => DownPolicy::Deny,
                        p => {
                            return Err(format!(
                                "acl.down_policy must be one of extend-cache, async-cache, allow, deny, not {p:?}"
                            ));
                        }
                    }
                }
                "token_ttl" => {
                    c.token_ttl = crate::config::parse_go_duration(string(val, key)?)
                        .map_err(|e| format!("acl.token_ttl: {e}"))?;
                }
                // Policies and roles are compiled with each token here; their TTLs are the token's.
                "policy_ttl" | "role_ttl" => {
                    crate::config::parse_go_duration(string(val, key)?)
                        .map_err(|e| format!("acl.{key}: {e}"))?;
                }
                "enable_key_list_policy" => c.enable_key_list_policy = boolean(val, key)?,
                "enable_token_persistence" => c.enable_token_persistence = boolean(val, key)?,
                "enable_token_replication" => c.enable_token_replication = boolean(val, key)?,
                "tokens" => c.tokens = tokens(val)?,
                "audit" => c.audit = super::audit::AuditConfig::parse(val)?,
                other => return Err(format!("acl: unknown key {other:?}")),
            }
        }
        Ok(c)
    }
}

fn tokens(v: &Value) -> Result<AgentTokens, String> {
    let Value::Object(o) = v else { return Err(format!("acl.tokens: expected an object, found {v}")) };
    let mut t = AgentTokens::default();
    for (key, val) in o {
        let s = val.as_str().ok_or_else(|| format!("acl.tokens.{key}: expected a string"))?.to_owned();
        let s = Some(s).filter(|s| !s.is_empty());
        match key.as_str() {
            "initial_management" | "master" => t.initial_management = s,
            "default" => t.default = s,
            "agent" => t.agent = s,
            "agent_recovery" | "agent_master" => t.agent_recovery = s,
            "replication" => t.replication = s,
            "config_file_service_registration" | "dns" => {}
            other => return Err(format!("acl.tokens: unknown key {other:?}")),
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_spellings_and_errors() {
        assert_eq!(AclConfig::parse(&Value::Null), Ok(AclConfig::default()));
        let c = AclConfig::parse(&json!({
            "enabled": true, "default_policy": "deny", "down_policy": "allow", "token_ttl": "5s",
            "tokens": {"master": "m-s3cr3t", "agent_master": "r-s3cr3t", "default": "d-s3cr3t", "agent": ""}
        }))
        .expect("parses");
        assert!(c.enabled);
        assert_eq!(c.default_policy, DefaultPolicy::Deny);
        assert_eq!(c.down_policy, DownPolicy::Allow);
        assert_eq!(c.token_ttl, Duration::from_secs(5));
        assert_eq!(c.tokens.initial_management.as_deref(), Some("m-s3cr3t"));
        assert_eq!(c.tokens.agent_recovery.as_deref(), Some("r-s3cr3t"));
        assert_eq!(c.tokens.agent, None, "an empty token is no token");
        assert!(!format!("{:?}", c.tokens).contains("s3cr3t"), "no secret in debug output");
        for (bad, msg) in [
            (
                json!({"default_policy": "maybe"}),
                "acl.default_policy must be \"allow\" or \"deny\", not \"maybe\"",
            ),
            (json!({"down_policy": "x"}), "acl.down_policy must be one of"),
            (json!({"enabled": 3}), "acl.enabled: expected a boolean"),
            (json!({"tokenz": {}}), "acl: unknown key \"tokenz\""),
            (json!({"tokens": {"nope": "x"}}), "acl.tokens: unknown key \"nope\""),
            (json!({"token_ttl": "soon"}), "acl.token_ttl:"),
        ] {
            let e = AclConfig::parse(&bad).expect_err("refused");
            assert!(e.starts_with(msg), "{e} should start with {msg}");
        }
    }
}
