//! `<query>.query[.<dc>].consul`: prepared queries answered by their execution (tags,
//! health, templates), with the query's `DNS.TTL` or the service's `service_ttl`.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::{expect_rcode, ip, ips, srvs, start_with};

#[tokio::test]
async fn queries_answer_by_name_id_template_and_srv() {
    let (agent, api, dns) = start_with(|cfg, _| {
        cfg.dns.service_ttl = [("web".to_string(), Duration::from_secs(3))].into_iter().collect();
    })
    .await;
    api.service("n1", "10.0.0.1", json!({"Service": "web", "Port": 80, "Tags": ["stable"]})).await;
    api.service("n2", "10.0.0.2", json!({"Service": "web", "Port": 81, "Tags": ["canary"]})).await;
    let unknown = dns.udp("stable-web.query.consul.", RecordType::A).await;
    expect_rcode(&unknown, ResponseCode::NXDomain);

    let v = api
        .post(
            "/v1/query",
            &json!({"Name": "stable-web", "Service": {"Service": "web", "Tags": ["!canary"]},
            "DNS": {"TTL": "7s"}}),
        )
        .await;
    let id = v["ID"].as_str().expect("query ID").to_string();
    for name in ["stable-web.query.consul.", "Stable-Web.Query.Consul.", "stable-web.query.dc1.consul."] {
        let m = dns.udp(name, RecordType::A).await;
        expect_rcode(&m, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "{name}");
        assert_eq!(ips(&m.answers), vec![ip("10.0.0.1")], "{name}");
        assert_eq!(m.answers[0].ttl, 7, "{name}: the query's DNS.TTL");
    }
    let by_id = dns.udp(&format!("{id}.query.consul."), RecordType::A).await;
    assert_eq!(ips(&by_id.answers), vec![ip("10.0.0.1")]);
    let srv = dns.udp("_stable-web._tcp.query.consul.", RecordType::SRV).await;
    assert_eq!(srvs(&srv), vec![("n1.node.dc1.consul.".to_string(), 80, 1)]);
    assert_eq!(ips(&srv.additionals), vec![ip("10.0.0.1")], "the target's address as glue");

    tracing::info!("--- a catch-all template: any name is a service, TTL from service_ttl");
    api.post(
        "/v1/query",
        &json!({"Name": "", "Template": {"Type": "name_prefix_match"},
        "Service": {"Service": "${name.full}"}}),
    )
    .await;
    let m = dns.udp("web.query.consul.", RecordType::A).await;
    assert_eq!(ips(&m.answers), vec![ip("10.0.0.1"), ip("10.0.0.2")]);
    assert!(m.answers.iter().all(|r| r.ttl == 3), "service_ttl for the selected service: {m:?}");
    expect_rcode(&dns.udp("nothing.query.consul.", RecordType::A).await, ResponseCode::NXDomain);
    expect_rcode(&dns.udp("query.consul.", RecordType::A).await, ResponseCode::NXDomain);

    tracing::info!("--- n1's check turns critical: the static query has nothing left");
    api.register(json!({"Node": "n1", "Address": "10.0.0.1",
        "Check": {"CheckID": "web-down", "Name": "web down", "Status": "critical", "ServiceID": "web"}}))
        .await;
    expect_rcode(&dns.udp("stable-web.query.consul.", RecordType::A).await, ResponseCode::NXDomain);
    assert_eq!(ips(&dns.udp("web.query.consul.", RecordType::A).await.answers), vec![ip("10.0.0.2")]);
    agent.shutdown().await;
}
