//! Configuration reload (SIGHUP, `sekisho reload`, `PUT /v1/agent/reload`).
//!
//! ```text
//!  ConfigSource() ─► watches parsed ─► TLS files ─► services + checks ─► watches replaced
//!   (re-read files)   (validated first)  (AgentTls)   (LocalState)         (only changed ones)
//! ```
//!
//! Everything is read and validated before the first change, and each step leaves the running
//! configuration as it was when it fails. Watches whose definition did not change keep
//! running (their handler does not fire again); changed, added and removed ones are stopped
//! and started.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::Value;

use crate::local::LocalState;
use crate::tls::AgentTls;
use crate::watch::{WatchSet, parse_config_watches};

/// What a reload re-reads from the config files.
#[derive(Debug, Clone, Default)]
pub struct ReloadedConfig {
    /// `service` / `services` definitions as written.
    pub services: Vec<Value>,
    /// `check` / `checks` definitions as written.
    pub checks: Vec<Value>,
    /// `watches` entries as written.
    pub watches: Vec<Value>,
}

/// Re-reads the config files (called on a blocking thread).
pub type ConfigSource = Arc<dyn Fn() -> Result<ReloadedConfig, String> + Send + Sync>;

/// The parts of a running agent a reload changes.
pub struct Reloader {
    tls: Option<Arc<AgentTls>>,
    local: Arc<LocalState>,
    watches: OnceLock<Arc<WatchSet>>,
    source: RwLock<Option<ConfigSource>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("has_source", &self.source.read().is_some()).finish_non_exhaustive()
    }
}

impl Reloader {
    pub(super) fn new(tls: Option<Arc<AgentTls>>, local: Arc<LocalState>) -> Self {
        Self { tls, local, watches: OnceLock::new(), source: RwLock::new(None) }
    }

    /// The agent's config watches, once they run.
    pub(super) fn set_watches(&self, w: Arc<WatchSet>) {
        let _ = self.watches.set(w);
    }

    /// Sets how a reload re-reads the config files; without one, reload is refused.
    pub fn set_source(&self, source: ConfigSource) {
        *self.source.write() = Some(source);
    }

    /// Re-reads and applies the configuration; an error names what was wrong.
    pub async fn reload(&self) -> Result<(), String> {
        let source = self.source.read().clone();
        let Some(source) = source else {
            return Err("this agent was not started from config files; nothing to reload".into());
        };
        let cfg = tokio::task::spawn_blocking(move || source())
            .await
            .map_err(|e| format!("reading the configuration failed: {e}"))??;
        let specs = parse_config_watches(&cfg.watches)?;
        if !specs.is_empty() && self.watches.get().is_none() {
            return Err("watch plans require an HTTP endpoint (ports.http)".into());
        }
        if let Some(tls) = &self.tls {
            tls.reload().map_err(|e| e.to_string())?;
        }
        let local = self.local.clone();
        tokio::task::spawn_blocking(move || local.load_config(&cfg.services, &cfg.checks))
            .await
            .map_err(|e| format!("applying services and checks failed: {e}"))??;
        if let Some(w) = self.watches.get() {
            w.replace(&specs);
        }
        Ok(())
    }
}
