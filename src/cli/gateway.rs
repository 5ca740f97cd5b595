//! `sekisho gateway`: a federation gateway (see [`crate::gateway`] and docs/federation.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::output::Output;
use crate::gateway::{Gateway, GatewayConfig};

/// `sekisho gateway`
#[derive(Args, Debug)]
#[command(
    about = "Runs a federation gateway: one WAN port that routes TLS by server name",
    long_about = "Runs a federation gateway for one datacenter. It listens on one TCP port (the only \
        port a datacenter needs to expose on the WAN), reads the server name (SNI) of each TLS \
        connection and splices it, without terminating TLS, to a server of its datacenter \
        (`server.<dc>.<domain>`, `<node>.server.<dc>.<domain>`) or to the gateway of the \
        datacenter named. Servers use it when configured with `federation_gateways` (or \
        `primary_gateways`): their cross-datacenter RPC, ACL replication and federation \
        health checks then go only through gateways. Stops on Ctrl-C or SIGTERM.",
    after_long_help = "Example (dc1's gateway, reaching dc2's):\n  \
        $ sekisho gateway -datacenter dc1 -listen 0.0.0.0:8443 \\\n      \
        -server s1=10.1.0.1:8300 -server s2=10.1.0.2:8300 -server s3=10.1.0.3:8300 \\\n      \
        -remote dc2=203.0.113.7:8443\n  \
        ==> Gateway for dc1 listening on 0.0.0.0:8443"
)]
pub(crate) struct GatewayArgs {
    /// The datacenter this gateway serves
    #[arg(long, value_name = "DC")]
    datacenter: String,
    /// The DNS domain server names end in
    #[arg(long, value_name = "DOMAIN", default_value = "consul")]
    domain: String,
    /// Where to listen (the WAN side)
    #[arg(long, value_name = "IP:PORT", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// A server of this datacenter, by its server RPC address; may be repeated
    #[arg(long = "server", value_name = "[NODE=]IP:PORT")]
    servers: Vec<String>,
    /// The gateway of another datacenter; may be repeated (several per datacenter allowed)
    #[arg(long = "remote", value_name = "DC=IP:PORT")]
    remotes: Vec<String>,
    /// Log level: trace, debug, info, warn or err
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    log_level: String,
}

/// This datacenter's servers and the other datacenters' gateways.
type Routes = (Vec<(String, String)>, BTreeMap<String, Vec<String>>);

/// Checks the routes given on the command line (a usage error names the bad one).
fn routes(args: &GatewayArgs) -> Result<Routes, String> {
    let addr = |s: &str, what: &str| {
        s.parse::<SocketAddr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{what}: {s:?} is not an IP:PORT address"))
    };
    let mut servers = Vec::new();
    for s in &args.servers {
        let (node, a) = s.split_once('=').unwrap_or(("", s));
        servers.push((node.to_owned(), addr(a, "-server")?));
    }
    let mut remote: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &args.remotes {
        let Some((dc, a)) = r.split_once('=').filter(|(dc, _)| !dc.is_empty()) else {
            return Err(format!("-remote: {r:?} is not DC=IP:PORT"));
        };
        if dc.eq_ignore_ascii_case(&args.datacenter) {
            return Err(format!("-remote: {dc} is this gateway's own datacenter (use -server)"));
        }
        remote.entry(dc.to_ascii_lowercase()).or_default().push(addr(a, "-remote")?);
    }
    if servers.is_empty() && remote.is_empty() {
        return Err("nothing to route: give -server and/or -remote".into());
    }
    Ok((servers, remote))
}

/// Runs the gateway until a signal.
pub(crate) fn main(args: GatewayArgs) -> ExitCode {
    let (servers, remote) = match routes(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    super::agent::init_tracing(&args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return super::report(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    let mut cfg = GatewayConfig::new(&args.datacenter.to_ascii_lowercase(), args.listen);
    cfg.domain = args.domain.trim_matches('.').to_owned();
    cfg.servers = servers;
    cfg.remote = remote;
    match runtime.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::report(&e),
    }
}

async fn run(cfg: GatewayConfig) -> anyhow::Result<()> {
    let mut out = Output::stdio();
    let (dc, servers, remote) = (cfg.datacenter.clone(), cfg.servers.len(), cfg.remote.clone());
    let gw = Gateway::start(cfg.clone()).await.with_context(|| format!("listening on {}", cfg.bind))?;
    out.line(format!("==> Gateway for {dc} listening on {}", gw.local_addr()))?;
    out.line(format!("    server.{dc}.{} -> {servers} server(s)", cfg.domain))?;
    for (other, gws) in &remote {
        out.line(format!("    server.{other}.{} -> {}", cfg.domain, gws.join(", ")))?;
    }
    out.flush()?;
    let why = super::agent::shutdown_signal().await?;
    let s = gw.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    out.line(format!(
        "==> Gateway stopping ({why}): {} local, {} remote connections routed, {} refused",
        count(&s.local),
        count(&s.remote),
        count(&s.refused)
    ))?;
    out.flush()?;
    gw.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        g: GatewayArgs,
    }

    fn parse(args: &[&str]) -> GatewayArgs {
        T::try_parse_from(std::iter::once("gateway").chain(args.iter().copied())).expect("parses").g
    }

    #[test]
    fn routes_are_checked() {
        let g =
            parse(&["--datacenter", "dc1", "--server", "s1=10.0.0.1:8300", "--remote", "dc2=192.0.2.1:8443"]);
        let (servers, remote) = routes(&g).expect("valid");
        assert_eq!(servers, vec![("s1".to_owned(), "10.0.0.1:8300".to_owned())]);
        assert_eq!(remote["dc2"], vec!["192.0.2.1:8443".to_owned()]);
        let bad = |a: &[&str]| routes(&parse(a)).unwrap_err();
        assert!(bad(&["--datacenter", "dc1", "--server", "nowhere"]).contains("-server"));
        assert!(bad(&["--datacenter", "dc1", "--remote", "192.0.2.1:8443"]).contains("DC=IP:PORT"));
        assert!(bad(&["--datacenter", "dc1", "--remote", "dc1=192.0.2.1:8443"]).contains("own datacenter"));
        assert!(bad(&["--datacenter", "dc1"]).contains("nothing to route"));
    }
}
