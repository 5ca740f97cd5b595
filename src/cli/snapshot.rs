//! `sekisho snapshot save|restore|inspect`: point-in-time archives of the servers' state.
//!
//! The archive layout is documented in [`crate::server::operator::archive`]. `save` writes
//! to a temporary file next to the target, verifies it, fsyncs it and renames it into place,
//! so a crash never leaves a half-written archive under the requested name.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;

use super::http::HttpArgs;
use super::output::{Output, tab_align};
use crate::client::Client;
use crate::server::operator::archive::{self, Archive, TableStat};

/// `sekisho snapshot …`
#[derive(Args, Debug)]
#[command(
    about = "Save, restore and inspect snapshots of the servers' state",
    long_about = "Save, restore and inspect atomic, point-in-time snapshots of the state of the \
        servers: key/value entries, the catalog, sessions and the autopilot configuration. \
        Snapshots contain every secret stored in the cluster; keep them safe.",
    after_long_help = "Examples:\n  $ sekisho snapshot save backup.snap\n  \
        Saved and verified snapshot to index 8419\n  $ sekisho snapshot restore backup.snap\n  \
        Restored snapshot\n  $ sekisho snapshot inspect backup.snap"
)]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    pub(crate) command: SnapshotCommand,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// The snapshot subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum SnapshotCommand {
    #[command(
        about = "Save a snapshot of the servers' state to a file",
        long_about = "Save a snapshot of the servers' state to FILE. The snapshot is read from the \
            leader unless -stale is given, in which case any server may answer (useful when \
            there is no leader). The file is written atomically and verified before the command \
            reports success.",
        after_long_help = "Example:\n  $ sekisho snapshot save backup.snap\n  Saved and verified snapshot to index 8419"
    )]
    Save(FileArg),
    #[command(
        about = "Restore a snapshot file into the servers' state",
        long_about = "Restore the snapshot in FILE: the whole state of every server is replaced by \
            the snapshot's, through Raft, on a live cluster. The file is verified first; a \
            corrupt or truncated file is refused and nothing changes. Blocking queries wake up \
            with a newer index.",
        after_long_help = "Example:\n  $ sekisho snapshot restore backup.snap\n  Restored snapshot"
    )]
    Restore(FileArg),
    #[command(
        about = "Display information about a snapshot file",
        long_about = "Verify the snapshot in FILE and display its ID, size, Raft index and term and \
            format version, then the number and size of its records by kind. Needs no agent.",
        after_long_help = "Example:\n  $ sekisho snapshot inspect backup.snap\n   \
            ID           2-12-1761000000000\n   Size         1204\n   Index        12\n   \
            Term         2\n   Version      1"
    )]
    Inspect(FileArg),
}

/// A snapshot file argument.
#[derive(Args, Debug)]
pub(crate) struct FileArg {
    /// The snapshot file
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Runs a snapshot command.
pub(crate) async fn run(args: SnapshotArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    match args.command {
        SnapshotCommand::Save(f) => save(&f.file, &args.http.client()?, out).await,
        SnapshotCommand::Restore(f) => restore(&f.file, &args.http.client()?, out).await,
        SnapshotCommand::Inspect(f) => inspect(&f.file, out),
    }
}

async fn save(file: &Path, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = "/v1/snapshot";
    let r = client.request(Method::GET, path, None).await?.error_for_status().context("saving snapshot")?;
    let index = archive::decode(&r.body).context("the agent sent an invalid snapshot")?.meta.index;
    write_atomically(file, &r.body).with_context(|| format!("writing {}", file.display()))?;
    out.line(format!("Saved and verified snapshot to index {index}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to a temporary file in the same directory, reads it back and verifies it, fsyncs,
/// renames it over `file` and fsyncs the directory.
fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().context("the snapshot path names no file")?.to_string_lossy().into_owned();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut f = std::fs::File::create(&tmp).context("creating the temporary file")?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        let written = std::fs::read(&tmp)?;
        archive::decode(&written).context("verifying the written file")?;
        std::fs::rename(&tmp, file)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_archive(file: &Path) -> anyhow::Result<(Vec<u8>, Archive)> {
    let bytes = std::fs::read(file).with_context(|| format!("opening snapshot file {}", file.display()))?;
    let archive =
        archive::decode(&bytes).with_context(|| format!("verifying snapshot file {}", file.display()))?;
    Ok((bytes, archive))
}

async fn restore(file: &Path, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (bytes, _) = read_archive(file)?;
    client
        .request(Method::PUT, "/v1/snapshot", Some(bytes))
        .await?
        .error_for_status()
        .context("restoring snapshot")?;
    out.line("Restored snapshot")?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &Path, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (_, a) = read_archive(file)?;
    let rows = [
        (" ID", a.meta.id.clone()),
        (" Size", a.size.to_string()),
        (" Index", a.meta.index.to_string()),
        (" Term", a.meta.term.to_string()),
        (" Version", a.meta.version.to_string()),
    ];
    out.line(tab_align(&rows))?;
    out.line("")?;
    out.line(stats_table(&archive::table_stats(&a.store), a.size))?;
    out.line("")?;
    let extra = [
        (" Created", a.meta.created_at.clone()),
        (" Datacenter", a.meta.datacenter.clone()),
        (" Node", a.meta.node.clone()),
        (" Sekisho Version", a.meta.sekisho_version.clone()),
    ];
    out.line(tab_align(&extra))?;
    Ok(ExitCode::SUCCESS)
}

/// Consul's `Type  Count  Size` table (columns padded by six, like its tabwriter).
fn stats_table(stats: &[TableStat], total: usize) -> String {
    let dash = || "----".to_owned();
    let mut rows = vec![
        [" Type".to_owned(), "Count".to_owned(), "Size".to_owned()],
        [format!(" {}", dash()), dash(), dash()],
    ];
    for s in stats {
        rows.push([format!(" {}", s.name), s.count.to_string(), byte_size(s.size as u64)]);
    }
    rows.push([format!(" {}", dash()), dash(), dash()]);
    rows.push([" Total".to_owned(), String::new(), byte_size(total as u64)]);
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(2) + 6;
    let (w0, w1) = (width(0), width(1));
    rows.iter().map(|r| format!("{:<w0$}{:<w1$}{}", r[0], r[1], r[2])).collect::<Vec<_>>().join("\n")
}

/// Consul's `ByteSize`: `0`, `344B`, `1.7KB`, `5KB`, `2.1MB`.
fn byte_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    if bytes == 0 {
        return "0".into();
    }
    let (value, unit) = UNITS
        .iter()
        .find(|(size, _)| bytes >= *size)
        .map_or((bytes as f64, "B"), |(size, unit)| (bytes as f64 / *size as f64, *unit));
    let text = format!("{value:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_read_like_consuls() {
        assert_eq!(byte_size(0), "0");
        assert_eq!(byte_size(344), "344B");
        assert_eq!(byte_size(1741), "1.7KB");
        assert_eq!(byte_size(5120), "5KB");
    }

    #[test]
    fn the_stats_table_aligns_columns() {
        let stats = [TableStat { name: "KVEntry", count: 3, size: 1741 }];
        assert_eq!(
            stats_table(&stats, 5120),
            " Type         Count      Size\n ----         ----       ----\n KVEntry      3          1.7KB\n \
             ----         ----       ----\n Total                   5KB"
        );
    }
}
