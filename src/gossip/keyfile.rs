//! The keyring file, `<data_dir>/serf/local.keyring` in Consul's format: a JSON array of
//! base64 keys, primary first, mode 0600. Once it exists it wins over the `encrypt` key at
//! start, so a rotation survives restarts with an unchanged configuration.
//!
//! ```text
//! start:  file exists ──► its keys (encrypt ignored, logged)
//!         no file, keys configured ──► file written with them
//!         no file, no keys ──► plaintext (nothing written)
//! change: keyring -install/-use/-remove ──► temp file, fsync, rename, fsync dir
//! ```

use std::io::Write as _;
use std::path::Path;

use super::GossipError;
use super::keyring::{decode_key, encode_key};

/// Where the LAN keyring lives under the data directory (Consul's `SerfLANKeyring`).
pub const LAN_KEYRING_FILE: &str = "serf/local.keyring";

/// The keys to start with: those of `file` when it exists, else `configured` (then saved
/// to `file`, as Consul does on first start).
pub(crate) fn initial_keys(configured: &[Vec<u8>], file: Option<&Path>) -> Result<Vec<Vec<u8>>, GossipError> {
    let Some(path) = file else { return Ok(configured.to_vec()) };
    if let Some(keys) = load(path)? {
        if !configured.is_empty() {
            let listed = configured.iter().all(|k| keys.contains(k));
            tracing::info!(
                "gossip: using the keyring file {} instead of the encrypt key{}",
                path.display(),
                if listed { "" } else { " (which the file does not list)" }
            );
        }
        return Ok(keys);
    }
    if !configured.is_empty() {
        let encoded: Vec<String> = configured.iter().map(|k| encode_key(k)).collect();
        save(path, &encoded).map_err(|e| file_error(path, &e.to_string()))?;
    }
    Ok(configured.to_vec())
}

fn file_error(path: &Path, reason: &str) -> GossipError {
    GossipError::KeyringFile { path: path.display().to_string(), reason: reason.to_owned() }
}

/// Reads the keyring file; `None` when there is none.
pub(crate) fn load(path: &Path) -> Result<Option<Vec<Vec<u8>>>, GossipError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, &e.to_string())),
    };
    let encoded: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|e| file_error(path, &format!("not a JSON list of keys: {e}")))?;
    if encoded.is_empty() {
        return Err(file_error(path, "no keys present in keyring"));
    }
    let keys = encoded.iter().map(|k| decode_key(k)).collect::<Result<Vec<_>, _>>();
    keys.map(Some).map_err(|e| file_error(path, &e.to_string()))
}

/// Writes `keys` (base64, primary first) atomically with mode 0600.
pub(crate) fn save(path: &Path, keys: &[String]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut text = serde_json::to_string_pretty(keys).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = private_file(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An older temp file keeps its mode through `open`.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";
    const KEY_B: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

    fn key(k: &str) -> Vec<u8> {
        decode_key(k).expect("key")
    }

    #[test]
    fn the_file_is_consuls_json_list_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LAN_KEYRING_FILE);
        save(&path, &[KEY_B.to_owned(), KEY_A.to_owned()]).expect("saved");
        let text = std::fs::read_to_string(&path).expect("read");
        let parsed: Vec<String> = serde_json::from_str(&text).expect("JSON");
        assert_eq!(parsed, [KEY_B, KEY_A]);
        assert_eq!(load(&path).expect("loads"), Some(vec![key(KEY_B), key(KEY_A)]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.with_extension("keyring.tmp").exists(), "no temp file left behind");
    }

    #[test]
    fn an_existing_file_wins_over_the_configured_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LAN_KEYRING_FILE);
        assert_eq!(initial_keys(&[], Some(&path)).expect("plaintext"), Vec::<Vec<u8>>::new());
        assert!(!path.exists(), "nothing to save without keys");
        assert_eq!(initial_keys(&[key(KEY_A)], Some(&path)).expect("first start"), [key(KEY_A)]);
        assert_eq!(load(&path).expect("saved on first start"), Some(vec![key(KEY_A)]));
        save(&path, &[KEY_B.to_owned()]).expect("rotated");
        assert_eq!(initial_keys(&[key(KEY_A)], Some(&path)).expect("restart"), [key(KEY_B)]);
        assert_eq!(initial_keys(&[], Some(&path)).expect("no encrypt"), [key(KEY_B)]);
        assert_eq!(initial_keys(&[key(KEY_A)], None).expect("no file"), [key(KEY_A)]);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("local.keyring");
        for (content, why) in [
            ("{not json", "not a JSON list"),
            ("[]", "no keys present"),
            (r#"["AAAA"]"#, "16, 24 or 32"),
            (r#"["not base64!"]"#, "decode"),
        ] {
            std::fs::write(&path, content).expect("written");
            let e = initial_keys(&[key(KEY_A)], Some(&path)).expect_err(content).to_string();
            assert!(e.contains(&path.display().to_string()) && e.contains(why), "{content}: {e}");
        }
    }
}
