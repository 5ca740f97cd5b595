//! `maint`, `services register|deregister` and `reload` against a test agent.

use sekisho::testing::TestAgent;

use crate::support::{sekisho, sekisho_at};

fn addr(agent: &TestAgent) -> String {
    format!("-http-addr={}", agent.http_addr())
}

#[tokio::test]
async fn maint_lists_nothing_then_the_node_and_service_in_maintenance() {
    let agent = TestAgent::start().await;
    let node = agent.config.node_name.clone();
    let run = sekisho_at(&agent, &["maint"]).await.ok();
    assert_eq!(run.stdout, "", "nothing is in maintenance");

    let a = addr(&agent);
    sekisho(&["services", "register", &a, "-name=redis", "-port=6379", "-tag=primary"]).await.ok();
    let run = sekisho_at(&agent, &["maint", "-enable", "-reason", "kernel upgrade"]).await.ok();
    assert_eq!(run.stdout, "Node maintenance is now enabled\n");
    let run = sekisho_at(&agent, &["maint", "-enable", "-service=redis"]).await.ok();
    assert_eq!(run.stdout, "Service maintenance is now enabled for \"redis\"\n");
    let run = sekisho_at(&agent, &["maint"]).await.ok();
    assert!(
        run.stdout.contains(&format!("Node:\n  Name:   {node}\n  Reason: kernel upgrade\n")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Service:\n  ID:     redis\n  Reason: Maintenance mode is enabled"),
        "{}",
        run.stdout
    );

    sekisho_at(&agent, &["maint", "-disable"]).await.ok();
    sekisho_at(&agent, &["maint", "-disable", "-service=redis"]).await.ok();
    assert_eq!(sekisho_at(&agent, &["maint"]).await.ok().stdout, "");

    let run = sekisho_at(&agent, &["maint", "-enable", "-service=nope"]).await.expect_code(1);
    assert!(run.stderr.contains("nope"), "{run:?}");
    sekisho_at(&agent, &["maint", "-enable", "-disable"]).await.expect_code(2);
    agent.shutdown().await;
}

#[tokio::test]
async fn services_register_from_flags_and_files_then_deregister() {
    let agent = TestAgent::start().await;
    let a = addr(&agent);
    let run = sekisho(&["services", "register", &a, "-name=web", "-id=web-1", "-port=80", "-meta=team=a"])
        .await
        .ok();
    assert_eq!(run.stdout, "Registered service: web\n");
    let local = agent.handle().local().clone();
    let web = local.services().into_iter().find(|s| s.id == "web-1").expect("web-1 registered");
    assert_eq!(web.port, 80);
    assert_eq!(web.meta.as_ref().and_then(|m| m.get("team")).map(String::as_str), Some("a"));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("api.hcl");
    std::fs::write(
        &file,
        "service {\n  name = \"api\"\n  port = 9000\n  check {\n    ttl = \"30s\"\n  }\n}\n",
    )
    .expect("write");
    let f = file.to_string_lossy().into_owned();
    let run = sekisho(&["services", "register", &a, &f]).await.ok();
    assert_eq!(run.stdout, "Registered service: api\n");
    assert!(local.checks().iter().any(|c| c.check_id == "service:api"));

    let run = sekisho(&["services", "deregister", &a, &f]).await.ok();
    assert_eq!(run.stdout, "Deregistered service: api\n");
    sekisho(&["services", "deregister", &a, "-id=web-1"]).await.ok();
    assert!(local.services().is_empty());

    let run = sekisho(&["services", "deregister", &a, "-id=web-1"]).await.expect_code(1);
    assert!(run.stderr.contains("Unknown service ID"), "{run:?}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"service": {"port": 80}}"#).expect("write");
    let run = sekisho(&["services", "register", &a, &bad.to_string_lossy()]).await.expect_code(1);
    assert!(run.stderr.contains("Missing service name"), "{run:?}");
    sekisho(&["services", "register", &a]).await.expect_code(2);
    agent.shutdown().await;
}

#[tokio::test]
async fn reload_reports_an_agent_without_config_files() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["reload"]).await.expect_code(1);
    assert!(run.stderr.contains("Error reloading"), "{run:?}");
    agent.shutdown().await;
}
