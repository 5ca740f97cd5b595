//! Auth methods, binding rules, `/v1/acl/login` and `/v1/acl/logout` against an agent with
//! ACLs on (`default_policy = "deny"`). JWTs are signed in the test with a fresh EC P-256 key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::PublicKeyData as _;
use sekisho::testing::{TestAgent, eventually};
use serde_json::{Value, json};

use crate::support::{Api, Resp};

const ROOT: &str = "8f3b2c1e-5a4d-4e6f-9b7a-0c1d2e3f4a5b";
const AUDIENCE: &str = "sekisho-tests";

/// An agent with ACLs on and the initial management token `ROOT`, once that token works.
async fn start_acl() -> (TestAgent, Api) {
    let agent = TestAgent::start_with(|c, _| {
        c.acl = json!({"enabled": true, "default_policy": "deny", "tokens": {"initial_management": ROOT}});
    })
    .await;
    let api = Api::new(&agent);
    eventually(Duration::from_secs(10), "the initial management token resolves", || {
        let api = api.clone();
        async move {
            (call(&api, Method::GET, "/v1/acl/token/self", ROOT, None).await.status == 200).then_some(())
        }
    })
    .await;
    (agent, api)
}

/// `method path` presenting `token`, with an optional JSON body.
async fn call(api: &Api, method: Method, path: &str, token: &str, body: Option<&Value>) -> Resp {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(serde_json::to_vec(b).expect("JSON")));
    let headers: &[(&str, &str)] = if token.is_empty() { &[] } else { &[("X-Consul-Token", token)] };
    api.request_with(method, path, headers, body).await
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// A signing key and its public key as PEM (what `JWTValidationPubKeys` takes).
struct Issuer {
    key: EncodingKey,
    public_pem: String,
}

impl Issuer {
    fn new() -> Issuer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
        let b64 = STANDARD.encode(pair.subject_public_key_info());
        let lines: Vec<&str> =
            b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
        let public_pem =
            format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
        Issuer { key: EncodingKey::from_ec_der(&pair.serialize_der()), public_pem }
    }

    /// A JWT with `claims`, plus `aud` and an `exp` ten minutes ahead unless `claims` set them.
    fn jwt(&self, claims: Value) -> String {
        let mut all = json!({"aud": AUDIENCE, "exp": now() + 600, "iat": now()});
        for (k, v) in claims.as_object().expect("claims are an object") {
            all[k] = v.clone();
        }
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &all, &self.key).expect("sign")
    }

    /// A `jwt` auth method body named `name`.
    fn method(&self, name: &str) -> Value {
        json!({
            "Name": name,
            "Type": "jwt",
            "Description": "test issuer",
            "Config": {
                "JWTValidationPubKeys": [self.public_pem],
                "JWTSupportedAlgs": ["ES256"],
                "BoundAudiences": [AUDIENCE],
                "ClaimMappings": {"team": "team", "svc": "svc"},
            },
        })
    }
}

/// Creates auth method `name` and a rule `value.team == "a"` → service `${value.svc}`.
async fn method_with_service_rule(api: &Api, issuer: &Issuer, name: &str, extra: Value) -> Value {
    let mut body = issuer.method(name);
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let m = call(api, Method::PUT, "/v1/acl/auth-method", ROOT, Some(&body)).await.ok_json();
    let rule = json!({
        "AuthMethod": name,
        "Selector": "value.team == \"a\"",
        "BindType": "service",
        "BindName": "${value.svc}",
    });
    call(api, Method::PUT, "/v1/acl/binding-rule", ROOT, Some(&rule)).await.ok_json();
    m
}

async fn login(api: &Api, method: &str, jwt: &str) -> Resp {
    let body = json!({"AuthMethod": method, "BearerToken": jwt, "Meta": {"host": "h1"}});
    call(api, Method::POST, "/v1/acl/login", "", Some(&body)).await
}

async fn register(api: &Api, token: &str, service: &str) -> Resp {
    let body = json!({"Name": service, "Port": 8080});
    call(api, Method::PUT, "/v1/agent/service/register", token, Some(&body)).await
}

/// A token whose only policy has `rules`.
async fn token_with_rules(api: &Api, name: &str, rules: &str) -> String {
    let policy = json!({"Name": name, "Rules": rules});
    call(api, Method::PUT, "/v1/acl/policy", ROOT, Some(&policy)).await.ok_json();
    let token = json!({"Policies": [{"Name": name}]});
    let t = call(api, Method::PUT, "/v1/acl/token", ROOT, Some(&token)).await.ok_json();
    t["SecretID"].as_str().expect("a SecretID").to_owned()
}

#[tokio::test]
async fn login_binds_a_service_identity_that_can_register_that_service_only() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    method_with_service_rule(&api, &issuer, "ci", json!({})).await;

    tracing::info!("--- a token of team a logs in as service web");
    let t = login(&api, "ci", &issuer.jwt(json!({"team": "a", "svc": "web"}))).await.ok_json();
    assert_eq!(t["AuthMethod"], "ci", "{t}");
    assert_eq!(t["ServiceIdentities"], json!([{"ServiceName": "web"}]), "{t}");
    assert_eq!(t["Local"], true, "login tokens are local by default: {t}");
    assert_eq!(t["Description"], r#"token created via login: {"host":"h1"}"#);
    assert!(t.get("ExpirationTime").is_none(), "no MaxTokenTTL, no expiry: {t}");
    let secret = t["SecretID"].as_str().expect("the login answer shows the SecretID");

    register(&api, secret, "web").await.expect(StatusCode::OK);
    let denied = register(&api, secret, "db").await.expect(StatusCode::FORBIDDEN);
    assert!(denied.text().contains("Permission denied"), "{}", denied.text());

    let listed = call(&api, Method::GET, "/v1/acl/tokens?authmethod=ci", ROOT, None).await.ok_json();
    let accessors: Vec<&Value> =
        listed.as_array().expect("a list").iter().map(|t| &t["AccessorID"]).collect();
    assert_eq!(accessors, [&t["AccessorID"]], "only the login token came from ci");

    tracing::info!("--- a token no rule selects is refused");
    let r = login(&api, "ci", &issuer.jwt(json!({"team": "b", "svc": "web"}))).await;
    let r = r.expect(StatusCode::FORBIDDEN);
    assert!(r.text().starts_with("Permission denied"), "{}", r.text());
    let r = login(&api, "nope", &issuer.jwt(json!({"team": "a"}))).await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().contains("ACL not found"), "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test]
async fn expired_and_wrong_audience_jwts_are_refused_naming_the_claim() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    method_with_service_rule(&api, &issuer, "ci", json!({})).await;

    let expired = issuer.jwt(json!({"team": "a", "svc": "web", "exp": now() - 3600, "iat": now() - 7200}));
    let r = login(&api, "ci", &expired).await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().contains("\"exp\""), "the error names exp: {}", r.text());

    let wrong_aud = issuer.jwt(json!({"team": "a", "svc": "web", "aud": "someone-else"}));
    let r = login(&api, "ci", &wrong_aud).await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().contains("\"aud\""), "the error names aud: {}", r.text());

    let forged = Issuer::new().jwt(json!({"team": "a", "svc": "web"}));
    let r = login(&api, "ci", &forged).await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().contains("signature"), "{}", r.text());

    let listed = call(&api, Method::GET, "/v1/acl/tokens?authmethod=ci", ROOT, None).await.ok_json();
    assert_eq!(listed, json!([]), "no refused login minted a token");
    agent.shutdown().await;
}

#[tokio::test]
async fn logout_deletes_the_login_token_and_refuses_other_tokens() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    method_with_service_rule(&api, &issuer, "ci", json!({})).await;
    let t = login(&api, "ci", &issuer.jwt(json!({"team": "a", "svc": "web"}))).await.ok_json();
    let secret = t["SecretID"].as_str().expect("SecretID");

    let r = call(&api, Method::POST, "/v1/acl/logout", ROOT, None).await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().starts_with("Permission denied"), "{}", r.text());
    call(&api, Method::GET, "/v1/acl/token/self", ROOT, None).await.expect(StatusCode::OK);
    let r = call(&api, Method::POST, "/v1/acl/logout", "", None).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "ACL not found");

    assert_eq!(call(&api, Method::POST, "/v1/acl/logout", secret, None).await.ok_json(), json!(true));
    let r = call(&api, Method::GET, "/v1/acl/token/self", secret, None).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "ACL not found");
    let r = call(&api, Method::POST, "/v1/acl/logout", secret, None).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "ACL not found");
    agent.shutdown().await;
}

#[tokio::test]
async fn auth_method_and_binding_rule_crud_needs_acl_write_and_reads_need_acl_read() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    let reader = token_with_rules(&api, "acl-reader", "acl = \"read\"").await;
    let nobody = token_with_rules(&api, "kv-reader", "key_prefix \"\" { policy = \"read\" }").await;

    tracing::info!("--- writes need acl:write");
    let body = issuer.method("ci");
    for t in [reader.as_str(), nobody.as_str()] {
        let r = call(&api, Method::PUT, "/v1/acl/auth-method", t, Some(&body)).await;
        assert!(r.expect(StatusCode::FORBIDDEN).text().contains("Permission denied"));
    }
    let listed = call(&api, Method::GET, "/v1/acl/auth-methods", ROOT, None).await.ok_json();
    assert_eq!(listed, json!([]), "a refused write changes nothing");

    let m = call(&api, Method::PUT, "/v1/acl/auth-method", ROOT, Some(&body)).await.ok_json();
    assert_eq!((&m["Name"], &m["Type"], &m["TokenLocality"]), (&json!("ci"), &json!("jwt"), &json!("local")));
    assert_eq!(m["Config"]["BoundAudiences"], json!([AUDIENCE]));
    let rule = json!({"AuthMethod": "ci", "Selector": "value.team == \"a\"", "BindType": "service", "BindName": "${value.svc}"});
    let r = call(&api, Method::PUT, "/v1/acl/binding-rule", reader.as_str(), Some(&rule)).await;
    r.expect(StatusCode::FORBIDDEN);
    let created = call(&api, Method::PUT, "/v1/acl/binding-rule", ROOT, Some(&rule)).await.ok_json();
    let id = created["ID"].as_str().expect("a rule ID").to_owned();
    assert_eq!((&created["BindType"], &created["BindName"]), (&json!("service"), &json!("${value.svc}")));

    tracing::info!("--- reads need acl:read");
    let list = call(&api, Method::GET, "/v1/acl/auth-methods", &reader, None).await.ok_json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(list[0].get("Config").is_none(), "the list leaves Config out: {list}");
    call(&api, Method::GET, "/v1/acl/auth-method/ci", &reader, None).await.expect(StatusCode::OK);
    let rules = call(&api, Method::GET, "/v1/acl/binding-rules?authmethod=ci", &reader, None).await.ok_json();
    assert_eq!(rules.as_array().map(Vec::len), Some(1));
    for path in [
        "/v1/acl/auth-methods",
        "/v1/acl/auth-method/ci",
        "/v1/acl/binding-rules",
        &format!("/v1/acl/binding-rule/{id}"),
    ] {
        call(&api, Method::GET, path, &nobody, None).await.expect(StatusCode::FORBIDDEN);
    }

    tracing::info!("--- updates and deletes by a reader change nothing");
    let upd = json!({"AuthMethod": "ci", "Selector": "", "BindType": "service", "BindName": "fixed"});
    let path = format!("/v1/acl/binding-rule/{id}");
    call(&api, Method::PUT, &path, &reader, Some(&upd)).await.expect(StatusCode::FORBIDDEN);
    call(&api, Method::DELETE, &path, &reader, None).await.expect(StatusCode::FORBIDDEN);
    call(&api, Method::DELETE, "/v1/acl/auth-method/ci", &reader, None).await.expect(StatusCode::FORBIDDEN);
    let still = call(&api, Method::GET, &path, ROOT, None).await.ok_json();
    assert_eq!(still["BindName"], "${value.svc}");

    let updated = call(&api, Method::PUT, &path, ROOT, Some(&upd)).await.ok_json();
    assert_eq!((&updated["BindName"], &updated["ID"]), (&json!("fixed"), &json!(id)));
    let mut desc = body.clone();
    desc["Description"] = json!("renamed");
    let m2 = call(&api, Method::PUT, "/v1/acl/auth-method/ci", ROOT, Some(&desc)).await.ok_json();
    assert_eq!((&m2["Description"], &m2["CreateIndex"]), (&json!("renamed"), &m["CreateIndex"]));

    tracing::info!("--- deleting the method deletes its rules and its tokens");
    let t = login(&api, "ci", &issuer.jwt(json!({"team": "z"}))).await.ok_json();
    let secret = t["SecretID"].as_str().expect("SecretID");
    call(&api, Method::DELETE, "/v1/acl/auth-method/ci", ROOT, None).await.ok_json();
    call(&api, Method::GET, "/v1/acl/auth-method/ci", ROOT, None).await.expect(StatusCode::NOT_FOUND);
    call(&api, Method::GET, &path, ROOT, None).await.expect(StatusCode::NOT_FOUND);
    call(&api, Method::GET, "/v1/acl/token/self", secret, None).await.expect(StatusCode::FORBIDDEN);
    agent.shutdown().await;
}

#[tokio::test]
async fn max_token_ttl_sets_the_expiration_time_and_locality_global_makes_global_tokens() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    let extra = json!({"MaxTokenTTL": "10m", "TokenLocality": "global"});
    let m = method_with_service_rule(&api, &issuer, "short", extra).await;
    assert_eq!(m["MaxTokenTTL"], "10m0s", "{m}");
    let before = now();
    let t = login(&api, "short", &issuer.jwt(json!({"team": "a", "svc": "web"}))).await.ok_json();
    assert_eq!(t["Local"], false, "{t}");
    let at = t["ExpirationTime"].as_str().unwrap_or_else(|| panic!("an ExpirationTime: {t}"));
    let at =
        humantime::parse_rfc3339_weak(at).expect("RFC 3339").duration_since(UNIX_EPOCH).expect("after 1970");
    let at = at.as_secs();
    assert!((before + 600..=now() + 600).contains(&at), "expires ten minutes after the login: {at}");
    agent.shutdown().await;
}

#[tokio::test]
async fn an_auth_method_with_a_bad_config_or_type_is_refused_with_400_naming_it() {
    let (agent, api) = start_acl().await;
    let issuer = Issuer::new();
    let cases = [
        (
            "JWTValidationPubKeys",
            json!({"JWTValidationPubKeys": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"]}),
        ),
        ("JWKS", json!({"JWKS": "{\"keys\": [{\"kty\": \"EC\"}]}"})),
        (
            "Bogus",
            json!({"JWTValidationPubKeys": [issuer.public_pem], "JWTSupportedAlgs": ["ES256"], "Bogus": 1}),
        ),
    ];
    for (named, config) in cases {
        let body = json!({"Name": "bad", "Type": "jwt", "Config": config});
        let r = call(&api, Method::PUT, "/v1/acl/auth-method", ROOT, Some(&body)).await;
        let r = r.expect(StatusCode::BAD_REQUEST);
        assert!(r.text().contains(named), "the error names {named}: {}", r.text());
    }
    let mut k8s = issuer.method("k8s");
    k8s["Type"] = json!("kubernetes");
    let r = call(&api, Method::PUT, "/v1/acl/auth-method", ROOT, Some(&k8s))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("kubernetes"), "{}", r.text());
    let listed = call(&api, Method::GET, "/v1/acl/auth-methods", ROOT, None).await.ok_json();
    assert_eq!(listed, json!([]), "nothing was stored");

    let rule = json!({"AuthMethod": "missing", "BindType": "service", "BindName": "web"});
    let r = call(&api, Method::PUT, "/v1/acl/binding-rule", ROOT, Some(&rule))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("unknown auth method"), "{}", r.text());
    call(&api, Method::PUT, "/v1/acl/auth-method", ROOT, Some(&issuer.method("ci"))).await.ok_json();
    for (rule, named) in [
        (json!({"AuthMethod": "ci", "BindType": "service", "BindName": "${value.nope}"}), "value.nope"),
        (json!({"AuthMethod": "ci", "BindType": "templated-policy", "BindName": "x"}), "BindType"),
        (
            json!({"AuthMethod": "ci", "BindType": "role", "BindName": "r", "Selector": "value.team =="}),
            "Selector",
        ),
    ] {
        let r = call(&api, Method::PUT, "/v1/acl/binding-rule", ROOT, Some(&rule)).await;
        assert!(r.expect(StatusCode::BAD_REQUEST).text().contains(named), "{named}");
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn login_and_auth_methods_answer_401_when_acls_are_disabled() {
    let agent = TestAgent::start().await;
    let api = Api::new(&agent);
    for (method, path) in [
        (Method::POST, "/v1/acl/login"),
        (Method::POST, "/v1/acl/logout"),
        (Method::PUT, "/v1/acl/auth-method"),
        (Method::GET, "/v1/acl/binding-rules"),
    ] {
        let r = call(&api, method, path, "", Some(&json!({}))).await.expect(StatusCode::UNAUTHORIZED);
        assert_eq!(r.text(), "ACL support disabled", "{path}");
    }
    agent.shutdown().await;
}
