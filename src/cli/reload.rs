//! `sekisho reload`: make the agent re-read its configuration files.

use std::process::ExitCode;

use clap::Args;
use http::Method;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;

/// `sekisho reload`
#[derive(Args, Debug)]
#[command(
    about = "Makes the agent re-read its configuration files",
    long_about = "Asks the agent to re-read its configuration files (like SIGHUP). Added, changed \
        and removed service and check definitions take effect; checks that did not change keep \
        running. A broken file is reported and exits 1, and the running configuration stays \
        as it was.",
    after_long_help = "Example:\n  $ sekisho reload\n  Configuration reload triggered"
)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Sends `PUT /v1/agent/reload`.
pub(crate) async fn run(_args: &ReloadArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let r = client.request(Method::PUT, "/v1/agent/reload", None).await?;
    if !r.is_success() {
        out.error(format!("Error reloading: {}", r.text().trim_end()))?;
        return Ok(ExitCode::FAILURE);
    }
    out.line("Configuration reload triggered")?;
    Ok(ExitCode::SUCCESS)
}
