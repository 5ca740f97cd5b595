//! The autopilot configuration (`/v1/operator/autopilot/configuration`). Like Consul, it is
//! replicated through Raft, so every server reports the same values and a snapshot carries
//! them; until an operator sets it, servers report their built-in defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Store;

/// Consul's `AutopilotConfig`, with the Raft indexes of its creation and last change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotConfig {
    /// Remove failed servers once a replacement has joined.
    pub cleanup_dead_servers: bool,
    /// A server that has not heard from the leader for longer is unhealthy.
    pub last_contact_threshold: Duration,
    /// A server whose log trails the leader's by more entries is unhealthy.
    pub max_trailing_logs: u64,
    /// Dead servers are never pruned below this many voters (0: no minimum).
    pub min_quorum: u32,
    /// How long a new server must stay healthy before it becomes a voter.
    pub server_stabilization_time: Duration,
    /// Enterprise-only in Consul; stored and echoed, never acted on.
    pub redundancy_zone_tag: String,
    /// Enterprise-only in Consul; stored and echoed, never acted on.
    pub disable_upgrade_migration: bool,
    /// Enterprise-only in Consul; stored and echoed, never acted on.
    pub upgrade_version_tag: String,
    /// Raft index of the first `set`.
    pub create_index: u64,
    /// Raft index of the last `set` (the value `?cas=` compares with).
    pub modify_index: u64,
}

impl AutopilotConfig {
    /// Consul's defaults, with this server's stabilization time.
    pub fn defaults(server_stabilization_time: Duration) -> AutopilotConfig {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time,
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// The stored configuration, if an operator ever set one.
pub fn autopilot_get(st: &Store) -> Option<&AutopilotConfig> {
    st.autopilot.as_ref()
}

/// Stores `cfg` at `idx`. With `cas`, only when the stored ModifyIndex equals it (0: only
/// when nothing is stored yet). Returns whether the configuration was written.
pub fn autopilot_set(st: &mut Store, idx: u64, cfg: &AutopilotConfig, cas: Option<u64>) -> bool {
    let current = st.autopilot.as_ref().map_or(0, |c| c.modify_index);
    if cas.is_some_and(|want| want != current) {
        return false;
    }
    let create_index = st.autopilot.as_ref().map_or(idx, |c| c.create_index);
    st.autopilot = Some(AutopilotConfig { create_index, modify_index: idx, ..cfg.clone() });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_writes_only_over_the_expected_index() {
        let mut st = Store::default();
        let cfg = AutopilotConfig::defaults(Duration::from_secs(10));
        assert!(!autopilot_set(&mut st, 5, &cfg, Some(3)), "nothing stored: only cas=0 matches");
        assert!(autopilot_set(&mut st, 5, &cfg, Some(0)));
        let stored = autopilot_get(&st).unwrap();
        assert_eq!((stored.create_index, stored.modify_index), (5, 5));
        let changed = AutopilotConfig { min_quorum: 3, ..cfg };
        assert!(!autopilot_set(&mut st, 9, &changed, Some(4)));
        assert!(autopilot_set(&mut st, 9, &changed, Some(5)));
        let stored = autopilot_get(&st).unwrap();
        assert_eq!((stored.create_index, stored.modify_index, stored.min_quorum), (5, 9, 3));
        assert!(autopilot_set(&mut st, 12, &changed, None), "no cas: always written");
    }
}
