//! `sekisho lock`: mutual exclusion, semaphores, timeouts and cleanup, between real processes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sekisho::testing::{TestAgent, eventually};
use tokio::process::Child;

use crate::support::{client, sekisho_at};

const DEADLINE: Duration = Duration::from_secs(30);

/// Starts `sekisho lock -http-addr=<agent> <args>` in the background.
fn spawn_lock(agent: &TestAgent, args: &[&str]) -> Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command
        .arg("lock")
        .arg(format!("-http-addr={}", agent.http_addr()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in ["CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "SEKISHO_HTTP_ADDR", "SEKISHO_HTTP_TOKEN"] {
        command.env_remove(name);
    }
    command.spawn().expect("spawning sekisho lock")
}

async fn finish(child: Child) -> std::process::Output {
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("sekisho lock finishes")
        .expect("wait")
}

/// A child that logs `start`/`end` with its pid to `marker` around a short sleep.
fn marking_child(marker: &Path) -> String {
    let m = marker.display();
    format!("echo start $$ >> {m}; sleep 0.4; echo end $$ >> {m}")
}

/// The most children ever inside at once, from a marker file.
fn max_concurrency(marker: &Path) -> usize {
    let text = std::fs::read_to_string(marker).unwrap_or_default();
    let (mut inside, mut max) = (0usize, 0usize);
    for line in text.lines() {
        if line.starts_with("start") {
            inside += 1;
            max = max.max(inside);
        } else {
            inside -= 1;
        }
    }
    max
}

fn lines(marker: &Path) -> usize {
    std::fs::read_to_string(marker).map(|t| t.lines().count()).unwrap_or(0)
}

async fn sessions(agent: &TestAgent) -> usize {
    let r = client(agent).request(http::Method::GET, "/v1/session/list", None).await.expect("list");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_sees_the_lock_env_and_the_lock_is_cleaned_up_after() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let cmd = format!("echo $CONSUL_LOCK_HELD $SEKISHO_LOCK_FENCE > {}", out.display());
    let run = sekisho_at(&agent, &["lock", "-verbose", "app/leader", &cmd]).await.ok();
    assert!(run.stderr.contains("Attempting lock acquisition"), "{run:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let (held, fence) = text.trim().split_once(' ').expect("two words");
    assert_eq!(held, "true");
    let (lock_index, modify_index) = fence.split_once('/').expect("L/M");
    assert!(lock_index.parse::<u64>().unwrap() >= 1, "{fence}");
    assert!(modify_index.parse::<u64>().unwrap() >= 1, "{fence}");
    // Released (and, being free, deleted) and the session destroyed.
    let entry = client(&agent).kv_get("app/leader/.lock").await.unwrap();
    assert!(entry.as_ref().is_none_or(|e| e.session.is_none()), "{entry:?}");
    assert_eq!(sessions(&agent).await, 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_lock_holders_never_overlap() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let cmd = marking_child(&marker);
    let a = spawn_lock(&agent, &["app/mutex", &cmd]);
    let b = spawn_lock(&agent, &["app/mutex", &cmd]);
    let (a, b) = (finish(a).await, finish(b).await);
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(lines(&marker), 4, "both children ran");
    assert_eq!(max_concurrency(&marker), 1, "{}", std::fs::read_to_string(&marker).unwrap());
    assert_eq!(sessions(&agent).await, 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_semaphore_of_two_admits_exactly_two_of_three() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let m = marker.display();
    // Long enough that the first two overlap however the three start.
    let cmd = format!("echo start $$ >> {m}; sleep 1.5; echo end $$ >> {m}");
    let children: Vec<Child> = (0..3).map(|_| spawn_lock(&agent, &["-n", "2", "app/sem", &cmd])).collect();
    for child in children {
        let out = finish(child).await;
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(lines(&marker), 6, "all three ran");
    assert_eq!(max_concurrency(&marker), 2, "{}", std::fs::read_to_string(&marker).unwrap());
    assert_eq!(sessions(&agent).await, 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn child_exit_code_is_passed_through_only_when_asked() {
    let agent = TestAgent::start().await;
    sekisho_at(&agent, &["lock", "-child-exit-code", "app/code", "exit 3"]).await.expect_code(3);
    sekisho_at(&agent, &["lock", "app/code", "exit 3"]).await.ok();
    let run = sekisho_at(
        &agent,
        &["lock", "-shell=false", "-child-exit-code", "app/code", "--", "sh", "-c", "exit 4"],
    )
    .await;
    run.expect_code(4);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contender_with_a_timeout_gives_up_while_the_lock_is_held() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (started, done) = (dir.path().join("started"), dir.path().join("done"));
    let cmd = format!("touch {}; while [ ! -f {} ]; do sleep 0.05; done", started.display(), done.display());
    let holder = spawn_lock(&agent, &["app/busy", &cmd]);
    eventually(DEADLINE, "the holder's child runs", || async { started.exists().then_some(()) }).await;
    let run = sekisho_at(&agent, &["lock", "-timeout", "1s", "app/busy", "true"]).await.expect_code(1);
    assert!(run.stderr.contains("Shutdown triggered or timeout during lock acquisition"), "{run:?}");
    let entry = client(&agent).kv_get("app/busy/.lock").await.unwrap().expect("the lock key");
    assert!(entry.session.is_some(), "still held by the first process");
    assert_eq!(entry.flags, sekisho::client::lock::LOCK_FLAG_VALUE);
    std::fs::write(&done, "").unwrap();
    assert!(finish(holder).await.status.success());
    let entry = client(&agent).kv_get("app/busy/.lock").await.unwrap();
    assert!(entry.as_ref().is_none_or(|e| e.session.is_none()), "released: {entry:?}");
    assert_eq!(sessions(&agent).await, 0, "sessions destroyed");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_and_a_semaphore_on_one_prefix_conflict() {
    let agent = TestAgent::start().await;
    let flags = Some(sekisho::client::lock::LOCK_FLAG_VALUE);
    assert!(client(&agent).kv_put("app/mixed/.lock", Vec::new(), flags, None).await.unwrap());
    let run = sekisho_at(&agent, &["lock", "-n", "2", "app/mixed", "true"]).await.expect_code(1);
    assert!(run.stderr.contains("Existing key does not match semaphore use"), "{run:?}");
    agent.shutdown().await;
}

#[tokio::test]
async fn usage_errors_exit_two() {
    crate::support::sekisho(&["lock", "only-a-prefix"]).await.expect_code(2);
    crate::support::sekisho(&["lock", "-n", "0", "p", "true"]).await.expect_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_command_keeps_its_own_dash_arguments() {
    // As with Go's flag parsing, flags end at the child command: `-a`, `-shell` and
    // `-timeout` below belong to printf, not to `sekisho lock`.
    let agent = TestAgent::start().await;
    let run = sekisho_at(
        &agent,
        &["lock", "-shell=false", "app/args", "printf", "%s|", "-a", "-shell", "-timeout"],
    )
    .await
    .ok();
    assert_eq!(run.stdout, "-a|-shell|-timeout|", "{run:?}");
    agent.shutdown().await;
}
