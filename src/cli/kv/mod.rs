//! `sekisho kv get|put|delete|export|import|sync`: the key-value store, with Consul's texts.
//!
//! `get`, `put` and `delete` live here; `export` and `import` (the JSON transfer format) in
//! [`transfer`]; `sync` (a directory mirrored to a prefix) in [`sync`]. Keys may be given
//! with a leading `/`, which is stripped as Consul does.

mod sync;
mod transfer;

use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};

use super::http::HttpArgs;
use super::output::{Output, tab_align};
use crate::client::{Client, KvEntry};

/// `sekisho kv …`
#[derive(Args, Debug)]
#[command(
    about = "Interact with the key-value store",
    long_about = "Interact with the key-value store: read, write, delete, export and import keys, and \
        mirror a directory to a prefix (sync).",
    after_long_help = "Examples:\n  $ sekisho kv put redis/config/connections 5\n  \
        $ sekisho kv get -recurse redis/\n  $ sekisho kv export redis/ > redis.json"
)]
pub(crate) struct KvArgs {
    #[command(subcommand)]
    pub(crate) command: KvCommand,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// The kv subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum KvCommand {
    Get(GetArgs),
    Put(PutArgs),
    Delete(DeleteArgs),
    Export(transfer::ExportArgs),
    Import(transfer::ImportArgs),
    Sync(sync::SyncArgs),
}

/// `kv get`
#[derive(Args, Debug)]
#[command(
    about = "Retrieve or list data",
    long_about = "Retrieve the value of KEY and print it followed by a newline. With -recurse, print \
        `key:value` for every key under the prefix; with -keys, print the key names under the \
        prefix, folded at -separator. A missing key is an error (exit 1).",
    after_long_help = "Examples:\n  $ sekisho kv get redis/config/connections\n  5\n  \
        $ sekisho kv get -recurse redis/\n  redis/config/connections:5\n  redis/config/cpu:128\n  \
        $ sekisho kv get -keys redis/\n  redis/config/\n  \
        $ sekisho kv get -detailed redis/config/cpu"
)]
pub(crate) struct GetArgs {
    /// The key (or prefix, with -recurse or -keys)
    #[arg(value_name = "KEY")]
    key: Option<String>,
    /// Print every key under KEY as `key:value`
    #[arg(long)]
    recurse: bool,
    /// List key names under KEY instead of values
    #[arg(long)]
    keys: bool,
    /// With -keys, fold keys at this separator ("" lists every key)
    #[arg(long, default_value = "/", value_name = "SEP")]
    separator: String,
    /// Print the entry's metadata (indexes, flags, session) with the value
    #[arg(long)]
    detailed: bool,
    /// Print values base64-encoded
    #[arg(long)]
    base64: bool,
}

/// `kv put`
#[derive(Args, Debug)]
#[command(
    about = "Set or update data",
    long_about = "Write VALUE to KEY. VALUE may be literal text, `@path` to read a file, or `-` to \
        read stdin; without VALUE the key is written empty. With -cas, the write happens only \
        if the key's ModifyIndex is still -modify-index (0: only if the key does not exist).",
    after_long_help = "Examples:\n  $ sekisho kv put redis/config/connections 5\n  \
        Success! Data written to: redis/config/connections\n  \
        $ sekisho kv put -flags=42 redis/config/cert @cert.pem\n  \
        $ echo 5 | sekisho kv put redis/config/connections -\n  \
        $ sekisho kv put -cas -modify-index=123 redis/config/connections 6"
)]
pub(crate) struct PutArgs {
    /// The key to write
    #[arg(value_name = "KEY")]
    key: String,
    /// The value: text, @file or - for stdin
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    value: Option<String>,
    /// Opaque unsigned integer stored with the key
    #[arg(long, value_name = "N")]
    flags: Option<u64>,
    /// Check-and-set: write only if the key's ModifyIndex equals -modify-index
    #[arg(long)]
    cas: bool,
    /// The ModifyIndex expected by -cas
    #[arg(long = "modify-index", value_name = "N", default_value_t = 0)]
    modify_index: u64,
    /// VALUE is base64-encoded; decode it before writing
    #[arg(long)]
    base64: bool,
}

/// `kv delete`
#[derive(Args, Debug)]
#[command(
    about = "Remove data",
    long_about = "Delete KEY, or with -recurse every key under the prefix. With -cas, delete only \
        if the key's ModifyIndex is still -modify-index.",
    after_long_help = "Examples:\n  $ sekisho kv delete redis/config/connections\n  \
        Success! Deleted key: redis/config/connections\n  $ sekisho kv delete -recurse redis/\n  \
        Success! Deleted keys with prefix: redis/"
)]
pub(crate) struct DeleteArgs {
    /// The key (or prefix, with -recurse)
    #[arg(value_name = "KEY")]
    key: Option<String>,
    /// Delete every key under KEY
    #[arg(long)]
    recurse: bool,
    /// Check-and-set: delete only if the key's ModifyIndex equals -modify-index
    #[arg(long)]
    cas: bool,
    /// The ModifyIndex expected by -cas
    #[arg(long = "modify-index", value_name = "N", default_value_t = 0)]
    modify_index: u64,
}

/// Runs one kv subcommand.
pub(crate) async fn run(command: KvCommand, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        KvCommand::Get(args) => get(args, client, out).await,
        KvCommand::Put(args) => put(args, client, out).await,
        KvCommand::Delete(args) => delete(args, client, out).await,
        KvCommand::Export(args) => transfer::export(args, client, out).await,
        KvCommand::Import(args) => transfer::import(args, client, out).await,
        KvCommand::Sync(args) => sync::run(args, client, out).await,
    }
}

/// Consul accepts `/foo` for `foo`: keys never start with a slash.
fn normalize_key(key: Option<&str>) -> &str {
    let key = key.unwrap_or_default();
    key.strip_prefix('/').unwrap_or(key)
}

/// Prints a Consul-style `Error! …` line and returns exit code 1.
fn fail(out: &mut Output, message: &str) -> anyhow::Result<ExitCode> {
    out.error(message)?;
    Ok(ExitCode::FAILURE)
}

async fn get(args: GetArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let key = normalize_key(args.key.as_deref());
    if key.is_empty() && !(args.recurse || args.keys) {
        return fail(out, "Error! Missing KEY argument");
    }
    if args.keys {
        for name in client.kv_keys(key, Some(&args.separator)).await? {
            out.line(name)?;
        }
    } else if args.recurse {
        let entries = client.kv_list(key).await?;
        for (i, entry) in entries.iter().enumerate() {
            if args.detailed {
                out.line(detailed(entry, args.base64))?;
                if i + 1 < entries.len() {
                    out.line("")?;
                }
            } else {
                let mut line = format!("{}:", entry.key).into_bytes();
                line.extend(value_bytes(entry, args.base64));
                out.line(line)?;
            }
        }
    } else {
        let Some(entry) = client.kv_get(key).await? else {
            return fail(out, &format!("Error! No key exists at: {key}"));
        };
        if args.detailed {
            out.line(detailed(&entry, args.base64))?;
        } else {
            out.line(value_bytes(&entry, args.base64))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn value_bytes(entry: &KvEntry, base64: bool) -> Vec<u8> {
    if base64 { STANDARD.encode(entry.value_bytes()).into_bytes() } else { entry.value_bytes().to_vec() }
}

/// Consul's `-detailed` block: aligned `CreateIndex … Value` lines.
fn detailed(entry: &KvEntry, base64: bool) -> String {
    let session = entry.session.as_deref().filter(|s| !s.is_empty()).unwrap_or("-");
    let value = String::from_utf8_lossy(&value_bytes(entry, base64)).into_owned();
    tab_align(&[
        ("CreateIndex", entry.create_index.to_string()),
        ("Flags", entry.flags.to_string()),
        ("Key", entry.key.clone()),
        ("LockIndex", entry.lock_index.to_string()),
        ("ModifyIndex", entry.modify_index.to_string()),
        ("Session", session.to_owned()),
        ("Value", value),
    ])
}

async fn put(args: PutArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let key = normalize_key(Some(&args.key)).to_owned();
    if key.is_empty() {
        return fail(out, "Error! Missing KEY argument");
    }
    let mut value = transfer::read_data(args.value.as_deref().unwrap_or_default())?;
    if args.base64 {
        value = STANDARD.decode(&value).context("decoding the base64 VALUE")?;
    }
    let cas = args.cas.then_some(args.modify_index);
    let written = client.kv_put(&key, value, args.flags, cas).await?;
    if !written {
        return fail(out, &format!("Error! Did not write to {key}: CAS failed"));
    }
    out.line(format!("Success! Data written to: {key}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: DeleteArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let key = normalize_key(args.key.as_deref());
    if let Some(problem) = delete_usage_problem(key, &args) {
        return fail(out, problem);
    }
    if args.recurse {
        client.kv_delete(key, true).await?;
        out.line(format!("Success! Deleted keys with prefix: {key}"))?;
    } else if args.cas {
        if !client.kv_delete_cas(key, args.modify_index).await? {
            return fail(out, &format!("Error! Did not delete key {key}: CAS failed"));
        }
        out.line(format!("Success! Deleted key: {key}"))?;
    } else {
        client.kv_delete(key, false).await?;
        out.line(format!("Success! Deleted key: {key}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The flag combinations Consul's `kv delete` refuses, with its texts.
fn delete_usage_problem(key: &str, args: &DeleteArgs) -> Option<&'static str> {
    if key.is_empty() && !args.recurse {
        Some("Error! Missing KEY argument")
    } else if args.cas && args.modify_index == 0 {
        Some("Must specify -modify-index with -cas!")
    } else if args.modify_index != 0 && !args.cas {
        Some("Cannot specify -modify-index without -cas!")
    } else if args.recurse && args.cas {
        Some("Cannot specify both -cas and -recurse!")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detailed_block_matches_consul_layout() {
        let entry = KvEntry {
            create_index: 5,
            modify_index: 7,
            key: "redis/config/cpu".into(),
            value: Some(b"128".to_vec()),
            ..KvEntry::default()
        };
        let expected = "\
CreateIndex      5
Flags            0
Key              redis/config/cpu
LockIndex        0
ModifyIndex      7
Session          -
Value            128";
        assert_eq!(detailed(&entry, false), expected);
        assert!(detailed(&entry, true).ends_with("Value            MTI4"));
    }

    #[test]
    fn leading_slash_is_stripped() {
        assert_eq!(normalize_key(Some("/a/b")), "a/b");
        assert_eq!(normalize_key(None), "");
    }
}
