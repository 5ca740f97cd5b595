//! `acl …`, `login` and `logout` against a single-server TestAgent with ACLs on and
//! `default_policy = "deny"`, plus `PUT /v1/agent/token/*` behind them.

use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use sekisho::client::{Client, ClientConfig};
use sekisho::config::RuntimeConfig;
use sekisho::testing::{TestAgent, eventually};
use serde_json::{Value, json};

use crate::support::{Run, sekisho, sekisho_with_stdin};

/// The management token every ACL test agent starts with.
const ROOT: &str = "5c2d8f4e-1c1a-4b3e-9d6f-0a9b8c7d6e5f";

const WAIT: Duration = Duration::from_secs(15);

fn acl_config(cfg: &mut RuntimeConfig) {
    cfg.acl = json!({
        "enabled": true,
        "default_policy": "deny",
        "tokens": { "initial_management": ROOT },
    });
}

/// An agent with ACLs on; returns once the management token works.
async fn start_acl(tune: impl FnOnce(&mut RuntimeConfig)) -> TestAgent {
    let agent = TestAgent::start_with(|cfg, _| {
        acl_config(cfg);
        tune(cfg);
    })
    .await;
    let root = api(&agent, Some(ROOT));
    eventually(WAIT, "the leader installs the initial management token", || async {
        let r = root.request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
        r.is_success().then_some(())
    })
    .await;
    agent
}

fn api(agent: &TestAgent, token: Option<&str>) -> Client {
    let mut cfg = ClientConfig::new(agent.http_addr().to_string());
    cfg.token = token.map(str::to_owned);
    Client::new(cfg)
}

/// `sekisho <family> -http-addr=<agent> -token=<token> <rest>`.
async fn cli(agent: &TestAgent, token: &str, args: &[&str]) -> Run {
    cli_with_stdin(agent, token, args, b"").await
}

async fn cli_with_stdin(agent: &TestAgent, token: &str, args: &[&str], stdin: &[u8]) -> Run {
    let addr = format!("-http-addr={}", agent.http_addr());
    let token = format!("-token={token}");
    let (family, rest) = args.split_first().expect("a command");
    let mut full = vec![*family, addr.as_str(), token.as_str()];
    full.extend_from_slice(rest);
    sekisho_with_stdin(&full, stdin).await
}

fn parse(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
}

/// Creates a policy and a token linked to it; returns the token's JSON.
async fn token_with_rules(agent: &TestAgent, name: &str, rules: &str) -> Value {
    cli(agent, ROOT, &["acl", "policy", "create", "-name", name, "-rules", rules]).await.ok();
    let run = cli(agent, ROOT, &["acl", "token", "create", "-policy-name", name, "-format=json"]).await.ok();
    parse(&run)
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("no {field} in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_policy_create_from_a_rules_file_then_read_shows_the_rules() {
    let agent = start_acl(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv-read.hcl");
    let rules = "key_prefix \"app/\" {\n  policy = \"read\"\n}";
    std::fs::write(&file, rules).unwrap();
    let at_file = format!("@{}", file.display());
    let args =
        ["acl", "policy", "create", "-name", "kv-read", "-description", "app keys", "-rules", &at_file];
    let run = cli(&agent, ROOT, &args).await.ok();
    assert!(run.stdout.contains("Name:         kv-read\n"), "{run:#?}");
    assert!(run.stdout.contains("Description:  app keys\n"), "{run:#?}");
    assert!(run.stdout.ends_with(&format!("Rules:\n{rules}\n")), "{run:#?}");

    let read = cli(&agent, ROOT, &["acl", "policy", "read", "-name", "kv-read"]).await.ok();
    assert!(read.stdout.ends_with(&format!("Rules:\n{rules}\n")), "{read:#?}");
    let json =
        parse(&cli(&agent, ROOT, &["acl", "policy", "read", "-name", "kv-read", "-format=json"]).await.ok());
    assert_eq!(json["Rules"], rules);
    let id = str_of(&json, "ID").to_owned();
    let by_prefix = cli(&agent, ROOT, &["acl", "policy", "read", "-id", &id[..8]]).await.ok();
    assert!(by_prefix.stdout.starts_with(&format!("ID:           {id}\n")), "{by_prefix:#?}");

    // Rules from stdin, an update, the list and a delete.
    let stdin = b"operator = \"read\"";
    cli_with_stdin(&agent, ROOT, &["acl", "policy", "create", "-name", "ops", "-rules", "-"], stdin)
        .await
        .ok();
    let up = cli(&agent, ROOT, &["acl", "policy", "update", "-name", "ops", "-description", "operators"])
        .await
        .ok();
    assert!(
        up.stdout.contains("Description:  operators\n") && up.stdout.ends_with("operator = \"read\"\n"),
        "{up:#?}"
    );
    let list = cli(&agent, ROOT, &["acl", "policy", "list"]).await.ok();
    assert!(list.stdout.contains("kv-read:\n   ID:           "), "{list:#?}");
    assert!(list.stdout.contains("ops:\n") && list.stdout.contains("global-management:\n"), "{list:#?}");
    let del = cli(&agent, ROOT, &["acl", "policy", "delete", "-name", "ops"]).await.ok();
    assert!(
        del.stdout.starts_with("Policy \"") && del.stdout.ends_with("\" deleted successfully\n"),
        "{del:#?}"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_policy_create_with_a_bad_rules_file_exits_1_naming_the_line() {
    let agent = start_acl(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.hcl");
    std::fs::write(&file, "key_prefix \"app/\" { policy = \"read\" }\nkeyz \"x\" { policy = \"read\" }\n")
        .unwrap();
    let at_file = format!("@{}", file.display());
    let run = cli(&agent, ROOT, &["acl", "policy", "create", "-name", "bad", "-rules", &at_file])
        .await
        .expect_code(1);
    assert!(
        run.stderr.starts_with(
            "Error: Failed to create new policy: Unexpected response code: 400 (Failed to parse policy: line 2: "
        ),
        "{run:#?}"
    );
    assert!(run.stderr.contains("keyz"), "{run:#?}");
    assert_eq!(run.stdout, "");
    let missing =
        cli(&agent, ROOT, &["acl", "policy", "create", "-name", "x", "-rules", "@/no/such/file"]).await;
    assert!(missing.expect_code(1).stderr.starts_with("Error: reading -rules file /no/such/file"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_token_create_with_a_policy_name_then_read_list_update_clone_delete() {
    let agent = start_acl(|_| {}).await;
    cli(
        &agent,
        ROOT,
        &["acl", "policy", "create", "-name", "kv-read", "-rules", "key_prefix \"\" { policy = \"read\" }"],
    )
    .await
    .ok();
    let args = [
        "acl",
        "token",
        "create",
        "-description",
        "web app",
        "-policy-name",
        "kv-read",
        "-service-identity",
        "web:dc1",
        "-node-identity",
        "n1:dc1",
    ];
    let run = cli(&agent, ROOT, &args).await.ok();
    let accessor =
        run.stdout.lines().next().and_then(|l| l.strip_prefix("AccessorID:       ")).expect("AccessorID");
    let accessor = accessor.to_owned();
    for want in [
        "Description:      web app\n",
        "Local:            false\n",
        " - kv-read\n",
        "Service Identities:\n   web (Datacenters: dc1)\n",
        "Node Identities:\n   n1 (Datacenter: dc1)\n",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in {run:#?}");
    }

    let read = cli(&agent, ROOT, &["acl", "token", "read", "-id", &accessor[..8]]).await.ok();
    assert!(read.stdout.starts_with(&format!("AccessorID:       {accessor}\n")), "{read:#?}");
    assert!(read.stdout.contains("Policies:\n   ") && read.stdout.contains(" - kv-read\n"), "{read:#?}");
    let json = parse(
        &cli(&agent, ROOT, &["acl", "token", "read", "-accessor-id", &accessor, "-format=json"]).await.ok(),
    );
    assert_eq!(json["Policies"][0]["Name"], "kv-read");
    assert_eq!(json["ServiceIdentities"], json!([{"ServiceName": "web", "Datacenters": ["dc1"]}]));
    let secret = str_of(&json, "SecretID").to_owned();
    let me = cli(&agent, &secret, &["acl", "token", "read", "-self"]).await.ok();
    assert!(me.stdout.starts_with(&format!("AccessorID:       {accessor}\n")), "{me:#?}");

    let list = parse(&cli(&agent, ROOT, &["acl", "token", "list", "-format=json"]).await.ok());
    assert!(list.as_array().unwrap().iter().any(|t| t["AccessorID"] == accessor.as_str()), "{list}");

    let up = cli(&agent, ROOT, &["acl", "token", "update", "-id", &accessor, "-description", "renamed"])
        .await
        .ok();
    assert!(up.stdout.contains("Description:      renamed\n"), "{up:#?}");
    assert!(
        up.stdout.contains(" - kv-read\n") && up.stdout.contains("web (Datacenters: dc1)"),
        "links kept: {up:#?}"
    );

    let clone =
        parse(&cli(&agent, ROOT, &["acl", "token", "clone", "-id", &accessor, "-format=json"]).await.ok());
    assert_ne!(clone["AccessorID"], accessor.as_str());
    assert_eq!(clone["Policies"][0]["Name"], "kv-read");

    let del = cli(&agent, ROOT, &["acl", "token", "delete", "-id", &accessor]).await.ok();
    assert_eq!(del.stdout, format!("Token \"{accessor}\" deleted successfully\n"));
    let gone = cli(&agent, ROOT, &["acl", "token", "read", "-id", &accessor]).await.expect_code(1);
    assert!(
        gone.stderr.starts_with("Error: Failed to read token: Unexpected response code: 404"),
        "{gone:#?}"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_role_create_read_and_token_create_with_a_role_name() {
    let agent = start_acl(|_| {}).await;
    cli(
        &agent,
        ROOT,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "svc-read",
            "-rules",
            "service_prefix \"\" { policy = \"read\" }",
        ],
    )
    .await
    .ok();
    let run =
        cli(&agent, ROOT, &["acl", "role", "create", "-name", "ops", "-policy-name", "svc-read"]).await.ok();
    assert!(run.stdout.contains("Name:         ops\n") && run.stdout.contains(" - svc-read\n"), "{run:#?}");
    let role = parse(&cli(&agent, ROOT, &["acl", "role", "read", "-name", "ops", "-format=json"]).await.ok());
    let token = parse(
        &cli(&agent, ROOT, &["acl", "token", "create", "-role-name", "ops", "-format=json"]).await.ok(),
    );
    assert_eq!(token["Roles"][0]["ID"], role["ID"]);
    let list = cli(&agent, ROOT, &["acl", "role", "list"]).await.ok();
    assert!(list.stdout.starts_with("ops:\n   ID:           "), "{list:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_bootstrap_prints_the_token_once() {
    let agent =
        TestAgent::start_with(|cfg, _| cfg.acl = json!({"enabled": true, "default_policy": "deny"})).await;
    let anonymous = api(&agent, None);
    eventually(WAIT, "the leader creates the built-in ACL objects", || async {
        let r = anonymous.request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
        r.is_success().then_some(())
    })
    .await;
    let run = sekisho(&["acl", "bootstrap", &format!("-http-addr={}", agent.http_addr())]).await.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{run:#?}");
    assert!(lines[0].starts_with("AccessorID:       ") && lines[1].starts_with("SecretID:         "));
    assert_eq!(lines[2], "Description:      Bootstrap Token (Global Management)");
    assert_eq!(lines[3], "Local:            false");
    assert!(lines[4].starts_with("Create Time:      "));
    assert_eq!(lines[5..], ["Policies:", "   00000000-0000-0000-0000-000000000001 - global-management"]);
    let again =
        sekisho(&["acl", "bootstrap", &format!("-http-addr={}", agent.http_addr())]).await.expect_code(1);
    assert!(
        again.stderr.starts_with(
            "Error: Failed ACL bootstrapping: Unexpected response code: 403 (Permission denied: ACL bootstrap no longer allowed"
        ),
        "{again:#?}"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_set_agent_token_default_applies_to_requests_without_a_token() {
    let agent = start_acl(|_| {}).await;
    api(&agent, Some(ROOT)).kv_put("x", b"1".to_vec(), None, None).await.unwrap();
    let anonymous = api(&agent, None);
    let before = anonymous.request(Method::GET, "/v1/kv/x", None).await.unwrap();
    assert_eq!(before.status, StatusCode::FORBIDDEN, "anonymous is denied by default_policy deny");

    let token = token_with_rules(&agent, "x-read", "key \"x\" { policy = \"read\" }").await;
    let run =
        cli(&agent, ROOT, &["acl", "set-agent-token", "default", str_of(&token, "SecretID")]).await.ok();
    assert_eq!(run.stdout, "ACL token \"default\" set successfully\n");
    let after = anonymous.kv_get("x").await.expect("the default token now reads x");
    assert_eq!(after.expect("x exists").value_bytes(), b"1");
    let other = anonymous.request(Method::GET, "/v1/kv/y", None).await.unwrap();
    assert_eq!(other.status, StatusCode::FORBIDDEN, "and nothing more");

    // Legacy name; an empty token clears it.
    cli(&agent, ROOT, &["acl", "set-agent-token", "acl_token", ""]).await.ok();
    let cleared = anonymous.request(Method::GET, "/v1/kv/x", None).await.unwrap();
    assert_eq!(cleared.status, StatusCode::FORBIDDEN);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_token_endpoint_needs_acl_write_and_knows_its_types() {
    let agent = start_acl(|_| {}).await;
    let weak = token_with_rules(&agent, "kv-all", "key_prefix \"\" { policy = \"write\" }").await;
    let weak_secret = str_of(&weak, "SecretID");
    let body = || Some(br#"{"Token":"whatever"}"#.to_vec());
    let r =
        api(&agent, Some(weak_secret)).request(Method::PUT, "/v1/agent/token/default", body()).await.unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("lacks permission 'acl:write'"), "{}", r.text());
    let run = cli(&agent, weak_secret, &["acl", "set-agent-token", "agent", "whatever"]).await.expect_code(1);
    assert!(
        run.stderr
            .starts_with("Error: Failed to set ACL token: Unexpected response code: 403 (Permission denied")
    );

    let root = api(&agent, Some(ROOT));
    for kind in ["default", "agent", "agent_recovery", "replication", "acl_agent_token", "agent_master"] {
        let r = root.request(Method::PUT, &format!("/v1/agent/token/{kind}"), body()).await.unwrap();
        assert_eq!((r.status, r.text()), (StatusCode::OK, String::new()), "{kind}");
    }
    let r = root.request(Method::PUT, "/v1/agent/token/nope", body()).await.unwrap();
    assert_eq!((r.status, r.text()), (StatusCode::NOT_FOUND, "Token \"nope\" is unknown".to_owned()));
    let run = cli(&agent, ROOT, &["acl", "set-agent-token", "nope", "x"]).await.expect_code(1);
    assert!(run.stderr.contains("404 (Token \"nope\" is unknown)"), "{run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_explain_prints_the_deciding_rule_for_a_deny_and_exits_0() {
    let agent = start_acl(|_| {}).await;
    let token = token_with_rules(&agent, "app-read", "key_prefix \"app/\" { policy = \"read\" }").await;
    let accessor = str_of(&token, "AccessorID");
    let args = [
        "acl",
        "explain",
        "-token-accessor",
        accessor,
        "-resource",
        "key",
        "-segment",
        "app/config",
        "-access",
    ];
    let deny = cli(&agent, ROOT, &[&args[..], &["write"]].concat()).await.ok();
    let lines: Vec<&str> = deny.stdout.lines().collect();
    assert_eq!(lines[0], "Decision: deny", "{deny:#?}");
    assert!(lines[1].starts_with("Reason: ") && lines[1].contains("key_prefix \"app/\""), "{deny:#?}");
    assert!(lines[1].contains("app-read"), "names the policy: {deny:#?}");
    assert!(lines[2].starts_with("Suggestion: "), "{deny:#?}");

    let allow = cli(&agent, ROOT, &[&args[..], &["read"]].concat()).await.ok();
    assert!(allow.stdout.starts_with("Decision: allow\nReason: "), "{allow:#?}");
    let json = parse(&cli(&agent, ROOT, &[&args[..], &["write", "-format=json"]].concat()).await.ok());
    assert_eq!((json["Allow"].clone(), json["Resource"].clone()), (json!(false), json!("key")));

    let other =
        cli(&agent, ROOT, &["acl", "explain", "-resource", "key", "-segment", "zzz", "-access", "read"])
            .await;
    assert!(
        other.ok().stdout.starts_with("Decision: allow\n"),
        "without -token-accessor: the presented token"
    );
    let weak = cli(&agent, str_of(&token, "SecretID"), &[&args[..], &["read"]].concat()).await.expect_code(1);
    assert!(weak.stderr.contains("403 (Permission denied"), "needs acl:read: {weak:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_usage_errors_exit_2_and_help_has_examples() {
    for args in [
        &["acl", "token", "read"][..],
        &["acl", "token", "delete"],
        &["acl", "policy", "create", "-rules", "x"],
        &["acl", "policy", "read"],
        &["acl", "token", "create", "-node-identity", "no-datacenter"],
        &["acl", "token", "create", "-expires-ttl", "soon"],
        &["acl", "token", "list", "-format=yaml"],
        &["acl", "explain", "-resource", "key", "-access", "maybe"],
        &["acl", "set-agent-token", "default"],
        &["acl", "auth-method", "create", "-name", "m"],
        &["acl", "binding-rule", "create", "-bind-type", "service"],
        &["login", "-method", "m"],
        &["acl", "no-such-family"],
    ] {
        let run = sekisho(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    }
    for args in [
        &["acl", "--help"][..],
        &["acl", "bootstrap", "--help"],
        &["acl", "token", "create", "--help"],
        &["acl", "policy", "read", "--help"],
        &["acl", "set-agent-token", "--help"],
        &["acl", "explain", "--help"],
        &["acl", "auth-method", "create", "--help"],
        &["acl", "binding-rule", "create", "--help"],
        &["login", "--help"],
        &["logout", "--help"],
    ] {
        let run = sekisho(args).await.ok();
        assert!(run.stdout.contains("Example"), "{args:?}: {run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_set_agent_token_survives_a_restart_with_token_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let node_id = uuid::Uuid::new_v4().to_string();
    let node = format!("persist-{}", &node_id[..8]);
    let setup = |cfg: &mut RuntimeConfig| {
        cfg.dev = false;
        cfg.data_dir = Some(dir.path().to_path_buf());
        cfg.node_id.clone_from(&node_id);
        cfg.node_name.clone_from(&node);
        cfg.acl["enable_token_persistence"] = json!(true);
    };
    let agent = start_acl(setup).await;
    api(&agent, Some(ROOT)).kv_put("x", b"1".to_vec(), None, None).await.unwrap();
    let token = token_with_rules(&agent, "x-read", "key \"x\" { policy = \"read\" }").await;
    cli(&agent, ROOT, &["acl", "set-agent-token", "default", str_of(&token, "SecretID")]).await.ok();
    let file = dir.path().join("acl-tokens.json");
    assert_private(&file);
    agent.shutdown().await;

    let agent = start_acl(setup).await;
    let anonymous = api(&agent, None);
    let entry = anonymous.kv_get("x").await.expect("the persisted default token is in force after a restart");
    assert_eq!(entry.expect("x").value_bytes(), b"1");
    agent.shutdown().await;
}

#[cfg(unix)]
fn assert_private(file: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        std::fs::metadata(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
}

#[cfg(not(unix))]
fn assert_private(file: &Path) {
    assert!(file.exists());
}

/// An Ed25519 key pair and its public key as PEM, for a jwt auth method.
struct JwtKey {
    pair: ring::signature::Ed25519KeyPair,
    public_pem: String,
}

fn jwt_key() -> JwtKey {
    use base64::Engine as _;
    use ring::signature::KeyPair as _;
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    // SubjectPublicKeyInfo for Ed25519: a fixed prefix, then the 32 key bytes.
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    JwtKey { pair, public_pem: format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n") }
}

fn sign_jwt(key: &JwtKey, claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let signature = key.pair.sign(signed.as_bytes());
    format!("{signed}.{}", b64(signature.as_ref()))
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_auth_method_binding_rule_login_and_logout() {
    let agent = start_acl(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let key = jwt_key();
    let config = json!({
        "JWTValidationPubKeys": [key.public_pem],
        "JWTSupportedAlgs": ["EdDSA"],
        "BoundIssuer": "https://ci.example",
        "ClaimMappings": { "svc": "svc" },
    });
    let config_file = dir.path().join("jwt.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let at_config = format!("@{}", config_file.display());
    let args =
        ["acl", "auth-method", "create", "-type", "jwt", "-name", "ci", "-max-token-ttl", "10m", "-config"];
    let run = cli(&agent, ROOT, &[&args[..], &[at_config.as_str()]].concat()).await.ok();
    assert!(run.stdout.starts_with("Name:          ci\nType:          jwt\n"), "{run:#?}");
    assert!(
        run.stdout.contains("MaxTokenTTL:   10m0s\n") && run.stdout.contains("\"BoundIssuer\""),
        "{run:#?}"
    );
    let up =
        cli(&agent, ROOT, &["acl", "auth-method", "update", "-name", "ci", "-description", "CI jobs"]).await;
    assert!(up.ok().stdout.contains("Description:   CI jobs\n"));

    let args = ["acl", "binding-rule", "create", "-method", "ci", "-bind-type", "service"];
    let rule = cli(
        &agent,
        ROOT,
        &[&args[..], &["-bind-name", "${value.svc}", "-selector", "value.svc == \"web\""]].concat(),
    )
    .await
    .ok();
    assert!(
        rule.stdout.contains("AuthMethod:   ci\n") && rule.stdout.contains("BindName:     ${value.svc}\n"),
        "{rule:#?}"
    );
    let rules = parse(
        &cli(&agent, ROOT, &["acl", "binding-rule", "list", "-method", "ci", "-format=json"]).await.ok(),
    );
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{rules}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let jwt =
        sign_jwt(&key, &json!({"iss": "https://ci.example", "svc": "web", "iat": now, "exp": now + 300}));
    let bearer = dir.path().join("jwt");
    std::fs::write(&bearer, format!("{jwt}\n")).unwrap();
    let sink = dir.path().join("token");
    let addr = format!("-http-addr={}", agent.http_addr());
    let login = [
        "login",
        &addr,
        "-method",
        "ci",
        "-bearer-token-file",
        bearer.to_str().unwrap(),
        "-token-sink-file",
        sink.to_str().unwrap(),
        "-meta",
        "job=42",
    ];
    let run = sekisho(&login).await.ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""), "login prints nothing");
    assert_private(&sink);
    let secret = std::fs::read_to_string(&sink).unwrap();
    let me = parse(&cli(&agent, &secret, &["acl", "token", "read", "-self", "-format=json"]).await.ok());
    assert_eq!(me["AuthMethod"], "ci");
    assert_eq!(me["ServiceIdentities"][0]["ServiceName"], "web");

    let token_file = format!("-token-file={}", sink.display());
    sekisho(&["logout", &addr, &token_file]).await.ok();
    let gone = cli(&agent, &secret, &["acl", "token", "read", "-self"]).await.expect_code(1);
    assert!(gone.stderr.contains("ACL not found"), "{gone:#?}");

    let bad = sign_jwt(&key, &json!({"iss": "https://other.example", "svc": "web", "exp": now + 300}));
    std::fs::write(&bearer, bad).unwrap();
    let run = sekisho(&login).await.expect_code(1);
    assert!(run.stderr.starts_with("Error: Error logging in: Unexpected response code: 403"), "{run:#?}");

    let del = cli(&agent, ROOT, &["acl", "auth-method", "delete", "-name", "ci"]).await.ok();
    assert_eq!(del.stdout, "Auth method \"ci\" deleted successfully\n");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_bootstrap_reset_writes_the_reset_file_and_can_revoke_earlier_management_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_path_buf();
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.acl = json!({"enabled": true, "default_policy": "deny"});
        cfg.data_dir = Some(data_dir.clone());
    })
    .await;
    let addr = format!("-http-addr={}", agent.http_addr());
    let anonymous = api(&agent, None);
    eventually(WAIT, "the leader creates the built-in ACL objects", || async {
        let r = anonymous.request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
        r.is_success().then_some(())
    })
    .await;
    let first = parse(&sekisho(&["acl", "bootstrap", &addr, "-format=json"]).await.ok());
    let first_secret = str_of(&first, "SecretID").to_owned();
    // A second management token, made with the first.
    let other = parse(
        &cli(
            &agent,
            &first_secret,
            &["acl", "token", "create", "-policy-name", "global-management", "-format=json"],
        )
        .await
        .ok(),
    );
    let data = format!("-data-dir={}", dir.path().display());

    // -revoke-management needs -reset, and -reset needs -data-dir: usage errors.
    sekisho(&["acl", "bootstrap", &addr, "-revoke-management"]).await.expect_code(2);
    sekisho(&["acl", "bootstrap", &addr, "-reset"]).await.expect_code(2);

    // A plain reset: a new token, the earlier ones still work (Consul's behaviour).
    let run = sekisho(&["acl", "bootstrap", &addr, "-reset", &data, "-format=json"]).await.ok();
    assert!(run.stderr.contains("Wrote reset index"), "{run:#?}");
    let second = parse(&run);
    assert_ne!(str_of(&second, "AccessorID"), str_of(&first, "AccessorID"));
    assert!(!dir.path().join("acl-bootstrap-reset").exists(), "the used reset file is gone");
    let r = api(&agent, Some(&first_secret))
        .request(Method::GET, "/v1/acl/token/self", None)
        .await
        .expect("request");
    assert_eq!(r.status, StatusCode::OK, "the first token survives a plain reset");

    // A reset that revokes: only the new token is left with global-management.
    let run = sekisho(&["acl", "bootstrap", &addr, "-reset", &data, "-revoke-management", "-format=json"])
        .await
        .ok();
    assert!(run.stderr.contains("Revoked 3 earlier management token(s)"), "{run:#?}");
    let third = parse(&run);
    let third_secret = str_of(&third, "SecretID").to_owned();
    for (what, secret) in [
        ("first", first_secret.as_str()),
        ("second", str_of(&second, "SecretID")),
        ("other", str_of(&other, "SecretID")),
    ] {
        let r = api(&agent, Some(secret))
            .request(Method::GET, "/v1/acl/token/self", None)
            .await
            .expect("request");
        assert_eq!(r.status, StatusCode::FORBIDDEN, "the {what} management token is revoked");
    }
    let r =
        api(&agent, Some(&third_secret)).request(Method::GET, "/v1/acl/tokens", None).await.expect("request");
    assert_eq!(r.status, StatusCode::OK);

    // Without the reset file the server refuses to revoke anything.
    let r =
        anonymous.request(Method::PUT, "/v1/acl/bootstrap?revoke-management", None).await.expect("request");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}
