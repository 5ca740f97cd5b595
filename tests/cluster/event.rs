//! User events across a cluster: gossip reaches every agent, each keeps what its filters admit.

use std::path::Path;
use std::time::Duration;

use http::Method;
use sekisho::testing::{TestCluster, eventually, poll_until};
use serde_json::{Value, json};

use crate::{DEADLINE, client};

/// IDs of the events agent `i` lists.
async fn listed(c: &TestCluster, i: usize) -> Vec<String> {
    let Ok(r) = client(c, i).request(Method::GET, "/v1/event/list", None).await else { return Vec::new() };
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v.as_array().into_iter().flatten().filter_map(|e| e["ID"].as_str().map(str::to_owned)).collect()
}

async fn fire(c: &TestCluster, i: usize, path: &str) -> String {
    let r = client(c, i).request(Method::PUT, path, Some(b"p".to_vec())).await.expect("fire");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    v["ID"].as_str().expect("ID").to_owned()
}

/// Waits until exactly the agents in `want` list `id`, then checks for two more seconds that
/// the others never do.
async fn delivered_exactly(c: &TestCluster, id: &str, want: &[usize]) {
    for &i in want {
        eventually(DEADLINE, &format!("agent {i} lists the event"), || async {
            listed(c, i).await.iter().any(|e| e == id).then_some(())
        })
        .await;
    }
    let others: Vec<usize> = (0..c.len()).filter(|i| !want.contains(i)).collect();
    let leaked = poll_until(Duration::from_secs(2), || async {
        for &i in &others {
            if listed(c, i).await.iter().any(|e| e == id) {
                return Some(i);
            }
        }
        None
    })
    .await;
    assert_eq!(leaked, None, "an agent outside the filter listed the event");
}

/// The event IDs agent `i`'s `deploy` watch handler was given, over all its runs.
fn handled(dir: &Path, i: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !e.file_name().to_string_lossy().starts_with(&format!("agent{i}.")) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        ids.extend(v.as_array().into_iter().flatten().filter_map(|e| e["ID"].as_str().map(str::to_owned)));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_exactly_the_agents_their_filters_name() {
    // Every agent runs a config watch on `deploy` events whose handler stores each run's
    // input in a marker file of its own.
    let marks = tempfile::tempdir().expect("tempdir");
    let dir = marks.path().to_path_buf();
    let c = TestCluster::start_full(2, 3, |i, cfg| {
        let d = dir.display();
        let handler =
            format!("f=$(mktemp {d}/.part.XXXXXX) && cat > \"$f\" && mv \"$f\" \"{d}/agent{i}.${{f##*.}}\"");
        cfg.watches = vec![json!({"type": "event", "name": "deploy", "args": ["sh", "-c", handler]})];
    })
    .await;
    let names: Vec<String> = (0..5).map(|i| c.node(i).config.node_name.clone()).collect();
    eventually(DEADLINE, "every agent sees five members", || async {
        for i in 0..5 {
            let members = client(&c, i).agent_members(false).await.ok()?;
            (members.len() == 5).then_some(())?;
        }
        Some(())
    })
    .await;

    tracing::info!("--- a node filter naming one server and one client");
    let re = format!("^({}|{})$", regex::escape(&names[1]), regex::escape(&names[4]));
    let id = fire(&c, 2, &format!("/v1/event/fire/deploy?node={}", urlencode(&re))).await;
    delivered_exactly(&c, &id, &[1, 4]).await;
    for i in [1, 4] {
        eventually(DEADLINE, &format!("agent {i}'s deploy watch handler gets the event"), || async {
            handled(&dir, i).contains(&id).then_some(())
        })
        .await;
    }
    for i in [0, 2, 3] {
        assert!(!handled(&dir, i).contains(&id), "agent {i}'s handler ran for an event not meant for it");
    }

    tracing::info!("--- no filter: every agent");
    let id = fire(&c, 3, "/v1/event/fire/all").await;
    delivered_exactly(&c, &id, &[0, 1, 2, 3, 4]).await;

    tracing::info!("--- a service filter: the agents running web with tag v2");
    for (i, tags) in [(0, vec!["v1"]), (3, vec!["v2"]), (4, vec!["v2", "canary"])] {
        let body = json!({"Name": "web", "Tags": tags, "Port": 80});
        let r = client(&c, i)
            .request(Method::PUT, "/v1/agent/service/register", Some(body.to_string().into_bytes()))
            .await
            .expect("register");
        assert_eq!(r.status, 200);
    }
    let id = fire(&c, 2, "/v1/event/fire/restart?service=%5Eweb%24&tag=v2").await;
    delivered_exactly(&c, &id, &[3, 4]).await;
    c.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
