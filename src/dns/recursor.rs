//! Forwarding questions outside the domains to `recursors`: the client's own bytes with a
//! fresh ID, over the client's transport, to each recursor in turn (configured order, or
//! shuffled with `recursor_strategy = "random"`) until one answers NOERROR or NXDOMAIN
//! within `recursor_timeout`. The caller relays the answer with RA set, or SERVFAIL.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use rand::RngExt;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// The largest UDP answer we accept from a recursor.
const MAX_UDP_ANSWER: usize = 65535;

/// The upstream servers and how to use them.
#[derive(Debug, Clone)]
pub(crate) struct Recursor {
    servers: Vec<SocketAddr>,
    random: bool,
    timeout: Duration,
}

impl Recursor {
    /// `None` without servers: out-of-domain questions are then REFUSED.
    pub(crate) fn new(servers: Vec<SocketAddr>, strategy: &str, timeout: Duration) -> Option<Recursor> {
        (!servers.is_empty()).then(|| Recursor { servers, random: strategy == "random", timeout })
    }

    /// Forwards the raw `request` (its first two bytes are the ID); `None` when every
    /// recursor failed, timed out or answered something other than NOERROR/NXDOMAIN.
    pub(crate) async fn forward(&self, request: &[u8], tcp: bool) -> Option<Message> {
        if request.len() < 12 {
            return None;
        }
        let mut order = self.servers.clone();
        if self.random {
            order.shuffle(&mut rand::rng());
        }
        for server in order {
            let id: u16 = rand::rng().random();
            let mut query = request.to_vec();
            query[..2].copy_from_slice(&id.to_be_bytes());
            let deadline = Instant::now() + self.timeout;
            let exchanged = if tcp {
                timeout_at(deadline, exchange_tcp(server, &query)).await
            } else {
                timeout_at(deadline, exchange_udp(server, &query, id)).await
            };
            let answer = match exchanged {
                Ok(Ok(bytes)) => Message::from_vec(&bytes).ok(),
                Ok(Err(e)) => {
                    tracing::debug!(recursor = %server, error = %e, "recursor failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(recursor = %server, "recursor timed out");
                    None
                }
            };
            if let Some(m) = answer.filter(|m| acceptable(m, id)) {
                return Some(m);
            }
        }
        None
    }
}

fn acceptable(m: &Message, id: u16) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && matches!(m.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain)
}

async fn exchange_udp(server: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let local: SocketAddr =
        if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP_ANSWER];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Ignore stray datagrams; the caller's deadline bounds the wait.
        if n >= 2 && buf[..2] == id.to_be_bytes() {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too long for TCP"))?;
    let mut stream = TcpStream::connect(server).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}
