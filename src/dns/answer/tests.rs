use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::state::types::{HealthCheck, Service, Weights};

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn node(n: &str, addr: &str, meta: &[(&str, &str)]) -> Node {
    let meta = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    Node { node: n.into(), address: addr.into(), meta: Some(meta), ..Node::default() }
}

fn inst(n: &str, addr: &str, svc_addr: &str, port: u16, statuses: &[&str]) -> Instance {
    let checks = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| HealthCheck {
            check_id: format!("c{i}"),
            status: s.to_string(),
            ..HealthCheck::default()
        })
        .collect();
    Instance {
        node: node(n, addr, &[]),
        service: Service {
            service: "web".into(),
            id: "web".into(),
            address: svc_addr.into(),
            port,
            weights: Weights { passing: 10, warning: 2 },
            ..Service::default()
        },
        checks,
    }
}

struct Fixture {
    cfg: DnsConfig,
    domain: Name,
    qname: Name,
}

impl Fixture {
    fn new(qname: &str) -> Fixture {
        Fixture { cfg: DnsConfig::default(), domain: name("consul."), qname: name(qname) }
    }

    fn answerer(&self, qtype: RecordType) -> Answerer<'_> {
        Answerer { cfg: &self.cfg, datacenter: "dc1", domain: &self.domain, qname: &self.qname, qtype }
    }
}

fn is_soa(r: &Record) -> bool {
    matches!(r.data, RData::SOA(_))
}

#[test]
fn weights_follow_the_worst_check_and_critical_leaves_the_instance_out() {
    let cases: &[(&[&str], bool, Option<u16>)] = &[
        (&[], false, Some(10)),
        (&["passing", "passing"], false, Some(10)),
        (&["passing", "warning"], false, Some(2)),
        (&["warning", "critical"], false, None),
        (&["critical"], false, None),
        (&["passing", "warning"], true, None),
        (&["passing"], true, Some(10)),
        (&["maintenance-ish"], false, Some(1)),
    ];
    for (statuses, only_passing, want) in cases {
        let i = inst("n1", "10.0.0.1", "", 80, statuses);
        assert_eq!(weight(&i, *only_passing), *want, "{statuses:?} only_passing={only_passing}");
    }
}

#[test]
fn service_ttl_prefers_exact_then_longest_prefix_then_star() {
    let mut cfg = DnsConfig::default();
    assert_eq!(service_ttl(&cfg, "web"), Duration::ZERO);
    cfg.service_ttl = BTreeMap::from([
        ("*".to_string(), Duration::from_secs(5)),
        ("db*".to_string(), Duration::from_secs(10)),
        ("db-pri*".to_string(), Duration::from_secs(20)),
        ("db".to_string(), Duration::from_secs(30)),
    ]);
    let cases = [("web", 5), ("db", 30), ("db-replica", 10), ("db-primary", 20), ("DB-PRIMARY", 20)];
    for (svc, want) in cases {
        assert_eq!(service_ttl(&cfg, svc), Duration::from_secs(want), "{svc}");
    }
}

#[test]
fn rfc1464_escapes_keys_and_values() {
    let cases = [
        ("key", "value", "key=value"),
        ("a=b", "c", "a`=b=c"),
        ("tick`", "v`", "tick``=v``"),
        (" lead", "x", "` lead=x"),
        ("trail ", "x", "trail` =x"),
        ("k", "a=b", "k=a=b"),
    ];
    for (k, v, want) in cases {
        assert_eq!(rfc1464(k, v), want, "{k:?}={v:?}");
    }
}

#[test]
fn long_meta_values_are_split_into_255_byte_strings() {
    let long = "é".repeat(200);
    let parts = chunks(&long);
    assert!(parts.iter().all(|p| p.len() <= 255));
    assert_eq!(parts.concat(), long);
    assert_eq!(chunks(""), vec![String::new()]);
}

#[test]
fn node_answers_address_meta_and_negative_cases() {
    let f = Fixture::new("db1.node.consul.");
    let n = node("db1", "10.0.0.7", &[("rack", "r1"), ("rfc1035-raw", "plain")]);

    let a = f.answerer(RecordType::A).node(Some(&n));
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(a.authoritative);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.additionals.len(), 2, "meta TXT in the additional section");

    let txt = f.answerer(RecordType::TXT).node(Some(&n));
    let texts: Vec<String> = txt
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(String::from_utf8_lossy(&t.txt_data[0]).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec!["rack=r1".to_string(), "plain".to_string()]);

    let aaaa = f.answerer(RecordType::AAAA).node(Some(&n));
    assert_eq!(aaaa.rcode, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    assert!(aaaa.authorities.iter().any(is_soa));

    let missing = f.answerer(RecordType::A).node(None);
    assert_eq!(missing.rcode, ResponseCode::NXDomain);
    assert!(missing.authorities.iter().any(is_soa));
}

#[test]
fn srv_targets_name_the_node_or_the_addr_form_and_carry_glue() {
    let f = Fixture::new("web.service.consul.");
    let instances = vec![
        inst("n1", "10.0.0.1", "", 8080, &["passing"]),
        inst("n2", "10.0.0.2", "10.0.0.2", 8081, &["warning"]),
        inst("n3", "10.0.0.3", "192.168.1.9", 8082, &[]),
        inst("n4", "10.0.0.4", "", 8083, &["critical"]),
    ];
    let r = f.answerer(RecordType::SRV).service("web", instances);
    assert_eq!(r.answers.len(), 3, "the critical instance is left out");
    let mut seen: Vec<(String, u16, u16)> = r
        .answers
        .iter()
        .map(|rec| match &rec.data {
            RData::SRV(s) => (s.target.to_ascii(), s.weight, s.port),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("c0a80109.addr.dc1.consul.".to_string(), 10, 8082),
            ("n1.node.dc1.consul.".to_string(), 10, 8080),
            ("n2.node.dc1.consul.".to_string(), 2, 8081),
        ]
    );
    for (target, ip) in [
        ("n1.node.dc1.consul.", "10.0.0.1"),
        ("n2.node.dc1.consul.", "10.0.0.2"),
        ("c0a80109.addr.dc1.consul.", "192.168.1.9"),
    ] {
        let glue: Vec<&Record> = r.additionals.iter().filter(|g| g.name == name(target)).collect();
        assert!(
            glue.iter().any(|g| g.data == RData::A(A(ip.parse().unwrap()))),
            "glue for {target}: {glue:?}"
        );
    }
}

#[test]
fn service_a_answers_dedupe_addresses_and_respect_a_record_limit() {
    let mut f = Fixture::new("web.service.consul.");
    let mut instances: Vec<Instance> =
        (1..=6).map(|i| inst(&format!("n{i}"), &format!("10.0.0.{i}"), "", 80, &[])).collect();
    instances.push(inst("n1", "10.0.0.1", "", 81, &[]));
    let r = f.answerer(RecordType::A).service("web", instances.clone());
    assert_eq!(r.answers.len(), 6);

    f.cfg.a_record_limit = 2;
    let r = f.answerer(RecordType::A).service("web", instances.clone());
    assert_eq!(r.answers.len(), 2);

    let r = f.answerer(RecordType::AAAA).service("web", instances);
    assert_eq!(r.rcode, ResponseCode::NoError, "instances exist, no AAAA");
    assert!(r.answers.is_empty() && r.authorities.iter().any(is_soa));

    let r = f.answerer(RecordType::A).service("web", vec![inst("n9", "10.0.0.9", "", 80, &["critical"])]);
    assert_eq!(r.rcode, ResponseCode::NXDomain);
}

#[test]
fn apex_answers_soa_and_ns_with_glue() {
    let f = Fixture::new("consul.");
    let servers = vec![inst("srv1", "10.1.0.1", "", 8300, &["passing"])];
    let soa = f.answerer(RecordType::SOA).apex(servers.clone());
    assert!(is_soa(&soa.answers[0]));
    let RData::SOA(data) = &soa.answers[0].data else { unreachable!() };
    assert_eq!(data.mname, name("ns.consul."));
    assert_eq!(data.rname, name("hostmaster.consul."));
    assert_eq!((data.refresh, data.retry, data.expire, data.minimum), (3600, 600, 86400, 0));
    assert!(matches!(soa.authorities[0].data, RData::NS(_)));

    let ns = f.answerer(RecordType::NS).apex(servers);
    assert_eq!(ns.answers[0].data, RData::NS(NS(name("srv1.node.dc1.consul."))));
    assert_eq!(ns.additionals[0].name, name("srv1.node.dc1.consul."));

    let a = f.answerer(RecordType::A).apex(vec![]);
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(a.answers.is_empty() && a.authorities.iter().any(is_soa));
}

#[test]
fn prepared_query_answers_keep_the_order_and_the_ttl_and_never_drop_results() {
    let f = Fixture::new("db.query.consul.");
    let results = vec![
        inst("n2", "10.0.0.2", "", 80, &["passing"]),
        inst("n1", "10.0.0.1", "", 81, &["critical"]),
        inst("n3", "10.0.0.3", "", 82, &["warning"]),
    ];
    let a = f.answerer(RecordType::A).prepared_query(results.clone(), Duration::from_secs(7));
    let ips: Vec<String> = a.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.1", "10.0.0.3"], "the execution's order, nothing left out");
    assert!(a.answers.iter().all(|r| r.ttl == 7));
    let srv = f.answerer(RecordType::SRV).prepared_query(results, Duration::from_secs(7));
    let weights: Vec<(u16, u16)> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.port, s.weight)),
            _ => None,
        })
        .collect();
    assert_eq!(weights, [(80, 10), (81, 1), (82, 2)], "Consul's findWeight");
    let none = f.answerer(RecordType::A).prepared_query(Vec::new(), Duration::ZERO);
    assert_eq!(none.rcode, ResponseCode::NXDomain);
}

#[test]
fn query_weights_follow_consuls_aggregated_status() {
    let mut i = inst("n1", "10.0.0.1", "", 80, &["passing"]);
    assert_eq!(query_weight(&i), 10);
    i.checks[0].check_id = "_node_maintenance".into();
    i.checks[0].status = "critical".into();
    assert_eq!(query_weight(&i), 0);
    let odd = inst("n1", "10.0.0.1", "", 80, &["passing", "unknown"]);
    assert_eq!(query_weight(&odd), 1);
}
