//! The TCP and UDP probes (Consul's `CheckTCP`, `CheckUDP`).
//!
//! UDP follows what Consul's `CheckUDP` means to do: send an (empty) datagram on a connected
//! socket and wait up to the timeout. A reply, or silence, is passing; only an error, in
//! practice the ICMP port-unreachable that Linux reports as `connection refused`, is critical.
//! (Consul's own code sets no read deadline, so a silent server leaves its probe hanging; here
//! the timeout ends the wait.)

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::Status;
use super::net::{dial_tcp, os_err, resolve};

/// Passing `TCP connect <addr>: Success` when a connection opens within the timeout.
pub(crate) async fn check_tcp(addr: &str, timeout: Duration) -> (Status, String) {
    match dial_tcp(addr, Instant::now() + timeout).await {
        Ok(_) => (Status::Passing, format!("TCP connect {addr}: Success")),
        Err(e) => (Status::Critical, e),
    }
}

/// Passing `UDP connect <addr>: Success` unless sending or receiving fails.
pub(crate) async fn check_udp(addr: &str, timeout: Duration) -> (Status, String) {
    let deadline = Instant::now() + timeout;
    match udp_probe(addr, deadline).await {
        Ok(()) => (Status::Passing, format!("UDP connect {addr}: Success")),
        Err(e) => (Status::Critical, e),
    }
}

async fn udp_probe(addr: &str, deadline: Instant) -> Result<(), String> {
    let target = *resolve(addr, "udp", deadline)
        .await?
        .first()
        .ok_or_else(|| format!("dial udp {addr}: no address"))?;
    let any: SocketAddr =
        if target.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(any).await.map_err(|e| format!("dial udp {target}: {}", os_err(&e)))?;
    sock.connect(target).await.map_err(|e| format!("dial udp {target}: connect: {}", os_err(&e)))?;
    let local = sock.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    sock.send(&[]).await.map_err(|e| format!("write udp {local}->{target}: write: {}", os_err(&e)))?;
    let mut buf = [0u8; 1];
    match timeout_at(deadline, sock.recv(&mut buf)).await {
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(format!("read udp {local}->{target}: read: {}", os_err(&e))),
    }
}
