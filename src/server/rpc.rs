//! Server-to-server calls (`/rpc/v1/*`) and the dispatcher that also routes Raft traffic.
//!
//! | path | request | answer | where |
//! |---|---|---|---|
//! | `/rpc/v1/write` | `Command` | `Result<Response, Error>` | leader (followers forward here) |
//! | `/rpc/v1/read_index` | `bool` (consistent) | `Result<u64, Error>` | leader: the index a follower must apply before serving a read |
//! | `/rpc/v1/add_server` | `(u64, ServerNode)` | `Result<(), Error>` | leader: learner → caught up → voter |
//! | `/rpc/v1/remove_server` | `u64` | `Result<(), Error>` | leader |
//! | `/rpc/v1/write_any` | `Command` | `Result<Response, Error>` | any server (client agents); forwarded to the leader once |
//! | `/rpc/v1/node_entries` | node name | `NodeEntries` | any server: a client agent's anti-entropy view |
//! | `/rpc/v1/http` | `ProxyRequest` | `ProxyResponse` | any server: a client agent's HTTP API request |
//! | `/rpc/v1/dns/*` | name / (name, tag) / ip | nodes and instances | any server: a client agent's DNS reads |
//! | `/rpc/v1/session_renew` | `(String, Duration)` | `()` | leader: session TTL timers live there |
//! | `/rpc/v1/operator/*` | see `operator/rpc.rs` | | operator endpoints (stats, health, leadership transfer) |
//! | `/rpc/v1/acl/resolve` | SecretID | `Option<acl::Grants>` | any server: a client agent resolves a token |
//! | `/rpc/v1/ping` | `()` | node name | any server: proves it answers RPC (and, over TLS, holds a server certificate) |
//! | `/rpc/v1/auto_encrypt/sign` | CSR | certificate and CA | servers with `auto_encrypt.allow_tls` |
//!
//! Under `verify_incoming` with `verify_server_hostname`, a client agent's certificate may
//! call only what client agents need ([`CLIENT_PATHS`]), and a TLS connection without a
//! certificate only `auto_encrypt/sign`; Raft and every other path need a server certificate.

use std::sync::Arc;

use bytes::Bytes;

use super::{Error, Server};
use crate::fsm::Command;
use crate::raft::{self, ServerNode};
use crate::rpc::{self, Handler, HandlerResult, Peer, RpcError};

pub(super) const WRITE: &str = "/rpc/v1/write";
pub(super) const WRITE_ANY: &str = "/rpc/v1/write_any";
pub(super) const NODE_ENTRIES: &str = "/rpc/v1/node_entries";
pub(super) const HTTP: &str = "/rpc/v1/http";
const DNS_NODE: &str = "/rpc/v1/dns/node";
const DNS_INSTANCES: &str = "/rpc/v1/dns/instances";
const DNS_NODES_BY_ADDR: &str = "/rpc/v1/dns/nodes_by_addr";
const DNS_DC: &str = "/rpc/v1/dns/dc";
pub(super) const READ_INDEX: &str = "/rpc/v1/read_index";
pub(super) const ADD_SERVER: &str = "/rpc/v1/add_server";
pub(super) const REMOVE_SERVER: &str = "/rpc/v1/remove_server";
pub(super) const SESSION_RENEW: &str = "/rpc/v1/session_renew";
pub(super) const PING: &str = "/rpc/v1/ping";
/// A client agent resolves a token (`acl::RESOLVE_PATH`).
const ACL_RESOLVE: &str = crate::acl::RESOLVE_PATH;
/// auto_encrypt: a client agent's certificate request.
pub(crate) const AUTO_ENCRYPT_SIGN: &str = "/rpc/v1/auto_encrypt/sign";

/// A client agent's own writes (anti-entropy, coordinates, sessions, exec output). ACL objects,
/// snapshots, autopilot and the auto_encrypt CA change only through a server's HTTP API,
/// where the caller's token is checked.
fn client_may_write(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Kv(_)
            | Command::Txn(_)
            | Command::Register(_)
            | Command::Deregister(_)
            | Command::SessionCreate(_)
            | Command::SessionDestroy(_)
            | Command::CoordinateBatchUpdate(_)
    )
}

/// What a client agent's certificate may call: what client agents use, nothing that changes
/// the cluster itself (Raft, membership, leader-only paths).
const CLIENT_PATHS: &[&str] = &[
    WRITE_ANY,
    NODE_ENTRIES,
    HTTP,
    DNS_NODE,
    DNS_INSTANCES,
    DNS_NODES_BY_ADDR,
    DNS_DC,
    PING,
    AUTO_ENCRYPT_SIGN,
    ACL_RESOLVE,
    crate::acl::replication::STATUS_PATH,
];

/// What a server of another datacenter may call: forwarded API requests, DNS reads, token
/// resolution and ACL replication from the primary. Never Raft, writes or membership.
const REMOTE_SERVER_PATHS: &[&str] = &[
    HTTP,
    DNS_NODE,
    DNS_INSTANCES,
    DNS_NODES_BY_ADDR,
    PING,
    ACL_RESOLVE,
    crate::acl::REPLICATE_PATH,
    FEDERATION_SYNC,
];

/// Gateway federation: a datacenter reports its gateways to the primary and learns the
/// others' ([`Server::federation_sync`]).
pub(super) const FEDERATION_SYNC: &str = "/rpc/v1/federation/sync";

/// Whether `peer` may call `path`.
fn authorize(peer: Peer, path: &str, server: &Server) -> Result<(), RpcError> {
    let allowed = match peer {
        Peer::Trusted => true,
        Peer::Client => CLIENT_PATHS.contains(&path),
        Peer::RemoteServer => REMOTE_SERVER_PATHS.contains(&path),
        Peer::Anonymous => path == AUTO_ENCRYPT_SIGN,
    };
    if allowed {
        return Ok(());
    }
    let name = format!("server.{}.{}", server.config().datacenter, server.config().domain);
    Err(RpcError::Denied(match peer {
        Peer::Anonymous => format!("Permission denied: {path} needs a client certificate (verify_incoming)"),
        _ => format!("Permission denied: {path} needs a server certificate ({name})"),
    }))
}

/// The RPC handler of a server. Holds a weak reference so that a stopped server is freed.
pub(super) fn handler(server: &Server) -> Handler {
    let weak = Arc::downgrade(&server.inner);
    Arc::new(move |path: String, body: Bytes, peer: Peer| {
        let weak = weak.clone();
        Box::pin(async move {
            let Some(inner) = weak.upgrade() else {
                return Err(RpcError::Remote(Error::ShuttingDown.to_string()));
            };
            let server = Server { inner };
            authorize(peer, &path, &server)?;
            dispatch(&server, &path, &body).await
        })
    })
}

async fn dispatch(server: &Server, path: &str, body: &Bytes) -> HandlerResult {
    if path.starts_with("/raft/") {
        if path == "/raft/v1/append" {
            server.touch_contact();
        }
        return raft::handle_rpc(&server.inner.raft, path, body)
            .await
            .unwrap_or_else(|| Err(RpcError::NotFound(path.to_owned())));
    }
    match path {
        WRITE => {
            let cmd: Command = rpc::decode(body)?;
            // Only the leader applies forwarded writes: no second hop, so no loops.
            let r = if server.is_leader() { server.write_local(cmd).await } else { Err(Error::NoLeader) };
            rpc::encode(&r)
        }
        WRITE_ANY => {
            let cmd: Command = rpc::decode(body)?;
            if !client_may_write(&cmd) {
                return Err(RpcError::Denied(
                    "Permission denied: client agents may not send this write (use the HTTP API)".into(),
                ));
            }
            rpc::encode(&server.write(cmd).await)
        }
        ACL_RESOLVE => {
            let secret: String = rpc::decode(body)?;
            let dc = &server.config().datacenter;
            let grants =
                server.state().read(|s| crate::acl::resolve_in_store(s, &secret, dc, crate::acl::now_unix()));
            let grants = match grants {
                None if server.config().primary_datacenter != *dc => {
                    crate::acl::replication::grants_at_primary(server, &secret).await?
                }
                g => g,
            };
            rpc::encode(&grants)
        }
        NODE_ENTRIES => {
            let node: String = rpc::decode(body)?;
            rpc::encode(&server.local_node_entries(&node))
        }
        HTTP => {
            let req: super::ProxyRequest = rpc::decode(body)?;
            let Some(hook) = server.inner.http_hook.get().cloned() else {
                return Err(RpcError::Remote("this server has no HTTP API to proxy to".into()));
            };
            rpc::encode(&hook(req).await)
        }
        DNS_NODE | DNS_INSTANCES | DNS_NODES_BY_ADDR => crate::dns::serve_rpc(server, path, body),
        DNS_DC => crate::dns::serve_dc_rpc(server, body).await,
        crate::acl::REPLICATE_PATH => crate::acl::replication::serve(server, body).await,
        FEDERATION_SYNC => {
            let fs: crate::state::FederationState = rpc::decode(body)?;
            rpc::encode(&server.federation_sync(fs).await.map_err(|e| e.to_string()))
        }
        crate::acl::replication::STATUS_PATH => {
            let cfg = server.config();
            if !server.is_leader() && cfg.datacenter != cfg.primary_datacenter {
                let path = crate::acl::replication::STATUS_PATH;
                let r: crate::acl::replication::Report = server
                    .call_leader(path, &(), std::time::Duration::from_secs(2))
                    .await
                    .map_err(|e| RpcError::Remote(e.to_string()))?;
                return rpc::encode(&r);
            }
            rpc::encode(&crate::acl::replication::report(&server.acl_replication().lock()))
        }
        READ_INDEX => {
            let consistent: bool = rpc::decode(body)?;
            rpc::encode(&server.leader_read_index(consistent).await)
        }
        ADD_SERVER => {
            let (id, node): (u64, ServerNode) = rpc::decode(body)?;
            let r = if server.is_leader() {
                server.add_server_local(id, node).await
            } else {
                Err(Error::NoLeader)
            };
            rpc::encode(&r)
        }
        REMOVE_SERVER => {
            let id: u64 = rpc::decode(body)?;
            let r =
                if server.is_leader() { server.remove_server_local(id).await } else { Err(Error::NoLeader) };
            rpc::encode(&r)
        }
        PING => rpc::encode(&server.config().node_name),
        AUTO_ENCRYPT_SIGN => {
            let req: super::auto_encrypt::SignRequest = rpc::decode(body)?;
            rpc::encode(&server.auto_encrypt_sign(&req))
        }
        SESSION_RENEW => {
            let id: String = rpc::decode(body)?;
            rpc::encode(&server.renew_session_rpc(&id))
        }
        p if p.starts_with(super::operator::RPC_PREFIX) => {
            super::operator::dispatch_rpc(server, p, body).await
        }
        _ => Err(RpcError::NotFound(path.to_owned())),
    }
}

/// Decodes the request of `path` as [`dispatch`] would, without running it: the command of
/// the write paths (to apply elsewhere), nothing for the others. The fuzz targets' entry
/// ([`crate::fuzzing::rpc_frame`]); keep it in step with [`dispatch`].
#[cfg(any(test, feature = "testing"))]
pub(crate) fn decode_request(path: &str, body: &[u8]) -> Result<Option<Command>, RpcError> {
    use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
    fn check<T: serde::de::DeserializeOwned + serde::Serialize>(
        body: &[u8],
    ) -> Result<Option<Command>, RpcError> {
        let v: T = rpc::decode(body)?;
        rpc::encode(&v)?;
        Ok(None)
    }
    match path {
        "/raft/v1/append" => check::<AppendEntriesRequest<raft::TypeConfig>>(body),
        "/raft/v1/vote" => check::<VoteRequest<u64>>(body),
        "/raft/v1/snapshot" => check::<InstallSnapshotRequest<raft::TypeConfig>>(body),
        WRITE | WRITE_ANY => {
            let cmd: Command = rpc::decode(body)?;
            let _ = client_may_write(&cmd);
            Ok(Some(cmd))
        }
        ACL_RESOLVE | NODE_ENTRIES | DNS_NODE | SESSION_RENEW => check::<String>(body),
        HTTP => check::<super::ProxyRequest>(body),
        DNS_INSTANCES => check::<(String, Option<String>)>(body),
        DNS_NODES_BY_ADDR => check::<std::net::IpAddr>(body),
        DNS_DC => check::<(String, crate::dns::DnsRead)>(body),
        crate::acl::REPLICATE_PATH => check::<crate::acl::replication::ReplicateRequest>(body),
        FEDERATION_SYNC => check::<crate::state::FederationState>(body),
        READ_INDEX => check::<bool>(body),
        ADD_SERVER => check::<(u64, ServerNode)>(body),
        REMOVE_SERVER => check::<u64>(body),
        AUTO_ENCRYPT_SIGN => check::<super::auto_encrypt::SignRequest>(body),
        PING | crate::acl::replication::STATUS_PATH => Ok(None),
        p if p.starts_with(super::operator::RPC_PREFIX) => {
            super::operator::decode_rpc(p, body).map(|()| None)
        }
        _ => Err(RpcError::NotFound(path.to_owned())),
    }
}
