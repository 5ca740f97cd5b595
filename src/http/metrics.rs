//! `GET /v1/agent/metrics` (Consul's JSON, or Prometheus text with `?format=prometheus` or an
//! OpenMetrics `Accept` header) and the middleware that measures every API request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, RawQuery, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::telemetry::{self, names};
use sekisho_acl::{Access, Resource};

/// The content type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/agent/metrics", get(metrics))
}

async fn metrics(
    axum::extract::State(st): axum::extract::State<HttpState>,
    c: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Read)?;
    let p = Params::parse(q.as_deref());
    if !wants_prometheus(&p, &headers) {
        return json(&p, StatusCode::OK, None, &telemetry::render_json());
    }
    let Some(text) = telemetry::render_prometheus() else {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "Prometheus is not enabled since its retention time is not positive".into(),
        });
    };
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
    Ok(r)
}

/// Consul's test: `?format=prometheus`, or an `Accept` naming `application/openmetrics-text`
/// (what Prometheus sends) or `text/plain; version=0.4.0`.
fn wants_prometheus(p: &Params, headers: &HeaderMap) -> bool {
    if p.get("format") == Some("prometheus") {
        return true;
    }
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    accept.flat_map(|v| v.split(',')).any(|media| {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        mime == "application/openmetrics-text"
            || (mime == "text/plain" && parts.next() == Some("version=0.4.0"))
    })
}

/// The layer that measures every API request: `consul.api.http` (latency in ms by method
/// and route, Consul's metric) and `consul.api.http.requests` (count by method, route and
/// status code). A plain tower layer rather than `from_fn`: no boxing or cloning per request.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// [`TrackLayer`]'s service.
#[derive(Debug, Clone)]
pub(super) struct Track<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let method = req.method().clone();
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |m| path_label(m.as_str()));
        TrackFuture { inner: self.inner.call(req), start: Instant::now(), method, path }
    }
}

pin_project_lite::pin_project! {
    /// A request in flight; records its metrics when the response is ready.
    pub(super) struct TrackFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        method: Method,
        path: String,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &out {
            let ms = this.start.elapsed().as_secs_f64() * 1000.0;
            let labels = [("method", this.method.as_str()), ("path", this.path.as_str())];
            telemetry::sample_ms(names::API_HTTP, &labels, ms);
            let code = response.status();
            telemetry::incr(names::API_HTTP_REQUESTS, &[labels[0], labels[1], ("code", code.as_str())]);
        }
        Poll::Ready(out)
    }
}

/// Consul's `path` label: the route without its leading `/` and its parameters, `/` → `_`,
/// a trailing `_` where parameters followed (`/v1/kv/{*key}` → `v1_kv_`).
fn path_label(route: &str) -> String {
    let route = route.trim_start_matches('/');
    let fixed = match route.find('{') {
        Some(i) => &route[..i],
        None => route,
    };
    fixed.replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_labels_follow_consuls_patterns() {
        assert_eq!(path_label("/v1/kv/{*key}"), "v1_kv_");
        assert_eq!(path_label("/v1/kv"), "v1_kv");
        assert_eq!(path_label("/v1/catalog/service/{name}"), "v1_catalog_service_");
        assert_eq!(path_label("/v1/agent/self"), "v1_agent_self");
        assert_eq!(path_label("/v1/agent/check/pass/{*id}"), "v1_agent_check_pass_");
    }

    #[test]
    fn prometheus_is_chosen_by_query_or_accept() {
        let none = HeaderMap::new();
        assert!(wants_prometheus(&Params::parse(Some("format=prometheus")), &none));
        assert!(!wants_prometheus(&Params::parse(Some("format=json")), &none));
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
        );
        assert!(wants_prometheus(&Params::default(), &h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_prometheus(&Params::default(), &h));
    }
}
