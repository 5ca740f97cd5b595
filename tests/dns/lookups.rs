//! Every name form: node, service, tag, RFC 2782, `.addr.`, PTR, SOA/NS, custom and
//! alternative domains, other datacenters and the forms not implemented yet.

use std::collections::HashSet;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use crate::support::{authority_soa, expect_rcode, ip, ips, srvs, start, start_with, txts};

#[tokio::test]
async fn node_lookup_answers_the_address_and_meta_txt() {
    let (agent, api, dns) = start().await;
    api.register(json!({
        "Node": "db1", "Address": "10.1.0.7",
        "NodeMeta": {"rack": "r1", "rfc1035-spf": "v=spf1 -all"},
    }))
    .await;
    api.register(json!({"Node": "db6", "Address": "2001:db8::7"})).await;

    for name in ["db1.node.consul.", "DB1.Node.Consul.", "db1.node.dc1.consul."] {
        let m = dns.udp(name, RecordType::A).await;
        expect_rcode(&m, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "{name}: AA");
        assert!(!m.metadata.recursion_available, "{name}: RA only with recursors");
        assert_eq!(ips(&m.answers), vec![ip("10.1.0.7")], "{name}");
        assert_eq!(m.answers[0].name.to_ascii(), name.to_ascii_lowercase(), "answer owner name");
        assert_eq!(txts(&m.additionals), vec!["rack=r1", "v=spf1 -all"], "{name}: meta TXT as additional");
    }

    let txt = dns.udp("db1.node.consul.", RecordType::TXT).await;
    assert_eq!(txts(&txt.answers), vec!["rack=r1", "v=spf1 -all"]);

    let v6 = dns.udp("db6.node.consul.", RecordType::AAAA).await;
    assert_eq!(ips(&v6.answers), vec![ip("2001:db8::7")]);

    let none = dns.udp("db1.node.consul.", RecordType::AAAA).await;
    expect_rcode(&none, ResponseCode::NoError);
    assert!(none.answers.is_empty(), "a known node without AAAA: {none:?}");
    authority_soa(&none);
    agent.shutdown().await;
}

#[tokio::test]
async fn unknown_names_get_nxdomain_with_the_soa() {
    let (agent, _api, dns) = start().await;
    for name in ["nothing.node.consul.", "nothing.service.consul.", "foo.bar.consul.", "zz.addr.consul."] {
        let m = dns.udp(name, RecordType::A).await;
        expect_rcode(&m, ResponseCode::NXDomain);
        assert!(m.metadata.authoritative, "{name}");
        assert_eq!(authority_soa(&m), ("ns.consul.".to_string(), "hostmaster.consul.".to_string()), "{name}");
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn service_lookup_answers_instances_filtered_by_tag() {
    let (agent, api, dns) = start().await;
    api.service("n1", "10.0.0.1", json!({"Service": "web", "Tags": ["v1"], "Port": 8080})).await;
    api.service("n2", "10.0.0.2", json!({"Service": "web", "Tags": ["v2"], "Port": 8080})).await;
    api.service(
        "n3",
        "10.0.0.3",
        json!({"Service": "web", "Tags": ["v1"], "Address": "10.9.9.3", "Port": 8080}),
    )
    .await;

    let all = dns.udp("web.service.consul.", RecordType::A).await;
    assert_eq!(ips(&all.answers), vec![ip("10.0.0.1"), ip("10.0.0.2"), ip("10.9.9.3")]);
    let v1 = dns.udp("v1.web.service.consul.", RecordType::A).await;
    assert_eq!(ips(&v1.answers), vec![ip("10.0.0.1"), ip("10.9.9.3")]);
    let upper = dns.udp("V1.WEB.service.dc1.consul.", RecordType::A).await;
    assert_eq!(ips(&upper.answers), vec![ip("10.0.0.1"), ip("10.9.9.3")]);
    let none = dns.udp("v3.web.service.consul.", RecordType::A).await;
    expect_rcode(&none, ResponseCode::NXDomain);
    authority_soa(&none);
    agent.shutdown().await;
}

#[tokio::test]
async fn srv_answers_have_weights_ports_and_targets_that_resolve() {
    let (agent, api, dns) = start().await;
    api.service(
        "n1",
        "10.0.0.1",
        json!({"Service": "web", "Tags": ["v1"], "Port": 8080,
        "Weights": {"Passing": 7, "Warning": 1}}),
    )
    .await;
    api.service("n2", "10.0.0.2", json!({"Service": "web", "Address": "10.7.7.7", "Port": 9090})).await;

    let m = dns.udp("web.service.consul.", RecordType::SRV).await;
    assert_eq!(
        srvs(&m),
        vec![
            ("0a070707.addr.dc1.consul.".to_string(), 9090, 1),
            ("n1.node.dc1.consul.".to_string(), 8080, 7),
        ]
    );
    assert!(m.answers.iter().all(|r| matches!(&r.data, RData::SRV(s) if s.priority == 1)));
    assert_eq!(ips(&m.additionals), vec![ip("10.0.0.1"), ip("10.7.7.7")], "glue for both targets");

    for (target, want) in [("n1.node.dc1.consul.", "10.0.0.1"), ("0a070707.addr.dc1.consul.", "10.7.7.7")] {
        let resolved = dns.udp(target, RecordType::A).await;
        assert_eq!(ips(&resolved.answers), vec![ip(want)], "resolving the SRV target {target}");
    }

    for name in ["_web._tcp.service.consul.", "_web._tcp.consul.", "_web._tcp.dc1.consul."] {
        let m = dns.udp(name, RecordType::SRV).await;
        assert_eq!(srvs(&m).len(), 2, "{name}");
    }
    let tagged = dns.udp("_web._v1.service.consul.", RecordType::SRV).await;
    assert_eq!(srvs(&tagged), vec![("n1.node.dc1.consul.".to_string(), 8080, 7)]);
    agent.shutdown().await;
}

#[tokio::test]
async fn addr_and_ptr_lookups() {
    let (agent, api, dns) = start().await;
    api.register(json!({"Node": "db1", "Address": "10.1.0.7"})).await;
    api.register(json!({"Node": "db6", "Address": "2001:db8::7"})).await;

    let a = dns.udp("0a010007.addr.dc1.consul.", RecordType::A).await;
    assert_eq!(ips(&a.answers), vec![ip("10.1.0.7")]);
    let aaaa = dns.udp("20010db8000000000000000000000007.addr.consul.", RecordType::AAAA).await;
    assert_eq!(ips(&aaaa.answers), vec![ip("2001:db8::7")]);

    let ptr = dns.udp("7.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    let targets: Vec<String> = ptr
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec!["db1.node.dc1.consul."]);

    let v6 = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let ptr6 = dns.udp(v6, RecordType::PTR).await;
    assert!(matches!(&ptr6.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "db6.node.dc1.consul."));

    let miss = dns.udp("9.9.9.10.in-addr.arpa.", RecordType::PTR).await;
    expect_rcode(&miss, ResponseCode::NXDomain);
    authority_soa(&miss);
    agent.shutdown().await;
}

#[tokio::test]
async fn soa_and_ns_describe_the_domain() {
    let (agent, _api, dns) = start_with(|cfg, _| {
        cfg.dns.soa_refresh = 111;
        cfg.dns.soa_min_ttl = 7;
    })
    .await;
    let node = agent.config.node_name.to_ascii_lowercase();
    let server = format!("{node}.node.dc1.consul.");

    let soa = dns.udp("consul.", RecordType::SOA).await;
    let RData::SOA(data) = &soa.answers[0].data else { panic!("no SOA answer: {soa:?}") };
    assert_eq!(
        (data.mname.to_ascii(), data.rname.to_ascii()),
        ("ns.consul.".into(), "hostmaster.consul.".into())
    );
    assert_eq!((data.refresh, data.retry, data.expire, data.minimum), (111, 600, 86400, 7));
    assert_eq!(soa.answers[0].ttl, 7);
    assert!(matches!(&soa.authorities[0].data, RData::NS(ns) if ns.0.to_ascii() == server));

    let ns = dns.udp("consul.", RecordType::NS).await;
    let RData::NS(target) = &ns.answers[0].data else { panic!("no NS answer: {ns:?}") };
    assert_eq!(target.0.to_ascii(), server);
    let glue: Vec<_> = ns.additionals.iter().filter(|r| r.name.to_ascii() == server).cloned().collect();
    assert_eq!(ips(&glue), vec![ip("127.0.0.1")], "glue for the name server");

    let apex_a = dns.udp("consul.", RecordType::A).await;
    expect_rcode(&apex_a, ResponseCode::NoError);
    assert!(apex_a.answers.is_empty());
    authority_soa(&apex_a);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_custom_domain_and_the_alt_domain_answer_in_the_domain_asked() {
    let (agent, api, dns) = start_with(|cfg, _| {
        cfg.domain = "procube.jp".into();
        cfg.alt_domain = Some("consul".into());
    })
    .await;
    api.service("n1", "10.0.0.1", json!({"Service": "web", "Port": 80})).await;
    api.register(json!({"Node": "db1", "Address": "10.1.0.7"})).await;

    for domain in ["procube.jp.", "consul."] {
        let a = dns.udp(&format!("web.service.{domain}"), RecordType::A).await;
        assert_eq!(ips(&a.answers), vec![ip("10.0.0.1")], "{domain}");
        assert_eq!(a.answers[0].name.to_ascii(), format!("web.service.{domain}"));
        let srv = dns.udp(&format!("web.service.{domain}"), RecordType::SRV).await;
        assert_eq!(srvs(&srv)[0].0, format!("n1.node.dc1.{domain}"), "SRV target in the domain asked");
        let nx = dns.udp(&format!("missing.service.{domain}"), RecordType::A).await;
        expect_rcode(&nx, ResponseCode::NXDomain);
        assert_eq!(authority_soa(&nx).0, format!("ns.{domain}"));
    }

    let ptr = dns.udp("7.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(
        matches!(&ptr.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "db1.node.dc1.procube.jp."),
        "PTR answers in the primary domain: {ptr:?}"
    );
    agent.shutdown().await;

    let (agent, _api, dns) = start_with(|cfg, _| cfg.domain = "procube.jp".into()).await;
    let outside = dns.udp("web.service.consul.", RecordType::A).await;
    expect_rcode(&outside, ResponseCode::Refused);
    agent.shutdown().await;
}

#[tokio::test]
async fn other_datacenters_and_unimplemented_forms_fail_clearly() {
    let (agent, api, dns) = start().await;
    api.service("n1", "10.0.0.1", json!({"Service": "web", "Port": 80})).await;
    let other = dns.udp("web.service.dc2.consul.", RecordType::A).await;
    expect_rcode(&other, ResponseCode::ServFail);
    for name in ["web.connect.consul.", "web.ingress.consul.", "web.virtual.consul."] {
        let m = dns.udp(name, RecordType::A).await;
        expect_rcode(&m, ResponseCode::NotImp);
        authority_soa(&m);
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn ttls_come_from_node_ttl_and_service_ttl_patterns() {
    let (agent, api, dns) = start_with(|cfg, _| {
        cfg.dns.node_ttl = Duration::from_secs(30);
        cfg.dns.service_ttl = [("*", 5), ("db*", 10), ("db-primary", 20)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Duration::from_secs(v)))
            .collect();
    })
    .await;
    for svc in ["web", "db-replica", "db-primary"] {
        api.service(&format!("host-{svc}"), "10.0.0.1", json!({"Service": svc, "Port": 80})).await;
    }
    let node = dns.udp("host-web.node.consul.", RecordType::A).await;
    assert_eq!(node.answers[0].ttl, 30);
    for (svc, ttl) in [("web", 5), ("db-replica", 10), ("db-primary", 20)] {
        let m = dns.udp(&format!("{svc}.service.consul."), RecordType::A).await;
        assert_eq!(m.answers[0].ttl, ttl, "{svc}");
        let srv = dns.udp(&format!("{svc}.service.consul."), RecordType::SRV).await;
        assert_eq!(srv.answers[0].ttl, ttl, "{svc} SRV");
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn answers_are_shuffled_on_every_query() {
    let (agent, api, dns) = start().await;
    for i in 1..=5 {
        api.service(&format!("n{i}"), &format!("10.0.0.{i}"), json!({"Service": "web", "Port": 80})).await;
    }
    let mut firsts = HashSet::new();
    for _ in 0..40 {
        let m = dns.tcp("web.service.consul.", RecordType::A).await;
        assert_eq!(m.answers.len(), 5);
        firsts.insert(ips(&m.answers[..1]));
    }
    // 40 draws of 5 equally likely firsts all landing on one is a 5^-39 chance.
    assert!(firsts.len() > 1, "the first answer never changed: {firsts:?}");
    agent.shutdown().await;
}
