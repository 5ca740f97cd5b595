//! Parsing, `explain`, private keys and CSRs.

mod common;

use std::time::Duration;

use common::*;
use sekisho_pki::rustls::pki_types::pem::PemObject;
use sekisho_pki::rustls::pki_types::{CertificateSigningRequestDer, PrivateKeyDer};
use sekisho_pki::{
    CertRole, Error, KeyAlgorithm, LeafParams, Purpose, Role, explain, generate_csr, issue, parse_pem_chain,
    parse_private_key, sign_csr, verify_chain,
};

#[test]
fn parse_server_leaf_and_chain() {
    let ca = ca();
    let mut params = LeafParams::new(Role::Server, now());
    params.node = Some("n1".into());
    let server = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let chain = parse_pem_chain(&format!("{}{}", server.cert_pem, ca.cert_pem)).unwrap();
    assert_eq!(chain.len(), 2);
    let (leaf, root) = (&chain[0], &chain[1]);
    assert_eq!(leaf.subject_cn.as_deref(), Some("server.dc1.consul"));
    assert_eq!(leaf.subject, "CN=server.dc1.consul");
    assert_eq!(leaf.issuer, root.subject);
    assert_eq!(leaf.role, CertRole::Server);
    assert_eq!(leaf.dc_and_domain, Some(("dc1".into(), "consul".into())));
    assert_eq!(leaf.dns_sans, ["server.dc1.consul", "n1.server.dc1.consul", "localhost"]);
    assert_eq!(leaf.ip_sans, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    let eku = leaf.ext_key_usage.unwrap();
    assert!(eku.server_auth && eku.client_auth && !eku.any);
    assert!(!leaf.is_ca && root.is_ca && root.self_issued && !leaf.self_issued);
    assert_eq!(root.role, CertRole::Ca);
    assert_eq!(leaf.serial.split(':').count(), 16);
    assert_eq!(leaf.fingerprint_sha256.split(':').count(), 32);
    assert!(leaf.has_server_name("dc1", "consul") && leaf.has_server_name("DC1", "consul."));
    assert!(!leaf.has_server_name("dc2", "consul"));
    assert!((364..=365).contains(&leaf.days_left(now())));
    assert!(!leaf.is_expired(now()) && leaf.is_expired(now() + 366 * DAY));
    assert!(leaf.expires_within(now(), 366 * DAY) && !leaf.expires_within(now(), Duration::from_secs(3600)));
}

#[test]
fn cli_role_and_missing_eku() {
    let ca = ca();
    let info = &parse_pem_chain(&leaf(&ca, Role::Cli).cert_pem).unwrap()[0];
    assert_eq!(info.role, CertRole::Cli);
    assert_eq!(info.ext_key_usage, None);
    assert!(info.allows_server_auth() && info.allows_client_auth());
    assert!(info.ip_sans.is_empty());
}

#[test]
fn explain_lists_fields_and_warnings() {
    let ca = ca();
    let client = &parse_pem_chain(&leaf(&ca, Role::Client).cert_pem).unwrap()[0];
    let lines = explain(client, now(), Some(("dc1", "consul")));
    let text = lines.join("\n");
    for needle in [
        "Subject:      CN=client.dc1.consul",
        "client (datacenter dc1",
        "DNS names:    client.dc1.consul, localhost",
        "127.0.0.1",
        "server auth, client auth",
        "Days left:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("WARNING"), "{text}");

    let server = &parse_pem_chain(&leaf(&ca, Role::Server).cert_pem).unwrap()[0];
    let text = explain(server, now(), Some(("dc2", "consul"))).join("\n");
    assert!(text.contains("WARNING: no DNS name server.dc2.consul"), "{text}");
    assert!(!explain(server, now(), Some(("dc1", "consul"))).join("\n").contains("WARNING"));

    let soon = explain(server, now() + 350 * DAY, None).join("\n");
    assert!(soon.contains("WARNING: the certificate expires in"), "{soon}");
    let expired = explain(server, now() + 400 * DAY, None).join("\n");
    assert!(expired.contains("WARNING: the certificate expired on"), "{expired}");
}

#[test]
fn garbage_truncated_empty_and_wrong_blocks() {
    let ca = ca();
    assert!(matches!(parse_pem_chain(""), Err(Error::NoCertificate)));
    assert!(matches!(parse_pem_chain("this is not a certificate"), Err(Error::NoCertificate)));
    let truncated = &ca.cert_pem[..ca.cert_pem.len() / 2];
    assert!(matches!(parse_pem_chain(truncated), Err(Error::Pem(_))));
    let cut_der = ca
        .cert_pem
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(matches!(parse_pem_chain(&cut_der), Err(Error::Pem(_) | Error::Certificate(_))), "{cut_der}");
    let bad_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    assert!(matches!(parse_pem_chain(bad_der), Err(Error::Certificate(_))));
    let err = parse_pem_chain(&ca.key_pem).unwrap_err();
    assert!(matches!(err, Error::UnexpectedPemBlock { ref found, .. } if found == "PRIVATE KEY"), "{err}");
    let csr = generate_csr(KeyAlgorithm::EcdsaP256, "x", &[], &[]).unwrap();
    assert!(matches!(parse_pem_chain(&csr.csr_pem), Err(Error::UnexpectedPemBlock { .. })));
    let bin = String::from_utf8_lossy(&[0xff, 0x00, 0x13, 0x37]).into_owned();
    assert!(parse_pem_chain(&bin).is_err());
}

#[test]
fn private_key_formats() {
    let ca = ca();
    assert!(matches!(parse_private_key(&ca.key_pem).unwrap(), PrivateKeyDer::Pkcs8(_)));
    assert!(matches!(parse_private_key(RSA_PKCS1).unwrap(), PrivateKeyDer::Pkcs1(_)));
    assert!(matches!(parse_private_key(OPENSSL_CA_SEC1_KEY).unwrap(), PrivateKeyDer::Sec1(_)));
    assert!(matches!(parse_private_key(&ca.cert_pem), Err(Error::NoPrivateKey)));
    assert!(matches!(parse_private_key(""), Err(Error::NoPrivateKey)));
    let garbage = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
    assert!(matches!(parse_private_key(garbage), Err(Error::PrivateKey(_))));
    // A combined cert+key file still yields the key.
    parse_private_key(&format!("{}{}", ca.cert_pem, ca.key_pem)).unwrap();
}

#[test]
fn csr_is_signed_with_caller_chosen_names() {
    let ca = ca();
    let requested = ["evil.example.com".to_owned(), "server.dc1.consul".to_owned()];
    let csr = generate_csr(
        KeyAlgorithm::EcdsaP256,
        "server.dc1.consul",
        &requested,
        &["10.9.9.9".parse().unwrap()],
    )
    .unwrap();
    let mut params = LeafParams::new(Role::Client, now());
    params.additional_dns = vec!["node7.agents.consul".into()];
    let cert_pem = sign_csr(&ca.cert_pem, &ca.key_pem, csr.csr_pem.as_bytes(), &params).unwrap();
    let info = &parse_pem_chain(&cert_pem).unwrap()[0];
    assert_eq!(info.subject_cn.as_deref(), Some("client.dc1.consul"));
    assert_eq!(info.dns_sans, ["client.dc1.consul", "localhost", "node7.agents.consul"]);
    assert_eq!(info.ip_sans, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(info.role, CertRole::Client);
    verify_chain(&cert_pem, &ca.cert_pem, now(), Some(Purpose::ClientAuth), None).unwrap();
    // The requester's key pairs with the issued certificate.
    sekisho_pki::TlsMaterial::from_pem(&ca.cert_pem, &cert_pem, &csr.key_pem).unwrap();

    // DER input works too; garbage does not.
    let der = CertificateSigningRequestDer::from_pem_slice(csr.csr_pem.as_bytes()).unwrap().as_ref().to_vec();
    sign_csr(&ca.cert_pem, &ca.key_pem, &der, &params).unwrap();
    assert!(matches!(sign_csr(&ca.cert_pem, &ca.key_pem, b"junk", &params), Err(Error::Csr(_))));
    assert!(matches!(sign_csr(&ca.cert_pem, &ca.key_pem, b"", &params), Err(Error::Csr(_))));
}
