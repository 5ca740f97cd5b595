//! `/v1/catalog/*`: register, deregister, datacenters, nodes, services, service/:name,
//! node/:node, node-services/:node.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::filter;
use crate::fsm::Command;
use crate::state::Table;
use crate::state::catalog::{DeregisterRequest, RegisterRequest, catalog_index, service_nodes, services};
use crate::state::types::{
    CRITICAL, CheckDefinition, HealthCheck, Node, PASSING, Service, ServiceAddress, WARNING, Weights,
};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/catalog/register", put(register))
        .route("/v1/catalog/deregister", put(deregister))
        .route("/v1/catalog/datacenters", get(datacenters))
        .route("/v1/catalog/nodes", get(nodes))
        .route("/v1/catalog/services", get(list_services))
        .route("/v1/catalog/service/{name}", get(service))
        .route("/v1/catalog/node/{node}", get(node))
        .route("/v1/catalog/node-services/{node}", get(node_services))
}

/// Decodes a node object (`Node`, `Address`, `ID`, `TaggedAddresses`, `Meta`/`NodeMeta`).
pub(super) fn decode_node(o: &Obj<'_>) -> Result<Node, ApiError> {
    Ok(Node {
        id: o.str("ID")?,
        node: o.str("Node")?,
        address: o.str("Address")?,
        datacenter: o.str("Datacenter")?,
        tagged_addresses: o.string_map("TaggedAddresses")?,
        meta: match o.string_map("Meta")? {
            Some(m) => Some(m),
            None => o.string_map("NodeMeta")?,
        },
        ..Default::default()
    })
}

fn decode_tagged(o: &Obj<'_>) -> Result<Option<BTreeMap<String, ServiceAddress>>, ApiError> {
    let Some(t) = o.obj("TaggedAddresses")? else { return Ok(None) };
    let mut out = BTreeMap::new();
    for (k, v) in t.entries() {
        let a = Obj::new(v, "TaggedAddresses")?;
        out.insert(k.clone(), ServiceAddress { address: a.str("Address")?, port: a.port("Port")? });
    }
    Ok(Some(out))
}

/// Decodes a service object (`Service`/`Name`, `ID`, `Tags`, `Port`, ...).
pub(crate) fn decode_service(o: &Obj<'_>) -> Result<Service, ApiError> {
    let weights = match o.obj("Weights")? {
        Some(w) => Weights { passing: o_u32(&w, "Passing")?, warning: o_u32(&w, "Warning")? },
        None => Weights::default(),
    };
    let name = match o.str("Service")? {
        s if s.is_empty() => o.str("Name")?,
        s => s,
    };
    Ok(Service {
        kind: o.str("Kind")?,
        id: o.str("ID")?,
        service: name,
        tags: o.strings("Tags")?,
        address: o.str("Address")?,
        tagged_addresses: decode_tagged(o)?,
        meta: o.string_map("Meta")?,
        port: o.port("Port")?,
        weights,
        enable_tag_override: o.bool("EnableTagOverride")?,
        ..Default::default()
    })
}

fn o_u32(o: &Obj<'_>, f: &str) -> Result<u32, ApiError> {
    u32::try_from(o.u64(f)?).map_err(|_| ApiError::decode(format!("{f} out of range")))
}

/// Decodes a check object.
pub(super) fn decode_check(o: &Obj<'_>) -> Result<HealthCheck, ApiError> {
    let status = o.str("Status")?;
    if !status.is_empty() && ![PASSING, WARNING, CRITICAL].contains(&status.as_str()) {
        return Err(ApiError::bad_request(format!("Invalid check status: {status:?}")));
    }
    let def = match o.obj("Definition")? {
        Some(d) => CheckDefinition {
            http: d.str("HTTP")?,
            tcp: d.str("TCP")?,
            interval: d.str("Interval")?,
            timeout: d.str("Timeout")?,
            deregister_critical_service_after: d.str("DeregisterCriticalServiceAfter")?,
        },
        None => CheckDefinition::default(),
    };
    let check_id = match o.str("CheckID")? {
        s if s.is_empty() => o.str("ID")?,
        s => s,
    };
    Ok(HealthCheck {
        node: o.str("Node")?,
        check_id,
        name: o.str("Name")?,
        status,
        notes: o.str("Notes")?,
        output: o.str("Output")?,
        service_id: o.str("ServiceID")?,
        check_type: o.str("Type")?,
        interval: o.str("Interval")?,
        timeout: o.str("Timeout")?,
        definition: def,
        ..Default::default()
    })
}

fn check_dc(st: &HttpState, dc: &str) -> Result<(), ApiError> {
    if dc.is_empty() || dc == st.agent.datacenter {
        Ok(())
    } else {
        Err(ApiError::internal(format!("No path to datacenter {dc:?}")))
    }
}

async fn register(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let o = Obj::new(&v, "RegisterRequest")?;
    let mut node = decode_node(&o)?;
    if node.node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    if node.address.is_empty() {
        return Err(ApiError::bad_request("Must provide address"));
    }
    check_dc(&st, &node.datacenter)?;
    node.datacenter = st.agent.datacenter.clone();
    let service = o.obj("Service")?.map(|s| decode_service(&s)).transpose()?;
    if service.as_ref().is_some_and(|s| s.service.is_empty()) {
        return Err(ApiError::bad_request("Must provide service name with ID"));
    }
    let mut checks = Vec::new();
    if let Some(c) = o.obj("Check")? {
        checks.push(decode_check(&c)?);
    }
    for c in o.list("Checks")? {
        checks.push(decode_check(&Obj::new(c, "Checks")?)?);
    }
    let req = RegisterRequest { node, service, checks, skip_node_update: o.bool("SkipNodeUpdate")? };
    vet_register(&c, &req)?;
    super::kv::write_bool(&st, &p, Command::Register(Box::new(req))).await
}

/// Consul's `vetRegisterWithACL`: `node:write` to change the node or its own checks,
/// `service:write` for the service and the checks that belong to a service.
fn vet_register(c: &Caller, req: &RegisterRequest) -> Result<(), ApiError> {
    if !req.skip_node_update {
        c.require(Resource::Node, &req.node.node, Access::Write)?;
    }
    if let Some(s) = &req.service {
        c.require(Resource::Service, &s.service, Access::Write)?;
    }
    for chk in &req.checks {
        if chk.service_id.is_empty() {
            c.require(Resource::Node, &req.node.node, Access::Write)?;
        } else {
            let name = req
                .service
                .as_ref()
                .filter(|s| s.id == chk.service_id)
                .map(|s| s.service.clone())
                .unwrap_or_else(|| chk.service_name.clone());
            c.require(Resource::Service, &name, Access::Write)?;
        }
    }
    Ok(())
}

/// Deregistering: a service needs `service:write` on it, a check the write its owner needs,
/// the whole node `node:write`.
fn vet_deregister(st: &HttpState, c: &Caller, req: &DeregisterRequest) -> Result<(), ApiError> {
    let (service, check_service) = st.server.state().read(|s| {
        let svc = req
            .service_id
            .as_ref()
            .and_then(|id| s.services.get(&req.node).and_then(|m| m.get(id)))
            .map(|x| x.service.clone());
        let chk = req
            .check_id
            .as_ref()
            .and_then(|id| s.checks.get(&req.node).and_then(|m| m.get(id)))
            .map(|x| x.service_name.clone());
        (svc, chk)
    });
    match (&req.service_id, &req.check_id) {
        (Some(_), _) => match service {
            Some(name) => c.require(Resource::Service, &name, Access::Write),
            None => c.require(Resource::Node, &req.node, Access::Write),
        },
        (None, Some(_)) => match check_service.filter(|n| !n.is_empty()) {
            Some(name) => c.require(Resource::Service, &name, Access::Write),
            None => c.require(Resource::Node, &req.node, Access::Write),
        },
        (None, None) => c.require(Resource::Node, &req.node, Access::Write),
    }
}

async fn deregister(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let o = Obj::new(&v, "DeregisterRequest")?;
    check_dc(&st, &o.str("Datacenter")?)?;
    let opt = |s: String| (!s.is_empty()).then_some(s);
    let req = DeregisterRequest {
        node: o.str("Node")?,
        service_id: opt(o.str("ServiceID")?),
        check_id: opt(o.str("CheckID")?),
    };
    if req.node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    vet_deregister(&st, &c, &req)?;
    super::kv::write_bool(&st, &p, Command::Deregister(req)).await
}

async fn datacenters(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    // Nearest first by median WAN RTT (Consul's `GetDatacentersByDistance`).
    json(&p, StatusCode::OK, None, &st.server.datacenters_by_distance())
}

/// Runs a catalog read with blocking and filtering and answers the JSON list.
async fn catalog_list(
    st: &HttpState,
    c: &Caller,
    p: &Params,
    f: impl Fn(&crate::state::Store) -> Vec<Value>,
) -> ApiResult {
    let opts = p.query_options()?;
    let filt = p.filter()?;
    let near = super::coordinate::near(st, p);
    let (items, meta) = st
        .server
        .query(&opts, &Table::CATALOG, |s| {
            let i = catalog_index(s);
            let mut items = f(s);
            super::coordinate::sort_items(s, near.as_deref(), &mut items);
            (items, i, i)
        })
        .await?;
    let (items, filtered) = c.filter_rows(items);
    let r = json(p, StatusCode::OK, Some(&meta), &filter::apply(filt.as_ref(), items))?;
    Ok(super::kv::mark_filtered(r, filtered))
}

fn to_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect()
}

async fn nodes(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let meta = p.node_meta();
    catalog_list(&st, &c, &p, |s| {
        to_values(&s.nodes.values().filter(|n| n.has_meta(&meta)).collect::<Vec<_>>())
    })
    .await
}

/// Every instance as a flattened `ServiceNode`, on nodes matching `node-meta`.
fn all_service_nodes(s: &crate::state::Store, meta: &[(String, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (node, m) in &s.services {
        let Some(n) = s.nodes.get(node).filter(|n| n.has_meta(meta)) else { continue };
        out.extend(m.values().map(|svc| service_node(n, svc)));
    }
    out
}

async fn list_services(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let filt = p.filter()?;
    let meta = p.node_meta();
    let (svcs, meta) = st
        .server
        .query(&opts, &Table::CATALOG, |s| {
            let i = catalog_index(s);
            if filt.is_none() && meta.is_empty() {
                return (services(s), i, i);
            }
            // Filters apply to the instances (ServiceNode), then the names and tags are gathered.
            let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
            for sn in filter::apply(filt.as_ref(), all_service_nodes(s, &meta)) {
                let name = sn["ServiceName"].as_str().unwrap_or_default().to_string();
                let tags = sn["ServiceTags"].as_array().cloned().unwrap_or_default();
                out.entry(name).or_default().extend(tags.iter().filter_map(|t| t.as_str().map(String::from)));
            }
            (out, i, i)
        })
        .await?;
    let total = svcs.len();
    let svcs: BTreeMap<_, _> =
        svcs.into_iter().filter(|(name, _)| c.allows(Resource::Service, name, Access::Read)).collect();
    let filtered = svcs.len() < total;
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, Some(&meta), &svcs)?, filtered))
}

/// Consul's flattened `ServiceNode`.
pub(super) fn service_node(n: &Node, s: &Service) -> Value {
    j!({
        "ID": n.id, "Node": n.node, "Address": n.address, "Datacenter": n.datacenter,
        "TaggedAddresses": n.tagged_addresses, "NodeMeta": n.meta,
        "ServiceKind": s.kind, "ServiceID": s.id, "ServiceName": s.service, "ServiceTags": s.tags,
        "ServiceAddress": s.address, "ServiceTaggedAddresses": s.tagged_addresses,
        "ServiceWeights": s.weights, "ServiceMeta": s.meta.clone().unwrap_or_default(), "ServicePort": s.port,
        "ServiceEnableTagOverride": s.enable_tag_override,
        "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    })
}

async fn service(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let tags = p.all("tag");
    let meta = p.node_meta();
    catalog_list(&st, &c, &p, |s| {
        service_nodes(s, &name, &tags)
            .iter()
            .filter(|(n, _)| n.has_meta(&meta))
            .map(|(n, sv)| service_node(n, sv))
            .collect()
    })
    .await
}

async fn node(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let filt = p.filter()?;
    let node_ok = c.allows(Resource::Node, &name, Access::Read);
    let (v, meta) = st
        .server
        .query(&opts, &Table::CATALOG, |s| {
            let i = catalog_index(s);
            let mut filtered = s.nodes.contains_key(&name) && !node_ok;
            let v = s.nodes.get(&name).filter(|_| node_ok).map(|n| {
                let mine = s.services.get(&name).into_iter().flatten();
                let readable: Vec<_> =
                    mine.filter(|(_, svc)| c.allows(Resource::Service, &svc.service, Access::Read)).collect();
                filtered = readable.len() < s.services.get(&name).map_or(0, |m| m.len());
                let svcs: serde_json::Map<String, Value> = readable
                    .into_iter()
                    .map(|(id, svc)| (id.clone(), serde_json::to_value(svc).unwrap_or_default()))
                    .filter(|(_, v)| filt.as_ref().is_none_or(|f| f.matches(v)))
                    .collect();
                j!({"Node": n, "Services": svcs})
            });
            ((v.unwrap_or(Value::Null), filtered), i, i)
        })
        .await?;
    let (v, filtered) = v;
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, Some(&meta), &v)?, filtered))
}

async fn node_services(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    c.require(Resource::Node, &name, Access::Read)?;
    let (v, meta) = st
        .server
        .query(&opts, &Table::CATALOG, |s| {
            let i = catalog_index(s);
            let v = s.nodes.get(&name).map(|n| {
                let svcs: Vec<&Service> = s
                    .services
                    .get(&name)
                    .map(|m| {
                        m.values().filter(|x| c.allows(Resource::Service, &x.service, Access::Read)).collect()
                    })
                    .unwrap_or_default();
                j!({"Node": n, "Services": svcs})
            });
            (v, i, i)
        })
        .await?;
    match v {
        Some(v) => json(&p, StatusCode::OK, Some(&meta), &v),
        None => Err(ApiError::not_found(format!("Node {name:?} not found"))),
    }
}
