//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and crash regressions
//! (`fuzz/regressions/<target>/`) through the fuzz targets' entry points, on stable Rust.
//!
//! `generate_seed_corpus` (ignored) rewrites the binary seeds made by the code's own encoders;
//! `fuzz/seeds/text_seeds.py` writes the text ones. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

use sekisho::fuzzing;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        out.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()));
    }
    out.sort();
    out
}

fn replay(target: &str, min: usize, f: fn(&[u8])) {
    let files = inputs(target);
    assert!(files.len() >= min, "{target}: {} inputs, expected at least {min}", files.len());
    for path in files {
        if std::env::var_os("FUZZ_CORPUS_VERBOSE").is_some() {
            eprintln!("{target}: {}", path.display());
        }
        let data = std::fs::read(&path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| f(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
    }
}

#[test]
fn http_request() {
    replay("http_request", 20, fuzzing::http_request);
}

#[test]
fn dns_packet() {
    replay("dns_packet", 5, fuzzing::dns_packet);
}

#[test]
fn config_text() {
    replay("config_text", 10, fuzzing::config_text);
}

#[test]
fn acl_rules() {
    replay("acl_rules", 3, fuzzing::acl_rules);
}

#[test]
fn gossip_packet() {
    replay("gossip_packet", 10, fuzzing::gossip_packet);
}

#[test]
fn rpc_frame() {
    replay("rpc_frame", 10, fuzzing::rpc_frame);
}

#[test]
fn snapshot_archive() {
    replay("snapshot_archive", 3, fuzzing::snapshot_archive);
}

/// DNS queries as a resolver sends them: the first byte picks UDP (0) or TCP (1).
fn dns_seeds() -> Vec<(String, Vec<u8>)> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let questions: &[(&str, &str, RecordType, bool)] = &[
        ("web_a", "web.service.consul.", RecordType::A, false),
        ("web_srv", "web.service.consul.", RecordType::SRV, true),
        ("web_tag_srv", "_web._primary.service.consul.", RecordType::SRV, false),
        ("web_rfc2782", "_web._tcp.service.dc1.consul.", RecordType::SRV, true),
        ("tag_a", "primary.web.service.consul.", RecordType::A, false),
        ("node_a", "db1.node.consul.", RecordType::A, false),
        ("node_dc_any", "db1.node.dc1.consul.", RecordType::ANY, false),
        ("node_txt", "db1.node.consul.", RecordType::TXT, false),
        ("ptr", "5.0.1.10.in-addr.arpa.", RecordType::PTR, false),
        (
            "ptr6",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
            RecordType::PTR,
            false,
        ),
        ("addr", "0a010005.addr.dc1.consul.", RecordType::A, false),
        ("query", "web-query.query.consul.", RecordType::SRV, false),
        ("soa", "consul.", RecordType::SOA, false),
        ("ns", "consul.", RecordType::NS, false),
        ("other_dc", "web.service.dc2.consul.", RecordType::A, false),
        ("external", "example.com.", RecordType::A, false),
        ("axfr", "consul.", RecordType::AXFR, false),
        ("missing", "nope.service.consul.", RecordType::AAAA, false),
    ];
    let mut out = Vec::new();
    for (i, (name, qname, qtype, edns)) in questions.iter().enumerate() {
        let mut m = Message::new(0x1200 + i as u16, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(qname).expect("name"), *qtype));
        if *edns {
            let mut e = Edns::new();
            e.set_max_payload(4096);
            m.edns = Some(e);
        }
        let bytes = m.to_vec().expect("query encodes");
        let tcp = u8::from(i % 3 == 0);
        let mut input = vec![tcp];
        input.extend_from_slice(&bytes);
        out.push((format!("{name}_{}", if tcp == 1 { "tcp" } else { "udp" }), input));
    }
    out
}

#[test]
#[ignore = "rewrites fuzz/corpus: run by hand when the encoders change"]
fn generate_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus");
    let mut seeds = fuzzing::generated_seeds();
    seeds.extend(dns_seeds().into_iter().map(|(n, b)| ("dns_packet", n, b)));
    for (target, name, bytes) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed_{name}")), bytes).expect("write seed");
    }
}
