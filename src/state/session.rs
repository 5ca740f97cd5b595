//! Sessions: creation checks, invalidation (release or delete held keys, start lock-delay,
//! delete the prepared queries bound to the session), and invalidation triggered by linked
//! checks.

use std::time::{Duration, Instant};

use super::kv::set_lock_delay;
use super::store::Store;
use super::types::{CRITICAL, Session};

/// Behaviour `delete`: held keys are deleted on invalidation.
pub const BEHAVIOR_DELETE: &str = "delete";
/// Behaviour `release` (default): held keys are released.
pub const BEHAVIOR_RELEASE: &str = "release";

/// Creates a session; the node must exist and every linked check must exist and not be critical.
pub fn session_create(st: &mut Store, idx: u64, s: &Session) -> Result<(), String> {
    if !st.nodes.contains_key(&s.node) {
        return Err(format!("Missing node registration for node {:?}", s.node));
    }
    let linked = s
        .node_checks
        .iter()
        .flatten()
        .cloned()
        .chain(s.service_checks.iter().flatten().map(|c| c.id.clone()));
    for id in linked {
        let chk = st.checks.get(&s.node).and_then(|m| m.get(&id));
        match chk {
            None => return Err(format!("Missing check '{id}' registration")),
            Some(c) if c.status == CRITICAL => {
                return Err(format!("Check '{id}' is in {CRITICAL} state"));
            }
            Some(_) => {}
        }
    }
    let mut s = s.clone();
    s.create_index = idx;
    s.modify_index = idx;
    st.set_session(idx, s);
    Ok(())
}

/// Destroys a session: its locks are released (or the keys deleted) and lock-delay starts.
pub fn session_destroy(st: &mut Store, idx: u64, id: &str, now: Instant) -> bool {
    let Some(sess) = st.remove_session_row(idx, id) else {
        return false;
    };
    super::query::delete_session_queries(st, idx, id);
    let held: Vec<String> =
        st.kv.values().filter(|e| e.session.as_deref() == Some(id)).map(|e| e.key.clone()).collect();
    let delay = Duration::from_nanos(sess.lock_delay);
    for key in held {
        set_lock_delay(st, &key, now, delay);
        if sess.behavior == BEHAVIOR_DELETE {
            st.remove_kv(idx, &key);
        } else if let Some(mut e) = st.kv.get(&key).cloned() {
            e.session = None;
            e.modify_index = idx;
            st.set_kv(idx, e);
        }
    }
    true
}

/// Invalidates every session on `node` linked to check `check_id`.
pub fn invalidate_linked_sessions(st: &mut Store, idx: u64, node: &str, check_id: &str, now: Instant) {
    let ids: Vec<String> =
        st.sessions.values().filter(|s| s.links_check(node, check_id)).map(|s| s.id.clone()).collect();
    for id in ids {
        session_destroy(st, idx, &id, now);
    }
}

/// Invalidates every session of `node` (the node is being deregistered).
pub fn invalidate_node_sessions(st: &mut Store, idx: u64, node: &str, now: Instant) {
    let ids: Vec<String> = st.sessions.values().filter(|s| s.node == node).map(|s| s.id.clone()).collect();
    for id in ids {
        session_destroy(st, idx, &id, now);
    }
}

/// Sessions of `node`.
pub fn node_sessions(st: &Store, node: &str) -> Vec<Session> {
    st.sessions.values().filter(|s| s.node == node).cloned().collect()
}
