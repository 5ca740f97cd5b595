//! Framing of gossip messages, on UDP and TCP alike.
//!
//! ```text
//! frame      = magic 0xA7 | version 1 | kind | body
//! kind 0     : body = payload                                  (no `encrypt` key)
//! kind 1     : body = nonce(12) | AES-GCM(payload) | tag(16)   (the 3 header bytes are
//!                                                               authenticated)
//! UDP        : one frame per datagram, at most 1400 bytes;
//!              payload = channel byte | body
//!              channel 0: body = one foca packet (SWIM)
//!              channel 1: body = one postcard `CoordMsg` (network coordinates)
//!              channel 2: body = postcard `Vec<UserEvent>` (user events, see `user_event`)
//! TCP        : u32 big-endian frame length (at most 8 MiB) | frame; payload = StreamMsg
//!              (push-pull state, a refusal, or a keyring request and its reply)
//! ```
//!
//! A node with keys sends encrypted frames and accepts only those, unless
//! `encrypt_verify_outgoing` / `encrypt_verify_incoming` are off (then it sends plaintext /
//! accepts plaintext too); a node without keys sends and accepts only plaintext. The one
//! exception is a plaintext [`StreamMsg::Refuse`] on TCP, so that a node can tell a joiner
//! why it hung up (for example, that it could not decrypt the request).

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::identity::NodeIdentity;
use super::keyring::{Keyring, NONCE_LEN, TAG_LEN};
use super::keyring_op::{KeyringOp, KeyringReply};

const MAGIC: u8 = 0xA7;
const VERSION: u8 = 1;
const PLAIN: u8 = 0;
const AES_GCM: u8 = 1;
const HEADER_LEN: usize = 3;

/// Largest datagram sent or accepted.
pub(crate) const MAX_DATAGRAM: usize = 1400;
/// Largest foca packet, so that an encrypted frame with its channel byte still fits in a
/// datagram.
pub(crate) const MAX_FOCA_PACKET: usize = MAX_DATAGRAM - HEADER_LEN - NONCE_LEN - TAG_LEN - 1;

/// The UDP channel of SWIM packets.
pub(crate) const CHANNEL_FOCA: u8 = 0;
/// The UDP channel of coordinate pings and acks.
pub(crate) const CHANNEL_COORD: u8 = 1;
/// The UDP channel of user events.
pub(crate) const CHANNEL_EVENT: u8 = 2;
/// Largest TCP frame (full state of thousands of members).
pub(crate) const MAX_STREAM_FRAME: usize = 8 << 20;

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Not one of our frames, or a payload that does not decode.
    Malformed,
    /// Encrypted with no installed key.
    Undecryptable,
    /// Plaintext, but this node requires encryption.
    Unencrypted,
    /// Encrypted, but this node has no keys.
    Encrypted,
}

impl FrameError {
    /// The reason given to a peer whose request was refused.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            FrameError::Malformed => "malformed message",
            FrameError::Undecryptable => "No installed keys could decrypt the message",
            FrameError::Unencrypted => {
                "message is not encrypted but this node requires gossip encryption (encrypt)"
            }
            FrameError::Encrypted => {
                "message is encrypted but this node has no gossip encryption key (encrypt)"
            }
        }
    }
}

/// Wraps `payload` in a frame, encrypted when the keyring has keys (and
/// `encrypt_verify_outgoing` is on).
pub(crate) fn seal(ring: &Keyring, payload: &[u8]) -> Vec<u8> {
    if ring.encrypts() {
        let header = [MAGIC, VERSION, AES_GCM];
        if let Some(body) = ring.seal(&header, payload) {
            let mut out = Vec::with_capacity(HEADER_LEN + body.len());
            out.extend_from_slice(&header);
            out.extend_from_slice(&body);
            return out;
        }
    }
    plain(payload)
}

fn plain(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[MAGIC, VERSION, PLAIN]);
    out.extend_from_slice(payload);
    out
}

/// Unwraps a frame, requiring encryption when the keyring has keys (unless
/// `encrypt_verify_incoming` is off).
pub(crate) fn open(ring: &Keyring, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let (kind, body) = split(frame)?;
    match (kind, ring.is_enabled()) {
        (PLAIN, _) if ring.accepts_plaintext() => Ok(body.to_vec()),
        (PLAIN, _) => Err(FrameError::Unencrypted),
        (_, false) => Err(FrameError::Encrypted),
        (_, true) => ring.open(&frame[..HEADER_LEN], body).ok_or(FrameError::Undecryptable),
    }
}

fn split(frame: &[u8]) -> Result<(u8, &[u8]), FrameError> {
    match frame {
        [MAGIC, VERSION, kind @ (PLAIN | AES_GCM), body @ ..] => Ok((*kind, body)),
        _ => Err(FrameError::Malformed),
    }
}

/// A TCP message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StreamMsg {
    /// Full state, sent by both sides of a push-pull exchange.
    PushPull(PushPull),
    /// The exchange was refused (name or node ID conflict, key mismatch).
    Refuse(String),
    /// Run a keyring operation on the receiving node (`consul keyring`).
    KeyringRequest(KeyringOp),
    /// The receiving node's answer to a [`StreamMsg::KeyringRequest`].
    KeyringReply(KeyringReply),
}

/// One side's full membership state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PushPull {
    /// Sent by `join` (conflicts refuse it) rather than by periodic anti-entropy.
    pub(crate) join: bool,
    /// The sender's current identity.
    pub(crate) from: NodeIdentity,
    /// Every member the sender knows, itself included.
    pub(crate) members: Vec<foca::Member<NodeIdentity>>,
    /// The sender's event clock (Serf's `EventLTime`).
    pub(crate) event_time: u64,
    /// The sender's newest user events, so members that missed their rebroadcasts catch up.
    pub(crate) events: Vec<super::UserEvent>,
}

/// One message as a frame (encrypted when the keyring has keys), for [`write_frame`]; the
/// keyring is needed only for this synchronous step.
pub(crate) fn encode_msg(ring: &Keyring, msg: &StreamMsg) -> io::Result<Vec<u8>> {
    let payload = postcard::to_allocvec(msg).map_err(io::Error::other)?;
    Ok(seal(ring, &payload))
}

/// Writes a refusal in plaintext, readable whatever keys the peer has.
pub(crate) async fn write_plain_refusal<W>(w: &mut W, reason: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let payload = postcard::to_allocvec(&StreamMsg::Refuse(reason.to_owned())).map_err(io::Error::other)?;
    write_frame(w, &plain(&payload)).await
}

/// Writes one frame with its length prefix.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> io::Result<()> {
    let len = u32::try_from(frame.len())
        .ok()
        .filter(|&n| n as usize <= MAX_STREAM_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "state too large to send"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(frame).await?;
    w.flush().await
}

/// Reads one length-prefixed frame, refusing lengths above [`MAX_STREAM_FRAME`].
pub(crate) async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let len = r.read_u32().await? as usize;
    if len > MAX_STREAM_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the {MAX_STREAM_FRAME}-byte limit"),
        ));
    }
    let mut frame = vec![0u8; len];
    r.read_exact(&mut frame).await?;
    Ok(frame)
}

/// Decodes a TCP frame. A plaintext refusal is accepted even when encryption is on.
pub(crate) fn decode_msg(ring: &Keyring, frame: &[u8]) -> Result<StreamMsg, FrameError> {
    match open(ring, frame) {
        Ok(payload) => postcard::from_bytes(&payload).map_err(|_| FrameError::Malformed),
        Err(FrameError::Unencrypted) => match split(frame) {
            Ok((_, body)) => match postcard::from_bytes(body) {
                Ok(refusal @ StreamMsg::Refuse(_)) => Ok(refusal),
                _ => Err(FrameError::Unencrypted),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_enforce_the_encryption_setting() {
        let none = Keyring::new(&[]).expect("empty ring");
        let keyed = Keyring::new(&[vec![3u8; 32]]).expect("ring");
        let other = Keyring::new(&[vec![4u8; 32]]).expect("ring");
        assert_eq!(open(&none, &seal(&none, b"x")), Ok(b"x".to_vec()));
        assert_eq!(open(&keyed, &seal(&keyed, b"x")), Ok(b"x".to_vec()));
        assert_eq!(open(&keyed, &seal(&none, b"x")), Err(FrameError::Unencrypted));
        assert_eq!(open(&none, &seal(&keyed, b"x")), Err(FrameError::Encrypted));
        assert_eq!(open(&other, &seal(&keyed, b"x")), Err(FrameError::Undecryptable));
        for junk in [&b""[..], b"\xA7", b"\xA7\x01\x09rest", b"\x00\x01\x00abc"] {
            assert_eq!(open(&none, junk), Err(FrameError::Malformed), "{junk:?}");
        }
        assert!(seal(&keyed, &[0u8; MAX_FOCA_PACKET + 1]).len() <= MAX_DATAGRAM);
    }

    #[test]
    fn verify_flags_relax_encryption_for_rolling_it_out() {
        let key = vec![3u8; 32];
        let none = Keyring::new(&[]).expect("empty ring");
        let strict = Keyring::new(std::slice::from_ref(&key)).expect("ring");
        let lenient = Keyring::new(std::slice::from_ref(&key)).expect("ring").with_verify(false, false);
        let outgoing = Keyring::new(std::slice::from_ref(&key)).expect("ring").with_verify(false, true);
        assert_eq!(seal(&lenient, b"x"), seal(&none, b"x"), "outgoing off sends plaintext");
        for sender in [&none, &strict, &lenient, &outgoing] {
            assert_eq!(open(&lenient, &seal(sender, b"x")), Ok(b"x".to_vec()), "incoming off takes both");
            assert_eq!(open(&outgoing, &seal(sender, b"x")), Ok(b"x".to_vec()));
        }
        assert_eq!(open(&strict, &seal(&lenient, b"x")), Err(FrameError::Unencrypted));
        assert_eq!(open(&none, &seal(&outgoing, b"x")), Err(FrameError::Encrypted));
    }

    #[tokio::test]
    async fn oversized_stream_frames_are_refused_before_reading_them() {
        let mut input: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        let e = read_frame(&mut input).await.expect_err("too large");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_plaintext_refusal_reaches_an_encrypted_peer() {
        let keyed = Keyring::new(&[vec![3u8; 16]]).expect("ring");
        let mut buf = Vec::new();
        write_plain_refusal(&mut buf, "nope").await.expect("written");
        let frame = read_frame(&mut &buf[..]).await.expect("frame");
        match decode_msg(&keyed, &frame) {
            Ok(StreamMsg::Refuse(r)) => assert_eq!(r, "nope"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
