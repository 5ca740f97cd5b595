//! Fitting a reply to its transport, as Consul's `trimUDPResponse`/`trimTCPResponse` do.
//!
//! Over UDP without EDNS the answer count is capped at `min(8, udp_answer_limit)` and the
//! message at 512 bytes; with EDNS only the advertised size applies. Answers are cut from
//! the end (they are already shuffled), the authority section goes first when the message
//! is too big, and SRV glue in the additional section follows the SRV records kept. TCP is
//! only held to the 64 KiB message limit. The caller sets TC when [`fit`] cut answers and
//! `enable_truncate` is on.

use std::collections::HashSet;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, EmitAndCount, MessageType, Metadata, OpCode, emit_message_parts};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::BinEncoder;

use super::answer::Reply;

/// Consul's hard cap on answers in a UDP response without EDNS.
const MAX_UDP_ANSWERS: usize = 8;
/// RFC 1035's UDP message limit without EDNS.
const PLAIN_UDP_SIZE: usize = 512;
/// The largest UDP payload worth sending (Consul: 65535 minus IP and UDP headers).
const MAX_UDP_SIZE: usize = 65535 - 68;
/// A DNS message over TCP.
const MAX_TCP_SIZE: usize = 65535;

/// How much a response may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) max_size: usize,
    pub(crate) max_answers: Option<usize>,
}

impl Budget {
    /// UDP: the EDNS payload size when the client sent one above 512, else 512 bytes and at
    /// most `min(8, udp_answer_limit)` answers.
    pub(crate) fn udp(edns_payload: Option<u16>, udp_answer_limit: u32) -> Budget {
        match edns_payload.map(usize::from) {
            Some(size) if size > PLAIN_UDP_SIZE => {
                Budget { max_size: size.min(MAX_UDP_SIZE), max_answers: None }
            }
            _ => Budget {
                max_size: PLAIN_UDP_SIZE,
                max_answers: Some(MAX_UDP_ANSWERS.min(udp_answer_limit as usize)),
            },
        }
    }

    /// TCP: everything that fits in one message.
    pub(crate) fn tcp() -> Budget {
        Budget { max_size: MAX_TCP_SIZE, max_answers: None }
    }
}

/// The question section exactly as the client sent it (hickory echoes these bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Questions<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) count: usize,
}

impl EmitAndCount for Questions<'_> {
    fn emit(&mut self, encoder: &mut BinEncoder<'_>) -> Result<usize, ProtoError> {
        encoder.emit_vec(self.bytes)?;
        Ok(self.count)
    }
}

/// Cuts `reply` until it fits `budget`; returns whether any answer was cut.
pub(crate) fn fit(reply: &mut Reply, questions: Questions<'_>, edns: Option<&Edns>, budget: Budget) -> bool {
    let before = reply.answers.len();
    let srv_glue = reply
        .answers
        .iter()
        .any(|r| matches!(r.data, RData::SRV(_)))
        .then(|| std::mem::take(&mut reply.additionals));
    let sync = |reply: &mut Reply| {
        if let Some(glue) = &srv_glue {
            reply.additionals = glue_for(&reply.answers, glue);
        }
    };
    let mut keep = budget.max_answers.map_or(before, |max| before.min(max));
    reply.answers.truncate(keep);
    sync(reply);
    if keep > 1 && encoded_len(reply, questions, edns) > budget.max_size {
        reply.authorities.clear();
        let all = std::mem::take(&mut reply.answers);
        let fits = |n: usize, reply: &mut Reply| {
            reply.answers = all[..n].to_vec();
            sync(reply);
            encoded_len(reply, questions, edns) <= budget.max_size
        };
        // The largest count that fits; one answer is sent even when it alone is too big.
        let (mut lo, mut hi) = (1, keep);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid, reply) { lo = mid } else { hi = mid - 1 }
        }
        keep = lo;
        reply.answers = all[..keep].to_vec();
        sync(reply);
    }
    while !reply.additionals.is_empty() && encoded_len(reply, questions, edns) > budget.max_size {
        reply.additionals.pop();
    }
    keep < before
}

/// The glue records naming a target of one of the SRV `answers`.
fn glue_for(answers: &[Record], glue: &[Record]) -> Vec<Record> {
    let targets: HashSet<&Name> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(&srv.target),
            _ => None,
        })
        .collect();
    glue.iter().filter(|g| targets.contains(&g.name)).cloned().collect()
}

/// The size of `reply` on the wire, encoded as hickory will encode it.
pub(crate) fn encoded_len(reply: &Reply, questions: Questions<'_>, edns: Option<&Edns>) -> usize {
    let mut buf = Vec::with_capacity(PLAIN_UDP_SIZE);
    let mut encoder = BinEncoder::new(&mut buf);
    let metadata = Metadata::new(0, MessageType::Response, OpCode::Query);
    let emitted = emit_message_parts(
        &metadata,
        &mut questions.clone(),
        &mut reply.answers.iter(),
        &mut reply.authorities.iter(),
        &mut reply.additionals.iter(),
        edns,
        None,
        &mut encoder,
    );
    match emitted {
        Ok(_) => buf.len(),
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;

    fn question(name: &Name) -> Vec<u8> {
        Query::query(name.clone(), RecordType::A).to_bytes().unwrap()
    }

    fn a_reply(name: &Name, n: u8) -> Reply {
        let answers = (0..n)
            .map(|i| Record::from_rdata(name.clone(), 0, RData::A(A(Ipv4Addr::new(10, 0, 0, i)))))
            .collect();
        Reply { answers, ..Reply::default() }
    }

    #[test]
    fn plain_udp_caps_the_answer_count_and_edns_lifts_it() {
        let name = Name::from_ascii("web.service.consul.").unwrap();
        let q = question(&name);
        let qs = Questions { bytes: &q, count: 1 };
        let mut r = a_reply(&name, 20);
        assert!(fit(&mut r, qs, None, Budget::udp(None, 3)));
        assert_eq!(r.answers.len(), 3);

        let mut r = a_reply(&name, 20);
        let edns = Edns::new();
        assert!(!fit(&mut r, qs, Some(&edns), Budget::udp(Some(4096), 3)));
        assert_eq!(r.answers.len(), 20);

        let mut r = a_reply(&name, 20);
        assert!(!fit(&mut r, qs, None, Budget::tcp()));
        assert_eq!(r.answers.len(), 20);
    }

    #[test]
    fn answers_are_cut_to_the_byte_budget_and_glue_follows_the_srv_records_kept() {
        let name = Name::from_ascii("web.service.consul.").unwrap();
        let q = question(&name);
        let qs = Questions { bytes: &q, count: 1 };
        let mut reply = Reply::default();
        for i in 0..40u8 {
            let target = Name::from_ascii(format!("node-with-a-long-name-{i}.node.dc1.consul.")).unwrap();
            let srv = SRV::new(1, 1, 8080, target.clone());
            reply.answers.push(Record::from_rdata(name.clone(), 0, RData::SRV(srv)));
            reply.additionals.push(Record::from_rdata(target, 0, RData::A(A(Ipv4Addr::new(10, 0, 0, i)))));
        }
        let budget = Budget { max_size: 1232, max_answers: None };
        assert!(fit(&mut reply, qs, None, budget));
        assert!(encoded_len(&reply, qs, None) <= 1232);
        assert!(reply.answers.len() > 1 && reply.answers.len() < 40, "{}", reply.answers.len());
        assert_eq!(reply.additionals.len(), reply.answers.len());
        for (answer, glue) in reply.answers.iter().zip(&reply.additionals) {
            let RData::SRV(srv) = &answer.data else { panic!("not SRV") };
            assert_eq!(srv.target, glue.name);
        }
    }

    #[test]
    fn a_single_oversized_answer_is_still_sent() {
        let name = Name::from_ascii("web.service.consul.").unwrap();
        let q = question(&name);
        let qs = Questions { bytes: &q, count: 1 };
        let mut r = a_reply(&name, 2);
        assert!(fit(&mut r, qs, None, Budget { max_size: 20, max_answers: None }));
        assert_eq!(r.answers.len(), 1);
    }
}
