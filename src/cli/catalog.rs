//! `sekisho catalog datacenters|nodes|services`: read the service catalog.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;

use super::http::HttpArgs;
use super::output::{Output, columnize, tab_align};
use crate::client::{CatalogNode, Client};

/// Consul's text when a listing comes back empty (printed to stderr, exit 0).
const NO_NODES: &str = "No nodes match the given query - try expanding your search.";
const NO_SERVICES: &str = "No services match the given query - try expanding your search.";

/// `sekisho catalog …`
#[derive(Args, Debug)]
#[command(
    about = "Interact with the catalog",
    long_about = "Read the catalog: the datacenters, nodes and services the servers know about.",
    after_long_help = "Examples:\n  $ sekisho catalog datacenters\n  $ sekisho catalog nodes -detailed\n  \
        $ sekisho catalog services -tags"
)]
pub(crate) struct CatalogArgs {
    #[command(subcommand)]
    pub(crate) command: CatalogCommand,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// The catalog subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum CatalogCommand {
    /// List all known datacenters
    #[command(
        long_about = "List all known datacenters, one per line, nearest first.",
        after_long_help = "Example:\n  $ sekisho catalog datacenters\n  dc1\n  dc2"
    )]
    Datacenters,
    Nodes(NodesArgs),
    Services(ServicesArgs),
}

/// `catalog nodes`
#[derive(Args, Debug)]
#[command(
    about = "List all nodes in the catalog",
    long_about = "List the catalog's nodes as a table: name, ID (first segment; the whole ID with \
        -detailed), address and datacenter.",
    after_long_help = "Examples:\n  $ sekisho catalog nodes\n  Node   ID        Address    DC\n  \
        node1  3a8e42bc  127.0.0.1  dc1\n\n  \
        Nodes running a service, with their tagged addresses and metadata:\n    \
        $ sekisho catalog nodes -service=web -detailed\n\n  \
        Nodes whose metadata matches:\n    $ sekisho catalog nodes -node-meta=rack=r1"
)]
pub(crate) struct NodesArgs {
    /// Show full node IDs, tagged addresses and metadata
    #[arg(long)]
    detailed: bool,
    /// Only nodes providing this service (by name); a node running it twice is listed twice
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Only nodes whose metadata has this `key=value`; may be repeated
    #[arg(long = "node-meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    node_meta: Vec<(String, String)>,
    /// Sort by estimated round-trip time from this node (`_agent`: this agent's node)
    #[arg(long, value_name = "NODE")]
    near: Option<String>,
}

/// `catalog services`
#[derive(Args, Debug)]
#[command(
    about = "List all registered services",
    long_about = "List the names of all registered services, one per line; with -tags, each \
        followed by its tags.",
    after_long_help = "Example:\n  $ sekisho catalog services -tags\n  consul\n  \
        redis        primary,v1"
)]
pub(crate) struct ServicesArgs {
    /// Show each service's tags as a comma-separated list beside its name
    #[arg(long)]
    tags: bool,
    /// Only the services of this node
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// Only services on nodes whose metadata has this `key=value`; may be repeated
    #[arg(long = "node-meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    node_meta: Vec<(String, String)>,
}

/// Consul's `-node-meta key=value` flag value.
fn parse_meta(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
        None => Err(format!("Missing \"=\" value in argument: {arg}")),
    }
}

/// Runs one catalog subcommand.
pub(crate) async fn run(
    command: CatalogCommand,
    client: &Client,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Datacenters => datacenters(client, out).await,
        CatalogCommand::Nodes(args) => nodes(&args, client, out).await,
        CatalogCommand::Services(args) => services(&args, client, out).await,
    }
}

async fn datacenters(client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let dcs = client.catalog_datacenters().await?;
    if dcs.is_empty() {
        out.error("No datacenters found")?;
        return Ok(ExitCode::FAILURE);
    }
    for dc in dcs {
        out.line(dc)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn nodes(args: &NodesArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let query = query_string(&[("near", args.near.as_deref())], &args.node_meta);
    let nodes = match &args.service {
        Some(service) => {
            let path = format!("/v1/catalog/service/{}{query}", escape(service));
            let rows: Vec<ServiceNodeRow> = client.get_json(&path).await?.unwrap_or_default();
            rows.into_iter().map(ServiceNodeRow::into_node).collect()
        }
        None if query.is_empty() => client.catalog_nodes().await?,
        None => client.get_json(&format!("/v1/catalog/nodes{query}")).await?.unwrap_or_default(),
    };
    if nodes.is_empty() {
        out.error(NO_NODES)?;
    } else {
        out.line(nodes_table(&nodes, args.detailed))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The node part of one `GET /v1/catalog/service/:name` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ServiceNodeRow {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: Option<BTreeMap<String, String>>,
    node_meta: Option<BTreeMap<String, String>>,
}

impl ServiceNodeRow {
    fn into_node(self) -> CatalogNode {
        CatalogNode {
            id: self.id,
            node: self.node,
            address: self.address,
            datacenter: self.datacenter,
            tagged_addresses: self.tagged_addresses,
            meta: self.node_meta,
            ..CatalogNode::default()
        }
    }
}

/// `?near=…&node-meta=k:v…` (Consul's API client spelling), or "" when nothing is set.
fn query_string(params: &[(&str, Option<&str>)], meta: &[(String, String)]) -> String {
    let mut pairs: Vec<String> =
        params.iter().filter_map(|(k, v)| v.map(|v| format!("{k}={}", escape(v)))).collect();
    pairs.extend(meta.iter().map(|(k, v)| format!("node-meta={}", escape(&format!("{k}:{v}")))));
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

/// Percent-encodes a path segment or query value.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn nodes_table(nodes: &[CatalogNode], detailed: bool) -> String {
    let mut header = vec!["Node", "ID", "Address", "DC"];
    if detailed {
        header.extend(["TaggedAddresses", "Meta"]);
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for node in nodes {
        let id = match node.id.split_once('-') {
            Some((first, _)) if !detailed && !first.is_empty() => first,
            _ => node.id.as_str(),
        };
        let mut row = vec![node.node.clone(), id.to_owned(), node.address.clone(), node.datacenter.clone()];
        if detailed {
            row.push(map_to_kv(node.tagged_addresses.as_ref()));
            row.push(map_to_kv(node.meta.as_ref()));
        }
        rows.push(row);
    }
    columnize(&rows)
}

/// `k=v, k2=v2` in key order, as Consul prints maps.
fn map_to_kv(map: Option<&BTreeMap<String, String>>) -> String {
    let pairs = map.into_iter().flatten().map(|(k, v)| format!("{k}={v}"));
    pairs.collect::<Vec<_>>().join(", ")
}

async fn services(args: &ServicesArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let query = query_string(&[], &args.node_meta);
    let services: BTreeMap<String, Vec<String>> = match &args.node {
        Some(node) => node_services(client, &format!("/v1/catalog/node/{}{query}", escape(node))).await?,
        None if query.is_empty() => client.catalog_services().await?,
        None => client.get_json(&format!("/v1/catalog/services{query}")).await?.unwrap_or_default(),
    };
    if services.is_empty() {
        out.error(NO_SERVICES)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.tags {
        let rows: Vec<(&str, String)> = services
            .iter()
            .map(|(name, tags)| {
                let mut tags = tags.clone();
                tags.sort();
                (name.as_str(), tags.join(","))
            })
            .collect();
        out.line(tab_align(&rows))?;
    } else {
        for name in services.keys() {
            out.line(name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Service name → tags of every instance on one node (`GET /v1/catalog/node/:node`).
async fn node_services(client: &Client, path: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Instance {
        service: String,
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct NodeServices {
        #[serde(default)]
        services: BTreeMap<String, Instance>,
    }
    let found: Option<Option<NodeServices>> = client.get_json(path).await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for instance in found.flatten().map(|n| n.services).unwrap_or_default().into_values() {
        out.entry(instance.service).or_default().extend(instance.tags.unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_shortened_unless_detailed() {
        let node = CatalogNode {
            id: "3a8e42bc-1111-2222-3333-444455556666".into(),
            node: "node1".into(),
            address: "127.0.0.1".into(),
            datacenter: "dc1".into(),
            tagged_addresses: Some(BTreeMap::from([("lan".into(), "127.0.0.1".into())])),
            ..CatalogNode::default()
        };
        let short = nodes_table(std::slice::from_ref(&node), false);
        assert_eq!(short, "Node   ID        Address    DC\nnode1  3a8e42bc  127.0.0.1  dc1");
        let long = nodes_table(&[node], true);
        assert!(long.contains("3a8e42bc-1111-2222-3333-444455556666  127.0.0.1  dc1  lan=127.0.0.1"));
    }

    #[test]
    fn node_meta_flags_need_an_equals_sign() {
        assert_eq!(parse_meta("rack=r1=x").unwrap(), ("rack".to_owned(), "r1=x".to_owned()));
        assert_eq!(parse_meta("rack").unwrap_err(), "Missing \"=\" value in argument: rack");
    }

    #[test]
    fn queries_use_consuls_node_meta_spelling() {
        let meta = [("rack".to_owned(), "r 1".to_owned())];
        assert_eq!(query_string(&[("near", Some("_agent"))], &meta), "?near=_agent&node-meta=rack%3Ar%201");
        assert_eq!(query_string(&[("near", None)], &[]), "");
    }
}
