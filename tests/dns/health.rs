//! Health filtering: critical checks (maintenance included) take an instance out of every
//! answer and it returns when they clear; warnings stay unless `only_passing`.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::{expect_rcode, ip, ips, srvs, start, start_with};

#[tokio::test]
async fn a_node_in_maintenance_leaves_service_answers_and_comes_back() {
    let (agent, api, dns) = start().await;
    api.service("n1", "10.0.0.1", json!({"Service": "db", "Port": 5432})).await;
    api.service("n2", "10.0.0.2", json!({"Service": "db", "Port": 5432})).await;
    let both = vec![ip("10.0.0.1"), ip("10.0.0.2")];
    assert_eq!(ips(&dns.udp("db.service.consul.", RecordType::A).await.answers), both);

    tracing::info!("--- n1 enters maintenance");
    api.register(json!({"Node": "n1", "Address": "10.0.0.1", "Check": {
        "CheckID": "_node_maintenance", "Name": "Node Maintenance Mode", "Status": "critical",
        "Notes": "reboot",
    }}))
    .await;
    assert_eq!(ips(&dns.udp("db.service.consul.", RecordType::A).await.answers), vec![ip("10.0.0.2")]);
    assert_eq!(srvs(&dns.udp("db.service.consul.", RecordType::SRV).await).len(), 1);
    let node = dns.udp("n1.node.consul.", RecordType::A).await;
    assert_eq!(ips(&node.answers), vec![ip("10.0.0.1")], "node lookups ignore health, as in Consul");

    tracing::info!("--- n1 leaves maintenance");
    api.deregister(json!({"Node": "n1", "CheckID": "_node_maintenance"})).await;
    assert_eq!(ips(&dns.udp("db.service.consul.", RecordType::A).await.answers), both);

    tracing::info!("--- the db instance on n2 enters service maintenance");
    api.register(json!({"Node": "n2", "Address": "10.0.0.2", "Check": {
        "CheckID": "_service_maintenance:db", "Name": "Service Maintenance Mode", "Status": "critical",
        "ServiceID": "db",
    }}))
    .await;
    assert_eq!(ips(&dns.udp("db.service.consul.", RecordType::A).await.answers), vec![ip("10.0.0.1")]);

    tracing::info!("--- both out: NXDOMAIN");
    api.register(json!({"Node": "n1", "Address": "10.0.0.1", "Check": {
        "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "critical",
    }}))
    .await;
    expect_rcode(&dns.udp("db.service.consul.", RecordType::A).await, ResponseCode::NXDomain);
    agent.shutdown().await;
}

async fn register_web_with_a_warning(api: &crate::support::Api) {
    api.register(json!({"Node": "n1", "Address": "10.0.0.1",
        "Service": {"Service": "web", "Port": 80, "Weights": {"Passing": 10, "Warning": 1}},
        "Check": {"CheckID": "web-ok", "Name": "ok", "Status": "passing", "ServiceID": "web"}}))
        .await;
    api.register(json!({"Node": "n2", "Address": "10.0.0.2",
        "Service": {"Service": "web", "Port": 80, "Weights": {"Passing": 10, "Warning": 1}},
        "Check": {"CheckID": "web-slow", "Name": "slow", "Status": "warning", "ServiceID": "web"}}))
        .await;
}

#[tokio::test]
async fn warning_instances_stay_with_the_warning_weight() {
    let (agent, api, dns) = start().await;
    register_web_with_a_warning(&api).await;
    let m = dns.udp("web.service.consul.", RecordType::SRV).await;
    assert_eq!(
        srvs(&m),
        vec![("n1.node.dc1.consul.".to_string(), 80, 10), ("n2.node.dc1.consul.".to_string(), 80, 1)]
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn only_passing_drops_warning_instances() {
    let (agent, api, dns) = start_with(|cfg, _| cfg.dns.only_passing = true).await;
    register_web_with_a_warning(&api).await;
    assert_eq!(ips(&dns.udp("web.service.consul.", RecordType::A).await.answers), vec![ip("10.0.0.1")]);

    api.register(json!({"Node": "n1", "Address": "10.0.0.1",
        "Check": {"CheckID": "web-ok", "Name": "ok", "Status": "warning", "ServiceID": "web"}}))
        .await;
    expect_rcode(&dns.udp("web.service.consul.", RecordType::A).await, ResponseCode::NXDomain);
    agent.shutdown().await;
}
