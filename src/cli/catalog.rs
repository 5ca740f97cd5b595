//! `sekisho catalog datacenters|nodes|services`: read the service catalog.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::http::HttpArgs;
use super::output::{Output, columnize, tab_align};
use crate::client::{CatalogNode, Client};

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
    after_long_help = "Example:\n  $ sekisho catalog nodes\n  Node   ID        Address    DC\n  \
        node1  3a8e42bc  127.0.0.1  dc1"
)]
pub(crate) struct NodesArgs {
    /// Show full node IDs, tagged addresses and metadata
    #[arg(long)]
    detailed: bool,
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
    /// Show each service's tags
    #[arg(long)]
    tags: bool,
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
    let nodes = client.catalog_nodes().await?;
    if nodes.is_empty() {
        out.error("No nodes match the given query.")?;
    } else {
        out.line(nodes_table(&nodes, args.detailed))?;
    }
    Ok(ExitCode::SUCCESS)
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
    let services = client.catalog_services().await?;
    if services.is_empty() {
        out.error("No services match the given query.")?;
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
}
