//! `sekisho acl binding-rule create|read|update|delete|list`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, format, seg};
use crate::cli::output::Output;
use crate::client::url::append_param;

/// `acl binding-rule …`
#[derive(Subcommand, Debug)]
pub(super) enum BindingRuleCommand {
    Create(CreateArgs),
    #[command(
        about = "Read an ACL binding rule",
        after_long_help = "Example:\n  $ sekisho acl binding-rule read -id 5a0f4d8e\n  \
            ID:           5a0f4d8e-4c8f-4bb2-9b1c-1f2f1e7c9d0a\n  AuthMethod:   ci\n  \
            Description:\n  BindType:     service\n  BindName:     ${value.project}\n  \
            Selector:     value.env == \"prod\""
    )]
    Read(IdArgs),
    Update(UpdateArgs),
    #[command(
        about = "Delete an ACL binding rule",
        after_long_help = "Example:\n  $ sekisho acl binding-rule delete -id 5a0f4d8e\n  \
            Binding rule \"5a0f4d8e-4c8f-4bb2-9b1c-1f2f1e7c9d0a\" deleted successfully"
    )]
    Delete(IdArgs),
    List(ListArgs),
}

/// The rule a command acts on.
#[derive(Args, Debug)]
pub(super) struct IdArgs {
    /// The binding rule's ID (or a unique prefix of it)
    #[arg(long, value_name = "ID", required = true)]
    id: String,
}

/// The fields of a binding rule.
#[derive(Args, Debug)]
pub(super) struct RuleFields {
    /// A description of the rule
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Which logins the rule applies to: an expression over value.<claim> and list.<claim>
    #[arg(long, value_name = "EXPR")]
    selector: Option<String>,
    /// What the rule binds: service, node, role or policy
    #[arg(long = "bind-type", value_name = "TYPE")]
    bind_type: Option<String>,
    /// The name bound; may interpolate claims, e.g. ${value.project}
    #[arg(long = "bind-name", value_name = "NAME")]
    bind_name: Option<String>,
}

/// `acl binding-rule create`
#[derive(Args, Debug)]
#[command(
    about = "Create an ACL binding rule",
    long_about = "Create a rule that gives tokens minted by logins through -method a service or \
        node identity, a role or a policy, when the verified claims match -selector.",
    after_long_help = "Example:\n  $ sekisho acl binding-rule create -method ci -bind-type service \\\n      \
        -bind-name '${value.project}' -selector 'value.env == \"prod\"'"
)]
pub(super) struct CreateArgs {
    /// The auth method the rule belongs to
    #[arg(long, value_name = "NAME", required = true)]
    method: String,
    #[command(flatten)]
    fields: RuleFields,
}

/// `acl binding-rule update`
#[derive(Args, Debug)]
#[command(
    about = "Update an ACL binding rule",
    long_about = "Change the given fields of a binding rule; the others are kept.",
    after_long_help = "Example:\n  $ sekisho acl binding-rule update -id 5a0f4d8e -selector 'value.env == \"staging\"'"
)]
pub(super) struct UpdateArgs {
    #[command(flatten)]
    id: IdArgs,
    #[command(flatten)]
    fields: RuleFields,
}

/// `acl binding-rule list`
#[derive(Args, Debug)]
#[command(
    about = "List ACL binding rules",
    after_long_help = "Example:\n  $ sekisho acl binding-rule list -method ci"
)]
pub(super) struct ListArgs {
    /// Only the rules of this auth method
    #[arg(long, value_name = "NAME")]
    method: Option<String>,
}

/// Runs one binding-rule command.
pub(super) async fn run(c: BindingRuleCommand, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    match c {
        BindingRuleCommand::Create(a) => create(&a, ctx, out).await,
        BindingRuleCommand::Read(a) => read(&a, ctx, out).await,
        BindingRuleCommand::Update(a) => update(&a, ctx, out).await,
        BindingRuleCommand::Delete(a) => delete(&a, ctx, out).await,
        BindingRuleCommand::List(a) => list(&a, ctx, out).await,
    }
}

impl RuleFields {
    fn apply(&self, o: &mut Map<String, Value>) {
        for (field, v) in [
            ("Description", &self.description),
            ("Selector", &self.selector),
            ("BindType", &self.bind_type),
            ("BindName", &self.bind_name),
        ] {
            if let Some(v) = v {
                o.insert(field.into(), json!(v));
            }
        }
    }
}

async fn create(a: &CreateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut o = Map::new();
    o.insert("AuthMethod".into(), json!(a.method));
    a.fields.apply(&mut o);
    let v = ctx
        .call(Method::PUT, "/v1/acl/binding-rule", Some(&Value::Object(o)))
        .await
        .context("Failed to create new binding rule")?;
    ctx.print(out, &v, format::binding_rule)
}

async fn rule_id(ctx: &Ctx<'_>, id: &str) -> anyhow::Result<String> {
    ctx.full_id("/v1/acl/binding-rules", "ID", id, "binding rule").await
}

async fn rule_path(ctx: &Ctx<'_>, id: &str) -> anyhow::Result<String> {
    Ok(format!("/v1/acl/binding-rule/{}", seg(&rule_id(ctx, id).await?)))
}

async fn read(a: &IdArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = ctx.get(&rule_path(ctx, &a.id).await?).await.context("Failed to read binding rule")?;
    ctx.print(out, &v, format::binding_rule)
}

async fn update(a: &UpdateArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = rule_path(ctx, &a.id.id).await?;
    let old = ctx.get(&path).await.with_context(|| format!("Failed to get binding rule {:?}", a.id.id))?;
    // An update replaces the whole rule: start from the current one.
    let Value::Object(mut o) = old else {
        anyhow::bail!("Failed to get binding rule {:?}: not an object", a.id.id)
    };
    for meta in ["CreateIndex", "ModifyIndex"] {
        o.remove(meta);
    }
    a.fields.apply(&mut o);
    let v = ctx
        .call(Method::PUT, &path, Some(&Value::Object(o)))
        .await
        .context("Failed to update binding rule")?;
    ctx.print(out, &v, format::binding_rule)
}

async fn delete(a: &IdArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let id = rule_id(ctx, &a.id).await?;
    let v = ctx
        .call(Method::DELETE, &format!("/v1/acl/binding-rule/{}", seg(&id)), None)
        .await
        .with_context(|| format!("Error deleting binding rule {id:?}"))?;
    ctx.deleted(out, &format!("Binding rule {id:?}"), &v)
}

async fn list(a: &ListArgs, ctx: &Ctx<'_>, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut path = "/v1/acl/binding-rules".to_owned();
    if let Some(m) = &a.method {
        append_param(&mut path, "authmethod", Some(m));
    }
    let v = ctx.get(&path).await.context("Failed to retrieve the binding rule list")?;
    ctx.print_list(out, &v, format::binding_rule_entry)
}
