//! Malformed input: random bytes, truncated headers, bogus counts, responses sent as
//! questions and half-written TCP frames never crash or wedge the server.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::support::{expect_rcode, ip, ips, query, start, tcp_exchange};

/// How long to wait for an answer that may legitimately never come (dropped garbage).
const MAYBE: Duration = Duration::from_millis(200);

fn seed() -> u64 {
    std::env::var("SEKISHO_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

#[tokio::test]
async fn garbage_packets_never_stop_the_server() {
    let (agent, api, dns) = start().await;
    api.service("n1", "10.0.0.1", json!({"Service": "web", "Port": 80})).await;
    let seed = seed();
    eprintln!("garbage seed: {seed} (rerun with SEKISHO_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    tracing::info!("--- crafted packets");
    let mut valid = query("web.service.consul.", RecordType::A, None).to_vec().unwrap();
    let mut as_response = valid.clone();
    as_response[2] |= 0x80;
    let mut bogus_count = valid[..12].to_vec();
    bogus_count[4..6].copy_from_slice(&40u16.to_be_bytes());
    valid[5] = 2; // QDCOUNT 2 with only one question present
    let crafted: Vec<Vec<u8>> =
        vec![vec![], vec![0], vec![0; 11], vec![0xff; 12], bogus_count, as_response, valid];
    for packet in &crafted {
        if let Some(reply) = dns.udp_raw(packet, MAYBE).await {
            let m = Message::from_vec(&reply).expect("any reply is a well-formed message");
            assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "reply to {packet:?}: {m:?}");
        }
    }

    tracing::info!("--- random packets");
    for _ in 0..300 {
        let len = rng.random_range(0..700usize);
        let mut packet: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if len > 2 && rng.random_bool(0.5) {
            packet[2] &= 0x7f; // mostly "queries", so they get past the response filter
        }
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&packet, dns.addr).await.unwrap();
    }

    tracing::info!("--- TCP garbage: a bad frame, then a frame cut short");
    let mut stream = dns.tcp_connect().await;
    let _ = tcp_exchange(&mut stream, &[0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]).await;
    let mut half = dns.tcp_connect().await;
    let _ = half.write_all(&[0x01, 0x00, 0xab]).await;
    drop(half);

    tracing::info!("--- normal queries still work");
    let m = dns.udp("web.service.consul.", RecordType::A).await;
    expect_rcode(&m, ResponseCode::NoError);
    assert_eq!(ips(&m.answers), vec![ip("10.0.0.1")]);
    let t = dns.tcp("web.service.consul.", RecordType::A).await;
    assert_eq!(ips(&t.answers), vec![ip("10.0.0.1")]);
    agent.shutdown().await;
}

#[tokio::test]
async fn non_query_opcodes_are_not_implemented() {
    let (agent, _api, dns) = start().await;
    let mut m = query("consul.", RecordType::SOA, None);
    m.metadata.op_code = hickory_proto::op::OpCode::Notify;
    let (reply, _) = dns.udp_message(&m).await;
    expect_rcode(&reply, ResponseCode::NotImp);
    agent.shutdown().await;
}
