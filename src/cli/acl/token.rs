//! `sekisho acl bootstrap` and `sekisho acl token create|read|update|delete|list|clone`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, LinkArgs, format, keep_links, links, list_field, seg, str_field};
use crate::cli::output::Output;

/// `acl bootstrap`
#[derive(Args, Debug)]
#[command(
    about = "Bootstrap the ACL system and print the initial management token",
    long_about = "Create the first management token (global-management policy) and print it. This \
        works once per cluster: later calls fail with `Permission denied: ACL bootstrap no longer \
        allowed (reset index: N)`; see the acl-bootstrap-reset file to reset it.",
    after_long_help = "Example:\n  $ sekisho acl bootstrap\n  \
        AccessorID:       edcaacda-b6d0-1954-5939-b5aceaca7c9a\n  \
        SecretID:         4411f091-a4c9-48e6-0884-1fcb092da1c8\n  \
        Description:      Bootstrap Token (Global Management)\n  \
        Local:            false\n  \
        Create Time:      2024-05-02T15:41:02.491346Z\n  \
        Policies:\n     00000000-0000-0000-0000-000000000001 - global-management\n\n\
        Reset a lost bootstrap token on the server whose data dir is /var/lib/sekisho, and revoke \
        the earlier management tokens:\n  \
        $ sekisho acl bootstrap -reset -data-dir /var/lib/sekisho -revoke-management"
)]
pub(super) struct BootstrapArgs {
    /// Reset first (beyond Consul): read the reset index from the refusal, write it into
    /// DATA_DIR/acl-bootstrap-reset, then bootstrap again. Run it on the server the HTTP
    /// address points at
    #[arg(long, requires = "data_dir")]
    reset: bool,
    /// The data dir of the server that answers (with -reset)
    #[arg(long = "data-dir", value_name = "DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// With -reset: also delete every earlier token that links global-management
    #[arg(long = "revoke-management", requires = "reset")]
    revoke_management: bool,
}

/// `acl token …`
#[derive(Subcommand, Debug)]
pub(super) enum TokenCommand {
    Create(CreateArgs),
    Read(ReadArgs),
    Update(UpdateArgs),
    #[command(
        about = "Delete an ACL token",
        after_long_help = "Example:\n  $ sekisho acl token delete -id 986193\n  \
            Token \"986193e5-8f6a-3d72-a4ce-1cea4ca40f67\" deleted successfully"
    )]
    Delete(IdArgs),
    List(ListArgs),
    Clone(CloneArgs),
}

/// The token a command acts on.
#[derive(Args, Debug)]
pub(super) struct IdArgs {
    /// The token's AccessorID (or a unique prefix of it)
    #[arg(long = "accessor-id", visible_aliases = ["id", "accessor"], value_name = "ID", required = true)]
    id: String,
}

/// `acl token create`
#[derive(Args, Debug)]
#[command(
    about = "Create an ACL token",
    long_about = "Create a token linked to policies, roles, service identities and node \
        identities. Policies and roles may be named (-policy-name) or given by ID. With -local \
        the token is valid in this datacenter only; with -expires-ttl it expires (1m to 24h).",
    after_long_help = "Examples:\n  $ sekisho acl token create -description \"web app\" -policy-name kv-read\n  \
        $ sekisho acl token create -service-identity web:dc1,dc2 -node-identity node1:dc1\n  \
        $ sekisho acl token create -role-name ops -local -expires-ttl 1h\n  \
        $ sekisho acl token create -policy-name kv-read -format=json"
)]
pub(super) struct CreateArgs {
    /// A description of the token
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    #[command(flatten)]
    links: LinkArgs,
    #[command(flatten)]
    roles: RoleLinkArgs,
    /// Create a token valid in this datacenter only
    #[arg(long)]
    local: bool,
    /// Delete the token after this long, e.g. 30m (1m to 24h)
    #[arg(long = "expires-ttl", value_name = "DURATION", value_parser = duration)]
    expires_ttl: Option<String>,
    /// Use this AccessorID (a UUID) instead of a generated one
    #[arg(long, value_name = "UUID")]
    accessor: Option<String>,
    /// Use this SecretID (a UUID) instead of a generated one
    #[arg(long, value_name = "UUID")]
    secret: Option<String>,
}

/// Role links of a token.
#[derive(Args, Debug, Clone, Default)]
pub(super) struct RoleLinkArgs {
    /// Name of a role to link; repeat for more
    #[arg(long = "role-name", value_name = "NAME")]
    role_name: Vec<String>,
    /// ID of a role to link; repeat for more
    #[arg(long = "role-id", value_name = "ID")]
    role_id: Vec<String>,
}

fn duration(s: &str) -> Result<String, String> {
    crate::config::parse_go_duration(s).map(|_| s.to_owned())
}

/// `acl token read`
#[derive(Args, Debug)]
#[command(
    about = "Read an ACL token",
    long_about = "Print a token: by AccessorID (or a unique prefix of it), or with -self the \
        token this command presents (-token, -token-file). Callers with acl:read but not \
        acl:write see the SecretID as <hidden>.",
    after_long_help = "Examples:\n  $ sekisho acl token read -id 986193\n  \
        $ sekisho acl token read -self\n  $ sekisho acl token read -id 986193 -format=json"
)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "self_"])))]
pub(super) struct ReadArgs {
    /// The token's AccessorID (or a unique prefix of it)
    #[arg(long = "accessor-id", visible_aliases = ["id", "accessor"], value_name = "ID")]
    id: Option<String>,
    /// Read the token this command presents
    #[arg(long = "self")]
    self_: bool,
}

/// `acl token update`
#[derive(Args, Debug)]
#[command(
    about = "Update an ACL token",
    long_about = "Change a token's description or links. Each kind of link given (policies, \
        roles, service identities, node identities) replaces that kind; the others are kept. \
        AccessorID, SecretID, locality and expiration cannot change.",
    after_long_help = "Examples:\n  $ sekisho acl token update -id 986193 -description \"web, renamed\"\n  \
        $ sekisho acl token update -id 986193 -policy-name kv-read -policy-name svc-write"
)]
pub(super) struct UpdateArgs {
    #[command(flatten)]
    id: IdArgs,
    /// A new description
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    #[command(flatten)]
    links: LinkArgs,
    #[command(flatten)]
    roles: RoleLinkArgs,
}

/// `acl token list`
#[derive(Args, Debug)]
#[command(
    about = "List ACL tokens",
    after_long_help = "Example:\n  $ sekisho acl token list\n  $ sekisho acl token list -format=json"
)]
pub(super) struct ListArgs {}

/// `acl token clone`
#[derive(Args, Debug)]
#[command(
    about = "Clone an ACL token",
    long_about = "Create a new token with the same links as an existing one, and new IDs.",
    after_long_help = "Example:\n  $ sekisho acl token clone -id 986193 -description \"web, second copy\""
)]
pub(super) struct CloneArgs {
    #[command(flatten)]
    id: IdArgs,
    /// The clone's description (default: the original's)
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

/// Runs one token command.
pub(super) async fn run(c: TokenCommand, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    match c {
        TokenCommand::Create(a) => create(&a, ctx, out).await,
        TokenCommand::Read(a) => read(&a, ctx, out).await,
        TokenCommand::Update(a) => update(&a, ctx, out).await,
        TokenCommand::Delete(a) => delete(&a, ctx, out).await,
        TokenCommand::List(_) => list(ctx, out).await,
        TokenCommand::Clone(a) => clone(&a, ctx, out).await,
    }
}

/// `acl bootstrap`.
pub(super) async fn bootstrap(
    a: &BootstrapArgs,
    ctx: &Ctx<'_>,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let mut path = "/v1/acl/bootstrap".to_owned();
    if let (true, Some(dir)) = (a.reset, a.data_dir.as_deref()) {
        let r = ctx.client.request(Method::PUT, &path, None).await?;
        if r.status.is_success() {
            // Never bootstrapped: this is the first token, no reset was needed.
            eprintln!("The ACL system was not bootstrapped yet: no reset was needed");
            let v: Value = r.json(&path)?;
            return ctx.print(out, &v, format::token);
        }
        write_reset_index(&String::from_utf8_lossy(&r.body), dir)?;
        if a.revoke_management {
            path.push_str("?revoke-management");
        }
    }
    let v = ctx.call(Method::PUT, &path, None).await.context("Failed ACL bootstrapping")?;
    let code = ctx.print(out, &v, format::token)?;
    if let Some(n) = v.get("RevokedManagementTokens").and_then(Value::as_u64) {
        eprintln!("Revoked {n} earlier management token(s)");
    }
    Ok(code)
}

/// Takes the reset index from the server's refusal and writes it into the reset file.
fn write_reset_index(text: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let index = text
        .split("reset index: ")
        .nth(1)
        .and_then(|t| t.trim_end().trim_end_matches(')').parse::<u64>().ok())
        .with_context(|| format!("the server did not name a reset index: {}", text.trim()))?;
    let file = dir.join("acl-bootstrap-reset");
    std::fs::write(&file, format!("{index}\n")).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("Wrote reset index {index} to {}", file.display());
    Ok(())
}

async fn create(a: &CreateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut o = Map::new();
    o.insert("Description".into(), json!(a.description));
    a.links.apply(&mut o, true);
    o.insert("Roles".into(), links(&a.roles.role_id, &a.roles.role_name));
    o.insert("Local".into(), json!(a.local));
    for (field, v) in
        [("ExpirationTTL", &a.expires_ttl), ("AccessorID", &a.accessor), ("SecretID", &a.secret)]
    {
        if let Some(v) = v {
            o.insert(field.into(), json!(v));
        }
    }
    let v = ctx
        .call(Method::PUT, "/v1/acl/token", Some(&Value::Object(o)))
        .await
        .context("Failed to create new token")?;
    ctx.print(out, &v, format::token)
}

async fn accessor(ctx: &Ctx<'_>, given: &str) -> anyhow::Result<String> {
    ctx.full_id("/v1/acl/tokens", "AccessorID", given, "token").await
}

async fn read(a: &ReadArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = match &a.id {
        Some(id) if !a.self_ => format!("/v1/acl/token/{}", seg(&accessor(ctx, id).await?)),
        _ => "/v1/acl/token/self".to_owned(),
    };
    let v = ctx.get(&path).await.context("Failed to read token")?;
    ctx.print(out, &v, format::token)
}

async fn update(a: &UpdateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = accessor(ctx, &a.id.id).await?;
    let path = format!("/v1/acl/token/{}", seg(&id));
    let old = ctx.get(&path).await.with_context(|| format!("Failed to get token {id:?}"))?;
    // The server replaces every kind of link when one is sent: send them all back.
    let mut o = Map::new();
    o.insert("AccessorID".into(), json!(id));
    let description = a.description.clone().unwrap_or_else(|| str_field(&old, "Description"));
    o.insert("Description".into(), json!(description));
    o.insert("Policies".into(), keep_links(&old, "Policies"));
    o.insert("Roles".into(), keep_links(&old, "Roles"));
    o.insert("ServiceIdentities".into(), list_field(&old, "ServiceIdentities"));
    o.insert("NodeIdentities".into(), list_field(&old, "NodeIdentities"));
    a.links.apply(&mut o, false);
    if !a.roles.role_id.is_empty() || !a.roles.role_name.is_empty() {
        o.insert("Roles".into(), links(&a.roles.role_id, &a.roles.role_name));
    }
    let v = ctx.call(Method::PUT, &path, Some(&Value::Object(o))).await.context("Failed to update token")?;
    ctx.print(out, &v, format::token)
}

async fn delete(a: &IdArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = accessor(ctx, &a.id).await?;
    let v = ctx
        .call(Method::DELETE, &format!("/v1/acl/token/{}", seg(&id)), None)
        .await
        .with_context(|| format!("Error deleting token {id:?}"))?;
    ctx.deleted(out, &format!("Token {id:?}"), &v)
}

async fn list(ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get("/v1/acl/tokens").await.context("Failed to retrieve the token list")?;
    ctx.print_list(out, &v, format::token)
}

async fn clone(a: &CloneArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = accessor(ctx, &a.id.id).await?;
    let body = a.description.as_ref().map_or_else(|| json!({}), |d| json!({ "Description": d }));
    let v = ctx
        .call(Method::PUT, &format!("/v1/acl/token/{}/clone", seg(&id)), Some(&body))
        .await
        .context("Failed to clone token")?;
    ctx.print(out, &v, format::token)
}
