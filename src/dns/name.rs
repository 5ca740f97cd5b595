//! The query-name parser: which lookup a question asks for. Pure; labels in, a [`Target`]
//! out. Follows Consul's parser: the label before the domain is the lookup kind (`service`,
//! `node`, `addr`, ...) or, once, a datacenter name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which of the agent's domains a name is in; answers use the domain asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    Primary,
    Alt,
}

/// A lookup inside one of the domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The domain itself (SOA, NS).
    Apex,
    /// `<node>.node[.<dc>]`.
    Node(String),
    /// `[<tag>.]<service>.service[.<dc>]` and `_<service>._<tag|tcp>[.service][.<dc>]`.
    Service { name: String, tag: Option<String> },
    /// `<hexip>.addr[.<dc>]`.
    Addr(IpAddr),
    /// `<query>.query[.<dc>]` and `_<query>._<proto>.query[.<dc>]`: a prepared query by
    /// ID or name (names may contain dots).
    Query(String),
    /// A form Sekisho does not implement (`connect`, `ingress`, `virtual`).
    Unsupported(&'static str),
    /// A valid form qualified with a datacenter other than the local one: answered by a
    /// server of that datacenter.
    OtherDatacenter(String, Box<Lookup>),
    /// Nothing this name could mean.
    Invalid,
}

/// What a question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A name in `domain` or `alt_domain`.
    Zone(Domain, Lookup),
    /// A name under `in-addr.arpa` or `ip6.arpa`; `None` when it is not a whole address.
    Reverse(Option<IpAddr>),
    /// Anything else: forwarded to the recursors, or REFUSED.
    External,
}

/// The domains this agent answers for, and its datacenter.
#[derive(Debug, Clone)]
pub(crate) struct Zones {
    domain: Vec<String>,
    alt: Option<Vec<String>>,
    datacenter: String,
}

fn split(domain: &str) -> Vec<String> {
    domain.trim_end_matches('.').split('.').filter(|l| !l.is_empty()).map(str::to_ascii_lowercase).collect()
}

impl Zones {
    pub(crate) fn new(domain: &str, alt: Option<&str>, datacenter: &str) -> Zones {
        Zones { domain: split(domain), alt: alt.map(split), datacenter: datacenter.to_ascii_lowercase() }
    }

    /// Classifies a question by its lowercase labels (root excluded). `srv` tells whether
    /// the question type is SRV, which makes `.service` optional in RFC 2782 names.
    pub(crate) fn classify(&self, labels: &[String], srv: bool) -> Target {
        if let Some(rest) = self.strip_domain(labels) {
            let (domain, rest) = rest;
            return Target::Zone(domain, self.lookup(rest, srv));
        }
        match labels {
            [rest @ .., a, b] if a == "in-addr" && b == "arpa" => Target::Reverse(reverse_v4(rest)),
            [rest @ .., a, b] if a == "ip6" && b == "arpa" => Target::Reverse(reverse_v6(rest)),
            _ => Target::External,
        }
    }

    /// The labels before the longest matching domain, and which domain it was.
    fn strip_domain<'l>(&self, labels: &'l [String]) -> Option<(Domain, &'l [String])> {
        let mut candidates = vec![(Domain::Primary, &self.domain)];
        if let Some(alt) = &self.alt {
            candidates.push((Domain::Alt, alt));
        }
        candidates.sort_by_key(|(_, d)| std::cmp::Reverse(d.len()));
        candidates.into_iter().find_map(|(which, d)| {
            let n = labels.len().checked_sub(d.len())?;
            (labels[n..] == d[..]).then(|| (which, &labels[..n]))
        })
    }

    fn lookup(&self, labels: &[String], srv: bool) -> Lookup {
        if labels.is_empty() {
            return Lookup::Apex;
        }
        let mut labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let mut dc: Option<&str> = None;
        loop {
            let Some(&last) = labels.last() else { return Lookup::Invalid };
            if srv && last.starts_with('_') {
                labels.push("service");
                continue;
            }
            let found = match last {
                "service" => service(&labels),
                "node" => node(&labels),
                "addr" => addr(&labels),
                "query" => query(&labels),
                "connect" | "ingress" | "virtual" => {
                    if labels.len() < 2 {
                        Lookup::Invalid
                    } else {
                        Lookup::Unsupported(kind_name(last))
                    }
                }
                other => {
                    if dc.is_some() {
                        return Lookup::Invalid;
                    }
                    dc = Some(other);
                    labels.pop();
                    continue;
                }
            };
            return match dc {
                Some(dc) if found != Lookup::Invalid && dc != self.datacenter => {
                    Lookup::OtherDatacenter(dc.to_owned(), Box::new(found))
                }
                _ => found,
            };
        }
    }
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "connect" => "connect",
        "ingress" => "ingress",
        _ => "virtual",
    }
}

/// `labels` ends with `service`.
fn service(labels: &[&str]) -> Lookup {
    let n = labels.len();
    if n < 2 {
        return Lookup::Invalid;
    }
    if n == 3 && labels[0].starts_with('_') && labels[1].starts_with('_') {
        let name = &labels[0][1..];
        let tag = &labels[1][1..];
        if name.is_empty() || tag.is_empty() {
            return Lookup::Invalid;
        }
        let tag = (tag != "tcp").then(|| tag.to_owned());
        return Lookup::Service { name: name.to_owned(), tag };
    }
    let tag = (n >= 3).then(|| labels[..n - 2].join("."));
    Lookup::Service { name: labels[n - 2].to_owned(), tag }
}

/// `labels` ends with `query`. As in Consul, when the first and the last labels before it
/// start with `_` it is an RFC 2782 name (`_<query>._<proto>`), else every label is the name.
fn query(labels: &[&str]) -> Lookup {
    let parts = &labels[..labels.len() - 1];
    let name = match parts {
        [] => return Lookup::Invalid,
        [first, .., last] if first.starts_with('_') && last.starts_with('_') => {
            parts[..parts.len() - 1].join(".")[1..].to_owned()
        }
        _ => parts.join("."),
    };
    if name.is_empty() { Lookup::Invalid } else { Lookup::Query(name) }
}

/// `labels` ends with `node`; node names may contain dots.
fn node(labels: &[&str]) -> Lookup {
    if labels.len() < 2 {
        return Lookup::Invalid;
    }
    Lookup::Node(labels[..labels.len() - 1].join("."))
}

/// `labels` is `[<hexip>, "addr"]`.
fn addr(labels: &[&str]) -> Lookup {
    let [hex, _] = labels else { return Lookup::Invalid };
    let Some(bytes) = decode_hex(hex) else { return Lookup::Invalid };
    if let Ok(b) = <[u8; 4]>::try_from(bytes.as_slice()) {
        return Lookup::Addr(IpAddr::V4(Ipv4Addr::from(b)));
    }
    match <[u8; 16]>::try_from(bytes.as_slice()) {
        Ok(b) => Lookup::Addr(IpAddr::V6(Ipv6Addr::from(b))),
        Err(_) => Lookup::Invalid,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Lowercase hex of an address, the first label of its `.addr.` name.
pub(crate) fn encode_hex(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `d.c.b.a` (the labels before `in-addr.arpa`) → `a.b.c.d`.
fn reverse_v4(labels: &[String]) -> Option<IpAddr> {
    if labels.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, l) in labels.iter().rev().enumerate() {
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = l.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// 32 nibbles, least significant first (the labels before `ip6.arpa`).
fn reverse_v6(labels: &[String]) -> Option<IpAddr> {
    if labels.len() != 32 {
        return None;
    }
    let mut value: u128 = 0;
    for l in labels.iter().rev() {
        let [c] = l.as_bytes() else { return None };
        let nibble = (*c as char).to_digit(16)?;
        value = (value << 4) | u128::from(nibble);
    }
    Some(IpAddr::V6(Ipv6Addr::from(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Vec<String> {
        name.trim_end_matches('.').split('.').map(str::to_owned).collect()
    }

    fn zone(name: &str, srv: bool) -> Target {
        Zones::new("consul", Some("procube.jp"), "dc1").classify(&labels(name), srv)
    }

    fn svc(name: &str, tag: Option<&str>) -> Lookup {
        Lookup::Service { name: name.into(), tag: tag.map(Into::into) }
    }

    #[test]
    fn names_map_to_lookups_as_consul_parses_them() {
        use Domain::*;
        let cases: Vec<(&str, bool, Target)> = vec![
            ("consul", false, Target::Zone(Primary, Lookup::Apex)),
            ("procube.jp", false, Target::Zone(Alt, Lookup::Apex)),
            ("web.service.consul", false, Target::Zone(Primary, svc("web", None))),
            ("web.service.dc1.consul", false, Target::Zone(Primary, svc("web", None))),
            ("v1.web.service.consul", false, Target::Zone(Primary, svc("web", Some("v1")))),
            ("a.b.web.service.consul", false, Target::Zone(Primary, svc("web", Some("a.b")))),
            ("_web._tcp.service.consul", false, Target::Zone(Primary, svc("web", None))),
            ("_web._v1.service.dc1.consul", false, Target::Zone(Primary, svc("web", Some("v1")))),
            ("_web._tcp.consul", true, Target::Zone(Primary, svc("web", None))),
            ("_web._v1.dc1.procube.jp", true, Target::Zone(Alt, svc("web", Some("v1")))),
            ("db1.node.consul", false, Target::Zone(Primary, Lookup::Node("db1".into()))),
            ("db1.example.node.dc1.consul", false, Target::Zone(Primary, Lookup::Node("db1.example".into()))),
            (
                "7f000001.addr.dc1.consul",
                false,
                Target::Zone(Primary, Lookup::Addr("127.0.0.1".parse().unwrap())),
            ),
            (
                "20010db8000000000000000000000001.addr.consul",
                false,
                Target::Zone(Primary, Lookup::Addr("2001:db8::1".parse().unwrap())),
            ),
            (
                "web.service.dc2.consul",
                false,
                Target::Zone(
                    Primary,
                    Lookup::OtherDatacenter(
                        "dc2".into(),
                        Box::new(Lookup::Service { name: "web".into(), tag: None }),
                    ),
                ),
            ),
            ("x.query.consul", false, Target::Zone(Primary, Lookup::Query("x".into()))),
            ("a.b.query.dc1.consul", false, Target::Zone(Primary, Lookup::Query("a.b".into()))),
            ("_geo-db._tcp.query.consul", true, Target::Zone(Primary, Lookup::Query("geo-db".into()))),
            ("_a.b._tcp.query.consul", false, Target::Zone(Primary, Lookup::Query("a.b".into()))),
            ("_x.query.consul", false, Target::Zone(Primary, Lookup::Query("_x".into()))),
            (
                "x.query.dc2.consul",
                false,
                Target::Zone(
                    Primary,
                    Lookup::OtherDatacenter("dc2".into(), Box::new(Lookup::Query("x".into()))),
                ),
            ),
            ("query.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("web.connect.consul", false, Target::Zone(Primary, Lookup::Unsupported("connect"))),
            ("web.ingress.consul", false, Target::Zone(Primary, Lookup::Unsupported("ingress"))),
            ("web.virtual.consul", false, Target::Zone(Primary, Lookup::Unsupported("virtual"))),
            ("service.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("node.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("foo.bar.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("web.service.dc1.extra.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("xyz.addr.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("7f0001.addr.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("a.7f000001.addr.consul", false, Target::Zone(Primary, Lookup::Invalid)),
            ("1.0.0.127.in-addr.arpa", false, Target::Reverse(Some("127.0.0.1".parse().unwrap()))),
            ("0.127.in-addr.arpa", false, Target::Reverse(None)),
            ("300.0.0.127.in-addr.arpa", false, Target::Reverse(None)),
            ("example.com", false, Target::External),
            ("consul.example.com", false, Target::External),
            ("jp", false, Target::External),
        ];
        for (name, srv, want) in cases {
            assert_eq!(zone(name, srv), want, "{name}");
        }
    }

    #[test]
    fn ip6_arpa_names_reverse_all_32_nibbles() {
        let name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(zone(name, false), Target::Reverse(Some("2001:db8::1".parse().unwrap())));
        assert_eq!(zone("1.0.ip6.arpa", false), Target::Reverse(None));
        assert_eq!(zone(&name.replace("8.b.d", "8.x.d"), false), Target::Reverse(None));
    }

    #[test]
    fn the_longer_domain_wins_when_one_contains_the_other() {
        let z = Zones::new("consul", Some("dc1.consul"), "dc1");
        assert_eq!(z.classify(&labels("dc1.consul"), false), Target::Zone(Domain::Alt, Lookup::Apex));
        assert_eq!(
            z.classify(&labels("web.service.dc1.consul"), false),
            Target::Zone(Domain::Alt, svc("web", None))
        );
    }

    #[test]
    fn hex_round_trips() {
        for ip in ["10.0.0.1", "2001:db8::ff"] {
            let ip: IpAddr = ip.parse().unwrap();
            let name = format!("{}.addr.consul", encode_hex(ip));
            assert_eq!(zone(&name, false), Target::Zone(Domain::Primary, Lookup::Addr(ip)));
        }
    }
}
