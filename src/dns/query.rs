//! `<query>.query[.<dc>].<domain>` (and RFC 2782 `_<query>._<proto>.query...`): prepared
//! queries over DNS, answered by the query's own execution, so templates, health, tags,
//! `Near`, ACLs (the query's `Token`, else the agent's default token) and failover behave
//! exactly as `GET /v1/query/<name>/execute`.
//!
//! ```text
//!  lookup ─► Server::forward_dc(dc, GET /v1/query/<name>/execute) ─► Nodes, DNS.TTL, Datacenter
//!    server, this datacenter: its own HTTP API      client agent: a server's, over /rpc/v1/http
//!    `.query.<dc>`: a server of that datacenter, where the query is defined (as in Consul)
//! ```
//!
//! The agent's node (for `Near: "_agent"`) and the asker's address (for `_ip`) go with the
//! request, as Consul's DNS sends its agent and source.

use std::net::IpAddr;
use std::time::Duration;

use crate::server::{ProxyRequest, Server};
use crate::state::query::ExecuteResponse;

/// One DNS prepared-query lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryLookup {
    /// The query's ID or name (or a name a template matches).
    pub(crate) name: String,
    /// Another datacenter to run it in (`<name>.query.<dc>.<domain>`).
    pub(crate) datacenter: Option<String>,
    /// The agent answering DNS.
    pub(crate) agent: String,
    /// The asker's address.
    pub(crate) source: Option<IpAddr>,
    /// The agent's default token, else `anonymous` (`None`: ACLs are off here).
    pub(crate) token: Option<String>,
    /// `dns_config.allow_stale`.
    pub(crate) stale: bool,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryAnswer {
    /// No query resolves from the name (NXDOMAIN).
    NotFound,
    /// The execution's answer.
    Found(ExecuteResponse),
    /// Anything else (SERVFAIL): the text says why.
    Failed(String),
}

/// How long a lookup may take (failover included).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `l` as the query's execution in its datacenter (this one unless named).
pub(crate) async fn lookup(server: &Server, l: &QueryLookup) -> QueryAnswer {
    let dc = l.datacenter.clone().unwrap_or_else(|| server.config().datacenter.clone());
    let r = match server.forward_dc(&dc, request(l), LOOKUP_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => return QueryAnswer::Failed(e.to_string()),
    };
    match r.status {
        200 => serde_json::from_slice(&r.body)
            .map(QueryAnswer::Found)
            .unwrap_or_else(|e| QueryAnswer::Failed(format!("undecodable execute answer: {e}"))),
        404 => QueryAnswer::NotFound,
        status => QueryAnswer::Failed(format!("{status}: {}", String::from_utf8_lossy(&r.body))),
    }
}

/// The execute request a lookup becomes (`forward_dc` adds `dc`).
fn request(l: &QueryLookup) -> ProxyRequest {
    let mut path = format!("/v1/query/{}/execute", crate::client::url::escape_query(&l.name));
    if l.stale {
        path.push_str("?stale");
    }
    let mut headers = vec![(crate::http::prepared_query::AGENT_NODE_HEADER.to_owned(), l.agent.clone())];
    if let Some(ip) = l.source {
        headers.push(("X-Forwarded-For".to_owned(), ip.to_string()));
    }
    if let Some(t) = &l.token {
        headers.push(("X-Consul-Token".to_owned(), t.clone()));
    }
    ProxyRequest { method: "GET".into(), path_and_query: path, headers, body: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_becomes_an_execute_request_with_its_agent_source_and_token() {
        let l = QueryLookup {
            name: "geo db".into(),
            datacenter: Some("dc2".into()),
            agent: "web-1".into(),
            source: Some("10.0.0.9".parse().unwrap()),
            token: Some("secret".into()),
            stale: true,
        };
        let r = request(&l);
        assert_eq!(r.path_and_query, "/v1/query/geo%20db/execute?stale");
        let h = |k: &str| r.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(h("X-Sekisho-Agent-Node"), Some("web-1"));
        assert_eq!(h("X-Forwarded-For"), Some("10.0.0.9"));
        assert_eq!(h("X-Consul-Token"), Some("secret"));
        let local = request(&QueryLookup { datacenter: None, stale: false, source: None, token: None, ..l });
        assert_eq!(local.path_and_query, "/v1/query/geo%20db/execute");
        assert_eq!(local.headers.len(), 1);
    }
}
