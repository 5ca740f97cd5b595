//! The ACL audit log (beyond Consul OSS): one JSON line per denied request, in a file under
//! the data dir, rotated by size. Off unless `acl.audit.enabled = true`.
//!
//! ```text
//!  Caller::require ─ denied ─► AuditLog::denied ─► <data_dir>/audit/acl-denials.log
//!                                                   (.1 … .N once it passes rotate_bytes)
//! ```
//! A line names the AccessorID, never the SecretID:
//! `{"Timestamp":"…","AccessorID":"…","Resource":"key","Segment":"a/b","Access":"write",
//! "Decision":"deny","Reason":"…","ClientAddress":"127.0.0.1:51234"}`.
//! A write that fails is reported in the agent log (at most once a minute) and never fails
//! the request.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde_json::{Value, json};

/// `acl.audit { enabled, path, rotate_bytes, rotate_max_files }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// `enabled` (false).
    pub enabled: bool,
    /// `path`: the log file (default `<data_dir>/audit/acl-denials.log`).
    pub path: Option<PathBuf>,
    /// `rotate_bytes` (10 MiB): the file is rotated before it would grow past this.
    pub rotate_bytes: u64,
    /// `rotate_max_files` (5): rotated files kept (`.1` is the newest).
    pub rotate_max_files: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { enabled: false, path: None, rotate_bytes: 10 << 20, rotate_max_files: 5 }
    }
}

impl AuditConfig {
    /// Parses the `acl.audit` object; errors name the key.
    pub fn parse(v: &Value) -> Result<AuditConfig, String> {
        let Value::Object(o) = v else { return Err(format!("acl.audit: expected an object, found {v}")) };
        let mut c = AuditConfig::default();
        for (key, val) in o {
            let number = || {
                val.as_u64()
                    .or_else(|| val.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| format!("acl.audit.{key}: expected a non-negative number, found {val}"))
            };
            match key.as_str() {
                "enabled" => {
                    c.enabled = match val {
                        Value::Bool(b) => *b,
                        Value::String(s) if s == "true" || s == "false" => s == "true",
                        other => return Err(format!("acl.audit.enabled: expected a boolean, found {other}")),
                    }
                }
                "path" => {
                    let p = val
                        .as_str()
                        .ok_or_else(|| format!("acl.audit.path: expected a string, found {val}"))?;
                    c.path = Some(PathBuf::from(p)).filter(|p| !p.as_os_str().is_empty());
                }
                "rotate_bytes" => {
                    c.rotate_bytes = number()?;
                    if c.rotate_bytes < 1024 {
                        return Err("acl.audit.rotate_bytes must be at least 1024".into());
                    }
                }
                "rotate_max_files" => {
                    c.rotate_max_files = u32::try_from(number()?)
                        .map_err(|_| "acl.audit.rotate_max_files: too large".to_string())?;
                }
                other => return Err(format!("acl.audit: unknown key {other:?}")),
            }
        }
        Ok(c)
    }
}

/// One denial.
#[derive(Debug, Clone, Copy)]
pub struct Denial<'a> {
    /// The token's AccessorID.
    pub accessor_id: &'a str,
    /// The resource word (`key`, `service`, …).
    pub resource: &'a str,
    /// The segment (key, service name, …).
    pub segment: &'a str,
    /// The access asked for (`read`, `write`, …).
    pub access: &'a str,
    /// Why (the authorizer's explanation).
    pub reason: &'a str,
    /// Who asked, when known.
    pub client: Option<SocketAddr>,
}

struct Open {
    file: File,
    size: u64,
}

/// The audit log file.
pub struct AuditLog {
    path: PathBuf,
    rotate_bytes: u64,
    max_files: u32,
    open: Mutex<Option<Open>>,
    last_error: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// The log `cfg` asks for (`None` when disabled). The directory is created now, so a
    /// bad path stops the agent at start rather than losing records later.
    pub fn open(cfg: &AuditConfig, data_dir: Option<&Path>) -> Result<Option<AuditLog>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        let path = match (&cfg.path, data_dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => d.join("audit").join("acl-denials.log"),
            (None, None) => {
                return Err(
                    "acl.audit: set acl.audit.path or data_dir (the dev agent has no data dir)".into()
                );
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("acl.audit: creating {}: {e}", dir.display()))?;
        }
        let log = AuditLog {
            path,
            rotate_bytes: cfg.rotate_bytes,
            max_files: cfg.rotate_max_files,
            open: Mutex::new(None),
            last_error: Mutex::new(None),
        };
        let mut open = log.open.lock();
        *open = Some(log.open_file().map_err(|e| format!("acl.audit: opening {}: {e}", log.path.display()))?);
        drop(open);
        Ok(Some(log))
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_file(&self) -> std::io::Result<Open> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let file = opts.open(&self.path)?;
        let size = file.metadata()?.len();
        Ok(Open { file, size })
    }

    /// `path.N` for rotated file `n`.
    fn rotated(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.max_files == 0 {
            return std::fs::remove_file(&self.path).or_else(not_found_ok);
        }
        std::fs::remove_file(self.rotated(self.max_files)).or_else(not_found_ok)?;
        for n in (1..self.max_files).rev() {
            std::fs::rename(self.rotated(n), self.rotated(n + 1)).or_else(not_found_ok)?;
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Records a denial.
    pub fn denied(&self, d: &Denial<'_>) {
        let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut line = json!({
            "Timestamp": ts, "AccessorID": d.accessor_id, "Resource": d.resource,
            "Segment": d.segment, "Access": d.access, "Decision": "deny", "Reason": d.reason,
            "ClientAddress": d.client.map(|a| a.to_string()).unwrap_or_default(),
        })
        .to_string();
        line.push('\n');
        if let Err(e) = self.append(line.as_bytes()) {
            let mut last = self.last_error.lock();
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(path = %self.path.display(), "acl audit: cannot write a record: {e}");
                *last = Some(Instant::now());
            }
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut guard = self.open.lock();
        let len = line.len() as u64;
        if guard.as_ref().is_some_and(|o| o.size > 0 && o.size + len > self.rotate_bytes) {
            *guard = None;
            self.rotate()?;
        }
        if guard.is_none() {
            *guard = Some(self.open_file()?);
        }
        let open = guard.as_mut().expect("opened above");
        open.file.write_all(line)?;
        open.size += len;
        Ok(())
    }
}

fn not_found_ok(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(segment: &str) -> Denial<'_> {
        Denial {
            accessor_id: "acc-1",
            resource: "key",
            segment,
            access: "write",
            reason: "default policy deny",
            client: Some("127.0.0.1:4000".parse().expect("addr")),
        }
    }

    #[test]
    fn config_defaults_and_errors_name_the_key() {
        assert_eq!(AuditConfig::parse(&json!({})), Ok(AuditConfig::default()));
        let c = AuditConfig::parse(&json!({"enabled": true, "rotate_bytes": 2048, "rotate_max_files": "2"}))
            .expect("ok");
        assert!(c.enabled);
        assert_eq!((c.rotate_bytes, c.rotate_max_files), (2048, 2));
        for (bad, want) in [
            (json!({"enabled": 1}), "acl.audit.enabled: expected a boolean"),
            (json!({"rotate_bytes": 10}), "acl.audit.rotate_bytes must be at least 1024"),
            (json!({"rotate_bytes": "lots"}), "acl.audit.rotate_bytes: expected a non-negative number"),
            (json!({"sink": {}}), "acl.audit: unknown key \"sink\""),
        ] {
            let e = AuditConfig::parse(&bad).expect_err("refused");
            assert!(e.starts_with(want), "{e} / {want}");
        }
    }

    #[test]
    fn off_by_default_and_needs_a_place_to_write() {
        assert!(AuditLog::open(&AuditConfig::default(), None).expect("ok").is_none());
        let on = AuditConfig { enabled: true, ..AuditConfig::default() };
        let e = AuditLog::open(&on, None).expect_err("no data dir");
        assert!(e.contains("acl.audit.path"), "{e}");
    }

    #[test]
    fn denials_are_json_lines_and_rotate_by_size_keeping_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AuditConfig { enabled: true, rotate_bytes: 1024, rotate_max_files: 2, path: None };
        let log = AuditLog::open(&cfg, Some(dir.path())).expect("opens").expect("enabled");
        assert_eq!(log.path(), dir.path().join("audit/acl-denials.log"));
        log.denied(&denial("team-b/x"));
        let text = std::fs::read_to_string(log.path()).expect("written");
        let v: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(v["AccessorID"], "acc-1");
        assert_eq!(v["Segment"], "team-b/x");
        assert_eq!(v["Decision"], "deny");
        assert_eq!(v["ClientAddress"], "127.0.0.1:4000");
        for i in 0..60 {
            log.denied(&denial(&format!("k/{i:03}")));
        }
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
        assert!(size(log.path().to_path_buf()).expect("current") <= 1024);
        assert!(size(log.rotated(1)).expect(".1") <= 1024);
        assert!(size(log.rotated(2)).is_some(), ".2 kept");
        assert!(size(log.rotated(3)).is_none(), "only rotate_max_files are kept");
        // The newest record is in the current file, and the records are in order across files.
        let current = std::fs::read_to_string(log.path()).expect("current");
        assert!(current.contains("\"k/059\""), "the newest record is in the current file: {current}");
        let older = std::fs::read_to_string(log.rotated(1)).expect(".1");
        let last_old: Value = serde_json::from_str(older.lines().last().expect("a line")).expect("JSON");
        let first_new: Value = serde_json::from_str(current.lines().next().expect("a line")).expect("JSON");
        assert!(last_old["Segment"].as_str() < first_new["Segment"].as_str());
    }
}
