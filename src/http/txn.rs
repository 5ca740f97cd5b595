//! `PUT /v1/txn`: up to 128 KV/Node/Service/Check operations, all applied or none.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::put;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::catalog::{decode_check, decode_node, decode_service};
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::fsm::{Command, Response as FsmResponse};
use crate::state::Table;
use crate::state::kv::{KvOp, KvVerb, lock_delay_until};
use crate::state::txn::{CatalogVerb, TxnError, TxnOp, TxnOutcome, TxnResult, txn_read};
use sekisho_acl::{Access, Resource};

/// Consul's maximum number of operations in one transaction.
pub const MAX_TXN_OPS: usize = 128;

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/txn", put(txn))
}

/// The permission each operation needs; denials become the transaction's errors (409), as
/// Consul reports them per operation.
fn acl_errors(c: &Caller, ops: &[TxnOp]) -> Vec<TxnError> {
    let access = |write: bool| if write { Access::Write } else { Access::Read };
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let checked = match op {
            TxnOp::Kv(kv) if kv.verb == KvVerb::DeleteTree => c.require_key_write_prefix(&kv.key),
            TxnOp::Kv(kv) => c.require(Resource::Key, &kv.key, access(kv.verb.is_write())),
            TxnOp::Node { verb, node } => {
                c.require(Resource::Node, &node.node, access(*verb != CatalogVerb::Get))
            }
            TxnOp::Service { verb, service, .. } => {
                c.require(Resource::Service, &service.service, access(*verb != CatalogVerb::Get))
            }
            TxnOp::Check { verb, check } if check.service_name.is_empty() => {
                c.require(Resource::Node, &check.node, access(*verb != CatalogVerb::Get))
            }
            TxnOp::Check { verb, check } => {
                c.require(Resource::Service, &check.service_name, access(*verb != CatalogVerb::Get))
            }
        };
        if let Err(e) = checked {
            errors.push(TxnError { op_index: i, what: e.message });
        }
    }
    errors
}

async fn txn(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let limit = st.agent.txn_max_req_len;
    let Some(raw) = super::read_body(body, limit as usize).await? else {
        return Err(ApiError::too_large(format!("Request body too large, max size: {limit} bytes")));
    };
    let v = parse_body(&raw)?;
    let Value::Array(items) = &v else {
        return Err(ApiError::decode("expected a JSON array of operations"));
    };
    if items.len() > MAX_TXN_OPS {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            items.len()
        )));
    }
    let ops =
        items.iter().map(|i| decode_op(i, st.agent.kv_max_value_size)).collect::<Result<Vec<_>, _>>()?;
    let denied = acl_errors(&c, &ops);
    if !denied.is_empty() {
        return outcome(&p, Err(denied));
    }
    if let Some(err) = lock_delay_errors(&st, &ops) {
        return outcome(&p, Err(vec![err]));
    }
    if ops.iter().any(TxnOp::is_write) {
        return match st.server.write(Command::Txn(ops)).await? {
            FsmResponse::Txn(out) => outcome(&p, out),
            other => Err(ApiError::internal(format!("unexpected response {other:?}"))),
        };
    }
    let opts = p.query_options()?;
    let no_block = crate::server::QueryOptions { min_index: 0, ..opts };
    let (out, meta) = st.server.query(&no_block, &Table::ALL, |s| (txn_read(s, &ops), 0, 0)).await?;
    let mut r = outcome(&p, out)?;
    super::query::add_meta(&mut r, &meta);
    Ok(r)
}

fn lock_delay_errors(st: &HttpState, ops: &[TxnOp]) -> Option<TxnError> {
    let now = Instant::now();
    ops.iter().enumerate().find_map(|(i, op)| match op {
        TxnOp::Kv(kv) if kv.verb == KvVerb::Lock => {
            st.server.state().read(|s| lock_delay_until(s, &kv.key, now)).map(|_| TxnError {
                op_index: i,
                what: format!("failed to lock key {:?} due to lock delay", kv.key),
            })
        }
        _ => None,
    })
}

fn outcome(p: &Params, out: TxnOutcome) -> ApiResult {
    match out {
        Ok(results) => {
            let rs: Vec<Value> = results.iter().map(result_json).collect();
            json(p, StatusCode::OK, None, &j!({"Results": rs, "Errors": null}))
        }
        Err(errors) => {
            let es: Vec<Value> = errors.iter().map(|e| j!({"OpIndex": e.op_index, "What": e.what})).collect();
            json(p, StatusCode::CONFLICT, None, &j!({"Results": null, "Errors": es}))
        }
    }
}

fn result_json(r: &TxnResult) -> Value {
    match r {
        TxnResult::Kv(e) => j!({ "KV": e }),
        TxnResult::Node(n) => j!({ "Node": n }),
        TxnResult::Service(s) => j!({ "Service": s }),
        TxnResult::Check(c) => j!({ "Check": c }),
    }
}

fn verb_err(v: &str) -> ApiError {
    ApiError::bad_request(format!("Unknown transaction verb {v:?}"))
}

fn decode_op(v: &Value, max_value: u64) -> Result<TxnOp, ApiError> {
    let o = Obj::new(v, "TxnOp")?;
    if let Some(kv) = o.obj("KV")? {
        return decode_kv(&kv, max_value).map(TxnOp::Kv);
    }
    let catalog_verb = |x: &Obj<'_>| {
        let verb = x.str("Verb")?;
        CatalogVerb::parse(&verb).ok_or_else(|| verb_err(&verb))
    };
    if let Some(n) = o.obj("Node")? {
        let node = n.obj("Node")?.ok_or_else(|| ApiError::bad_request("Node operation needs a Node"))?;
        return Ok(TxnOp::Node { verb: catalog_verb(&n)?, node: decode_node(&node)? });
    }
    if let Some(s) = o.obj("Service")? {
        let svc =
            s.obj("Service")?.ok_or_else(|| ApiError::bad_request("Service operation needs a Service"))?;
        return Ok(TxnOp::Service {
            verb: catalog_verb(&s)?,
            node: s.str("Node")?,
            service: decode_service(&svc)?,
        });
    }
    if let Some(c) = o.obj("Check")? {
        let chk = c.obj("Check")?.ok_or_else(|| ApiError::bad_request("Check operation needs a Check"))?;
        return Ok(TxnOp::Check { verb: catalog_verb(&c)?, check: decode_check(&chk)? });
    }
    Err(ApiError::bad_request("Transaction operation must have one of KV, Node, Service or Check"))
}

fn decode_kv(o: &Obj<'_>, max_value: u64) -> Result<KvOp, ApiError> {
    let verb = o.str("Verb")?;
    let verb = KvVerb::parse(&verb).ok_or_else(|| verb_err(&verb))?;
    let mut op = KvOp::new(verb, o.str("Key")?);
    if let Some(Value::String(b64)) = o.get("Value") {
        let bytes = STANDARD.decode(b64).map_err(|e| ApiError::decode(format!("KV.Value: {e}")))?;
        if bytes.len() as u64 > max_value {
            return Err(ApiError::too_large(format!(
                "Value for key {:?} is too large ({} > {max_value} bytes)",
                op.key,
                bytes.len()
            )));
        }
        op.value = Some(bytes);
    }
    op.flags = o.u64("Flags")?;
    op.index = o.u64("Index")?;
    let session = o.str("Session")?;
    op.session = (!session.is_empty()).then_some(session);
    if op.key.is_empty() && verb != KvVerb::DeleteTree && verb != KvVerb::GetTree {
        return Err(ApiError::bad_request("Missing key name"));
    }
    Ok(op)
}
