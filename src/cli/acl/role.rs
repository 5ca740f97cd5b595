//! `sekisho acl role create|read|update|delete|list`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, LinkArgs, format, keep_links, list_field, seg, str_field};
use crate::cli::output::Output;

/// `acl role …`
#[derive(Subcommand, Debug)]
pub(super) enum RoleCommand {
    Create(CreateArgs),
    #[command(
        about = "Read an ACL role",
        after_long_help = "Examples:\n  $ sekisho acl role read -name ops\n  \
            $ sekisho acl role read -id 57147d87 -format=json"
    )]
    Read(WhichArgs),
    Update(UpdateArgs),
    #[command(
        about = "Delete an ACL role",
        after_long_help = "Example:\n  $ sekisho acl role delete -name ops\n  \
            Role \"57147d87-0e0f-4d7e-9b21-8a6a4c2f1f5e\" deleted successfully"
    )]
    Delete(WhichArgs),
    List(ListArgs),
}

/// The role a command acts on: by ID (or a unique prefix) or by name.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "name"])))]
pub(super) struct WhichArgs {
    /// The role's ID (or a unique prefix of it)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The role's name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// `acl role create`
#[derive(Args, Debug)]
#[command(
    about = "Create an ACL role",
    long_about = "Create a named bundle of policies and service and node identities that tokens \
        can link with -role-name or -role-id.",
    after_long_help = "Example:\n  $ sekisho acl role create -name ops -policy-name kv-read \\\n      \
        -service-identity web -node-identity node1:dc1"
)]
pub(super) struct CreateArgs {
    /// The new role's name
    #[arg(long, value_name = "NAME", required = true)]
    name: String,
    /// A description of the role
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    #[command(flatten)]
    links: LinkArgs,
}

/// `acl role update`
#[derive(Args, Debug)]
#[command(
    about = "Update an ACL role",
    long_about = "Change a role found by -id (then -name renames it) or by -name. Each kind of \
        link given replaces that kind; the others are kept.",
    after_long_help = "Example:\n  $ sekisho acl role update -name ops -policy-name kv-read -policy-name svc-write"
)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "name"])))]
pub(super) struct UpdateArgs {
    /// The role's ID (or a unique prefix of it)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The role's name (with -id: its new name)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A new description
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    #[command(flatten)]
    links: LinkArgs,
}

/// `acl role list`
#[derive(Args, Debug)]
#[command(about = "List ACL roles", after_long_help = "Example:\n  $ sekisho acl role list")]
pub(super) struct ListArgs {}

/// Runs one role command.
pub(super) async fn run(c: RoleCommand, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    match c {
        RoleCommand::Create(a) => create(&a, ctx, out).await,
        RoleCommand::Read(a) => read(&a, ctx, out).await,
        RoleCommand::Update(a) => update(&a, ctx, out).await,
        RoleCommand::Delete(a) => delete(&a, ctx, out).await,
        RoleCommand::List(_) => list(ctx, out).await,
    }
}

async fn create(a: &CreateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut o = Map::new();
    o.insert("Name".into(), json!(a.name));
    o.insert("Description".into(), json!(a.description));
    a.links.apply(&mut o, true);
    let v = ctx
        .call(Method::PUT, "/v1/acl/role", Some(&Value::Object(o)))
        .await
        .context("Failed to create new role")?;
    ctx.print(out, &v, format::role)
}

/// The role, found by ID (or prefix) or by name.
async fn find(ctx: &Ctx<'_>, id: Option<&str>, name: Option<&str>) -> anyhow::Result<Value> {
    let path = match id {
        Some(id) => format!("/v1/acl/role/{}", seg(&ctx.full_id("/v1/acl/roles", "ID", id, "role").await?)),
        None => format!("/v1/acl/role/name/{}", seg(name.unwrap_or_default())),
    };
    ctx.get(&path).await.context("Failed to read role")
}

async fn read(a: &WhichArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = find(ctx, a.id.as_deref(), a.name.as_deref()).await?;
    ctx.print(out, &v, format::role)
}

async fn update(a: &UpdateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let old = find(ctx, a.id.as_deref(), a.name.as_deref()).await?;
    let id = str_field(&old, "ID");
    let mut o = Map::new();
    o.insert("ID".into(), json!(id));
    let name = match (&a.id, &a.name) {
        (Some(_), Some(new)) => new.clone(),
        _ => str_field(&old, "Name"),
    };
    o.insert("Name".into(), json!(name));
    let description = a.description.clone().unwrap_or_else(|| str_field(&old, "Description"));
    o.insert("Description".into(), json!(description));
    // The server replaces every kind of link when one is sent: send them all back.
    o.insert("Policies".into(), keep_links(&old, "Policies"));
    o.insert("ServiceIdentities".into(), list_field(&old, "ServiceIdentities"));
    o.insert("NodeIdentities".into(), list_field(&old, "NodeIdentities"));
    a.links.apply(&mut o, false);
    let path = format!("/v1/acl/role/{}", seg(&id));
    let v = ctx.call(Method::PUT, &path, Some(&Value::Object(o))).await.context("Failed to update role")?;
    ctx.print(out, &v, format::role)
}

async fn delete(a: &WhichArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = str_field(&find(ctx, a.id.as_deref(), a.name.as_deref()).await?, "ID");
    let v = ctx
        .call(Method::DELETE, &format!("/v1/acl/role/{}", seg(&id)), None)
        .await
        .with_context(|| format!("Error deleting role {id:?}"))?;
    ctx.deleted(out, &format!("Role {id:?}"), &v)
}

async fn list(ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get("/v1/acl/roles").await.context("Failed to retrieve the role list")?;
    ctx.print_list(out, &v, format::role_entry)
}
