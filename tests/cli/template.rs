//! `sekisho template`: the nginx deny-list flow (KV writes → one render and one reload per
//! burst), a catalog-driven hosts file, `-dry`, a syntax error, and an output that survives
//! the agent restarting.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sekisho::testing::{TestAgent, TestCluster, eventually};
use serde_json::json;

use crate::support::{client, sekisho};

const WAIT: Duration = Duration::from_secs(20);

/// `sekisho template` running in the background (killed when dropped).
fn spawn(addr: &str, args: &[&str]) -> tokio::process::Child {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"));
    c.arg("template").arg(format!("-http-addr={addr}")).args(args);
    c.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    for v in ["CONSUL_HTTP_ADDR", "SEKISHO_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "SEKISHO_HTTP_TOKEN"] {
        c.env_remove(v);
    }
    c.spawn().expect("sekisho template starts")
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn lines(p: &Path) -> usize {
    read(p).map_or(0, |t| t.lines().count())
}

async fn put(agent: &TestAgent, key: &str, value: &str) {
    assert!(
        client(agent).kv_put(key, value.as_bytes().to_vec(), None, None).await.expect("kv put"),
        "put {key}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_deny_list_writes_gives_one_render_and_one_reload() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("deny.ctmpl");
    std::fs::write(&tmpl, "{{ range tree \"nginx/deny/\" }}deny {{ .Value }};\n{{ end }}").expect("template");
    let out = dir.path().join("deny.conf");
    let reloads = dir.path().join("reloads");
    put(&agent, "nginx/deny/a", "10.0.0.1").await;
    let spec = format!("{}:{}:echo reload >> {}", tmpl.display(), out.display(), reloads.display());
    let _child = spawn(&agent.http_addr().to_string(), &["-wait", "1s:3s", "-template", &spec]);

    eventually(WAIT, "the first render and reload", || async {
        (read(&out).as_deref() == Some("deny 10.0.0.1;\n") && lines(&reloads) == 1).then_some(())
    })
    .await;
    // A burst: five writes within well under the quiet period.
    for (k, ip) in
        [("b", "10.0.0.2"), ("c", "10.0.0.3"), ("d", "10.0.0.4"), ("e", "10.0.0.5"), ("f", "10.0.0.6")]
    {
        put(&agent, &format!("nginx/deny/{k}"), ip).await;
    }
    let want: String = (1..=6).map(|i| format!("deny 10.0.0.{i};\n")).collect();
    eventually(WAIT, "the burst rendered", || async {
        (read(&out).as_deref() == Some(want.as_str()) && lines(&reloads) >= 2).then_some(())
    })
    .await;
    assert_eq!(lines(&reloads), 2, "one reload for the whole burst");
    // A value that does not change the output changes nothing.
    put(&agent, "other/key", "x").await;
    put(&agent, "nginx/deny/f", "10.0.0.7").await;
    let want = want.replace("10.0.0.6", "10.0.0.7");
    eventually(WAIT, "the next change rendered", || async {
        (read(&out).as_deref() == Some(want.as_str()) && lines(&reloads) == 3).then_some(())
    })
    .await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_file_from_the_catalog_and_a_dry_run() {
    let agent = TestAgent::start().await;
    let c = client(&agent);
    for (node, ip) in [("web-1", "10.1.0.1"), ("web-2", "10.1.0.2")] {
        let body = json!({"Node": node, "Address": ip, "Service": {"Service": "web", "Port": 80}});
        let r = c
            .request(http::Method::PUT, "/v1/catalog/register", Some(body.to_string().into_bytes()))
            .await
            .expect("register");
        assert!(r.is_success(), "{}", r.text());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("hosts.ctmpl");
    std::fs::write(
        &tmpl,
        "127.0.0.1 localhost\n{{- range service \"web\" }}\n{{ .Address }} {{ .Node }}.web{{ end }}\n",
    )
    .expect("template");
    let out = dir.path().join("hosts");
    let addr = format!("-http-addr={}", agent.http_addr());
    let spec = format!("{}:{}", tmpl.display(), out.display());

    let dry = sekisho(&["template", &addr, "-once", "-dry", "-template", &spec]).await.ok();
    assert_eq!(
        dry.stdout,
        format!("> {}\n127.0.0.1 localhost\n10.1.0.1 web-1.web\n10.1.0.2 web-2.web\n", out.display())
    );
    assert!(!out.exists(), "-dry writes nothing");

    std::fs::write(&out, "old\n").expect("old hosts");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    sekisho(&["template", &addr, "-once", "-template", &spec]).await.ok();
    assert_eq!(read(&out).as_deref(), Some("127.0.0.1 localhost\n10.1.0.1 web-1.web\n10.1.0.2 web-2.web\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the mode is kept");
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_error_names_the_file_line_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("bad.ctmpl");
    std::fs::write(&tmpl, "line one\n{{ range tree \"x/\" }}\n  {{ .Key \n").expect("template");
    let out = dir.path().join("out");
    let spec = format!("{}:{}", tmpl.display(), out.display());
    // No agent is needed to find a syntax error: the address is never dialled.
    let run =
        sekisho(&["template", "-http-addr=127.0.0.1:1", "-once", "-template", &spec]).await.expect_code(1);
    assert!(run.stderr.contains(&format!("{}:3:", tmpl.display())), "{run:#?}");
    assert!(!out.exists());
    let run = sekisho(&[
        "template",
        "-http-addr=127.0.0.1:1",
        "-template",
        &format!("{}:{}", tmpl.display(), out.display()),
        "-wait",
        "3s:1s",
    ])
    .await;
    assert_eq!(run.code, 2, "{run:#?}");
    let unknown = dir.path().join("unknown.ctmpl");
    std::fs::write(&unknown, "{{ nosuchfunc \"a\" }}").expect("template");
    let run = sekisho(&[
        "template",
        "-http-addr=127.0.0.1:1",
        "-once",
        "-template",
        &unknown.display().to_string(),
    ])
    .await
    .expect_code(1);
    assert!(run.stderr.contains("nosuchfunc"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_output_survives_the_agent_restarting_and_follows_it_after() {
    let mut c = TestCluster::start(1).await;
    c.wait_leader(WAIT).await;
    let addr = c.agent(0).http_addr().to_string();
    let kv = |c: &TestCluster| {
        sekisho::client::Client::new(sekisho::client::ClientConfig::new(c.agent(0).http_addr().to_string()))
    };
    assert!(kv(&c).kv_put("app/version", b"v1".to_vec(), None, None).await.expect("put"));
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("v.ctmpl");
    std::fs::write(&tmpl, "version={{ key \"app/version\" }}\n").expect("template");
    let out = dir.path().join("v.txt");
    let spec = format!("{}:{}", tmpl.display(), out.display());
    let _child = spawn(&addr, &["-template", &spec]);
    eventually(WAIT, "the first render", || async {
        (read(&out).as_deref() == Some("version=v1\n")).then_some(())
    })
    .await;

    c.kill(0).await;
    // While the agent is down the output stays as it was.
    assert_eq!(read(&out).as_deref(), Some("version=v1\n"));
    c.restart(0).await;
    c.wait_leader(WAIT).await;
    eventually(WAIT, "the restarted agent takes writes", || async {
        kv(&c).kv_put("app/version", b"v2".to_vec(), None, None).await.ok().filter(|ok| *ok)
    })
    .await;
    eventually(WAIT, "the render after the restart", || async {
        (read(&out).as_deref() == Some("version=v2\n")).then_some(())
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_template_stanza_renders_and_bad_stanzas_stop_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("motd.ctmpl");
    std::fs::write(&tmpl, "welcome to {{ keyOrDefault \"motd/site\" \"nowhere\" }}\n").expect("template");
    let out = dir.path().join("motd");
    let stanza = json!({"source": tmpl.display().to_string(), "destination": out.display().to_string(), "wait": {"min": "10ms", "max": "50ms"}});
    let agent = TestAgent::start_with(|cfg, _| cfg.templates = vec![stanza.clone()]).await;
    eventually(WAIT, "the default rendered", || async {
        (read(&out).as_deref() == Some("welcome to nowhere\n")).then_some(())
    })
    .await;
    put(&agent, "motd/site", "dc1").await;
    eventually(WAIT, "the key rendered", || async {
        (read(&out).as_deref() == Some("welcome to dc1\n")).then_some(())
    })
    .await;
    agent.shutdown().await;

    for (bad, want) in [
        (json!({"source": tmpl.display().to_string()}), "template[0].destination is required".to_owned()),
        (
            json!({"source": "x", "destination": "y", "wiat": "1s"}),
            "template[0].wiat: unknown key".to_owned(),
        ),
        (
            json!({"source": tmpl.display().to_string(), "destination": "y", "wait": "3s:1s"}),
            "template[0].wait".to_owned(),
        ),
    ] {
        let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "tmpl-node");
        cfg.templates = vec![bad];
        let Err(e) = sekisho::agent::Agent::start(cfg).await else {
            panic!("a bad template stanza was accepted")
        };
        assert!(e.to_string().contains(&want), "{e} / {want}");
    }
    let broken = dir.path().join("broken.ctmpl");
    std::fs::write(&broken, "ok\n{{ if }}\n").expect("template");
    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "tmpl-node");
    cfg.templates = vec![json!({"source": broken.display().to_string(), "destination": "y"})];
    let Err(e) = sekisho::agent::Agent::start(cfg).await else { panic!("a broken template was accepted") };
    assert!(e.to_string().contains(&format!("{}:2:", broken.display())), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_starts_the_child_after_the_render_restarts_it_on_change_and_passes_its_exit_code() {
    let agent = TestAgent::start().await;
    put(&agent, "app/v", "1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("v.ctmpl");
    std::fs::write(&tmpl, "v={{ key \"app/v\" }}\n").expect("template");
    let out = dir.path().join("v.conf");
    let log = dir.path().join("starts");
    let spec = format!("{}:{}", tmpl.display(), out.display());
    let exec = format!("cat {} >> {}; exec sleep 60", out.display(), log.display());
    let _child = spawn(&agent.http_addr().to_string(), &["-template", &spec, "-exec", &exec]);
    eventually(WAIT, "the child started on the rendered file", || async {
        (read(&log).as_deref() == Some("v=1\n")).then_some(())
    })
    .await;
    put(&agent, "app/v", "2").await;
    eventually(WAIT, "the child restarted after the change", || async {
        (read(&log).as_deref() == Some("v=1\nv=2\n")).then_some(())
    })
    .await;

    let addr = format!("-http-addr={}", agent.http_addr());
    let run = sekisho(&["template", &addr, "-template", &spec, "-exec", "exit 7"]).await;
    assert_eq!(run.code, 7, "the child's exit code: {run:#?}");
    let run = sekisho(&["template", &addr, "-template", &spec, "-exec", "true", "-once"]).await;
    assert_eq!(run.code, 2, "-exec and -once conflict: {run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_waits_for_a_missing_key_and_renders_when_it_appears() {
    let agent = TestAgent::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tmpl = dir.path().join("w.ctmpl");
    std::fs::write(&tmpl, "ready={{ key \"late/key\" }}\n").expect("template");
    let out = dir.path().join("w.txt");
    let spec = format!("{}:{}", tmpl.display(), out.display());
    let mut child = spawn(&agent.http_addr().to_string(), &["-once", "-template", &spec]);
    // Not rendered while the key is missing, and still running.
    assert!(child.try_wait().expect("try_wait").is_none());
    assert!(!out.exists());
    put(&agent, "late/key", "yes").await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("-once exits after the key appears")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert_eq!(read(&out).as_deref(), Some("ready=yes\n"));
    agent.shutdown().await;
}
