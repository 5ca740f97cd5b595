//! Real in-memory rustls handshakes with the configs this crate builds.

mod common;

use std::sync::Arc;

use common::*;
use sekisho_pki::rustls::client::ResolvesClientCert;
use sekisho_pki::rustls::{self, CertificateError, ProtocolVersion};
use sekisho_pki::{
    ClientAuth, Error, LeafParams, ReloadableCert, Role, ServerNameCheck, TlsMaterial, TlsOptions,
    TlsVersion, client_config, client_config_with_resolver, issue, peer_is_server, server_config,
    server_config_with_resolver,
};

const SERVER_NAME: &str = "server.dc1.consul";

fn opts() -> TlsOptions {
    TlsOptions::default()
}

#[test]
fn mutual_tls_succeeds_and_identifies_peers() {
    let ca = ca();
    let (server, client) = (leaf(&ca, Role::Server), leaf(&ca, Role::Client));
    let alpn = TlsOptions::new(TlsVersion::Tls12, vec![b"sekisho-rpc".to_vec()]);
    let server_cfg = server_config(&material(&ca, &server), ClientAuth::Required, &alpn).unwrap();
    let client_cfg = client_config(&material(&ca, &client), ServerNameCheck::Verify, &alpn).unwrap();
    let (mut c, mut s) = handshake(client_cfg, server_cfg, SERVER_NAME).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"sekisho-rpc"[..]));
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(send_to_server(&mut c, &mut s, b"ping"), b"ping");
    let client_chain = s.peer_certificates().expect("client presented a certificate");
    assert!(!peer_is_server(client_chain, "dc1", "consul"));
    assert!(peer_is_server(c.peer_certificates().unwrap(), "dc1", "consul"));
    assert!(!peer_is_server(c.peer_certificates().unwrap(), "dc2", "consul"));
    assert!(!peer_is_server(&[], "dc1", "consul"));
}

#[test]
fn server_certificate_as_client_is_recognised_as_server() {
    let ca = ca();
    let server = leaf(&ca, Role::Server);
    let m = material(&ca, &server);
    let server_cfg = server_config(&m, ClientAuth::Required, &opts()).unwrap();
    let client_cfg = client_config(&m, ServerNameCheck::Verify, &opts()).unwrap();
    let (_c, s) = handshake(client_cfg, server_cfg, SERVER_NAME).unwrap();
    assert!(peer_is_server(s.peer_certificates().unwrap(), "dc1", "consul"));
}

#[test]
fn required_client_auth_refuses_anonymous_client() {
    let ca = ca();
    let server = leaf(&ca, Role::Server);
    let server_cfg = server_config(&material(&ca, &server), ClientAuth::Required, &opts()).unwrap();
    let roots = material(&ca, &server).ca_roots;
    let anonymous = client_config_with_resolver(&roots, None, ServerNameCheck::Verify, &opts()).unwrap();
    let (side, err) = handshake(anonymous.clone(), server_cfg, SERVER_NAME).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(matches!(err, rustls::Error::NoCertificatesPresented), "{err}");

    let optional = server_config(&material(&ca, &server), ClientAuth::Optional, &opts()).unwrap();
    let (_c, s) = handshake(anonymous.clone(), optional, SERVER_NAME).unwrap();
    assert!(s.peer_certificates().is_none());
    let none = server_config(&material(&ca, &server), ClientAuth::None, &opts()).unwrap();
    handshake(anonymous, none, SERVER_NAME).unwrap();
}

#[test]
fn client_cert_from_foreign_ca_is_refused() {
    let (ca, other) = (ca(), ca());
    let server = leaf(&ca, Role::Server);
    let intruder = leaf(&other, Role::Client);
    let server_cfg = server_config(&material(&ca, &server), ClientAuth::Required, &opts()).unwrap();
    let intruder_material =
        TlsMaterial::from_pem(&ca.cert_pem, &intruder.cert_pem, &intruder.key_pem).unwrap();
    let client_cfg = client_config(&intruder_material, ServerNameCheck::Verify, &opts()).unwrap();
    let (side, err) = handshake(client_cfg, server_cfg, SERVER_NAME).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(matches!(err, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), "{err}");
}

#[test]
fn hostname_verification_vs_chain_only() {
    let ca = ca();
    let impostor = leaf(&ca, Role::Client); // a client certificate pretending to be a server
    let client = leaf(&ca, Role::Client);
    let server_cfg = server_config(&material(&ca, &impostor), ClientAuth::Required, &opts()).unwrap();

    let strict = client_config(&material(&ca, &client), ServerNameCheck::Verify, &opts()).unwrap();
    let (side, err) = handshake(strict, server_cfg.clone(), SERVER_NAME).unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })),
        "{err}"
    );

    let lax = client_config(&material(&ca, &client), ServerNameCheck::ChainOnly, &opts()).unwrap();
    let (c, _s) = handshake(lax.clone(), server_cfg, SERVER_NAME).unwrap();
    assert!(!peer_is_server(c.peer_certificates().unwrap(), "dc1", "consul"));

    // ChainOnly still verifies the chain.
    let other = ca_other_server();
    let (side, err) = handshake(lax, other, SERVER_NAME).unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(matches!(err, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), "{err}");
}

fn ca_other_server() -> Arc<rustls::ServerConfig> {
    let other = ca();
    let server = leaf(&other, Role::Server);
    server_config(&material(&other, &server), ClientAuth::None, &opts()).unwrap()
}

#[test]
fn reload_swaps_certificate_for_new_handshakes() {
    let ca = ca();
    let (first, second) = (leaf(&ca, Role::Server), leaf(&ca, Role::Server));
    let resolver = Arc::new(ReloadableCert::from_pem(&first.cert_pem, &first.key_pem).unwrap());
    let roots = material(&ca, &first).ca_roots;
    let server_cfg =
        server_config_with_resolver(&roots, resolver.clone(), ClientAuth::None, &opts()).unwrap();
    // A fresh client config per handshake: a shared one would resume the TLS session and
    // not be shown the server certificate again.
    let client_cfg = || client_config_with_resolver(&roots, None, ServerNameCheck::Verify, &opts()).unwrap();
    let serial = |pem: &str| sekisho_pki::parse_pem_chain(pem).unwrap()[0].serial.clone();

    let (c, _) = handshake(client_cfg(), server_cfg.clone(), SERVER_NAME).unwrap();
    assert_eq!(server_serial_seen_by(&c), serial(&first.cert_pem));

    resolver.replace_pem(&second.cert_pem, &second.key_pem).unwrap();
    let (c, _) = handshake(client_cfg(), server_cfg.clone(), SERVER_NAME).unwrap();
    assert_eq!(server_serial_seen_by(&c), serial(&second.cert_pem));

    // A bad replacement (key of another cert) is refused and the current cert stays.
    let err = resolver.replace_pem(&first.cert_pem, &second.key_pem).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch), "{err}");
    assert!(resolver.replace_pem("garbage", &second.key_pem).is_err());
    assert!(resolver.replace_pem(&first.cert_pem, "").is_err());
    let (c, _) = handshake(client_cfg(), server_cfg, SERVER_NAME).unwrap();
    assert_eq!(server_serial_seen_by(&c), serial(&second.cert_pem));
}

#[test]
fn reloadable_client_certificate() {
    let ca = ca();
    let server = leaf(&ca, Role::Server);
    let (c1, c2) = (leaf(&ca, Role::Client), leaf(&ca, Role::Client));
    let resolver = Arc::new(ReloadableCert::new(&material(&ca, &c1)).unwrap());
    assert!(resolver.has_certs());
    let roots = material(&ca, &server).ca_roots;
    let client_cfg = || {
        let resolver: Arc<dyn ResolvesClientCert> = resolver.clone();
        client_config_with_resolver(&roots, Some(resolver), ServerNameCheck::Verify, &opts()).unwrap()
    };
    let server_cfg = server_config(&material(&ca, &server), ClientAuth::Required, &opts()).unwrap();
    let serial_seen = |s: &rustls::ServerConnection| {
        sekisho_pki::parse_certificate_der(&s.peer_certificates().unwrap()[0]).unwrap().serial
    };
    let (_, s) = handshake(client_cfg(), server_cfg.clone(), SERVER_NAME).unwrap();
    assert_eq!(serial_seen(&s), sekisho_pki::parse_pem_chain(&c1.cert_pem).unwrap()[0].serial);
    resolver.replace(&material(&ca, &c2)).unwrap();
    let (_, s) = handshake(client_cfg(), server_cfg, SERVER_NAME).unwrap();
    assert_eq!(serial_seen(&s), sekisho_pki::parse_pem_chain(&c2.cert_pem).unwrap()[0].serial);
}

#[test]
fn tls13_minimum_and_key_algorithms() {
    let ca = ca();
    let mut ed = LeafParams::new(Role::Server, now());
    ed.algorithm = sekisho_pki::KeyAlgorithm::Ed25519;
    let mut rsa = LeafParams::new(Role::Server, now());
    rsa.key_pem = Some(RSA_PKCS8.into());
    let client = leaf(&ca, Role::Client);
    for params in [ed, rsa] {
        let server = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
        for (sv, cv) in [(TlsVersion::Tls13, TlsVersion::Tls12), (TlsVersion::Tls12, TlsVersion::Tls12)] {
            let server_cfg =
                server_config(&material(&ca, &server), ClientAuth::Required, &TlsOptions::new(sv, vec![]))
                    .unwrap();
            let client_cfg =
                client_config(&material(&ca, &client), ServerNameCheck::Verify, &TlsOptions::new(cv, vec![]))
                    .unwrap();
            let (c, _) = handshake(client_cfg, server_cfg, SERVER_NAME).unwrap();
            assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        }
    }
}

#[test]
fn config_errors() {
    let ca = ca();
    let server = leaf(&ca, Role::Server);
    let mut no_roots = material(&ca, &server);
    no_roots.ca_roots.clear();
    assert!(matches!(server_config(&no_roots, ClientAuth::Required, &opts()), Err(Error::Tls(_))));
    server_config(&no_roots, ClientAuth::None, &opts()).unwrap();
    assert!(matches!(client_config(&no_roots, ServerNameCheck::Verify, &opts()), Err(Error::Tls(_))));
    let other = leaf(&ca, Role::Server);
    let err = TlsMaterial::from_pem(&ca.cert_pem, &server.cert_pem, &other.key_pem).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch), "{err}");
    let m = TlsMaterial::from_pem("", &server.cert_pem, &server.key_pem).unwrap();
    assert!(m.ca_roots.is_empty());
    assert!(format!("{m:?}").contains("redacted"));
}

#[test]
fn refused_certificates_are_reported_with_their_subject_and_expiry() {
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    let ca = ca();
    let server = leaf(&ca, Role::Server);
    // A client certificate that expired yesterday.
    let mut params = LeafParams::new(Role::Client, SystemTime::now() - Duration::from_secs(3 * 86_400));
    params.days = 2;
    let expired = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = seen.clone();
        sekisho_pki::RejectHook::new(move |r| seen.lock().unwrap().push(r.clone()))
    };
    let mut reporting = opts();
    reporting.on_reject = Some(hook);
    let server_cfg = server_config(&material(&ca, &server), ClientAuth::Required, &reporting).unwrap();
    let client_cfg = client_config(&material(&ca, &expired), ServerNameCheck::Verify, &opts()).unwrap();
    let (side, err) = handshake(client_cfg, server_cfg, SERVER_NAME).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })),
        "{err}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let r = &seen[0];
    assert_eq!(r.side, sekisho_pki::PeerSide::Client);
    assert!(r.subject.contains("client.dc1.consul"), "{r:?}");
    let info = &sekisho_pki::parse_pem_chain(&expired.cert_pem).unwrap()[0];
    assert_eq!((r.not_after, r.serial.as_str()), (info.not_after, info.serial.as_str()));
    assert!(r.reason.contains("expired"), "{r:?}");
}
