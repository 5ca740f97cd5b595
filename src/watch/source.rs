//! [`HttpSource`]: the blocking queries of each watch type over [`Client`].

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use super::plan::WatchKind;
use super::runner::{Source, Update};
use crate::client::Client;
use crate::client::url::append_param;

/// How long each blocking query waits (Consul's server default).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);

/// Reads one watch type's view from an agent.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: Client,
    kind: WatchKind,
    wait: Duration,
    /// The newest event handed on (event watches report only newer ones).
    last_event: Option<String>,
}

impl HttpSource {
    /// A source for `kind` through `client` (which carries the token, `dc` and `stale`).
    pub fn new(client: Client, kind: WatchKind) -> Self {
        HttpSource { client, kind, wait: DEFAULT_WAIT, last_event: None }
    }

    /// Sets the blocking wait of each query.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    async fn query(&self, index: u64) -> Result<Update, String> {
        let mut path = self.kind.path();
        if index > 0 {
            append_param(&mut path, "index", Some(&index.to_string()));
            append_param(&mut path, "wait", Some(&format!("{}ms", self.wait.as_millis())));
        }
        // The server adds up to wait/16 of jitter; past that the connection is presumed dead.
        let limit = self.wait + self.wait / 16 + Duration::from_secs(5);
        let sent = tokio::time::timeout(limit, self.client.request(Method::GET, &path, None)).await;
        let response = sent.map_err(|_| format!("GET {path}: no answer within {limit:?}"))?;
        let response = response.map_err(|e| e.to_string())?;
        let missing_ok = matches!(self.kind, WatchKind::Key { .. } | WatchKind::KeyPrefix { .. });
        let body = if response.status == StatusCode::NOT_FOUND && missing_ok {
            Value::Null
        } else {
            let response = response.clone().error_for_status().map_err(|e| e.to_string())?;
            if response.body.is_empty() {
                Value::Null
            } else {
                response.json(&path).map_err(|e| e.to_string())?
            }
        };
        let index = response.index().ok_or_else(|| format!("GET {path}: Failed to parse X-Consul-Index"))?;
        Ok(Update { index, body: self.shape(body) })
    }

    /// Consul's result shapes: one entry (or `null`) for `key`; for `event`, only the events
    /// after the newest one already handed on.
    fn shape(&self, body: Value) -> Value {
        match (&self.kind, body) {
            (WatchKind::Key { .. }, Value::Array(a)) => a.into_iter().next().unwrap_or(Value::Null),
            (WatchKind::Event { .. }, Value::Array(events)) => {
                let seen = self.last_event.as_deref().and_then(|id| {
                    events.iter().position(|e| e.get("ID").and_then(Value::as_str) == Some(id))
                });
                Value::Array(match seen {
                    Some(i) => events.into_iter().skip(i + 1).collect(),
                    None => events,
                })
            }
            (_, body) => body,
        }
    }
}

impl Source for HttpSource {
    async fn fetch(&mut self, index: u64) -> Result<Update, String> {
        let update = self.query(index).await?;
        if let Some(id) = update.body.as_array().and_then(|a| a.last()).and_then(|e| e.get("ID"))
            && matches!(self.kind, WatchKind::Event { .. })
        {
            self.last_event = id.as_str().map(str::to_owned);
        }
        Ok(update)
    }
}
