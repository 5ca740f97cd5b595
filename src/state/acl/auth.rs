//! Auth methods and binding rules (Consul's `acl-auth-methods` and `acl-binding-rules`
//! tables), and the FSM checks that keep them consistent.
//!
//! ```text
//!  AuthMethodSet ─► type is "jwt", Type never changes ─► auth_methods[name]
//!  BindingRuleSet ─► its auth method exists, IDs unique, AuthMethod never changes ─► binding_rules[id]
//!  AuthMethodDelete ─► the method, its binding rules and every token it minted
//! ```
//!
//! The HTTP layer checks the method's Config (keys, claim mappings) and the rule's selector
//! and bind name before proposing; the FSM re-checks only what depends on the whole state.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AclResult, AclTables, Store, Table};

/// The auth method types Sekisho can validate logins for.
pub const AUTH_METHOD_TYPES: [&str; 1] = ["jwt"];

/// Where the tokens an auth method mints live (`TokenLocality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TokenLocality {
    /// Datacenter-local tokens (Consul's default).
    #[default]
    Local,
    /// Global tokens.
    Global,
}

impl TokenLocality {
    /// Consul's spelling: `local` or `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenLocality::Local => "local",
            TokenLocality::Global => "global",
        }
    }
}

/// An auth method: how login bearer tokens are validated and what the minted tokens get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclAuthMethod {
    /// Its unique name.
    pub name: String,
    /// Its type (only `jwt`).
    pub type_: String,
    /// The name shown in UIs (may be empty).
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// The lifetime of minted tokens (zero: they do not expire).
    pub max_token_ttl: Duration,
    /// Whether minted tokens are local or global.
    pub token_locality: TokenLocality,
    /// The type-specific configuration, as written (checked when written).
    pub config: serde_json::Value,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

/// What a binding rule binds a login token to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindType {
    /// A service identity named BindName.
    Service,
    /// A node identity named BindName (in this datacenter).
    Node,
    /// The role named BindName, if it exists.
    Role,
    /// The policy named BindName, if it exists.
    Policy,
}

impl BindType {
    /// Every bind type, in Consul's order.
    pub const ALL: [BindType; 4] = [BindType::Service, BindType::Node, BindType::Role, BindType::Policy];

    /// Consul's spelling: `service`, `node`, `role` or `policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            BindType::Service => "service",
            BindType::Node => "node",
            BindType::Role => "role",
            BindType::Policy => "policy",
        }
    }

    /// The bind type Consul spells `s`.
    pub fn parse(s: &str) -> Option<BindType> {
        BindType::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// A binding rule: when a login's verified claims match `selector`, the token gets the
/// identity, role or policy that `bind_name` names once interpolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclBindingRule {
    /// Its ID (a UUID).
    pub id: String,
    /// Free text.
    pub description: String,
    /// The auth method it belongs to.
    pub auth_method: String,
    /// A bexpr over `value.<attribute>` and `list.<attribute>` (empty: always matches).
    pub selector: String,
    /// What it binds.
    pub bind_type: BindType,
    /// The name bound, with `${value.<attribute>}` placeholders.
    pub bind_name: String,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

/// `AuthMethodSet`: creates or replaces an auth method (its Type may not change).
pub(super) fn auth_method_set(st: &mut Store, idx: u64, m: &AclAuthMethod) -> AclResult {
    if !AUTH_METHOD_TYPES.contains(&m.type_.as_str()) {
        return Err(format!(
            "Invalid Auth Method: Type should be one of: {AUTH_METHOD_TYPES:?} (not {:?})",
            m.type_
        ));
    }
    let old = st.acl.auth_methods.get(&m.name);
    if let Some(old) = old
        && old.type_ != m.type_
    {
        return Err("Invalid Auth Method: the Type field is immutable".into());
    }
    let mut m = m.clone();
    m.create_index = old.map_or(idx, |o| o.create_index);
    m.modify_index = idx;
    st.acl.auth_methods.insert(m.name.clone(), m);
    st.bump(Table::AclAuthMethods, idx);
    Ok(idx)
}

/// `AuthMethodDelete`: the method, its binding rules and the tokens it minted (Consul does
/// the same, so that no login outlives its method). Deleting a missing method is a no-op.
pub(super) fn auth_method_delete(st: &mut Store, idx: u64, name: &str) -> AclResult {
    if st.acl.auth_methods.remove(name).is_none() {
        return Ok(idx);
    }
    st.bump(Table::AclAuthMethods, idx);
    let rules = st.acl.binding_rules.len();
    st.acl.binding_rules.retain(|_, r| r.auth_method != name);
    if st.acl.binding_rules.len() != rules {
        st.bump(Table::AclBindingRules, idx);
    }
    let tokens = st.acl.tokens.len();
    st.acl.tokens.retain(|_, t| t.auth_method != name);
    if st.acl.tokens.len() != tokens {
        st.bump(Table::AclTokens, idx);
    }
    Ok(idx)
}

/// `BindingRuleSet`: `create` needs a new ID, an update an existing rule of the same method.
pub(super) fn binding_rule_set(st: &mut Store, idx: u64, r: &AclBindingRule, create: bool) -> AclResult {
    check_binding_rule(&st.acl, r, create)?;
    let mut r = r.clone();
    r.create_index = st.acl.binding_rules.get(&r.id).map_or(idx, |o| o.create_index);
    r.modify_index = idx;
    st.acl.binding_rules.insert(r.id.clone(), r);
    st.bump(Table::AclBindingRules, idx);
    Ok(idx)
}

fn check_binding_rule(acl: &AclTables, r: &AclBindingRule, create: bool) -> Result<(), String> {
    if !acl.auth_methods.contains_key(&r.auth_method) {
        return Err(format!("Invalid Binding Rule: unknown auth method {:?}", r.auth_method));
    }
    match (acl.binding_rules.get(&r.id), create) {
        (Some(_), true) => Err("Invalid Binding Rule: ID is already in use".into()),
        (None, false) => Err(format!("Cannot find binding rule {:?}", r.id)),
        (Some(old), false) if old.auth_method != r.auth_method => {
            Err("Invalid Binding Rule: the AuthMethod field is immutable".into())
        }
        _ => Ok(()),
    }
}

/// `BindingRuleDelete`: deleting a missing rule is a no-op.
pub(super) fn binding_rule_delete(st: &mut Store, idx: u64, id: &str) -> AclResult {
    if st.acl.binding_rules.remove(id).is_some() {
        st.bump(Table::AclBindingRules, idx);
    }
    Ok(idx)
}

impl AclTables {
    /// The binding rules of auth method `name`, in ID order.
    pub fn binding_rules_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AclBindingRule> + 'a {
        self.binding_rules.values().filter(move |r| r.auth_method == name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AclOp, AclToken, acl_apply};
    use super::*;

    fn method(name: &str) -> AclAuthMethod {
        AclAuthMethod {
            name: name.into(),
            type_: "jwt".into(),
            display_name: String::new(),
            description: String::new(),
            max_token_ttl: Duration::ZERO,
            token_locality: TokenLocality::Local,
            config: serde_json::json!({}),
            create_index: 0,
            modify_index: 0,
        }
    }

    fn rule(id: &str, method: &str) -> AclBindingRule {
        AclBindingRule {
            id: id.into(),
            description: String::new(),
            auth_method: method.into(),
            selector: String::new(),
            bind_type: BindType::Service,
            bind_name: "web".into(),
            create_index: 0,
            modify_index: 0,
        }
    }

    fn login_token(accessor: &str, method: &str) -> AclToken {
        AclToken {
            accessor_id: accessor.into(),
            secret_id: format!("s-{accessor}"),
            auth_method: method.into(),
            ..AclToken::empty()
        }
    }

    #[test]
    fn auth_methods_are_jwt_only_and_keep_their_type_and_create_index() {
        let mut st = Store::default();
        let mut k8s = method("k8s");
        k8s.type_ = "kubernetes".into();
        let bad = acl_apply(&mut st, 1, &AclOp::AuthMethodSet(k8s));
        assert_eq!(
            bad,
            Err("Invalid Auth Method: Type should be one of: [\"jwt\"] (not \"kubernetes\")".into())
        );
        assert!(st.acl.auth_methods.is_empty(), "a refused method is not stored");
        acl_apply(&mut st, 2, &AclOp::AuthMethodSet(method("m"))).expect("create");
        let mut changed = method("m");
        changed.description = "new".into();
        acl_apply(&mut st, 3, &AclOp::AuthMethodSet(changed)).expect("update");
        let m = &st.acl.auth_methods["m"];
        assert_eq!((m.create_index, m.modify_index, m.description.as_str()), (2, 3, "new"));
        assert_eq!(st.index(Table::AclAuthMethods), 3);
    }

    #[test]
    fn binding_rules_need_their_method_and_unique_ids() {
        let mut st = Store::default();
        let orphan = acl_apply(&mut st, 1, &AclOp::BindingRuleSet { rule: rule("r1", "m"), create: true });
        assert_eq!(orphan, Err("Invalid Binding Rule: unknown auth method \"m\"".into()));
        acl_apply(&mut st, 2, &AclOp::AuthMethodSet(method("m"))).expect("method");
        acl_apply(&mut st, 2, &AclOp::AuthMethodSet(method("other"))).expect("method");
        acl_apply(&mut st, 3, &AclOp::BindingRuleSet { rule: rule("r1", "m"), create: true }).expect("rule");
        let dup = acl_apply(&mut st, 4, &AclOp::BindingRuleSet { rule: rule("r1", "m"), create: true });
        assert_eq!(dup, Err("Invalid Binding Rule: ID is already in use".into()));
        let missing = acl_apply(&mut st, 5, &AclOp::BindingRuleSet { rule: rule("r2", "m"), create: false });
        assert_eq!(missing, Err("Cannot find binding rule \"r2\"".into()));
        let moved =
            acl_apply(&mut st, 6, &AclOp::BindingRuleSet { rule: rule("r1", "other"), create: false });
        assert_eq!(moved, Err("Invalid Binding Rule: the AuthMethod field is immutable".into()));
        let mut r = rule("r1", "m");
        r.bind_name = "api".into();
        acl_apply(&mut st, 7, &AclOp::BindingRuleSet { rule: r, create: false }).expect("update");
        let r = &st.acl.binding_rules["r1"];
        assert_eq!((r.create_index, r.modify_index, r.bind_name.as_str()), (3, 7, "api"));
        acl_apply(&mut st, 8, &AclOp::BindingRuleDelete("r1".into())).expect("delete");
        assert!(st.acl.binding_rules.is_empty());
        assert_eq!(st.index(Table::AclBindingRules), 8);
    }

    #[test]
    fn deleting_a_method_deletes_its_rules_and_the_tokens_it_minted() {
        let mut st = Store::default();
        for name in ["m", "keep"] {
            acl_apply(&mut st, 1, &AclOp::AuthMethodSet(method(name))).expect("method");
        }
        for (id, m) in [("r1", "m"), ("r2", "keep")] {
            acl_apply(&mut st, 2, &AclOp::BindingRuleSet { rule: rule(id, m), create: true }).expect("rule");
        }
        for (a, m) in [("t1", "m"), ("t2", "keep")] {
            let op = AclOp::TokenSet { token: login_token(a, m), create: true };
            acl_apply(&mut st, 3, &op).expect("token");
        }
        acl_apply(&mut st, 4, &AclOp::AuthMethodDelete("m".into())).expect("delete");
        assert_eq!(st.acl.auth_methods.keys().collect::<Vec<_>>(), ["keep"]);
        assert_eq!(st.acl.binding_rules.keys().collect::<Vec<_>>(), ["r2"]);
        assert_eq!(st.acl.tokens.keys().collect::<Vec<_>>(), ["t2"]);
        for t in [Table::AclAuthMethods, Table::AclBindingRules, Table::AclTokens] {
            assert_eq!(st.index(t), 4, "{t:?} moves with the delete");
        }
        acl_apply(&mut st, 5, &AclOp::AuthMethodDelete("m".into())).expect("again");
        assert_eq!(st.index(Table::AclAuthMethods), 4, "deleting a missing method changes nothing");
    }

    #[test]
    fn a_login_token_needs_its_auth_method() {
        let mut st = Store::default();
        let op = AclOp::TokenSet { token: login_token("t1", "gone"), create: true };
        assert_eq!(acl_apply(&mut st, 1, &op), Err("No such auth method with Name: \"gone\"".into()));
        assert!(st.acl.tokens.is_empty());
    }

    #[test]
    fn old_snapshots_without_auth_tables_still_load() {
        #[derive(Serialize)]
        struct OldToken {
            accessor_id: &'static str,
            secret_id: &'static str,
            description: &'static str,
            policies: Vec<()>,
            roles: Vec<()>,
            service_identities: Vec<()>,
            node_identities: Vec<()>,
            local: bool,
            expiration_time: u64,
            create_time: &'static str,
            create_index: u64,
            modify_index: u64,
        }
        #[derive(Serialize)]
        struct OldTables {
            tokens: std::collections::BTreeMap<&'static str, OldToken>,
            policies: std::collections::BTreeMap<(), ()>,
            roles: std::collections::BTreeMap<(), ()>,
            bootstrap_index: u64,
        }
        let t = OldToken {
            accessor_id: "a",
            secret_id: "s",
            description: "",
            policies: vec![],
            roles: vec![],
            service_identities: vec![],
            node_identities: vec![],
            local: false,
            expiration_time: 0,
            create_time: "",
            create_index: 1,
            modify_index: 1,
        };
        let old = OldTables {
            tokens: [("a", t)].into_iter().collect(),
            policies: Default::default(),
            roles: Default::default(),
            bootstrap_index: 0,
        };
        let bytes = rmp_serde::to_vec_named(&old).expect("encode");
        let acl: AclTables = rmp_serde::from_slice(&bytes).expect("an old snapshot decodes");
        assert_eq!(acl.tokens["a"].auth_method, "");
        assert!(acl.auth_methods.is_empty() && acl.binding_rules.is_empty());
    }
}
