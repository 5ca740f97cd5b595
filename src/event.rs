//! Consul user events on one agent: firing (`PUT /v1/event/fire/:name`), the receiver-side
//! filters, and the buffer of the last [`MAX_EVENTS`] events this agent delivered
//! (`GET /v1/event/list`, blocking on an index derived from the newest event ID).
//!
//! ```text
//!  fire ─► validate (name, filters) ─► gossip::user_event ─► every member, this one too
//!  gossip::subscribe_user_events ─► run(): version, node / service / tag filters
//!        ─► buffer (ring of 256) ─► watch (wakes blocking lists) ─► subscribe() (exec)
//! ```
//!
//! Delivery is Serf's: best effort, no persistence, no ordering. The gossip layer spreads
//! every event to every member and delivers each one once; whether it concerns this agent is
//! decided here, as Consul's `shouldProcessUserEvent` does: the node filter must match the
//! node name, the service filter one of the local services (by name or ID), and the tag
//! filter one of that service's tags. Regexes are unanchored, like Go's `MatchString`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use regex::Regex;
use serde::{Serialize, Serializer};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::gossip::{self, Gossip, GossipError, USER_EVENT_VERSION};
use crate::local::LocalState;
use crate::state::types::Service;

/// How many delivered events an agent keeps (Consul's `eventBuf`).
pub const MAX_EVENTS: usize = 256;
/// Event names starting with this are reserved for Sekisho itself (`_rexec`).
pub const RESERVED_PREFIX: char = '_';

/// A user event in Consul's JSON shape (`/v1/event/fire`, `/v1/event/list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserEvent {
    /// A UUID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The event name.
    pub name: String,
    /// The payload: base64 in JSON, `null` when empty.
    #[serde(serialize_with = "base64_or_null")]
    pub payload: Option<Vec<u8>>,
    /// Regex on node names.
    pub node_filter: String,
    /// Regex on service names.
    pub service_filter: String,
    /// Regex on the matching service's tags.
    pub tag_filter: String,
    /// Always 1.
    pub version: u8,
    /// The Lamport time the pool gave the event.
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

fn base64_or_null<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match v {
        Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        None => s.serialize_none(),
    }
}

impl From<&gossip::UserEvent> for UserEvent {
    fn from(e: &gossip::UserEvent) -> Self {
        UserEvent {
            id: e.id.to_string(),
            name: e.name.clone(),
            payload: (!e.payload.is_empty()).then(|| e.payload.clone()),
            node_filter: e.node_filter.clone(),
            service_filter: e.service_filter.clone(),
            tag_filter: e.tag_filter.clone(),
            version: e.version,
            ltime: e.ltime,
        }
    }
}

/// What to fire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireRequest {
    /// The event name.
    pub name: String,
    /// Opaque bytes.
    pub payload: Vec<u8>,
    /// Regex on node names (empty: all).
    pub node_filter: String,
    /// Regex on service names (empty: no service needed).
    pub service_filter: String,
    /// Regex on tags of the matching service (needs `service_filter`).
    pub tag_filter: String,
}

/// Why an event was not fired.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// No name.
    #[error("User event missing name")]
    MissingName,
    /// A `_` name from outside.
    #[error("User event name {0:?} is reserved: names starting with '_' are for internal use")]
    Reserved(String),
    /// A tag filter alone.
    #[error("Cannot provide tag filter without service filter")]
    TagWithoutService,
    /// A filter that is not a regex.
    #[error("Invalid {which} filter: {reason}")]
    InvalidFilter {
        /// `node`, `service` or `tag`.
        which: &'static str,
        /// The regex error.
        reason: String,
    },
    /// Refused by gossip: too large ([`GossipError::UserEventTooLarge`]) or shut down.
    #[error(transparent)]
    Gossip(#[from] GossipError),
}

impl EventError {
    /// Larger than Serf's 512-byte limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self, EventError::Gossip(GossipError::UserEventTooLarge { .. }))
    }

    /// The caller's mistake (as opposed to a stopped agent).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, EventError::Gossip(_))
    }
}

/// The compiled filters of an event; `None` for an empty filter.
struct Filters {
    node: Option<Regex>,
    service: Option<Regex>,
    tag: Option<Regex>,
}

impl Filters {
    fn compile(node: &str, service: &str, tag: &str) -> Result<Filters, EventError> {
        if !tag.is_empty() && service.is_empty() {
            return Err(EventError::TagWithoutService);
        }
        let one = |which, re: &str| match re {
            "" => Ok(None),
            re => Regex::new(re)
                .map(Some)
                .map_err(|e| EventError::InvalidFilter { which, reason: e.to_string() }),
        };
        Ok(Filters { node: one("node", node)?, service: one("service", service)?, tag: one("tag", tag)? })
    }

    /// Consul's `shouldProcessUserEvent`, given the node name and its local services.
    fn admit(&self, node: &str, services: &[Service]) -> bool {
        if self.node.as_ref().is_some_and(|re| !re.is_match(node)) {
            return false;
        }
        let Some(service) = &self.service else { return true };
        services.iter().filter(|s| service.is_match(&s.service) || service.is_match(&s.id)).any(|s| {
            match &self.tag {
                None => true,
                Some(tag) => s.tags.iter().any(|t| tag.is_match(t)),
            }
        })
    }
}

/// Whether an event received over gossip is delivered on node `node` with `services`.
pub fn should_deliver(event: &gossip::UserEvent, node: &str, services: &[Service]) -> bool {
    if event.version > USER_EVENT_VERSION {
        tracing::warn!("event: ignoring {:?}: version {} is newer than ours", event.name, event.version);
        return false;
    }
    match Filters::compile(&event.node_filter, &event.service_filter, &event.tag_filter) {
        Ok(f) => f.admit(node, services),
        Err(e) => {
            tracing::warn!("event: ignoring {:?}: {e}", event.name);
            false
        }
    }
}

/// Consul's `uuidToUint64`: the two halves of the UUID XORed, the blocking index of a list
/// whose newest event has this ID (1 for an empty list, so watches do not spin).
pub fn index_of(events: &[UserEvent]) -> u64 {
    let Some(last) = events.last() else { return 1 };
    match uuid::Uuid::parse_str(&last.id) {
        Ok(id) => {
            let (hi, lo) = id.as_u64_pair();
            hi ^ lo
        }
        Err(_) => 1,
    }
}

/// This agent's events: fires them and keeps those delivered here. Cheap to share.
#[derive(Debug)]
pub struct Events {
    node: String,
    local: Arc<LocalState>,
    gossip: Gossip,
    buffer: Mutex<VecDeque<UserEvent>>,
    changed: watch::Sender<u64>,
    delivered: broadcast::Sender<UserEvent>,
    incoming: Mutex<Option<broadcast::Receiver<gossip::UserEvent>>>,
}

impl Events {
    /// Subscribes to `gossip` right away (so nothing fired before [`Events::run`] starts is
    /// missed); `node` is this agent's node name.
    pub fn new(node: impl Into<String>, local: Arc<LocalState>, gossip: Gossip) -> Arc<Events> {
        let incoming = Mutex::new(Some(gossip.subscribe_user_events()));
        Arc::new(Events {
            node: node.into(),
            local,
            gossip,
            buffer: Mutex::new(VecDeque::with_capacity(MAX_EVENTS)),
            changed: watch::channel(0).0,
            delivered: broadcast::channel(MAX_EVENTS).0,
            incoming,
        })
    }

    /// Delivers gossip's events through the filters until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(mut rx) = self.incoming.lock().take() else { return };
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("event: {n} user events were dropped before delivery");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if should_deliver(&event, &self.node, &self.local.services()) {
                self.deliver(UserEvent::from(&event));
            }
        }
    }

    fn deliver(&self, event: UserEvent) {
        tracing::debug!("event: delivered {:?} ({})", event.name, event.id);
        {
            let mut buf = self.buffer.lock();
            if buf.len() >= MAX_EVENTS {
                buf.pop_front();
            }
            buf.push_back(event.clone());
        }
        self.changed.send_modify(|n| *n += 1);
        let _ = self.delivered.send(event);
    }

    /// Fires an event from outside (the HTTP API): names starting with `_` are refused,
    /// except `_rexec`, which `sekisho exec` and Consul's `consul exec` fire over HTTP (the
    /// targets still refuse unless `disable_remote_exec = false`).
    pub fn fire(&self, req: FireRequest) -> Result<UserEvent, EventError> {
        if req.name.starts_with(RESERVED_PREFIX) && req.name != crate::exec::EVENT {
            return Err(EventError::Reserved(req.name));
        }
        self.fire_internal(req)
    }

    /// Fires an event, reserved names included (`_rexec` from `sekisho exec`).
    pub fn fire_internal(&self, req: FireRequest) -> Result<UserEvent, EventError> {
        if req.name.is_empty() {
            return Err(EventError::MissingName);
        }
        Filters::compile(&req.node_filter, &req.service_filter, &req.tag_filter)?;
        let mut event = gossip::UserEvent::new(req.name, req.payload);
        event.node_filter = req.node_filter;
        event.service_filter = req.service_filter;
        event.tag_filter = req.tag_filter;
        let fired = self.gossip.user_event(event)?;
        Ok(UserEvent::from(&fired))
    }

    /// The events delivered here, oldest first (at most [`MAX_EVENTS`]).
    pub fn list(&self) -> Vec<UserEvent> {
        self.buffer.lock().iter().cloned().collect()
    }

    /// Waits until an event is delivered after `seen` (from [`Events::watch`]) or `timeout`.
    pub async fn wait(seen: &mut watch::Receiver<u64>, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, seen.changed()).await, Ok(Ok(())))
    }

    /// A receiver that [`Events::wait`] wakes on each delivery; take it before reading the
    /// list so that no delivery between the two is missed.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Events delivered here from now on (for handlers such as remote exec).
    pub fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.delivered.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, name: &str, tags: &[&str]) -> Service {
        Service {
            id: id.into(),
            service: name.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Service::default()
        }
    }

    fn event(node: &str, service: &str, tag: &str) -> gossip::UserEvent {
        let mut e = gossip::UserEvent::new("deploy", Vec::new());
        e.node_filter = node.into();
        e.service_filter = service.into();
        e.tag_filter = tag.into();
        e
    }

    #[test]
    fn filters_follow_consuls_should_process_user_event() {
        let services = [service("web-1", "web", &["v1", "primary"]), service("db", "db", &[])];
        let cases = [
            (("", "", ""), "node-a", true),
            (("node-a", "", ""), "node-a", true),
            (("^node-b$", "", ""), "node-a", false),
            (("node", "", ""), "xnode-1", true), // unanchored, like Go's MatchString
            (("", "^web$", ""), "node-a", true),
            (("", "web-1", ""), "node-a", true), // the service ID matches too
            (("", "cache", ""), "node-a", false),
            (("", "web", "^prim"), "node-a", true),
            (("", "web", "v2"), "node-a", false),
            (("", "db", "v1"), "node-a", false), // the tag must be on the matching service
            (("node-a", "web", "v1"), "node-b", false),
        ];
        for ((n, s, t), node, want) in cases {
            assert_eq!(should_deliver(&event(n, s, t), node, &services), want, "{n:?} {s:?} {t:?} on {node}");
        }
        assert!(!should_deliver(&event("", "web", ""), "node-a", &[]), "no local services");
        assert!(!should_deliver(&event("(", "", ""), "node-a", &services), "bad regex");
        let mut newer = event("", "", "");
        newer.version = 2;
        assert!(!should_deliver(&newer, "node-a", &services));
    }

    #[test]
    fn invalid_filters_are_refused_when_firing() {
        let e = Filters::compile("", "", "v1").err().expect("tag without service");
        assert_eq!(e.to_string(), "Cannot provide tag filter without service filter");
        let e = Filters::compile("(", "", "").err().expect("bad regex");
        assert!(e.to_string().starts_with("Invalid node filter: "), "{e}");
        assert!(e.is_bad_request() && !e.is_too_large());
    }

    #[test]
    fn the_index_is_consuls_uuid_to_uint64() {
        let ev = |id: &str| UserEvent {
            id: id.into(),
            name: "x".into(),
            payload: None,
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            version: 1,
            ltime: 0,
        };
        assert_eq!(index_of(&[]), 1);
        // lower = 00000000-0000-0001, upper = 0000-000000000003 → 1 ^ 3
        assert_eq!(
            index_of(&[
                ev("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                ev("00000000-0000-0001-0000-000000000003")
            ]),
            2
        );
        assert_eq!(index_of(&[ev("01234567-89ab-cdef-0123-456789abcdef")]), 0);
    }

    #[test]
    fn json_has_consuls_field_names_and_base64_payload() {
        let mut e = gossip::UserEvent::new("deploy", b"hi".to_vec());
        e.ltime = 19;
        let v = serde_json::to_value(UserEvent::from(&e)).expect("json");
        assert_eq!(v["Payload"], "aGk=");
        assert_eq!(v["LTime"], 19);
        assert_eq!(v["Version"], 1);
        assert_eq!(v["ID"], e.id.to_string());
        let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
        let empty =
            serde_json::to_value(UserEvent::from(&gossip::UserEvent::new("x", Vec::new()))).expect("json");
        assert_eq!(empty["Payload"], serde_json::Value::Null);
    }
}
