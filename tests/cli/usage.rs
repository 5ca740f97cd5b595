//! Argument handling that needs no agent: help, version, usage errors, unreachable agents.

use crate::support::sekisho;

#[tokio::test(flavor = "multi_thread")]
async fn help_exits_0_in_every_spelling() {
    for args in [&["--help"][..], &["-help"], &["-h"], &["kv", "get", "--help"], &["kv", "put", "-help"]] {
        let run = sekisho(args).await.ok();
        assert!(run.stdout.contains("Usage: sekisho"), "{args:?}: {run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn version_exits_0_and_names_both_versions() {
    let run = sekisho(&["version"]).await.ok();
    assert!(run.stdout.starts_with(&format!("Sekisho v{}\n", sekisho::VERSION)), "{run:#?}");
    assert!(run.stdout.contains(&format!("Consul API compatibility: v{}", sekisho::CONSUL_COMPAT_VERSION)));
    sekisho(&["-version"]).await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_flag_exits_2() {
    let run = sekisho(&["kv", "get", "-no-such-flag", "k"]).await.expect_code(2);
    assert!(run.stderr.contains("--no-such-flag"), "{run:#?}");
    sekisho(&["members", "--no-such-flag"]).await.expect_code(2);
    sekisho(&["no-such-command"]).await.expect_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_agent_exits_1_naming_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("-http-addr=127.0.0.1:{port}");
    let run = sekisho(&["kv", "get", &addr, "k"]).await.expect_code(1);
    let expected = format!(
        "Error: Get \"http://127.0.0.1:{port}/v1/kv/k\": dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_eq!(run.stderr.trim_end(), expected);
}
