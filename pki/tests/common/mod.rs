//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sekisho_pki::rustls::pki_types::ServerName;
use sekisho_pki::rustls::{self, ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use sekisho_pki::{CaBundle, CaParams, LeafBundle, LeafParams, Role, TlsMaterial, create_ca, issue};

pub const RSA_PKCS8: &str = include_str!("../fixtures/rsa2048-pkcs8.pem");
pub const RSA_PKCS1: &str = include_str!("../fixtures/rsa2048-pkcs1.pem");
pub const OPENSSL_CA: &str = include_str!("../fixtures/consul-ca-openssl.pem");
pub const OPENSSL_CA_SEC1_KEY: &str = include_str!("../fixtures/consul-ca-sec1-key.pem");

pub const DAY: Duration = Duration::from_secs(86_400);

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn ca() -> CaBundle {
    create_ca(&CaParams::new(now())).expect("create CA")
}

pub fn leaf(ca: &CaBundle, role: Role) -> LeafBundle {
    issue(&ca.cert_pem, &ca.key_pem, &LeafParams::new(role, now())).expect("issue leaf")
}

pub fn material(ca: &CaBundle, leaf: &LeafBundle) -> TlsMaterial {
    TlsMaterial::from_pem(&ca.cert_pem, &leaf.cert_pem, &leaf.key_pem).expect("material")
}

/// The DER of the first certificate in `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    sekisho_pki::parse_certificates(pem).expect("certificate PEM").remove(0).to_vec()
}

/// Which side of a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Runs a complete in-memory handshake (no sockets) and returns both connections, or the
/// first error with the side that raised it.
pub fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), (Side, rustls::Error)> {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut client = ClientConnection::new(client, name).expect("client connection");
    let mut server = ServerConnection::new(server).expect("server connection");
    for _ in 0..32 {
        pump_to_server(&mut client, &mut server).map_err(|e| (Side::Server, e))?;
        pump_to_client(&mut server, &mut client).map_err(|e| (Side::Client, e))?;
        let idle = !client.wants_write() && !server.wants_write();
        if idle && !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
    }
    panic!("handshake did not complete");
}

fn pump_to_server(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut buf).expect("write_tls");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        server.read_tls(&mut rd).expect("read_tls");
        server.process_new_packets()?;
    }
    Ok(())
}

fn pump_to_client(server: &mut ServerConnection, client: &mut ClientConnection) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut buf).expect("write_tls");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        client.read_tls(&mut rd).expect("read_tls");
        client.process_new_packets()?;
    }
    Ok(())
}

/// Sends `msg` from client to server over an established connection and returns what the
/// server read.
pub fn send_to_server(client: &mut ClientConnection, server: &mut ServerConnection, msg: &[u8]) -> Vec<u8> {
    client.writer().write_all(msg).expect("write plaintext");
    pump_to_server(client, server).expect("pump");
    let mut out = vec![0u8; msg.len()];
    server.reader().read_exact(&mut out).expect("read plaintext");
    out
}

/// Serial (colon hex) of the peer's leaf certificate as seen by the client.
pub fn server_serial_seen_by(client: &ClientConnection) -> String {
    let certs = client.peer_certificates().expect("peer certificates");
    sekisho_pki::parse_certificate_der(&certs[0]).expect("parse peer cert").serial
}
