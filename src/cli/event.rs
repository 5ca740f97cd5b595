//! `sekisho event`: fires a user event through `PUT /v1/event/fire/:name` (Consul's
//! `consul event`, same flags and output).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use regex::Regex;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::client::url::{append_param, escape_path};

const LONG_ABOUT: &str = "\
Dispatches a custom user event across the datacenter. The event reaches every agent by
gossip, best effort: no persistence, no ordering, delivered at most once per agent. Each
agent keeps it only if the filters match: -node against its node name, -service against
one of its local services, -tag against a tag of that service (regular expressions,
unanchored). Name, payload and filters together must fit in 512 bytes; names starting
with '_' are reserved. Agents list what they received with GET /v1/event/list.";

const EXAMPLES: &str = "\
Examples:
  $ sekisho event -name deploy -service '^web$' -tag v2 'release 1.4'
  Event ID: 4e9e2f5c-81f2-8c2a-6b1c-2d6f3ae9a0c1";

/// `sekisho event`
#[derive(Args, Debug)]
#[command(about = "Fire a new event", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct EventArgs {
    /// Name of the event
    #[arg(long, required = true)]
    name: String,
    /// Regular expression to filter on node names
    #[arg(long, value_name = "REGEX", default_value = "")]
    node: String,
    /// Regular expression to filter on service names
    #[arg(long, value_name = "REGEX", default_value = "")]
    service: String,
    /// Regular expression to filter on service tags (needs -service)
    #[arg(long, value_name = "REGEX", default_value = "", requires = "service")]
    tag: String,
    /// The event payload (opaque bytes, optional)
    payload: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Checks the filters, fires the event and prints its ID.
pub(crate) async fn run(args: &EventArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    for (what, re) in [("node", &args.node), ("service", &args.service), ("tag", &args.tag)] {
        if !re.is_empty() {
            Regex::new(re).with_context(|| format!("Failed to compile {what} filter regexp"))?;
        }
    }
    let mut path = format!("/v1/event/fire/{}", escape_path(&args.name));
    for (k, v) in [("node", &args.node), ("service", &args.service), ("tag", &args.tag)] {
        if !v.is_empty() {
            append_param(&mut path, k, Some(v));
        }
    }
    let body = args.payload.clone().map(String::into_bytes);
    let resp =
        client.request(Method::PUT, &path, body).await?.error_for_status().context("Error firing event")?;
    let event: serde_json::Value = resp.json(&path)?;
    let id = event["ID"].as_str().context("the agent's answer has no event ID")?;
    out.line(format!("Event ID: {id}"))?;
    Ok(ExitCode::SUCCESS)
}
