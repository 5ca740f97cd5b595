//! `verify_chain`: purposes, names, issuers, expiry and name constraints.

mod common;

use common::*;
use sekisho_pki::{
    CaParams, Error, LeafParams, Purpose, Role, VerifyErrorKind, create_ca, issue, verify_chain,
};

fn kind(result: Result<(), Error>) -> VerifyErrorKind {
    match result {
        Err(err) => err.verify_kind().unwrap_or_else(|| panic!("not a verify error: {err}")),
        Ok(()) => panic!("verification unexpectedly succeeded"),
    }
}

#[test]
fn chains_verify_for_their_purposes() {
    let ca = ca();
    let (server, client, cli) = (leaf(&ca, Role::Server), leaf(&ca, Role::Client), leaf(&ca, Role::Cli));
    let t = now();
    verify_chain(&server.cert_pem, &ca.cert_pem, t, Some(Purpose::ServerAuth), Some("server.dc1.consul"))
        .unwrap();
    verify_chain(&server.cert_pem, &ca.cert_pem, t, Some(Purpose::ClientAuth), None).unwrap();
    verify_chain(&server.cert_pem, &ca.cert_pem, t, None, Some("127.0.0.1")).unwrap();
    verify_chain(&client.cert_pem, &ca.cert_pem, t, Some(Purpose::ClientAuth), Some("client.dc1.consul"))
        .unwrap();
    verify_chain(&client.cert_pem, &ca.cert_pem, t, Some(Purpose::ServerAuth), Some("localhost")).unwrap();
    verify_chain(&cli.cert_pem, &ca.cert_pem, t, Some(Purpose::ClientAuth), None).unwrap();
    verify_chain(&cli.cert_pem, &ca.cert_pem, t, None, Some("cli.dc1.consul")).unwrap();
}

#[test]
fn client_cert_is_not_valid_as_server_name() {
    let ca = ca();
    let client = leaf(&ca, Role::Client);
    let result = verify_chain(
        &client.cert_pem,
        &ca.cert_pem,
        now(),
        Some(Purpose::ServerAuth),
        Some("server.dc1.consul"),
    );
    assert_eq!(kind(result), VerifyErrorKind::NotValidForName);
    let result = verify_chain(
        &client.cert_pem,
        &ca.cert_pem,
        now(),
        Some(Purpose::ClientAuth),
        Some("server.dc1.consul"),
    );
    assert_eq!(kind(result), VerifyErrorKind::NotValidForName);
}

#[test]
fn server_cert_of_another_dc_is_rejected() {
    let ca = ca();
    let mut params = LeafParams::new(Role::Server, now());
    params.dc = "dc2".into();
    let dc2 = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let result = verify_chain(
        &dc2.cert_pem,
        &ca.cert_pem,
        now(),
        Some(Purpose::ServerAuth),
        Some("server.dc1.consul"),
    );
    assert_eq!(kind(result), VerifyErrorKind::NotValidForName);
}

#[test]
fn leaf_from_another_ca_has_unknown_issuer() {
    let (a, b) = (ca(), ca());
    let server = leaf(&b, Role::Server);
    let result = verify_chain(&server.cert_pem, &a.cert_pem, now(), Some(Purpose::ServerAuth), None);
    assert_eq!(kind(result), VerifyErrorKind::UnknownIssuer);
    let err = verify_chain(&server.cert_pem, &a.cert_pem, now(), None, None).unwrap_err();
    assert!(err.to_string().contains("not signed by any of the given CAs"), "{err}");
    // During CA rotation both roots are trusted.
    let both = format!("{}{}", a.cert_pem, b.cert_pem);
    verify_chain(&server.cert_pem, &both, now(), Some(Purpose::ServerAuth), Some("server.dc1.consul"))
        .unwrap();
}

#[test]
fn expired_and_not_yet_valid_leaves() {
    let ca = create_ca(&CaParams::new(now() - 30 * DAY)).unwrap();
    let mut params = LeafParams::new(Role::Server, now() - 10 * DAY);
    params.days = 1;
    let old = issue(&ca.cert_pem, &ca.key_pem, &params).unwrap();
    let err = verify_chain(&old.cert_pem, &ca.cert_pem, now(), Some(Purpose::ServerAuth), None).unwrap_err();
    assert_eq!(err.verify_kind(), Some(VerifyErrorKind::Expired));
    assert!(err.to_string().contains("expired"), "{err}");
    // The same leaf was fine back then.
    verify_chain(&old.cert_pem, &ca.cert_pem, now() - 10 * DAY, Some(Purpose::ServerAuth), None).unwrap();

    let fresh = leaf(&ca, Role::Server);
    let result =
        verify_chain(&fresh.cert_pem, &ca.cert_pem, now() - 2 * DAY, Some(Purpose::ServerAuth), None);
    assert_eq!(kind(result), VerifyErrorKind::NotYetValid);
}

#[test]
fn name_constraints_reject_out_of_domain_leaf() {
    let mut params = CaParams::new(now());
    params.name_constraint = true;
    let ca = create_ca(&params).unwrap();

    let inside = leaf(&ca, Role::Server);
    verify_chain(&inside.cert_pem, &ca.cert_pem, now(), Some(Purpose::ServerAuth), Some("server.dc1.consul"))
        .unwrap();

    let mut evil = LeafParams::new(Role::Server, now());
    evil.additional_dns = vec!["evil.example.com".into()];
    let evil = issue(&ca.cert_pem, &ca.key_pem, &evil).unwrap();
    for name in [None, Some("server.dc1.consul"), Some("evil.example.com")] {
        let result = verify_chain(&evil.cert_pem, &ca.cert_pem, now(), Some(Purpose::ServerAuth), name);
        assert_eq!(kind(result), VerifyErrorKind::NameConstraintViolation, "{name:?}");
    }
    let err = verify_chain(&evil.cert_pem, &ca.cert_pem, now(), Some(Purpose::ClientAuth), None).unwrap_err();
    assert!(err.to_string().contains("name constraints"), "{err}");

    let mut other_domain = LeafParams::new(Role::Client, now());
    other_domain.domain = "example.com".into();
    let other = issue(&ca.cert_pem, &ca.key_pem, &other_domain).unwrap();
    let result = verify_chain(&other.cert_pem, &ca.cert_pem, now(), Some(Purpose::ClientAuth), None);
    assert_eq!(kind(result), VerifyErrorKind::NameConstraintViolation);
}

#[test]
fn additional_name_constraint_allows_that_domain() {
    let mut params = CaParams::new(now());
    params.name_constraint = true;
    params.additional_name_constraints = vec!["example.com".into()];
    let ca = create_ca(&params).unwrap();
    let mut leaf_params = LeafParams::new(Role::Server, now());
    leaf_params.additional_dns = vec!["node.example.com".into()];
    let leaf = issue(&ca.cert_pem, &ca.key_pem, &leaf_params).unwrap();
    verify_chain(&leaf.cert_pem, &ca.cert_pem, now(), Some(Purpose::ServerAuth), Some("node.example.com"))
        .unwrap();
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let ca = ca();
    let server = leaf(&ca, Role::Server);
    assert!(matches!(verify_chain("", &ca.cert_pem, now(), None, None), Err(Error::NoCertificate)));
    assert!(matches!(verify_chain(&server.cert_pem, "junk", now(), None, None), Err(Error::NoCertificate)));
    let err = verify_chain(&server.cert_pem, &ca.cert_pem, now(), None, Some("not a name!")).unwrap_err();
    assert!(matches!(err, Error::InvalidParams(_)), "{err}");
    let err = verify_chain(&server.key_pem, &ca.cert_pem, now(), None, None).unwrap_err();
    assert!(matches!(err, Error::UnexpectedPemBlock { .. }), "{err}");
}
