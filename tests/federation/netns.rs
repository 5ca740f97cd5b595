//! Gateway federation across real network namespaces (root only): each datacenter is its own
//! namespace with one `sekisho agent` server process; each gateway (`sekisho gateway`) has
//! a leg in its datacenter's namespace and one on the WAN segment it shares with the other
//! gateway. Nothing else links the datacenters.
//!
//! ```text
//!   ns dc1: server 10.81.1.1 ── veth ── ns gw1: 10.81.1.254 | 192.168.81.1 ─┐
//!                                                                           veth (the WAN)
//!   ns dc2: server 10.81.2.1 ── veth ── ns gw2: 10.81.2.254 | 192.168.81.2 ─┘
//! ```
//!
//! Skipped with a message when not root or when network namespaces cannot be created.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sekisho::testing::pki::TestPki;
use sekisho_pki::Role;
use serde_json::json;
use tokio::process::{Child, Command};

/// The namespaces and processes of one run; removed on drop.
struct Net {
    prefix: String,
    children: Vec<Child>,
}

impl Net {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.start_kill();
        }
        for n in ["d1", "d2", "g1", "g2"] {
            let _ = std::process::Command::new("ip").args(["netns", "del", &self.ns(n)]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Builds the namespaces, or says why it cannot.
fn build(prefix: &str) -> Result<Net, String> {
    // SAFETY-free check: root is needed for namespaces.
    let uid = std::process::Command::new("id").arg("-u").output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not running as root".into());
    }
    let net = Net { prefix: prefix.to_owned(), children: Vec::new() };
    for n in ["d1", "d2", "g1", "g2"] {
        ip(&["netns", "add", &net.ns(n)])?;
        ip(&["-n", &net.ns(n), "link", "set", "lo", "up"])?;
    }
    let link = |a: &str, a_addr: &str, b: &str, b_addr: &str, tag: &str| -> Result<(), String> {
        let (ia, ib) = (format!("{prefix}{tag}a"), format!("{prefix}{tag}b"));
        ip(&["link", "add", &ia, "type", "veth", "peer", "name", &ib])?;
        ip(&["link", "set", &ia, "netns", &net.ns(a)])?;
        ip(&["link", "set", &ib, "netns", &net.ns(b)])?;
        ip(&["-n", &net.ns(a), "addr", "add", a_addr, "dev", &ia])?;
        ip(&["-n", &net.ns(b), "addr", "add", b_addr, "dev", &ib])?;
        ip(&["-n", &net.ns(a), "link", "set", &ia, "up"])?;
        ip(&["-n", &net.ns(b), "link", "set", &ib, "up"])
    };
    link("d1", "10.81.1.1/24", "g1", "10.81.1.254/24", "x")?;
    link("d2", "10.81.2.1/24", "g2", "10.81.2.254/24", "y")?;
    link("g1", "192.168.81.1/24", "g2", "192.168.81.2/24", "w")?;
    Ok(net)
}

fn spawn(net: &mut Net, ns: &str, args: &[String], log: &Path) {
    let file = std::fs::File::create(log).expect("log file");
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns(ns), env!("CARGO_BIN_EXE_sekisho")])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn in a namespace");
    net.children.push(child);
}

/// Runs `sekisho <args>` inside namespace `ns`; exit code and output.
async fn run_in(net: &Net, ns: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(ns), env!("CARGO_BIN_EXE_sekisho")])
        .args(args)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .output()
        .await
        .expect("sekisho runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn server_config(dir: &Path, pki: &TestPki, dc: &str, n: u8) -> std::path::PathBuf {
    let files = pki.issue(&format!("{dc}-s"), Role::Server, dc);
    let mut cfg = json!({
        "datacenter": dc, "primary_datacenter": "dc1", "node_name": format!("s-{dc}"),
        "server": true, "bootstrap": true,
        "bind_addr": format!("10.81.{n}.1"), "client_addr": format!("10.81.{n}.1"),
        "data_dir": dir.join(format!("data-{dc}")),
        "ports": {"serf_wan": -1, "dns": -1},
        "federation_gateways": [format!("10.81.{n}.254:8443")],
        "tls": {"defaults": {
            "ca_file": pki.ca_file(), "cert_file": files.cert, "key_file": files.key,
            "verify_incoming": true, "verify_outgoing": true, "verify_server_hostname": true}},
    });
    if dc == "dc2" {
        cfg["services"] = json!([{"name": "web", "port": 8080, "address": "10.81.2.80"}]);
    }
    let path = dir.join(format!("{dc}.json"));
    std::fs::write(&path, cfg.to_string()).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacenters_in_separate_network_namespaces_meet_only_through_gateways() {
    let prefix = format!("sk{}", std::process::id() % 10_000);
    let mut net = match build(&prefix) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("skipped: network namespace test needs root and `ip netns` ({why})");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new(&dir.path().join("ca"));
    for (dc, n) in [("dc1", 1u8), ("dc2", 2u8)] {
        let cfg = server_config(dir.path(), &pki, dc, n);
        let args = vec!["agent".to_owned(), format!("-config-file={}", cfg.display())];
        spawn(&mut net, &format!("d{n}"), &args, &dir.path().join(format!("{dc}.log")));
        let other = 3 - n;
        let gw = vec![
            "gateway".to_owned(),
            format!("-datacenter=dc{n}"),
            "-listen=0.0.0.0:8443".to_owned(),
            format!("-server=s-dc{n}=10.81.{n}.1:8300"),
            format!("-remote=dc{other}=192.168.81.{other}:8443"),
        ];
        spawn(&mut net, &format!("g{n}"), &gw, &dir.path().join(format!("gw{n}.log")));
    }
    let logs = || {
        ["dc1.log", "dc2.log", "gw1.log", "gw2.log"]
            .iter()
            .map(|f| format!("--- {f}\n{}", std::fs::read_to_string(dir.path().join(f)).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // dc1 cannot reach dc2's server directly: no route between the namespaces.
    let (code, out) = run_in(&net, "d1", &["kv", "get", "-http-addr=10.81.2.1:8500", "x"]).await;
    assert_ne!(code, 0, "dc2 is unreachable from dc1 except through the gateways: {out}");

    let put = ["kv", "put", "-http-addr=10.81.1.1:8500", "-datacenter=dc2", "netns/key", "crossed"];
    let ok = sekisho::testing::poll_until(Duration::from_secs(60), || async {
        let (code, _) = run_in(&net, "d1", &put).await;
        (code == 0).then_some(())
    })
    .await;
    if ok.is_none() {
        let (_, out) = run_in(&net, "d1", &put).await;
        panic!("a ?dc=dc2 write from dc1 never succeeded: {out}\n{}", logs());
    }
    let (code, out) = run_in(&net, "d2", &["kv", "get", "-http-addr=10.81.2.1:8500", "netns/key"]).await;
    assert_eq!((code, out.trim()), (0, "crossed"), "the write landed in dc2\n{}", logs());
    let (code, out) = run_in(&net, "d1", &["kv", "get", "-http-addr=10.81.1.1:8500", "netns/key"]).await;
    assert_ne!(code, 0, "and not in dc1: {out}");

    let nodes = ["catalog", "nodes", "-http-addr=10.81.1.1:8500", "-datacenter=dc2", "-service=web"];
    let found = sekisho::testing::poll_until(Duration::from_secs(30), || async {
        let (code, out) = run_in(&net, "d1", &nodes).await;
        (code == 0 && out.contains("s-dc2")).then_some(out)
    })
    .await;
    assert!(found.is_some(), "dc2's web service seen from dc1\n{}", logs());
    let (code, out) = run_in(&net, "d1", &["catalog", "datacenters", "-http-addr=10.81.1.1:8500"]).await;
    assert_eq!((code, out.split_whitespace().collect::<Vec<_>>()), (0, vec!["dc1", "dc2"]), "{out}");
}
