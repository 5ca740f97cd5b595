//! `sekisho acl explain` (beyond Consul): why a token is allowed or denied one request, through
//! `POST /v1/internal/acl/authorize[?accessor=ID]`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use serde_json::{Value, json};

use super::{Ctx, Format, to_json};
use crate::cli::output::Output;
use crate::client::url::append_param;

/// `acl explain`
#[derive(Args, Debug)]
#[command(
    about = "Explain why a token is allowed or denied a request",
    long_about = "Evaluate one request (-resource, -segment, -access) for a token and print the \
        decision, the rule and policy that decided it (or the default policy), and for a denial \
        a rule that would allow it. -token-accessor names the token to evaluate (this needs \
        acl:read); without it the token this command presents is evaluated. The command exits \
        0 whether the decision is allow or deny, and 1 when it cannot be answered.",
    after_long_help = "Example:\n  $ sekisho acl explain -token-accessor 6a1253d2-1785-24fd-91c2-f8e78c745511 \\\n      \
        -resource key -segment app/config -access write\n  \
        Decision: deny\n  \
        Reason: key:write on \"app/config\": denied by rule `key_prefix \"app/\" { policy = \"read\" }` of policy app-read\n  \
        Suggestion: key \"app/config\" { policy = \"write\" }"
)]
pub(super) struct ExplainArgs {
    /// AccessorID of the token to evaluate (default: the presented token)
    #[arg(long = "token-accessor", value_name = "ID")]
    token_accessor: Option<String>,
    /// The resource: key, service, node, agent, session, event, query, acl, operator, keyring, ...
    #[arg(long, value_name = "RESOURCE", required = true)]
    resource: String,
    /// The resource's label, e.g. a key or a service name (none for acl, operator, keyring)
    #[arg(long, value_name = "SEGMENT", default_value = "")]
    segment: String,
    /// The access asked for
    #[arg(long, value_name = "ACCESS", value_parser = ["read", "list", "write"], required = true)]
    access: String,
}

/// Runs `acl explain`.
pub(super) async fn run(a: &ExplainArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut path = "/v1/internal/acl/authorize".to_owned();
    if let Some(id) = &a.token_accessor {
        append_param(&mut path, "accessor", Some(id));
    }
    let body = json!([{ "Resource": a.resource, "Segment": a.segment, "Access": a.access }]);
    let answer = ctx.call(Method::POST, &path, Some(&body)).await.context("Failed to explain")?;
    let Some(item) = answer.as_array().and_then(|a| a.first()) else {
        anyhow::bail!("Failed to explain: the agent sent no decision");
    };
    if ctx.format == Format::Json {
        out.line(to_json(item))?;
        return Ok(ExitCode::SUCCESS);
    }
    let allowed = item.get("Allow").and_then(Value::as_bool).unwrap_or(false);
    out.line(format!("Decision: {}", if allowed { "allow" } else { "deny" }))?;
    let reason = item.get("Reason").and_then(Value::as_str).unwrap_or("ACLs are disabled on this agent");
    out.line(format!("Reason: {reason}"))?;
    if let Some(s) = item.get("Suggestion").and_then(Value::as_str) {
        out.line(format!("Suggestion: {s}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
