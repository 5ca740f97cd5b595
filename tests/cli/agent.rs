//! `sekisho agent`: configuration errors stop it before anything starts.

use crate::support::sekisho;

#[tokio::test(flavor = "multi_thread")]
async fn agent_with_unknown_config_key_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, r#"{"datacenter": "dc1", "bogus_sekisho_key": true}"#).unwrap();
    let data_dir = dir.path().join("data");
    let run = sekisho(&[
        "agent",
        "-config-file",
        file.to_str().unwrap(),
        &format!("-data-dir={}", data_dir.display()),
    ])
    .await
    .expect_code(1);
    assert!(run.stderr.contains("Error: "), "{run:#?}");
    assert!(run.stderr.contains("bogus_sekisho_key"), "{run:#?}");
    assert!(!run.stdout.contains("agent running"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_rejects_a_bad_flag_value_with_exit_2() {
    sekisho(&["agent", "-bootstrap-expect=many"]).await.expect_code(2);
}
