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
use crate::state::acl::ANONYMOUS_SECRET_ID;
use crate::state::query::ServiceInstance;
use crate::state::types::{HealthCheck, Node, Service};

use super::query::{QueryAnswer, QueryLookup};

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
    /// Runs a prepared query (its `token` is the agent's default token, set here).
    async fn prepared_query(&self, lookup: QueryLookup) -> QueryAnswer;
}

impl From<ServiceInstance> for Instance {
    fn from(i: ServiceInstance) -> Instance {
        Instance { node: i.node, service: i.service, checks: i.checks }
    }
}

/// Reads the local state store (client agents: a server's), showing only what the agent's
/// default token (else anonymous) may read: `node:read` and `service:read`, as in Consul.
#[derive(Debug, Clone)]
pub(crate) struct LocalCatalog {
    server: Server,
    acl: Option<Arc<Acl>>,
    /// Another datacenter whose catalog this reads (through a server there), with
    /// `translate_wan_addrs`.
    remote: Option<(String, bool)>,
    /// Set when a read in the other datacenter failed (the answer is then SERVFAIL, not
    /// an empty NXDOMAIN).
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl LocalCatalog {
    pub(crate) fn new(server: Server, acl: Option<Arc<Acl>>) -> LocalCatalog {
        LocalCatalog { server, acl, remote: None, failed: Arc::default() }
    }

    /// The catalog of datacenter `dc`, read by a server there; with `translate` nodes are
    /// answered with their `wan` tagged address when they have one.
    pub(crate) fn in_datacenter(&self, dc: &str, translate: bool) -> LocalCatalog {
        LocalCatalog { remote: Some((dc.to_owned(), translate)), failed: Arc::default(), ..self.clone() }
    }

    /// Whether a read in the other datacenter failed (unknown or unreachable datacenter).
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
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
        let node = if let Some((dc, t)) = &self.remote {
            self.in_dc(dc, DnsRead::Node(name.to_owned())).await.and_then(|v| v.node).map(|n| wan_node(n, *t))
        } else if self.server.is_client() {
            self.remote(DNS_NODE, &name.to_owned()).await.flatten()
        } else {
            self.server.state().read(|st| find_node(st, name).cloned())
        };
        node.filter(|n| sees_node(&id, n))
    }

    async fn service_instances(&self, name: &str, tag: Option<&str>) -> Vec<Instance> {
        let Some(id) = self.identity().await else { return Vec::new() };
        let all = if let Some((dc, t)) = &self.remote {
            let read = DnsRead::Instances(name.to_owned(), tag.map(str::to_owned));
            let all = self.in_dc(dc, read).await.map(|v| v.instances).unwrap_or_default();
            all.into_iter().map(|i| wan_instance(i, *t)).collect()
        } else if self.server.is_client() {
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
        let all = if let Some((dc, _)) = &self.remote {
            self.in_dc(dc, DnsRead::NodesByAddr(ip)).await.map(|v| v.nodes).unwrap_or_default()
        } else if self.server.is_client() {
            self.remote(DNS_NODES_BY_ADDR, &ip).await.unwrap_or_default()
        } else {
            self.server.state().read(|st| nodes_by_addr(st, ip))
        };
        all.into_iter().filter(|n| sees_node(&id, n)).collect()
    }

    async fn prepared_query(&self, mut lookup: QueryLookup) -> QueryAnswer {
        // The execution filters its results itself, by the query's token or this agent's
        // default token, else anonymous (never a server's default token).
        lookup.token = self.acl.as_ref().map(|a| {
            a.tokens().default.filter(|t| !t.is_empty()).unwrap_or_else(|| ANONYMOUS_SECRET_ID.to_owned())
        });
        super::query::lookup(&self.server, &lookup).await
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

/// A read of another datacenter's catalog; client agents send it to a local server
/// ([`DNS_DC`]), which asks a server of that datacenter.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum DnsRead {
    Node(String),
    Instances(String, Option<String>),
    NodesByAddr(IpAddr),
}

/// The answer to a [`DnsRead`] (only the field its kind asks for is set).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct DnsReadAnswer {
    node: Option<Node>,
    instances: Vec<Instance>,
    nodes: Vec<Node>,
}

/// How long a DNS read in another datacenter may take.
const REMOTE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl LocalCatalog {
    async fn in_dc(&self, dc: &str, read: DnsRead) -> Option<DnsReadAnswer> {
        let r = if self.server.is_client() {
            self.server.call_servers(DNS_DC, &(dc.to_owned(), read)).await
        } else {
            read_in_dc(&self.server, dc, read).await
        };
        match r {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::debug!(dc, error = %e, "a DNS read in another datacenter failed");
                self.failed.store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }
}

/// Runs `read` in datacenter `dc`: here when it is this server's, else on a server there.
async fn read_in_dc(server: &Server, dc: &str, read: DnsRead) -> Result<DnsReadAnswer, crate::server::Error> {
    let t = REMOTE_READ_TIMEOUT;
    let local = dc.eq_ignore_ascii_case(&server.config().datacenter);
    Ok(match read {
        DnsRead::Node(name) => DnsReadAnswer {
            node: if local {
                server.state().read(|st| find_node(st, &name).cloned())
            } else {
                server.call_dc(dc, DNS_NODE, &name, t).await?
            },
            ..DnsReadAnswer::default()
        },
        DnsRead::Instances(name, tag) => DnsReadAnswer {
            instances: if local {
                server.state().read(|st| instances(st, &name, tag.as_deref()))
            } else {
                server.call_dc(dc, DNS_INSTANCES, &(name, tag), t).await?
            },
            ..DnsReadAnswer::default()
        },
        DnsRead::NodesByAddr(ip) => DnsReadAnswer {
            nodes: if local {
                server.state().read(|st| nodes_by_addr(st, ip))
            } else {
                server.call_dc(dc, DNS_NODES_BY_ADDR, &ip, t).await?
            },
            ..DnsReadAnswer::default()
        },
    })
}

/// Serves a client agent's [`DnsRead`] for another datacenter.
pub(crate) async fn serve_dc_rpc(server: &Server, body: &[u8]) -> crate::rpc::HandlerResult {
    let (dc, read): (String, DnsRead) = crate::rpc::decode(body)?;
    crate::rpc::encode(
        &read_in_dc(server, &dc, read).await.map_err(|e| crate::rpc::RpcError::Remote(e.to_string()))?,
    )
}

/// `translate_wan_addrs`: a node of another datacenter is reached at its `wan` address.
fn wan_node(mut n: Node, translate: bool) -> Node {
    if let Some(wan) = translate.then(|| n.tagged_addresses.as_ref()?.get("wan").cloned()).flatten() {
        n.address = wan;
    }
    n
}

fn wan_instance(mut i: Instance, translate: bool) -> Instance {
    i.node = wan_node(i.node, translate);
    if translate && let Some(wan) = i.service.tagged_addresses.as_ref().and_then(|t| t.get("wan")) {
        i.service.address = wan.address.clone();
        i.service.port = wan.port;
    }
    i
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
/// A client agent's DNS read in another datacenter (a local server forwards it).
pub(crate) const DNS_DC: &str = "/rpc/v1/dns/dc";
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
