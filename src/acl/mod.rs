//! ACL enforcement in the agent: which token a request carries, what it may do, and the
//! cache that keeps resolution off the hot path.
//!
//! ```text
//!  request ─► secret (X-Consul-Token | Authorization: Bearer | ?token= | acl.tokens.default | anonymous)
//!     ─► Acl::resolve ─► server: grants_for(store) ─ compile ─► cached until an ACL table changes
//!                     └► client agent: rpc acl/resolve ─ compile ─► cached for token_ttl
//!                                        └─ servers unreachable: down_policy
//!     ─► Identity { accessor, authorizer } ─► Identity::require(resource, segment, access)
//! ```
//!
//! SecretIDs are never logged: errors and logs name the AccessorID.

pub mod audit;
pub mod config;
pub mod leader;
pub mod replication;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sekisho_acl::{Access, Authorizer, Decision, DefaultPolicy, PolicyRef, Resource, Rules};
use serde::{Deserialize, Serialize};

pub use config::{AclConfig, AgentTokens, DownPolicy};
pub use tokens::{TokenKind, TokenStore};

use crate::server::Server;
use crate::state::Store;
use crate::state::Table;
use crate::state::acl::{
    ANONYMOUS_ACCESSOR_ID, ANONYMOUS_SECRET_ID, AclTables, AclToken, MANAGEMENT_POLICY_ID,
};

/// The ACL tables, for cache invalidation and blocking queries.
pub const ACL_TABLES: [Table; 3] = [Table::AclTokens, Table::AclPolicies, Table::AclRoles];

/// What a token was granted: its policies' rules (identities synthesized), ready to compile.
/// This is what servers send client agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// The token's AccessorID.
    pub accessor_id: String,
    /// The token holds `global-management`.
    pub management: bool,
    /// `(policy ID, policy name or identity label, rules text)`.
    pub policies: Vec<(String, String, String)>,
    /// Unix seconds after which the token is invalid (0: never).
    pub expiration_time: u64,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The grants of `token` in datacenter `dc`: its policies, its roles' policies, and the rules
/// its service and node identities synthesize. Policies limited to other datacenters, and
/// links to deleted objects, are skipped.
pub fn grants_of(acl: &AclTables, token: &AclToken, dc: &str) -> Grants {
    let mut policies = Vec::new();
    let mut management = false;
    let mut add_policies = |links: &[crate::state::acl::Link],
                            policies: &mut Vec<(String, String, String)>| {
        for l in links {
            let Some(p) = acl.policies.get(&l.id) else { continue };
            if !p.datacenters.is_empty() && !p.datacenters.iter().any(|d| d == dc) {
                continue;
            }
            if p.id == MANAGEMENT_POLICY_ID {
                management = true;
            }
            if !policies.iter().any(|(id, _, _)| *id == p.id) {
                policies.push((p.id.clone(), p.name.clone(), p.rules.clone()));
            }
        }
    };
    add_policies(&token.policies, &mut policies);
    let mut services = token.service_identities.clone();
    let mut nodes = token.node_identities.clone();
    for r in &token.roles {
        let Some(role) = acl.roles.get(&r.id) else { continue };
        add_policies(&role.policies, &mut policies);
        services.extend(role.service_identities.iter().cloned());
        nodes.extend(role.node_identities.iter().cloned());
    }
    for s in services {
        if s.datacenters.is_empty() || s.datacenters.iter().any(|d| d == dc) {
            let label = PolicyRef::service_identity(&s.service_name).name;
            policies.push((
                String::new(),
                label,
                rules_text(&sekisho_acl::service_identity_rules(&s.service_name)),
            ));
        }
    }
    for n in nodes.into_iter().filter(|n| n.datacenter == dc) {
        let label = PolicyRef::node_identity(&n.node_name).name;
        policies.push((String::new(), label, rules_text(&sekisho_acl::node_identity_rules(&n.node_name))));
    }
    Grants {
        accessor_id: token.accessor_id.clone(),
        management,
        policies,
        expiration_time: token.expiration_time,
    }
}

/// Rules written back as HCL, one rule per line.
fn rules_text(r: &Rules) -> String {
    r.rules.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Resolves `secret` against a server's store: `None` when no live token has it. The
/// anonymous token exists from the first leader's ACL setup on; before that it resolves to
/// no policies.
pub fn resolve_in_store(st: &Store, secret: &str, dc: &str, now: u64) -> Option<Grants> {
    match st.acl.token_by_secret(secret) {
        Some(t) if !t.expired(now) => Some(grants_of(&st.acl, t, dc)),
        Some(_) => None,
        None if secret == ANONYMOUS_SECRET_ID => Some(Grants {
            accessor_id: ANONYMOUS_ACCESSOR_ID.into(),
            management: false,
            policies: Vec::new(),
            expiration_time: 0,
        }),
        None => None,
    }
}

impl Grants {
    /// Compiles the grants under `default`. Rules that no longer parse (they were checked
    /// when written) are skipped with a warning naming the policy.
    pub fn compile(&self, default: DefaultPolicy) -> Authorizer {
        if self.management {
            return Authorizer::management();
        }
        let mut a = Authorizer::new(default);
        for (id, name, text) in &self.policies {
            match Rules::parse(text) {
                Ok(rules) => {
                    let r = if id.is_empty() {
                        PolicyRef { id: String::new(), name: name.clone() }
                    } else {
                        PolicyRef::policy(id.clone(), name.clone())
                    };
                    a.add(&r, &rules);
                }
                Err(e) => {
                    tracing::warn!(policy = %name, "acl: skipping a policy whose rules do not parse: {e}")
                }
            }
        }
        a
    }
}

/// Who is asking, and what they may do.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's AccessorID (what errors and logs name).
    pub accessor_id: String,
    /// The compiled policies.
    pub authz: Arc<Authorizer>,
    /// ACLs are off: everything is allowed and nothing is filtered.
    pub unrestricted: bool,
}

/// A denial: Consul's 403 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// No token has the presented secret (or it expired).
    #[error("ACL not found")]
    NotFound,
    /// The token lacks a permission.
    #[error("{0}")]
    Denied(String),
}

impl Identity {
    /// Everything allowed (ACLs disabled).
    pub fn unrestricted() -> Identity {
        Identity {
            accessor_id: ANONYMOUS_ACCESSOR_ID.into(),
            authz: Arc::new(Authorizer::new(DefaultPolicy::Allow)),
            unrestricted: true,
        }
    }

    /// The decision for one request.
    pub fn decide(&self, resource: Resource, segment: &str, access: Access) -> Decision {
        self.authz.authorize(resource, segment, access)
    }

    /// Whether the request is allowed.
    pub fn allows(&self, resource: Resource, segment: &str, access: Access) -> bool {
        self.unrestricted || self.decide(resource, segment, access).allowed
    }

    /// Allowed, or Consul's `Permission denied: token with AccessorID '…' lacks permission …`.
    pub fn require(&self, resource: Resource, segment: &str, access: Access) -> Result<(), AclError> {
        if self.unrestricted {
            return Ok(());
        }
        let d = self.decide(resource, segment, access);
        if d.allowed {
            return Ok(());
        }
        tracing::debug!(accessor = %self.accessor_id, "acl: denied: {}", d.explain());
        Err(AclError::Denied(d.denied_message(&self.accessor_id)))
    }

    /// `key:write` over everything under `prefix` (recursive delete).
    pub fn require_key_write_prefix(&self, prefix: &str) -> Result<(), AclError> {
        if self.unrestricted {
            return Ok(());
        }
        let d = self.authz.key_write_prefix(prefix);
        if d.allowed {
            return Ok(());
        }
        Err(AclError::Denied(d.denied_message(&self.accessor_id)))
    }
}

struct Cached {
    identity: Arc<Identity>,
    /// Servers: the ACL tables' index it was compiled at. Client agents: 0.
    index: u64,
    at: Instant,
    expires: u64,
}

/// The RPC path client agents resolve tokens through.
pub const RESOLVE_PATH: &str = "/rpc/v1/acl/resolve";
/// A secondary datacenter's leader pulls the primary's ACL objects ([`replication`]).
pub const REPLICATE_PATH: &str = "/rpc/v1/acl/replicate";

/// The agent's ACL state: its configuration, its tokens and its resolution cache.
pub struct Acl {
    cfg: AclConfig,
    server: Server,
    node_name: String,
    datacenter: String,
    /// The agent's tokens as they are now (`acl.tokens`, then `PUT /v1/agent/token/*`).
    tokens: TokenStore,
    cache: Mutex<HashMap<String, Cached>>,
    audit: Option<audit::AuditLog>,
    /// The leader's replication report, as a follower last fetched it.
    leader_report: Mutex<Option<(Instant, replication::Report)>>,
}

impl std::fmt::Debug for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acl").field("enabled", &self.cfg.enabled).finish_non_exhaustive()
    }
}

/// At most this many resolved tokens are cached; past it the cache starts afresh.
const CACHE_MAX: usize = 10_000;

impl Acl {
    /// The ACL state of an agent.
    pub fn new(cfg: AclConfig, server: Server, node_name: String, datacenter: String) -> Acl {
        let tokens = TokenStore::new(cfg.tokens.clone());
        replication::configure(server.acl_replication(), &cfg);
        Acl {
            cfg,
            server,
            node_name,
            datacenter,
            tokens,
            cache: Mutex::new(HashMap::new()),
            audit: None,
            leader_report: Mutex::new(None),
        }
    }

    /// Writes every denial to `log` (`acl.audit`).
    #[must_use]
    pub fn with_audit_log(mut self, log: Option<audit::AuditLog>) -> Acl {
        self.audit = log;
        self
    }

    /// The audit log, when `acl.audit.enabled`.
    pub fn audit(&self) -> Option<&audit::AuditLog> {
        self.audit.as_ref()
    }

    /// With `acl.enable_token_persistence`, loads the tokens saved in `data_dir` (they win
    /// over the configuration, as in Consul) and saves later changes there.
    #[must_use]
    pub fn with_token_persistence(mut self, data_dir: Option<&std::path::Path>) -> Acl {
        if !self.cfg.enable_token_persistence {
            return self;
        }
        match data_dir {
            Some(dir) => self.tokens = TokenStore::persistent(self.cfg.tokens.clone(), dir),
            None => tracing::warn!(
                "acl.enable_token_persistence is set but the agent has no data_dir: tokens set \
                 through the API are kept in memory only"
            ),
        }
        self
    }

    /// ACL replication as this datacenter's leader reports it (`GET /v1/acl/replication`):
    /// the leader answers from its own status, a follower asks the leader (cached for a
    /// second), a client agent asks a server.
    pub async fn replication_report(&self) -> Result<replication::Report, crate::server::Error> {
        if self.server.is_client() {
            return self.server.call_servers(replication::STATUS_PATH, &()).await;
        }
        if self.server.is_leader() || !self.is_secondary() {
            return Ok(replication::report(&self.server.acl_replication().lock()));
        }
        if let Some((at, r)) = self.leader_report.lock().as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(r.clone());
        }
        let r: replication::Report =
            self.server.call_leader(replication::STATUS_PATH, &(), Duration::from_secs(2)).await?;
        *self.leader_report.lock() = Some((Instant::now(), r.clone()));
        Ok(r)
    }

    /// Whether this agent is in a secondary datacenter (global ACL objects live elsewhere).
    pub fn is_secondary(&self) -> bool {
        self.datacenter != self.server.config().primary_datacenter
    }

    /// The configuration.
    pub fn config(&self) -> &AclConfig {
        &self.cfg
    }

    /// Whether ACLs are enforced.
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The agent's tokens in force now: `acl.tokens`, as changed by `PUT /v1/agent/token/*`.
    pub fn tokens(&self) -> AgentTokens {
        self.tokens.current()
    }

    /// Replaces one of the agent's tokens (`""` clears it), saving it first when tokens are
    /// persisted. Blocking file IO: call it off the async threads.
    pub fn set_token(&self, kind: TokenKind, token: &str) -> std::io::Result<()> {
        self.tokens.set(kind, token)
    }

    /// The identity of a request that presented `secret` (`None`: no token, so the agent's
    /// default token, else anonymous).
    pub async fn resolve(&self, secret: Option<&str>) -> Result<Arc<Identity>, AclError> {
        if !self.cfg.enabled {
            return Ok(Arc::new(Identity::unrestricted()));
        }
        let secret = match secret.filter(|s| !s.is_empty()) {
            Some(s) => s.to_owned(),
            None => self.tokens.default_token().unwrap_or_else(|| ANONYMOUS_SECRET_ID.to_owned()),
        };
        if let Some(recovery) = self.tokens.agent_recovery().as_deref()
            && crate::state::acl::ct_eq(recovery, &secret)
        {
            return Ok(Arc::new(self.recovery_identity()));
        }
        if self.server.is_client() {
            return self.resolve_remote(&secret).await;
        }
        let local = match self.resolve_local(&secret) {
            // A token created a moment ago may not have reached this follower yet.
            Err(AclError::NotFound) if !self.server.is_leader() && self.server.catch_up().await.is_ok() => {
                self.resolve_local(&secret)
            }
            other => other,
        };
        match local {
            // A secondary has not replicated this token (yet, or at all): ask the primary.
            Err(AclError::NotFound) if self.is_secondary() => self.resolve_at_primary(&secret).await,
            other => other,
        }
    }

    /// A secondary's server resolves a token unknown here at the primary, with this
    /// datacenter's copy of the policies; cached for `token_ttl`, and `down_policy` applies
    /// when the primary cannot be reached.
    async fn resolve_at_primary(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        let now = now_unix();
        let stale = {
            let cache = self.cache.lock();
            match cache.get(secret).filter(|c| c.index == 0 && (c.expires == 0 || c.expires > now)) {
                Some(c) if c.at.elapsed() < self.cfg.token_ttl => return Ok(c.identity.clone()),
                Some(c) => Some(c.identity.clone()),
                None => None,
            }
        };
        match replication::token_at_primary(&self.server, secret).await {
            Ok(Some(t)) => {
                let g = self.server.state().read(|s| grants_of(&s.acl, &t, &self.datacenter));
                let identity = self.identity(&g);
                let c = Cached {
                    identity: identity.clone(),
                    index: 0,
                    at: Instant::now(),
                    expires: g.expiration_time,
                };
                self.cache_put(secret, c);
                Ok(identity)
            }
            Ok(None) => {
                self.cache.lock().remove(secret);
                Err(AclError::NotFound)
            }
            Err(e) => {
                tracing::warn!(
                    "acl: cannot resolve a token at the primary datacenter ({e}); down_policy applies"
                );
                Ok(self.down(stale))
            }
        }
    }

    /// The identity DNS answers under: the default token, else anonymous.
    pub async fn resolve_default(&self) -> Result<Arc<Identity>, AclError> {
        self.resolve(None).await
    }

    fn recovery_identity(&self) -> Identity {
        let text = format!(
            "agent \"{}\" {{ policy = \"write\" }}\nnode_prefix \"\" {{ policy = \"read\" }}",
            self.node_name
        );
        let mut a = Authorizer::new(self.cfg.default_policy);
        if let Ok(rules) = Rules::parse(&text) {
            a.add(&PolicyRef { id: String::new(), name: "agent recovery token".into() }, &rules);
        }
        Identity { accessor_id: "agent-recovery-token".into(), authz: Arc::new(a), unrestricted: false }
    }

    fn identity(&self, g: &Grants) -> Arc<Identity> {
        Arc::new(Identity {
            accessor_id: g.accessor_id.clone(),
            authz: Arc::new(g.compile(self.cfg.default_policy)),
            unrestricted: false,
        })
    }

    fn cache_put(&self, secret: &str, c: Cached) {
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(secret.to_owned(), c);
    }

    fn resolve_local(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        let now = now_unix();
        let index = self.server.state().read(|s| s.max_index(&ACL_TABLES));
        if let Some(c) = self.cache.lock().get(secret)
            && c.index == index
            && (c.expires == 0 || c.expires > now)
        {
            return Ok(c.identity.clone());
        }
        let grants = self.server.state().read(|s| resolve_in_store(s, secret, &self.datacenter, now));
        let Some(g) = grants else { return Err(AclError::NotFound) };
        let identity = self.identity(&g);
        self.cache_put(
            secret,
            Cached { identity: identity.clone(), index, at: Instant::now(), expires: g.expiration_time },
        );
        Ok(identity)
    }

    async fn resolve_remote(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        let now = now_unix();
        let ttl = self.cfg.token_ttl;
        let stale = {
            let cache = self.cache.lock();
            match cache.get(secret) {
                Some(c) if c.at.elapsed() < ttl && (c.expires == 0 || c.expires > now) => {
                    return Ok(c.identity.clone());
                }
                Some(c) if c.expires == 0 || c.expires > now => Some(c.identity.clone()),
                _ => None,
            }
        };
        let answer: Result<Option<Grants>, crate::server::Error> =
            self.server.call_servers_with(RESOLVE_PATH, &secret.to_owned(), Duration::from_secs(5)).await;
        match answer {
            Ok(Some(g)) => {
                let identity = self.identity(&g);
                self.cache_put(
                    secret,
                    Cached {
                        identity: identity.clone(),
                        index: 0,
                        at: Instant::now(),
                        expires: g.expiration_time,
                    },
                );
                Ok(identity)
            }
            Ok(None) => {
                self.cache.lock().remove(secret);
                Err(AclError::NotFound)
            }
            Err(e) => {
                tracing::warn!("acl: cannot resolve a token through the servers ({e}); down_policy applies");
                Ok(self.down(stale))
            }
        }
    }

    /// The identity used when the servers cannot be reached.
    fn down(&self, stale: Option<Arc<Identity>>) -> Arc<Identity> {
        let fixed = |d| {
            Arc::new(Identity {
                accessor_id: ANONYMOUS_ACCESSOR_ID.into(),
                authz: Arc::new(Authorizer::new(d)),
                unrestricted: false,
            })
        };
        match self.cfg.down_policy {
            DownPolicy::Allow => fixed(DefaultPolicy::Allow),
            DownPolicy::Deny => fixed(DefaultPolicy::Deny),
            DownPolicy::ExtendCache | DownPolicy::AsyncCache => {
                stale.unwrap_or_else(|| fixed(self.cfg.default_policy))
            }
        }
    }
}
