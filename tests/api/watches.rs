//! Watches from the agent config (`watches`): script and HTTP handlers, event watches, and
//! reload (unchanged watches keep running, changed and new ones start, bad ones change nothing).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use parking_lot::Mutex;
use sekisho::agent::ReloadedConfig;
use sekisho::testing::{eventually, poll_until};
use serde_json::{Value, json};

use crate::support::{b64, start_with};

const DEADLINE: Duration = Duration::from_secs(20);

/// A script handler that stores each run's stdin in a new `<dir>/<tag>.*` file, written
/// under a temporary name and renamed so that a reader never sees it half written.
fn script(dir: &Path, tag: &str) -> Value {
    let d = dir.display();
    json!([
        "sh",
        "-c",
        format!("f=$(mktemp {d}/.part.XXXXXX) && cat > \"$f\" && mv \"$f\" \"{d}/{tag}.${{f##*.}}\"")
    ])
}

/// The stdin of every run of the handler tagged `tag`, oldest first.
fn script_runs(dir: &Path, tag: &str) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{tag}.")))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default()).collect()
}

/// An HTTP endpoint recording the bodies POSTed to it.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let index = headers.get("X-Consul-Index").and_then(|v| v.to_str().ok()).unwrap_or("");
                sink.lock().push((index.to_owned(), body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_watches_run_script_and_http_handlers_and_follow_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, posted) = receiver().await;
    let key_watch = json!({"type": "key", "key": "app/flag", "args": script(dir.path(), "key")});
    let prefix_watch = |prefix: &str| {
        json!({"type": "keyprefix", "prefix": prefix, "handler_type": "http",
               "http_handler_config": {"path": url, "method": "POST", "timeout": "5s"}})
    };
    let first = vec![key_watch.clone(), prefix_watch("app/")];
    let (agent, api) = start_with(|c, _| c.watches = first).await;
    assert_eq!(agent.handle().watch_count(), 2);

    eventually(DEADLINE, "the key handler runs once at start (key missing: null)", || async {
        (script_runs(dir.path(), "key").len() == 1).then_some(())
    })
    .await;
    eventually(DEADLINE, "the HTTP handler is POSTed the prefix at start", || async {
        (!posted.lock().is_empty()).then_some(())
    })
    .await;

    api.kv_set("app/flag", "on").await;
    let runs = eventually(DEADLINE, "the key handler runs for the write", || async {
        let r = script_runs(dir.path(), "key");
        (r.len() >= 2).then_some(r)
    })
    .await;
    let last: Value = serde_json::from_str(runs.last().expect("a run")).expect("handler stdin is JSON");
    assert_eq!(last["Key"], "app/flag");
    assert_eq!(last["Value"], b64("on"));
    eventually(DEADLINE, "the HTTP handler sees app/flag with an index", || async {
        let p = posted.lock();
        let (index, body) = p.last()?;
        (body.contains("app/flag") && index.parse::<u64>().is_ok_and(|i| i > 0)).then_some(())
    })
    .await;
    let key_runs = script_runs(dir.path(), "key").len();

    // Reload: the key watch is unchanged, the prefix watch changes, an event watch is added.
    let conf: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(vec![
        key_watch.clone(),
        prefix_watch("other/"),
        json!({"type": "event", "name": "deploy", "args": script(dir.path(), "event")}),
    ]));
    let source = conf.clone();
    agent.handle().set_config_source(Arc::new(move || {
        Ok(ReloadedConfig { watches: source.lock().clone(), ..Default::default() })
    }));
    let before = posted.lock().len();
    api.put("/v1/agent/reload", "").await.expect(StatusCode::OK);
    assert_eq!(agent.handle().watch_count(), 3);
    eventually(DEADLINE, "the changed HTTP watch starts again on its new prefix", || async {
        let p = posted.lock();
        (p.len() > before && p[before..].iter().any(|(_, b)| b.trim() == "null" || b.trim() == "[]"))
            .then_some(())
    })
    .await;
    let first_event_run = eventually(DEADLINE, "the new event watch runs at start", || async {
        script_runs(dir.path(), "event").first().cloned()
    })
    .await;
    assert_eq!(serde_json::from_str::<Value>(&first_event_run).expect("JSON"), json!([]));

    let r = api.put("/v1/event/fire/deploy", "v42").await.ok_json();
    let id = r["ID"].as_str().expect("event ID").to_owned();
    let run = eventually(DEADLINE, "the event handler gets the fired event", || async {
        script_runs(dir.path(), "event").into_iter().find(|r| r.contains(&id))
    })
    .await;
    let events: Value = serde_json::from_str(&run).expect("JSON");
    let ev = events.as_array().and_then(|a| a.iter().find(|e| e["ID"] == id.as_str())).expect("the event");
    assert_eq!((ev["Name"].as_str(), ev["Payload"].as_str()), (Some("deploy"), Some(b64("v42").as_str())));
    // An event of another name does not run it.
    let runs_now = script_runs(dir.path(), "event").len();
    api.put("/v1/event/fire/other", "").await.expect(StatusCode::OK);

    // The unchanged key watch did not fire again on reload.
    let extra = poll_until(Duration::from_millis(700), || async {
        (script_runs(dir.path(), "key").len() != key_runs
            || script_runs(dir.path(), "event").len() != runs_now)
            .then_some(())
    })
    .await;
    assert_eq!(extra, None, "a reload re-ran an unchanged watch, or another event ran the deploy watch");

    // A bad watch in the files: the reload fails and the running watches stay as they are.
    conf.lock().push(json!({"type": "key", "args": ["true"]}));
    let r = api.put("/v1/agent/reload", "").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.text().contains("watches[3]") && r.text().contains("Must specify a single key"),
        "{}",
        r.text()
    );
    assert_eq!(agent.handle().watch_count(), 3);

    // Watches removed from the files stop.
    conf.lock().clear();
    api.put("/v1/agent/reload", "").await.expect(StatusCode::OK);
    assert_eq!(agent.handle().watch_count(), 0);
    let key_runs = script_runs(dir.path(), "key").len();
    api.kv_set("app/flag", "off").await;
    let ran = poll_until(Duration::from_millis(700), || async {
        (script_runs(dir.path(), "key").len() != key_runs).then_some(())
    })
    .await;
    assert_eq!(ran, None, "a removed watch still ran its handler");
    agent.shutdown().await;
}
