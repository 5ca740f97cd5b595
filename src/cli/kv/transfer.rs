//! `kv export` and `kv import`: Consul's JSON transfer format.
//!
//! ```text
//! [
//!     {
//!         "key": "redis/config/connections",
//!         "flags": 0,
//!         "value": "NQ=="
//!     }
//! ]
//! ```
//! Shown here with spaces, the output is tab-indented like Go's
//! `json.MarshalIndent(v, "", "\t")`, with `<`, `>` and `&` escaped as Go does, so exports
//! are byte-identical to Consul's.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::normalize_key;
use crate::cli::output::Output;
use crate::client::{Client, KvEntry};

/// `kv export`
#[derive(Args, Debug)]
#[command(
    about = "Export a tree from the KV store as JSON",
    long_about = "Print every key under PREFIX (all keys without one) as a JSON array of \
        {\"key\", \"flags\", \"value\"} objects, values base64-encoded: the input format of \
        `kv import`.",
    after_long_help = "Examples:\n  $ sekisho kv export redis/ > redis.json\n  \
        $ sekisho kv export -http-addr=10.0.0.1:8500 | sekisho kv import -"
)]
pub(crate) struct ExportArgs {
    /// Only keys under this prefix
    #[arg(value_name = "PREFIX")]
    prefix: Option<String>,
}

/// `kv import`
#[derive(Args, Debug)]
#[command(
    about = "Import a tree into the KV store from JSON",
    long_about = "Write every entry of a `kv export` JSON array. DATA is the JSON itself, `@path` \
        to read a file, or `-` to read stdin. Entries are validated before anything is written.",
    after_long_help = "Examples:\n  $ sekisho kv import @redis.json\n  Imported: redis/config/connections\n  \
        $ sekisho kv export redis/ | sekisho kv import -prefix=backup -"
)]
pub(crate) struct ImportArgs {
    /// The JSON array, @file or - for stdin
    #[arg(value_name = "DATA", allow_hyphen_values = true)]
    data: String,
    /// Prepend this prefix (joined with `/`) to every imported key
    #[arg(long, value_name = "PREFIX", default_value = "")]
    prefix: String,
}

/// One exported key, spelled as Consul spells it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ExportEntry {
    key: String,
    flags: u64,
    value: String,
}

pub(super) async fn export(args: ExportArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let prefix = normalize_key(args.prefix.as_deref());
    let entries = client.kv_list(prefix).await?;
    out.line(render_export(&entries)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn import(args: ImportArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let data = read_data(&args.data)?;
    let entries: Vec<ExportEntry> = serde_json::from_slice(&data).context("parsing the import data")?;
    let mut decoded = Vec::with_capacity(entries.len());
    for entry in entries {
        let value = STANDARD
            .decode(&entry.value)
            .with_context(|| format!("decoding the base64 value of key {}", entry.key))?;
        decoded.push((join_prefix(&args.prefix, &entry.key), entry.flags, value));
    }
    for (key, flags, value) in decoded {
        client.kv_put(&key, value, Some(flags), None).await.with_context(|| format!("writing key {key}"))?;
        out.line(format!("Imported: {key}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The export document for `entries`, without a trailing newline.
fn render_export(entries: &[KvEntry]) -> anyhow::Result<String> {
    let list: Vec<ExportEntry> = entries
        .iter()
        .map(|e| ExportEntry { key: e.key.clone(), flags: e.flags, value: STANDARD.encode(e.value_bytes()) })
        .collect();
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, formatter);
    list.serialize(&mut serializer)?;
    Ok(go_html_escape(&String::from_utf8(buf)?))
}

/// Go's encoder escapes these inside strings; in JSON text they only occur inside strings.
fn go_html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn join_prefix(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}/{}", key.trim_start_matches('/')) }
}

/// A data argument as Consul reads it: `@path` is a file, `-` is stdin, anything else is
/// the data itself.
pub(super) fn read_data(arg: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read(path).with_context(|| format!("Failed to read file {path:?}"));
    }
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("Failed to read stdin")?;
        return Ok(buf);
    }
    Ok(arg.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_is_tab_indented_like_consul() {
        let entries =
            [KvEntry { key: "a<b".into(), flags: 42, value: Some(b"5".to_vec()), ..KvEntry::default() }];
        let expected =
            "[\n\t{\n\t\t\"key\": \"a\\u003cb\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"NQ==\"\n\t}\n]";
        assert_eq!(render_export(&entries).unwrap(), expected);
        assert_eq!(render_export(&[]).unwrap(), "[]");
    }

    #[test]
    fn escaped_export_parses_back() {
        let text = "[{\"key\": \"a\\u0026b\", \"flags\": 1, \"value\": \"\"}]";
        let parsed: Vec<ExportEntry> = serde_json::from_str(text).unwrap();
        assert_eq!(parsed[0].key, "a&b");
    }

    #[test]
    fn prefixes_join_with_one_slash() {
        assert_eq!(join_prefix("", "a/b/"), "a/b/");
        assert_eq!(join_prefix("backup/", "a"), "backup/a");
        assert_eq!(join_prefix("backup", "/a"), "backup/a");
    }

    #[test]
    fn data_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v");
        std::fs::write(&file, b"\x00bin").unwrap();
        assert_eq!(read_data(&format!("@{}", file.display())).unwrap(), b"\x00bin");
        assert_eq!(read_data("plain").unwrap(), b"plain");
        assert_eq!(read_data("-x").unwrap(), b"-x");
        assert!(read_data("@/definitely/not/here").is_err());
    }
}
