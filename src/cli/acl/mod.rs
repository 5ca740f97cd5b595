//! `sekisho acl …`: bootstrap, tokens, policies, roles, auth methods, binding rules, the
//! agent's own tokens and (beyond Consul) `acl explain`, with Consul's texts.
//!
//! ```text
//! acl <family> <verb> flags ─► JSON body ─► Client::request (/v1/acl/…) ─► Value
//!                                                           │
//!                              -format=pretty: format::* ◄──┴──► -format=json: indented JSON
//! ```
//!
//! Every command prints the API object in Consul's layout, or as JSON with `-format=json`.
//! An API error exits 1 with `Error: Failed to <verb> …: Unexpected response code: N (<the
//! server's message>)`; bad flags exit 2. IDs may be given as a unique prefix, as in Consul.

mod agent_token;
mod auth_method;
mod binding_rule;
mod explain;
mod format;
mod policy;
mod role;
mod token;

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use http::Method;
use serde_json::{Map, Value, json};

use super::http::HttpArgs;
use super::output::Output;
use crate::client::url::escape_query;
use crate::client::{Client, ClientError};

/// `sekisho acl …`
#[derive(Args, Debug)]
#[command(
    about = "Interact with the ACL system: tokens, policies, roles, auth methods, binding rules",
    long_about = "Create and manage ACL tokens, policies, roles, auth methods and binding rules, \
        bootstrap the ACL system, set the agent's own tokens, and explain why a token is \
        allowed or denied a request. Most commands need a token with acl:write (or acl:read \
        for reads), given with -token, -token-file or SEKISHO_HTTP_TOKEN / CONSUL_HTTP_TOKEN.",
    after_long_help = "Examples:\n  $ sekisho acl bootstrap\n  \
        $ sekisho acl policy create -name kv-read -rules @kv-read.hcl\n  \
        $ sekisho acl token create -description \"app\" -policy-name kv-read\n  \
        $ sekisho acl set-agent-token default 4f6b1b9c-0c2e-4c67-9a0b-2a6a4a1b6b0e\n  \
        $ sekisho acl explain -token-accessor 6a1253d2-1785-24fd-91c2-f8e78c745511 \\\n      \
        -resource key -segment app/config -access write"
)]
pub(crate) struct AclArgs {
    #[command(subcommand)]
    command: AclCommand,
    /// Output format: pretty (Consul's text) or json
    #[arg(long, value_enum, default_value_t = Format::Pretty, global = true)]
    format: Format,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// How a command prints its answer.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Consul's text layout
    Pretty,
    /// The API object as indented JSON
    Json,
}

/// The acl families.
#[derive(Subcommand, Debug)]
enum AclCommand {
    Bootstrap(token::BootstrapArgs),
    /// Manage ACL tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage ACL policies
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Manage ACL roles
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Manage ACL auth methods (what `sekisho login` verifies bearer tokens with)
    #[command(subcommand)]
    AuthMethod(auth_method::AuthMethodCommand),
    /// Manage ACL binding rules (which identities a login receives)
    #[command(subcommand)]
    BindingRule(binding_rule::BindingRuleCommand),
    SetAgentToken(agent_token::SetAgentTokenArgs),
    Explain(explain::ExplainArgs),
}

/// What every handler gets: the client and the output format.
pub(super) struct Ctx<'a> {
    client: &'a Client,
    format: Format,
}

/// Runs one acl command.
pub(crate) async fn run(args: AclArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let client = args.http.client()?;
    let ctx = Ctx { client: &client, format: args.format };
    match args.command {
        AclCommand::Bootstrap(a) => token::bootstrap(&a, &ctx, out).await,
        AclCommand::Token(c) => token::run(c, &ctx, out).await,
        AclCommand::Policy(c) => policy::run(c, &ctx, out).await,
        AclCommand::Role(c) => role::run(c, &ctx, out).await,
        AclCommand::AuthMethod(c) => auth_method::run(c, &ctx, out).await,
        AclCommand::BindingRule(c) => binding_rule::run(c, &ctx, out).await,
        AclCommand::SetAgentToken(a) => agent_token::run(&a, &ctx, out).await,
        AclCommand::Explain(a) => explain::run(&a, &ctx, out).await,
    }
}

impl Ctx<'_> {
    /// Sends `body` as JSON and decodes the answer (`null` for an empty body); non-2xx
    /// answers are [`ClientError::Api`] with the server's message.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let response = self.client.request(method, path, body).await?.error_for_status()?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        response.json(path)
    }

    async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    /// Prints `v` as JSON, or `pretty(v)` in the default format.
    fn print(
        &self,
        out: &mut Output,
        v: &Value,
        pretty: impl Fn(&Value) -> String,
    ) -> anyhow::Result<ExitCode> {
        match self.format {
            Format::Json => out.line(to_json(v))?,
            Format::Pretty => out.line(pretty(v).trim_end_matches('\n'))?,
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Prints a list: JSON as a whole, or each entry in the default format, blank-line
    /// separated.
    fn print_list(
        &self,
        out: &mut Output,
        v: &Value,
        entry: impl Fn(&Value) -> String,
    ) -> anyhow::Result<ExitCode> {
        if self.format == Format::Json {
            out.line(to_json(v))?;
            return Ok(ExitCode::SUCCESS);
        }
        let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
        let text: Vec<String> = items.iter().map(|i| entry(i).trim_end_matches('\n').to_owned()).collect();
        if !text.is_empty() {
            out.line(text.join("\n\n"))?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// After a delete: Consul's `<what> deleted successfully` line, or the API's `true`.
    fn deleted(&self, out: &mut Output, what: &str, answer: &Value) -> anyhow::Result<ExitCode> {
        match self.format {
            Format::Json => out.line(to_json(answer))?,
            Format::Pretty => out.line(format!("{what} deleted successfully"))?,
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The full ID for `given`, which may be a unique prefix of one of `list`'s `field`s.
    async fn full_id(&self, list: &str, field: &str, given: &str, what: &str) -> anyhow::Result<String> {
        if given.len() >= 36 || given.is_empty() {
            return Ok(given.to_owned());
        }
        let all = self.get(list).await.with_context(|| format!("Failed to list {what}s"))?;
        let ids: Vec<&str> = all
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.get(field)?.as_str())
            .filter(|id| id.starts_with(given))
            .collect();
        match ids.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] => anyhow::bail!("No {what} with an ID starting with {given:?}"),
            _ => anyhow::bail!("The prefix {given:?} matches more than one {what}"),
        }
    }
}

/// Indented JSON, four spaces, like Consul's `json.MarshalIndent(v, "", "    ")`.
pub(super) fn to_json(v: &Value) -> String {
    use serde::Serialize as _;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// A path segment: `/v1/acl/token/<id>`.
fn seg(s: &str) -> String {
    escape_query(s)
}

/// A flag value that is text, `@file` or `-` (stdin), as Consul's `-rules` and `-config`.
fn load_value(value: &str, flag: &str) -> anyhow::Result<String> {
    if value == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).with_context(|| format!("reading {flag} from stdin"))?;
        return Ok(s);
    }
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {flag} file {path}")),
        None => Ok(value.to_owned()),
    }
}

/// `-service-identity name[:dc1,dc2]`.
#[derive(Debug, Clone)]
pub(super) struct ServiceIdentity {
    name: String,
    datacenters: Vec<String>,
}

fn parse_service_identity(s: &str) -> Result<ServiceIdentity, String> {
    let (name, dcs) = s.split_once(':').unwrap_or((s, ""));
    if name.is_empty() {
        return Err("expected NAME or NAME:DC1,DC2".into());
    }
    let datacenters = dcs.split(',').filter(|d| !d.is_empty()).map(str::to_owned).collect();
    Ok(ServiceIdentity { name: name.to_owned(), datacenters })
}

/// `-node-identity name:dc`.
#[derive(Debug, Clone)]
pub(super) struct NodeIdentity {
    name: String,
    datacenter: String,
}

fn parse_node_identity(s: &str) -> Result<NodeIdentity, String> {
    match s.split_once(':') {
        Some((name, dc)) if !name.is_empty() && !dc.is_empty() && !dc.contains(',') => {
            Ok(NodeIdentity { name: name.to_owned(), datacenter: dc.to_owned() })
        }
        _ => Err("expected NAME:DATACENTER".into()),
    }
}

/// The policy and identity links of a token or role.
#[derive(Args, Debug, Clone, Default)]
pub(super) struct LinkArgs {
    /// Name of a policy to link; repeat for more
    #[arg(long = "policy-name", value_name = "NAME")]
    policy_name: Vec<String>,
    /// ID of a policy to link; repeat for more
    #[arg(long = "policy-id", value_name = "ID")]
    policy_id: Vec<String>,
    /// A service identity, NAME or NAME:DC1,DC2 (default: all datacenters); repeat for more
    #[arg(long = "service-identity", value_name = "NAME[:DCS]", value_parser = parse_service_identity)]
    service_identity: Vec<ServiceIdentity>,
    /// A node identity, NAME:DATACENTER; repeat for more
    #[arg(long = "node-identity", value_name = "NAME:DC", value_parser = parse_node_identity)]
    node_identity: Vec<NodeIdentity>,
}

/// `[{ID}, …, {Name}, …]`.
fn links(ids: &[String], names: &[String]) -> Value {
    let ids = ids.iter().map(|id| json!({ "ID": id }));
    Value::Array(ids.chain(names.iter().map(|n| json!({ "Name": n }))).collect())
}

impl LinkArgs {
    /// Sets the links these flags name on `o`; with `all`, every kind (a create), else only
    /// the kinds given (an update keeps the others).
    fn apply(&self, o: &mut Map<String, Value>, all: bool) {
        if all || !self.policy_id.is_empty() || !self.policy_name.is_empty() {
            o.insert("Policies".into(), links(&self.policy_id, &self.policy_name));
        }
        if all || !self.service_identity.is_empty() {
            let v = self.service_identity.iter().map(|s| {
                let mut v = json!({ "ServiceName": s.name });
                if !s.datacenters.is_empty() {
                    v["Datacenters"] = json!(s.datacenters);
                }
                v
            });
            o.insert("ServiceIdentities".into(), Value::Array(v.collect()));
        }
        if all || !self.node_identity.is_empty() {
            let v =
                self.node_identity.iter().map(|n| json!({ "NodeName": n.name, "Datacenter": n.datacenter }));
            o.insert("NodeIdentities".into(), Value::Array(v.collect()));
        }
    }
}

/// The ID-or-name links of `v[field]` as `[{ID}]`, for sending an object back.
fn keep_links(v: &Value, field: &str) -> Value {
    let items = v.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    Value::Array(items.iter().filter_map(|l| Some(json!({ "ID": l.get("ID")?.as_str()? }))).collect())
}

/// `v[field]` as a string (`""` when absent).
fn str_field(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `v[field]` or `[]`.
fn list_field(v: &Value, field: &str) -> Value {
    v.get(field).filter(|x| x.is_array()).cloned().unwrap_or_else(|| json!([]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_like_consul() {
        let s = parse_service_identity("web:dc1,dc2").unwrap();
        assert_eq!((s.name.as_str(), s.datacenters), ("web", vec!["dc1".to_owned(), "dc2".to_owned()]));
        assert!(parse_service_identity("db").unwrap().datacenters.is_empty());
        assert!(parse_service_identity(":dc1").is_err());
        let n = parse_node_identity("n1:dc1").unwrap();
        assert_eq!((n.name.as_str(), n.datacenter.as_str()), ("n1", "dc1"));
        for bad in ["n1", "n1:", ":dc1", "n1:dc1,dc2"] {
            assert!(parse_node_identity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_links_replace_only_the_given_kinds() {
        let l = LinkArgs { policy_name: vec!["ops".into()], ..LinkArgs::default() };
        let mut o = Map::new();
        l.apply(&mut o, false);
        assert_eq!(Value::Object(o), json!({"Policies": [{"Name": "ops"}]}));
        let mut o = Map::new();
        LinkArgs::default().apply(&mut o, true);
        assert_eq!(Value::Object(o), json!({"Policies": [], "ServiceIdentities": [], "NodeIdentities": []}));
    }

    #[test]
    fn json_is_indented_by_four() {
        assert_eq!(to_json(&json!({"A": 1})), "{\n    \"A\": 1\n}");
    }
}
