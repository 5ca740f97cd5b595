//! Records for each lookup, built from catalog data. Pure apart from the shuffle: no IO, no
//! hickory server types, so the rules (health filtering, weights, TTLs, SRV targets and
//! their glue, negative answers with the SOA) are unit-tested here.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;

use super::catalog::Instance;
use super::name::encode_hex;
use crate::config::DnsConfig;
use crate::state::types::{CRITICAL, Node, PASSING, WARNING};

/// How many servers an NS answer lists (Consul: 3).
const MAX_NAMESERVERS: usize = 3;
/// The longest TXT character-string.
const TXT_CHUNK: usize = 255;

/// A response before it is encoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    pub(crate) rcode: ResponseCode,
    pub(crate) authoritative: bool,
    pub(crate) recursion_available: bool,
    pub(crate) truncated: bool,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
    /// The OPT record to send; `None` derives it from the request (relayed answers carry
    /// the upstream one).
    pub(crate) edns: Option<Edns>,
}

impl Reply {
    /// An empty, non-authoritative reply with `rcode` (REFUSED, SERVFAIL, FORMERR).
    pub(crate) fn error(rcode: ResponseCode) -> Reply {
        Reply { rcode, ..Reply::default() }
    }

    fn authoritative(answers: Vec<Record>) -> Reply {
        Reply { authoritative: true, answers, ..Reply::default() }
    }
}

/// Builds answers for one question in one domain.
#[derive(Debug)]
pub(crate) struct Answerer<'a> {
    pub(crate) cfg: &'a DnsConfig,
    /// The local datacenter, as it appears in target names.
    pub(crate) datacenter: &'a str,
    /// The domain of the answer: the one asked (the primary one for PTR).
    pub(crate) domain: &'a Name,
    /// The question name, lowercase.
    pub(crate) qname: &'a Name,
    pub(crate) qtype: RecordType,
}

impl Answerer<'_> {
    /// The domain's SOA: `ns.<domain>. hostmaster.<domain>.`, serial = now (Consul's).
    pub(crate) fn soa(&self) -> Record {
        let serial = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32);
        let sub = |label: &str| self.domain.prepend_label(label).unwrap_or_else(|_| self.domain.clone());
        let c = self.cfg;
        let soa = SOA::new(
            sub("ns"),
            sub("hostmaster"),
            serial,
            clamp_i32(c.soa_refresh),
            clamp_i32(c.soa_retry),
            clamp_i32(c.soa_expire),
            c.soa_min_ttl,
        );
        Record::from_rdata(self.domain.clone(), c.soa_min_ttl, RData::SOA(soa))
    }

    /// An authoritative negative answer with the SOA in the authority section.
    pub(crate) fn negative(&self, rcode: ResponseCode) -> Reply {
        Reply { rcode, authoritative: true, authorities: vec![self.soa()], ..Reply::default() }
    }

    /// NXDOMAIN + SOA.
    pub(crate) fn nxdomain(&self) -> Reply {
        self.negative(ResponseCode::NXDomain)
    }

    /// NOERROR without answers + SOA (the name exists, the type does not).
    pub(crate) fn no_data(&self) -> Reply {
        self.negative(ResponseCode::NoError)
    }

    fn answer_or_no_data(&self, reply: Reply) -> Reply {
        if reply.answers.is_empty() { self.no_data() } else { reply }
    }

    /// `<node>.node[.<dc>].<domain>`: A/AAAA of the node address, TXT from its metadata.
    pub(crate) fn node(&self, node: Option<&Node>) -> Reply {
        let Some(node) = node else { return self.nxdomain() };
        let ttl = secs(self.cfg.node_ttl);
        let mut reply = Reply::authoritative(address_records(self.qname, &node.address, ttl, self.qtype));
        let meta = meta_txt(self.qname, node, ttl);
        if matches!(self.qtype, RecordType::TXT | RecordType::ANY) {
            reply.answers.extend(meta);
        } else if !reply.answers.is_empty() && self.cfg.enable_additional_node_meta_txt {
            reply.additionals = meta;
        }
        self.answer_or_no_data(reply)
    }

    /// `<hexip>.addr[.<dc>].<domain>`.
    pub(crate) fn addr(&self, ip: IpAddr) -> Reply {
        let ttl = secs(self.cfg.node_ttl);
        let answers =
            if type_matches(ip, self.qtype) { vec![ip_record(self.qname, ip, ttl)] } else { vec![] };
        self.answer_or_no_data(Reply::authoritative(answers))
    }

    /// Reverse lookup: PTR to `<node>.node.<dc>.<domain>.` for each node with this address.
    /// `None` when no node has it (the caller may recurse).
    pub(crate) fn ptr(&self, nodes: &[Node]) -> Option<Reply> {
        if nodes.is_empty() {
            return None;
        }
        if !matches!(self.qtype, RecordType::PTR | RecordType::ANY) {
            return Some(self.no_data());
        }
        let ttl = secs(self.cfg.node_ttl);
        let answers = nodes
            .iter()
            .filter_map(|n| self.node_fqdn(&n.node))
            .map(|target| Record::from_rdata(self.qname.clone(), ttl, RData::PTR(PTR(target))))
            .collect();
        Some(self.answer_or_no_data(Reply::authoritative(answers)))
    }

    /// `[<tag>.]<service>.service[.<dc>].<domain>`: healthy instances, shuffled; SRV when asked.
    pub(crate) fn service(&self, name: &str, instances: Vec<Instance>) -> Reply {
        let mut healthy: Vec<(Instance, u16)> =
            instances.into_iter().filter_map(|i| weight(&i, self.cfg.only_passing).map(|w| (i, w))).collect();
        if healthy.is_empty() {
            return self.nxdomain();
        }
        healthy.shuffle(&mut rand::rng());
        let ttl = secs(service_ttl(self.cfg, name));
        let reply = match self.qtype {
            RecordType::SRV => self.srv_records(&healthy, ttl),
            _ => self.service_addresses(&healthy, ttl),
        };
        self.answer_or_no_data(reply)
    }

    /// `<query>.query[.<dc>].<domain>`: a prepared query's results with `ttl`, in the order
    /// the execution gave them (shuffled, or nearest first); SRV when asked. The query has
    /// filtered health already (it may ignore some checks), so nothing is left out here.
    pub(crate) fn prepared_query(&self, results: Vec<Instance>, ttl: std::time::Duration) -> Reply {
        if results.is_empty() {
            return self.nxdomain();
        }
        let weighted: Vec<(Instance, u16)> = results
            .into_iter()
            .map(|i| {
                let w = query_weight(&i);
                (i, w)
            })
            .collect();
        let ttl = secs(ttl);
        let reply = match self.qtype {
            RecordType::SRV => self.srv_records(&weighted, ttl),
            _ => self.service_addresses(&weighted, ttl),
        };
        self.answer_or_no_data(reply)
    }

    fn service_addresses(&self, healthy: &[(Instance, u16)], ttl: u32) -> Reply {
        let limit = self.cfg.a_record_limit as usize;
        let mut seen = HashSet::new();
        let mut answers = Vec::new();
        let mut count = 0;
        for (inst, _) in healthy {
            let addr = service_address(inst);
            if !seen.insert(addr) {
                continue;
            }
            let records = address_records(self.qname, addr, ttl, self.qtype);
            if !records.is_empty() {
                answers.extend(records);
                count += 1;
                if limit > 0 && count >= limit {
                    break;
                }
            }
        }
        Reply::authoritative(answers)
    }

    fn srv_records(&self, healthy: &[(Instance, u16)], ttl: u32) -> Reply {
        let mut reply = Reply::authoritative(Vec::new());
        let mut seen = HashSet::new();
        let mut glued = HashSet::new();
        for (inst, weight) in healthy {
            let addr = service_address(inst);
            if !seen.insert((addr, inst.service.port)) {
                continue;
            }
            let (target, glue) = self.srv_target(inst, addr, ttl);
            let srv = SRV::new(1, *weight, inst.service.port, target.clone());
            reply.answers.push(Record::from_rdata(self.qname.clone(), ttl, RData::SRV(srv)));
            if glued.insert(target) {
                reply.additionals.extend(glue);
            }
        }
        reply
    }

    /// The SRV target of an instance and the records that resolve it: the node's name when
    /// the instance uses the node's address, else `<hexip>.addr.<dc>.<domain>.`, else (a
    /// host name) the host name itself, left to the client to resolve.
    fn srv_target(&self, inst: &Instance, addr: &str, ttl: u32) -> (Name, Vec<Record>) {
        let ip = addr.parse::<IpAddr>().ok();
        let on_node = inst.service.address.is_empty() || inst.service.address == inst.node.address;
        if on_node && let Some(target) = self.node_fqdn(&inst.node.node) {
            let mut glue = address_records(&target, addr, ttl, RecordType::ANY);
            if self.cfg.enable_additional_node_meta_txt {
                glue.extend(meta_txt(&target, &inst.node, ttl));
            }
            return (target, glue);
        }
        if let Some(ip) = ip {
            let target = self.addr_fqdn(ip);
            let glue = vec![ip_record(&target, ip, ttl)];
            return (target, glue);
        }
        let target = Name::from_ascii(addr).map(|mut n| {
            n.set_fqdn(true);
            n
        });
        (target.unwrap_or_else(|_| Name::root()), Vec::new())
    }

    /// The domain apex: SOA and NS, naming up to three healthy servers with their glue.
    pub(crate) fn apex(&self, servers: Vec<Instance>) -> Reply {
        let (ns, glue) = self.nameservers(servers);
        let reply = match self.qtype {
            RecordType::SOA => {
                Reply { authorities: ns, additionals: glue, ..Reply::authoritative(vec![self.soa()]) }
            }
            RecordType::NS => Reply { additionals: glue, ..Reply::authoritative(ns) },
            RecordType::ANY => {
                let mut answers = vec![self.soa()];
                answers.extend(ns);
                Reply { additionals: glue, ..Reply::authoritative(answers) }
            }
            _ => Reply::authoritative(Vec::new()),
        };
        self.answer_or_no_data(reply)
    }

    fn nameservers(&self, servers: Vec<Instance>) -> (Vec<Record>, Vec<Record>) {
        let mut servers: Vec<Instance> = servers.into_iter().filter(|i| weight(i, false).is_some()).collect();
        servers.shuffle(&mut rand::rng());
        let ttl = secs(self.cfg.node_ttl);
        let (mut ns, mut glue, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
        for inst in servers {
            if ns.len() >= MAX_NAMESERVERS {
                break;
            }
            let Some(target) = self.node_fqdn(&inst.node.node) else { continue };
            if !seen.insert(target.clone()) {
                continue;
            }
            glue.extend(address_records(&target, &inst.node.address, ttl, RecordType::ANY));
            if self.cfg.enable_additional_node_meta_txt {
                glue.extend(meta_txt(&target, &inst.node, ttl));
            }
            ns.push(Record::from_rdata(self.domain.clone(), ttl, RData::NS(NS(target))));
        }
        (ns, glue)
    }

    /// `<node>.node.<dc>.<domain>.`, or `None` when the node name cannot be a DNS name.
    fn node_fqdn(&self, node: &str) -> Option<Name> {
        let mut labels: Vec<&str> = node.split('.').collect();
        labels.extend(["node", self.datacenter]);
        Name::from_labels(labels.iter().map(|l| l.as_bytes())).ok()?.append_domain(self.domain).ok()
    }

    /// `<hexip>.addr.<dc>.<domain>.`.
    fn addr_fqdn(&self, ip: IpAddr) -> Name {
        let hex = encode_hex(ip);
        Name::from_labels([hex.as_bytes(), b"addr", self.datacenter.as_bytes()])
            .and_then(|n| n.append_domain(self.domain))
            .unwrap_or_else(|_| self.domain.clone())
    }
}

/// The SRV weight of a healthy instance, or `None` when it must be left out: any critical
/// check (node or service, maintenance included), or any non-passing one with `only_passing`.
/// Weights follow Consul: `Weights.Warning` when a check warns, `Weights.Passing` otherwise.
pub(crate) fn weight(inst: &Instance, only_passing: bool) -> Option<u16> {
    let mut warning = false;
    let mut other = false;
    for c in &inst.checks {
        match c.status.as_str() {
            CRITICAL => return None,
            PASSING => {}
            _ if only_passing => return None,
            WARNING => warning = true,
            _ => other = true,
        }
    }
    let w = &inst.service.weights;
    let weight = if warning {
        w.warning
    } else if other {
        1
    } else {
        w.passing
    };
    Some(u16::try_from(weight).unwrap_or(u16::MAX))
}

/// The SRV weight of a prepared-query result, as Consul's `findWeight`: 0 in maintenance,
/// 1 with a critical check (one the query ignores) or an unknown status, `Weights.Warning`
/// with a warning check, `Weights.Passing` otherwise.
pub(crate) fn query_weight(inst: &Instance) -> u16 {
    let (mut maintenance, mut critical, mut warning, mut unknown) = (false, false, false, false);
    for c in &inst.checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            PASSING => {}
            WARNING => warning = true,
            CRITICAL => critical = true,
            _ => unknown = true,
        }
    }
    let w = &inst.service.weights;
    let weight = if unknown {
        1
    } else if maintenance {
        0
    } else if critical {
        1
    } else if warning {
        w.warning
    } else {
        w.passing
    };
    u16::try_from(weight).unwrap_or(u16::MAX)
}

/// `service_ttl`: an exact name beats the longest matching `prefix*`, which beats `*`.
pub(crate) fn service_ttl(cfg: &DnsConfig, service: &str) -> std::time::Duration {
    let service = service.to_ascii_lowercase();
    let mut best: Option<(usize, std::time::Duration)> = None;
    for (pattern, ttl) in &cfg.service_ttl {
        let pattern = pattern.to_ascii_lowercase();
        let rank = match pattern.strip_suffix('*') {
            None if pattern == service => usize::MAX,
            None => continue,
            Some(prefix) if service.starts_with(prefix) => prefix.len(),
            Some(_) => continue,
        };
        if best.is_none_or(|(r, _)| rank > r) {
            best = Some((rank, *ttl));
        }
    }
    best.map_or(std::time::Duration::ZERO, |(_, ttl)| ttl)
}

fn service_address(inst: &Instance) -> &str {
    if inst.service.address.is_empty() { &inst.node.address } else { &inst.service.address }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn type_matches(ip: IpAddr, qtype: RecordType) -> bool {
    matches!(
        (ip, qtype),
        (_, RecordType::ANY) | (IpAddr::V4(_), RecordType::A) | (IpAddr::V6(_), RecordType::AAAA)
    )
}

fn ip_record(name: &Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), ttl, data)
}

/// The records `name` gets for `addr` when asked `qtype`: A or AAAA for an IP of that family,
/// a CNAME for a host name (A, AAAA and ANY questions), nothing otherwise.
fn address_records(name: &Name, addr: &str, ttl: u32, qtype: RecordType) -> Vec<Record> {
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return if type_matches(ip, qtype) { vec![ip_record(name, ip, ttl)] } else { vec![] };
    }
    if addr.is_empty() || !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) {
        return vec![];
    }
    match Name::from_ascii(addr) {
        Ok(mut target) => {
            target.set_fqdn(true);
            vec![Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target)))]
        }
        Err(_) => vec![],
    }
}

/// Node metadata as TXT records: `key=value` (RFC 1464), or the bare value for keys
/// starting with `rfc1035-`.
fn meta_txt(name: &Name, node: &Node, ttl: u32) -> Vec<Record> {
    let Some(meta) = &node.meta else { return vec![] };
    meta.iter()
        .map(|(k, v)| {
            let text = if k.to_ascii_lowercase().starts_with("rfc1035-") { v.clone() } else { rfc1464(k, v) };
            Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(chunks(&text))))
        })
        .collect()
}

/// RFC 1464 `key=value`: backquote `` ` `` and `=` in the key and its leading and trailing
/// spaces, and `` ` `` in the value.
pub(crate) fn rfc1464(key: &str, value: &str) -> String {
    let key = key.replace('`', "``").replace('=', "`=");
    let lead = key.len() - key.trim_start_matches(' ').len();
    let trail = key.len() - key.trim_end_matches(' ').len();
    let key = if lead == key.len() {
        "` ".repeat(lead)
    } else {
        format!("{}{}{}", "` ".repeat(lead), key.trim_matches(' '), "` ".repeat(trail))
    };
    format!("{key}={}", value.replace('`', "``"))
}

/// Splits text into TXT character-strings of at most 255 bytes, on character boundaries.
fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > TXT_CHUNK {
            out.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests;
