//! `sekisho members`: the agent's view of the gossip pool.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use regex::Regex;

use super::http::HttpArgs;
use super::output::{Output, columnize};
use crate::client::{Client, Member};

/// `sekisho members`
#[derive(Args, Debug)]
#[command(
    about = "List the members of the cluster",
    long_about = "List the members the agent knows through gossip, with their status (alive, \
        leaving, left, failed), type (server or client), build, protocol and datacenter. The \
        view is eventually consistent.",
    after_long_help = "Example:\n  $ sekisho members\n  \
        Node   Address         Status  Type    Build  Protocol  DC   Partition  Segment\n  \
        node1  127.0.0.1:8301  alive   server  0.1.0  2         dc1  default    <all>"
)]
pub(crate) struct MembersArgs {
    /// Show every gossip tag instead of the summary columns
    #[arg(long)]
    detailed: bool,
    /// Only members whose status matches this regular expression
    #[arg(long, value_name = "REGEXP", default_value = ".*")]
    status: String,
    /// List the WAN pool (servers of every datacenter)
    #[arg(long)]
    wan: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Prints the member table.
pub(crate) async fn run(args: &MembersArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let status = Regex::new(&args.status).context("invalid -status regular expression")?;
    let mut members = client.agent_members(args.wan).await?;
    members.retain(|m| status.is_match(m.status_name()));
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let table = if args.detailed { detailed_table(&members) } else { standard_table(&members) };
    out.line(table)?;
    Ok(ExitCode::SUCCESS)
}

fn standard_table(members: &[Member]) -> String {
    let header = ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(members.iter().map(standard_row));
    columnize(&rows)
}

fn standard_row(m: &Member) -> Vec<String> {
    let tag = |name: &str| m.tags.get(name).cloned().unwrap_or_default();
    let build = match tag("build") {
        b if b.is_empty() => "< 0.3".to_owned(),
        b => b.split(':').next().unwrap_or_default().to_owned(),
    };
    let protocol = match tag("vsn") {
        v if v.is_empty() => m.protocol_cur.to_string(),
        v => v,
    };
    let (kind, default_segment) = if m.is_server() { ("server", "<all>") } else { ("client", "<default>") };
    let segment = Some(tag("segment")).filter(|s| !s.is_empty());
    let partition = Some(tag("ap")).filter(|s| !s.is_empty());
    vec![
        m.name.clone(),
        address(m),
        m.status_name().to_owned(),
        kind.to_owned(),
        build,
        protocol,
        tag("dc"),
        partition.unwrap_or_else(|| "default".to_owned()),
        segment.unwrap_or_else(|| default_segment.to_owned()),
    ]
}

fn detailed_table(members: &[Member]) -> String {
    let mut rows = vec![["Node", "Address", "Status", "Tags"].map(String::from).to_vec()];
    for m in members {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![m.name.clone(), address(m), m.status_name().to_owned(), tags.join(",")]);
    }
    columnize(&rows)
}

/// `ip:port`, with brackets for IPv6 like Go's `net.TCPAddr`.
fn address(m: &Member) -> String {
    match m.addr.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, m.port).to_string(),
        Err(_) => format!("{}:{}", m.addr, m.port),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn member(name: &str, role: &str, status: u8) -> Member {
        Member {
            name: name.into(),
            addr: "10.0.0.1".into(),
            port: 8301,
            status,
            protocol_cur: 2,
            tags: BTreeMap::from([
                ("role".into(), role.into()),
                ("dc".into(), "dc1".into()),
                ("build".into(), "0.1.0:abcdef".into()),
            ]),
            ..Member::default()
        }
    }

    #[test]
    fn standard_columns_follow_consul() {
        let table = standard_table(&[member("s1", "consul", 1), member("c1", "node", 4)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["s1", "10.0.0.1:8301", "alive", "server", "0.1.0", "2", "dc1", "default", "<all>"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["c1", "10.0.0.1:8301", "failed", "client", "0.1.0", "2", "dc1", "default", "<default>"]
        );
    }

    #[test]
    fn ipv6_addresses_get_brackets() {
        let mut m = member("s1", "consul", 1);
        m.addr = "::1".into();
        assert_eq!(address(&m), "[::1]:8301");
    }
}
