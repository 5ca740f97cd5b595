//! The Raft transport: openraft's network traits over server RPC ([`crate::rpc`]), and the
//! server side that feeds incoming `/raft/v1/*` calls to the local Raft.

use std::time::Duration;

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Raft, ServerNode, TypeConfig};
use crate::rpc::{self, RpcClient, RpcError};

type NodeId = u64;

const APPEND: &str = "/raft/v1/append";
const VOTE: &str = "/raft/v1/vote";
const SNAPSHOT: &str = "/raft/v1/snapshot";

/// Creates connections to peers.
#[derive(Debug, Clone)]
pub struct Network {
    client: RpcClient,
}

impl Network {
    /// A network over `client`.
    pub fn new(client: RpcClient) -> Network {
        Network { client }
    }
}

/// A connection to one peer.
#[derive(Debug)]
pub struct Connection {
    client: RpcClient,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &ServerNode) -> Connection {
        Connection { client: self.client.clone(), target, addr: node.rpc_addr.clone() }
    }
}

impl Connection {
    async fn send<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, ServerNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> =
            self.client.call(&self.addr, path, req, ttl).await.map_err(|e| match e {
                RpcError::Unreachable { .. } | RpcError::NoAnswer { .. } => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, ServerNode, RaftError<NodeId>>> {
        self.send(APPEND, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, ServerNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(SNAPSHOT, &rpc, option.hard_ttl().max(Duration::from_secs(10))).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, ServerNode, RaftError<NodeId>>> {
        self.send(VOTE, &rpc, option.hard_ttl()).await
    }
}

/// Serves `/raft/v1/*` calls with the local Raft; `None` for other paths.
pub async fn handle(raft: &Raft, path: &str, body: &Bytes) -> Option<rpc::HandlerResult> {
    let r = match path {
        APPEND => match rpc::decode(body) {
            Ok(req) => rpc::encode(&raft.append_entries(req).await),
            Err(e) => Err(e),
        },
        VOTE => match rpc::decode(body) {
            Ok(req) => rpc::encode(&raft.vote(req).await),
            Err(e) => Err(e),
        },
        SNAPSHOT => match rpc::decode(body) {
            Ok(req) => rpc::encode(&raft.install_snapshot(req).await),
            Err(e) => Err(e),
        },
        _ => return None,
    };
    Some(r)
}
