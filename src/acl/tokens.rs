//! The agent's own tokens (`acl.tokens.{default, agent, agent_recovery, replication}`): read
//! on every request, replaced at run time by `PUT /v1/agent/token/<type>`, and with
//! `acl.enable_token_persistence` saved to `<data_dir>/acl-tokens.json`.
//!
//! ```text
//!  config (acl.tokens) ──► start ◄── acl-tokens.json (persisted API tokens win, as in Consul)
//!                            │
//!  PUT /v1/agent/token/x ─► set ─► write temp (0600) + fsync + rename ─► swap in memory
//! ```
//!
//! Only tokens set through the API are written to the file, as Consul does: clearing one
//! through the API (`{"Token": ""}`) drops it from the file, so the configured value comes
//! back at the next start. Secrets are never logged.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::config::AgentTokens;

/// The file persisted tokens live in, inside the data directory (Consul's name).
pub const TOKENS_FILE: &str = "acl-tokens.json";

/// A token the agent holds that `PUT /v1/agent/token/<type>` may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `default` (legacy `acl_token`): requests that present no token, and DNS.
    Default,
    /// `agent` (legacy `acl_agent_token`): the agent's own calls.
    Agent,
    /// `agent_recovery` (legacy `agent_master`, `acl_agent_master_token`).
    AgentRecovery,
    /// `replication` (legacy `acl_replication_token`).
    Replication,
}

impl TokenKind {
    /// The kind a `/v1/agent/token/<type>` path names, legacy spellings included.
    pub fn from_path(s: &str) -> Option<TokenKind> {
        Some(match s {
            "default" | "acl_token" => TokenKind::Default,
            "agent" | "acl_agent_token" => TokenKind::Agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => TokenKind::AgentRecovery,
            "replication" | "acl_replication_token" => TokenKind::Replication,
            _ => return None,
        })
    }

    /// The current name (`default`, `agent`, `agent_recovery`, `replication`).
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Default => "default",
            TokenKind::Agent => "agent",
            TokenKind::AgentRecovery => "agent_recovery",
            TokenKind::Replication => "replication",
        }
    }

    fn slot(self, t: &mut AgentTokens) -> &mut Option<String> {
        match self {
            TokenKind::Default => &mut t.default,
            TokenKind::Agent => &mut t.agent,
            TokenKind::AgentRecovery => &mut t.agent_recovery,
            TokenKind::Replication => &mut t.replication,
        }
    }
}

/// `acl-tokens.json`: Consul's `persistedTokens` (empty entries are left out).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persisted {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    replication: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent_recovery: String,
    /// Written by Consul before 1.11; read, never written.
    #[serde(default, skip_serializing)]
    agent_master: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    default: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent: String,
}

impl Persisted {
    fn slot(&mut self, kind: TokenKind) -> &mut String {
        match kind {
            TokenKind::Default => &mut self.default,
            TokenKind::Agent => &mut self.agent,
            TokenKind::AgentRecovery => &mut self.agent_recovery,
            TokenKind::Replication => &mut self.replication,
        }
    }

    /// Overlays the non-empty entries on `t`.
    fn apply(&self, t: &mut AgentTokens) {
        let recovery = if self.agent_recovery.is_empty() { &self.agent_master } else { &self.agent_recovery };
        for (kind, value) in [
            (TokenKind::Default, &self.default),
            (TokenKind::Agent, &self.agent),
            (TokenKind::AgentRecovery, recovery),
            (TokenKind::Replication, &self.replication),
        ] {
            if !value.is_empty() {
                *kind.slot(t) = Some(value.clone());
            }
        }
    }
}

/// The tokens in force, and what of them came from the API (what the file holds).
#[derive(Default)]
struct State {
    current: AgentTokens,
    from_api: Persisted,
}

/// The agent's settable tokens.
pub struct TokenStore {
    state: RwLock<State>,
    /// `Some` when tokens are persisted: `<data_dir>/acl-tokens.json`.
    file: Option<PathBuf>,
    /// Serializes writers, so the file and memory change in the same order.
    write: Mutex<()>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("current", &self.state.read().current)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// The configured tokens, in memory only.
    pub fn new(configured: AgentTokens) -> TokenStore {
        TokenStore {
            state: RwLock::new(State { current: configured, from_api: Persisted::default() }),
            file: None,
            write: Mutex::new(()),
        }
    }

    /// The configured tokens overlaid with those persisted in `data_dir`; later changes are
    /// saved there. A file that cannot be read is reported and ignored (Consul does the same).
    pub fn persistent(configured: AgentTokens, data_dir: &Path) -> TokenStore {
        let file = data_dir.join(TOKENS_FILE);
        let from_api = match load(&file) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %file.display(), "acl: ignoring the persisted agent tokens: {e}");
                Persisted::default()
            }
        };
        let mut current = configured;
        from_api.apply(&mut current);
        TokenStore {
            state: RwLock::new(State { current, from_api }),
            file: Some(file),
            write: Mutex::new(()),
        }
    }

    /// The tokens in force now.
    pub fn current(&self) -> AgentTokens {
        self.state.read().current.clone()
    }

    /// The default token in force now.
    pub fn default_token(&self) -> Option<String> {
        self.state.read().current.default.clone()
    }

    /// The agent recovery token in force now.
    pub fn agent_recovery(&self) -> Option<String> {
        self.state.read().current.agent_recovery.clone()
    }

    /// Replaces one token (`""` clears it). With persistence the file is written first: when
    /// that fails nothing changes. Blocking file IO: call it off the async threads.
    pub fn set(&self, kind: TokenKind, token: &str) -> io::Result<()> {
        let _writer = self.write.lock();
        let mut from_api = self.state.read().from_api.clone();
        token.clone_into(from_api.slot(kind));
        if kind == TokenKind::AgentRecovery {
            from_api.agent_master.clear();
        }
        if let Some(file) = &self.file {
            save(file, &from_api)?;
        }
        let mut st = self.state.write();
        *kind.slot(&mut st.current) = Some(token.to_owned()).filter(|t| !t.is_empty());
        st.from_api = from_api;
        Ok(())
    }
}

fn load(file: &Path) -> io::Result<Persisted> {
    match std::fs::read(file) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Persisted::default()),
        Err(e) => Err(e),
    }
}

/// Writes `p` to `file` atomically: a 0600 temp file in the same directory, synced, then
/// renamed over the old one.
fn save(file: &Path, p: &Persisted) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{TOKENS_FILE}.tmp"));
    let bytes = serde_json::to_vec(p).map_err(io::Error::other)?;
    let result = (|| {
        let mut f = private_file(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, file)?;
        // The rename itself is durable once the directory is synced (best effort).
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An old temp file keeps its mode through open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> AgentTokens {
        AgentTokens {
            default: Some("cfg-default".into()),
            agent: Some("cfg-agent".into()),
            ..AgentTokens::default()
        }
    }

    #[test]
    fn kinds_accept_current_and_legacy_names() {
        for (path, kind) in [
            ("default", TokenKind::Default),
            ("acl_token", TokenKind::Default),
            ("agent", TokenKind::Agent),
            ("acl_agent_token", TokenKind::Agent),
            ("agent_recovery", TokenKind::AgentRecovery),
            ("agent_master", TokenKind::AgentRecovery),
            ("acl_agent_master_token", TokenKind::AgentRecovery),
            ("replication", TokenKind::Replication),
            ("acl_replication_token", TokenKind::Replication),
        ] {
            assert_eq!(TokenKind::from_path(path), Some(kind), "{path}");
        }
        assert_eq!(TokenKind::from_path("nope"), None);
        assert_eq!(TokenKind::from_path("initial_management"), None, "not settable at run time");
    }

    #[test]
    fn in_memory_set_and_clear() {
        let s = TokenStore::new(configured());
        s.set(TokenKind::Default, "api-default").unwrap();
        assert_eq!(s.default_token().as_deref(), Some("api-default"));
        s.set(TokenKind::Default, "").unwrap();
        assert_eq!(s.default_token(), None, "an empty token clears it");
        assert_eq!(s.current().agent.as_deref(), Some("cfg-agent"));
    }

    #[cfg(unix)]
    #[test]
    fn persisted_tokens_survive_a_restart_and_win_over_config() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::persistent(configured(), dir.path());
        assert_eq!(s.default_token().as_deref(), Some("cfg-default"), "no file yet: the config");
        s.set(TokenKind::Default, "api-default").unwrap();
        s.set(TokenKind::AgentRecovery, "api-recovery").unwrap();
        let file = dir.path().join(TOKENS_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("cfg-agent"), "only API tokens are persisted: {text}");
        let again = TokenStore::persistent(configured(), dir.path());
        assert_eq!(again.default_token().as_deref(), Some("api-default"));
        assert_eq!(again.agent_recovery().as_deref(), Some("api-recovery"));
        assert_eq!(again.current().agent.as_deref(), Some("cfg-agent"));
        again.set(TokenKind::Default, "").unwrap();
        let third = TokenStore::persistent(configured(), dir.path());
        assert_eq!(third.default_token().as_deref(), Some("cfg-default"), "cleared: the config again");
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(TOKENS_FILE)], "no temp file left");
    }

    #[test]
    fn consuls_legacy_agent_master_entry_is_read_and_a_bad_file_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(TOKENS_FILE);
        std::fs::write(&file, r#"{"agent_master":"old-recovery","replication":"r"}"#).unwrap();
        let s = TokenStore::persistent(AgentTokens::default(), dir.path());
        assert_eq!(s.agent_recovery().as_deref(), Some("old-recovery"));
        assert_eq!(s.current().replication.as_deref(), Some("r"));
        std::fs::write(&file, "not json").unwrap();
        let s = TokenStore::persistent(configured(), dir.path());
        assert_eq!(s.default_token().as_deref(), Some("cfg-default"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = TokenStore::new(configured());
        s.set(TokenKind::Replication, "s3cr3t").unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
