//! `sekisho keyring`: gossip encryption keys across the LAN pool, over
//! `/v1/operator/keyring` (Consul's `consul keyring`, same flags and output).

use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::http::HttpArgs;
use super::output::Output;
use crate::client::{Client, KeyringResponse};

const LONG_ABOUT: &str = "\
Manages the gossip encryption keys of every member of the cluster. Exactly one action is
required. A key is rotated in three steps, each confirmed by every live member before the
next: -install (every member can decrypt with the new key), -use (every member encrypts
with it), -remove (the old key goes). A member that refuses or does not answer makes the
step fail with its name and reason; run the step again once it is back.

Changes are saved in each agent's <data_dir>/serf/local.keyring (unless
disable_keyring_file), which wins over the `encrypt` configuration key at the next start.";

const EXAMPLES: &str = "\
Examples:
  $ sekisho keyring -install=T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=
  ==> Installing new gossip encryption key...
  $ sekisho keyring -use=T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=
  ==> Changing primary gossip encryption key...
  $ sekisho keyring -remove=5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=
  ==> Removing gossip encryption key...
  $ sekisho keyring -list
  ==> Gathering installed encryption keys...

  dc1 (LAN):
    T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s= [3/3]";

/// `sekisho keyring`
#[derive(Args, Debug)]
#[command(
    about = "Manages gossip layer encryption keys",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    group(ArgGroup::new("action").required(true).multiple(false)
        .args(["install", "use_key", "remove", "list", "list_primary"])),
    group(ArgGroup::new("listing").multiple(false).args(["list", "list_primary"])),
)]
pub(crate) struct KeyringArgs {
    /// Install a new key on every member (it decrypts; the primary still encrypts)
    #[arg(long, value_name = "KEY")]
    install: Option<String>,
    /// Make an installed key the primary one (it encrypts from now on)
    #[arg(long = "use", value_name = "KEY")]
    use_key: Option<String>,
    /// Remove a key that is not primary from every member
    #[arg(long, value_name = "KEY")]
    remove: Option<String>,
    /// List the installed keys with how many members hold each
    #[arg(long)]
    list: bool,
    /// List the primary keys with how many members use each
    #[arg(long = "list-primary")]
    list_primary: bool,
    /// With -list or -list-primary: only this agent's keys
    #[arg(long = "local-only", requires = "listing")]
    local_only: bool,
    /// Accepted for Consul compatibility (0-5); answers come back directly
    #[arg(long = "relay-factor", value_name = "N", value_parser = clap::value_parser!(u8).range(0..=5))]
    relay_factor: Option<u8>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Runs the one action.
pub(crate) async fn run(args: &KeyringArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let relay = args.relay_factor;
    if args.list || args.list_primary {
        let what = if args.list_primary { "primary encryption keys" } else { "encryption keys" };
        out.line(format!("==> Gathering installed {what}..."))?;
        let pools = client.keyring_list(args.local_only, relay).await?;
        for pool in &pools {
            out.line(render(pool, args.list_primary))?;
        }
    } else if let Some(key) = &args.install {
        out.line("==> Installing new gossip encryption key...")?;
        client.keyring_install(key, relay).await?;
    } else if let Some(key) = &args.use_key {
        out.line("==> Changing primary gossip encryption key...")?;
        client.keyring_use(key, relay).await?;
    } else if let Some(key) = &args.remove {
        out.line("==> Removing gossip encryption key...")?;
        client.keyring_remove(key, relay).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Consul's block for one pool: a blank line, `dc1 (LAN):`, member messages, then
/// `  <key> [holders/members]`.
fn render(pool: &KeyringResponse, primary: bool) -> String {
    let name = if pool.wan { "WAN".to_owned() } else { format!("{} (LAN)", pool.datacenter) };
    let mut text = format!("\n{name}:\n");
    for (node, message) in &pool.messages {
        text.push_str(&format!("  ===> {node}: {message}\n"));
    }
    let keys = if primary { &pool.primary_keys } else { &pool.keys };
    for (key, n) in keys {
        text.push_str(&format!("  {key} [{n}/{}]\n", pool.num_nodes));
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_pool_renders_in_consuls_layout() {
        let pool = KeyringResponse {
            datacenter: "dc1".into(),
            keys: BTreeMap::from([("a=".into(), 3), ("b=".into(), 2)]),
            primary_keys: BTreeMap::from([("a=".into(), 3)]),
            num_nodes: 3,
            ..KeyringResponse::default()
        };
        assert_eq!(render(&pool, false), "\ndc1 (LAN):\n  a= [3/3]\n  b= [2/3]");
        assert_eq!(render(&pool, true), "\ndc1 (LAN):\n  a= [3/3]");
        let failed = KeyringResponse { messages: BTreeMap::from([("n2".into(), "timeout".into())]), ..pool };
        assert!(render(&failed, true).contains("\n  ===> n2: timeout\n  a= [3/3]"));
    }
}
