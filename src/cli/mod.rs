//! The `sekisho` command line: Consul's CLI surface over our HTTP API.
//!
//! ```text
//! argv ─► argv::rewrite (-flag → --flag) ─► clap (Cli) ─┬─ agent ─► config::load ─► agent::Agent
//!                                                       └─ kv, catalog, members, info, leave, version
//!                                                            └─► HttpArgs ─► client::Client ─► Output
//! ```
//!
//! Exit codes: 0 success, 1 error (`Error: …` on stderr, causes included, or Consul's own
//! `Error! …` texts), 2 usage error (clap). Every client command takes the common HTTP
//! options of `http::HttpArgs`. Handlers have the shape
//! `async fn run(args, &Client, &mut Output) -> anyhow::Result<ExitCode>`.

mod acl;
mod agent;
mod argv;
mod catalog;
mod event;
mod exec;
mod gateway;
mod http;
mod info;
mod join;
mod keygen;
mod keyring;
mod kv;
mod leave;
mod lock;
mod login;
mod maint;
mod members;
mod monitor;
mod operator;
mod output;
mod pki;
mod reload;
mod rtt;
mod services;
mod snapshot;
mod template;
mod version;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use output::Output;

const ABOUT: &str = "Sekisho: a Consul-compatible service-discovery, KV and federation agent";

const LONG_ABOUT: &str = "\
Sekisho: a Consul-compatible service-discovery, KV and federation agent.

Flags may be written Consul's way (-http-addr=ADDR, -recurse) or with two dashes
(--http-addr=ADDR). Put a value that starts with a dash after a bare `--`.";

const EXAMPLES: &str = "\
Examples:
  Start a development agent (in-memory, single server):
    $ sekisho agent -dev

  Write and read a key against it:
    $ sekisho kv put redis/config/connections 5
    Success! Data written to: redis/config/connections
    $ sekisho kv get redis/config/connections
    5";

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "sekisho",
    version = crate::VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The agent itself, or a command that talks to one.
#[derive(Subcommand, Debug)]
enum Command {
    Agent(agent::AgentArgs),
    Gateway(gateway::GatewayArgs),
    #[command(flatten)]
    Api(ApiCommand),
    Pki(pki::PkiArgs),
    Tls(pki::TlsArgs),
}

/// Commands that run against an agent's HTTP API; one family per variant.
#[derive(Subcommand, Debug)]
enum ApiCommand {
    Kv(kv::KvArgs),
    Catalog(catalog::CatalogArgs),
    Members(members::MembersArgs),
    Exec(exec::ExecArgs),
    Event(event::EventArgs),
    Monitor(monitor::MonitorArgs),
    Info(info::InfoArgs),
    Leave(leave::LeaveArgs),
    Lock(lock::LockArgs),
    Maint(maint::MaintArgs),
    Join(join::JoinArgs),
    ForceLeave(join::ForceLeaveArgs),
    Keyring(keyring::KeyringArgs),
    Reload(reload::ReloadArgs),
    Rtt(rtt::RttArgs),
    Services(services::ServicesArgs),
    Operator(operator::OperatorArgs),
    Snapshot(snapshot::SnapshotArgs),
    #[command(about = keygen::ABOUT, long_about = keygen::LONG_ABOUT)]
    Keygen,
    #[command(about = version::ABOUT, long_about = version::LONG_ABOUT)]
    Version,
    Watch(watch::WatchArgs),
    Acl(acl::AclArgs),
    Login(login::LoginArgs),
    Logout(login::LogoutArgs),
    Template(template::TemplateArgs),
}

/// Parses argv, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let args = argv::rewrite(&Cli::command(), std::env::args_os());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are "errors" with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        Command::Agent(args) => agent::main(args),
        Command::Gateway(args) => gateway::main(args),
        Command::Pki(args) => pki::main(args),
        Command::Tls(args) => pki::tls_main(args),
        Command::Api(command) => run_api_command(command),
    }
}

/// Runs a command that talks to an agent over HTTP on a small runtime.
fn run_api_command(command: ApiCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    let mut out = Output::stdio();
    let result = runtime.block_on(dispatch(command, &mut out));
    let flushed = out.flush();
    match result.and_then(|code| flushed.map(|()| code).map_err(Into::into)) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

async fn dispatch(command: ApiCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        ApiCommand::Kv(a) => kv::run(a.command, &a.http.client()?, out).await,
        ApiCommand::Catalog(a) => catalog::run(a.command, &a.http.client()?, out).await,
        ApiCommand::Members(a) => members::run(&a, &a.http.client()?, out).await,
        ApiCommand::Exec(a) => exec::run(&a, &a.http.client()?, out).await,
        ApiCommand::Event(a) => event::run(&a, &a.http.client()?, out).await,
        ApiCommand::Monitor(a) => monitor::run(&a, &a.http.config()?, out).await,
        ApiCommand::Info(a) => info::run(&a, &a.http.client()?, out).await,
        ApiCommand::Leave(a) => leave::run(&a, &a.http.client()?, out).await,
        ApiCommand::Lock(a) => lock::run(&a, &a.http.client()?, out).await,
        ApiCommand::Maint(a) => maint::run(&a, &a.http.client()?, out).await,
        ApiCommand::Join(a) => join::run(&a, &a.http.client()?, out).await,
        ApiCommand::ForceLeave(a) => join::force_leave(&a, &a.http.client()?, out).await,
        ApiCommand::Keyring(a) => keyring::run(&a, &a.http.client()?, out).await,
        ApiCommand::Reload(a) => reload::run(&a, &a.http.client()?, out).await,
        ApiCommand::Rtt(a) => rtt::run(&a, &a.http.client()?, out).await,
        ApiCommand::Services(a) => {
            let client = a.command.http().client()?;
            services::run(a.command, &client, out).await
        }
        ApiCommand::Operator(a) => operator::run(a, out).await,
        ApiCommand::Snapshot(a) => snapshot::run(a, out).await,
        ApiCommand::Keygen => keygen::run(out),
        ApiCommand::Version => version::run(out),
        ApiCommand::Watch(a) => watch::run(&a, &a.http.client()?, out).await,
        ApiCommand::Template(a) => template::run(&a, out).await,
        ApiCommand::Acl(a) => acl::run(a, out).await,
        ApiCommand::Login(a) => login::login(&a, &a.http.client()?, out).await,
        ApiCommand::Logout(a) => login::logout(&a, &a.http.client()?, out).await,
    }
}

/// Prints `Error: <msg>: <cause>: …` and returns exit code 1. A closed stdout (`| head`)
/// is not an error worth reporting.
fn report(err: &anyhow::Error) -> ExitCode {
    let broken_pipe = err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("Error: {}", error_chain(err));
    ExitCode::FAILURE
}

/// `outer: cause: cause`, skipping a cause whose text the previous message already ends
/// with (errors that both print and expose their source).
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if text.is_empty() {
            text = message;
        } else if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn error_chain_skips_causes_already_printed() {
        let io = std::io::Error::other("Address already in use");
        #[derive(Debug, thiserror::Error)]
        #[error("bind failed: {0}")]
        struct Bind(#[source] std::io::Error);
        let err = anyhow::Error::new(Bind(io)).context("starting the agent");
        assert_eq!(error_chain(&err), "starting the agent: bind failed: Address already in use");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&err), "outer: inner");
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("sekisho").chain(args.iter().copied());
        Cli::try_parse_from(argv::rewrite(&Cli::command(), argv.map(Into::into)))
    }

    #[test]
    fn single_and_double_dash_flags_parse_alike() {
        let one = parse(&["kv", "get", "-recurse", "-http-addr=1.2.3.4:5", "k"]).unwrap();
        let two = parse(&["kv", "get", "--recurse", "--http-addr", "1.2.3.4:5", "k"]).unwrap();
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
    }

    #[test]
    fn help_and_version_exit_zero_and_unknown_flags_two() {
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["-version"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["kv", "get", "-help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["kv", "get", "-bogus", "k"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
    }
}
