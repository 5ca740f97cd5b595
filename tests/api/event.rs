//! `/v1/event/fire` and `/v1/event/list` on one agent.

use std::time::Duration;

use http::StatusCode;
use sekisho::testing::{TestAgent, eventually};
use serde_json::Value;

use crate::support::Api;

const DEADLINE: Duration = Duration::from_secs(10);

async fn agent() -> (TestAgent, Api) {
    let agent = TestAgent::start().await;
    let api = Api::new(&agent);
    (agent, api)
}

/// The agent's event list, once it holds `n` events.
async fn list_of(api: &Api, path: &str, n: usize) -> Vec<Value> {
    eventually(DEADLINE, "the events are delivered", || async {
        let v = api.get(path).await.ok_json();
        let events = v.as_array()?.clone();
        (events.len() == n).then_some(events)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn fire_answers_consuls_shape_and_list_shows_the_event() {
    let (agent, api) = agent().await;
    let fired = api.put("/v1/event/fire/deploy?node=.*&service=&tag=", "v1.4").await.ok_json();
    assert_eq!(fired["Name"], "deploy");
    assert_eq!(fired["Payload"], "djEuNA==");
    assert_eq!(fired["NodeFilter"], ".*");
    assert_eq!(fired["ServiceFilter"], "");
    assert_eq!(fired["TagFilter"], "");
    assert_eq!(fired["Version"], 1);
    assert_eq!(fired["LTime"], 0);
    assert_eq!(fired["ID"].as_str().expect("an ID").len(), 36);
    let empty = api.put("/v1/event/fire/ping", "").await.ok_json();
    assert_eq!(empty["Payload"], Value::Null);

    let events = list_of(&api, "/v1/event/list", 2).await;
    assert_eq!(events[0]["ID"], fired["ID"], "oldest first");
    assert_eq!(events[0]["Payload"], "djEuNA==");
    assert_eq!(events[1]["Name"], "ping");
    assert!(events[1]["LTime"].as_u64() > events[0]["LTime"].as_u64(), "the clock advances");
    let named = api.get("/v1/event/list?name=ping").await.ok_json();
    assert_eq!(named.as_array().map(Vec::len), Some(1));
    assert_eq!(named[0]["ID"], empty["ID"]);
    let none = api.get("/v1/event/list?name=nothing").await;
    assert_eq!(none.index(), 1, "an empty list has index 1");
    assert_eq!(none.ok_json(), serde_json::json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocking_list_wakes_when_an_event_arrives() {
    let (agent, api) = agent().await;
    let first = api.get("/v1/event/list?name=wake");
    let index = first.await.index();
    let waiter = {
        let api = api.clone();
        tokio::spawn(
            async move { api.get(&format!("/v1/event/list?name=wake&index={index}&wait=20s")).await },
        )
    };
    api.put("/v1/event/fire/other", "").await.expect(StatusCode::OK);
    let fired = api.put("/v1/event/fire/wake", "x").await.ok_json();
    let r = tokio::time::timeout(DEADLINE, waiter).await.expect("woken").expect("task");
    assert_ne!(r.index(), index);
    let v = r.ok_json();
    assert_eq!(v[0]["ID"], fired["ID"]);
    // Blocking on the current index with a short wait returns the same list after the wait.
    let r = api.get(&format!("/v1/event/list?name=wake&index={}&wait=100ms", index_of(&api).await)).await;
    assert_eq!(r.ok_json().as_array().map(Vec::len), Some(1));
    agent.shutdown().await;
}

async fn index_of(api: &Api) -> u64 {
    api.get("/v1/event/list?name=wake").await.index()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_event_is_refused_with_413_and_never_delivered() {
    let (agent, api) = agent().await;
    let r = api.put("/v1/event/fire/deploy", vec![b'x'; 600]).await.expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.text(), "User event exceeds 512 bytes (name 6 + payload 600 + filters 0)");
    let r = api
        .put("/v1/event/fire/deploy?node=web", vec![b'x'; 504])
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("filters 3"), "{}", r.text());
    api.put("/v1/event/fire/marker", "").await.expect(StatusCode::OK);
    let events = list_of(&api, "/v1/event/list", 1).await;
    assert_eq!(events[0]["Name"], "marker", "only the marker was delivered");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_names_bad_filters_and_other_datacenters_are_refused() {
    let (agent, api) = agent().await;
    // `_rexec` itself is let through for `sekisho exec`, which fires it over HTTP like Consul.
    let r = api.put("/v1/event/fire/_private", "").await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("reserved"), "{}", r.text());
    let r = api.put("/v1/event/fire/x?tag=v1", "").await.expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.text(), "Cannot provide tag filter without service filter");
    let r = api.put("/v1/event/fire/x?node=(", "").await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().starts_with("Invalid node filter"), "{}", r.text());
    let r = api.put("/v1/event/fire/", "").await.expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.text(), "Missing name");
    let r = api.put("/v1/event/fire/x?dc=elsewhere", "").await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), "No path to datacenter");
    api.get("/v1/event/fire/x").await.expect(StatusCode::METHOD_NOT_ALLOWED);
    // The internal API may use reserved names.
    let e = agent
        .handle()
        .events()
        .fire_internal(sekisho::event::FireRequest { name: "_internal".into(), ..Default::default() });
    assert_eq!(e.expect("internal fire").name, "_internal");
    let events = list_of(&api, "/v1/event/list", 1).await;
    assert_eq!(events[0]["Name"], "_internal");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_whose_filters_miss_this_agent_are_not_listed() {
    let (agent, api) = agent().await;
    api.put("/v1/event/fire/a?node=^no-such-node$", "").await.expect(StatusCode::OK);
    api.put("/v1/event/fire/b?service=web", "").await.expect(StatusCode::OK);
    let node = agent.config.node_name.clone();
    api.put(&format!("/v1/event/fire/c?node=^{node}$"), "").await.expect(StatusCode::OK);
    let events = list_of(&api, "/v1/event/list", 1).await;
    assert_eq!(events[0]["Name"], "c");
    agent.shutdown().await;
}
