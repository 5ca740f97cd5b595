//! `sekisho operator raft list-peers|remove-peer|transfer-leader|recover` and
//! `sekisho operator autopilot get-config|set-config|state`, with Consul's texts.
//!
//! Every command but `raft recover` talks to an agent's HTTP API. `raft recover` works on a
//! stopped server's data directory (see [`crate::server::operator::recover`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use http::Method;
use serde_json::Value;

use super::http::HttpArgs;
use super::output::{Output, columnize};
use crate::client::Client;
use crate::client::url::append_param;
use crate::server::operator::recover::{self, Survivor};
use crate::server::operator::{AutopilotState, RaftConfiguration};

/// `sekisho operator …`
#[derive(Args, Debug)]
#[command(
    about = "Operator tools: Raft peers, leadership, autopilot and outage recovery",
    long_about = "Tools for operators: inspect and change the Raft configuration, hand the \
        leadership to another server, read and change the autopilot configuration, and recover \
        a cluster that lost its quorum.",
    after_long_help = "Examples:\n  $ sekisho operator raft list-peers\n  \
        $ sekisho operator raft remove-peer -address=10.0.0.3:8300\n  \
        $ sekisho operator autopilot get-config"
)]
pub(crate) struct OperatorArgs {
    #[command(subcommand)]
    pub(crate) command: OperatorCommand,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// The operator families.
#[derive(Subcommand, Debug)]
pub(crate) enum OperatorCommand {
    /// Inspect and change the Raft configuration
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Read and change the autopilot configuration and state
    #[command(subcommand)]
    Autopilot(AutopilotCommand),
    Bench(BenchArgs),
}

/// `operator raft …`
#[derive(Subcommand, Debug)]
pub(crate) enum RaftCommand {
    #[command(
        about = "Display the current Raft peer configuration",
        long_about = "Display the current Raft peer configuration: every server's node name, ID, \
            RPC address, whether it leads, whether it votes and its Raft protocol. With -stale, \
            any server answers (useful during an outage, when there is no leader).",
        after_long_help = "Example:\n  $ sekisho operator raft list-peers\n  \
            Node   ID                                    Address         State     Voter  RaftProtocol\n  \
            node1  9d3c4a4e-6b1c-4c69-8b80-2a0e4ef1e7a1  10.0.0.1:8300  leader    true   3"
    )]
    ListPeers,
    #[command(
        about = "Remove a server from the Raft configuration",
        long_about = "Remove the server with the given -id or -address from the Raft configuration. \
            Meant for servers that are gone but still counted in the quorum. A server that is \
            still alive in the gossip pool is added back by the leader; use `leave` on it (or \
            `force-leave`) instead.",
        after_long_help = "Examples:\n  $ sekisho operator raft remove-peer -address=10.0.0.3:8300\n  \
            Removed peer with address \"10.0.0.3:8300\"\n  \
            $ sekisho operator raft remove-peer -id=9d3c4a4e-6b1c-4c69-8b80-2a0e4ef1e7a1"
    )]
    RemovePeer(RemovePeerArgs),
    #[command(
        about = "Transfer the Raft leadership to another server",
        long_about = "Hand the leadership to the server with -id, or to the most up-to-date other \
            voter. The command returns once the new leader has been elected.",
        after_long_help = "Example:\n  $ sekisho operator raft transfer-leader -id=9d3c4a4e-6b1c-4c69-8b80-2a0e4ef1e7a1\n  Success"
    )]
    TransferLeader(TransferLeaderArgs),
    Recover(RecoverArgs),
}

/// `operator raft remove-peer`
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("peer").required(true).args(["id", "address"])))]
pub(crate) struct RemovePeerArgs {
    /// The ID of the server to remove (node ID or numeric Raft ID)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The RPC address (ip:port) of the server to remove
    #[arg(long, value_name = "IP:PORT")]
    address: Option<String>,
}

/// `operator raft transfer-leader`
#[derive(Args, Debug)]
pub(crate) struct TransferLeaderArgs {
    /// The ID of the server to hand the leadership to (default: the most up-to-date voter)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
}

const RECOVER_LONG: &str = "\
Rewrite the Raft configuration stored in a STOPPED server's data directory so that the
listed surviving servers can elect a leader again (this replaces Consul's peers.json).

Use it when a majority of the servers is lost for good. On EVERY surviving server:
  1. stop the agent;
  2. run this command with the SAME list of survivors (the printed fingerprint must match);
  3. start the agent again.
The survivors then elect the one with the most up-to-date log. Never restart a removed
server with its old data directory: wipe it first and let it join as a new server.

The command refuses to run while the agent holds the data directory, when this server is
not in the list, or when the list is inconsistent. Before changing anything it copies the
Raft log and snapshots to <data-dir>/raft/recover-backup-<time>/.";

/// `operator raft recover`
#[derive(Args, Debug)]
#[command(
    about = "Recover from a lost quorum by rewriting a stopped server's Raft configuration",
    long_about = RECOVER_LONG,
    after_long_help = "Example (on each of the two survivors of a three-server cluster):\n  \
        $ sekisho operator raft recover -data-dir=/var/lib/sekisho \\\n      \
        -server id=9d3c4a4e-6b1c-4c69-8b80-2a0e4ef1e7a1,address=10.0.0.1:8300 \\\n      \
        -server id=5e0a0c7e-1f43-4c38-a0a4-6f1f1d2f6f3b,address=10.0.0.2:8300\n\n\
        Or with Consul's peers.json format:\n  \
        $ sekisho operator raft recover -data-dir=/var/lib/sekisho -peers-file=peers.json\n  \
        where peers.json is [{\"id\":\"<node-id>\",\"address\":\"10.0.0.1:8300\",\"non_voter\":false}, ...]"
)]
#[command(group(ArgGroup::new("survivors").required(true).args(["server", "peers_file"])))]
pub(crate) struct RecoverArgs {
    /// The stopped server's data directory
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: PathBuf,
    /// A surviving server: id=ID,address=IP:PORT[,name=NODE][,non_voter=true]; repeat per server
    #[arg(long, value_name = "SPEC", action = clap::ArgAction::Append)]
    server: Vec<String>,
    /// A JSON file listing the survivors in Consul's peers.json format
    #[arg(long = "peers-file", value_name = "FILE")]
    peers_file: Option<PathBuf>,
}

/// `operator autopilot …`
#[derive(Subcommand, Debug)]
pub(crate) enum AutopilotCommand {
    #[command(
        about = "Display the current autopilot configuration",
        after_long_help = "Example:\n  $ sekisho operator autopilot get-config\n  \
            CleanupDeadServers = true\n  LastContactThreshold = 200ms\n  MaxTrailingLogs = 250\n  \
            MinQuorum = 0\n  ServerStabilizationTime = 10s\n  RedundancyZoneTag = \"\"\n  \
            DisableUpgradeMigration = false\n  UpgradeVersionTag = \"\""
    )]
    GetConfig,
    #[command(
        about = "Modify the current autopilot configuration",
        long_about = "Modify the autopilot configuration. Only the given flags change; the update \
            is a check-and-set against the configuration just read, so concurrent changes are \
            not lost (exit 1 when another change won).",
        after_long_help = "Example:\n  $ sekisho operator autopilot set-config -cleanup-dead-servers=false -min-quorum=3\n  \
            Configuration updated!"
    )]
    SetConfig(SetConfigArgs),
    #[command(
        about = "Display the current autopilot state",
        long_about = "Display autopilot's view of the cluster: overall health, failure tolerance, \
            the leader, the voters and each server's health as the leader sees it."
    )]
    State(StateArgs),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_go_duration(s)
}

/// `operator autopilot set-config`
#[derive(Args, Debug)]
pub(crate) struct SetConfigArgs {
    /// Remove dead servers once replacements have joined (true|false)
    #[arg(long = "cleanup-dead-servers", value_name = "BOOL")]
    cleanup_dead_servers: Option<bool>,
    /// Log entries a server may trail the leader by before it is unhealthy
    #[arg(long = "max-trailing-logs", value_name = "N")]
    max_trailing_logs: Option<u64>,
    /// Never prune dead servers below this many voters
    #[arg(long = "min-quorum", value_name = "N")]
    min_quorum: Option<u32>,
    /// Time without leader contact before a server is unhealthy, e.g. 200ms
    #[arg(long = "last-contact-threshold", value_name = "DURATION", value_parser = parse_duration)]
    last_contact_threshold: Option<Duration>,
    /// Time a new server must stay healthy before it becomes a voter, e.g. 10s
    #[arg(long = "server-stabilization-time", value_name = "DURATION", value_parser = parse_duration)]
    server_stabilization_time: Option<Duration>,
}

/// `operator autopilot state`
#[derive(Args, Debug)]
pub(crate) struct StateArgs {
    /// Output format: pretty or json
    #[arg(long, value_name = "FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    format: String,
}

const BENCH_LONG: &str = "\
Drive an agent's KV API with a closed-loop load generator and report throughput, latency
percentiles and errors (like `etcdctl check perf`). Each of -concurrency clients keeps one
HTTP/1.1 keep-alive connection with one request in flight, for -duration.

Workloads:
  put    PUT /v1/kv/<prefix><n> with a -value-size value, cycling over -keys keys
  get    GET /v1/kv/<prefix><n>, after writing every key once; -consistency picks
         default, consistent (?consistent) or stale (?stale)
  txn    PUT /v1/txn writing one key and reading another
  watch  every client waits in a blocking query on one key while a writer changes it
         every -watch-interval; reports the time from a write to each watcher's answer
         and to the last watcher's (fan-out)

With -api=etcd the same loop drives etcd's v3 JSON gateway (POST /v3/kv/put, range, txn;
stale reads are serializable ranges), so both can be measured with one tool.

The benchmark writes to the KV store (keys under -prefix): do not point it at a production
cluster. A progress line goes to stderr every second. Exit codes: 0 when no request failed,
1 when some failed or the target could not be reached, 2 on a usage error.";

/// `operator bench`
#[derive(Args, Debug)]
#[command(
    about = "Measure KV throughput and latency against an agent (or etcd)",
    long_about = BENCH_LONG,
    after_long_help = "Examples:\n  $ sekisho operator bench -workload=put -concurrency=64 -duration=10s\n  \
        $ sekisho operator bench -workload=get -consistency=stale -format=json\n  \
        $ sekisho operator bench -workload=watch -concurrency=1000 -watch-interval=500ms\n  \
        $ sekisho operator bench -api=etcd -http-addr=127.0.0.1:2379 -workload=put"
)]
pub(crate) struct BenchArgs {
    /// What each client does: put, get, txn or watch
    #[arg(long, value_name = "WORKLOAD", default_value = "put", value_parser = ["put", "get", "txn", "watch"])]
    workload: String,
    /// Clients, each with its own connection and one request in flight
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: usize,
    /// How long to measure, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Bytes per value written
    #[arg(long = "value-size", value_name = "BYTES", default_value_t = 256)]
    value_size: usize,
    /// Distinct keys cycled through
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    keys: usize,
    /// Read consistency: default, consistent or stale
    #[arg(long, value_name = "MODE", default_value = "default", value_parser = ["default", "consistent", "stale"])]
    consistency: String,
    /// Key prefix of the keys written and read
    #[arg(long, value_name = "PREFIX", default_value = "bench/")]
    prefix: String,
    /// The target's API: sekisho (also Consul) or etcd (its v3 JSON gateway)
    #[arg(long, value_name = "API", default_value = "sekisho", value_parser = ["sekisho", "etcd"])]
    api: String,
    /// Time between writes in the watch workload
    #[arg(long = "watch-interval", value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    watch_interval: Duration,
    /// Output format: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// `operator bench`: runs on its own multi-threaded runtime (the CLI's is single-threaded,
/// which would make the load generator the bottleneck).
fn bench(a: BenchArgs, http: &HttpArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    use crate::bench::{self, Api, BenchError, Consistency, Progress, Workload};
    let config = http.config()?;
    let opts = bench::Options {
        api: if a.api == "etcd" { Api::Etcd } else { Api::Sekisho },
        addr: config.address.clone(),
        token: config.token.clone(),
        workload: match a.workload.as_str() {
            "get" => Workload::Get,
            "txn" => Workload::Txn,
            "watch" => Workload::Watch,
            _ => Workload::Put,
        },
        concurrency: a.concurrency,
        duration: a.duration,
        value_size: a.value_size,
        keys: a.keys,
        consistency: match a.consistency.as_str() {
            "consistent" => Consistency::Consistent,
            "stale" => Consistency::Stale,
            _ => Consistency::Default,
        },
        prefix: a.prefix,
        watch_interval: a.watch_interval,
    };
    let progress = |p: Progress| match p {
        Progress::Connecting { open, of } => eprintln!("connecting: {open}/{of}"),
        Progress::Prefill { done, of } => eprintln!("prefilling keys: {done}/{of}"),
        Progress::Running { elapsed, of, ops, errors } => {
            let secs = elapsed.as_secs_f64();
            let rate = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
            eprintln!("{secs:.0}s/{:.0}s: {ops} ops ({rate:.0}/s), {errors} errors", of.as_secs_f64());
        }
    };
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        anyhow::Ok(rt.block_on(bench::run(opts, progress)))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))??;
    let report = match result {
        Ok(r) => r,
        Err(BenchError::Usage(m)) => {
            out.error(format!("Error: {m}"))?;
            return Ok(ExitCode::from(2));
        }
        Err(e @ BenchError::Target(_)) => return Err(anyhow::Error::new(e).context("running the benchmark")),
    };
    if a.format == "json" {
        out.line(serde_json::to_string_pretty(&report)?)?;
    } else {
        out.line(report.to_string())?;
    }
    Ok(if report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs an operator command.
pub(crate) async fn run(args: OperatorArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    match args.command {
        OperatorCommand::Raft(RaftCommand::Recover(r)) => recover_cmd(&r, out),
        OperatorCommand::Raft(cmd) => raft(cmd, &args.http.client()?, out).await,
        OperatorCommand::Autopilot(cmd) => autopilot(cmd, &args.http.client()?, out).await,
        OperatorCommand::Bench(b) => bench(b, &args.http, out),
    }
}

async fn raft(cmd: RaftCommand, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    match cmd {
        RaftCommand::ListPeers => list_peers(client, out).await.context("getting peers"),
        RaftCommand::RemovePeer(a) => remove_peer(&a, client, out).await.context("removing peer"),
        RaftCommand::TransferLeader(a) => {
            let mut path = "/v1/operator/raft/transfer-leader".to_owned();
            if let Some(id) = &a.id {
                append_param(&mut path, "id", Some(id));
            }
            let r = client.request(Method::POST, &path, None).await?.error_for_status();
            let ok = r.context("transferring leadership")?.json::<Value>(&path)?;
            if ok.get("Success").and_then(Value::as_bool) != Some(true) {
                anyhow::bail!("Failed to transfer leadership");
            }
            out.line("Success")?;
            Ok(ExitCode::SUCCESS)
        }
        RaftCommand::Recover(_) => unreachable!("handled by run"),
    }
}

async fn list_peers(client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = "/v1/operator/raft/configuration";
    let cfg: RaftConfiguration =
        client.request(Method::GET, path, None).await?.error_for_status()?.json(path)?;
    out.line(peers_table(&cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// Consul's `list-peers` table.
fn peers_table(cfg: &RaftConfiguration) -> String {
    let header = ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for s in &cfg.servers {
        let state = if s.leader { "leader" } else { "follower" };
        let protocol =
            if s.protocol_version.is_empty() { "<=1".to_owned() } else { s.protocol_version.clone() };
        rows.push(vec![
            s.node.clone(),
            s.id.clone(),
            s.address.clone(),
            state.to_owned(),
            s.voter.to_string(),
            protocol,
        ]);
    }
    columnize(&rows)
}

async fn remove_peer(a: &RemovePeerArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut path = "/v1/operator/raft/peer".to_owned();
    let (what, value) = match (&a.id, &a.address) {
        (Some(id), _) => ("id", id),
        (None, Some(addr)) => ("address", addr),
        (None, None) => anyhow::bail!("an address or id is required for the peer to remove"),
    };
    append_param(&mut path, what, Some(value));
    client.request(Method::DELETE, &path, None).await?.error_for_status()?;
    out.line(format!("Removed peer with {what} {value:?}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn autopilot(cmd: AutopilotCommand, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = "/v1/operator/autopilot/configuration";
    match cmd {
        AutopilotCommand::GetConfig => {
            let r = client.request(Method::GET, path, None).await?.error_for_status();
            let cfg: Value = r.context("querying the autopilot configuration")?.json(path)?;
            out.line(config_lines(&cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        AutopilotCommand::SetConfig(a) => set_config(&a, client, out).await,
        AutopilotCommand::State(a) => {
            let path = "/v1/operator/autopilot/state";
            let r = client.request(Method::GET, path, None).await?.error_for_status();
            let r = r.context("querying the autopilot state")?;
            if a.format == "json" {
                let v: Value = r.json(path)?;
                out.line(serde_json::to_string_pretty(&v)?)?;
            } else {
                out.line(state_pretty(&r.json(path)?))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Consul's `get-config` lines.
fn config_lines(c: &Value) -> String {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let raw = |k: &str| c.get(k).map_or_else(String::new, Value::to_string);
    [
        format!("CleanupDeadServers = {}", raw("CleanupDeadServers")),
        format!("LastContactThreshold = {}", s("LastContactThreshold")),
        format!("MaxTrailingLogs = {}", raw("MaxTrailingLogs")),
        format!("MinQuorum = {}", raw("MinQuorum")),
        format!("ServerStabilizationTime = {}", s("ServerStabilizationTime")),
        format!("RedundancyZoneTag = {:?}", s("RedundancyZoneTag")),
        format!("DisableUpgradeMigration = {}", raw("DisableUpgradeMigration")),
        format!("UpgradeVersionTag = {:?}", s("UpgradeVersionTag")),
    ]
    .join("\n")
}

async fn set_config(a: &SetConfigArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = "/v1/operator/autopilot/configuration";
    // Read from the leader (never stale): the check-and-set compares with what we read.
    let r = client.request(Method::GET, path, None).await?.error_for_status();
    let mut cfg: Value = r.context("querying the autopilot configuration")?.json(path)?;
    let modify_index = cfg.get("ModifyIndex").and_then(Value::as_u64).unwrap_or(0);
    let go = crate::http::decode::go_duration;
    if let Some(v) = a.cleanup_dead_servers {
        cfg["CleanupDeadServers"] = v.into();
    }
    if let Some(v) = a.max_trailing_logs {
        cfg["MaxTrailingLogs"] = v.into();
    }
    if let Some(v) = a.min_quorum {
        cfg["MinQuorum"] = v.into();
    }
    if let Some(v) = a.last_contact_threshold {
        cfg["LastContactThreshold"] = go(v).into();
    }
    if let Some(v) = a.server_stabilization_time {
        cfg["ServerStabilizationTime"] = go(v).into();
    }
    let mut put = path.to_owned();
    append_param(&mut put, "cas", Some(&modify_index.to_string()));
    let r = client.request(Method::PUT, &put, Some(serde_json::to_vec(&cfg)?)).await?.error_for_status();
    let written: bool = r.context("setting the autopilot configuration")?.json(&put)?;
    if written {
        out.line("Configuration updated!")?;
        return Ok(ExitCode::SUCCESS);
    }
    out.line("Configuration could not be atomically updated, please try again")?;
    Ok(ExitCode::FAILURE)
}

/// Consul's pretty `autopilot state` layout.
fn state_pretty(s: &AutopilotState) -> String {
    let mut lines = vec![
        format!("{:<30}{}", "Healthy:", s.healthy),
        format!("{:<30}{}", "Failure Tolerance:", s.failure_tolerance),
        format!("{:<30}{}", "Optimistic Failure Tolerance:", s.optimistic_failure_tolerance),
        format!("{:<30}{}", "Leader:", s.leader),
        "Voters:".to_owned(),
    ];
    lines.extend(s.voters.iter().map(|v| format!("   {v}")));
    lines.push("Servers:".to_owned());
    for (id, srv) in &s.servers {
        lines.push(format!("   {id}"));
        let field = |label: &str, value: String| format!("      {:<17}{value}", format!("{label}:"));
        lines.push(field("Name", srv.name.clone()));
        lines.push(field("Address", srv.address.clone()));
        lines.push(field("Version", srv.version.clone()));
        lines.push(field("Status", srv.status.clone()));
        lines.push(field("Node Type", srv.node_type.clone()));
        lines.push(field("Node Status", srv.node_status.clone()));
        lines.push(field("Healthy", srv.healthy.to_string()));
        lines.push(field("Last Contact", srv.last_contact.clone()));
        lines.push(field("Last Term", srv.last_term.to_string()));
        lines.push(field("Last Index", srv.last_index.to_string()));
    }
    lines.join("\n")
}

fn recover_cmd(a: &RecoverArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let survivors: Vec<Survivor> = match &a.peers_file {
        Some(file) => {
            let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            recover::parse_peers_json(&raw).with_context(|| format!("parsing {}", file.display()))?
        }
        None => a.server.iter().map(|s| recover::parse_server_spec(s)).collect::<Result<_, _>>()?,
    };
    let mut log = |line: &str| out.line(line);
    recover::recover(&a.data_dir, &survivors, &mut log).context("recovery refused")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::operator::RaftServer;

    #[test]
    fn list_peers_prints_consuls_columns() {
        let server = |node: &str, leader: bool, voter: bool| RaftServer {
            id: format!("{node}-id"),
            node: node.into(),
            address: format!("{node}:8300"),
            leader,
            protocol_version: "3".into(),
            voter,
        };
        let cfg = RaftConfiguration {
            servers: vec![server("a", true, true), server("bb", false, false)],
            index: 7,
        };
        assert_eq!(
            peers_table(&cfg),
            "Node  ID     Address  State     Voter  RaftProtocol\n\
             a     a-id   a:8300   leader    true   3\n\
             bb    bb-id  bb:8300  follower  false  3"
        );
    }

    #[test]
    fn get_config_prints_consuls_lines() {
        let v = serde_json::json!({"CleanupDeadServers": true, "LastContactThreshold": "200ms",
            "MaxTrailingLogs": 250, "MinQuorum": 0, "ServerStabilizationTime": "10s",
            "RedundancyZoneTag": "", "DisableUpgradeMigration": false, "UpgradeVersionTag": ""});
        let text = config_lines(&v);
        assert!(text.starts_with("CleanupDeadServers = true\nLastContactThreshold = 200ms\n"), "{text}");
        assert!(text.ends_with(
            "RedundancyZoneTag = \"\"\nDisableUpgradeMigration = false\nUpgradeVersionTag = \"\""
        ));
    }
}
