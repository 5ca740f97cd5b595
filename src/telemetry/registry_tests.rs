use super::*;

/// A registry whose origin is 5 s into an interval starting at a round wall time.
fn reg() -> (Registry, Instant) {
    let t0 = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_005);
    (Registry::with_origin(Duration::from_secs(10), t0, wall), t0)
}

#[test]
fn counters_aggregate_per_interval_and_cumulatively() {
    let (r, t0) = reg();
    r.incr("consul.raft.apply", &[], 1.0, t0);
    r.incr("consul.raft.apply", &[], 3.0, t0 + Duration::from_secs(1));
    let idx = r.interval_index(t0);
    let v = &r.views(idx, t0 + Duration::from_secs(2), None)[0];
    assert_eq!((v.interval.count, v.interval.sum, v.interval.min, v.interval.max), (2, 4.0, 1.0, 3.0));
    assert_eq!(v.interval.mean(), 2.0);
    assert!((v.interval.stddev() - std::f64::consts::SQRT_2).abs() < 1e-9);
    // The next interval starts empty, the totals keep growing.
    let later = t0 + Duration::from_secs(6);
    r.incr("consul.raft.apply", &[], 1.0, later);
    let v = &r.views(idx + 1, later, None)[0];
    assert_eq!((v.interval.count, v.total_count, v.total_sum), (1, 3, 5.0));
    // The finished interval is still readable as the previous one.
    let v = &r.views(idx, later, None)[0];
    assert_eq!(v.interval.count, 2);
}

#[test]
fn shown_interval_is_the_last_finished_one_once_there_is_one() {
    let (r, t0) = reg();
    let idx = r.interval_index(t0);
    assert_eq!(r.shown_interval(t0), idx, "nothing finished yet: the current interval");
    assert_eq!(r.shown_interval(t0 + Duration::from_secs(6)), idx);
    assert_eq!(r.shown_interval(t0 + Duration::from_secs(16)), idx + 1);
}

#[test]
fn an_interval_after_a_gap_is_empty() {
    let (r, t0) = reg();
    r.sample("s", &[], 5.0, t0);
    let later = t0 + Duration::from_secs(40);
    let idx = r.interval_index(later);
    let v = &r.views(idx - 1, later, None)[0];
    assert_eq!(v.interval, Agg::default());
    assert_eq!(v.total_count, 1);
}

#[test]
fn labels_make_distinct_series_in_key_order() {
    let (r, t0) = reg();
    r.incr("consul.api.http", &[("method", "PUT"), ("path", "v1_kv_")], 1.0, t0);
    r.incr("consul.api.http", &[("method", "GET"), ("path", "v1_kv_")], 1.0, t0);
    r.incr("consul.api.http", &[("method", "GET"), ("path", "v1_kv_")], 1.0, t0);
    let views = r.views(r.interval_index(t0), t0, None);
    let keys: Vec<String> = views.iter().map(|v| v.series.key()).collect();
    assert_eq!(keys, ["consul.api.http;method=GET;path=v1_kv_", "consul.api.http;method=PUT;path=v1_kv_"]);
    assert_eq!(views[0].total_count, 2);
}

#[test]
fn quantiles_cover_the_recent_window_only() {
    let (r, t0) = reg();
    for i in 1..=100 {
        r.sample("lat", &[], f64::from(i), t0);
    }
    let v = &r.views(0, t0, None)[0];
    assert_eq!(v.quantiles, [50.0, 90.0, 99.0]);
    let later = t0 + QUANTILE_WINDOW + Duration::from_secs(1);
    r.sample("lat", &[], 7.0, later);
    let v = &r.views(0, later, None)[0];
    assert_eq!(v.quantiles, [7.0; 3]);
    assert_eq!(v.total_count, 101);
    let v = &r.views(0, later + QUANTILE_WINDOW * 2, None)[0];
    assert!(v.quantiles.iter().all(|q| q.is_nan()));
}

#[test]
fn gauges_set_and_add_and_never_expire() {
    let (r, t0) = reg();
    r.add_gauge("consul.rpc.queries_blocking", &[], 1.0, t0);
    r.add_gauge("consul.rpc.queries_blocking", &[], 1.0, t0);
    r.add_gauge("consul.rpc.queries_blocking", &[], -1.0, t0);
    r.set_gauge("g", &[], 2.5, t0);
    r.incr("c", &[], 1.0, t0);
    let later = t0 + Duration::from_secs(3600);
    let views = r.views(0, later, Some(Duration::from_secs(60)));
    let values: Vec<(&str, f64)> = views.iter().map(|v| (&*v.series.name, v.value)).collect();
    assert_eq!(values, [("consul.rpc.queries_blocking", 1.0), ("g", 2.5)]);
    r.expire(later, Duration::from_secs(60));
    assert_eq!(r.len(), 2);
}

#[test]
fn records_from_many_threads_merge_across_shards() {
    let (r, t0) = reg();
    std::thread::scope(|s| {
        for i in 0..4 {
            let r = &r;
            s.spawn(move || (0..100).for_each(|j| r.sample("s", &[], f64::from(i * 100 + j), t0)));
        }
    });
    r.set_gauge("g", &[], 3.0, t0);
    let views = r.views(r.interval_index(t0), t0, None);
    let v = views.iter().find(|v| &*v.series.name == "s").unwrap();
    assert_eq!((v.total_count, v.interval.count), (400, 400));
    assert_eq!((v.interval.min, v.interval.max, v.total_sum), (0.0, 399.0, 79_800.0));
    assert_eq!(v.quantiles, [199.0, 359.0, 395.0]);
    assert_eq!(views.iter().find(|v| &*v.series.name == "g").unwrap().value, 3.0);
}

#[test]
fn non_finite_values_are_ignored() {
    let (r, t0) = reg();
    r.sample("s", &[], f64::NAN, t0);
    r.incr("c", &[], f64::INFINITY, t0);
    assert!(r.is_empty());
}
