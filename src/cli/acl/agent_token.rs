//! `sekisho acl set-agent-token <type> <token>`: `PUT /v1/agent/token/<type>`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use serde_json::{Value, json};

use super::{Ctx, Format, seg, to_json};
use crate::cli::output::Output;

/// `acl set-agent-token`
#[derive(Args, Debug)]
#[command(
    about = "Set one of the agent's own ACL tokens",
    long_about = "Replace one of the tokens the agent holds, without a restart. TYPE is one of:\n  \
        default         used for requests that present no token, and for DNS\n  \
        agent           the agent's own calls (registering itself, anti-entropy)\n  \
        agent_recovery  reaches the agent's endpoints even when the servers are down\n  \
        replication     ACL replication in secondary datacenters\n\
        (legacy names: acl_token, acl_agent_token, acl_agent_master_token, agent_master,\n\
        acl_replication_token). Needs acl:write. With acl.enable_token_persistence the agent\n\
        saves the token in its data directory and uses it after a restart; otherwise it lasts\n\
        until the agent stops. An empty TOKEN clears it.",
    after_long_help = "Example:\n  $ sekisho acl set-agent-token agent 4f6b1b9c-0c2e-4c67-9a0b-2a6a4a1b6b0e\n  \
        ACL token \"agent\" set successfully"
)]
pub(super) struct SetAgentTokenArgs {
    /// Which token: default, agent, agent_recovery or replication
    #[arg(value_name = "TYPE")]
    kind: String,
    /// The token's SecretID (not `token`: that id is the global -token flag's)
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    secret_id: String,
}

/// Runs `acl set-agent-token`.
pub(super) async fn run(a: &SetAgentTokenArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/agent/token/{}", seg(&a.kind));
    ctx.call(Method::PUT, &path, Some(&json!({ "Token": a.secret_id })))
        .await
        .context("Failed to set ACL token")?;
    match ctx.format {
        Format::Json => out.line(to_json(&Value::Bool(true)))?,
        Format::Pretty => out.line(format!("ACL token {:?} set successfully", a.kind))?,
    }
    Ok(ExitCode::SUCCESS)
}
