//! `kv sync status|push|pull [-watch]`: a directory shared through a 3-server cluster, and
//! the refusals (oversized files, keys that leave DIR) against a single agent.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sekisho::client::{Client, ClientConfig};
use sekisho::testing::{TestAgent, TestCluster, eventually};

use crate::support::{Run, client, sekisho, sekisho_at};

const DEADLINE: Duration = Duration::from_secs(20);

fn api(c: &TestCluster, i: usize) -> Client {
    Client::new(ClientConfig::new(c.agent(i).http_addr().to_string()))
}

/// `sekisho kv sync <action> -http-addr=<server i> <args…>`.
async fn sync(c: &TestCluster, i: usize, action: &str, args: &[&str]) -> Run {
    let addr = format!("-http-addr={}", c.agent(i).http_addr());
    let mut full = vec!["kv", "sync", action, addr.as_str()];
    full.extend_from_slice(args);
    sekisho(&full).await
}

fn write(dir: &Path, rel: &str, content: &[u8], mode: u32) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every regular file under `dir` (symlinks not followed): relative path → (content, mode).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path).unwrap(), meta.permissions().mode() & 0o7777));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_sync_round_trips_a_directory_through_the_cluster() {
    let c = TestCluster::start(3).await;
    c.wait_leader(DEADLINE).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_dir, b_dir) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    write(a.path(), "bin/deploy.sh", b"#!/bin/sh\necho deploy\n", 0o755);
    write(a.path(), "conf/app.conf", b"port = 80\n", 0o600);
    write(a.path(), "old.txt", b"old\n", 0o644);
    std::os::unix::fs::symlink("/etc/passwd", a.path().join("passwd-link")).unwrap();

    tracing::info!("--- status before the first push");
    let run = sync(&c, 0, "status", &[a_dir]).await.expect_code(3);
    assert!(run.stdout.contains("push: added bin/deploy.sh\n"), "{run:#?}");
    assert!(run.stdout.contains("pull: deleted old.txt\n"), "{run:#?}");
    assert!(run.stderr.contains("Warning: skipping symlink passwd-link"), "{run:#?}");

    tracing::info!("--- push A through server 0");
    let run = sync(&c, 0, "push", &[a_dir]).await.ok();
    assert_eq!(run.stdout, "push: added bin/deploy.sh\npush: added conf/app.conf\npush: added old.txt\n");
    let entry = api(&c, 0).kv_get("files/bin/deploy.sh").await.unwrap().expect("content key");
    assert_eq!((entry.flags, entry.value_bytes()), (0o755, &b"#!/bin/sh\necho deploy\n"[..]));
    let meta = api(&c, 0).kv_get("files/.meta/bin/deploy.sh").await.unwrap().expect("meta key");
    let meta: serde_json::Value = serde_json::from_slice(meta.value_bytes()).unwrap();
    assert_eq!((meta["Mode"].as_u64(), meta["Size"].as_u64()), (Some(493), Some(22)));
    assert_eq!(meta["SHA256"].as_str().map(str::len), Some(64));
    assert!(api(&c, 0).kv_get("files/passwd-link").await.unwrap().is_none(), "symlinks are skipped");
    assert_eq!(sync(&c, 0, "status", &[a_dir]).await.ok().stdout, "In sync\n");

    tracing::info!("--- pull into B through server 2");
    let run = sync(&c, 2, "status", &[b_dir]).await.expect_code(3);
    assert!(run.stdout.contains("pull: added bin/deploy.sh\n"), "{run:#?}");
    sync(&c, 2, "pull", &[b_dir]).await.ok();
    let expected: Vec<_> = tree(a.path());
    assert_eq!(tree(b.path()), expected);
    assert!(expected.iter().any(|(p, _, m)| p == "bin/deploy.sh" && *m == 0o755), "{expected:?}");
    assert_eq!(sync(&c, 2, "status", &[b_dir]).await.ok().stdout, "In sync\n");

    tracing::info!("--- deletions propagate and leave no empty directory");
    std::fs::remove_file(a.path().join("old.txt")).unwrap();
    std::fs::remove_file(a.path().join("conf/app.conf")).unwrap();
    let run = sync(&c, 0, "push", &[a_dir]).await.ok();
    assert_eq!(run.stdout, "push: deleted conf/app.conf\npush: deleted old.txt\n");
    let run = sync(&c, 2, "pull", &[b_dir]).await.ok();
    assert_eq!(run.stdout, "pull: deleted conf/app.conf\npull: deleted old.txt\n");
    assert!(!b.path().join("old.txt").exists() && !b.path().join("conf").exists());
    assert_eq!(
        api(&c, 1).kv_keys("files/", None).await.unwrap(),
        ["files/.meta/bin/deploy.sh", "files/bin/deploy.sh"]
    );

    tracing::info!("--- -watch pulls a KV change and pushes a local one");
    let addr = format!("-http-addr={}", c.agent(1).http_addr());
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["kv", "sync", "pull", "-watch", "-interval=100ms", &addr, b_dir])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning kv sync -watch");
    api(&c, 0)
        .kv_put("files/bin/deploy.sh", b"#!/bin/sh\necho v2\n".to_vec(), Some(0o750), None)
        .await
        .unwrap();
    let script = b.path().join("bin/deploy.sh");
    eventually(DEADLINE, "the watch pulls the KV change", || async {
        let mode = std::fs::metadata(&script).ok()?.permissions().mode() & 0o7777;
        (std::fs::read(&script).ok()? == b"#!/bin/sh\necho v2\n" && mode == 0o750).then_some(())
    })
    .await;
    write(b.path(), "notes/local.txt", b"written in B\n", 0o644);
    eventually(DEADLINE, "the watch pushes the local file", || async {
        let e = api(&c, 2).kv_get("files/notes/local.txt").await.ok()??;
        (e.value_bytes() == b"written in B\n").then_some(())
    })
    .await;
    assert_eq!(watch.try_wait().unwrap(), None, "the watch is still running");
    watch.kill().await.unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_sync_refuses_oversized_files_and_keys_outside_dir_before_writing() {
    let agent = TestAgent::start().await;
    let kv = client(&agent);
    let src = tempfile::tempdir().unwrap();
    let src_dir = src.path().to_str().unwrap();
    write(src.path(), "a.sh", b"echo a\n", 0o755);
    write(src.path(), "big.bin", &vec![7u8; 600 * 1024], 0o644);

    tracing::info!("--- a 600 KiB file stops the push before anything is written");
    let run = sekisho_at(&agent, &["kv", "sync", "push", src_dir]).await.expect_code(1);
    assert!(run.stderr.contains("big.bin is 614400 bytes"), "{run:#?}");
    assert!(run.stderr.contains("kv_max_value_size") && run.stderr.contains("split"), "{run:#?}");
    assert!(kv.kv_keys("", None).await.unwrap().is_empty(), "nothing at all was written");

    tracing::info!("--- a key that leaves DIR stops the pull, naming the key");
    kv.kv_put("files/ok.txt", b"fine".to_vec(), None, None).await.unwrap();
    kv.kv_put("files/../evil", b"pwned".to_vec(), None, None).await.unwrap();
    assert!(kv.kv_get("files/../evil").await.unwrap().is_some(), "the key is stored as written");
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("dest");
    let dest_dir = dest.to_str().unwrap();
    let run = sekisho_at(&agent, &["kv", "sync", "pull", dest_dir]).await.expect_code(1);
    assert!(run.stderr.contains("\"files/../evil\""), "{run:#?}");
    assert!(!parent.path().join("evil").exists(), "nothing outside DIR");
    assert!(!dest.exists(), "not even DIR was created");
    std::fs::create_dir(&dest).unwrap();
    let run = sekisho_at(&agent, &["kv", "sync", "status", dest_dir]).await.expect_code(3);
    assert!(run.stdout.contains("pull: refused key \"files/../evil\""), "{run:#?}");

    tracing::info!("--- a push from an empty DIR removes both keys");
    let run = sekisho_at(&agent, &["kv", "sync", "push", dest_dir]).await.ok();
    assert_eq!(run.stdout, "push: deleted ok.txt\npush: deleted ../evil\n");
    assert!(kv.kv_keys("files/", None).await.unwrap().is_empty());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_sync_push_batches_many_files_and_puts_large_ones_alone() {
    let agent = TestAgent::start().await;
    let src = tempfile::tempdir().unwrap();
    let src_dir = src.path().to_str().unwrap();
    for i in 0..100 {
        write(src.path(), &format!("many/f{i:03}.txt"), format!("file {i}\n").as_bytes(), 0o644);
    }
    // 400 KiB fits the value limit but not, base64-encoded, a 512 KiB transaction.
    write(src.path(), "large.bin", &vec![1u8; 400 * 1024], 0o644);
    let run = sekisho_at(&agent, &["kv", "sync", "push", src_dir]).await.ok();
    assert!(run.stderr.contains("pushed 64 of 101 files\n"), "{run:#?}");
    assert!(run.stderr.ends_with("pushed 101 of 101 files\n"), "{run:#?}");
    assert_eq!(client(&agent).kv_keys("files/", None).await.unwrap().len(), 202);
    let large = client(&agent).kv_get("files/large.bin").await.unwrap().expect("large file");
    assert_eq!(large.value_bytes().len(), 400 * 1024);
    let dest = tempfile::tempdir().unwrap();
    sekisho_at(&agent, &["kv", "sync", "pull", dest.path().to_str().unwrap()]).await.ok();
    assert_eq!(tree(dest.path()), tree(src.path()));
    assert_eq!(sekisho_at(&agent, &["kv", "sync", "status", src_dir]).await.ok().stdout, "In sync\n");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_sync_argument_errors_exit_2() {
    for args in [
        &["kv", "sync", "status", "-watch", "/tmp"][..],
        &["kv", "sync", "push"],
        &["kv", "sync", "pull", "-interval=soon", "/tmp"],
        &["kv", "sync", "status", "-prefix=/", "/tmp"],
    ] {
        let run = sekisho(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    }
    let help = sekisho(&["kv", "sync", "push", "--help"]).await.ok();
    assert!(help.stdout.contains("<prefix>.meta/<path>") && help.stdout.contains("KV wins"), "{help:#?}");
}
