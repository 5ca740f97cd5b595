//! `sekisho acl policy create|read|update|delete|list`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, format, load_value, seg};
use crate::cli::output::Output;

/// `acl policy …`
#[derive(Subcommand, Debug)]
pub(super) enum PolicyCommand {
    Create(CreateArgs),
    #[command(
        about = "Read an ACL policy",
        long_about = "Print a policy, found by -id (or a unique prefix of it) or by -name, rules included.",
        after_long_help = "Examples:\n  $ sekisho acl policy read -name kv-read\n  \
            ID:           06acc965-df4b-5a99-58cb-3250930c6324\n  Name:         kv-read\n  \
            Description:\n  Datacenters:\n  Rules:\n  key_prefix \"\" { policy = \"read\" }\n  \
            $ sekisho acl policy read -id 06acc965 -format=json"
    )]
    Read(WhichArgs),
    Update(UpdateArgs),
    #[command(
        about = "Delete an ACL policy",
        after_long_help = "Example:\n  $ sekisho acl policy delete -name kv-read\n  \
            Policy \"06acc965-df4b-5a99-58cb-3250930c6324\" deleted successfully"
    )]
    Delete(WhichArgs),
    List(ListArgs),
}

/// The policy a command acts on: by ID (or a unique prefix) or by name.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "name"])))]
pub(super) struct WhichArgs {
    /// The policy's ID (or a unique prefix of it)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The policy's name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// `acl policy create`
#[derive(Args, Debug)]
#[command(
    about = "Create an ACL policy",
    long_about = "Create a policy from rules in HCL or JSON. -rules takes the text itself, @FILE \
        to read a file, or - to read stdin. The server checks the rules: an error names the \
        line and the offending word.",
    after_long_help = "Examples:\n  $ sekisho acl policy create -name kv-read -rules @kv-read.hcl\n  \
        $ sekisho acl policy create -name web -description \"web service\" \\\n      \
        -rules 'service \"web\" { policy = \"write\" }' -valid-datacenter dc1\n  \
        $ cat rules.hcl | sekisho acl policy create -name ops -rules -"
)]
pub(super) struct CreateArgs {
    /// The new policy's name
    #[arg(long, value_name = "NAME", required = true)]
    name: String,
    /// A description of the policy
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    /// The rules: text, @FILE or - (stdin)
    #[arg(long, value_name = "RULES", default_value = "")]
    rules: String,
    /// A datacenter the policy is valid in (default: all); repeat for more
    #[arg(long = "valid-datacenter", value_name = "DC")]
    valid_datacenter: Vec<String>,
}

/// `acl policy update`
#[derive(Args, Debug)]
#[command(
    about = "Update an ACL policy",
    long_about = "Change a policy found by -id (then -name renames it) or by -name. Only the \
        fields given change; -valid-datacenter replaces the whole list.",
    after_long_help = "Examples:\n  $ sekisho acl policy update -name kv-read -rules @kv-read-v2.hcl\n  \
        $ sekisho acl policy update -id 06acc965 -name kv-reader -description \"renamed\""
)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "name"])))]
pub(super) struct UpdateArgs {
    /// The policy's ID (or a unique prefix of it)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The policy's name (with -id: its new name)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A new description
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// New rules: text, @FILE or - (stdin)
    #[arg(long, value_name = "RULES")]
    rules: Option<String>,
    /// A datacenter the policy is valid in; repeat for more
    #[arg(long = "valid-datacenter", value_name = "DC")]
    valid_datacenter: Vec<String>,
}

/// `acl policy list`
#[derive(Args, Debug)]
#[command(
    about = "List ACL policies",
    after_long_help = "Example:\n  $ sekisho acl policy list\n  global-management:\n     \
        ID:           00000000-0000-0000-0000-000000000001\n     \
        Description:  Builtin Policy that grants unlimited access\n     Datacenters:"
)]
pub(super) struct ListArgs {}

/// Runs one policy command.
pub(super) async fn run(c: PolicyCommand, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Create(a) => create(&a, ctx, out).await,
        PolicyCommand::Read(a) => read(&a, ctx, out).await,
        PolicyCommand::Update(a) => update(&a, ctx, out).await,
        PolicyCommand::Delete(a) => delete(&a, ctx, out).await,
        PolicyCommand::List(_) => list(ctx, out).await,
    }
}

async fn create(a: &CreateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let rules = load_value(&a.rules, "-rules")?;
    let mut body = json!({ "Name": a.name, "Description": a.description, "Rules": rules });
    if !a.valid_datacenter.is_empty() {
        body["Datacenters"] = json!(a.valid_datacenter);
    }
    let v =
        ctx.call(Method::PUT, "/v1/acl/policy", Some(&body)).await.context("Failed to create new policy")?;
    ctx.print(out, &v, format::policy)
}

/// The policy's ID, looked up by name when no ID is given.
async fn policy_id(ctx: &Ctx<'_>, id: Option<&str>, name: Option<&str>) -> anyhow::Result<String> {
    if let Some(id) = id {
        return ctx.full_id("/v1/acl/policies", "ID", id, "policy").await;
    }
    let name = name.unwrap_or_default();
    let v = ctx
        .get(&format!("/v1/acl/policy/name/{}", seg(name)))
        .await
        .with_context(|| format!("Failed to find policy {name:?}"))?;
    Ok(super::str_field(&v, "ID"))
}

async fn read(a: &WhichArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = match (&a.id, &a.name) {
        (Some(id), _) => format!("/v1/acl/policy/{}", seg(&policy_id(ctx, Some(id), None).await?)),
        (None, name) => format!("/v1/acl/policy/name/{}", seg(name.as_deref().unwrap_or_default())),
    };
    let v = ctx.get(&path).await.context("Failed to read policy")?;
    ctx.print(out, &v, format::policy)
}

async fn update(a: &UpdateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = policy_id(ctx, a.id.as_deref(), a.name.as_deref()).await?;
    let mut o = Map::new();
    o.insert("ID".into(), json!(id));
    if a.id.is_some()
        && let Some(name) = &a.name
    {
        o.insert("Name".into(), json!(name));
    }
    if let Some(d) = &a.description {
        o.insert("Description".into(), json!(d));
    }
    if let Some(r) = &a.rules {
        o.insert("Rules".into(), json!(load_value(r, "-rules")?));
    }
    if !a.valid_datacenter.is_empty() {
        o.insert("Datacenters".into(), json!(a.valid_datacenter));
    }
    let path = format!("/v1/acl/policy/{}", seg(&id));
    let v = ctx.call(Method::PUT, &path, Some(&Value::Object(o))).await.context("Failed to update policy")?;
    ctx.print(out, &v, format::policy)
}

async fn delete(a: &WhichArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = policy_id(ctx, a.id.as_deref(), a.name.as_deref()).await?;
    let v = ctx
        .call(Method::DELETE, &format!("/v1/acl/policy/{}", seg(&id)), None)
        .await
        .with_context(|| format!("Error deleting policy {id:?}"))?;
    ctx.deleted(out, &format!("Policy {id:?}"), &v)
}

async fn list(ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get("/v1/acl/policies").await.context("Failed to retrieve the policy list")?;
    ctx.print_list(out, &v, format::policy_entry)
}
