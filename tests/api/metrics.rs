//! `/v1/agent/metrics` in both formats and `/v1/agent/monitor`.
//!
//! The metrics registry and the Prometheus retention are process-wide, so assertions are
//! "at least" and the retention is (re)set right before each Prometheus request.

use std::time::Duration;

use http::{Method, StatusCode};
use sekisho::telemetry;
use sekisho::testing::eventually;
use serde_json::Value;

use crate::support::{Api, start, start_with};

/// The JSON entry named `name` in `section` whose labels include `labels`.
fn entry<'a>(v: &'a Value, section: &str, name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    v[section]
        .as_array()?
        .iter()
        .find(|e| e["Name"] == name && labels.iter().all(|(k, val)| e["Labels"][*k] == *val))
}

/// A sample line's value in Prometheus text: `name{…labels…} value`, labels in any order.
fn prom_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, set) = series.split_once('{').unwrap_or((series, ""));
        let all = labels.iter().all(|(k, v)| set.contains(&format!("{k}=\"{v}\"")));
        (metric == name && all).then(|| value.parse().ok()).flatten()
    })
}

async fn prometheus_text(api: &Api) -> String {
    telemetry::configure(Duration::from_secs(60));
    let r = api.get("/v1/agent/metrics?format=prometheus").await.expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_metrics_show_requests_raft_commits_and_kv_writes_in_consuls_shape() {
    let (agent, api) = start().await;
    for i in 0..3 {
        api.kv_set(&format!("metrics/json/{i}"), "v").await;
    }
    api.get("/v1/kv/metrics/json/0").await.ok_json();
    // Consul shows the last finished 10 s interval: poll until it holds the writes above.
    let v = eventually(Duration::from_secs(25), "the writes in /v1/agent/metrics", || async {
        let v = api.get("/v1/agent/metrics").await.ok_json();
        let put = entry(&v, "Samples", "consul.api.http", &[("method", "PUT"), ("path", "v1_kv_")])?;
        let set = entry(&v, "Samples", "consul.kvs.apply", &[("op", "set")])?;
        (put["Count"].as_u64()? >= 3 && set["Count"].as_u64()? >= 3).then_some(v)
    })
    .await;
    for key in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert!(v["Timestamp"].as_str().is_some_and(|t| t.ends_with(" +0000 UTC")), "{}", v["Timestamp"]);
    let commit = entry(&v, "Samples", "consul.raft.commitTime", &[]).expect("Raft commit timings");
    let keys: Vec<&str> = commit.as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"] {
        assert!(keys.contains(&key), "{key} missing in {commit}");
    }
    assert!(commit["Min"].as_f64().unwrap() <= commit["Max"].as_f64().unwrap());
    let applied = entry(&v, "Counters", "consul.raft.apply", &[]).expect("Raft apply counter");
    assert!(applied["Sum"].as_f64().unwrap() >= 3.0, "{applied}");
    let ok = entry(&v, "Counters", "consul.api.http.requests", &[("method", "PUT"), ("code", "200")]);
    assert!(ok.is_some(), "requests by status code: {}", v["Counters"]);
    assert!(entry(&v, "Gauges", "consul.runtime.num_goroutines", &[]).is_some(), "{}", v["Gauges"]);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_format_needs_a_positive_retention_and_then_parses() {
    let (agent, api) = start_with(|cfg, _| cfg.prometheus_retention_time = Duration::from_secs(60)).await;
    telemetry::configure(Duration::ZERO);
    let r = api.get("/v1/agent/metrics?format=prometheus").await.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.text(), "Prometheus is not enabled since its retention time is not positive");

    api.kv_set("metrics/prom", "v").await;
    api.request(Method::GET, "/v1/kv/metrics/nosuchkey", "").await.expect(StatusCode::NOT_FOUND);
    let text = eventually(Duration::from_secs(10), "the Prometheus text", || async {
        // Another agent starting in this process may reset the retention: set it again.
        let text = prometheus_text(&api).await;
        prom_value(&text, "consul_api_http_count", &[("method", "PUT"), ("path", "v1_kv_")])?;
        Some(text)
    })
    .await;
    for (name, kind) in [
        ("consul_api_http", "summary"),
        ("consul_api_http_requests", "counter"),
        ("consul_raft_apply", "counter"),
        ("consul_raft_commitTime", "summary"),
        ("consul_kvs_apply", "summary"),
        ("consul_rpc_queries_blocking", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert!(text.contains(&format!("\n# TYPE {name} {kind}\n")), "{name} {kind} missing:\n{text}");
    }
    let not_found = [("method", "GET"), ("path", "v1_kv_"), ("code", "404")];
    assert!(prom_value(&text, "consul_api_http_requests", &not_found).is_some_and(|n| n >= 1.0), "{text}");
    assert!(prom_value(&text, "consul_raft_commitTime_count", &[]).is_some_and(|n| n >= 1.0), "{text}");
    assert!(prom_value(&text, "consul_api_http", &[("quantile", "0.99")]).is_some(), "{text}");

    // What Prometheus sends when it scrapes without `params`.
    let accept = [("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")];
    telemetry::configure(Duration::from_secs(60));
    let r = api.request_with(Method::GET, "/v1/agent/metrics", &accept, "").await;
    assert!(r.text().contains("# TYPE consul_api_http summary"), "{r:?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_queries_in_flight_are_a_gauge() {
    let (agent, api) = start().await;
    api.kv_set("metrics/block", "v").await;
    let index = api.get("/v1/kv/metrics/block").await.index();
    let waiter = api.clone();
    let blocked = tokio::spawn(async move {
        waiter.get(&format!("/v1/kv/metrics/block?index={index}&wait=20s")).await.ok_json()
    });
    eventually(Duration::from_secs(10), "a blocking query counted in flight", || async {
        let text = prometheus_text(&api).await;
        (prom_value(&text, "consul_rpc_queries_blocking", &[])? >= 1.0).then_some(())
    })
    .await;
    api.kv_set("metrics/block", "w").await;
    blocked.await.expect("the blocked query answers");
    agent.shutdown().await;
}

/// Every monitor scenario in one test: monitors are counted process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_streams_until_leave_detaches_on_disconnect_and_closes_for_shutdown() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // What `sekisho agent` installs; this test binary has no other subscriber.
    let _ = tracing_subscriber::registry().with(telemetry::logs::layer()).try_init();
    let attached = |want: bool| async move { ((telemetry::logs::attached() > 0) == want).then_some(()) };

    tracing::info!("--- an unknown level is refused");
    let (agent, api) = start().await;
    let r = api.get("/v1/agent/monitor?loglevel=verbose").await.expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.text(), "Unknown log level: verbose");

    tracing::info!("--- lines stream until the agent leaves");
    let monitor = api.clone();
    let stream = tokio::spawn(async move { monitor.get("/v1/agent/monitor?loglevel=info").await });
    eventually(Duration::from_secs(10), "the monitor attached", || attached(true)).await;
    api.put("/v1/agent/leave", "").await.expect(StatusCode::OK);
    let r = stream.await.expect("the monitor request ends").expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = r.text();
    assert!(text.contains("[INFO]  http.agent: graceful leave requested over HTTP\n"), "{text:?}");
    agent.shutdown().await;
    eventually(Duration::from_secs(10), "the monitor detached", || attached(false)).await;

    tracing::info!("--- a client that goes away detaches, with nothing logged");
    let (agent, api) = start().await;
    let monitor = api.clone();
    let gone = tokio::spawn(async move { monitor.get("/v1/agent/monitor?loglevel=err").await });
    eventually(Duration::from_secs(10), "the monitor attached", || attached(true)).await;
    gone.abort();
    eventually(Duration::from_secs(10), "the monitor detached", || attached(false)).await;

    tracing::info!("--- shutdown ends open monitors, so the HTTP server can stop");
    let monitor = api.clone();
    let open = tokio::spawn(async move { monitor.get("/v1/agent/monitor").await });
    eventually(Duration::from_secs(10), "the monitor attached", || attached(true)).await;
    tokio::time::timeout(Duration::from_secs(10), agent.shutdown()).await.expect("shutdown completes");
    open.await.expect("the monitor request ends").expect(StatusCode::OK);
}
