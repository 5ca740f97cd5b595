//! `sekisho login` and `sekisho logout`: trade a bearer token (a JWT) for an ACL token
//! through an auth method, and delete such a token again, as Consul's commands do.
//!
//! ```text
//! login: -bearer-token-file ─► POST /v1/acl/login {AuthMethod, BearerToken, Meta}
//!        ─► token ─► SecretID written to -token-sink-file (0600); nothing printed
//! logout: -token / -token-file ─► POST /v1/acl/logout ─► the token is deleted
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use serde_json::{Map, Value, json};

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;

/// `sekisho login`
#[derive(Args, Debug)]
#[command(
    about = "Log in with an auth method and save the ACL token it grants",
    long_about = "Present the bearer token in -bearer-token-file (for a jwt auth method, a JWT) to \
        the auth method -method. When the method verifies it and a binding rule matches, the \
        agent mints an ACL token; its SecretID is written to -token-sink-file with mode 0600. \
        Nothing is printed on success. Use the file with -token-file, and `sekisho logout` to \
        delete the token.",
    after_long_help = "Example:\n  $ sekisho login -method ci -bearer-token-file /run/ci/jwt \\\n      \
        -token-sink-file /run/ci/sekisho-token -meta pipeline=1234\n  \
        $ sekisho kv get -token-file /run/ci/sekisho-token app/config"
)]
pub(crate) struct LoginArgs {
    /// The auth method to log in with
    #[arg(long, value_name = "NAME", required = true)]
    method: String,
    /// File holding the bearer token (a JWT for jwt auth methods)
    #[arg(long = "bearer-token-file", value_name = "FILE", required = true)]
    bearer_token_file: PathBuf,
    /// File to write the granted token's SecretID to (mode 0600)
    #[arg(long = "token-sink-file", value_name = "FILE", required = true)]
    token_sink_file: PathBuf,
    /// key=value metadata recorded in the token's description; repeat for more
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// `sekisho logout`
#[derive(Args, Debug)]
#[command(
    about = "Delete the ACL token a login granted",
    long_about = "Delete the token given with -token or -token-file (or SEKISHO_HTTP_TOKEN / \
        CONSUL_HTTP_TOKEN), which must have been created by `sekisho login`. Nothing is printed \
        on success.",
    after_long_help = "Example:\n  $ sekisho logout -token-file /run/ci/sekisho-token"
)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

/// Runs `sekisho login`.
pub(crate) async fn login(a: &LoginArgs, client: &Client, _out: &mut Output) -> anyhow::Result<ExitCode> {
    let file = &a.bearer_token_file;
    let bearer = std::fs::read_to_string(file)
        .with_context(|| format!("Error reading bearer token file {}", file.display()))?;
    let bearer = bearer.trim();
    if bearer.is_empty() {
        anyhow::bail!("No bearer token found in {}", file.display());
    }
    let meta: Map<String, Value> = a.meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let body = json!({ "AuthMethod": a.method, "BearerToken": bearer, "Meta": meta });
    let response = client
        .request(Method::POST, "/v1/acl/login", Some(body.to_string().into_bytes()))
        .await
        .and_then(crate::client::Response::error_for_status)
        .context("Error logging in")?;
    let token: Value = response.json("/v1/acl/login").context("Error logging in")?;
    let secret = token.get("SecretID").and_then(Value::as_str).unwrap_or_default();
    if secret.is_empty() {
        anyhow::bail!("Error logging in: the agent sent no SecretID");
    }
    write_private(&a.token_sink_file, secret)
        .with_context(|| format!("Error writing token to file {}", a.token_sink_file.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `sekisho logout`.
pub(crate) async fn logout(_: &LogoutArgs, client: &Client, _out: &mut Output) -> anyhow::Result<ExitCode> {
    client
        .request(Method::POST, "/v1/acl/logout", None)
        .await
        .and_then(crate::client::Response::error_for_status)
        .context("Error destroying token")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path`, readable by the owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = open_private(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode through open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}
