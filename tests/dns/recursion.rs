//! Names outside the domains: REFUSED without `recursors`, forwarded (RA set) with them.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::support::{expect_rcode, ip, ips, start, start_with};

/// A stand-in upstream server on 127.0.0.1 (UDP and TCP on one port) that answers every
/// question with `answer` and response code `rcode`. It runs until the test's runtime ends.
async fn fake_recursor(answer: Ipv4Addr, rcode: ResponseCode) -> SocketAddr {
    let (udp, tcp) = sekisho::dns::bind("127.0.0.1:0".parse().unwrap()).await.expect("bind fake recursor");
    let addr = udp.local_addr().unwrap();
    tokio::spawn(serve_udp(udp, answer, rcode));
    tokio::spawn(serve_tcp(tcp, answer, rcode));
    addr
}

fn reply_to(bytes: &[u8], answer: Ipv4Addr, rcode: ResponseCode) -> Option<Vec<u8>> {
    let q = Message::from_vec(bytes).ok()?;
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_queries(q.queries.clone());
    if rcode == ResponseCode::NoError {
        let name = q.queries.first()?.name().clone();
        m.add_answer(Record::from_rdata(name, 60, RData::A(A(answer))));
    }
    m.to_vec().ok()
}

async fn serve_udp(socket: UdpSocket, answer: Ipv4Addr, rcode: ResponseCode) {
    let mut buf = vec![0u8; 4096];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        if let Some(reply) = reply_to(&buf[..n], answer, rcode) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, answer: Ipv4Addr, rcode: ResponseCode) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(len) = stream.read_u16().await else { return };
            let mut buf = vec![0u8; usize::from(len)];
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            if let Some(reply) = reply_to(&buf, answer, rcode) {
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                let _ = stream.write_all(&framed).await;
            }
        });
    }
}

#[tokio::test]
async fn names_outside_the_domain_are_refused_without_recursors() {
    let (agent, _api, dns) = start().await;
    let m = dns.udp("www.example.com.", RecordType::A).await;
    expect_rcode(&m, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
    assert!(m.answers.is_empty());
    agent.shutdown().await;
}

#[tokio::test]
async fn recursors_answer_names_outside_the_domain_with_ra_set() {
    let upstream = fake_recursor(Ipv4Addr::new(192, 0, 2, 10), ResponseCode::NoError).await;
    let (agent, api, dns) = start_with(|cfg, _| cfg.recursors = vec![upstream.to_string()]).await;
    api.service("n1", "10.0.0.1", serde_json::json!({"Service": "web", "Port": 80})).await;

    let udp = dns.udp("www.example.com.", RecordType::A).await;
    expect_rcode(&udp, ResponseCode::NoError);
    assert!(udp.metadata.recursion_available);
    assert_eq!(ips(&udp.answers), vec![ip("192.0.2.10")]);
    assert_eq!(udp.answers[0].name.to_ascii(), "www.example.com.");

    let tcp = dns.tcp("www.example.com.", RecordType::A).await;
    assert_eq!(ips(&tcp.answers), vec![ip("192.0.2.10")], "forwarded over TCP too");

    let ptr_miss = dns.udp("9.9.9.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(ptr_miss.metadata.recursion_available);
    assert_eq!(ips(&ptr_miss.answers), vec![ip("192.0.2.10")], "a PTR miss goes to the recursors");

    let local = dns.udp("web.service.consul.", RecordType::A).await;
    assert!(local.metadata.recursion_available, "RA on every answer once recursors exist");
    assert_eq!(ips(&local.answers), vec![ip("10.0.0.1")]);
    agent.shutdown().await;
}

#[tokio::test]
async fn failing_recursors_are_skipped_in_order() {
    let broken = fake_recursor(Ipv4Addr::new(192, 0, 2, 66), ResponseCode::ServFail).await;
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let good = fake_recursor(Ipv4Addr::new(192, 0, 2, 20), ResponseCode::NoError).await;
    let (agent, _api, dns) = start_with(|cfg, _| {
        cfg.recursors = vec![broken.to_string(), silent_addr.to_string(), good.to_string()];
        cfg.dns.recursor_timeout = Duration::from_millis(300);
    })
    .await;
    let m = dns.udp("www.example.org.", RecordType::A).await;
    expect_rcode(&m, ResponseCode::NoError);
    assert_eq!(ips(&m.answers), vec![ip("192.0.2.20")]);
    agent.shutdown().await;
    drop(silent);

    let (agent, _api, dns) = start_with(|cfg, _| {
        cfg.recursors = vec![broken.to_string()];
    })
    .await;
    let m = dns.udp("www.example.org.", RecordType::A).await;
    expect_rcode(&m, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available);
    agent.shutdown().await;
}
