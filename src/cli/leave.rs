//! `sekisho leave`: ask the agent to leave the cluster gracefully and shut down.

use std::process::ExitCode;

use clap::Args;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;

/// `sekisho leave`
#[derive(Args, Debug)]
#[command(
    about = "Gracefully leaves the cluster and shuts down the agent",
    long_about = "Ask the agent at -http-addr to leave the cluster gracefully and shut down. \
        Other members see it as `left` rather than `failed`.",
    after_long_help = "Example:\n  $ sekisho leave -http-addr=127.0.0.1:8500\n  Graceful leave complete"
)]
pub(crate) struct LeaveArgs {
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Sends `PUT /v1/agent/leave`.
pub(crate) async fn run(_args: &LeaveArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    client.agent_leave().await?;
    out.line("Graceful leave complete")?;
    Ok(ExitCode::SUCCESS)
}
