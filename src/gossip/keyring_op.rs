//! Keyring operations across the pool (Consul does them with serf queries): the operation
//! goes to every live member over the push-pull TCP channel, encrypted with the current
//! keyring, and the answers are tallied the way serf's key manager does.
//!
//! ```text
//! Gossip::keyring(op) ──► this node: SharedRing::apply (spawn_blocking: the file write)
//!                    ├──► member 2: KeyringRequest(op) ──► apply ──► KeyringReply{keys, error}
//!                    └──► member n: ... (each within tcp_timeout; no answer = a failure)
//!          tally: Keys{k: holders}, PrimaryKeys{k: users}, NumNodes, Messages{node: error}
//! ```
//!
//! Rotation is `Install(new)` → `Use(new)` → `Remove(old)`: every member holds both keys
//! before any encrypts with the new one, and all encrypt with it before the old one goes,
//! so any two members share a key at every step.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::wire::StreamMsg;
use super::{Gossip, GossipError, MemberStatus, Shared, multi_error, stream};

/// One keyring operation (`consul keyring -list | -install | -use | -remove`), with the raw
/// key bytes ([`super::decode_key`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyringOp {
    /// Report the installed keys and the primary one.
    List,
    /// Add a key for decryption (a no-op where it is installed).
    Install(Vec<u8>),
    /// Encrypt with an installed key from now on.
    Use(Vec<u8>),
    /// Drop a key that is not primary (a no-op where it is absent).
    Remove(Vec<u8>),
}

impl KeyringOp {
    /// The operation's name, for logs.
    pub fn verb(&self) -> &'static str {
        match self {
            KeyringOp::List => "list",
            KeyringOp::Install(_) => "install",
            KeyringOp::Use(_) => "use",
            KeyringOp::Remove(_) => "remove",
        }
    }
}

/// Key material stays out of logs and panics.
impl fmt::Debug for KeyringOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringOp::List => f.write_str("List"),
            _ => write!(f, "{}(<redacted>)", self.verb()),
        }
    }
}

/// One member's answer on the wire: its keys (for a listing, base64, primary first) or why
/// it refused.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct KeyringReply {
    pub(crate) keys: Vec<String>,
    pub(crate) error: Option<String>,
}

impl fmt::Debug for KeyringReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyringReply({} keys, error: {:?})", self.keys.len(), self.error)
    }
}

/// The pool-wide result (one entry of Consul's `/v1/operator/keyring` answer).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyringResponse {
    /// For a listing: each key in base64, with the number of members that hold it.
    pub keys: BTreeMap<String, usize>,
    /// For a listing: each primary key, with the number of members that encrypt with it.
    pub primary_keys: BTreeMap<String, usize>,
    /// Members asked (the live ones, this node included).
    pub num_nodes: usize,
    /// Members that answered.
    pub num_resp: usize,
    /// Members that refused or did not answer.
    pub num_err: usize,
    /// Node name → why it failed (Consul's `Messages`).
    pub messages: BTreeMap<String, String>,
}

/// The keys are secrets: Debug shows how many there are.
impl fmt::Debug for KeyringResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringResponse")
            .field("keys", &self.keys.len())
            .field("primary_keys", &self.primary_keys.len())
            .field("num_nodes", &self.num_nodes)
            .field("num_resp", &self.num_resp)
            .field("num_err", &self.num_err)
            .field("messages", &self.messages)
            .finish()
    }
}

impl KeyringResponse {
    /// Serf's summary of a partial failure: `"2/5 nodes reported failure"`, or `None` when
    /// every member succeeded.
    pub fn error(&self) -> Option<String> {
        if self.num_err != 0 {
            return Some(format!("{}/{} nodes reported failure", self.num_err, self.num_nodes));
        }
        (self.num_resp != self.num_nodes)
            .then(|| format!("{}/{} nodes reported success", self.num_resp, self.num_nodes))
    }

    /// Consul's error text for the pool (`pool` such as `"dc1 (LAN)"`): a Go multierror with
    /// the summary, then one line per failed member. `None` when every member succeeded.
    pub fn error_text(&self, pool: &str) -> Option<String> {
        let summary = self.error()?;
        let mut lines = vec![format!("{pool} error: {summary}")];
        lines.extend(self.messages.iter().map(|(node, why)| format!("{node}: {why}")));
        Some(multi_error(&lines))
    }

    fn tally(&mut self, node: String, answer: Result<KeyringReply, String>) {
        let reply = match answer {
            Ok(KeyringReply { error: Some(e), .. }) | Err(e) => {
                self.num_err += 1;
                self.messages.insert(node, e);
                return;
            }
            Ok(reply) => reply,
        };
        self.num_resp += 1;
        if let Some(primary) = reply.keys.first() {
            *self.primary_keys.entry(primary.clone()).or_default() += 1;
        }
        for key in reply.keys {
            *self.keys.entry(key).or_default() += 1;
        }
    }
}

/// Runs `op` on this node's ring off the async threads (it may write the keyring file).
pub(crate) async fn apply_local(shared: Arc<Shared>, op: KeyringOp) -> KeyringReply {
    let listing = op == KeyringOp::List;
    let done = tokio::task::spawn_blocking(move || shared.keyring.apply(&op)).await;
    match done {
        Ok(Ok(keys)) => KeyringReply { keys: if listing { keys } else { Vec::new() }, error: None },
        Ok(Err(e)) => KeyringReply { keys: Vec::new(), error: Some(e.to_string()) },
        Err(e) => KeyringReply { keys: Vec::new(), error: Some(format!("keyring operation failed: {e}")) },
    }
}

async fn ask(shared: &Shared, target: SocketAddr, op: KeyringOp) -> Result<KeyringReply, String> {
    match stream::exchange(shared, target, &StreamMsg::KeyringRequest(op)).await? {
        StreamMsg::KeyringReply(reply) => Ok(reply),
        StreamMsg::Refuse(reason) => Err(reason),
        StreamMsg::PushPull(_) | StreamMsg::KeyringRequest(_) => {
            Err(format!("reply from {target}: unexpected message"))
        }
    }
}

impl Gossip {
    /// Runs `op` on every live member (this one locally) in parallel and tallies the
    /// answers; members that refuse or do not answer within `tcp_timeout` count as
    /// failures with a message. Refused outright when this node has no keys.
    pub async fn keyring(&self, op: KeyringOp) -> Result<KeyringResponse, GossipError> {
        let shared = self.inner.shared.clone();
        if !shared.keyring.read().is_enabled() {
            return Err(GossipError::EncryptionDisabled);
        }
        if self.inner.cancel.is_cancelled() {
            return Err(GossipError::Shutdown);
        }
        let (me, peers) = {
            let view = shared.view.lock();
            let me = view.local().name.clone();
            let peers: Vec<(String, SocketAddr)> = view
                .members()
                .into_iter()
                .filter(|m| m.status == MemberStatus::Alive && m.name != me)
                .map(|m| (m.name, SocketAddr::new(m.addr, m.port)))
                .collect();
            (me, peers)
        };
        match op {
            KeyringOp::List => tracing::debug!("gossip: keyring list on {} members", peers.len() + 1),
            _ => tracing::info!("gossip: keyring {} on {} members", op.verb(), peers.len() + 1),
        }
        let remote = futures::future::join_all(peers.into_iter().map(|(name, addr)| {
            let (shared, op) = (shared.clone(), op.clone());
            async move { (name, ask(&shared, addr, op).await) }
        }));
        let (local, remote) = tokio::join!(apply_local(shared.clone(), op), remote);
        let mut response = KeyringResponse { num_nodes: remote.len() + 1, ..KeyringResponse::default() };
        response.tally(me, Ok(local));
        for (name, answer) in remote {
            response.tally(name, answer);
        }
        Ok(response)
    }

    /// This node's keys alone (`?local-only`): each counted once, out of one node.
    pub async fn keyring_local(&self) -> Result<KeyringResponse, GossipError> {
        let shared = self.inner.shared.clone();
        if !shared.keyring.read().is_enabled() {
            return Err(GossipError::EncryptionDisabled);
        }
        let me = shared.view.lock().local().name.clone();
        let mut response = KeyringResponse { num_nodes: 1, ..KeyringResponse::default() };
        response.tally(me, Ok(apply_local(shared, KeyringOp::List).await));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(keys: &[&str]) -> Result<KeyringReply, String> {
        Ok(KeyringReply { keys: keys.iter().map(|k| (*k).to_owned()).collect(), error: None })
    }

    #[test]
    fn answers_are_tallied_like_serfs_key_manager() {
        let mut r = KeyringResponse { num_nodes: 4, ..KeyringResponse::default() };
        r.tally("a".into(), listing(&["new", "old"]));
        r.tally("b".into(), listing(&["old", "new"]));
        r.tally("c".into(), Ok(KeyringReply { keys: vec![], error: Some("refused".into()) }));
        r.tally("d".into(), Err("dial tcp 10.0.0.4:8301: i/o timeout".into()));
        assert_eq!(r.keys, BTreeMap::from([("new".into(), 2), ("old".into(), 2)]));
        assert_eq!(r.primary_keys, BTreeMap::from([("new".into(), 1), ("old".into(), 1)]));
        assert_eq!((r.num_resp, r.num_err), (2, 2));
        assert_eq!(r.error().as_deref(), Some("2/4 nodes reported failure"));
        assert_eq!(
            r.error_text("dc1 (LAN)").as_deref(),
            Some(
                "3 errors occurred:\n\t* dc1 (LAN) error: 2/4 nodes reported failure\n\t* c: refused\n\t\
                 * d: dial tcp 10.0.0.4:8301: i/o timeout\n\n"
            )
        );
        let ok = KeyringResponse { num_nodes: 1, num_resp: 1, ..KeyringResponse::default() };
        assert_eq!(ok.error_text("dc1 (LAN)"), None);
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let mut r = KeyringResponse { num_nodes: 1, ..KeyringResponse::default() };
        r.tally("a".into(), listing(&["c2VjcmV0"]));
        let reply = KeyringReply { keys: vec!["c2VjcmV0".into()], error: None };
        let text = format!("{r:?} {reply:?} {:?}", StreamMsg::KeyringReply(reply.clone()));
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }
}
