use super::*;
use crate::testing::TestAgent;

fn opts(agent: &TestAgent, workload: Workload) -> Options {
    Options {
        addr: agent.http_addr().to_string(),
        workload,
        concurrency: 4,
        duration: Duration::from_millis(700),
        keys: 50,
        value_size: 32,
        prefix: format!("bench-{workload:?}/"),
        ..Options::default()
    }
}

async fn keys_under(agent: &TestAgent, prefix: &str) -> Vec<String> {
    let mut c = Conn::open(&agent.http_addr().to_string(), None).await.unwrap();
    let (_, body) = c.get_with_index(&format!("/v1/kv/{prefix}?keys")).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_writes_the_keys_and_reports_latency() {
    let agent = TestAgent::start().await;
    let o = opts(&agent, Workload::Put);
    let ticks = Arc::new(AtomicU64::new(0));
    let seen = ticks.clone();
    let report = run(o.clone(), move |p| {
        if matches!(p, Progress::Running { .. }) {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await
    .unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert!(report.ops > 0);
    let l = report.latency.unwrap();
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max && l.p50 > 0.0, "{l:?}");
    assert!(ticks.load(Ordering::Relaxed) >= 1, "no progress while running");
    // Every client cycles from its own offset: with this many ops, every key was written.
    let keys = keys_under(&agent, &o.prefix).await;
    assert!(!keys.is_empty() && keys.len() <= o.keys, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(&o.prefix)));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prefills_then_reads_in_each_consistency_mode() {
    let agent = TestAgent::start().await;
    for consistency in [Consistency::Default, Consistency::Consistent, Consistency::Stale] {
        let o = Options { consistency, ..opts(&agent, Workload::Get) };
        let report = run(o.clone(), |_| ()).await.unwrap();
        assert_eq!(report.errors, 0, "{consistency:?}: {:?}", report.first_error);
        assert!(report.ops > 0, "{consistency:?}");
        assert_eq!(keys_under(&agent, &o.prefix).await.len(), o.keys, "the prefill wrote every key");
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_runs_without_errors() {
    let agent = TestAgent::start().await;
    let report = run(opts(&agent, Workload::Txn), |_| ()).await.unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert!(report.ops > 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_measures_each_write_to_its_last_watcher() {
    let agent = TestAgent::start().await;
    let o = Options {
        concurrency: 6,
        duration: Duration::from_millis(800),
        watch_interval: Duration::from_millis(100),
        ..opts(&agent, Workload::Watch)
    };
    let report = run(o, |_| ()).await.unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    let fanout = report.fanout.unwrap();
    assert!(fanout.writes >= 3, "{fanout:?}");
    let last = fanout.last_watcher.unwrap();
    // Each write's slowest watcher is no faster than the typical watcher.
    assert!(last.p50 >= report.latency.unwrap().p50, "{last:?} vs {:?}", report.latency);
    // Six watchers and several writes: answers carried writes.
    assert!(report.ops >= fanout.writes, "{} answers for {} writes", report.ops, fanout.writes);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_counted_as_errors_with_the_servers_text() {
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.acl = serde_json::json!({"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "root-bench"}});
    })
    .await;
    let report = run(opts(&agent, Workload::Put), |_| ()).await.unwrap();
    assert_eq!(report.ops, 0);
    assert!(report.errors > 0);
    let first = report.first_error.clone().unwrap();
    assert!(first.starts_with("Unexpected response code: 403"), "{first}");
    assert!(report.to_string().contains("Errors:      "), "{report}");
    agent.shutdown().await;
}

#[tokio::test]
async fn bad_options_and_unreachable_targets_are_errors_before_any_load() {
    let usage = |o: Options| async move {
        match run(o, |_| ()).await {
            Err(BenchError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    };
    assert!(usage(Options { concurrency: 0, ..Options::default() }).await.contains("-concurrency"));
    assert!(usage(Options { keys: 0, ..Options::default() }).await.contains("-keys"));
    assert!(usage(Options { duration: Duration::ZERO, ..Options::default() }).await.contains("-duration"));
    let watch_etcd = Options { api: Api::Etcd, workload: Workload::Watch, ..Options::default() };
    assert!(usage(watch_etcd).await.contains("etcd"));

    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let o = Options { addr: free.to_string(), ..Options::default() };
    match run(o, |_| ()).await {
        Err(BenchError::Target(m)) => assert!(m.contains(&free.to_string()), "{m}"),
        other => panic!("expected a target error, got {other:?}"),
    }
}

#[test]
fn percentiles_use_the_nearest_rank() {
    let mut micros: Vec<u32> = (1..=100).rev().map(|n| n * 1000).collect();
    let l = Latency::of(&mut micros).unwrap();
    assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
    assert!((l.mean - 50.5).abs() < 1e-9);
    assert_eq!(Latency::of(&mut []), None);
    let l = Latency::of(&mut [7000]).unwrap();
    assert_eq!((l.p50, l.p99, l.max), (7.0, 7.0, 7.0));
}
