//! Gossip encryption: Consul's `encrypt` keys (base64 of 16, 24 or 32 bytes, for AES-128,
//! AES-192 or AES-256 in GCM mode). The first key of the ring encrypts; every key is tried to
//! decrypt, so a new key can be rolled out before it becomes primary.
//!
//! The ring changes at runtime (`consul keyring -install / -use / -remove`) through
//! [`SharedRing`]: readers lock it only to seal or open one frame; changes are serialized and
//! each one is saved to the keyring file, when there is one, before the next.
//!
//! `encrypt_verify_outgoing = false` sends plaintext although keys are installed and
//! `encrypt_verify_incoming = false` accepts plaintext too: the two steps of rolling
//! encryption out to a running cluster.

use std::path::PathBuf;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::Engine as _;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use rand::RngExt as _;

use super::GossipError;
use super::keyring_op::KeyringOp;

/// Nonce length (96 bits, random per message).
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Decodes a Consul `encrypt` key: standard base64 of 16, 24 or 32 bytes.
pub fn decode_key(encoded: &str) -> Result<Vec<u8>, GossipError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| GossipError::Key(format!("failed to decode key: {e}")))?;
    check_len(&key)?;
    Ok(key)
}

/// The standard base64 of a key, as `encrypt`, the keyring file and the API spell it.
pub(crate) fn encode_key(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn check_len(key: &[u8]) -> Result<(), GossipError> {
    match key.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(GossipError::Key(format!("key size must be 16, 24 or 32 bytes, got {n}"))),
    }
}

/// Why a keyring operation was refused on one node (memberlist's and serf's texts, which
/// `consul keyring` prints per node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyringError {
    /// A change on a node without keys.
    #[error("No keyring to modify (encryption not enabled)")]
    NothingToModify,
    /// A listing on a node without keys.
    #[error("Keyring is empty (encryption not enabled)")]
    Empty,
    /// `use` of a key that was not installed first.
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    /// `remove` of the key that encrypts.
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
    /// A key of the wrong length.
    #[error("key size must be 16, 24 or 32 bytes")]
    KeySize,
    /// The change is live but could not be saved.
    #[error("failed to write keyring file {path}: {reason}")]
    Persist {
        /// The keyring file.
        path: String,
        /// The IO error.
        reason: String,
    },
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<AesGcm<Aes192, U12>>),
    Aes256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Self, GossipError> {
        check_len(key)?;
        let bad = |_| GossipError::Key("invalid key".into());
        Ok(match key.len() {
            16 => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?)),
            24 => Cipher::Aes192(Box::new(AesGcm::new_from_slice(key).map_err(bad)?)),
            _ => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?)),
        })
    }

    fn seal(&self, nonce: &[u8; NONCE_LEN], msg: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.encrypt(nonce, msg).ok(),
            Cipher::Aes192(c) => c.encrypt(nonce, msg).ok(),
            Cipher::Aes256(c) => c.encrypt(nonce, msg).ok(),
        }
    }

    fn open(&self, nonce: &[u8], msg: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce, msg).ok(),
            Cipher::Aes192(c) => c.decrypt(nonce, msg).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce, msg).ok(),
        }
    }
}

/// One installed key: its bytes (to list and save it) and its cipher.
struct Key {
    raw: Vec<u8>,
    cipher: Cipher,
}

/// The installed keys, primary first; empty means plaintext gossip.
pub(crate) struct Keyring {
    keys: Vec<Key>,
    verify_incoming: bool,
    verify_outgoing: bool,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring({} keys, verify_incoming: {}, verify_outgoing: {})",
            self.keys.len(),
            self.verify_incoming,
            self.verify_outgoing
        )
    }
}

impl Keyring {
    /// A keyring with `keys`, the first being primary, verifying both ways.
    pub(crate) fn new(keys: &[Vec<u8>]) -> Result<Self, GossipError> {
        let mut ring = Keyring { keys: Vec::new(), verify_incoming: true, verify_outgoing: true };
        for key in keys {
            if !ring.contains(key) {
                ring.keys.push(Key { raw: key.clone(), cipher: Cipher::new(key)? });
            }
        }
        Ok(ring)
    }

    /// Sets `encrypt_verify_incoming` and `encrypt_verify_outgoing`.
    pub(crate) fn with_verify(mut self, incoming: bool, outgoing: bool) -> Self {
        self.verify_incoming = incoming;
        self.verify_outgoing = outgoing;
        self
    }

    /// Whether gossip encryption is configured (keys are installed).
    pub(crate) fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether outgoing frames are encrypted.
    pub(crate) fn encrypts(&self) -> bool {
        self.is_enabled() && self.verify_outgoing
    }

    /// Whether plaintext frames are accepted.
    pub(crate) fn accepts_plaintext(&self) -> bool {
        !self.is_enabled() || !self.verify_incoming
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.keys.iter().any(|k| k.raw == key)
    }

    /// `nonce || ciphertext || tag` of `plain` under the primary key, authenticating `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let primary = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill(&mut nonce[..]);
        let sealed = primary.cipher.seal(&nonce, Payload { msg: plain, aad })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Opens `nonce || ciphertext || tag` with any installed key.
    pub(crate) fn open(&self, aad: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        if body.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        self.keys.iter().find_map(|k| k.cipher.open(nonce, Payload { msg: sealed, aad }))
    }

    /// Adds `key` as a secondary key (memberlist's `AddKey`: a no-op when installed).
    pub(crate) fn install(&mut self, key: &[u8]) -> Result<(), KeyringError> {
        if !self.is_enabled() {
            return Err(KeyringError::NothingToModify);
        }
        if self.contains(key) {
            return Ok(());
        }
        let cipher = Cipher::new(key).map_err(|_| KeyringError::KeySize)?;
        self.keys.push(Key { raw: key.to_vec(), cipher });
        Ok(())
    }

    /// Makes an installed key the primary one; the others keep their order.
    pub(crate) fn use_key(&mut self, key: &[u8]) -> Result<(), KeyringError> {
        if !self.is_enabled() {
            return Err(KeyringError::NothingToModify);
        }
        let at = self.keys.iter().position(|k| k.raw == key).ok_or(KeyringError::NotInstalled)?;
        let k = self.keys.remove(at);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes a secondary key (memberlist's `RemoveKey`: a no-op when it is not installed).
    pub(crate) fn remove(&mut self, key: &[u8]) -> Result<(), KeyringError> {
        match self.keys.first() {
            None => Err(KeyringError::NothingToModify),
            Some(primary) if primary.raw == key => Err(KeyringError::RemovePrimary),
            Some(_) => {
                self.keys.retain(|k| k.raw != key);
                Ok(())
            }
        }
    }

    /// Every key in base64, primary first.
    pub(crate) fn encoded(&self) -> Vec<String> {
        self.keys.iter().map(|k| encode_key(&k.raw)).collect()
    }
}

/// The keyring as the gossip tasks share it, plus where it is saved.
#[derive(Debug)]
pub(crate) struct SharedRing {
    ring: RwLock<Keyring>,
    /// Serializes changes together with their file writes.
    changes: Mutex<()>,
    file: Option<PathBuf>,
}

impl SharedRing {
    /// Shares `ring`, saving every change to `file` when there is one.
    pub(crate) fn new(ring: Keyring, file: Option<PathBuf>) -> Self {
        SharedRing { ring: RwLock::new(ring), changes: Mutex::new(()), file }
    }

    /// The current ring, to seal or open a frame; never hold it across an `.await`.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Keyring> {
        self.ring.read()
    }

    /// Runs `op` on this node's ring, saves the result and returns the keys in base64,
    /// primary first. Blocking (file IO): call it from `spawn_blocking`. A change that could
    /// not be saved stays live (as in serf) and the error says so.
    pub(crate) fn apply(&self, op: &KeyringOp) -> Result<Vec<String>, KeyringError> {
        let _serial = self.changes.lock();
        let keys = match op {
            KeyringOp::List => {
                let keys = self.ring.read().encoded();
                return if keys.is_empty() { Err(KeyringError::Empty) } else { Ok(keys) };
            }
            KeyringOp::Install(k) => self.change(|ring| ring.install(k))?,
            KeyringOp::Use(k) => self.change(|ring| ring.use_key(k))?,
            KeyringOp::Remove(k) => self.change(|ring| ring.remove(k))?,
        };
        tracing::info!("gossip: keyring {} done; {} keys installed", op.verb(), keys.len());
        if let Some(path) = &self.file {
            super::keyfile::save(path, &keys).map_err(|e| KeyringError::Persist {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(keys)
    }

    fn change(
        &self,
        f: impl FnOnce(&mut Keyring) -> Result<(), KeyringError>,
    ) -> Result<Vec<String>, KeyringError> {
        let mut ring = self.ring.write();
        f(&mut ring)?;
        Ok(ring.encoded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYGEN: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";

    #[test]
    fn consul_keys_of_each_size_decode_and_bad_ones_are_refused() {
        assert_eq!(decode_key(KEYGEN).expect("32-byte key").len(), 32);
        assert_eq!(decode_key("AAAAAAAAAAAAAAAAAAAAAA==").expect("16").len(), 16);
        assert_eq!(decode_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").expect("24").len(), 24);
        let e = decode_key("AAAA").expect_err("3 bytes");
        assert!(e.to_string().contains("16, 24 or 32"), "{e}");
        let e = decode_key("not base64!").expect_err("garbage");
        assert!(e.to_string().contains("decode"), "{e}");
        assert_eq!(encode_key(&decode_key(KEYGEN).expect("key")), KEYGEN);
    }

    #[test]
    fn sealed_messages_open_with_any_installed_key_only() {
        for len in [16, 24, 32] {
            let old = vec![7u8; len];
            let new = vec![9u8; 32];
            let sender = Keyring::new(std::slice::from_ref(&old)).expect("ring");
            let rotating = Keyring::new(&[new.clone(), old.clone()]).expect("ring");
            let other = Keyring::new(&[new]).expect("ring");
            let sealed = sender.seal(b"hdr", b"hello").expect("sealed");
            assert_eq!(rotating.open(b"hdr", &sealed).as_deref(), Some(&b"hello"[..]));
            assert_eq!(other.open(b"hdr", &sealed), None, "a foreign key cannot read it");
            assert_eq!(rotating.open(b"HDR", &sealed), None, "the header is authenticated");
            assert_ne!(sender.seal(b"hdr", b"hello"), Some(sealed), "fresh nonce each time");
        }
    }

    #[test]
    fn short_or_tampered_bodies_are_rejected() {
        let ring = Keyring::new(&[vec![1u8; 16]]).expect("ring");
        assert_eq!(ring.open(b"", &[0u8; 10]), None);
        let mut sealed = ring.seal(b"", b"payload").expect("sealed");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(ring.open(b"", &sealed), None);
    }

    #[test]
    fn install_use_remove_follow_memberlist() {
        let (a, b, c) = (vec![1u8; 32], vec![2u8; 16], vec![3u8; 24]);
        let mut ring = Keyring::new(std::slice::from_ref(&a)).expect("ring");
        ring.install(&b).expect("install");
        ring.install(&b).expect("installing twice is a no-op");
        ring.install(&c).expect("install");
        assert_eq!(ring.encoded(), [encode_key(&a), encode_key(&b), encode_key(&c)]);
        assert_eq!(ring.install(&[0u8; 5]), Err(KeyringError::KeySize));
        assert_eq!(ring.use_key(&[4u8; 32]), Err(KeyringError::NotInstalled));
        ring.use_key(&c).expect("use");
        assert_eq!(ring.encoded(), [encode_key(&c), encode_key(&a), encode_key(&b)]);
        assert_eq!(ring.remove(&c), Err(KeyringError::RemovePrimary));
        ring.remove(&a).expect("remove");
        ring.remove(&a).expect("removing an absent key is a no-op");
        assert_eq!(ring.encoded(), [encode_key(&c), encode_key(&b)]);
        let sealed = ring.seal(b"", b"x").expect("sealed");
        let only_c = Keyring::new(std::slice::from_ref(&c)).expect("ring");
        assert_eq!(only_c.open(b"", &sealed).as_deref(), Some(&b"x"[..]), "the new primary encrypts");
    }

    #[test]
    fn a_plaintext_ring_cannot_be_changed() {
        let mut ring = Keyring::new(&[]).expect("empty");
        assert_eq!(ring.install(&[1u8; 32]), Err(KeyringError::NothingToModify));
        assert_eq!(ring.use_key(&[1u8; 32]), Err(KeyringError::NothingToModify));
        assert_eq!(ring.remove(&[1u8; 32]), Err(KeyringError::NothingToModify));
        let shared = SharedRing::new(ring, None);
        assert_eq!(shared.apply(&KeyringOp::List), Err(KeyringError::Empty));
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let key = vec![0xABu8; 32];
        let ring = Keyring::new(std::slice::from_ref(&key)).expect("ring");
        let text = format!(
            "{ring:?} {:?}",
            SharedRing::new(Keyring::new(std::slice::from_ref(&key)).expect("r"), None)
        );
        assert!(!text.contains(&encode_key(&key)) && !text.contains("171"), "{text}");
        let op = format!("{:?}", KeyringOp::Install(key.clone()));
        assert!(!op.contains("171") && !op.contains(&encode_key(&key)), "{op}");
    }
}
