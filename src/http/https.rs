//! The HTTPS API on `ports.https`: the same router behind TLS, through the same accept loop
//! as HTTP (`http/listen.rs`). Handshakes run in each connection's own task (a slow or
//! silent client never holds up the accept loop, and is dropped after
//! `limits.https_handshake_timeout`), and each uses the agent's current HTTPS config, so a
//! certificate reload applies to the next connection while open ones (long blocking queries)
//! keep going.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::HttpState;
use super::listen::{self, Transport};
use crate::tls::AgentTls;

/// Serves the API over TLS on `listener` until `shutdown`.
pub async fn serve_https(
    listener: TcpListener,
    state: HttpState,
    tls: Arc<AgentTls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    listen::serve(listener, super::router(state), Transport::Tls(tls), limits, shutdown).await
}
