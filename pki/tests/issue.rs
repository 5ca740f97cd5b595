//! CA creation and leaf issuance: SANs, EKUs, serials, validity, key formats.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::*;
use sekisho_pki::{CaParams, Error, KeyAlgorithm, LeafParams, Purpose, Role, create_ca, issue, verify_chain};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).expect("x509").1
}

fn dns_and_ips(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for name in &cert.subject_alternative_name().unwrap().expect("SAN extension").value.general_names {
        match name {
            GeneralName::DNSName(d) => assert!(dns.insert((*d).to_owned()), "duplicate {d}"),
            GeneralName::IPAddress(b) => assert!(ips.insert(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (dns, ips)
}

fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

#[test]
fn ca_p256_and_ed25519() {
    for (alg, name) in [(KeyAlgorithm::EcdsaP256, "ECDSA P-256"), (KeyAlgorithm::Ed25519, "Ed25519")] {
        let mut params = CaParams::new(now());
        params.algorithm = alg;
        let ca = create_ca(&params).unwrap();
        let der = der(&ca.cert_pem);
        let cert = parse(&der);
        assert!(cert.is_ca());
        assert_eq!(cert.basic_constraints().unwrap().unwrap().value.path_len_constraint, None);
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
        assert!(
            cert.get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
                .unwrap()
                .is_some()
        );
        assert_eq!(cert.raw_serial().len(), 16);
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned();
        assert!(cn.strip_prefix("Consul Agent CA ").unwrap().parse::<u64>().is_ok(), "{cn}");
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
        assert_eq!(days, 1825, "60 s back-dating stays within the day count");
        assert_eq!(sekisho_pki::parse_pem_chain(&ca.cert_pem).unwrap()[0].key_algorithm, name);
        let server = leaf(&ca, Role::Server);
        verify_chain(
            &server.cert_pem,
            &ca.cert_pem,
            now(),
            Some(Purpose::ServerAuth),
            Some("server.dc1.consul"),
        )
        .unwrap();
    }
}

#[test]
fn rsa_generation_unsupported_but_rsa_keys_accepted() {
    let mut params = CaParams::new(now());
    params.algorithm = KeyAlgorithm::Rsa2048;
    assert!(matches!(create_ca(&params), Err(Error::Unsupported(msg)) if msg.contains("RSA")));

    params.key_pem = Some(RSA_PKCS8.into());
    let ca = create_ca(&params).unwrap();
    assert_eq!(sekisho_pki::parse_pem_chain(&ca.cert_pem).unwrap()[0].key_algorithm, "RSA 2048");
    let mut leaf_params = LeafParams::new(Role::Server, now());
    leaf_params.key_pem = Some(RSA_PKCS1.into());
    let server = issue(&ca.cert_pem, &ca.key_pem, &leaf_params).unwrap();
    let der = der(&server.cert_pem);
    let cert = parse(&der);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    verify_chain(&server.cert_pem, &ca.cert_pem, now(), Some(Purpose::ServerAuth), Some("server.dc1.consul"))
        .unwrap();
}

#[test]
fn consul_style_ca_with_sec1_key_signs() {
    let ca = sekisho_pki::CaBundle { cert_pem: OPENSSL_CA.into(), key_pem: OPENSSL_CA_SEC1_KEY.into() };
    let client = leaf(&ca, Role::Client);
    verify_chain(&client.cert_pem, OPENSSL_CA, now(), Some(Purpose::ClientAuth), None).unwrap();
}

#[test]
fn server_client_cli_match_consul_table() {
    let ca = ca();
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    let mut server_params = LeafParams::new(Role::Server, now());
    server_params.node = Some("node1".into());
    let cases = [
        (
            server_params,
            &["server.dc1.consul", "localhost", "node1.server.dc1.consul"][..],
            vec![localhost],
            Some((true, true)),
        ),
        (
            LeafParams::new(Role::Client, now()),
            &["client.dc1.consul", "localhost"][..],
            vec![localhost],
            Some((true, true)),
        ),
        (LeafParams::new(Role::Cli, now()), &["cli.dc1.consul", "localhost"][..], vec![], None),
    ];
    for (params, dns, ips, eku) in cases {
        let bundle = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
        let der = der(&bundle.cert_pem);
        let cert = parse(&der);
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap();
        assert_eq!(cn, params.common_name());
        assert_eq!(cn, format!("{}.dc1.consul", params.role));
        let dns: Vec<String> = dns.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(dns_and_ips(&cert), (set(&dns), set(&ips)), "{}", params.role);
        let got_eku = cert.extended_key_usage().unwrap().map(|e| (e.value.server_auth, e.value.client_auth));
        assert_eq!(got_eku, eku, "{}", params.role);
        assert!(!cert.is_ca());
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        assert_eq!(cert.raw_serial().len(), 16);
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
        assert_eq!(days, 365);
    }
}

#[test]
fn additional_names_dc_and_domain() {
    let ca = ca();
    let mut params = LeafParams::new(Role::Server, now());
    params.dc = "dc2".into();
    params.domain = "example.com".into();
    params.additional_dns = vec!["consul.internal".into(), "localhost".into()];
    params.additional_ips = vec!["10.0.0.5".parse().unwrap()];
    let bundle = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let der = der(&bundle.cert_pem);
    let (dns, ips) = dns_and_ips(&parse(&der));
    assert_eq!(
        dns,
        set(&["server.dc2.example.com".to_owned(), "localhost".into(), "consul.internal".into()])
    );
    assert_eq!(ips, set(&["127.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()]));
}

#[test]
fn node_requires_server_role() {
    let ca = ca();
    let mut params = LeafParams::new(Role::Client, now());
    params.node = Some("n1".into());
    let err = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap_err();
    assert!(matches!(err, Error::InvalidParams(ref m) if m.contains("-node requires -server")), "{err}");
}

#[test]
fn serials_differ_for_identical_params() {
    let ca = ca();
    let params = LeafParams::new(Role::Client, now());
    let a = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let mut same_key = params.clone();
    same_key.key_pem = Some(a.key_pem.clone());
    let b = issue(&ca.cert_pem, &ca.key_pem, &same_key).unwrap();
    let serial = |pem: &str| sekisho_pki::parse_pem_chain(pem).unwrap()[0].serial.clone();
    assert_ne!(serial(&a.cert_pem), serial(&b.cert_pem), "same key must still get a fresh serial");
}

#[test]
fn leaf_validity_is_clamped_to_the_ca() {
    let mut params = CaParams::new(now());
    params.days = 10;
    let ca = create_ca(&params).unwrap();
    let leaf = leaf(&ca, Role::Server);
    let ca_info = &sekisho_pki::parse_pem_chain(&ca.cert_pem).unwrap()[0];
    let leaf_info = &sekisho_pki::parse_pem_chain(&leaf.cert_pem).unwrap()[0];
    assert_eq!(leaf_info.not_after, ca_info.not_after);
}

#[test]
fn expired_ca_refuses_to_issue() {
    let mut params = CaParams::new(now() - 100 * DAY);
    params.days = 1;
    let ca = create_ca(&params).unwrap();
    let err = issue(&ca.cert_pem, &ca.key_pem, &LeafParams::new(Role::Client, now())).unwrap_err();
    assert!(matches!(err, Error::InvalidParams(ref m) if m.contains("expired")), "{err}");
}

#[test]
fn wrong_ca_key_or_non_ca_signer_is_rejected() {
    let (a, b) = (ca(), ca());
    let err = issue(&a.cert_pem, &b.key_pem, &LeafParams::new(Role::Client, now())).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch), "{err}");
    let client = leaf(&a, Role::Client);
    let err = issue(&client.cert_pem, &client.key_pem, &LeafParams::new(Role::Client, now())).unwrap_err();
    assert!(matches!(err, Error::Certificate(_)), "{err}");
    let err = issue("", &a.key_pem, &LeafParams::new(Role::Client, now())).unwrap_err();
    assert!(matches!(err, Error::NoCertificate), "{err}");
    let err = issue(&a.cert_pem, "", &LeafParams::new(Role::Client, now())).unwrap_err();
    assert!(matches!(err, Error::NoPrivateKey), "{err}");
}

#[test]
fn name_constrained_ca_carries_permitted_subtrees() {
    let mut params = CaParams::new(now());
    params.name_constraint = true;
    params.additional_name_constraints = vec!["example.com".into()];
    let ca = create_ca(&params).unwrap();
    let info = &sekisho_pki::parse_pem_chain(&ca.cert_pem).unwrap()[0];
    assert_eq!(info.permitted_dns_domains, ["localhost", "consul", "example.com"]);
}
