//! `sekisho event` against a TestAgent, and its argument errors.

use std::time::Duration;

use http::Method;
use sekisho::testing::{TestAgent, eventually};

use crate::support::{client, sekisho, sekisho_at};

#[tokio::test(flavor = "multi_thread")]
async fn event_prints_the_id_and_the_agent_lists_the_event() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["event", "-name", "deploy", "-node", ".*", "v2"]).await.ok();
    let id = run.stdout.strip_prefix("Event ID: ").and_then(|s| s.strip_suffix('\n')).expect("Event ID line");
    assert_eq!(id.len(), 36, "{run:#?}");
    let c = client(&agent);
    let listed = eventually(Duration::from_secs(10), "the event is listed", || async {
        let r = c.request(Method::GET, "/v1/event/list?name=deploy", None).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        v.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(listed["ID"], id);
    assert_eq!(listed["Payload"], "djI=");
    assert_eq!(listed["NodeFilter"], ".*");

    let run = sekisho_at(&agent, &["event", "-name", "big", &"x".repeat(600)]).await.expect_code(1);
    assert!(run.stderr.contains("User event exceeds 512 bytes"), "{run:#?}");
    let run = sekisho_at(&agent, &["event", "-name", "x", "-node", "("]).await.expect_code(1);
    assert!(run.stderr.contains("Failed to compile node filter regexp"), "{run:#?}");
    let run = sekisho_at(&agent, &["event", "-name", "_private"]).await.expect_code(1);
    assert!(run.stderr.contains("reserved"), "{run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_usage_errors_exit_two() {
    sekisho(&["event"]).await.expect_code(2);
    sekisho(&["event", "-name", "x", "-tag", "v1"]).await.expect_code(2);
    sekisho(&["event", "-name", "x", "a", "b"]).await.expect_code(2);
    let help = sekisho(&["event", "--help"]).await.ok();
    assert!(help.stdout.contains("sekisho event -name deploy"), "{help:#?}");
}
