//! `snapshot save|inspect|restore` and `operator raft|autopilot` against a TestAgent, plus
//! their argument errors.

use std::time::Duration;

use sekisho::testing::{TestAgent, eventually};

use crate::support::{client, sekisho, sekisho_at};

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_save_inspect_and_restore_round_trip() {
    let agent = TestAgent::start().await;
    let api = client(&agent);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let file_arg = file.to_str().unwrap();
    assert!(api.kv_put("app/mode", b"blue".to_vec(), None, None).await.unwrap());

    let run = sekisho_at(&agent, &["snapshot", "save", file_arg]).await.ok();
    let index: u64 = run
        .stdout
        .trim()
        .strip_prefix("Saved and verified snapshot to index ")
        .unwrap_or_else(|| panic!("{run:#?}"))
        .parse()
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["backup.snap"], "no temporary file is left behind");

    let run = sekisho(&["snapshot", "inspect", file_arg]).await.ok();
    let size = std::fs::metadata(&file).unwrap().len();
    let field = |name: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in {run:#?}"))
    };
    assert_eq!(field("Index"), index.to_string());
    assert_eq!(field("Size"), size.to_string());
    assert_eq!(field("Version"), "1");
    assert!(field("ID").contains(&format!("-{index}-")), "Consul's <term>-<index>-<millis> ID");
    assert!(run.stdout.contains(" Type ") && run.stdout.contains(" KVEntry "), "{}", run.stdout);

    assert!(api.kv_put("app/mode", b"green".to_vec(), None, None).await.unwrap());
    assert!(api.kv_put("app/new", b"x".to_vec(), None, None).await.unwrap());
    let run = sekisho_at(&agent, &["snapshot", "restore", file_arg]).await.ok();
    assert_eq!(run.stdout, "Restored snapshot\n");
    assert_eq!(api.kv_get("app/mode").await.unwrap().unwrap().value_bytes(), b"blue");
    assert!(api.kv_get("app/new").await.unwrap().is_none());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_snapshot_file_is_refused_before_it_reaches_the_agent() {
    let agent = TestAgent::start().await;
    let api = client(&agent);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let file_arg = file.to_str().unwrap();
    sekisho_at(&agent, &["snapshot", "save", file_arg]).await.ok();
    assert!(api.kv_put("still", b"here".to_vec(), None, None).await.unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();

    let run = sekisho(&["snapshot", "inspect", file_arg]).await.expect_code(1);
    assert!(run.stderr.contains("checksum mismatch"), "{run:#?}");
    let run = sekisho_at(&agent, &["snapshot", "restore", file_arg]).await.expect_code(1);
    assert!(run.stderr.starts_with("Error: verifying snapshot file"), "{run:#?}");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let run = sekisho(&["snapshot", "inspect", file_arg]).await.expect_code(1);
    assert!(run.stderr.contains("truncated"), "{run:#?}");
    assert_eq!(api.kv_get("still").await.unwrap().unwrap().value_bytes(), b"here");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_peers_shows_the_single_server_as_leader() {
    let agent = TestAgent::start().await;
    let node = agent.config.node_name.clone();
    let id = agent.config.node_id.clone();
    // The ID column shows the node ID once the leader has registered its node.
    let run = eventually(Duration::from_secs(10), "list-peers shows the node ID", || async {
        let run = sekisho_at(&agent, &["operator", "raft", "list-peers"]).await;
        (run.code == 0 && run.stdout.contains(&id)).then_some(run)
    })
    .await;
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[1], row[3], row[4], row[5]), (node.as_str(), id.as_str(), "leader", "true", "3"));

    let run = sekisho_at(&agent, &["operator", "raft", "remove-peer", "-address=10.9.9.9:8300"]).await;
    let run = run.expect_code(1);
    assert!(
        run.stderr.contains(r#"address "10.9.9.9:8300" was not found in the Raft configuration"#),
        "{run:#?}"
    );
    let run = sekisho_at(&agent, &["operator", "raft", "transfer-leader"]).await.expect_code(1);
    assert!(run.stderr.contains("no other voting server"), "{run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn autopilot_set_config_changes_only_the_given_values() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["operator", "autopilot", "get-config"]).await.ok();
    assert!(run.stdout.starts_with("CleanupDeadServers = true\nLastContactThreshold = 200ms\n"), "{run:#?}");
    let run = sekisho_at(
        &agent,
        &["operator", "autopilot", "set-config", "-min-quorum=3", "-last-contact-threshold=1s"],
    )
    .await
    .ok();
    assert_eq!(run.stdout, "Configuration updated!\n");
    let run = sekisho_at(&agent, &["operator", "autopilot", "get-config"]).await.ok();
    assert!(run.stdout.contains("MinQuorum = 3\n"), "{}", run.stdout);
    assert!(run.stdout.contains("LastContactThreshold = 1s\n"), "{}", run.stdout);
    assert!(run.stdout.contains("MaxTrailingLogs = 250\n"), "{}", run.stdout);
    let run = sekisho_at(&agent, &["operator", "autopilot", "state"]).await.ok();
    assert!(run.stdout.starts_with("Healthy:"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("Leader:                       {}", agent.config.node_id)),
        "{}",
        run.stdout
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn operator_and_snapshot_usage_errors_exit_two() {
    for args in [
        &["snapshot", "save"][..],
        &["snapshot", "inspect", "a", "b"],
        &["operator", "raft", "remove-peer"],
        &["operator", "raft", "remove-peer", "-id=a", "-address=1.2.3.4:5"],
        &["operator", "autopilot", "set-config", "-min-quorum=many"],
        &["operator", "autopilot", "set-config", "-last-contact-threshold=soon"],
        &["operator", "autopilot", "set-config", "-cleanup-dead-servers=maybe"],
        &["operator", "raft", "recover", "-data-dir=/tmp"],
        &["operator", "bogus"],
    ] {
        sekisho(args).await.expect_code(2);
    }
}

#[tokio::test]
async fn recover_refuses_bad_input_and_missing_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("-data-dir={}", dir.path().display());
    // An address that is only written into the peer list, never bound: any free port will do.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = format!("id=3,address=127.0.0.1:{port}");
    let run = sekisho(&["operator", "raft", "recover", &data, "-server", &server]).await;
    let run = run.expect_code(1);
    assert!(run.stderr.contains("no Raft log at"), "{run:#?}");
    let run = sekisho(&["operator", "raft", "recover", &data, "-server", "id=3"]).await.expect_code(1);
    assert!(run.stderr.contains("needs both id= and address="), "{run:#?}");
    let peers = dir.path().join("peers.json");
    std::fs::write(&peers, format!(r#"["127.0.0.1:{port}"]"#)).unwrap();
    let file = format!("-peers-file={}", peers.display());
    let run = sekisho(&["operator", "raft", "recover", &data, &file]).await.expect_code(1);
    assert!(run.stderr.contains("parsing"), "{run:#?}");
}
