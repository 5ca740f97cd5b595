//! `sekisho exec`: run a command on the agents matching `-node`/`-service`/`-tag`, through KV
//! and the `_rexec` event (Consul's protocol, see `crate::exec`).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::{Client, KvEntry};
use crate::exec::{EVENT, JobEvent, JobSpec, PREFIX, job_key};

/// `sekisho exec`
#[derive(Args, Debug)]
#[command(
    about = "Executes a command on agents",
    long_about = "Run a shell command (or, with `-`, a script read from stdin) on every agent that \
        matches -node, -service and -tag (regular expressions), and print each agent's output and \
        exit code. Agents refuse unless they run with disable_remote_exec = false (the default is \
        true). Exit code 0 when every agent that answered ran the command and it exited 0; 1 \
        otherwise (a refusal, a failure, or no agent at all).",
    after_long_help = "Examples:\n  $ sekisho exec -node 'web-' hostname\n      web-1: web-1\n  \
        ==> web-1: finished with exit code 0\n      web-2: web-2\n  \
        ==> web-2: finished with exit code 0\n  2 / 2 node(s) completed / acknowledged\n\n  \
        $ sekisho exec -service redis - < restart.sh"
)]
pub(crate) struct ExecArgs {
    /// Only agents whose node name matches this regular expression
    #[arg(long, value_name = "REGEXP", default_value = "")]
    node: String,
    /// Only agents running a service matching this regular expression
    #[arg(long, value_name = "REGEXP", default_value = "")]
    service: String,
    /// With -service: only instances with a tag matching this regular expression
    #[arg(long, value_name = "REGEXP", default_value = "")]
    tag: String,
    /// How long to wait for more answers after the last one
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    wait: Duration,
    /// Interval between looks at the answers (Consul's -wait-repl)
    #[arg(long = "wait-repl", value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    wait_repl: Duration,
    /// Run the command through a shell (always true; accepted for Consul compatibility)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    shell: bool,
    /// Print progress on stderr
    #[arg(long)]
    verbose: bool,
    /// The command, or `-` to read a script from stdin
    #[arg(value_name = "COMMAND", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_go_duration(s)
}

/// What one node wrote back.
#[derive(Debug, Default)]
struct NodeState {
    acked: bool,
    refused: Option<String>,
    printed: usize,
    exit: Option<i32>,
}

pub(crate) async fn run(args: &ExecArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let spec = job_spec(args)?;
    let session = create_session(client).await?;
    let result = drive(args, client, out, &session, &spec).await;
    // Behavior "delete": destroying the session removes every key it acquired.
    let _ = client.request(http::Method::PUT, &format!("/v1/session/destroy/{session}"), None).await;
    let _ = client.kv_delete(&format!("{PREFIX}/{session}/"), true).await;
    result
}

fn job_spec(args: &ExecArgs) -> anyhow::Result<JobSpec> {
    let wait = u64::try_from(args.wait.as_nanos()).unwrap_or(u64::MAX);
    if args.command == ["-"] {
        let mut script = Vec::new();
        std::io::stdin().read_to_end(&mut script).context("reading the script from stdin")?;
        return Ok(JobSpec { command: String::new(), script, wait });
    }
    Ok(JobSpec { command: args.command.join(" "), script: Vec::new(), wait })
}

async fn create_session(client: &Client) -> anyhow::Result<String> {
    let body = br#"{"Name":"Remote Exec","Behavior":"delete","TTL":"15s","LockDelay":"0s"}"#.to_vec();
    let r = client.request(http::Method::PUT, "/v1/session/create", Some(body)).await?.error_for_status()?;
    let v: serde_json::Value = r.json("/v1/session/create")?;
    Ok(v["ID"].as_str().context("no session ID in the answer")?.to_owned())
}

async fn drive(
    args: &ExecArgs,
    client: &Client,
    out: &mut Output,
    session: &str,
    spec: &JobSpec,
) -> anyhow::Result<ExitCode> {
    let put = format!("/v1/kv/{}?acquire={session}", job_key(session));
    let r =
        client.request(http::Method::PUT, &put, Some(serde_json::to_vec(spec)?)).await?.error_for_status()?;
    if r.text().trim() != "true" {
        bail!("could not store the job under {PREFIX}/{session}/");
    }
    let payload = serde_json::to_vec(&JobEvent { prefix: PREFIX.into(), session: session.into() })?;
    let q = |k: &str, v: &str| {
        if v.is_empty() { String::new() } else { format!("&{k}={}", crate::client::url::escape_query(v)) }
    };
    let fire = format!(
        "/v1/event/fire/{EVENT}?{}{}{}",
        q("node", &args.node),
        q("service", &args.service),
        q("tag", &args.tag)
    );
    client
        .request(http::Method::PUT, &fire, Some(payload))
        .await?
        .error_for_status()
        .context("firing the _rexec event")?;
    if args.verbose {
        eprintln!("==> Started remote execution in session {session}");
    }
    let nodes = collect(args, client, out, session).await?;
    let acked = nodes.values().filter(|n| n.acked).count();
    let done = nodes.values().filter(|n| n.exit.is_some()).count();
    out.line(format!("{done} / {acked} node(s) completed / acknowledged"))?;
    let all_ok = !nodes.is_empty() && nodes.values().all(|n| n.refused.is_none() && n.exit == Some(0));
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Reads the answers until nothing new arrived for `-wait` and every acknowledged node exited
/// (or nothing new for 10 × `-wait`).
async fn collect(
    args: &ExecArgs,
    client: &Client,
    out: &mut Output,
    session: &str,
) -> anyhow::Result<BTreeMap<String, NodeState>> {
    let mut nodes: BTreeMap<String, NodeState> = BTreeMap::new();
    let mut last_news = Instant::now();
    let mut last_renew = Instant::now();
    loop {
        let entries = client.kv_list(&format!("{PREFIX}/{session}/")).await?;
        if absorb(&mut nodes, &entries, session, out)? {
            last_news = Instant::now();
        }
        let pending = nodes.values().any(|n| n.acked && n.exit.is_none());
        let quiet = last_news.elapsed();
        if (!pending && quiet >= args.wait) || quiet >= args.wait * 10 {
            return Ok(nodes);
        }
        if last_renew.elapsed() >= Duration::from_secs(5) {
            last_renew = Instant::now();
            let _ = client.request(http::Method::PUT, &format!("/v1/session/renew/{session}"), None).await;
        }
        tokio::time::sleep(args.wait_repl).await;
    }
}

/// Folds the listed keys into `nodes`, printing new output; true when anything was new.
fn absorb(
    nodes: &mut BTreeMap<String, NodeState>,
    entries: &[KvEntry],
    session: &str,
    out: &mut Output,
) -> anyhow::Result<bool> {
    let mut news = false;
    let base = format!("{PREFIX}/{session}/");
    let mut chunks: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    for e in entries {
        let Some(rest) = e.key.strip_prefix(&base) else { continue };
        let Some((node, leaf)) = rest.split_once('/') else { continue };
        let n = nodes.entry(node.to_owned()).or_default();
        let value = e.value.clone().unwrap_or_default();
        match leaf {
            "ack" if !n.acked => (n.acked, news) = (true, true),
            "refused" if n.refused.is_none() => {
                let why = String::from_utf8_lossy(&value).into_owned();
                out.line(format!("==> {node}: refused: {why}"))?;
                (n.refused, news) = (Some(why), true);
            }
            l if l.starts_with("out/") => {
                chunks.insert((node.to_owned(), l.to_owned()), value);
            }
            _ => {}
        }
    }
    for (node, n) in nodes.iter_mut() {
        let mine: Vec<&Vec<u8>> = chunks.iter().filter(|((k, _), _)| k == node).map(|(_, v)| v).collect();
        for chunk in mine.iter().skip(n.printed) {
            for line in String::from_utf8_lossy(chunk).lines() {
                out.line(format!("    {node}: {line}"))?;
            }
            news = true;
        }
        n.printed = n.printed.max(mine.len());
        let exit = entries.iter().find(|e| e.key == format!("{base}{node}/exit"));
        if let (None, Some(e)) = (n.exit, exit) {
            let code =
                String::from_utf8_lossy(&e.value.clone().unwrap_or_default()).trim().parse().unwrap_or(-1);
            out.line(format!("==> {node}: finished with exit code {code}"))?;
            (n.exit, news) = (Some(code), true);
        }
    }
    Ok(news)
}
