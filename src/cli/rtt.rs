//! `sekisho rtt`: the round trip time between two nodes, estimated from their network
//! coordinates (no packets are sent).

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::state::coordinate::{Coordinate, CoordinateEntry};

/// `sekisho rtt`
#[derive(Args, Debug)]
#[command(
    about = "Estimates the network round trip time between nodes",
    long_about = "Estimate the round trip time between two nodes from the network coordinates \
        the agents compute from gossip probes. With one node name, the other is the agent at \
        -http-addr. Coordinates need a few probe rounds after a node joins (and reach the \
        servers every sync_coordinate_interval_min, 15s by default), so a new node may not \
        have one yet.",
    after_long_help = "Examples:\n  $ sekisho rtt nyc-web-1 nyc-web-2\n  \
        Estimated nyc-web-1 <-> nyc-web-2 rtt: 0.610 ms (using LAN coordinates)\n\n  \
        $ sekisho rtt nyc-web-2\n  \
        Estimated nyc-web-2 <-> this-agent rtt: 1.042 ms (using LAN coordinates)"
)]
pub(crate) struct RttArgs {
    /// Use WAN coordinates (node names as <node>.<datacenter>)
    #[arg(long)]
    wan: bool,
    /// The first node
    #[arg(value_name = "NODE1")]
    node1: String,
    /// The second node (default: the agent's own node)
    #[arg(value_name = "NODE2")]
    node2: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Prints Consul's `Estimated a <-> b rtt: … ms (using LAN coordinates)`.
pub(crate) async fn run(args: &RttArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    if args.wan {
        return wan(args, client, out).await;
    }
    let node2 = match &args.node2 {
        Some(n) => n.clone(),
        None => {
            let me = client.agent_self().await?;
            me["Config"]["NodeName"].as_str().context("the agent did not report its node name")?.to_owned()
        }
    };
    let entries: Vec<CoordinateEntry> = client
        .get_json("/v1/coordinate/nodes")
        .await?
        .context("the agent has no /v1/coordinate/nodes endpoint")?;
    let find = |node: &str| -> anyhow::Result<&Coordinate> {
        entries
            .iter()
            .find(|e| e.node == node)
            .map(|e| &e.coord)
            .with_context(|| format!("Could not find a coordinate for node {node:?}"))
    };
    let (a, b) = (find(&args.node1)?, find(&node2)?);
    let rtt = a
        .checked_distance_to(b)
        .with_context(|| format!("the coordinates of {:?} and {node2:?} are not comparable", args.node1))?;
    out.line(format!(
        "Estimated {} <-> {node2} rtt: {:.3} ms (using LAN coordinates)",
        args.node1,
        rtt.as_secs_f64() * 1000.0
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `rtt -wan`: between two servers of the WAN pool, named `<node>.<datacenter>`.
async fn wan(args: &RttArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Area {
        coordinates: Vec<CoordinateEntry>,
    }
    let node2 = match &args.node2 {
        Some(n) => n.clone(),
        None => {
            let me = client.agent_self().await?;
            if me["Config"]["Server"].as_bool() != Some(true) {
                bail!("the agent is not a server: WAN coordinates are kept by servers (give both nodes)");
            }
            let node = me["Config"]["NodeName"].as_str().context("the agent did not report its node name")?;
            let dc =
                me["Config"]["Datacenter"].as_str().context("the agent did not report its datacenter")?;
            format!("{node}.{dc}")
        }
    };
    let areas: Vec<Area> = client
        .get_json("/v1/coordinate/datacenters")
        .await?
        .context("the agent has no /v1/coordinate/datacenters endpoint")?;
    let entries: Vec<&CoordinateEntry> = areas.iter().flat_map(|a| a.coordinates.iter()).collect();
    let find = |node: &str| -> anyhow::Result<&Coordinate> {
        entries.iter().find(|e| e.node == node).map(|e| &e.coord).with_context(|| {
            format!("Could not find a WAN coordinate for node {node:?} (names are <node>.<datacenter>)")
        })
    };
    let (a, b) = (find(&args.node1)?, find(&node2)?);
    let rtt = a
        .checked_distance_to(b)
        .with_context(|| format!("the coordinates of {:?} and {node2:?} are not comparable", args.node1))?;
    out.line(format!(
        "Estimated {} <-> {node2} rtt: {:.3} ms (using WAN coordinates)",
        args.node1,
        rtt.as_secs_f64() * 1000.0
    ))?;
    Ok(ExitCode::SUCCESS)
}
