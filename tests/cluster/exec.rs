//! `sekisho exec` across a cluster: the matching agents run the command and report back,
//! agents with remote exec disabled refuse, and the `_rexec` prefix is empty afterwards.

use sekisho::testing::TestCluster;

use super::client;

async fn exec(c: &TestCluster, via: usize, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .arg("exec")
        .arg(format!("-http-addr={}", c.agent(via).http_addr()))
        .args(args)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .output()
        .await
        .expect("sekisho exec runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_runs_on_the_matching_agents_and_disabled_agents_refuse() {
    // db-1 and app-1 keep the default (disabled); web-1 (a server) and web-2 (a client) allow it.
    let names = ["db-1", "web-1", "app-1", "web-2"];
    let c = TestCluster::start_full(3, 1, |i, cfg| {
        cfg.node_name = names[i].to_owned();
        cfg.disable_remote_exec = !names[i].starts_with("web-");
    })
    .await;
    c.wait_leader(super::DEADLINE).await;

    let (code, out, err) =
        exec(&c, 3, &["-node", "web-", "-wait", "1s", "echo", "ran-on-$(echo", "ok)"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    for n in ["web-1", "web-2"] {
        assert!(out.contains(&format!("    {n}: ran-on-ok")), "{out}");
        assert!(out.contains(&format!("==> {n}: finished with exit code 0")), "{out}");
    }
    assert!(out.trim_end().ends_with("2 / 2 node(s) completed / acknowledged"), "{out}");
    assert!(!out.contains("db-1") && !out.contains("app-1"), "{out}");

    let (code, out, _) = exec(&c, 0, &["-node", "^db-1$", "-wait", "1s", "true"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("==> db-1: refused: remote exec is disabled"), "{out}");
    assert!(out.contains("0 / 0 node(s) completed / acknowledged"), "{out}");

    let (code, out, _) = exec(&c, 1, &["-node", "web-2", "-wait", "1s", "exit 3"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("==> web-2: finished with exit code 3"), "{out}");

    let keys = client(&c, 0).kv_keys("_rexec/", None).await.expect("keys");
    assert!(keys.is_empty(), "the _rexec prefix is cleaned up: {keys:?}");
    c.shutdown().await;
}
