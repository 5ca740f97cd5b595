//! `/v1/event/fire/:name` and `/v1/event/list`: Consul's user events, answered by this agent
//! (client agents too: the list is the agent's own view, see [`crate::event`]).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{get, put};

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::event::{EventError, Events, FireRequest, UserEvent, index_of};
use crate::gossip::USER_EVENT_SIZE_LIMIT;
use sekisho_acl::{Access, Resource};

/// Bodies past this are refused before reading them whole (the event limit is far lower).
const READ_LIMIT: usize = 64 << 10;

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/event/fire/{*name}", put(fire))
        .route("/v1/event/fire/", put(missing_name))
        .route("/v1/event/fire", put(missing_name))
        .route("/v1/event/list", get(list))
}

async fn missing_name() -> ApiResult {
    Err(ApiError::bad_request("Missing name"))
}

fn event_error(e: EventError) -> ApiError {
    if e.is_too_large() {
        ApiError::too_large(e.to_string())
    } else if e.is_bad_request() {
        ApiError::bad_request(e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

/// Beyond Consul: remote exec also needs `agent:write` on every member the `-node` filter
/// selects (all members when it is empty), so a team's token runs commands only on its own
/// nodes. The service and tag filters only narrow the targets further, so they are not
/// needed for the check.
fn require_exec_targets(st: &HttpState, c: &Caller, node_filter: &str) -> Result<(), ApiError> {
    if !st.acl.enabled() {
        return Ok(());
    }
    let re = regex::Regex::new(node_filter)
        .map_err(|e| ApiError::bad_request(format!("Invalid node filter {node_filter:?}: {e}")))?;
    for m in st.gossip.members() {
        if re.is_match(&m.name) {
            c.require(Resource::Agent, &m.name, Access::Write)?;
        }
    }
    Ok(())
}

async fn fire(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    c.require(Resource::Event, &name, Access::Write)?;
    let payload = super::read_body(body, READ_LIMIT).await?.ok_or_else(|| {
        ApiError::too_large(format!(
            "User event exceeds {USER_EVENT_SIZE_LIMIT} bytes (payload over {READ_LIMIT} bytes)"
        ))
    })?;
    let filter = |k| p.get(k).unwrap_or_default().to_owned();
    if name == crate::exec::EVENT {
        require_exec_targets(&st, &c, &filter("node"))?;
    }
    let req = FireRequest {
        name,
        payload: payload.to_vec(),
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
    };
    let mut event = st.events.fire(req).map_err(event_error)?;
    event.ltime = 0; // Consul answers before Serf stamps the event
    json(&p, StatusCode::OK, None, &event)
}

/// The delivered events that pass `?name=` (and, a Sekisho extension, `?node=`, `?service=`,
/// `?tag=`: the event's filter equals the given text).
/// Events the caller may not read (`event:read` on the name) are left out; the flag says
/// whether any were.
fn matching(events: &Events, p: &Params, c: &Caller) -> (Vec<UserEvent>, bool) {
    let want = |k: &str, v: &str| p.get(k).is_none_or(|w| w.is_empty() || w == v);
    let wanted: Vec<UserEvent> = events
        .list()
        .into_iter()
        .filter(|e| {
            want("name", &e.name)
                && want("node", &e.node_filter)
                && want("service", &e.service_filter)
                && want("tag", &e.tag_filter)
        })
        .collect();
    let total = wanted.len();
    let readable: Vec<UserEvent> =
        wanted.into_iter().filter(|e| c.allows(Resource::Event, &e.name, Access::Read)).collect();
    let filtered = readable.len() < total;
    (readable, filtered)
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let wait = opts.wait + opts.wait / 16;
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = st.events.watch();
    let events = loop {
        let (events, filtered) = matching(&st.events, &p, &c);
        // The index is not monotonic: block only while it equals the caller's.
        if opts.min_index == 0 || index_of(&events) != opts.min_index {
            break (events, filtered);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() || !Events::wait(&mut seen, left).await {
            break matching(&st.events, &p, &c);
        }
    };
    let (events, filtered) = events;
    let mut r = json(&p, StatusCode::OK, None, &events)?;
    let index = HeaderValue::from(index_of(&events));
    r.headers_mut().insert("X-Consul-Index", index);
    Ok(super::kv::mark_filtered(r, filtered))
}
