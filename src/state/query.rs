//! Prepared queries (Consul's `prepared-queries` table): stored service queries executed by
//! ID or name, over HTTP (`/v1/query/:id/execute`) and DNS (`<name>.query.consul`).
//!
//! ```text
//!  HTTP POST/PUT ─ validate (pre-Raft) ─► Command::PreparedQuery(QueryOp) ─► query_apply:
//!      unique name (case-insensitive), name ≠ another query's ID, session exists,
//!      one catch-all template, template compiles
//!  execute(name) ─► query_resolve: ID ─► exact name ─► longest template prefix (rendered)
//!      ─► local_instances: health (critical out; OnlyPassing: warning out; IgnoreCheckIDs)
//!         ─► NodeMeta, ServiceMeta, Tags (`!tag` excludes) ─► caller: ACL, near, limit
//!      empty ─► failover_order(NearestN by RTT, then Datacenters) ─► remote DCs in turn
//! ```
//!
//! A query bound to a session is deleted when the session is destroyed or invalidated, in
//! the same Raft entry (`delete_session_queries`, called by `session_destroy`).

mod template;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use template::{CompiledTemplate, compile};

use super::Store;
use super::store::Table;
use super::types::{CRITICAL, HealthCheck, Node, PASSING, Service};

/// The only template type Consul knows.
pub const TEMPLATE_NAME_PREFIX_MATCH: &str = "name_prefix_match";
/// What a `Token` is shown as to callers without `acl:write`.
pub const REDACTED_TOKEN: &str = "<hidden>";
/// Consul's text (and 404) for a query that does not resolve.
pub const QUERY_NOT_FOUND: &str = "Query not found";

/// A prepared query (`structs.PreparedQuery`), in Consul's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PreparedQuery {
    /// A UUID chosen by the server.
    #[serde(rename = "ID")]
    pub id: String,
    /// Optional, unique (case-insensitively); a template's name is the prefix it matches.
    pub name: String,
    /// A session whose end deletes the query.
    pub session: String,
    /// The token executions run under (instead of the caller's), when set.
    pub token: String,
    /// Set for templates.
    pub template: QueryTemplate,
    /// What to look up.
    pub service: ServiceQuery,
    /// DNS answer options.
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    /// The Raft index of its creation.
    pub create_index: u64,
    /// The Raft index of its last change.
    pub modify_index: u64,
}

/// `Template`: `Type` (empty for a static query), `Regexp`, `RemoveEmptyTags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct QueryTemplate {
    /// `name_prefix_match` for templates.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Matched against the whole name; its groups are `${match(N)}`.
    pub regexp: String,
    /// Drop empty strings from `Service.Tags` after interpolation.
    pub remove_empty_tags: bool,
}

/// `Service`: the lookup and its filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceQuery {
    /// The service name (required).
    pub service: String,
    /// Where to look when the local datacenter has no healthy instance.
    pub failover: QueryFailover,
    /// Leave out instances with warning checks too.
    pub only_passing: bool,
    /// Checks that never make an instance unhealthy.
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Option<Vec<String>>,
    /// Sort by RTT from this node (`_agent`: the agent asked, `_ip`: the node with the
    /// caller's address).
    pub near: String,
    /// Required tags, and `!tag` for excluded ones (case-insensitive).
    pub tags: Option<Vec<String>>,
    /// Node metadata every result's node must carry.
    pub node_meta: Option<BTreeMap<String, String>>,
    /// Service metadata every result must carry.
    pub service_meta: Option<BTreeMap<String, String>>,
    /// Connect-capable instances only (refused: Sekisho has no Connect).
    pub connect: bool,
}

/// `Failover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct QueryFailover {
    /// How many of the nearest other datacenters to try (by median WAN RTT).
    #[serde(rename = "NearestN")]
    pub nearest_n: i64,
    /// Datacenters tried after the nearest ones, in this order.
    pub datacenters: Option<Vec<String>>,
    /// An ordered list of datacenters (Consul 1.14+; cannot be combined with the others).
    pub targets: Option<Vec<FailoverTarget>>,
}

/// One `Failover.Targets` entry. Cluster peers are not supported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct FailoverTarget {
    /// A cluster peer (refused).
    pub peer: String,
    /// A WAN-federated datacenter.
    pub datacenter: String,
}

/// `DNS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct QueryDns {
    /// Go duration; wins over `dns_config.service_ttl`.
    #[serde(rename = "TTL")]
    pub ttl: String,
}

impl PreparedQuery {
    /// Whether this is a template (`Template.Type` set).
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }

    /// The name `query` ACL rules are checked against, or `None` when no rule applies
    /// (an unnamed static query: whoever knows its ID may use it, as in Consul).
    pub fn acl_prefix(&self) -> Option<&str> {
        (!self.name.is_empty() || self.is_template()).then_some(self.name.as_str())
    }

    /// The DNS TTL the query sets, if any.
    pub fn dns_ttl(&self) -> Option<Duration> {
        (!self.dns.ttl.is_empty()).then(|| crate::config::parse_go_duration(&self.dns.ttl).ok()).flatten()
    }
}

/// A prepared-query write. IDs are chosen before the entry is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryOp {
    /// A new query (its ID must be unused).
    Create(PreparedQuery),
    /// Replaces an existing query.
    Update(PreparedQuery),
    /// Deletes a query by ID.
    Delete(String),
}

/// Applies `op` at Raft index `idx`; the error is Consul's text.
pub fn query_apply(st: &mut Store, idx: u64, op: &QueryOp) -> Result<(), String> {
    match op {
        QueryOp::Create(q) => {
            if st.queries.contains_key(&q.id) {
                return Err(format!("prepared query ID {:?} is already in use", q.id));
            }
            query_set(st, idx, q)
        }
        QueryOp::Update(q) => {
            if !st.queries.contains_key(&q.id) {
                return Err(non_existent(&q.id));
            }
            query_set(st, idx, q)
        }
        QueryOp::Delete(id) => {
            if st.remove_query(idx, id).is_none() {
                return Err(non_existent(id));
            }
            Ok(())
        }
    }
}

/// Consul's text for an update or delete of a query that does not exist.
pub fn non_existent(id: &str) -> String {
    format!("Cannot modify non-existent prepared query: '{id}'")
}

fn query_set(st: &mut Store, idx: u64, q: &PreparedQuery) -> Result<(), String> {
    if q.id.is_empty() {
        return Err("Missing query ID".into());
    }
    let others = || st.queries.values().filter(|o| o.id != q.id);
    if !q.name.is_empty() {
        if others().any(|o| o.name.eq_ignore_ascii_case(&q.name)) {
            return Err(format!("name '{}' aliases an existing query name", q.name));
        }
    } else if q.is_template() && others().any(|o| o.is_template() && o.name.is_empty()) {
        return Err("a query template with an empty name already exists".into());
    }
    if is_uuid(&q.name) && st.queries.keys().any(|id| id.eq_ignore_ascii_case(&q.name)) {
        return Err(format!("name '{}' aliases an existing query ID", q.name));
    }
    if !q.session.is_empty() && !st.sessions.contains_key(&q.session) {
        return Err(format!("invalid session {:?}", q.session));
    }
    if q.is_template() {
        compile(q).map_err(|e| format!("failed compiling template: {e}"))?;
    }
    let mut q = q.clone();
    q.create_index = st.queries.get(&q.id).map_or(idx, |o| o.create_index);
    q.modify_index = idx;
    st.set_query(idx, q);
    Ok(())
}

/// Deletes every query bound to `session` (the session is being destroyed).
pub(crate) fn delete_session_queries(st: &mut Store, idx: u64, session: &str) {
    let ids: Vec<String> =
        st.queries.values().filter(|q| q.session == session).map(|q| q.id.clone()).collect();
    for id in ids {
        st.remove_query(idx, &id);
    }
}

/// The query with ID `id`.
pub fn query_get<'s>(st: &'s Store, id: &str) -> Option<&'s PreparedQuery> {
    st.queries.get(id)
}

/// Every query, by ID.
pub fn query_list(st: &Store) -> Vec<PreparedQuery> {
    st.queries.values().cloned().collect()
}

/// The index blocking query reads report.
pub fn query_index(st: &Store) -> u64 {
    st.index(Table::PreparedQueries)
}

/// Whether `s` looks like a UUID (Consul's `isUUID`).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups.iter().zip(lens).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Finds the query `id_or_name` names: by ID (templates cannot be), then by exact name,
/// then the template with the longest matching prefix (case-insensitive), rendered for
/// the name. `Ok(None)`: nothing matches.
pub fn query_resolve(st: &Store, id_or_name: &str) -> Result<Option<PreparedQuery>, String> {
    if id_or_name.is_empty() {
        return Err("Missing query ID".into());
    }
    if is_uuid(id_or_name)
        && let Some(q) = st.queries.get(id_or_name).or_else(|| find_id_ignoring_case(st, id_or_name))
    {
        if q.is_template() {
            return Err("prepared query templates can only be resolved up by name, not by ID".into());
        }
        return Ok(Some(q.clone()));
    }
    let exact = st.queries.values().find(|q| !q.name.is_empty() && q.name.eq_ignore_ascii_case(id_or_name));
    let lower = id_or_name.to_ascii_lowercase();
    let chosen = exact.or_else(|| {
        st.queries
            .values()
            .filter(|q| q.is_template() && lower.starts_with(&q.name.to_ascii_lowercase()))
            .max_by_key(|q| q.name.len())
    });
    let Some(q) = chosen else { return Ok(None) };
    if !q.is_template() {
        return Ok(Some(q.clone()));
    }
    compile(q)?.render(id_or_name).map(Some)
}

fn find_id_ignoring_case<'s>(st: &'s Store, id: &str) -> Option<&'s PreparedQuery> {
    st.queries.values().find(|q| q.id.eq_ignore_ascii_case(id))
}

/// The checks Consul runs before a create or update reaches Raft (`parseQuery`); the
/// error starts with `Invalid prepared query:`. Sekisho also refuses what it cannot run:
/// Connect-only queries and cluster-peer failover targets.
pub fn validate(q: &PreparedQuery) -> Result<(), String> {
    let bad = |e: String| Err(format!("Invalid prepared query: {e}"));
    if q.name.is_empty() && !q.is_template() && q.session.is_empty() {
        return bad("Must be bound to a session".into());
    }
    if q.token == REDACTED_TOKEN {
        return bad(format!(
            "Bad Token '{}', it looks like a query definition with a redacted token was submitted",
            q.token
        ));
    }
    if let Err(e) = validate_service(&q.service) {
        return bad(e);
    }
    if let Err(e) = validate_dns_ttl(&q.dns.ttl) {
        return bad(e);
    }
    Ok(())
}

fn validate_service(s: &ServiceQuery) -> Result<(), String> {
    if s.service.is_empty() {
        return Err("Must provide a Service name to query".into());
    }
    let f = &s.failover;
    if f.nearest_n < 0 {
        return Err(format!("Bad NearestN '{}', must be >= 0", f.nearest_n));
    }
    let targets = f.targets.as_deref().unwrap_or_default();
    if (f.nearest_n != 0 || f.datacenters.as_ref().is_some_and(|d| !d.is_empty())) && !targets.is_empty() {
        return Err("Targets cannot be populated with NearestN or Datacenters".into());
    }
    if let Some(t) = targets.iter().find(|t| !t.peer.is_empty()) {
        return Err(format!("Bad Target peer '{}': cluster peering is not supported", t.peer));
    }
    if s.connect {
        return Err("Connect-capable service lookups are not supported".into());
    }
    validate_node_meta(s.node_meta.as_ref())
}

/// Consul's `ValidateNodeMetadata(meta, allowConsulPrefix = true)`.
fn validate_node_meta(meta: Option<&BTreeMap<String, String>>) -> Result<(), String> {
    let Some(meta) = meta else { return Ok(()) };
    if meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (k, v) in meta {
        let problem = if k.is_empty() {
            Some("Key cannot be blank".to_string())
        } else if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Some("Key contains invalid characters".to_string())
        } else if k.len() > 128 {
            Some("Key is too long (limit: 128 characters)".to_string())
        } else if v.len() > 512 {
            Some("Value is too long (limit: 512 characters)".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(format!("Couldn't load metadata pair ('{k}', '{v}'): {p}"));
        }
    }
    Ok(())
}

fn validate_dns_ttl(ttl: &str) -> Result<(), String> {
    if ttl.is_empty() {
        return Ok(());
    }
    if let Some(abs) = ttl.strip_prefix('-')
        && let Ok(d) = crate::config::parse_go_duration(abs)
        && !d.is_zero()
    {
        return Err(format!("DNS TTL '-{}', must be >=0", d.as_nanos()));
    }
    crate::config::parse_go_duration(ttl).map(drop).map_err(|e| format!("Bad DNS TTL '{ttl}': time: {e}"))
}

/// One result: a service instance with its node's checks and its own, shaped like a
/// `/v1/health/service` entry (`{"Node","Service","Checks"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceInstance {
    /// The node.
    pub node: Node,
    /// The instance.
    pub service: Service,
    /// Its node's checks and its own.
    pub checks: Vec<HealthCheck>,
}

/// The answer of an execution (`PreparedQueryExecuteResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ExecuteResponse {
    /// The service the query selected (after interpolation).
    pub service: String,
    /// The healthy instances, nearest first when sorted.
    pub nodes: Vec<ServiceInstance>,
    /// The query's DNS options.
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    /// The datacenter that answered.
    pub datacenter: String,
    /// How many other datacenters were tried.
    pub failovers: u32,
}

/// The instances of the query's service in this store that pass its health, metadata and
/// tag filters, ordered by node then service ID (the caller shuffles or sorts).
pub fn local_instances(st: &Store, q: &ServiceQuery) -> Vec<ServiceInstance> {
    let mut out = Vec::new();
    for (node_name, services) in &st.services {
        let Some(node) = st.nodes.get(node_name) else { continue };
        for svc in services.values().filter(|s| s.service.eq_ignore_ascii_case(&q.service)) {
            let checks = st
                .checks
                .get(node_name)
                .map(|m| {
                    m.values()
                        .filter(|c| c.service_id.is_empty() || c.service_id == svc.id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            out.push(ServiceInstance { node: node.clone(), service: svc.clone(), checks });
        }
    }
    filter_instances(q, out)
}

/// The query's filters over a list of instances (local, or a remote datacenter's health
/// answer): health with `OnlyPassing` and `IgnoreCheckIDs`, `NodeMeta`, `ServiceMeta`, `Tags`.
pub fn filter_instances(q: &ServiceQuery, all: Vec<ServiceInstance>) -> Vec<ServiceInstance> {
    let ignored = q.ignore_check_ids.as_deref().unwrap_or_default();
    all.into_iter()
        .filter(|i| healthy(i, q.only_passing, ignored))
        .filter(|i| meta_matches(i.node.meta.as_ref(), q.node_meta.as_ref()))
        .filter(|i| meta_matches(i.service.meta.as_ref(), q.service_meta.as_ref()))
        .filter(|i| tags_match(&i.service.tags, q.tags.as_deref().unwrap_or_default()))
        .collect()
}

/// Consul's `FilterIgnore`: no critical check (and, with `only_passing`, only passing ones),
/// not counting the ignored checks.
fn healthy(i: &ServiceInstance, only_passing: bool, ignored: &[String]) -> bool {
    i.checks
        .iter()
        .filter(|c| !ignored.contains(&c.check_id))
        .all(|c| c.status != CRITICAL && (!only_passing || c.status == PASSING))
}

fn meta_matches(have: Option<&BTreeMap<String, String>>, want: Option<&BTreeMap<String, String>>) -> bool {
    want.into_iter().flatten().all(|(k, v)| have.and_then(|m| m.get(k)) == Some(v))
}

/// Every plain tag present and no `!tag` present, case-insensitively.
fn tags_match(have: &[String], want: &[String]) -> bool {
    let has = |t: &str| have.iter().any(|h| h.eq_ignore_ascii_case(t));
    want.iter().all(|t| match t.strip_prefix('!') {
        Some(not) => !has(not),
        None => has(t),
    })
}

/// The datacenters a failover tries, in order: `Targets` when set; otherwise the
/// `NearestN` nearest other datacenters, then `Datacenters` not already chosen. Unknown
/// datacenters (not in `by_distance`) are skipped, each is tried once, the local one never.
pub fn failover_order(f: &QueryFailover, by_distance: &[String], local: &str) -> Vec<String> {
    let others: Vec<&String> = by_distance.iter().filter(|dc| *dc != local).collect();
    let known = |dc: &str| others.iter().any(|o| *o == dc);
    let mut order: Vec<String> = Vec::new();
    let push = |dc: &str, order: &mut Vec<String>| {
        if known(dc) && !order.iter().any(|o| o == dc) {
            order.push(dc.to_owned());
        }
    };
    if let Some(targets) = f.targets.as_ref().filter(|t| !t.is_empty()) {
        for t in targets {
            push(&t.datacenter, &mut order);
        }
        return order;
    }
    let n = usize::try_from(f.nearest_n).unwrap_or(0);
    for dc in others.iter().take(n) {
        push(dc, &mut order);
    }
    for dc in f.datacenters.iter().flatten() {
        push(dc, &mut order);
    }
    order
}

#[cfg(test)]
mod tests;
