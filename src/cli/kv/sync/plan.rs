//! The pure core of `kv sync`: file states, the two-way [`diff`], the `-watch` [`merge`]
//! (KV wins), which keys may become files, and how operations are grouped into
//! transactions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Operations per `/v1/txn` request (the server accepts 128; half leaves room for growth).
pub(super) const MAX_TXN_OPS: usize = 64;

/// What a sync compares: the mode bits and the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileState {
    pub(super) mode: u32,
    pub(super) sha256: String,
    pub(super) size: u64,
}

impl FileState {
    pub(super) fn of(content: &[u8], mode: u32) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, content);
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Self { mode, sha256, size: content.len() as u64 }
    }

    /// The `.meta/<path>` record of this state.
    pub(super) fn meta(&self) -> Meta {
        Meta { mode: self.mode, sha256: self.sha256.clone(), size: self.size }
    }
}

/// The `.meta/<path>` JSON record.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Meta {
    pub(super) mode: u32,
    #[serde(rename = "SHA256")]
    pub(super) sha256: String,
    pub(super) size: u64,
}

pub(super) type Files = BTreeMap<String, FileState>;

/// One side's change to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    /// How `from` must change to become `to`; `None` when they are equal.
    pub(super) fn between(from: Option<&FileState>, to: Option<&FileState>) -> Option<Change> {
        match (from, to) {
            (a, b) if a == b => None,
            (None, _) => Some(Change::Added),
            (_, None) => Some(Change::Deleted),
            _ => Some(Change::Modified),
        }
    }

    pub(super) fn verb(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Deleted => "deleted",
        }
    }
}

/// Changes, by relative path.
pub(super) type Changes = Vec<(String, Change)>;

/// What `push` and what `pull` would do.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) push: Changes,
    pub(super) pull: Changes,
}

/// Compares DIR with the prefix; `stale_meta` lists paths whose content matches but whose
/// `.meta` record is missing or wrong (only a push fixes those).
pub(super) fn diff(local: &Files, remote: &Files, stale_meta: &BTreeSet<String>) -> Plan {
    let mut plan = Plan::default();
    for path in local.keys().chain(remote.keys()).collect::<BTreeSet<_>>() {
        let (l, r) = (local.get(path), remote.get(path));
        match Change::between(r, l) {
            Some(c) => plan.push.push((path.clone(), c)),
            None if stale_meta.contains(path) => plan.push.push((path.clone(), Change::Modified)),
            None => {}
        }
        if let Some(c) = Change::between(l, r) {
            plan.pull.push((path.clone(), c));
        }
    }
    plan
}

/// The `-watch` decision against the last synced state `base`: a path KV changed is pulled
/// (KV wins, even over a local change), a path only DIR changed is pushed.
pub(super) fn merge(base: &Files, local: &Files, remote: &Files) -> Plan {
    let mut plan = Plan::default();
    let paths: BTreeSet<&String> = base.keys().chain(local.keys()).chain(remote.keys()).collect();
    for path in paths {
        let (b, l, r) = (base.get(path), local.get(path), remote.get(path));
        if r != b {
            if let Some(c) = Change::between(l, r) {
                plan.pull.push((path.clone(), c));
            }
        } else if l != b
            && let Some(c) = Change::between(r, l)
        {
            plan.push.push((path.clone(), c));
        }
    }
    plan
}

/// Why a key's relative path may not become a file under DIR, if it may not.
pub(super) fn unsafe_reason(rel: &str) -> Option<&'static str> {
    if rel.contains('\0') {
        Some("it contains a NUL byte")
    } else if rel.starts_with('/') {
        Some("it is an absolute path")
    } else if rel.split('/').any(|s| s == "..") {
        Some("it would leave DIR (`..`)")
    } else if rel.split('/').any(|s| s.is_empty() || s == ".") {
        Some("it has an empty or `.` path segment")
    } else {
        None
    }
}

/// `files` → `files/`, `/files/` → `files/`; `None` for an empty prefix.
pub(super) fn normalize_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    Some(if trimmed.ends_with('/') { trimmed.to_owned() } else { format!("{trimmed}/") })
}

/// Puts the old synced state back for `changes` that failed, so the next round retries.
pub(super) fn restore(next: &mut Files, synced: &Files, changes: &Changes) {
    for (path, _) in changes {
        set(next, path, synced.get(path));
    }
}

pub(super) fn set(files: &mut Files, path: &str, state: Option<&FileState>) {
    match state {
        Some(s) => files.insert(path.to_owned(), s.clone()),
        None => files.remove(path),
    };
}

/// Groups operations into transactions of at most [`MAX_TXN_OPS`] operations and about
/// `budget` bytes, keeping each group (one file: its content and record) in one
/// transaction; each comes with the number of groups it holds.
pub(super) fn batches(groups: Vec<Vec<Value>>, budget: usize) -> Vec<(Vec<Value>, usize)> {
    let mut out = Vec::new();
    let (mut current, mut files, mut bytes) = (Vec::new(), 0, 2);
    for group in groups {
        let size: usize = group.iter().map(|op| op.to_string().len() + 1).sum();
        if !current.is_empty() && (current.len() + group.len() > MAX_TXN_OPS || bytes + size > budget) {
            out.push((std::mem::take(&mut current), std::mem::take(&mut files)));
            bytes = 2;
        }
        bytes += size;
        files += 1;
        current.extend(group);
    }
    if !current.is_empty() {
        out.push((current, files));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(content: &str, mode: u32) -> FileState {
        FileState::of(content.as_bytes(), mode)
    }

    fn files(items: &[(&str, &str, u32)]) -> Files {
        items.iter().map(|(p, c, m)| ((*p).to_owned(), state(c, *m))).collect()
    }

    fn changes(items: &[(&str, Change)]) -> Changes {
        items.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect()
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        let s = state("abc", 0o644);
        assert_eq!(s.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let meta = serde_json::to_string(&s.meta()).unwrap();
        assert_eq!(meta, format!("{{\"Mode\":420,\"SHA256\":\"{}\",\"Size\":3}}", s.sha256));
    }

    #[test]
    fn diff_reports_both_directions() {
        let local =
            files(&[("new", "n", 0o644), ("same", "s", 0o644), ("edit", "a", 0o644), ("mode", "m", 0o755)]);
        let remote =
            files(&[("gone", "g", 0o644), ("same", "s", 0o644), ("edit", "b", 0o644), ("mode", "m", 0o644)]);
        let stale = BTreeSet::from(["same".to_owned()]);
        let plan = diff(&local, &remote, &stale);
        use Change::*;
        let push =
            [("edit", Modified), ("gone", Deleted), ("mode", Modified), ("new", Added), ("same", Modified)];
        assert_eq!(plan.push, changes(&push));
        assert_eq!(
            plan.pull,
            changes(&[("edit", Modified), ("gone", Added), ("mode", Modified), ("new", Deleted)])
        );
        assert_eq!(diff(&local, &local, &BTreeSet::new()), Plan::default());
    }

    #[test]
    fn merge_lets_kv_win_conflicts() {
        use Change::*;
        let base =
            files(&[("both", "0", 0o644), ("local", "0", 0o644), ("remote", "0", 0o644), ("rm", "0", 0o644)]);
        let local =
            files(&[("both", "L", 0o644), ("local", "L", 0o644), ("remote", "0", 0o644), ("rm", "0", 0o644)]);
        let remote = files(&[
            ("both", "R", 0o644),
            ("local", "0", 0o644),
            ("remote", "R", 0o644),
            ("new", "R", 0o644),
        ]);
        let plan = merge(&base, &local, &remote);
        assert_eq!(
            plan.pull,
            changes(&[("both", Modified), ("new", Added), ("remote", Modified), ("rm", Deleted)])
        );
        assert_eq!(plan.push, changes(&[("local", Modified)]));
        assert_eq!(merge(&base, &base, &base), Plan::default());
    }

    #[test]
    fn keys_that_leave_dir_are_unsafe() {
        for rel in ["../evil", "a/../../x", "/etc/passwd", "a\0b", "a//b", "./a", "a/."] {
            assert!(unsafe_reason(rel).is_some(), "{rel:?}");
        }
        for rel in ["a", "a/b.sh", "..a", "a..b/c", ".hidden"] {
            assert_eq!(unsafe_reason(rel), None, "{rel:?}");
        }
    }

    #[test]
    fn batches_respect_op_count_and_bytes_and_keep_groups_whole() {
        let op = json!({"KV": {"Verb": "set", "Key": "k"}});
        let groups: Vec<Vec<Value>> = (0..50).map(|_| vec![op.clone(), op.clone()]).collect();
        let sizes: Vec<_> = batches(groups.clone(), usize::MAX).iter().map(|(b, n)| (b.len(), *n)).collect();
        assert_eq!(sizes, [(64, 32), (36, 18)]);
        let per_op = op.to_string().len() + 1;
        let sizes: Vec<_> = batches(groups, 2 + per_op * 5).iter().map(|(b, n)| (b.len(), *n)).collect();
        assert!(sizes.iter().all(|s| *s == (4, 2)), "{sizes:?}");
        assert!(batches(Vec::new(), 10).is_empty());
    }

    #[test]
    fn prefixes_end_with_one_slash() {
        assert_eq!(normalize_prefix("files").as_deref(), Some("files/"));
        assert_eq!(normalize_prefix("/a/b/").as_deref(), Some("a/b/"));
        assert_eq!(normalize_prefix("/"), None);
    }
}
