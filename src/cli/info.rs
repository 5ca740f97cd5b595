//! `sekisho info`: the agent's debugging statistics.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;

/// `sekisho info`
#[derive(Args, Debug)]
#[command(
    about = "Provides debugging information for operators",
    long_about = "Print the agent's statistics from /v1/agent/self, by section (agent, build, \
        consul, raft, ...), keys sorted.",
    after_long_help = "Example:\n  $ sekisho info\n  agent:\n  \tcheck_monitors = 0\n  \
        \tservices = 0\n  raft:\n  \tstate = Leader\n  \tterm = 2"
)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Prints the `Stats` sections.
pub(crate) async fn run(_args: &InfoArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let me = client.agent_self().await?;
    out.line(render(&me)?)?;
    Ok(ExitCode::SUCCESS)
}

/// `section:` lines followed by `\tkey = value` lines, both sorted, no trailing newline.
fn render(agent_self: &Value) -> anyhow::Result<String> {
    let stats = agent_self
        .get("Stats")
        .and_then(Value::as_object)
        .context("the agent's /v1/agent/self answer has no Stats")?;
    let mut lines = Vec::new();
    let mut sections: Vec<_> = stats.iter().collect();
    sections.sort_by_key(|(name, _)| *name);
    for (name, section) in sections {
        let section = section.as_object().with_context(|| format!("Got invalid subkey in stats: {name}"))?;
        lines.push(format!("{name}:"));
        let mut keys: Vec<_> = section.iter().collect();
        keys.sort_by_key(|(key, _)| *key);
        for (key, value) in keys {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            lines.push(format!("\t{key} = {value}"));
        }
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_keys_are_sorted() {
        let me = serde_json::json!({"Stats": {
            "raft": {"term": "2", "state": "Leader"},
            "agent": {"services": "0"}
        }});
        assert_eq!(render(&me).unwrap(), "agent:\n\tservices = 0\nraft:\n\tstate = Leader\n\tterm = 2");
        assert!(render(&serde_json::json!({})).is_err());
    }
}
