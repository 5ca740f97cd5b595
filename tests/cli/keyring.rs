//! `keygen` and `keyring` (install, use, remove, list) against an encrypted TestAgent.

use base64::Engine as _;
use sekisho::testing::TestAgent;

use crate::support::{client, sekisho, sekisho_at};

const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";
const KEY_B: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

async fn encrypted() -> TestAgent {
    TestAgent::start_with(|cfg, _| cfg.encrypt = Some(KEY_A.to_owned())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn keygen_prints_a_fresh_32_byte_base64_key() {
    let first = sekisho(&["keygen"]).await.ok();
    let key = first.stdout.trim_end();
    assert_eq!(key.len(), 44, "{first:#?}");
    let raw = base64::engine::general_purpose::STANDARD.decode(key).expect("base64");
    assert_eq!(raw.len(), 32);
    assert_eq!(first.stdout, format!("{key}\n"), "just the key");
    let second = sekisho(&["keygen"]).await.ok();
    assert_ne!(second.stdout, first.stdout, "two runs differ");
}

#[tokio::test(flavor = "multi_thread")]
async fn keyring_list_prints_consuls_layout() {
    let agent = encrypted().await;
    let run = sekisho_at(&agent, &["keyring", "-list"]).await.ok();
    assert_eq!(
        run.stdout,
        format!("==> Gathering installed encryption keys...\n\ndc1 (LAN):\n  {KEY_A} [1/1]\n")
    );
    let run = sekisho_at(&agent, &["keyring", "-list-primary", "-local-only"]).await.ok();
    assert_eq!(
        run.stdout,
        format!("==> Gathering installed primary encryption keys...\n\ndc1 (LAN):\n  {KEY_A} [1/1]\n")
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keyring_install_use_remove_rotate_the_agents_key() {
    let agent = encrypted().await;
    let run = sekisho_at(&agent, &["keyring", &format!("-install={KEY_B}")]).await.ok();
    assert_eq!(run.stdout, "==> Installing new gossip encryption key...\n");
    let run = sekisho_at(&agent, &["keyring", "-use", KEY_B, "-relay-factor", "2"]).await.ok();
    assert_eq!(run.stdout, "==> Changing primary gossip encryption key...\n");

    let run = sekisho_at(&agent, &["keyring", &format!("-remove={KEY_B}")]).await.expect_code(1);
    assert_eq!(run.stdout, "==> Removing gossip encryption key...\n");
    assert!(run.stderr.starts_with("Error: Unexpected response code: 500"), "{run:#?}");
    assert!(run.stderr.contains("dc1 (LAN) error: 1/1 nodes reported failure"), "{run:#?}");
    let node = &agent.config.node_name;
    assert!(run.stderr.contains(&format!("{node}: Removing the primary key is not allowed")), "{run:#?}");

    sekisho_at(&agent, &["keyring", &format!("-remove={KEY_A}")]).await.ok();
    let pools = client(&agent).keyring_list(false, None).await.expect("listed");
    let keys: Vec<&String> = pools[0].keys.keys().collect();
    assert_eq!(keys, [KEY_B]);
    assert_eq!(pools[0].primary_keys.get(KEY_B), Some(&1));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keyring_needs_exactly_one_action() {
    for args in [
        &["keyring"][..],
        &["keyring", "-list", "-list-primary"],
        &["keyring", "-list", &format!("-install={KEY_B}")],
        &["keyring", "-install", KEY_A, "-remove", KEY_B],
        &["keyring", "-install", KEY_B, "-local-only"],
        &["keyring", "-list", "-relay-factor", "6"],
    ] {
        sekisho(args).await.expect_code(2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keyring_on_a_plaintext_agent_exits_1_with_the_reason() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["keyring", "-list"]).await.expect_code(1);
    assert!(run.stderr.contains("Gossip encryption is not enabled"), "{run:#?}");
    agent.shutdown().await;
}
