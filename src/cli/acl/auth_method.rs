//! `sekisho acl auth-method create|read|update|delete|list`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, format, load_value, seg};
use crate::cli::output::Output;

/// `acl auth-method …`
#[derive(Subcommand, Debug)]
pub(super) enum AuthMethodCommand {
    Create(CreateArgs),
    #[command(
        about = "Read an ACL auth method",
        after_long_help = "Example:\n  $ sekisho acl auth-method read -name ci\n  \
            Name:          ci\n  Type:          jwt\n  Description:\n  TokenLocality: local\n  \
            Config:\n  {\n      \"BoundIssuer\": \"https://ci.example.com\",\n      ...\n  }"
    )]
    Read(NameArgs),
    Update(UpdateArgs),
    #[command(
        about = "Delete an ACL auth method (and its binding rules)",
        after_long_help = "Example:\n  $ sekisho acl auth-method delete -name ci\n  \
            Auth method \"ci\" deleted successfully"
    )]
    Delete(NameArgs),
    List(ListArgs),
}

/// The auth method a command acts on.
#[derive(Args, Debug)]
pub(super) struct NameArgs {
    /// The auth method's name
    #[arg(long, value_name = "NAME", required = true)]
    name: String,
}

/// The fields of an auth method.
#[derive(Args, Debug)]
pub(super) struct MethodFields {
    /// A name to show users instead of the method's name
    #[arg(long = "display-name", value_name = "TEXT")]
    display_name: Option<String>,
    /// A description of the auth method
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The longest a login token lives, e.g. 10m (1m to 24h)
    #[arg(long = "max-token-ttl", value_name = "DURATION", value_parser = duration)]
    max_token_ttl: Option<String>,
    /// Whether login tokens are local to this datacenter or global
    #[arg(long = "token-locality", value_name = "LOCALITY", value_parser = ["local", "global"])]
    token_locality: Option<String>,
    /// The method's Config as JSON: text, @FILE or - (stdin)
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
}

fn duration(s: &str) -> Result<String, String> {
    crate::config::parse_go_duration(s).map(|_| s.to_owned())
}

/// `acl auth-method create`
#[derive(Args, Debug)]
#[command(
    about = "Create an ACL auth method",
    long_about = "Create an auth method that `sekisho login` verifies bearer tokens with. For the \
        jwt type, -config holds the keys and checks: JWTValidationPubKeys (PEM), JWKS or \
        JWKSFile, BoundIssuer, BoundAudiences, ClaimMappings, ListClaimMappings, \
        JWTSupportedAlgs and the leeways. Binding rules then decide what a login receives.",
    after_long_help = "Example:\n  $ sekisho acl auth-method create -type jwt -name ci \\\n      \
        -max-token-ttl 10m -config @ci-jwt.json\n  \
        where ci-jwt.json is {\"BoundIssuer\": \"https://ci.example.com\", \
        \"JWTValidationPubKeys\": [\"-----BEGIN PUBLIC KEY-----...\"], \
        \"ClaimMappings\": {\"project\": \"project\"}}"
)]
pub(super) struct CreateArgs {
    /// The auth method's type, e.g. jwt
    #[arg(long = "type", value_name = "TYPE", required = true)]
    type_: String,
    /// The new auth method's name
    #[arg(long, value_name = "NAME", required = true)]
    name: String,
    #[command(flatten)]
    fields: MethodFields,
}

/// `acl auth-method update`
#[derive(Args, Debug)]
#[command(
    about = "Update an ACL auth method",
    long_about = "Change the given fields of an auth method; the others are kept. -config \
        replaces the whole Config.",
    after_long_help = "Example:\n  $ sekisho acl auth-method update -name ci -max-token-ttl 30m"
)]
pub(super) struct UpdateArgs {
    /// The auth method's name
    #[arg(long, value_name = "NAME", required = true)]
    name: String,
    #[command(flatten)]
    fields: MethodFields,
}

/// `acl auth-method list`
#[derive(Args, Debug)]
#[command(about = "List ACL auth methods", after_long_help = "Example:\n  $ sekisho acl auth-method list")]
pub(super) struct ListArgs {}

/// Runs one auth-method command.
pub(super) async fn run(c: AuthMethodCommand, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    match c {
        AuthMethodCommand::Create(a) => create(&a, ctx, out).await,
        AuthMethodCommand::Read(a) => read(&a, ctx, out).await,
        AuthMethodCommand::Update(a) => update(&a, ctx, out).await,
        AuthMethodCommand::Delete(a) => delete(&a, ctx, out).await,
        AuthMethodCommand::List(_) => list(ctx, out).await,
    }
}

impl MethodFields {
    /// Sets the fields given on `o`.
    fn apply(&self, o: &mut Map<String, Value>) -> anyhow::Result<()> {
        for (field, v) in [
            ("DisplayName", &self.display_name),
            ("Description", &self.description),
            ("MaxTokenTTL", &self.max_token_ttl),
            ("TokenLocality", &self.token_locality),
        ] {
            if let Some(v) = v {
                o.insert(field.into(), json!(v));
            }
        }
        if let Some(c) = &self.config {
            let text = load_value(c, "-config")?;
            let config: Value = serde_json::from_str(&text).context("Failed to parse -config as JSON")?;
            o.insert("Config".into(), config);
        }
        Ok(())
    }
}

async fn create(a: &CreateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut o = Map::new();
    o.insert("Name".into(), json!(a.name));
    o.insert("Type".into(), json!(a.type_));
    a.fields.apply(&mut o)?;
    let v = ctx
        .call(Method::PUT, "/v1/acl/auth-method", Some(&Value::Object(o)))
        .await
        .context("Failed to create new auth method")?;
    ctx.print(out, &v, format::auth_method)
}

fn path(name: &str) -> String {
    format!("/v1/acl/auth-method/{}", seg(name))
}

async fn read(a: &NameArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get(&path(&a.name)).await.context("Failed to read auth method")?;
    ctx.print(out, &v, format::auth_method)
}

async fn update(a: &UpdateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let old =
        ctx.get(&path(&a.name)).await.with_context(|| format!("Failed to get auth method {:?}", a.name))?;
    // An update replaces the whole method: start from the current one.
    let Value::Object(mut o) = old else {
        anyhow::bail!("Failed to get auth method {:?}: not an object", a.name)
    };
    for meta in ["CreateIndex", "ModifyIndex"] {
        o.remove(meta);
    }
    a.fields.apply(&mut o)?;
    let v = ctx
        .call(Method::PUT, &path(&a.name), Some(&Value::Object(o)))
        .await
        .context("Failed to update auth method")?;
    ctx.print(out, &v, format::auth_method)
}

async fn delete(a: &NameArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx
        .call(Method::DELETE, &path(&a.name), None)
        .await
        .with_context(|| format!("Error deleting auth method {:?}", a.name))?;
    ctx.deleted(out, &format!("Auth method {:?}", a.name), &v)
}

async fn list(ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get("/v1/acl/auth-methods").await.context("Failed to retrieve the auth method list")?;
    ctx.print_list(out, &v, format::auth_method_entry)
}
