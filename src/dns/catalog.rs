//! Every catalog read DNS makes, behind one trait. Today it reads the local state store
//! (a stale read, which is exact on a single server); with several servers the same trait
//! can forward to a server over RPC without touching the answer code.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use sekisho_acl::{Access, Resource};

use crate::acl::{Acl, Identity};
use crate::server::Server;
use crate::state::Store;
use crate::state::types::{HealthCheck, Node, Service};

/// One service instance with the checks that decide its health: the node's own checks
/// (`serfHealth`, `_node_maintenance`, ...) and the instance's checks.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Instance {
    pub(crate) node: Node,
    pub(crate) service: Service,
    pub(crate) checks: Vec<HealthCheck>,
}

/// The reads DNS needs. Names match case-insensitively, as in Consul.
#[async_trait]
pub(crate) trait CatalogRead: Send + Sync + 'static {
    /// The node called `name`.
    async fn node(&self, name: &str) -> Option<Node>;
    /// Every instance of service `name` carrying `tag` (any instance when `None`), with
    /// its checks, whatever their status.
    async fn service_instances(&self, name: &str, tag: Option<&str>) -> Vec<Instance>;
    /// Nodes whose address is `ip`.
    async fn nodes_with_address(&self, ip: IpAddr) -> Vec<Node>;
}

/// Reads the local state store (client agents: a server's), showing only what the agent's
/// default token (else anonymous) may read: `node:read` and `service:read`, as in Consul.
#[derive(Debug, Clone)]
pub(crate) struct LocalCatalog {
    server: Server,
    acl: Option<Arc<Acl>>,
}

impl LocalCatalog {
    pub(crate) fn new(server: Server, acl: Option<Arc<Acl>>) -> LocalCatalog {
        LocalCatalog { server, acl }
    }

    /// The identity DNS answers under; `None` when nothing may be shown (the default token
    /// no longer exists).
    async fn identity(&self) -> Option<Arc<Identity>> {
        let Some(acl) = &self.acl else { return Some(Arc::new(Identity::unrestricted())) };
        match acl.resolve_default().await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!("dns: the default token does not resolve ({e}); answering nothing");
                None
            }
        }
    }
}

fn sees_node(id: &Identity, n: &Node) -> bool {
    id.allows(Resource::Node, &n.node, Access::Read)
}

#[async_trait]
impl CatalogRead for LocalCatalog {
    async fn node(&self, name: &str) -> Option<Node> {
        let id = self.identity().await?;
        let node = if self.server.is_client() {
            self.remote(DNS_NODE, &name.to_owned()).await.flatten()
        } else {
            self.server.state().read(|st| find_node(st, name).cloned())
        };
        node.filter(|n| sees_node(&id, n))
    }

    async fn service_instances(&self, name: &str, tag: Option<&str>) -> Vec<Instance> {
        let Some(id) = self.identity().await else { return Vec::new() };
        let all = if self.server.is_client() {
            let req = (name.to_owned(), tag.map(str::to_owned));
            self.remote(DNS_INSTANCES, &req).await.unwrap_or_default()
        } else {
            self.server.state().read(|st| instances(st, name, tag))
        };
        all.into_iter()
            .filter(|i| {
                sees_node(&id, &i.node) && id.allows(Resource::Service, &i.service.service, Access::Read)
            })
            .collect()
    }

    async fn nodes_with_address(&self, ip: IpAddr) -> Vec<Node> {
        let Some(id) = self.identity().await else { return Vec::new() };
        let all = if self.server.is_client() {
            self.remote(DNS_NODES_BY_ADDR, &ip).await.unwrap_or_default()
        } else {
            self.server.state().read(|st| nodes_by_addr(st, ip))
        };
        all.into_iter().filter(|n| sees_node(&id, n)).collect()
    }
}

impl LocalCatalog {
    /// Client agents read the catalog of a server (a stale read there, like Consul's DNS).
    async fn remote<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Option<Resp> {
        match self.server.call_servers(path, req).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::debug!(error = %e, "a DNS catalog read on a server failed");
                None
            }
        }
    }
}

fn nodes_by_addr(st: &Store, ip: IpAddr) -> Vec<Node> {
    st.nodes.values().filter(|n| n.address.parse::<IpAddr>().ok() == Some(ip)).cloned().collect()
}

/// Serves a client agent's DNS catalog read on a server.
pub(crate) fn serve_rpc(server: &Server, path: &str, body: &[u8]) -> crate::rpc::HandlerResult {
    use crate::rpc::{decode, encode};
    match path {
        DNS_NODE => {
            let name: String = decode(body)?;
            encode(&server.state().read(|st| find_node(st, &name).cloned()))
        }
        DNS_INSTANCES => {
            let (name, tag): (String, Option<String>) = decode(body)?;
            encode(&server.state().read(|st| instances(st, &name, tag.as_deref())))
        }
        _ => {
            let ip: IpAddr = decode(body)?;
            encode(&server.state().read(|st| nodes_by_addr(st, ip)))
        }
    }
}

const DNS_NODE: &str = "/rpc/v1/dns/node";
const DNS_INSTANCES: &str = "/rpc/v1/dns/instances";
const DNS_NODES_BY_ADDR: &str = "/rpc/v1/dns/nodes_by_addr";

fn find_node<'s>(st: &'s Store, name: &str) -> Option<&'s Node> {
    st.nodes.get(name).or_else(|| st.nodes.values().find(|n| n.node.eq_ignore_ascii_case(name)))
}

fn instances(st: &Store, name: &str, tag: Option<&str>) -> Vec<Instance> {
    let mut out = Vec::new();
    for (node_name, services) in &st.services {
        let matching = services.values().filter(|s| {
            s.service.eq_ignore_ascii_case(name)
                && tag.is_none_or(|t| s.tags.iter().any(|have| have.eq_ignore_ascii_case(t)))
        });
        for svc in matching {
            let Some(node) = st.nodes.get(node_name) else { continue };
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
            out.push(Instance { node: node.clone(), service: svc.clone(), checks });
        }
    }
    out
}
