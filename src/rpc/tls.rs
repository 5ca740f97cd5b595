//! TLS on server RPC, the acceptor side: TLS or plaintext by the first byte, plaintext
//! refused under `verify_incoming`, and the caller classified by its certificate. Outgoing
//! calls use `net::tls::TlsConnector` with the agent's client config. A client must send its
//! first byte, and then finish its TLS handshake, each within `limits.rpc_handshake_timeout`
//! (Consul's rule), with or without TLS.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::Peer;
use crate::tls::AgentTls;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// An accepted connection after the TLS decision.
pub(crate) enum Accepted {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Decides TLS or plaintext and completes the handshake, each step within `limit`
/// (`limits.rpc_handshake_timeout`). `Err` carries why the connection is dropped (logged by
/// the caller).
pub(crate) async fn accept(
    stream: TcpStream,
    tls: Option<&Arc<AgentTls>>,
    limit: Duration,
) -> Result<(Accepted, Peer), String> {
    let first = first_byte(&stream, limit).await?;
    let plain = Peer::Trusted;
    let Some(tls) = tls else { return Ok((Accepted::Plain(stream), plain)) };
    let Some(config) = tls.rpc_server() else {
        return match tls.rpc_requires_tls() {
            true => Err("verify_incoming is set but this agent has no certificate for RPC yet".into()),
            false => Ok((Accepted::Plain(stream), plain)),
        };
    };
    if first != TLS_HANDSHAKE {
        if tls.rpc_requires_tls() {
            return Err(
                "plaintext RPC refused: verify_incoming requires TLS with a client certificate".into()
            );
        }
        return Ok((Accepted::Plain(stream), plain));
    }
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let s = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Err(_) => return Err(format!("TLS handshake took longer than {limit:?}")),
    };
    let certs = s.get_ref().1.peer_certificates().unwrap_or_default();
    let peer = if !tls.rpc_requires_tls() {
        // Without verify_incoming anyone may connect (Consul's rule); TLS only encrypts.
        Peer::Trusted
    } else if certs.is_empty() {
        Peer::Anonymous
    } else if !tls.verify_server_hostname()
        || sekisho_pki::peer_is_server(certs, tls.datacenter(), tls.domain())
    {
        Peer::Trusted
    } else if !sekisho_pki::peer_server_datacenters(certs, tls.domain()).is_empty() {
        Peer::RemoteServer
    } else {
        Peer::Client
    };
    Ok((Accepted::Tls(Box::new(s)), peer))
}

/// Waits for the first byte (without consuming it) for at most `limit`.
async fn first_byte(stream: &TcpStream, limit: Duration) -> Result<u8, String> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) => Ok(first[0]),
        Ok(Ok(_)) => Err("closed before sending anything".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("sent nothing within {limit:?}")),
    }
}
