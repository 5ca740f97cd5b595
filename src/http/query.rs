//! Consul's query parameters: presence-style booleans, repeatable `tag`, blocking (`index`,
//! `wait`), consistency (`stale`, `consistent`), `pretty`, `filter`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::server::{Consistency, QueryMeta, QueryOptions};

/// Default and maximum blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul caps `wait` at 10 minutes.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Decoded query string.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a raw query string (`a=1&b&tag=x&tag=y`).
    pub fn parse(raw: Option<&str>) -> Params {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Params { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (repeatable parameters).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// Presence-style boolean: set unless given as `false` or `0`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(v) if !v.eq_ignore_ascii_case("false") && v != "0")
    }

    /// An unsigned integer parameter; a malformed one is a 400 naming it.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("Invalid {name} value: {v:?}")))
            }
        }
    }

    /// Blocking and consistency options.
    pub fn query_options(&self) -> Result<QueryOptions, ApiError> {
        let min_index = self.u64("index")?.unwrap_or(0);
        let wait = match self.get("wait") {
            None | Some("") => DEFAULT_WAIT,
            Some(w) => crate::config::parse_go_duration(w)
                .map_err(|_| ApiError::bad_request(format!("Invalid wait time: {w:?}")))?,
        };
        let stale = self.flag("stale");
        let consistent = self.flag("consistent");
        if stale && consistent {
            return Err(ApiError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        let consistency = if consistent {
            Consistency::Consistent
        } else if stale {
            Consistency::Stale
        } else {
            Consistency::Default
        };
        Ok(QueryOptions { min_index, wait: wait.min(MAX_WAIT), consistency })
    }

    /// `node-meta=key:value` pairs (repeatable; a node must carry all of them).
    pub fn node_meta(&self) -> Vec<(String, String)> {
        self.all("node-meta")
            .into_iter()
            .map(|kv| match kv.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect()
    }

    /// The compiled `filter`, if any.
    pub fn filter(&self) -> Result<Option<Filter>, ApiError> {
        match self.get("filter") {
            None => Ok(None),
            Some(f) if f.trim().is_empty() => Ok(None),
            Some(f) => Filter::parse(f).map(Some).map_err(|e| ApiError::bad_request(e.to_string())),
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serializes `body` as JSON (indented with `?pretty`) with the query-meta headers.
pub fn json<T: Serialize + ?Sized>(
    p: &Params,
    status: StatusCode,
    meta: Option<&QueryMeta>,
    body: &T,
) -> ApiResult {
    let bytes = if p.flag("pretty") { serde_json::to_vec_pretty(body) } else { serde_json::to_vec(body) }
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert("Content-Type", HeaderValue::from_static("application/json"));
    if let Some(m) = meta {
        add_meta(&mut r, m);
    }
    Ok(r)
}

/// Adds `X-Consul-Index`, `X-Consul-KnownLeader`, `X-Consul-LastContact` and
/// `X-Consul-Effective-Consistency`.
pub fn add_meta(r: &mut Response, m: &QueryMeta) {
    let h = r.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from(m.index));
    h.insert("X-Consul-KnownLeader", HeaderValue::from_static(if m.known_leader { "true" } else { "false" }));
    h.insert("X-Consul-LastContact", HeaderValue::from(m.last_contact_ms));
    h.insert("X-Consul-Effective-Consistency", HeaderValue::from_static(m.consistency.header_value()));
}

/// A 404 with an empty body and the query-meta headers (Consul's KV miss).
pub fn not_found_with_meta(m: &QueryMeta) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_FOUND;
    add_meta(&mut r, m);
    r
}
