//! `GET /v1/agent/monitor?loglevel=<level>[&logjson]`: the agent's log lines, streamed as
//! they happen (chunked), until the client goes away or the agent stops.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::Params;
use crate::telemetry::logs;
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/agent/monitor", get(monitor))
}

async fn monitor(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Read)?;
    let p = Params::parse(q.as_deref());
    let raw = p.get("loglevel").filter(|l| !l.is_empty()).unwrap_or("INFO");
    let level =
        logs::parse_level(raw).ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {raw}")))?;
    let json = p.get("logjson").is_some();
    let stream = logs::subscribe(level, json);
    let stop = st.leave.clone();
    let lines = futures::stream::unfold((stream, stop), |(mut stream, stop)| async move {
        let line = stream.next(&stop).await?;
        Some((Ok::<_, Infallible>(Bytes::from(line)), (stream, stop)))
    });
    let mut r = Response::new(Body::from_stream(lines));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(r)
}
