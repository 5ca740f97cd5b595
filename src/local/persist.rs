//! Persistence of API registrations and maintenance in `<data_dir>/local/state.json`, so a
//! restarted agent keeps its services and stays in maintenance. The file is written to a
//! temporary name, fsynced and renamed, so a crash leaves the old or the new version.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What survives a restart.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub(super) struct Saved {
    /// Service definitions registered over HTTP, as given.
    pub(super) services: Vec<Value>,
    /// Check definitions registered over HTTP, as given.
    pub(super) checks: Vec<Value>,
    /// Node maintenance reason, when enabled.
    pub(super) node_maintenance: Option<String>,
    /// Service ID → maintenance reason.
    pub(super) service_maintenance: BTreeMap<String, String>,
}

fn path(dir: &Path) -> PathBuf {
    dir.join("local").join("state.json")
}

/// Loads the saved state; a missing file is an empty state, a damaged one an error.
pub(super) fn load(dir: &Path) -> Result<Saved, String> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is damaged ({e}); fix or remove it to start without the saved registrations",
                p.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

/// Saves the state durably.
pub(super) fn save(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    let p = path(dir);
    let parent = p.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &p)?;
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("empty"), Saved::default());
        let s = Saved {
            services: vec![json!({"Name": "web"})],
            checks: vec![],
            node_maintenance: Some("reboot".into()),
            service_maintenance: BTreeMap::from([("web".into(), "deploy".into())]),
        };
        save(dir.path(), &s).expect("save");
        assert_eq!(load(dir.path()).expect("load"), s);
        std::fs::write(path(dir.path()), b"{not json").expect("damage");
        let e = load(dir.path()).unwrap_err();
        assert!(e.contains("damaged"), "{e}");
    }
}
