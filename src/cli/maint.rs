//! `sekisho maint`: list, enable or disable node and service maintenance mode.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use serde_json::Value;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;

/// `sekisho maint`
#[derive(Args, Debug)]
#[command(
    about = "Controls node or service maintenance mode",
    long_about = "Without flags, lists the node and services in maintenance mode (nothing when none \
        is, so a script can test `[ -z \"$(sekisho maint)\" ]`). With -enable or -disable, turns \
        maintenance on or off for the node, or for one service with -service. An instance in \
        maintenance is critical, so it leaves DNS and health answers; the state survives an \
        agent restart.",
    after_long_help = "Examples:\n  $ sekisho maint -enable -reason \"kernel upgrade\"\n  \
        Node maintenance is now enabled\n  $ sekisho maint\n  Node:\n    Name:   db1\n    \
        Reason: kernel upgrade\n\n  $ sekisho maint -disable -service redis\n  \
        Service maintenance is now disabled for \"redis\""
)]
pub(crate) struct MaintArgs {
    /// Enable maintenance mode
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Disable maintenance mode
    #[arg(long)]
    disable: bool,
    /// Text shown as the maintenance check's notes (with -enable)
    #[arg(long, value_name = "TEXT", requires = "enable")]
    reason: Option<String>,
    /// Service ID to act on instead of the node
    #[arg(long, value_name = "ID")]
    service: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

fn escape(s: &str) -> String {
    crate::client::url::escape_query(s)
}

/// Lists maintenance, or turns it on or off.
pub(crate) async fn run(args: &MaintArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    if !args.enable && !args.disable {
        return list(client, out).await;
    }
    let reason = args.reason.as_deref().unwrap_or("");
    let query = format!("enable={}&reason={}", args.enable, escape(reason));
    let path = match &args.service {
        Some(id) => format!("/v1/agent/service/maintenance/{}?{query}", escape(id)),
        None => format!("/v1/agent/maintenance?{query}"),
    };
    client.request(Method::PUT, &path, None).await?.error_for_status()?;
    let state = if args.enable { "enabled" } else { "disabled" };
    match &args.service {
        Some(id) => out.line(format!("Service maintenance is now {state} for {id:?}"))?,
        None => out.line(format!("Node maintenance is now {state}"))?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let checks: Value = client
        .request(Method::GET, "/v1/agent/checks", None)
        .await?
        .error_for_status()?
        .json("/v1/agent/checks")?;
    let me = client.agent_self().await?;
    let node = me["Config"]["NodeName"].as_str().context("the agent did not report its node name")?;
    let Value::Object(checks) = checks else { anyhow::bail!("unexpected /v1/agent/checks answer") };
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    for (id, c) in &checks {
        if id == "_node_maintenance" {
            out.line("Node:")?;
            out.line(format!("  Name:   {node}"))?;
            out.line(format!("  Reason: {}", text(c, "Notes")))?;
            out.line("")?;
        } else if id.starts_with("_service_maintenance:") {
            out.line("Service:")?;
            out.line(format!("  ID:     {}", text(c, "ServiceID")))?;
            out.line(format!("  Reason: {}", text(c, "Notes")))?;
            out.line("")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
