//! Full-state push-pull over TCP, on the same port as the UDP gossip. `join` uses it to
//! exchange state with a seed (which may refuse a conflicting name or node ID); the driver
//! uses it periodically with a random live member (anti-entropy) and with a random failed one
//! (to heal partitions). Keyring operations (`keyring_op.rs`) ride on the same channel.
//!
//! ```text
//! initiator                                   responder (listener task)
//!   ── frame: PushPull{join, from, members} ──►  decode ─► driver: check, reply, merge
//!   ◄── frame: PushPull{...} | Refuse(reason) ─
//!   ── frame: KeyringRequest(op) ─────────────►  decode ─► keyring: apply (and save)
//!   ◄── frame: KeyringReply{keys, error} ──────
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::driver::Command;
use super::wire::{self, FrameError, StreamMsg};
use super::{Shared, keyring_op};
use crate::net::fault::Verdict;

/// Concurrent inbound exchanges; more are closed at once.
const MAX_INBOUND: usize = 64;

/// Accepts push-pull connections until cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedSender<Command>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("gossip: tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!("gossip: too many push-pull connections; closed one from {peer}");
            continue;
        };
        let (shared, cmds, cancel) = (shared.clone(), cmds.clone(), cancel.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = shared.timing.tcp_timeout;
            let work = respond(stream, &shared, &cmds);
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = tokio::time::timeout(deadline, work) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!("gossip: push-pull from {peer}: {e}"),
                    Err(_) => tracing::debug!("gossip: push-pull from {peer} timed out"),
                },
            }
        });
    }
}

async fn respond(
    mut stream: TcpStream,
    shared: &Arc<Shared>,
    cmds: &mpsc::UnboundedSender<Command>,
) -> std::io::Result<()> {
    let frame = wire::read_frame(&mut stream).await?;
    let decoded = wire::decode_msg(&shared.keyring.read(), &frame);
    let msg = match decoded {
        Ok(StreamMsg::PushPull(msg)) => msg,
        Ok(StreamMsg::KeyringRequest(op)) => {
            let reply = StreamMsg::KeyringReply(keyring_op::apply_local(shared.clone(), op).await);
            return write_msg(&mut stream, shared, &reply).await;
        }
        Ok(StreamMsg::Refuse(_) | StreamMsg::KeyringReply(_)) => return Ok(()),
        Err(e) => {
            let counter = match e {
                FrameError::Malformed => &shared.counters.malformed,
                _ => &shared.counters.undecryptable,
            };
            counter.fetch_add(1, Relaxed);
            return wire::write_plain_refusal(&mut stream, e.reason()).await;
        }
    };
    let (tx, rx) = oneshot::channel();
    cmds.send(Command::Incoming { msg, reply: tx }).map_err(std::io::Error::other)?;
    let reply = rx.await.map_err(std::io::Error::other)?;
    write_msg(&mut stream, shared, &reply).await
}

/// Encodes under the keyring (released before writing), then writes.
async fn write_msg(stream: &mut TcpStream, shared: &Shared, msg: &StreamMsg) -> std::io::Result<()> {
    let frame = wire::encode_msg(&shared.keyring.read(), msg)?;
    wire::write_frame(stream, &frame).await
}

/// Sends `msg` to `target` and reads its answer, through the fault plan and within
/// `tcp_timeout`. Errors read like Go's dial errors, for `join`'s messages.
pub(crate) async fn exchange(
    shared: &Shared,
    target: SocketAddr,
    msg: &StreamMsg,
) -> Result<StreamMsg, String> {
    match shared.faults.verdict(shared.advertise.ip(), target.ip()) {
        Verdict::Drop => return Err(format!("dial tcp {target}: i/o timeout")),
        Verdict::Deliver(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Deliver(_) => {}
    }
    let work = async {
        let mut s = TcpStream::connect(target).await.map_err(|e| format!("dial tcp {target}: {e}"))?;
        write_msg(&mut s, shared, msg).await.map_err(|e| format!("write tcp {target}: {e}"))?;
        let frame = wire::read_frame(&mut s).await.map_err(|e| format!("read tcp {target}: {e}"))?;
        let decoded = wire::decode_msg(&shared.keyring.read(), &frame);
        decoded.map_err(|e| format!("reply from {target}: {}", e.reason()))
    };
    tokio::time::timeout(shared.timing.tcp_timeout, work)
        .await
        .map_err(|_| format!("read tcp {target}: i/o timeout"))?
}
