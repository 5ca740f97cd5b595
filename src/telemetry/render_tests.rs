use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;

fn reg() -> (Registry, Instant) {
    let t0 = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_502_160_905);
    (Registry::with_origin(Duration::from_secs(10), t0, wall), t0)
}

/// One parsed sample line: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict reader of the text format 0.0.4: every sample belongs to the family of the last
/// `# TYPE`, each family is declared once, labels are well formed and values parse.
fn parse_exposition(text: &str) -> Result<(BTreeMap<String, String>, Vec<Sample>), String> {
    let mut types = BTreeMap::new();
    let mut helped = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !helped.insert(name.to_owned()) {
                return Err(format!("second HELP for {name}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or("TYPE without kind")?;
            if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                return Err(format!("bad kind {kind}"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("second TYPE for {name}"));
            }
            current = Some((name.to_owned(), kind.to_owned()));
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let sample = parse_sample(line)?;
            let (family, kind) = current.as_ref().ok_or("sample before any TYPE")?;
            let ok = match kind.as_str() {
                "summary" => {
                    [family.clone(), format!("{family}_sum"), format!("{family}_count")].contains(&sample.0)
                }
                _ => &sample.0 == family,
            };
            if !ok {
                return Err(format!("{} outside its family ({family})", sample.0));
            }
            samples.push(sample);
        }
    }
    Ok((types, samples))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let Some(mut body) = line[name_end..].strip_prefix('{') else {
        return finish(name, labels, &line[name_end..]);
    };
    loop {
        if let Some(after) = body.strip_prefix('}') {
            return finish(name, labels, after);
        }
        let eq = body.find("=\"").ok_or("label without =\"")?;
        let lname = &body[..eq];
        if lname.is_empty() || !lname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {lname:?}"));
        }
        let (value, used) = label_value(&body[eq + 2..])?;
        if labels.insert(lname.to_owned(), value).is_some() {
            return Err(format!("duplicate label {lname}"));
        }
        body = &body[eq + 2 + used..];
        body = body.strip_prefix(',').unwrap_or(body);
    }
}

/// A quoted label value after its opening quote: the unescaped value and the bytes used,
/// closing quote included.
fn label_value(s: &str) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((value, i + 1)),
            '\\' => match it.next().ok_or("dangling escape")?.1 {
                'n' => value.push('\n'),
                c @ ('\\' | '"') => value.push(c),
                c => return Err(format!("bad escape \\{c}")),
            },
            '\n' => return Err("raw newline in label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn finish(name: &str, labels: BTreeMap<String, String>, rest: &str) -> Result<Sample, String> {
    let value = rest.strip_prefix(' ').ok_or("no space before value")?;
    let v = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|e| format!("bad value {v:?}: {e}"))?,
    };
    Ok((name.to_owned(), labels, v))
}

#[test]
fn the_reader_rejects_what_prometheus_rejects() {
    assert!(parse_exposition("x 1\n").is_err(), "sample without TYPE");
    assert!(parse_exposition("# TYPE x counter\n# TYPE x counter\nx 1\n").is_err());
    assert!(parse_exposition("# TYPE x counter\nx{a=\"b} 1\n").is_err());
    assert!(parse_exposition("# TYPE x counter\nx{a=\"\\q\"} 1\n").is_err());
    assert!(parse_exposition("# TYPE x counter\ny 1\n").is_err());
    let (_, s) = parse_exposition("# TYPE x counter\nx{a=\"1\",b=\"q\\\"\\n\"} 2\n").unwrap();
    assert_eq!(s[0].1["b"], "q\"\n");
}

#[test]
fn prometheus_text_has_one_family_per_name_and_parses() {
    let (r, t0) = reg();
    r.sample("consul.api.http", &[("method", "GET"), ("path", "v1_kv_")], 2.0, t0);
    r.sample("consul.api.http", &[("method", "PUT"), ("path", "v1_kv_")], 4.0, t0);
    r.incr("consul.raft.apply", &[], 3.0, t0);
    r.set_gauge("consul.rpc.queries_blocking", &[], 2.0, t0);
    r.incr("consul.dns.queries", &[("type", "A"), ("rcode", "NOERROR")], 1.0, t0);
    let extra = [Extra {
        json_name: None,
        prom_name: "process_open_fds",
        kind: Kind::Gauge,
        help: "Number of open file descriptors.",
        value: 12.0,
    }];
    let text =
        prometheus(&r, t0, None, &extra, |n| (n == "consul.raft.apply").then_some("Raft\\applies\nlines"));
    let (types, samples) = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(types["consul_api_http"], "summary");
    assert_eq!(types["consul_raft_apply"], "counter");
    assert_eq!(types["consul_rpc_queries_blocking"], "gauge");
    assert_eq!(types["process_open_fds"], "gauge");
    assert!(text.contains("# HELP consul_raft_apply Raft\\\\applies\\nlines\n"), "{text}");
    let find = |name: &str, label: Option<(&str, &str)>| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v)))
            .map(|s| s.2)
    };
    assert_eq!(find("consul_raft_apply", None), Some(3.0));
    assert_eq!(find("consul_api_http_count", Some(("method", "PUT"))), Some(1.0));
    assert_eq!(find("consul_api_http_sum", Some(("method", "GET"))), Some(2.0));
    assert_eq!(find("consul_api_http", Some(("quantile", "0.99"))), Some(2.0));
    assert_eq!(find("consul_dns_queries", Some(("rcode", "NOERROR"))), Some(1.0));
    assert_eq!(find("process_open_fds", None), Some(12.0));
}

#[test]
fn label_values_are_escaped_and_names_sanitized() {
    let (r, t0) = reg();
    r.incr("weird-name.with spaces", &[("bad-label", "a\"b\\c\nd"), ("__x", "1")], 1.0, t0);
    let text = prometheus(&r, t0, None, &[], |_| None);
    let (types, samples) = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(types.contains_key("weird_name_with_spaces"), "{text}");
    assert_eq!(samples[0].1["bad_label"], "a\"b\\c\nd");
    assert_eq!(samples[0].1["x__x"], "1");
}

#[test]
fn idle_counters_and_samples_leave_the_prometheus_output() {
    let (r, t0) = reg();
    r.incr("old", &[], 1.0, t0);
    r.set_gauge("g", &[], 1.0, t0);
    let later = t0 + Duration::from_secs(120);
    r.incr("new", &[], 1.0, later);
    let text = prometheus(&r, later, Some(Duration::from_secs(60)), &[], |_| None);
    assert!(!text.contains("old"), "{text}");
    assert!(text.contains("\nnew 1\n") && text.contains("\ng 1\n"), "{text}");
}

#[test]
fn a_name_used_for_two_kinds_keeps_the_first_kind_only() {
    let (r, t0) = reg();
    r.incr("dup", &[], 1.0, t0);
    r.sample("dup", &[("a", "b")], 1.0, t0);
    let text = prometheus(&r, t0, None, &[], |_| None);
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn json_summary_has_consuls_shape() {
    let (r, t0) = reg();
    r.incr("consul.raft.apply", &[], 1.0, t0);
    r.incr("consul.raft.apply", &[], 3.0, t0);
    r.sample("consul.api.http", &[("method", "GET"), ("path", "v1_agent_self")], 0.5, t0);
    r.set_gauge("consul.rpc.queries_blocking", &[], 0.0, t0);
    let extra = [Extra {
        json_name: Some("consul.runtime.num_goroutines"),
        prom_name: "consul_runtime_num_goroutines",
        kind: Kind::Gauge,
        help: "",
        value: 7.0,
    }];
    let s = summary(&r, r.interval_index(t0), t0, &extra);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["Timestamp"], "2017-08-08 02:55:00 +0000 UTC");
    assert_eq!(v["Points"], serde_json::json!([]));
    let c = &v["Counters"][0];
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = ["Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(
        (c["Name"].as_str(), c["Count"].as_u64(), c["Sum"].as_f64()),
        (Some("consul.raft.apply"), Some(2), Some(4.0))
    );
    assert_eq!(c["Rate"].as_f64(), Some(0.4));
    assert_eq!(c["Labels"], serde_json::json!({}));
    assert_eq!(v["Samples"][0]["Labels"], serde_json::json!({"method": "GET", "path": "v1_agent_self"}));
    let gauges: Vec<&str> =
        v["Gauges"].as_array().unwrap().iter().map(|g| g["Name"].as_str().unwrap()).collect();
    assert_eq!(gauges, ["consul.rpc.queries_blocking", "consul.runtime.num_goroutines"]);
}

#[test]
fn json_summary_leaves_out_series_silent_in_the_interval() {
    let (r, t0) = reg();
    r.incr("early", &[], 1.0, t0);
    let later = t0 + Duration::from_secs(20);
    r.incr("late", &[], 1.0, later);
    let s = summary(&r, r.interval_index(later), later, &[]);
    let names: Vec<&str> = s.counters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["late"]);
}
