//! `sekisho watch`: usage errors, a key watch with a handler (start, changes, bursts,
//! agent restarts) and JSON printing without a handler.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sekisho::client::{Client, ClientConfig};
use sekisho::testing::{TestAgent, TestCluster, eventually};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::support::{client, sekisho};

const DEADLINE: Duration = Duration::from_secs(30);

/// Appends `start <pid>`, `run <index> <stdin>` and `end <pid>` to `$MARK`, slowly enough
/// that changes arrive while it runs.
const HANDLER: &str = r#"#!/bin/sh
echo "start $$" >> "$MARK"
body=$(cat)
sleep 0.2
echo "run $CONSUL_INDEX $body" >> "$MARK"
echo "end $$" >> "$MARK"
"#;

/// A running `sekisho watch`, killed when dropped; its stdout is collected.
struct WatchProcess {
    _child: Child,
    stdout: Arc<Mutex<String>>,
}

fn spawn_watch(addr: &str, args: &[&str], mark: Option<&Path>) -> WatchProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sekisho"));
    cmd.arg("watch").arg(format!("-http-addr={addr}")).args(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    if let Some(m) = mark {
        cmd.env("MARK", m);
    }
    let mut child = cmd.spawn().expect("spawning sekisho watch");
    let stdout = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let sink = stdout.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut s = sink.lock();
            s.push_str(&line);
            s.push('\n');
        }
    });
    WatchProcess { _child: child, stdout }
}

/// The `run` lines of the marker file, and a panic if two runs overlapped.
fn runs(mark: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(mark).unwrap_or_default();
    let mut open: Option<&str> = None;
    let mut runs = Vec::new();
    for line in text.lines() {
        if let Some(pid) = line.strip_prefix("start ") {
            assert!(open.is_none(), "handler runs overlapped:\n{text}");
            open = Some(pid);
        } else if let Some(pid) = line.strip_prefix("end ") {
            assert_eq!(open.take(), Some(pid), "unbalanced handler lines:\n{text}");
        } else if let Some(run) = line.strip_prefix("run ") {
            runs.push(run.to_owned());
        }
    }
    runs
}

fn b64(v: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v)
}

async fn wait_runs(mark: &Path, what: &str, f: impl Fn(&[String]) -> bool) -> Vec<String> {
    eventually(DEADLINE, what, || {
        let r = runs(mark);
        std::future::ready(f(&r).then_some(r))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    let run = sekisho(&["watch", "-http-addr=127.0.0.1:1"]).await.expect_code(2);
    assert!(run.stderr.contains("-type is required"), "{run:#?}");
    let run = sekisho(&["watch", "-http-addr=127.0.0.1:1", "-type=bogus"]).await.expect_code(2);
    assert!(run.stderr.contains("Unsupported watch type: bogus"), "{run:#?}");
    let run = sekisho(&["watch", "-http-addr=127.0.0.1:1", "-type=key"]).await.expect_code(2);
    assert!(run.stderr.contains("Must specify a single key to watch"), "{run:#?}");
    let run = sekisho(&["watch", "--help"]).await.ok();
    assert!(run.stdout.contains("keyprefix") && run.stdout.contains("Examples:"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_watch_runs_its_handler_at_start_per_change_coalesced_and_after_a_restart() {
    let mut c = TestCluster::start_full(3, 0, |_, _| {}).await;
    let leader = c.wait_leader(DEADLINE).await;
    let i = (0..3).find(|&i| i != leader).unwrap();
    let addr = c.agent(i).http_addr().to_string();
    let kv = Client::new(ClientConfig::new(addr.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (script, mark) = (dir.path().join("handler.sh"), dir.path().join("mark"));
    std::fs::write(&script, HANDLER).unwrap();
    kv.kv_put("watched", b"v0".to_vec(), None, None).await.unwrap();
    let handler = format!("sh {}", script.display());
    let _watch = spawn_watch(&addr, &["-type=key", "-key=watched", &handler], Some(&mark));

    tracing::info!("--- the handler runs once at start with the current value");
    let r = wait_runs(&mark, "the first run", |r| !r.is_empty()).await;
    assert!(r[0].contains(&format!("\"Value\":\"{}\"", b64("v0"))), "{r:?}");
    let index: u64 = r[0].split(' ').next().unwrap().parse().expect("CONSUL_INDEX is a number");
    assert!(index > 0);

    tracing::info!("--- one change, one run");
    kv.kv_put("watched", b"v1".to_vec(), None, None).await.unwrap();
    let r = wait_runs(&mark, "the run for v1", |r| r.len() == 2).await;
    assert!(r[1].contains(&b64("v1")), "{r:?}");

    tracing::info!("--- a burst of 100 writes is coalesced");
    for n in 0..100 {
        kv.kv_put("watched", format!("burst-{n}").into_bytes(), None, None).await.unwrap();
    }
    let last = b64("burst-99");
    let r = wait_runs(&mark, "the run with the final value", |r| r.last().is_some_and(|l| l.contains(&last)))
        .await;
    let burst_runs = r.len() - 2;
    assert!(burst_runs < 50, "100 writes ran the handler {burst_runs} times");

    tracing::info!("--- the watched agent restarts");
    c.kill(i).await;
    c.restart(i).await;
    eventually(DEADLINE, "the restarted agent answers", || {
        let kv = kv.clone();
        async move { kv.kv_get("watched").await.ok().flatten() }
    })
    .await;
    kv.kv_put("watched", b"after-restart".to_vec(), None, None).await.unwrap();
    let after = b64("after-restart");
    wait_runs(&mark, "the run after the restart", |r| r.last().is_some_and(|l| l.contains(&after))).await;
    runs(&mark);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keyprefix_and_services_watches_print_json_without_a_handler() {
    let agent = TestAgent::start().await;
    let kv = client(&agent);
    kv.kv_put("app/a", b"1".to_vec(), None, None).await.unwrap();
    let addr = agent.http_addr().to_string();
    let prefix = spawn_watch(&addr, &["-type=keyprefix", "-prefix=app/"], None);
    let services = spawn_watch(&addr, &["-type", "services"], None);
    let printed = |w: &WatchProcess, text: &'static str| {
        let out = w.stdout.clone();
        async move {
            eventually(DEADLINE, text, || std::future::ready(out.lock().contains(text).then_some(()))).await
        }
    };
    printed(&prefix, "\"Key\": \"app/a\"").await;
    assert!(prefix.stdout.lock().starts_with("[\n    {\n"), "4-space indented JSON");
    kv.kv_put("app/b", b"2".to_vec(), None, None).await.unwrap();
    printed(&prefix, "\"Key\": \"app/b\"").await;
    printed(&services, "\"consul\": []").await;
    agent.shutdown().await;
}
