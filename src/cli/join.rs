//! `sekisho join` and `sekisho force-leave`: gossip pool membership by hand.

use std::process::ExitCode;

use clap::Args;
use http::Method;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::client::url::escape_query;

/// `sekisho join`
#[derive(Args, Debug)]
#[command(
    about = "Tells the agent to join a cluster",
    long_about = "Asks the agent at -http-addr to join the LAN gossip pool through one or more \
        members' gossip addresses (`ip` or `ip:port`, port 8301 by default). With -wan a server \
        joins the WAN pool through servers of other datacenters (port 8302 by default). It \
        succeeds when at least one address answered.",
    after_long_help = "Example:\n  $ sekisho join 10.0.0.2 10.0.0.3:8301\n  \
        Successfully joined cluster by contacting 2 nodes."
)]
pub(crate) struct JoinArgs {
    /// Gossip addresses of existing members
    #[arg(required = true, value_name = "ADDRESS")]
    addresses: Vec<String>,
    /// Join the WAN pool (servers of other datacenters, WAN gossip port 8302) instead
    #[arg(long)]
    wan: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Joins each address; exit 1 when none worked.
pub(crate) async fn run(args: &JoinArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut joined = 0;
    let mut errors = Vec::new();
    for a in &args.addresses {
        let mut path = format!("/v1/agent/join/{}", escape_query(a));
        if args.wan {
            path.push_str("?wan=1");
        }
        let r = client.request(Method::PUT, &path, None).await?;
        if r.is_success() {
            joined += 1;
        } else {
            errors.push(format!("{a}: {}", r.text().trim_end()));
        }
    }
    for e in &errors {
        out.error(format!("Error joining address {e}"))?;
    }
    if joined == 0 {
        out.error("Failed to join any nodes.")?;
        return Ok(ExitCode::FAILURE);
    }
    out.line(format!("Successfully joined cluster by contacting {joined} nodes."))?;
    Ok(ExitCode::SUCCESS)
}

/// `sekisho force-leave`
#[derive(Args, Debug)]
#[command(
    about = "Forces a member of the cluster to enter the \"left\" state",
    long_about = "Moves a failed member to `left` at once instead of waiting for \
        reconnect_timeout, so its node leaves the catalog. With -prune it is also removed from \
        the member list.",
    after_long_help = "Example:\n  $ sekisho force-leave -prune web-7"
)]
pub(crate) struct ForceLeaveArgs {
    /// Node name of the member
    #[arg(value_name = "NODE")]
    node: String,
    /// Remove the member from the list entirely
    #[arg(long)]
    prune: bool,
    /// The member is in the WAN pool (name <node>.<datacenter>)
    #[arg(long)]
    wan: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Sends `PUT /v1/agent/force-leave/:node`; silent on success like Consul.
pub(crate) async fn force_leave(
    args: &ForceLeaveArgs,
    client: &Client,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let mut params = Vec::new();
    if args.prune {
        params.push("prune=1");
    }
    if args.wan {
        params.push("wan=1");
    }
    let mut path = format!("/v1/agent/force-leave/{}", escape_query(&args.node));
    if !params.is_empty() {
        path = format!("{path}?{}", params.join("&"));
    }
    let r = client.request(Method::PUT, &path, None).await?;
    if !r.is_success() {
        out.error(format!("Error force leaving: {}", r.text().trim_end()))?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
