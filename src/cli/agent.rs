//! `sekisho agent`: load the configuration, start the agent, print Consul's banner, and run
//! until a signal or a `leave`.
//!
//! ```text
//! flags ─► config::Flags ─► config::load ─┬─ error: "Error: …", exit 1, nothing started
//!                                         └─ warnings: "==> WARNING: …"
//!         ─► tracing (stderr, log_level) ─► Agent::start ─► banner
//!         ─► wait: Ctrl-C / SIGTERM / agent stopped itself ─► shutdown ─► exit 0
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::output::Output;
use crate::agent::{Agent, AgentHandle};
use crate::config::{self, Flags, RuntimeConfig};

const LONG_ABOUT: &str = "\
Start a Sekisho agent. The configuration comes from defaults, then -config-file and
-config-dir files (JSON or HCL, Consul's keys), then these flags. An unknown or invalid key
stops the agent before anything starts. Logs go to stderr at -log-level.";

const EXAMPLES: &str = "\
Examples:
  A development agent: one in-memory server on 127.0.0.1, HTTP on 8500, DNS on 8600:
    $ sekisho agent -dev

  The first of three servers, with its configuration in a directory:
    $ sekisho agent -server -bootstrap-expect=3 -data-dir=/var/lib/sekisho \\
        -config-dir=/etc/sekisho.d -retry-join=10.0.0.2 -retry-join=10.0.0.3";

/// `sekisho agent` flags; each fills the [`Flags`] field of the same name.
#[derive(Args, Debug)]
#[command(about = "Runs a Sekisho agent", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct AgentArgs {
    /// Development mode: a single in-memory server, nothing written to disk
    #[arg(long)]
    dev: bool,
    /// A configuration file (JSON or HCL); may be repeated, loaded in order
    #[arg(long = "config-file", value_name = "FILE")]
    config_file: Vec<PathBuf>,
    /// A directory of *.json / *.hcl files, loaded in lexical order; may be repeated
    #[arg(long = "config-dir", value_name = "DIR")]
    config_dir: Vec<PathBuf>,
    /// Datacenter of the agent (default dc1)
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// Node name (default: the hostname)
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Where the agent keeps its state
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run as a server (-server or -server=false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    server: Option<bool>,
    /// Let this server elect itself leader without peers
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    bootstrap: Option<bool>,
    /// Wait for this many servers before bootstrapping the cluster
    #[arg(long = "bootstrap-expect", value_name = "N")]
    bootstrap_expect: Option<u32>,
    /// Address for cluster communication (gossip, RPC)
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Address the HTTP and DNS interfaces listen on
    #[arg(long, value_name = "ADDR")]
    client: Option<String>,
    /// Address advertised to the rest of the cluster
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// HTTP API port (-1 disables, 0 picks a free port)
    #[arg(long = "http-port", value_name = "PORT", allow_negative_numbers = true)]
    http_port: Option<i64>,
    /// DNS port (-1 disables, 0 picks a free port)
    #[arg(long = "dns-port", value_name = "PORT", allow_negative_numbers = true)]
    dns_port: Option<i64>,
    /// LAN gossip port, UDP and TCP (0 picks a free port)
    #[arg(long = "serf-lan-port", value_name = "PORT")]
    serf_lan_port: Option<i64>,
    /// Server RPC and Raft port (0 picks a free port)
    #[arg(long = "server-port", value_name = "PORT")]
    server_port: Option<i64>,
    /// WAN gossip port of servers, UDP and TCP (-1 disables, 0 picks a free port)
    #[arg(long = "serf-wan-port", value_name = "PORT", allow_negative_numbers = true)]
    serf_wan_port: Option<i64>,
    /// Address advertised to the WAN pool (default: the advertise address)
    #[arg(long = "advertise-wan", value_name = "IP")]
    advertise_wan: Option<String>,
    /// Log level: trace, debug, info, warn or err
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// DNS domain (default consul.)
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Serve the web UI (-ui or -ui=false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ui: Option<bool>,
    /// An address to join at start, retried until it works; may be repeated
    #[arg(long = "retry-join", value_name = "ADDR")]
    retry_join: Vec<String>,
    /// A server of another datacenter to join over the WAN, retried until it works; may be
    /// repeated
    #[arg(long = "retry-join-wan", value_name = "ADDR")]
    retry_join_wan: Vec<String>,
}

impl AgentArgs {
    fn into_flags(self) -> Flags {
        Flags {
            dev: self.dev,
            config_files: self.config_file,
            config_dirs: self.config_dir,
            datacenter: self.datacenter,
            node_name: self.node,
            data_dir: self.data_dir,
            server: self.server,
            bootstrap: self.bootstrap,
            bootstrap_expect: self.bootstrap_expect,
            bind_addr: self.bind,
            client_addr: self.client,
            advertise_addr: self.advertise,
            http_port: self.http_port,
            dns_port: self.dns_port,
            server_port: self.server_port,
            serf_lan_port: self.serf_lan_port,
            serf_wan_port: self.serf_wan_port,
            advertise_addr_wan: self.advertise_wan,
            retry_join_wan: self.retry_join_wan,
            log_level: self.log_level,
            domain: self.domain,
            ui: self.ui,
            retry_join: self.retry_join,
        }
    }
}

/// Runs the agent to completion; the process's exit code.
pub(crate) fn main(args: AgentArgs) -> ExitCode {
    let flags = args.into_flags();
    let (cfg, warnings) = match config::load(&flags) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &warnings {
        eprintln!("==> WARNING: {warning}");
    }
    init_tracing(&cfg.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(cfg, flags)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::report(&e),
    }
}

async fn run(cfg: RuntimeConfig, flags: Flags) -> anyhow::Result<()> {
    let mut out = Output::stdio();
    out.line("==> Starting Sekisho agent...")?;
    out.flush()?;
    let banner = Banner::new(&cfg);
    let handle = Agent::start(cfg).await.context("starting the agent")?;
    handle.set_config_source(std::sync::Arc::new(move || {
        let (rt, _) = config::load(&flags).map_err(|e| e.to_string())?;
        Ok(reloaded(rt))
    }));
    let mut banner = banner;
    if let Some(dns) = handle.dns_addr() {
        banner.dns = i64::from(dns.port());
    }
    out.line(banner.render(handle.http_addr().port()))?;
    out.line("==> Sekisho agent running!")?;
    out.flush()?;
    let mut hangups = hangup_signals()?;
    loop {
        tokio::select! {
            () = handle.stopped() => {
                out.line("==> Sekisho agent stopped")?;
                break;
            }
            signal = shutdown_signal() => {
                out.line(format!("==> Caught signal: {}", signal?))?;
                out.line("==> Gracefully shutting down agent...")?;
                break;
            }
            Some(()) = hangups.recv() => {
                out.line("==> Caught signal: hangup")?;
                out.line("==> Reloading configuration...")?;
                out.flush()?;
                match handle.reload().await {
                    Ok(()) => out.line("==> Configuration reloaded")?,
                    Err(e) => out.line(format!("==> Failed to reload configs: {e}"))?,
                }
            }
        }
        out.flush()?;
    }
    out.flush()?;
    shutdown(handle).await
}

fn reloaded(rt: RuntimeConfig) -> crate::agent::ReloadedConfig {
    crate::agent::ReloadedConfig { services: rt.services, checks: rt.checks, watches: rt.watches }
}

/// Graceful shutdown; a second signal aborts it.
async fn shutdown(handle: AgentHandle) -> anyhow::Result<()> {
    tokio::select! {
        () = handle.shutdown() => Ok(()),
        signal = shutdown_signal() => {
            anyhow::bail!("caught a second signal ({}) during shutdown; exiting now", signal?)
        }
    }
}

/// SIGHUP deliveries (never on other platforms).
fn hangup_signals() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    Ok(rx)
}

/// Resolves on Ctrl-C (`interrupt`) or SIGTERM (`terminated`).
pub(super) async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "interrupt").context("listening for Ctrl-C"),
            _ = term.recv() => Ok("terminated"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("listening for Ctrl-C")?;
        Ok("interrupt")
    }
}

/// Logs to stderr at the configured level. `RUST_LOG`, when set, wins.
pub(super) fn init_tracing(log_level: &str) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let level = match log_level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "err" | "error" => "error",
        _ => "info",
    };
    // openraft narrates every heartbeat and hickory every query at info; keep them to warnings
    // unless debugging.
    let raft = if level == "info" { "warn" } else { level };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},openraft={raft},hickory_server={raft}")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    // `/v1/agent/monitor` gets every level a monitor asks for, whatever -log-level says.
    let _ = tracing_subscriber::registry()
        .with(stderr.with_filter(filter))
        .with(crate::telemetry::logs::layer())
        .try_init();
}

/// What the banner shows, captured before the config moves into the agent.
struct Banner {
    node_id: String,
    node_name: String,
    datacenter: String,
    server: bool,
    bootstrap: bool,
    client_addr: String,
    https: i64,
    dns: i64,
}

impl Banner {
    fn new(cfg: &RuntimeConfig) -> Self {
        let port = |p: Option<u16>| p.map_or(-1, i64::from);
        Self {
            node_id: cfg.node_id.clone(),
            node_name: cfg.node_name.clone(),
            datacenter: cfg.datacenter.clone(),
            server: cfg.server,
            bootstrap: cfg.bootstrap,
            client_addr: cfg.client_addr.to_string(),
            https: port(cfg.ports.https),
            dns: port(cfg.ports.dns),
        }
    }

    /// Consul's right-aligned `Label: value` block; `http_port` is the bound port.
    fn render(&self, http_port: u16) -> String {
        let segment = if self.server { "<all>" } else { "" };
        let version = format!("v{} (Consul API {})", crate::VERSION, crate::CONSUL_COMPAT_VERSION);
        let fields = [
            ("Version", format!("'{version}'")),
            ("Node ID", format!("'{}'", self.node_id)),
            ("Node name", format!("'{}'", self.node_name)),
            ("Datacenter", format!("'{}' (Segment: '{segment}')", self.datacenter)),
            ("Server", format!("{} (Bootstrap: {})", self.server, self.bootstrap)),
            (
                "Client Addr",
                format!(
                    "[{}] (HTTP: {}, HTTPS: {}, DNS: {})",
                    self.client_addr, http_port, self.https, self.dns
                ),
            ),
        ];
        let lines: Vec<String> =
            fields.iter().map(|(label, value)| format!("{label:>21}: {value}")).collect();
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn flags(args: &[&str]) -> Flags {
        let argv = std::iter::once("agent").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).unwrap().agent.into_flags()
    }

    #[test]
    fn go_style_booleans_and_negative_ports() {
        let f = flags(&[
            "--server",
            "--bootstrap=false",
            "--http-port",
            "-1",
            "--retry-join",
            "a",
            "--retry-join",
            "b",
        ]);
        assert_eq!(f.server, Some(true));
        assert_eq!(f.bootstrap, Some(false));
        assert_eq!(f.ui, None);
        assert_eq!(f.http_port, Some(-1));
        assert_eq!(f.retry_join, ["a", "b"]);
    }

    #[test]
    fn banner_is_right_aligned_like_consul() {
        let banner = Banner {
            node_id: "id".into(),
            node_name: "n1".into(),
            datacenter: "dc1".into(),
            server: true,
            bootstrap: true,
            client_addr: "127.0.0.1".into(),
            https: -1,
            dns: 8600,
        };
        let text = banner.render(8500);
        assert!(text.contains("\n           Datacenter: 'dc1' (Segment: '<all>')\n"));
        assert!(text.ends_with("Client Addr: [127.0.0.1] (HTTP: 8500, HTTPS: -1, DNS: 8600)"));
    }
}
