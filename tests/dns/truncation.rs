//! UDP answers fitted to 512 bytes or the EDNS size, with TC when `enable_truncate`; TCP
//! carries everything; `a_record_limit` caps both.

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::{Api, ips, srvs, start, start_with};

const INSTANCES: usize = 20;

async fn register_many(api: &Api) {
    for i in 1..=INSTANCES {
        let node = format!("web-node-with-a-rather-long-name-{i:02}");
        api.service(&node, &format!("10.0.1.{i}"), json!({"Service": "web", "Port": 8000 + i})).await;
    }
}

#[tokio::test]
async fn udp_answers_are_cut_with_tc_and_tcp_returns_everything() {
    let (agent, api, dns) = start().await;
    register_many(&api).await;

    let udp = dns.udp("web.service.consul.", RecordType::A).await;
    assert_eq!(udp.answers.len(), 3, "udp_answer_limit (default 3) without EDNS");
    assert!(udp.metadata.truncation, "TC set so resolvers retry over TCP");

    let tcp = dns.tcp("web.service.consul.", RecordType::A).await;
    assert_eq!(ips(&tcp.answers).len(), INSTANCES);
    assert!(!tcp.metadata.truncation);

    let (edns, _) = dns.udp_edns("web.service.consul.", RecordType::A, 4096).await;
    assert_eq!(edns.answers.len(), INSTANCES, "EDNS lifts the answer count limit");
    assert!(!edns.metadata.truncation);
    assert!(edns.edns.is_some(), "an EDNS question gets an OPT record back");

    let srv_udp = dns.udp("web.service.consul.", RecordType::SRV).await;
    assert_eq!(srvs(&srv_udp).len(), 3);
    assert!(srv_udp.metadata.truncation);
    let glue_targets: Vec<String> = srv_udp.additionals.iter().map(|r| r.name.to_ascii()).collect();
    let mut srv_targets: Vec<String> = srvs(&srv_udp).into_iter().map(|(t, _, _)| t).collect();
    let mut glue_sorted = glue_targets.clone();
    glue_sorted.sort();
    srv_targets.sort();
    assert_eq!(glue_sorted, srv_targets, "glue only for the SRV records kept");

    let srv_tcp = dns.tcp("web.service.consul.", RecordType::SRV).await;
    assert_eq!(srvs(&srv_tcp).len(), INSTANCES);
    assert_eq!(ips(&srv_tcp.additionals).len(), INSTANCES);
    agent.shutdown().await;
}

#[tokio::test]
async fn udp_answers_fit_the_edns_size_in_bytes() {
    let (agent, api, dns) = start().await;
    register_many(&api).await;
    let (m, size) = dns.udp_edns("web.service.consul.", RecordType::SRV, 700).await;
    assert!(size <= 700, "response of {size} bytes exceeds the advertised 700");
    let kept = srvs(&m).len();
    assert!(kept > 1 && kept < INSTANCES, "{kept} SRV records kept");
    assert!(m.metadata.truncation);
    assert_eq!(ips(&m.additionals).len(), kept, "glue follows the SRV records kept");
    agent.shutdown().await;
}

#[tokio::test]
async fn without_enable_truncate_the_cut_is_silent() {
    let (agent, api, dns) = start_with(|cfg, _| cfg.dns.enable_truncate = false).await;
    register_many(&api).await;
    let udp = dns.udp("web.service.consul.", RecordType::A).await;
    assert_eq!(udp.answers.len(), 3);
    assert!(!udp.metadata.truncation, "Consul's default: no TC");
    agent.shutdown().await;
}

#[tokio::test]
async fn a_record_limit_caps_udp_and_tcp() {
    let (agent, api, dns) = start_with(|cfg, _| {
        cfg.dns.a_record_limit = 5;
        cfg.dns.udp_answer_limit = 8;
    })
    .await;
    register_many(&api).await;
    assert_eq!(dns.tcp("web.service.consul.", RecordType::A).await.answers.len(), 5);
    let (edns, _) = dns.udp_edns("web.service.consul.", RecordType::A, 4096).await;
    assert_eq!(edns.answers.len(), 5);
    let plain = dns.udp("web.service.consul.", RecordType::A).await;
    assert_eq!(plain.answers.len(), 5);
    assert!(!plain.metadata.truncation, "a_record_limit is not a cut for TC purposes");
    assert_eq!(
        srvs(&dns.tcp("web.service.consul.", RecordType::SRV).await).len(),
        INSTANCES,
        "SRV is not capped"
    );
    agent.shutdown().await;
}
