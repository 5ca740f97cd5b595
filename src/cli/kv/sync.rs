//! `kv sync status|push|pull [-watch] DIR`: Fileconsul-style file sharing through a KV prefix.
//!
//! ```text
//!  DIR/a/b.sh (0755, 120 B) ──push──► files/a/b.sh         value: the bytes, Flags: 0o755
//!                                     files/.meta/a/b.sh   {"Mode":493,"SHA256":"…","Size":120}
//!  DIR/a/b.sh ◄──pull── (atomic: temp file in the same directory, chmod, rename)
//! ```
//!
//! One pass: [`scan`] DIR (never following symlinks, in [`local`]) and [`list_remote`] the
//! prefix, compare them with [`diff`] (pure, in [`plan`]), then apply one side: the push
//! side as `/v1/txn` batches of at most [`plan::MAX_TXN_OPS`] operations with
//! check-and-set indexes, the pull side as file writes after every key has been
//! validated. `-watch` repeats this with a blocking query as the clock and a three-way
//! [`merge`] against the last synced state, in which KV wins.

mod local;
mod plan;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use self::local::{HashCache, file_mode, scan, write_atomic};
use self::plan::{
    Change, Changes, FileState, Files, Meta, Plan, batches, diff, merge, normalize_prefix, restore, set,
    unsafe_reason,
};
use crate::cli::output::Output;
use crate::client::url::{append_param, escape_path};
use crate::client::{Client, KvEntry};

/// The sub-prefix that holds the metadata records.
const META_DIR: &str = ".meta/";
/// The agents' default `limits.kv_max_value_size` and `limits.txn_max_req_len`.
const DEFAULT_LIMIT: u64 = 512 * 1024;
/// Exit code of `status` when DIR and the prefix differ.
const DIFFERENT: u8 = 3;

const LONG_ABOUT: &str = "Share a directory tree through the KV store, like Fileconsul.

Every regular file DIR/<path> is stored under the prefix (default files/) in two keys:
  <prefix><path>        the file's bytes; the entry's Flags hold its mode bits (0o755 = 493)
  <prefix>.meta/<path>  {\"Mode\":493,\"SHA256\":\"<hex>\",\"Size\":<bytes>}, written in the same
                        transaction as the content
The content key and its Flags are authoritative: files are compared by SHA-256 of the
content and by mode. The .meta record is derived, for other readers; a stale one is
rewritten by the next push. A top-level DIR/.meta directory is therefore reserved.

status  prints what `push` and what `pull` would do (push: added a/b.sh, pull: deleted
        old.txt, ...), or `In sync`; exit 0 in sync, 3 when they differ.
push    makes the prefix equal to DIR: adds, modifies and deletes keys in /v1/txn batches
        of at most 64 operations, each write checked against the index it was compared
        with, so a concurrent change stops the push instead of being overwritten.
pull    makes DIR equal to the prefix: atomic writes (temp file + rename) with modes
        restored, deletions of files gone from KV, empty directories removed.

Safety: symlinks are never followed (skipped with a warning); a key that would land
outside DIR (`..`, absolute, NUL, empty segment, or through a symlinked directory) stops
the pull before anything is written; a file over the agent's kv_max_value_size stops the
push before anything is written.

-watch (push and pull) first does the push or pull, then keeps both sides in sync: a
blocking query on the prefix brings remote changes at once, and DIR is rescanned every
-interval (a file whose mtime, size and mode are unchanged is not re-read). When a file
changed on both sides since the last sync, KV wins. Stop it with Ctrl-C.

A file too large for one transaction once base64-encoded (over about 3/4 of the agent's
txn_max_req_len) is written with its own check-and-set PUT before the batches.

Exit codes: 0 success (status: in sync), 1 error, 2 usage error, 3 status found differences.";

const EXAMPLES: &str = "Examples:
  $ sekisho kv sync status ./shared
  push: added bin/deploy.sh
  pull: deleted bin/deploy.sh
  $ sekisho kv sync push ./shared
  push: added bin/deploy.sh
  $ sekisho kv sync pull -prefix=teams/web/files/ /etc/web
  pull: modified nginx.conf
  $ sekisho kv sync pull -watch -interval=5s -http-addr=10.0.0.1:8500 /etc/web";

/// `kv sync`
#[derive(Args, Debug)]
#[command(
    about = "Mirror a directory to a KV prefix (status, push, pull, -watch)",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub(crate) struct SyncArgs {
    #[command(subcommand)]
    action: SyncAction,
}

#[derive(Subcommand, Debug)]
enum SyncAction {
    /// Print what push and pull would change; exit 3 when DIR and the prefix differ
    #[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
    Status(Target),
    /// Make the KV prefix equal to DIR
    #[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
    Push(Transfer),
    /// Make DIR equal to the KV prefix
    #[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
    Pull(Transfer),
}

/// The two sides of a sync.
#[derive(Args, Debug, Clone)]
struct Target {
    /// The KV prefix the files live under (a trailing `/` is added when missing)
    #[arg(long, value_name = "PREFIX", default_value = "files/")]
    prefix: String,
    /// The local directory
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// `push` and `pull` flags.
#[derive(Args, Debug)]
struct Transfer {
    #[command(flatten)]
    target: Target,
    /// After the push or pull, keep DIR and the prefix in sync until Ctrl-C (KV wins conflicts)
    #[arg(long)]
    watch: bool,
    /// With -watch, how often DIR is rescanned (Go duration)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::config::parse_go_duration)]
    interval: Duration,
}

/// The limits of the agent the command talks to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    value: u64,
    txn: u64,
}

impl Limits {
    /// From `/v1/agent/self`, or the defaults when it cannot be read (ACLs may deny it).
    async fn fetch(client: &Client) -> Self {
        let config = client.agent_self().await.ok();
        let read = |name: &str| {
            let v = config.as_ref().and_then(|c| c["DebugConfig"][name].as_u64());
            v.filter(|n| *n > 0).unwrap_or(DEFAULT_LIMIT)
        };
        Self { value: read("KVMaxValueSize"), txn: read("TxnMaxReqLen") }
    }
}

/// One content key under the prefix.
#[derive(Debug)]
struct RemoteFile {
    state: FileState,
    index: u64,
    content: Vec<u8>,
}

/// A key that must not become a file.
#[derive(Debug)]
struct UnsafeKey {
    key: String,
    index: u64,
    reason: &'static str,
}

/// The prefix as listed.
#[derive(Debug, Default)]
struct Remote {
    files: BTreeMap<String, RemoteFile>,
    metas: BTreeMap<String, Vec<u8>>,
    unsafe_keys: Vec<UnsafeKey>,
    index: u64,
}

impl Remote {
    fn from_entries(prefix: &str, entries: Vec<KvEntry>, index: u64) -> Self {
        let mut remote = Remote { index, ..Remote::default() };
        for entry in entries {
            let Some(rel) = entry.key.strip_prefix(prefix).map(str::to_owned) else { continue };
            // `dir/` keys are folder markers (the web UI writes them), not files.
            if rel.is_empty() || rel.ends_with('/') {
                continue;
            }
            let content = entry.value.unwrap_or_default();
            if let Some(path) = rel.strip_prefix(META_DIR) {
                remote.metas.insert(path.to_owned(), content);
            } else if let Some(reason) = unsafe_reason(&rel) {
                remote.unsafe_keys.push(UnsafeKey { key: entry.key, index: entry.modify_index, reason });
            } else {
                // Keys written by hand carry no mode: they become ordinary 0644 files.
                let mode =
                    u32::try_from(entry.flags).ok().filter(|m| (1..=0o7777).contains(m)).unwrap_or(0o644);
                let state = FileState::of(&content, mode);
                remote.files.insert(rel, RemoteFile { state, index: entry.modify_index, content });
            }
        }
        remote
    }

    fn states(&self) -> Files {
        self.files.iter().map(|(p, f)| (p.clone(), f.state.clone())).collect()
    }

    /// Paths whose `.meta` record does not describe their content.
    fn stale_meta(&self) -> BTreeSet<String> {
        let current = |p: &str, s: &FileState| {
            let meta = self.metas.get(p).and_then(|m| serde_json::from_slice::<Meta>(m).ok());
            meta.as_ref() == Some(&s.meta())
        };
        self.files.iter().filter(|(p, f)| !current(p, &f.state)).map(|(p, _)| p.clone()).collect()
    }

    /// Refuses, naming every key, when any key cannot become a file under DIR.
    fn check_safe(&self) -> anyhow::Result<()> {
        if self.unsafe_keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> =
            self.unsafe_keys.iter().map(|k| format!("key {:?}: {}", k.key, k.reason)).collect();
        bail!("refusing to pull, nothing was written: {}", keys.join("; "))
    }
}

/// `GET /v1/kv/<prefix>?recurse`, blocking until the index passes `block.0` (at most
/// `block.1`) when given.
async fn list_remote(
    client: &Client,
    prefix: &str,
    block: Option<(u64, Duration)>,
) -> anyhow::Result<Remote> {
    let mut path = format!("/v1/kv/{}", escape_path(prefix));
    append_param(&mut path, "recurse", None);
    if let Some((index, wait)) = block {
        append_param(&mut path, "index", Some(&index.to_string()));
        append_param(&mut path, "wait", Some(&format!("{}ms", wait.as_millis().max(1))));
    }
    let response = client.request(Method::GET, &path, None).await.context("listing the prefix")?;
    let index = response.index().unwrap_or(0);
    if response.status == StatusCode::NOT_FOUND {
        return Ok(Remote { index, ..Remote::default() });
    }
    let entries: Vec<KvEntry> = response.error_for_status()?.json(&path)?;
    Ok(Remote::from_entries(prefix, entries, index))
}

/// Runs one `kv sync` subcommand.
pub(crate) async fn run(args: SyncArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (target, transfer) = match args.action {
        SyncAction::Status(t) => (t, None),
        SyncAction::Push(t) => (t.target.clone(), Some((true, t))),
        SyncAction::Pull(t) => (t.target.clone(), Some((false, t))),
    };
    let Some(prefix) = normalize_prefix(&target.prefix) else {
        out.error("Error! -prefix must not be empty: a push would then own the whole KV store")?;
        return Ok(ExitCode::from(2));
    };
    let sync = Mirror {
        client,
        prefix,
        dir: target.dir,
        limits: Limits::fetch(client).await,
        warned: RefCell::default(),
    };
    match transfer {
        None => sync.status(out).await,
        Some((push, t)) => {
            if push {
                sync.push(out).await?
            } else {
                sync.pull(out).await?
            };
            if t.watch { sync.watch(t.interval, out).await } else { Ok(ExitCode::SUCCESS) }
        }
    }
}

/// One sync between `dir` and `prefix`.
struct Mirror<'a> {
    client: &'a Client,
    prefix: String,
    dir: PathBuf,
    limits: Limits,
    /// Warnings already printed (a `-watch` scan repeats them every round).
    warned: RefCell<BTreeSet<String>>,
}

impl Mirror<'_> {
    fn scan_dir(&self, cache: &mut HashCache, out: &mut Output) -> anyhow::Result<Files> {
        if !self.dir.is_dir() {
            bail!("{} is not a directory", self.dir.display());
        }
        let local = scan(&self.dir, cache)?;
        for warning in local.warnings {
            if self.warned.borrow_mut().insert(warning.clone()) {
                out.error(format!("Warning: {warning}"))?;
            }
        }
        Ok(local.files)
    }

    async fn status(&self, out: &mut Output) -> anyhow::Result<ExitCode> {
        let local = self.scan_dir(&mut HashCache::new(), out)?;
        let remote = list_remote(self.client, &self.prefix, None).await?;
        let plan = diff(&local, &remote.states(), &remote.stale_meta());
        print_changes(out, "push", &plan.push)?;
        for k in &remote.unsafe_keys {
            out.line(format!("push: deleted {}", &k.key[self.prefix.len()..]))?;
        }
        print_changes(out, "pull", &plan.pull)?;
        for k in &remote.unsafe_keys {
            out.line(format!("pull: refused key {:?}: {}", k.key, k.reason))?;
        }
        if plan == Plan::default() && remote.unsafe_keys.is_empty() {
            out.line("In sync")?;
            return Ok(ExitCode::SUCCESS);
        }
        Ok(ExitCode::from(DIFFERENT))
    }

    async fn push(&self, out: &mut Output) -> anyhow::Result<()> {
        let local = self.scan_dir(&mut HashCache::new(), out)?;
        let remote = list_remote(self.client, &self.prefix, None).await?;
        let plan = diff(&local, &remote.states(), &remote.stale_meta());
        let mut ops = Vec::new();
        for k in &remote.unsafe_keys {
            ops.push(vec![json!({"KV": {"Verb": "delete-cas", "Key": k.key, "Index": k.index}})]);
        }
        // Orphaned records (no content key) go too: the prefix then describes DIR exactly.
        for path in remote.metas.keys().filter(|p| !remote.files.contains_key(*p) && !local.contains_key(*p))
        {
            ops.push(vec![json!({"KV": {"Verb": "delete", "Key": self.meta_key(path)}})]);
        }
        self.push_changes(&remote, &plan.push, ops, out).await?;
        let mut done = plan.push;
        done.extend(
            remote.unsafe_keys.iter().map(|k| (k.key[self.prefix.len()..].to_owned(), Change::Deleted)),
        );
        finish(out, "push", &done)
    }

    async fn pull(&self, out: &mut Output) -> anyhow::Result<()> {
        let remote = list_remote(self.client, &self.prefix, None).await?;
        remote.check_safe()?;
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let local = self.scan_dir(&mut HashCache::new(), out)?;
        let plan = diff(&local, &remote.states(), &BTreeSet::new());
        self.pull_changes(&remote, &plan.pull, out)?;
        finish(out, "pull", &plan.pull)
    }

    fn meta_key(&self, path: &str) -> String {
        format!("{}{META_DIR}{path}", self.prefix)
    }

    /// Applies `changes` (and the `extra` operation groups) to KV. Every file is read and
    /// checked against the value limit before the first write.
    async fn push_changes(
        &self,
        remote: &Remote,
        changes: &Changes,
        mut groups: Vec<Vec<Value>>,
        out: &mut Output,
    ) -> anyhow::Result<()> {
        let mut contents = BTreeMap::new();
        for (path, change) in changes.iter().filter(|(_, c)| *c != Change::Deleted) {
            let file = self.dir.join(path);
            let content = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mode = file_mode(&std::fs::symlink_metadata(&file)?);
            contents.insert(path.clone(), (FileState::of(&content, mode), content, *change));
        }
        self.check_sizes(&contents)?;
        let mut large = Vec::new();
        let budget = usize::try_from(self.limits.txn).unwrap_or(usize::MAX).saturating_sub(4096).max(4096);
        for (path, change) in changes {
            let key = format!("{}{path}", self.prefix);
            let index = remote.files.get(path).map_or(0, |f| f.index);
            let Some((state, content, _)) = contents.remove(path) else {
                groups.push(vec![
                    json!({"KV": {"Verb": "delete-cas", "Key": key, "Index": index}}),
                    json!({"KV": {"Verb": "delete", "Key": self.meta_key(path)}}),
                ]);
                continue;
            };
            let meta = serde_json::to_vec(&state.meta())?;
            let mut group = vec![
                json!({"KV": {"Verb": "set", "Key": self.meta_key(path), "Value": STANDARD.encode(meta)}}),
            ];
            let unchanged = remote.files.get(path).is_some_and(|f| f.state == state);
            let set = json!({"KV": {"Verb": "cas", "Key": key, "Value": STANDARD.encode(&content), "Flags": state.mode, "Index": index}});
            if *change == Change::Modified && unchanged {
                // Only the record was stale.
            } else if set.to_string().len() + 1024 > budget {
                // Too big for a transaction: a plain check-and-set PUT, before the batches.
                large.push((key, content, state.mode, index));
            } else {
                group.insert(0, set);
            }
            groups.push(group);
        }
        for (key, content, mode, index) in large {
            let written = self.client.kv_put(&key, content, Some(u64::from(mode)), Some(index)).await?;
            if !written {
                bail!("key {key:?} changed in KV during the push; run `kv sync status` and try again");
            }
        }
        self.send_batches(batches(groups, budget), out).await
    }

    fn check_sizes(&self, contents: &BTreeMap<String, (FileState, Vec<u8>, Change)>) -> anyhow::Result<()> {
        let limit = self.limits.value;
        let big: Vec<String> = contents
            .iter()
            .filter(|(_, (s, _, _))| s.size > limit)
            .map(|(p, (s, _, _))| format!("{p} is {} bytes", s.size))
            .collect();
        if !big.is_empty() {
            bail!(
                "refusing to push, nothing was written: {} (the KV value limit is {limit} bytes); \
                 split the file into smaller ones or raise limits.kv_max_value_size on the agents",
                big.join(", ")
            );
        }
        Ok(())
    }

    /// Sends the transactions; with more than one, reports `pushed N of M files` after each.
    async fn send_batches(&self, batches: Vec<(Vec<Value>, usize)>, out: &mut Output) -> anyhow::Result<()> {
        let total: usize = batches.iter().map(|(_, files)| files).sum();
        let (count, mut done) = (batches.len(), 0);
        for (batch, files) in batches {
            done += files;
            let body = serde_json::to_vec(&batch)?;
            let response = self.client.request(Method::PUT, "/v1/txn", Some(body)).await?;
            if response.status == StatusCode::CONFLICT {
                let errors: Value = response.json("/v1/txn")?;
                let what: Vec<&str> = errors["Errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["What"].as_str())
                    .collect();
                bail!("KV changed during the push ({}); run `kv sync status` and try again", what.join("; "));
            }
            response.error_for_status()?;
            if count > 1 {
                out.error(format!("pushed {done} of {total} files"))?;
            }
        }
        Ok(())
    }

    /// Applies `changes` to DIR after checking that every write stays inside it.
    fn pull_changes(&self, remote: &Remote, changes: &Changes, out: &mut Output) -> anyhow::Result<()> {
        let deleted: BTreeSet<&str> =
            changes.iter().filter(|(_, c)| *c == Change::Deleted).map(|(p, _)| p.as_str()).collect();
        let mut writes = Vec::new();
        for (path, _) in changes.iter().filter(|(_, c)| *c != Change::Deleted) {
            if self.check_target(remote, path, &deleted)? {
                writes.push(path);
            } else {
                out.error(format!("Warning: not replacing symlink {path}"))?;
            }
        }
        for path in &deleted {
            let file = self.dir.join(path);
            std::fs::remove_file(&file).with_context(|| format!("deleting {}", file.display()))?;
            self.prune_empty_parents(path);
        }
        for path in writes {
            let file = &remote.files[path.as_str()];
            let target = self.dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            write_atomic(&target, &file.content, file.state.mode)
                .with_context(|| format!("writing {}", target.display()))?;
        }
        Ok(())
    }

    /// Refuses a key whose file would be written through a symlink or below another file;
    /// `false` when the target itself is a symlink (skipped).
    fn check_target(&self, remote: &Remote, path: &str, deleted: &BTreeSet<&str>) -> anyhow::Result<bool> {
        let key = format!("{}{path}", self.prefix);
        let segments: Vec<&str> = path.split('/').collect();
        for n in 1..segments.len() {
            let ancestor = segments[..n].join("/");
            if remote.files.contains_key(&ancestor) {
                bail!(
                    "refusing to pull, nothing was written: key {key:?} needs {ancestor} to be a directory, but key \"{}{ancestor}\" is a file",
                    self.prefix
                );
            }
            match std::fs::symlink_metadata(self.dir.join(&ancestor)) {
                Ok(m) if m.is_symlink() => bail!(
                    "refusing to pull, nothing was written: key {key:?} would be written through the symlink {ancestor}, which may leave DIR"
                ),
                Ok(m) if !m.is_dir() && !deleted.contains(ancestor.as_str()) => {
                    bail!(
                        "refusing to pull, nothing was written: key {key:?} needs {ancestor} to be a directory, but it is a file"
                    )
                }
                _ => {}
            }
        }
        let is_link = std::fs::symlink_metadata(self.dir.join(path)).is_ok_and(|m| m.is_symlink());
        Ok(!is_link)
    }

    /// Removes the directories a deletion left empty, up to (not including) DIR.
    fn prune_empty_parents(&self, path: &str) {
        let mut rel = Path::new(path);
        while let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            if std::fs::remove_dir(self.dir.join(parent)).is_err() {
                break;
            }
            rel = parent;
        }
    }

    /// The `-watch` loop: a blocking query on the prefix (at most `interval` long) paces it;
    /// each round rescans DIR and merges against the last synced state.
    async fn watch(&self, interval: Duration, out: &mut Output) -> anyhow::Result<ExitCode> {
        let mut cache = HashCache::new();
        let mut base = list_remote(self.client, &self.prefix, None).await?;
        let mut synced = base.states();
        self.scan_dir(&mut cache, out)?;
        out.flush()?;
        // One listener for the whole loop, so a Ctrl-C during a round is not lost.
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            let listed = tokio::select! {
                r = list_remote(self.client, &self.prefix, Some((base.index, interval))) => r,
                r = &mut interrupt => return r.map(|()| ExitCode::SUCCESS).context("listening for Ctrl-C"),
            };
            match listed {
                Ok(remote) => {
                    let index = if remote.index < base.index { 0 } else { remote.index };
                    synced = self.watch_round(&remote, &synced, &mut cache, out).await;
                    base = Remote { index, ..remote };
                }
                Err(e) => {
                    out.error(format!("Warning: {e:#}; retrying in {interval:?}"))?;
                    tokio::time::sleep(interval).await;
                }
            }
            out.flush()?;
            if base.index == 0 {
                // No index to block on (an agent that sends none): poll instead of spinning.
                tokio::time::sleep(interval).await;
            }
        }
    }

    /// One merge round; returns the new synced state. Failures are reported and retried
    /// next round (their paths keep the old synced state).
    async fn watch_round(
        &self,
        remote: &Remote,
        synced: &Files,
        cache: &mut HashCache,
        out: &mut Output,
    ) -> Files {
        let local = match self.scan_dir(cache, out) {
            Ok(local) => local,
            Err(e) => {
                let _ = out.error(format!("Warning: {e:#}"));
                return synced.clone();
            }
        };
        let plan = merge(synced, &local, &remote.states());
        let mut next = remote.states();
        let pulled = remote.check_safe().and_then(|()| self.pull_changes(remote, &plan.pull, out));
        let pulled = pulled.and_then(|()| finish_quiet(out, "pull", &plan.pull));
        if let Err(e) = pulled {
            let _ = out.error(format!("Warning: {e:#}"));
            restore(&mut next, synced, &plan.pull);
        }
        if !plan.push.is_empty() {
            let pushed = self.push_changes(remote, &plan.push, Vec::new(), out).await;
            match pushed.and_then(|()| finish_quiet(out, "push", &plan.push)) {
                Ok(()) => {
                    for (path, _) in &plan.push {
                        set(&mut next, path, local.get(path));
                    }
                }
                Err(e) => {
                    let _ = out.error(format!("Warning: {e:#}"));
                    restore(&mut next, synced, &plan.push);
                }
            }
        }
        next
    }
}

fn print_changes(out: &mut Output, side: &str, changes: &Changes) -> std::io::Result<()> {
    for (path, change) in changes {
        out.line(format!("{side}: {} {path}", change.verb()))?;
    }
    Ok(())
}

/// Prints what a push or pull did, or `In sync`.
fn finish(out: &mut Output, side: &str, changes: &Changes) -> anyhow::Result<()> {
    if changes.is_empty() {
        out.line("In sync")?;
    }
    Ok(print_changes(out, side, changes)?)
}

/// [`finish`] without the `In sync` line (the `-watch` rounds).
fn finish_quiet(out: &mut Output, side: &str, changes: &Changes) -> anyhow::Result<()> {
    Ok(print_changes(out, side, changes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(items: &[(&str, &str, u32)]) -> Files {
        items.iter().map(|(p, c, m)| ((*p).to_owned(), FileState::of(c.as_bytes(), *m))).collect()
    }

    #[test]
    fn remote_entries_split_into_files_records_and_unsafe_keys() {
        let entry = |key: &str, flags: u64, value: &str| KvEntry {
            key: key.into(),
            flags,
            value: Some(value.as_bytes().to_vec()),
            modify_index: 9,
            ..KvEntry::default()
        };
        let meta = serde_json::to_string(&FileState::of(b"x", 0o755).meta()).unwrap();
        let remote = Remote::from_entries(
            "files/",
            vec![
                entry("files/.meta/a.sh", 0, &meta),
                entry("files/a.sh", 0o755, "x"),
                entry("files/plain", 0, "y"),
                entry("files/dir/", 0, ""),
                entry("files/../evil", 0, "z"),
            ],
            12,
        );
        assert_eq!(remote.states(), files(&[("a.sh", "x", 0o755), ("plain", "y", 0o644)]));
        assert_eq!(remote.stale_meta(), BTreeSet::from(["plain".to_owned()]));
        assert_eq!(remote.unsafe_keys.len(), 1);
        let err = remote.check_safe().unwrap_err().to_string();
        assert!(err.contains("\"files/../evil\""), "{err}");
    }
}
