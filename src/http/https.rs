//! The HTTPS API on `ports.https`: the same router behind TLS. Handshakes run in their own
//! tasks (a slow or silent client never holds up the accept loop) and each uses the agent's
//! current HTTPS config, so a certificate reload applies to the next connection while open
//! ones (long blocking queries) keep going.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::HttpState;
use crate::tls::AgentTls;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Completed TLS connections, as axum's `serve` takes them.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task ended (shutdown): wait for the graceful stop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client address of an HTTPS request (axum's `ConnectInfo` for the TLS listener).
#[derive(Debug, Clone, Copy)]
pub struct TlsPeer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        TlsPeer(*stream.remote_addr())
    }
}

/// Serves the API over TLS on `listener` until `shutdown`.
pub async fn serve_https(
    listener: TcpListener,
    state: HttpState,
    tls: Arc<AgentTls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let (stream, from) = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("https: accept failed: {e}");
                        continue;
                    }
                },
            };
            let Some(config) = tls.https_server() else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send((s, from)).await;
                    }
                    Ok(Err(e)) => tracing::debug!("https: handshake with {from} failed: {e}"),
                    Err(_) => tracing::debug!("https: handshake with {from} timed out"),
                }
            });
        }
    });
    let app = super::router(state).into_make_service_with_connect_info::<TlsPeer>();
    axum::serve(TlsListener { ready: rx, local }, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
