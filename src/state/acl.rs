//! ACL objects: tokens, policies, roles, auth methods and binding rules (Consul's
//! `acl-tokens`, `acl-policies`, `acl-roles`, `acl-auth-methods`, `acl-binding-rules` tables),
//! the bootstrap marker, and the built-in anonymous token and `global-management` policy.
//!
//! ```text
//!  HTTP handler ─ validate, resolve names to IDs, stamp times ─► Command::Acl* ─► acl_apply
//!  acl_apply: uniqueness (names, IDs, secrets), links to existing objects, bootstrap once
//!  token resolution: secret ─(constant-time scan)─► token ─► policies + roles + identities
//! ```
//!
//! Rows store links by ID; names are filled in when rows are read ([`AclTables::policy_links`]),
//! so renaming a policy is seen by every token, and a deleted policy silently drops out of
//! the tokens that linked it, as in Consul.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use sekisho_wan::replication::Diff;

use super::Store;
use super::store::Table;

mod auth;
pub use auth::{AUTH_METHOD_TYPES, AclAuthMethod, AclBindingRule, BindType, TokenLocality};

/// The built-in `global-management` policy's ID.
pub const MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The built-in anonymous token's AccessorID.
pub const ANONYMOUS_ACCESSOR_ID: &str = "00000000-0000-0000-0000-000000000002";
/// The anonymous token's SecretID.
pub const ANONYMOUS_SECRET_ID: &str = "anonymous";

/// A link to a policy or role: stored by ID, shown with its current name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Link {
    /// The linked object's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name (filled in when read).
    #[serde(rename = "Name")]
    pub name: String,
}

/// A service identity (`{ServiceName, Datacenters}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    /// The service's name.
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    /// Where it applies (empty: everywhere).
    #[serde(rename = "Datacenters", default, skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// A node identity (`{NodeName, Datacenter}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The node's name.
    #[serde(rename = "NodeName")]
    pub node_name: String,
    /// The datacenter it applies in.
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
}

/// A token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclToken {
    /// The public handle.
    pub accessor_id: String,
    /// The bearer credential (never logged).
    pub secret_id: String,
    /// Free text.
    pub description: String,
    /// Linked policies.
    pub policies: Vec<Link>,
    /// Linked roles.
    pub roles: Vec<Link>,
    /// Service identities.
    pub service_identities: Vec<ServiceIdentity>,
    /// Node identities.
    pub node_identities: Vec<NodeIdentity>,
    /// Datacenter-local (never replicated).
    pub local: bool,
    /// The auth method that minted it (login tokens); empty for the others.
    #[serde(default)]
    pub auth_method: String,
    /// Unix seconds after which the token is invalid (0: never).
    pub expiration_time: u64,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

impl std::fmt::Debug for AclToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclToken")
            .field("accessor_id", &self.accessor_id)
            .field("description", &self.description)
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

/// A policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicy {
    /// Its ID.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The rules, HCL or JSON text, as written.
    pub rules: String,
    /// Where it applies (empty: everywhere).
    pub datacenters: Vec<String>,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

/// A role: a named bundle of policies and identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRole {
    /// Its ID.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Linked policies.
    pub policies: Vec<Link>,
    /// Service identities.
    pub service_identities: Vec<ServiceIdentity>,
    /// Node identities.
    pub node_identities: Vec<NodeIdentity>,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

/// The ACL tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AclTables {
    /// Tokens by AccessorID.
    pub tokens: BTreeMap<String, AclToken>,
    /// Policies by ID.
    pub policies: BTreeMap<String, AclPolicy>,
    /// Roles by ID.
    pub roles: BTreeMap<String, AclRole>,
    /// The Raft index of the last bootstrap (0: never bootstrapped).
    pub bootstrap_index: u64,
    /// Auth methods by name.
    #[serde(default)]
    pub auth_methods: BTreeMap<String, AclAuthMethod>,
    /// Binding rules by ID.
    #[serde(default)]
    pub binding_rules: BTreeMap<String, AclBindingRule>,
}

/// An ACL write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclOp {
    /// Creates the built-in anonymous token and `global-management` policy when missing,
    /// and the `initial_management` token when given and missing (a new leader's setup).
    Init {
        /// `acl.tokens.initial_management` (AccessorID chosen by the proposer, SecretID), if set.
        initial_management: Option<(String, String)>,
        /// RFC 3339 time for the objects created.
        now: String,
    },
    /// `PUT /v1/acl/bootstrap`: creates a management token once. `reset_index` is the index
    /// the operator wrote into `acl-bootstrap-reset` (allows one more bootstrap).
    Bootstrap {
        /// The new management token.
        token: AclToken,
        /// The reset file's index, if the file exists.
        reset_index: Option<u64>,
        /// Beyond Consul: with an accepted reset, delete every earlier token that links
        /// `global-management` (a lost or leaked bootstrap token stops working).
        #[serde(default)]
        revoke_management: bool,
    },
    /// Creates (`create`) or updates a token.
    TokenSet {
        /// The token (links by ID).
        token: AclToken,
        /// Create: the AccessorID and SecretID must be new.
        create: bool,
    },
    /// Deletes tokens by AccessorID (logout, delete, expiry reaping).
    TokenDelete(Vec<String>),
    /// Creates or updates a policy.
    PolicySet(AclPolicy),
    /// Deletes a policy by ID.
    PolicyDelete(String),
    /// Creates or updates a role.
    RoleSet(AclRole),
    /// Deletes a role by ID.
    RoleDelete(String),
    /// Creates or replaces an auth method (by name; its Type may not change).
    AuthMethodSet(AclAuthMethod),
    /// Deletes an auth method by name, with its binding rules and the tokens it minted.
    AuthMethodDelete(String),
    /// Creates (`create`: the ID must be new) or updates a binding rule; its auth method
    /// must exist.
    BindingRuleSet {
        /// The rule.
        rule: AclBindingRule,
        /// Create rather than update.
        create: bool,
    },
    /// Deletes a binding rule by ID.
    BindingRuleDelete(String),
    /// A secondary datacenter's leader brings its copy of the primary's global objects up to
    /// date (`acl::replication`). Local tokens are never touched. Objects get this
    /// datacenter's Raft indexes.
    Replicate {
        /// Policy changes.
        policies: Diff<AclPolicy>,
        /// Role changes.
        roles: Diff<AclRole>,
        /// Global token changes (`enable_token_replication`).
        tokens: Option<Diff<AclToken>>,
    },
}

/// The result of an [`AclOp`]: the index it committed at, or Consul's error text.
pub type AclResult = Result<u64, String>;

/// Applies `op` at Raft index `idx`. Checks that need the whole state are here, so that two
/// concurrent writes cannot both pass them.
pub fn acl_apply(st: &mut Store, idx: u64, op: &AclOp) -> AclResult {
    match op {
        AclOp::Init { initial_management, now } => {
            init(st, idx, initial_management.as_ref(), now);
            Ok(idx)
        }
        AclOp::Bootstrap { token, reset_index, revoke_management } => {
            let done = st.acl.bootstrap_index;
            if done != 0 && *reset_index != Some(done) {
                return Err(format!("ACL bootstrap no longer allowed (reset index: {done})"));
            }
            check_new_token(&st.acl, token)?;
            if *revoke_management && done != 0 {
                let old = st.acl.management_tokens();
                if !old.is_empty() {
                    for id in &old {
                        st.acl.tokens.remove(id);
                    }
                    st.bump(Table::AclTokens, idx);
                }
            }
            // A bootstrap that wins the race with the new leader's setup creates the
            // built-ins itself, so that its token links a policy that exists.
            init(st, idx, None, &token.create_time);
            insert_token(st, idx, token.clone());
            st.acl.bootstrap_index = idx;
            Ok(idx)
        }
        AclOp::TokenSet { token, create } => {
            let acl = &st.acl;
            if *create {
                check_new_token(acl, token)?;
            } else {
                let Some(old) = acl.tokens.get(&token.accessor_id) else {
                    return Err(format!("Cannot find token {:?}", token.accessor_id));
                };
                if old.secret_id != token.secret_id {
                    return Err("Cannot change a token's SecretID".into());
                }
            }
            check_links(acl, &token.policies, &token.roles)?;
            if !token.auth_method.is_empty() && !acl.auth_methods.contains_key(&token.auth_method) {
                return Err(format!("No such auth method with Name: {:?}", token.auth_method));
            }
            let mut t = token.clone();
            if let Some(old) = st.acl.tokens.get(&t.accessor_id) {
                t.create_index = old.create_index;
                t.create_time = old.create_time.clone();
            }
            insert_token(st, idx, t);
            Ok(idx)
        }
        AclOp::TokenDelete(ids) => {
            if ids.iter().any(|id| id == ANONYMOUS_ACCESSOR_ID) {
                return Err("Delete operation not permitted on the anonymous token".into());
            }
            let mut any = false;
            for id in ids {
                any |= st.acl.tokens.remove(id).is_some();
            }
            if any {
                st.bump(Table::AclTokens, idx);
            }
            Ok(idx)
        }
        AclOp::PolicySet(p) => {
            if let Some(other) = st.acl.policies.values().find(|o| o.name == p.name && o.id != p.id) {
                return Err(format!("Invalid Policy: A Policy with Name {:?} already exists", other.name));
            }
            if p.id == MANAGEMENT_POLICY_ID
                && st.acl.policies.get(&p.id).is_some_and(|old| old.rules != p.rules)
            {
                return Err(
                    "Changing the Rules for the builtin global-management policy is not permitted".into()
                );
            }
            let mut p = p.clone();
            p.create_index = st.acl.policies.get(&p.id).map_or(idx, |o| o.create_index);
            p.modify_index = idx;
            st.acl.policies.insert(p.id.clone(), p);
            st.bump(Table::AclPolicies, idx);
            Ok(idx)
        }
        AclOp::PolicyDelete(id) => {
            if id == MANAGEMENT_POLICY_ID {
                return Err("Delete operation not permitted on the builtin global-management policy".into());
            }
            if st.acl.policies.remove(id).is_some() {
                st.bump(Table::AclPolicies, idx);
            }
            Ok(idx)
        }
        AclOp::RoleSet(r) => {
            if let Some(other) = st.acl.roles.values().find(|o| o.name == r.name && o.id != r.id) {
                return Err(format!("Invalid Role: A Role with Name {:?} already exists", other.name));
            }
            check_links(&st.acl, &r.policies, &[])?;
            let mut r = r.clone();
            r.create_index = st.acl.roles.get(&r.id).map_or(idx, |o| o.create_index);
            r.modify_index = idx;
            st.acl.roles.insert(r.id.clone(), r);
            st.bump(Table::AclRoles, idx);
            Ok(idx)
        }
        AclOp::RoleDelete(id) => {
            if st.acl.roles.remove(id).is_some() {
                st.bump(Table::AclRoles, idx);
            }
            Ok(idx)
        }
        AclOp::AuthMethodSet(m) => auth::auth_method_set(st, idx, m),
        AclOp::AuthMethodDelete(name) => auth::auth_method_delete(st, idx, name),
        AclOp::BindingRuleSet { rule, create } => auth::binding_rule_set(st, idx, rule, *create),
        AclOp::BindingRuleDelete(id) => auth::binding_rule_delete(st, idx, id),
        AclOp::Replicate { policies, roles, tokens } => {
            replicate(st, idx, policies, roles, tokens.as_ref());
            Ok(idx)
        }
    }
}

fn replicate(
    st: &mut Store,
    idx: u64,
    policies: &Diff<AclPolicy>,
    roles: &Diff<AclRole>,
    tokens: Option<&Diff<AclToken>>,
) {
    let (mut t_changed, mut r_changed, mut p_changed) = (false, false, false);
    if let Some(tokens) = tokens {
        for id in &tokens.delete {
            if st.acl.tokens.get(id).is_some_and(|t| !t.local) {
                st.acl.tokens.remove(id);
                t_changed = true;
            }
        }
    }
    for id in &roles.delete {
        r_changed |= st.acl.roles.remove(id).is_some();
    }
    for id in &policies.delete {
        if id != MANAGEMENT_POLICY_ID {
            p_changed |= st.acl.policies.remove(id).is_some();
        }
    }
    for p in &policies.upsert {
        let mut p = p.clone();
        p.create_index = st.acl.policies.get(&p.id).map_or(idx, |o| o.create_index);
        p.modify_index = idx;
        // A name taken by another ID here gives way to the primary's object.
        st.acl.policies.retain(|id, o| o.name != p.name || *id == p.id);
        st.acl.policies.insert(p.id.clone(), p);
        p_changed = true;
    }
    for r in &roles.upsert {
        let mut r = r.clone();
        r.create_index = st.acl.roles.get(&r.id).map_or(idx, |o| o.create_index);
        r.modify_index = idx;
        st.acl.roles.retain(|id, o| o.name != r.name || *id == r.id);
        st.acl.roles.insert(r.id.clone(), r);
        r_changed = true;
    }
    for t in tokens.map(|t| t.upsert.as_slice()).unwrap_or_default() {
        if t.local || st.acl.tokens.get(&t.accessor_id).is_some_and(|o| o.local) {
            continue;
        }
        let mut t = t.clone();
        t.create_index = st.acl.tokens.get(&t.accessor_id).map_or(0, |o| o.create_index);
        insert_token(st, idx, t);
        t_changed = true;
    }
    for (changed, table) in
        [(t_changed, Table::AclTokens), (r_changed, Table::AclRoles), (p_changed, Table::AclPolicies)]
    {
        if changed {
            st.bump(table, idx);
        }
    }
}

fn check_new_token(acl: &AclTables, t: &AclToken) -> Result<(), String> {
    if acl.tokens.contains_key(&t.accessor_id) {
        return Err("Invalid Token: AccessorID is already in use".into());
    }
    if acl.tokens.values().any(|o| ct_eq(&o.secret_id, &t.secret_id)) {
        return Err("Invalid Token: SecretID is already in use".into());
    }
    Ok(())
}

fn check_links(acl: &AclTables, policies: &[Link], roles: &[Link]) -> Result<(), String> {
    if let Some(p) = policies.iter().find(|p| !acl.policies.contains_key(&p.id)) {
        return Err(format!("No such ACL policy with ID {:?}", p.id));
    }
    if let Some(r) = roles.iter().find(|r| !acl.roles.contains_key(&r.id)) {
        return Err(format!("No such ACL role with ID {:?}", r.id));
    }
    Ok(())
}

fn insert_token(st: &mut Store, idx: u64, mut t: AclToken) {
    if t.create_index == 0 {
        t.create_index = idx;
    }
    t.modify_index = idx;
    st.acl.tokens.insert(t.accessor_id.clone(), t);
    st.bump(Table::AclTokens, idx);
}

fn init(st: &mut Store, idx: u64, initial_management: Option<&(String, String)>, now: &str) {
    if !st.acl.policies.contains_key(MANAGEMENT_POLICY_ID) {
        let p = AclPolicy {
            id: MANAGEMENT_POLICY_ID.into(),
            name: "global-management".into(),
            description: "Builtin Policy that grants unlimited access".into(),
            rules: MANAGEMENT_RULES.into(),
            datacenters: Vec::new(),
            create_index: idx,
            modify_index: idx,
        };
        st.acl.policies.insert(p.id.clone(), p);
        st.bump(Table::AclPolicies, idx);
    }
    if !st.acl.tokens.contains_key(ANONYMOUS_ACCESSOR_ID) {
        let t = AclToken {
            accessor_id: ANONYMOUS_ACCESSOR_ID.into(),
            secret_id: ANONYMOUS_SECRET_ID.into(),
            description: "Anonymous Token".into(),
            create_time: now.into(),
            ..AclToken::empty()
        };
        insert_token(st, idx, t);
    }
    if let Some((accessor, secret)) = initial_management.filter(|(_, s)| !s.is_empty())
        && !st.acl.tokens.values().any(|t| ct_eq(&t.secret_id, secret))
    {
        let t = AclToken {
            accessor_id: accessor.clone(),
            secret_id: secret.clone(),
            description: "Initial Management Token".into(),
            policies: vec![Link { id: MANAGEMENT_POLICY_ID.into(), name: String::new() }],
            create_time: now.into(),
            ..AclToken::empty()
        };
        if !st.acl.tokens.contains_key(&t.accessor_id) {
            insert_token(st, idx, t);
            // As in Consul, installing the initial management token is the bootstrap.
            if st.acl.bootstrap_index == 0 {
                st.acl.bootstrap_index = idx;
            }
        }
    }
}

/// The rules text Consul shows for `global-management`.
pub const MANAGEMENT_RULES: &str = r#"acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"#;

impl AclToken {
    /// A token with nothing set.
    pub fn empty() -> AclToken {
        AclToken {
            accessor_id: String::new(),
            secret_id: String::new(),
            description: String::new(),
            policies: Vec::new(),
            roles: Vec::new(),
            service_identities: Vec::new(),
            node_identities: Vec::new(),
            local: false,
            auth_method: String::new(),
            expiration_time: 0,
            create_time: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Whether it has expired at `now_unix`.
    pub fn expired(&self, now_unix: u64) -> bool {
        self.expiration_time != 0 && self.expiration_time <= now_unix
    }
}

impl AclTables {
    /// The token whose SecretID is `secret`, compared in constant time against every token
    /// so that the time taken does not depend on how much of a secret matched.
    pub fn token_by_secret(&self, secret: &str) -> Option<&AclToken> {
        let mut found = None;
        for t in self.tokens.values() {
            if ct_eq(&t.secret_id, secret) && found.is_none() {
                found = Some(t);
            }
        }
        found
    }

    /// The policy named `name`.
    pub fn policy_by_name(&self, name: &str) -> Option<&AclPolicy> {
        self.policies.values().find(|p| p.name == name)
    }

    /// The role named `name`.
    pub fn role_by_name(&self, name: &str) -> Option<&AclRole> {
        self.roles.values().find(|r| r.name == name)
    }

    /// Links with current names; links to deleted objects are dropped.
    pub fn policy_links(&self, links: &[Link]) -> Vec<Link> {
        links
            .iter()
            .filter_map(|l| self.policies.get(&l.id).map(|p| Link { id: p.id.clone(), name: p.name.clone() }))
            .collect()
    }

    /// Role links with current names; links to deleted roles are dropped.
    pub fn role_links(&self, links: &[Link]) -> Vec<Link> {
        links
            .iter()
            .filter_map(|l| self.roles.get(&l.id).map(|r| Link { id: r.id.clone(), name: r.name.clone() }))
            .collect()
    }

    /// The AccessorIDs of the tokens that link `global-management`.
    pub fn management_tokens(&self) -> Vec<String> {
        self.tokens
            .values()
            .filter(|t| t.policies.iter().any(|l| l.id == MANAGEMENT_POLICY_ID))
            .map(|t| t.accessor_id.clone())
            .collect()
    }

    /// The tokens whose expiration time has passed at `now_unix` (the leader reaps them).
    pub fn expired_tokens(&self, now_unix: u64) -> Vec<String> {
        self.tokens.values().filter(|t| t.expired(now_unix)).map(|t| t.accessor_id.clone()).collect()
    }
}

/// Constant-time string equality (the lengths may leak, not the contents).
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(accessor: &str, secret: &str) -> AclToken {
        AclToken { accessor_id: accessor.into(), secret_id: secret.into(), ..AclToken::empty() }
    }

    fn policy(id: &str, name: &str) -> AclPolicy {
        AclPolicy {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            rules: String::new(),
            datacenters: Vec::new(),
            create_index: 0,
            modify_index: 0,
        }
    }

    #[test]
    fn init_creates_the_builtins_once_and_the_initial_management_token() {
        let mut st = Store::default();
        let root = Some(("root-accessor".to_owned(), "root-secret".to_owned()));
        let op = AclOp::Init { initial_management: root, now: "t".into() };
        acl_apply(&mut st, 5, &op).expect("init");
        acl_apply(&mut st, 6, &op).expect("again");
        assert_eq!(st.acl.tokens.len(), 2);
        assert_eq!(st.acl.tokens[ANONYMOUS_ACCESSOR_ID].modify_index, 5, "the second init changes nothing");
        let root = st.acl.token_by_secret("root-secret").expect("initial management token");
        assert_eq!(root.policies[0].id, MANAGEMENT_POLICY_ID);
        assert_eq!(st.acl.policies[MANAGEMENT_POLICY_ID].name, "global-management");
        assert_eq!(
            st.acl.token_by_secret(ANONYMOUS_SECRET_ID).map(|t| t.accessor_id.as_str()),
            Some(ANONYMOUS_ACCESSOR_ID)
        );
    }

    #[test]
    fn bootstrap_works_once_then_only_with_the_reset_index() {
        let mut st = Store::default();
        let boot = |st: &mut Store, idx, a: &str, reset| {
            acl_apply(
                st,
                idx,
                &AclOp::Bootstrap {
                    token: token(a, &format!("s-{a}")),
                    reset_index: reset,
                    revoke_management: false,
                },
            )
        };
        assert_eq!(boot(&mut st, 10, "a", None), Ok(10));
        assert_eq!(
            boot(&mut st, 11, "b", None),
            Err("ACL bootstrap no longer allowed (reset index: 10)".into())
        );
        assert_eq!(
            boot(&mut st, 12, "b", Some(9)),
            Err("ACL bootstrap no longer allowed (reset index: 10)".into())
        );
        assert!(!st.acl.tokens.contains_key("b"), "a refused bootstrap changes nothing");
        assert_eq!(boot(&mut st, 13, "b", Some(10)), Ok(13));
        assert_eq!(st.acl.bootstrap_index, 13);
        assert_eq!(
            boot(&mut st, 14, "c", Some(10)),
            Err("ACL bootstrap no longer allowed (reset index: 13)".into())
        );
    }

    #[test]
    fn uniqueness_links_and_builtins_are_enforced() {
        let mut st = Store::default();
        acl_apply(&mut st, 1, &AclOp::Init { initial_management: None, now: String::new() }).expect("init");
        acl_apply(&mut st, 2, &AclOp::PolicySet(policy("p1", "ops"))).expect("policy");
        let dup = acl_apply(&mut st, 3, &AclOp::PolicySet(policy("p2", "ops")));
        assert_eq!(dup, Err("Invalid Policy: A Policy with Name \"ops\" already exists".into()));
        let mut t = token("t1", "s1");
        t.policies = vec![Link { id: "nope".into(), name: String::new() }];
        let bad = acl_apply(&mut st, 4, &AclOp::TokenSet { token: t.clone(), create: true });
        assert_eq!(bad, Err("No such ACL policy with ID \"nope\"".into()));
        t.policies = vec![Link { id: "p1".into(), name: String::new() }];
        acl_apply(&mut st, 5, &AclOp::TokenSet { token: t.clone(), create: true }).expect("token");
        let again = acl_apply(&mut st, 6, &AclOp::TokenSet { token: token("t2", "s1"), create: true });
        assert_eq!(again, Err("Invalid Token: SecretID is already in use".into()));
        assert_eq!(st.acl.policy_links(&st.acl.tokens["t1"].policies)[0].name, "ops");
        acl_apply(&mut st, 7, &AclOp::PolicyDelete("p1".into())).expect("delete");
        assert!(st.acl.policy_links(&st.acl.tokens["t1"].policies).is_empty(), "a deleted policy drops out");
        let anon = acl_apply(&mut st, 8, &AclOp::TokenDelete(vec![ANONYMOUS_ACCESSOR_ID.into()]));
        assert!(anon.is_err());
        let gm = acl_apply(&mut st, 9, &AclOp::PolicyDelete(MANAGEMENT_POLICY_ID.into()));
        assert!(gm.is_err());
        let mut renamed = st.acl.policies[MANAGEMENT_POLICY_ID].clone();
        renamed.name = "root".into();
        acl_apply(&mut st, 10, &AclOp::PolicySet(renamed.clone())).expect("the name may change");
        renamed.rules = "acl = \"read\"".into();
        assert!(acl_apply(&mut st, 11, &AclOp::PolicySet(renamed)).is_err(), "the rules may not");
        assert_eq!(st.index(Table::AclPolicies), 10);
    }

    #[test]
    fn secrets_compare_in_constant_time_and_stay_out_of_debug_output() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
        let t = token("acc", "top-secret-value");
        assert!(!format!("{t:?}").contains("top-secret"));
        let mut acl = AclTables::default();
        acl.tokens.insert("acc".into(), t);
        assert!(acl.token_by_secret("top-secret-value").is_some());
        assert!(acl.token_by_secret("top-secret-valuE").is_none());
    }
}
