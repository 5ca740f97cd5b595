//! The README's "secure agent in six commands" walkthrough, run as written in a fresh
//! directory (with free ports instead of 8500/8501, and the agent's other listeners moved
//! off their fixed ports).

use std::process::Stdio;
use std::time::Duration;

use sekisho::testing::eventually;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The commands of the walkthrough block.
fn walkthrough() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme.find("## A secure agent in six commands").expect("the walkthrough section");
    let block = &readme[start..];
    let open = block.find("```sh\n").expect("a sh block") + 6;
    let close = block[open..].find("```").expect("the block ends") + open;
    block[open..close].lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

/// Splits a command line the way the shell would for these lines (single quotes only).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secure_agent_walkthrough_works_as_written() {
    let lines = walkthrough();
    assert_eq!(lines.len(), 6, "six commands: {lines:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (https, http) = (free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_sekisho");
    let mut agent = None;
    for line in &lines {
        let line = line.replace("8501", &https.to_string()).replace("8500", &http.to_string());
        if let Some((cmd, file)) = line.split_once(" > ") {
            let w = words(cmd);
            assert_eq!(w[0], "echo", "{line}");
            std::fs::write(dir.path().join(file.trim()), format!("{}\n", w[1..].join(" "))).expect("write");
            continue;
        }
        let background = line.ends_with(" &");
        let mut w = words(line.trim_end_matches(" &"));
        assert_eq!(w.remove(0), "sekisho", "{line}");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(&w).current_dir(dir.path()).env_remove("CONSUL_HTTP_ADDR").env_remove("SEKISHO_HTTP_ADDR");
        if background {
            for p in [format!("-http-port={http}"), "-dns-port=-1".into()] {
                cmd.arg(p);
            }
            cmd.arg(format!("-server-port={}", free_port())).arg(format!("-serf-lan-port={}", free_port()));
            cmd.arg("-serf-wan-port=-1");
            cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
            agent = Some(cmd.spawn().expect("the agent starts"));
            continue;
        }
        if w[0] == "members" {
            let out = eventually(Duration::from_secs(30), "members answers over HTTPS", || {
                let mut c = tokio::process::Command::new(bin);
                c.args(&w).current_dir(dir.path());
                async move { c.output().await.ok().filter(|o| o.status.success()) }
            })
            .await;
            let text = String::from_utf8_lossy(&out.stdout);
            eprintln!("members over HTTPS:\n{text}");
            assert!(text.contains("alive") && text.contains("server"), "{text}");
            continue;
        }
        let out = cmd.output().await.expect("runs");
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(agent.is_some(), "the walkthrough starts an agent");

    // The HTTPS API refuses a client without a certificate (verify_incoming).
    let no_cert = tokio::process::Command::new(bin)
        .args([
            "members",
            &format!("-http-addr=https://127.0.0.1:{https}"),
            "-ca-file",
            "consul-agent-ca.pem",
        ])
        .current_dir(dir.path())
        .output()
        .await
        .expect("runs");
    assert_eq!(no_cert.status.code(), Some(1), "{}", String::from_utf8_lossy(&no_cert.stdout));
}
