//! Admission limits of the HTTP API (`limits.*`): what one client, or all of them, may ask of
//! this agent before it answers 429 or 503 instead of doing the work.
//!
//! ```text
//!  accept ─► per-IP connections (listen.rs) ─► 429 + close over http_max_conns_per_client
//!  request ─► guard: request_limits (reads / writes, token buckets) ─► 429 / 503 + Retry-After
//!                    ?index= > 0: http_max_blocking_queries slot   ─► 429
//!                    otherwise:   http_max_concurrent_requests slot ─► 503
//!            ─► handler (bodies read with read_body: capped while reading, 413)
//! ```
//! `/v1/agent/*` is answered by this agent alone (in Consul it never reaches the servers'
//! RPC rate limiter), so `request_limits` leaves it alone; the slot limits apply to it too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpState;
use super::error::ApiError;
use crate::config::{Limits, RequestLimitMode};
use crate::net::limit::{PerIpConns, TokenBucket};
use crate::telemetry::{self, names};

/// Consul's text (hashicorp/go-connlimit) for a connection over
/// `limits.http_max_conns_per_client`, answered 429 before the connection is closed.
pub const TOO_MANY_CONNS: &str =
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n";
/// Consul's answer to a read over `request_limits` (429; another server may have room).
pub const RATE_EXCEEDED_ELSEWHERE: &str = "rate limit exceeded, try a different server";
/// Consul's answer to a write over `request_limits` on the leader (503; only it can write).
pub const RATE_EXCEEDED_LATER: &str = "rate limit exceeded, try again later";
/// The answer to a blocking query over `limits.http_max_blocking_queries` (429).
pub const TOO_MANY_BLOCKING: &str = "Too many concurrent blocking queries on this agent, try again later";
/// The answer to a request over `limits.http_max_concurrent_requests` (503).
pub const TOO_MANY_REQUESTS: &str = "Too many requests in progress on this agent, try again later";

/// Consul's burst: `request_limits` buckets hold ten seconds' worth of requests.
const BURST_SECONDS: f64 = 10.0;
/// At most one log line this often about requests over `request_limits`.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The HTTP limits of one agent, shared by its HTTP and HTTPS listeners and every router.
#[derive(Debug)]
pub struct HttpLimits {
    /// Open HTTP and HTTPS connections per client IP (`http_max_conns_per_client`).
    pub(crate) conns: Arc<PerIpConns>,
    /// `http_read_header_timeout`, `None` when 0.
    pub(crate) header_read_timeout: Option<Duration>,
    /// `https_handshake_timeout`.
    pub(crate) handshake_timeout: Duration,
    /// `http_max_body_size`: bodies of endpoints without a limit of their own.
    pub(crate) max_body: usize,
    blocking: Option<Arc<Semaphore>>,
    concurrent: Option<Arc<Semaphore>>,
    rates: RequestRates,
}

impl HttpLimits {
    /// The limits `l` describes.
    pub fn new(l: &Limits) -> HttpLimits {
        let slots = |n: u32| (n > 0).then(|| Arc::new(Semaphore::new(n as usize)));
        HttpLimits {
            conns: PerIpConns::new(l.http_max_conns_per_client),
            header_read_timeout: Some(l.http_read_header_timeout).filter(|d| !d.is_zero()),
            handshake_timeout: l.https_handshake_timeout,
            max_body: usize::try_from(l.http_max_body_size).unwrap_or(usize::MAX),
            blocking: slots(l.http_max_blocking_queries),
            concurrent: slots(l.http_max_concurrent_requests),
            rates: RequestRates::new(&l.request_limits, Instant::now()),
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::new(&Limits::default())
    }
}

/// The verdict of [`RequestRates::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Within the rate (or no limit).
    Allow,
    /// Over the rate, served anyway (`permissive`).
    Permitted,
    /// Over the rate and refused (`enforcing`); a token is due after this long.
    Refuse(Duration),
}

/// `request_limits`: one global token bucket for reads and one for writes.
#[derive(Debug)]
pub(crate) struct RequestRates {
    mode: RequestLimitMode,
    read: Option<parking_lot::Mutex<TokenBucket>>,
    write: Option<parking_lot::Mutex<TokenBucket>>,
    last_log: parking_lot::Mutex<Option<Instant>>,
}

impl RequestRates {
    pub(crate) fn new(cfg: &crate::config::RequestLimits, now: Instant) -> RequestRates {
        let bucket = |rate: Option<f64>| {
            let rate = rate.filter(|_| cfg.mode != RequestLimitMode::Disabled)?;
            Some(parking_lot::Mutex::new(TokenBucket::new(rate, rate * BURST_SECONDS, now)))
        };
        RequestRates {
            mode: cfg.mode,
            read: bucket(cfg.read_rate),
            write: bucket(cfg.write_rate),
            last_log: parking_lot::Mutex::new(None),
        }
    }

    /// Takes a token for a read or a write at `now`.
    pub(crate) fn check(&self, write: bool, now: Instant) -> RateVerdict {
        let bucket = if write { &self.write } else { &self.read };
        let Some(bucket) = bucket else { return RateVerdict::Allow };
        let Err(wait) = bucket.lock().try_take(now) else { return RateVerdict::Allow };
        match self.mode {
            RequestLimitMode::Enforcing => RateVerdict::Refuse(wait),
            _ => RateVerdict::Permitted,
        }
    }

    fn should_log(&self, now: Instant) -> bool {
        let mut last = self.last_log.lock();
        if last.is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A blocking query: a read with `?index=` greater than 0.
fn is_blocking(req: &Request) -> bool {
    if is_write(req.method()) {
        return false;
    }
    let p = super::query::Params::parse(req.uri().query());
    p.get("index").and_then(|i| i.parse::<u64>().ok()).is_some_and(|i| i > 0)
}

/// A refusal: `status`, `text` and `Retry-After` (whole seconds, at least 1).
fn refuse(status: StatusCode, text: &str, retry_after: Duration, limit: &str) -> Response {
    telemetry::incr(names::LIMIT_REJECTED, &[("limit", limit)]);
    let mut r = ApiError { status, message: text.to_owned() }.into_response();
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

/// The request-level limits, as middleware.
pub(super) async fn guard(State(st): State<HttpState>, req: Request, next: Next) -> Response {
    let l = &st.limits;
    if !req.uri().path().starts_with("/v1/agent/")
        && let Some(r) = check_rate(&st, &l.rates, req.method(), req.uri().path())
    {
        return r;
    }
    let _slot = match take_slot(l, is_blocking(&req)) {
        Ok(slot) => slot,
        Err(Full { status, text, limit }) => return refuse(status, text, Duration::from_secs(1), limit),
    };
    next.run(req).await
}

fn check_rate(st: &HttpState, rates: &RequestRates, method: &Method, path: &str) -> Option<Response> {
    let write = is_write(method);
    let now = Instant::now();
    let verdict = rates.check(write, now);
    if verdict == RateVerdict::Allow {
        return None;
    }
    let limit_type = if write { "global/write" } else { "global/read" };
    let mode = if matches!(verdict, RateVerdict::Refuse(_)) { "enforcing" } else { "permissive" };
    telemetry::incr(names::RATE_LIMIT_EXCEEDED, &[("limit_type", limit_type), ("mode", mode)]);
    if rates.should_log(now) {
        tracing::warn!(limit_type, mode, %method, path, "HTTP request over limits.request_limits");
    }
    let RateVerdict::Refuse(wait) = verdict else { return None };
    // Only the leader writes: telling the client to try another server would not help.
    let on_leader = write && !st.server.is_client() && st.server.is_leader();
    Some(match on_leader {
        true => refuse(StatusCode::SERVICE_UNAVAILABLE, RATE_EXCEEDED_LATER, wait, "request_limits"),
        false => refuse(StatusCode::TOO_MANY_REQUESTS, RATE_EXCEEDED_ELSEWHERE, wait, "request_limits"),
    })
}

/// Every slot of a limit is taken: what to answer.
struct Full {
    status: StatusCode,
    text: &'static str,
    limit: &'static str,
}

/// A slot for a blocking query (`http_max_blocking_queries`) or another request
/// (`http_max_concurrent_requests`); `Ok(None)` when that limit is off.
fn take_slot(l: &HttpLimits, blocking: bool) -> Result<Option<OwnedSemaphorePermit>, Full> {
    let (slots, full) = match blocking {
        true => (
            &l.blocking,
            Full {
                status: StatusCode::TOO_MANY_REQUESTS,
                text: TOO_MANY_BLOCKING,
                limit: "http_max_blocking_queries",
            },
        ),
        false => (
            &l.concurrent,
            Full {
                status: StatusCode::SERVICE_UNAVAILABLE,
                text: TOO_MANY_REQUESTS,
                limit: "http_max_concurrent_requests",
            },
        ),
    };
    let Some(slots) = slots else { return Ok(None) };
    slots.clone().try_acquire_owned().map(Some).map_err(|_| full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RequestLimits;

    fn rates(mode: RequestLimitMode, read: Option<f64>, write: Option<f64>, now: Instant) -> RequestRates {
        RequestRates::new(&RequestLimits { mode, read_rate: read, write_rate: write }, now)
    }

    #[test]
    fn enforcing_refuses_past_ten_seconds_of_burst_then_recovers() {
        let t0 = Instant::now();
        let r = rates(RequestLimitMode::Enforcing, Some(2.0), None, t0);
        let allowed = (0..100).filter(|_| r.check(false, t0) == RateVerdict::Allow).count();
        assert_eq!(allowed, 20, "burst is ten seconds of the rate");
        assert!(matches!(r.check(false, t0), RateVerdict::Refuse(w) if w <= Duration::from_millis(500)));
        assert_eq!(r.check(true, t0), RateVerdict::Allow, "writes have no limit here");
        assert_eq!(r.check(false, t0 + Duration::from_millis(600)), RateVerdict::Allow);
    }

    #[test]
    fn permissive_serves_and_disabled_ignores_the_rates() {
        let t0 = Instant::now();
        let p = rates(RequestLimitMode::Permissive, Some(1.0), Some(1.0), t0);
        let verdicts: Vec<_> = (0..11).map(|_| p.check(true, t0)).collect();
        assert_eq!(verdicts[9], RateVerdict::Allow);
        assert_eq!(verdicts[10], RateVerdict::Permitted);
        let d = rates(RequestLimitMode::Disabled, Some(1.0), Some(1.0), t0);
        assert!((0..100).all(|_| d.check(true, t0) == RateVerdict::Allow));
    }

    #[test]
    fn only_reads_with_a_positive_index_are_blocking() {
        let req = |m: Method, uri: &str| {
            Request::builder().method(m).uri(uri).body(axum::body::Body::empty()).unwrap()
        };
        assert!(is_blocking(&req(Method::GET, "/v1/kv/a?index=5")));
        assert!(is_blocking(&req(Method::GET, "/v1/catalog/services?wait=1s&index=1")));
        assert!(!is_blocking(&req(Method::GET, "/v1/kv/a?index=0")));
        assert!(!is_blocking(&req(Method::GET, "/v1/kv/a?index=abc")));
        assert!(!is_blocking(&req(Method::GET, "/v1/kv/a")));
        assert!(!is_blocking(&req(Method::PUT, "/v1/kv/a?index=5")));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let r = refuse(StatusCode::TOO_MANY_REQUESTS, "x", Duration::from_millis(1500), "test");
        assert_eq!(r.headers()["Retry-After"], "2");
        let r = refuse(StatusCode::TOO_MANY_REQUESTS, "x", Duration::ZERO, "test");
        assert_eq!(r.headers()["Retry-After"], "1");
    }
}
