//! `sekisho services register|deregister`: Consul's `consul services` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::client::url::escape_query;

/// `sekisho services`
#[derive(Args, Debug)]
#[command(
    about = "Registers or deregisters services with the local agent",
    long_about = "Registers services with the local agent from flags or from definition files \
        (JSON or HCL, the same `service`/`services` blocks as in the config dir), or deregisters \
        them. Services registered this way are persisted by the agent and kept in the catalog \
        by anti-entropy."
)]
pub(crate) struct ServicesArgs {
    #[command(subcommand)]
    pub(crate) command: ServicesCommand,
}

/// `services` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ServicesCommand {
    /// Registers a service from flags or definition files
    #[command(after_long_help = "Examples:\n  $ sekisho services register -name=web -port=80 -tag=v1\n  \
        Registered service: web\n  $ sekisho services register web.json\n  Registered service: web")]
    Register(RegisterArgs),
    /// Deregisters a service by -id or by the definitions in files
    #[command(after_long_help = "Examples:\n  $ sekisho services deregister -id=web\n  \
        Deregistered service: web")]
    Deregister(DeregisterArgs),
}

/// `services register`
#[derive(Args, Debug)]
pub(crate) struct RegisterArgs {
    /// Service name (when not using files)
    #[arg(long)]
    name: Option<String>,
    /// Service ID (defaults to the name)
    #[arg(long)]
    id: Option<String>,
    /// Service address
    #[arg(long)]
    address: Option<String>,
    /// Service port
    #[arg(long)]
    port: Option<u16>,
    /// Tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Metadata as key=value (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// Definition files (JSON or HCL)
    files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// `services deregister`
#[derive(Args, Debug)]
pub(crate) struct DeregisterArgs {
    /// Service ID to deregister
    #[arg(long)]
    id: Option<String>,
    /// Definition files whose services to deregister
    files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

impl ServicesCommand {
    pub(crate) fn http(&self) -> &HttpArgs {
        match self {
            ServicesCommand::Register(a) => &a.http,
            ServicesCommand::Deregister(a) => &a.http,
        }
    }
}

/// The service definitions in a file (`service {..}` or `services [..]`).
fn read_definitions(path: &PathBuf) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    let doc: Value = if is_json {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
    } else {
        crate::config::hcl::parse(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
    };
    let mut out = Vec::new();
    for key in ["service", "services"] {
        match doc.get(key) {
            Some(Value::Array(items)) => out.extend(items.iter().cloned()),
            Some(v @ Value::Object(_)) => out.push(v.clone()),
            Some(_) => anyhow::bail!("{}: `{key}` must be an object or a list of objects", path.display()),
            None => {}
        }
    }
    if out.is_empty() {
        anyhow::bail!("{}: no `service` or `services` definition found", path.display());
    }
    Ok(out)
}

fn field(v: &Value, names: &[&str]) -> Option<String> {
    let obj = v.as_object()?;
    obj.iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}

/// Runs a `services` subcommand.
pub(crate) async fn run(cmd: ServicesCommand, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    match cmd {
        ServicesCommand::Register(a) => register(a, client, out).await,
        ServicesCommand::Deregister(a) => deregister(a, client, out).await,
    }
}

async fn register(a: RegisterArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let defs = if a.files.is_empty() {
        let Some(name) = a.name else {
            out.error("Error: either -name or at least one definition file is required")?;
            return Ok(ExitCode::from(2));
        };
        let mut meta = Map::new();
        for m in &a.meta {
            let Some((k, v)) = m.split_once('=') else {
                out.error(format!("Error: invalid -meta {m:?}: expected key=value"))?;
                return Ok(ExitCode::from(2));
            };
            meta.insert(k.to_owned(), json!(v));
        }
        let mut def = json!({"Name": name, "Tags": a.tags, "Meta": meta});
        if let Some(id) = a.id {
            def["ID"] = json!(id);
        }
        if let Some(addr) = a.address {
            def["Address"] = json!(addr);
        }
        if let Some(port) = a.port {
            def["Port"] = json!(port);
        }
        vec![def]
    } else {
        let mut all = Vec::new();
        for f in &a.files {
            all.extend(read_definitions(f)?);
        }
        all
    };
    for def in defs {
        let body = serde_json::to_vec(&def)?;
        let r = client.request(Method::PUT, "/v1/agent/service/register", Some(body)).await?;
        if !r.is_success() {
            out.error(format!("Error registering service: {}", r.text().trim_end()))?;
            return Ok(ExitCode::FAILURE);
        }
        let name = field(&def, &["Name", "Service"]).unwrap_or_default();
        out.line(format!("Registered service: {name}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn deregister(a: DeregisterArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let ids: Vec<String> = match (&a.id, a.files.is_empty()) {
        (Some(id), true) => vec![id.clone()],
        (None, false) => {
            let mut ids = Vec::new();
            for f in &a.files {
                for def in read_definitions(f)? {
                    let id = field(&def, &["ID"]).or_else(|| field(&def, &["Name", "Service"]));
                    ids.push(id.with_context(|| format!("{}: a service without name or ID", f.display()))?);
                }
            }
            ids
        }
        _ => {
            out.error("Error: give either -id or definition files, not both")?;
            return Ok(ExitCode::from(2));
        }
    };
    for id in ids {
        let path = format!("/v1/agent/service/deregister/{}", escape_query(&id));
        let r = client.request(Method::PUT, &path, None).await?;
        if !r.is_success() {
            out.error(format!("Error deregistering service: {}", r.text().trim_end()))?;
            return Ok(ExitCode::FAILURE);
        }
        out.line(format!("Deregistered service: {id}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
