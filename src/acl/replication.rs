//! ACL replication: a secondary datacenter's leader keeps a copy of the primary's policies
//! and roles (and, with `acl.enable_token_replication`, its global tokens), and resolves
//! tokens it has never seen at the primary.
//!
//! ```text
//!  secondary leader                                primary (any server)
//!   loop ─ Pull{replication token, min_index} ──WAN RPC /rpc/v1/acl/replicate──► blocks until
//!        ◄──────────── Snapshot{index, policies, roles, tokens?} ────────────── an ACL table moves
//!        diff(copy, snapshot) ─► AclOp::Replicate through this datacenter's Raft ─► every server
//!        cursor: ReplicatedIndex, LastSuccess/LastError, backoff 250 ms → 30 s, lag
//!  unknown token in a secondary ─ Token{secret} ─► the primary's global token, cached token_ttl;
//!        primary unreachable ─► down_policy (extend-cache: the stale entry, else default_policy)
//! ```
//!
//! Writes of global objects made in a secondary are forwarded to the primary by the HTTP
//! layer (`http::acl`); local tokens stay where they are written.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use sekisho_acl::{Access, DefaultPolicy, Resource};
use sekisho_wan::replication::{Cursor, diff};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{ACL_TABLES, Acl, REPLICATE_PATH, now_unix, resolve_in_store};
use crate::fsm::Command;
use crate::rpc::{self, RpcError};
use crate::server::{Consistency, QueryOptions, Server};
use crate::state::Table;
use crate::state::acl::{AclOp, AclPolicy, AclRole, AclTables, AclToken, ct_eq};

/// `ReplicationType` when policies and roles replicate.
pub const TYPE_POLICIES: &str = "policies";
/// `ReplicationType` with token replication.
pub const TYPE_TOKENS: &str = "tokens";

/// A call to the primary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReplicateRequest {
    /// The global objects once an ACL table passes `min_index` (or `wait_ms` elapses).
    Pull {
        /// The replication token's SecretID (`acl = "read"`, `"write"` for tokens).
        token: String,
        /// Block until the source index passes this.
        min_index: u64,
        /// Longest wait, in milliseconds.
        wait_ms: u64,
        /// Include global tokens.
        tokens: bool,
    },
    /// The global token with this SecretID, if any (a secondary met a token it has not
    /// replicated).
    Token {
        /// The presented SecretID.
        secret: String,
    },
}

/// The primary's global ACL objects at an index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The primary's policies/roles index (tokens too when included).
    pub index: u64,
    /// Its roles table index.
    pub role_index: u64,
    /// Its tokens table index.
    pub token_index: u64,
    /// Every policy.
    pub policies: Vec<AclPolicy>,
    /// Every role.
    pub roles: Vec<AclRole>,
    /// Every global (non-local) token, when asked for.
    pub tokens: Option<Vec<AclToken>>,
}

/// Serves [`REPLICATE_PATH`] on a server of the primary datacenter.
pub(crate) async fn serve(server: &Server, body: &[u8]) -> Result<Bytes, RpcError> {
    match rpc::decode::<ReplicateRequest>(body)? {
        ReplicateRequest::Token { secret } => {
            let token = server.state().read(|s| {
                s.acl.token_by_secret(&secret).filter(|t| !t.local && !t.expired(now_unix())).cloned()
            });
            rpc::encode(&token)
        }
        ReplicateRequest::Pull { token, min_index, wait_ms, tokens } => {
            rpc::encode(&pull(server, &token, min_index, Duration::from_millis(wait_ms), tokens).await)
        }
    }
}

async fn pull(
    server: &Server,
    token: &str,
    min_index: u64,
    wait: Duration,
    tokens: bool,
) -> Result<Snapshot, String> {
    let dc = server.config().datacenter.clone();
    if dc != server.config().primary_datacenter {
        return Err(format!("ACL replication source {dc:?} is not the primary datacenter"));
    }
    let grants = server.state().read(|s| resolve_in_store(s, token, &dc, now_unix()));
    let Some(grants) = grants else { return Err("ACL not found: the replication token is unknown".into()) };
    let need = if tokens { Access::Write } else { Access::Read };
    let authz = grants.compile(DefaultPolicy::Deny);
    let d = authz.authorize(Resource::Acl, "", need);
    if !d.allowed {
        return Err(d.denied_message(&grants.accessor_id));
    }
    let tables: &[Table] = if tokens { &ACL_TABLES } else { &[Table::AclPolicies, Table::AclRoles] };
    let opts = QueryOptions {
        min_index,
        wait: wait.min(Duration::from_secs(300)),
        consistency: Consistency::Default,
    };
    let (snap, _) = server
        .query(&opts, tables, |s| {
            let index = s.max_index(tables);
            let snap = Snapshot {
                index,
                role_index: s.index(Table::AclRoles),
                token_index: s.index(Table::AclTokens),
                policies: s.acl.policies.values().cloned().collect(),
                roles: s.acl.roles.values().cloned().collect(),
                tokens: tokens.then(|| s.acl.tokens.values().filter(|t| !t.local).cloned().collect()),
            };
            (snap, index, index)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(snap)
}

/// The replication state shown by `GET /v1/acl/replication`.
#[derive(Debug, Clone)]
pub struct Status {
    /// Cursor of the policies/roles (and tokens) pull.
    pub cursor: Cursor,
    /// `ReplicationType`.
    pub kind: &'static str,
    /// The primary's name.
    pub source: String,
    /// The primary's roles and tokens indexes at the last success.
    pub role_index: u64,
    /// See `role_index`.
    pub token_index: u64,
    /// When this server started (lag before any success).
    pub started: SystemTime,
}

impl Status {
    /// The lag figure: how long the replica has not been confirmed current.
    pub fn lag(&self) -> Duration {
        if !self.cursor.enabled {
            return Duration::ZERO;
        }
        self.cursor.lag(SystemTime::now(), self.started)
    }
}

/// Shared status handle.
pub type SharedStatus = Arc<Mutex<Status>>;

/// A fresh status for a server in `dc` whose primary is `primary` (not yet enabled: see
/// [`configure`]).
pub fn new_status(dc: &str, primary: &str) -> SharedStatus {
    Arc::new(Mutex::new(Status {
        cursor: Cursor::default(),
        kind: "",
        source: if dc != primary { primary.to_owned() } else { String::new() },
        role_index: 0,
        token_index: 0,
        started: SystemTime::now(),
    }))
}

/// Applies the agent's ACL configuration to the status: replication is enabled in a
/// secondary with ACLs on and a replication token.
pub fn configure(status: &SharedStatus, cfg: &super::AclConfig) {
    let mut s = status.lock();
    let on =
        cfg.enabled && !s.source.is_empty() && cfg.tokens.replication.as_ref().is_some_and(|t| !t.is_empty());
    s.cursor.enabled = on;
    s.kind = match (on, cfg.enable_token_replication) {
        (false, _) => "",
        (true, false) => TYPE_POLICIES,
        (true, true) => TYPE_TOKENS,
    };
}

/// The RPC path a follower (or client agent) reads the leader's [`Report`] through.
pub const STATUS_PATH: &str = "/rpc/v1/acl/replication_status";

/// `GET /v1/acl/replication`, in Consul's names, plus the lag (beyond Consul).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Replication is configured here.
    pub enabled: bool,
    /// The loop runs (on the leader).
    pub running: bool,
    /// The primary.
    pub source_datacenter: String,
    /// `policies` or `tokens` (empty when disabled).
    pub replication_type: String,
    /// The primary's policies index last replicated.
    pub replicated_index: u64,
    /// Its roles index.
    pub replicated_role_index: u64,
    /// Its tokens index (with token replication).
    pub replicated_token_index: u64,
    /// Unix milliseconds of the last success (0: never).
    pub last_success_ms: u64,
    /// Unix milliseconds of the last error (0: never).
    pub last_error_ms: u64,
    /// Why it last failed.
    pub last_error_message: String,
    /// How long the replica has gone unconfirmed, in milliseconds.
    pub lag_ms: u64,
}

fn unix_ms(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as u64)
}

/// The report of `s`.
pub fn report(s: &Status) -> Report {
    Report {
        enabled: s.cursor.enabled,
        running: s.cursor.running,
        source_datacenter: if s.cursor.enabled { s.source.clone() } else { String::new() },
        replication_type: s.kind.to_owned(),
        replicated_index: s.cursor.index,
        replicated_role_index: s.role_index,
        replicated_token_index: if s.kind == TYPE_TOKENS { s.token_index } else { 0 },
        last_success_ms: unix_ms(s.cursor.last_success),
        last_error_ms: unix_ms(s.cursor.last_error),
        last_error_message: s.cursor.last_error_message.clone(),
        lag_ms: s.lag().as_millis() as u64,
    }
}

/// Whether two versions of a policy are the same apart from Raft indexes.
fn same_policy(a: &AclPolicy, b: &AclPolicy) -> bool {
    AclPolicy { create_index: 0, modify_index: 0, ..a.clone() }
        == AclPolicy { create_index: 0, modify_index: 0, ..b.clone() }
}

fn same_role(a: &AclRole, b: &AclRole) -> bool {
    AclRole { create_index: 0, modify_index: 0, ..a.clone() }
        == AclRole { create_index: 0, modify_index: 0, ..b.clone() }
}

fn same_token(a: &AclToken, b: &AclToken) -> bool {
    AclToken { create_index: 0, modify_index: 0, ..a.clone() }
        == AclToken { create_index: 0, modify_index: 0, ..b.clone() }
}

/// The Raft write that brings `copy` to `snap`, `None` when they already agree.
pub fn replicate_op(copy: &AclTables, snap: &Snapshot) -> Option<AclOp> {
    let policies = diff(&copy.policies, &snap.policies, |p| &p.id, same_policy);
    let roles = diff(&copy.roles, &snap.roles, |r| &r.id, same_role);
    let tokens = snap.tokens.as_ref().map(|tokens| {
        let global =
            copy.tokens.iter().filter(|(_, t)| !t.local).map(|(k, t)| (k.clone(), t.clone())).collect();
        diff(&global, tokens, |t| &t.accessor_id, same_token)
    });
    let empty = policies.is_empty() && roles.is_empty() && tokens.as_ref().is_none_or(|t| t.is_empty());
    (!empty).then_some(AclOp::Replicate { policies, roles, tokens })
}

/// How long each pull may block at the primary by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The pull loop: runs on every server of a secondary datacenter, pulls while it leads.
pub async fn run(server: Server, acl: Arc<Acl>, wait: Duration, stop: CancellationToken) {
    let status = server.acl_replication().clone();
    let primary = server.config().primary_datacenter.clone();
    let token_replication = acl.config().enable_token_replication;
    loop {
        let pause = {
            let s = status.lock();
            if s.cursor.running { s.cursor.backoff() } else { Duration::from_millis(250) }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        let leading = server.is_leader();
        let token = acl.tokens().replication.clone().filter(|t| !t.is_empty());
        {
            let mut s = status.lock();
            s.cursor.running = leading && token.is_some();
            s.cursor.enabled = token.is_some();
            if s.kind.is_empty() && token.is_some() {
                s.kind = if token_replication { TYPE_TOKENS } else { TYPE_POLICIES };
            }
        }
        let (true, Some(token)) = (leading, token) else { continue };
        let min_index = status.lock().cursor.index;
        let req = ReplicateRequest::Pull {
            token,
            min_index,
            wait_ms: wait.as_millis() as u64,
            tokens: token_replication,
        };
        let timeout = wait + wait / 16 + Duration::from_secs(2);
        let answer: Result<Result<Snapshot, String>, _> = tokio::select! {
            () = stop.cancelled() => return,
            a = server.call_dc(&primary, REPLICATE_PATH, &req, timeout) => a,
        };
        let snap = match answer {
            Ok(Ok(snap)) => snap,
            Ok(Err(e)) | Err(crate::server::Error::Internal(e)) => {
                fail(&status, &primary, format!("the primary refused replication: {e}"));
                continue;
            }
            Err(e) => {
                fail(&status, &primary, format!("cannot reach the primary datacenter: {e}"));
                continue;
            }
        };
        if snap.index < min_index {
            status.lock().cursor.reset_index();
        }
        if let Some(op) = server.state().read(|s| replicate_op(&s.acl, &snap)) {
            if let Err(e) = server.write(Command::Acl(op)).await {
                fail(&status, &primary, format!("applying replicated ACL objects failed: {e}"));
                continue;
            }
            tracing::debug!(index = snap.index, "acl: replicated the primary's ACL objects");
        }
        let mut s = status.lock();
        s.cursor.succeeded(snap.index, SystemTime::now());
        s.role_index = snap.role_index;
        s.token_index = snap.token_index;
        crate::telemetry::gauge(crate::telemetry::names::ACL_REPLICATION_LAG, &[], 0.0);
    }
}

fn fail(status: &SharedStatus, primary: &str, msg: String) {
    tracing::warn!(primary, "acl replication: {msg}");
    let mut s = status.lock();
    s.cursor.failed(msg, SystemTime::now());
    let lag = s.lag();
    crate::telemetry::gauge(crate::telemetry::names::ACL_REPLICATION_LAG, &[], lag.as_secs_f64() * 1000.0);
}

/// Looks `secret` up at the primary: `Ok(None)` when it has no such global token.
pub(super) async fn token_at_primary(
    server: &Server,
    secret: &str,
) -> Result<Option<AclToken>, crate::server::Error> {
    let primary = server.config().primary_datacenter.clone();
    let req = ReplicateRequest::Token { secret: secret.to_owned() };
    let t: Option<AclToken> = server.call_dc(&primary, REPLICATE_PATH, &req, Duration::from_secs(5)).await?;
    // Never trust a local token from elsewhere, nor one whose secret does not match.
    Ok(t.filter(|t| !t.local && ct_eq(&t.secret_id, secret)))
}

/// A client agent of a secondary asked for a token this datacenter has not replicated: its
/// grants from the primary's token and this datacenter's policies. An unreachable primary
/// is an error, so the client agent applies its `down_policy`.
pub(crate) async fn grants_at_primary(
    server: &Server,
    secret: &str,
) -> Result<Option<super::Grants>, RpcError> {
    let t = token_at_primary(server, secret).await.map_err(|e| RpcError::Unreachable {
        addr: server.config().primary_datacenter.clone(),
        detail: e.to_string(),
    })?;
    let dc = server.config().datacenter.clone();
    Ok(t.map(|t| server.state().read(|s| super::grants_of(&s.acl, &t, &dc))))
}
