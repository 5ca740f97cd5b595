//! The local side of `kv sync`: scanning DIR without following symlinks, file modes, and
//! atomic writes.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;

use super::plan::{FileState, Files};

/// Marks the temp files of an atomic write; scans skip them.
const TEMP_MARK: &str = ".sekisho-tmp-";

/// DIR as scanned, and what was skipped.
#[derive(Debug, Default)]
pub(super) struct Local {
    pub(super) files: Files,
    pub(super) warnings: Vec<String>,
}

/// Hashes of unchanged files (same mtime, size and mode) are reused between `-watch` scans.
pub(super) type HashCache = HashMap<String, (SystemTime, u64, FileState)>;

/// Every regular file under `dir`; symlinks and other special files are skipped with a
/// warning, as are names that are not UTF-8, the reserved top-level `.meta` and temp files.
pub(super) fn scan(dir: &Path, cache: &mut HashCache) -> anyhow::Result<Local> {
    let mut local = Local::default();
    let mut seen = HashCache::new();
    let mut stack = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let path = dir.join(&rel_dir);
        let entries = std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                local.warnings.push(format!("skipping {:?}: the name is not UTF-8", entry.path()));
                continue;
            };
            let rel = if rel_dir.is_empty() { name.clone() } else { format!("{rel_dir}/{name}") };
            if name.contains(TEMP_MARK) {
                continue;
            }
            let meta = entry.metadata().with_context(|| format!("reading {}", entry.path().display()))?;
            if meta.is_symlink() {
                local.warnings.push(format!("skipping symlink {rel}"));
            } else if meta.is_dir() && rel == ".meta" {
                local.warnings.push("skipping .meta/: the name is reserved for metadata".to_owned());
            } else if meta.is_dir() {
                stack.push(rel);
            } else if meta.is_file() {
                let state = hash_file(&entry.path(), &rel, &meta, cache)?;
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                seen.insert(rel.clone(), (mtime, meta.len(), state.clone()));
                local.files.insert(rel, state);
            } else {
                local.warnings.push(format!("skipping {rel}: not a regular file"));
            }
        }
    }
    *cache = seen;
    Ok(local)
}

pub(super) fn hash_file(
    path: &Path,
    rel: &str,
    meta: &std::fs::Metadata,
    cache: &HashCache,
) -> anyhow::Result<FileState> {
    let (mtime, mode) = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), file_mode(meta));
    if let Some((t, size, state)) = cache.get(rel)
        && *t == mtime
        && *size == meta.len()
        && state.mode == mode
    {
        return Ok(state.clone());
    }
    let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(FileState::of(&content, mode))
}

#[cfg(unix)]
pub(super) fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
pub(super) fn file_mode(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().readonly() { 0o444 } else { 0o644 }
}

#[cfg(unix)]
pub(super) fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub(super) fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    let mut permissions = file.metadata()?.permissions();
    permissions.set_readonly(mode & 0o222 == 0);
    file.set_permissions(permissions)
}

/// Writes `content` to a temp file next to `target`, sets `mode`, syncs it and renames it
/// over `target`, so readers see the old file or the new one, never a mix.
pub(super) fn write_atomic(target: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = target.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(content)?;
        set_mode(&file, mode)?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_skips_symlinks_reserved_and_temp_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir_all(dir.path().join(".meta")).unwrap();
        std::fs::write(dir.path().join("a/b/c"), "c").unwrap();
        std::fs::write(dir.path().join(format!(".x{TEMP_MARK}1")), "t").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let local = scan(dir.path(), &mut HashCache::new()).unwrap();
        assert_eq!(local.files.keys().collect::<Vec<_>>(), ["a/b/c"]);
        assert!(local.warnings.iter().any(|w| w.contains(".meta")), "{:?}", local.warnings);
        #[cfg(unix)]
        assert!(local.warnings.contains(&"skipping symlink link".to_owned()), "{:?}", local.warnings);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_sets_the_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run.sh");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, b"#!/bin/sh\n", 0o755).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"#!/bin/sh\n");
        assert_eq!(file_mode(&std::fs::metadata(&target).unwrap()), 0o755);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
