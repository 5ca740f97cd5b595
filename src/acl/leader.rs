//! The leader's ACL duties: create the built-in anonymous token and `global-management`
//! policy (and `acl.tokens.initial_management`) when missing, and delete expired tokens.
//!
//! Runs on every server; only the current leader writes. Each write is idempotent, so a
//! leader change between the check and the write does no harm.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::now_unix;
use crate::fsm::Command;
use crate::server::Server;
use crate::state::acl::{ANONYMOUS_ACCESSOR_ID, AclOp, MANAGEMENT_POLICY_ID, ct_eq};

/// How often the leader looks (setup happens within one tick of winning an election).
const TICK: Duration = Duration::from_millis(250);

/// The setup write needed now, if any.
fn setup_needed(server: &Server, initial_management: Option<&str>) -> Option<AclOp> {
    let missing = server.state().read(|s| {
        let builtins = !s.acl.tokens.contains_key(ANONYMOUS_ACCESSOR_ID)
            || !s.acl.policies.contains_key(MANAGEMENT_POLICY_ID);
        let initial = initial_management
            .is_some_and(|secret| !s.acl.tokens.values().any(|t| ct_eq(&t.secret_id, secret)));
        builtins || initial
    });
    missing.then(|| AclOp::Init {
        initial_management: initial_management.map(|s| (uuid::Uuid::new_v4().to_string(), s.to_owned())),
        now: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
    })
}

/// Runs until `stop`.
pub async fn run(server: Server, initial_management: Option<String>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        if !server.is_leader() {
            continue;
        }
        if let Some(op) = setup_needed(&server, initial_management.as_deref()) {
            match server.write(Command::Acl(op)).await {
                Ok(_) => {
                    tracing::info!("acl: created the built-in anonymous token and global-management policy")
                }
                Err(e) => tracing::warn!("acl: setup write failed (retrying): {e}"),
            }
        }
        let expired = server.state().read(|s| s.acl.expired_tokens(now_unix()));
        if !expired.is_empty() {
            let n = expired.len();
            match server.write(Command::Acl(AclOp::TokenDelete(expired))).await {
                Ok(_) => tracing::info!("acl: deleted {n} expired token(s)"),
                Err(e) => tracing::warn!("acl: reaping expired tokens failed (retrying): {e}"),
            }
        }
    }
}
