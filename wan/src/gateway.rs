//! Federation gateways, the I/O-free part: read the server name (SNI) from a TLS
//! ClientHello without terminating TLS, tell what it names, and pick where to send it.
//!
//! ```text
//!  bytes of a new connection ─► client_hello_sni ─► "server.dc2.consul"
//!     ─► classify_sni(domain) ─► Target::Server{dc2} | Target::Node{node, dc2} | Target::Gateway{dc2}
//!     ─► RoutingTable::route ─► Local(servers of this DC) | Remote(gateways of dc2) | Unroutable
//! ```
//! The gateway then splices the connection, ClientHello included, to the first target that
//! accepts it: the inner TLS session (mutual, `server.<dc>.<domain>` verified) runs end to
//! end between the two servers, and the gateway never holds a key that could read it.

use std::collections::BTreeMap;

/// The most ClientHello bytes a gateway buffers before giving up.
pub const MAX_HELLO: usize = 64 * 1024;

/// Why no server name could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniError {
    /// More bytes are needed.
    #[error("incomplete ClientHello")]
    Incomplete,
    /// Not a TLS handshake.
    #[error("not a TLS ClientHello")]
    NotTls,
    /// A ClientHello whose structure is broken.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    /// A ClientHello without a server name.
    #[error("the ClientHello names no server (SNI)")]
    NoServerName,
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SniError> {
        if self.b.len() < n {
            return Err(SniError::Malformed("truncated field"));
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }
    fn u8(&mut self) -> Result<usize, SniError> {
        Ok(usize::from(self.take(1)?[0]))
    }
    fn u16(&mut self) -> Result<usize, SniError> {
        let b = self.take(2)?;
        Ok(usize::from(b[0]) << 8 | usize::from(b[1]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], SniError> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], SniError> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// The server name of the TLS ClientHello at the start of `buf` (which may hold more
/// bytes). [`SniError::Incomplete`] asks for more input; the hello may span several records.
pub fn client_hello_sni(buf: &[u8]) -> Result<String, SniError> {
    // Reassemble the handshake message from TLS records (type 22).
    let mut hs = Vec::new();
    let mut at = 0;
    loop {
        if buf.len() < at + 5 {
            return Err(if buf.is_empty() || buf[0] == 22 { SniError::Incomplete } else { SniError::NotTls });
        }
        if buf[at] != 22 || buf[at + 1] != 3 {
            return Err(SniError::NotTls);
        }
        let len = usize::from(buf[at + 3]) << 8 | usize::from(buf[at + 4]);
        if len == 0 || len > 16384 + 2048 {
            return Err(SniError::Malformed("record length"));
        }
        if buf.len() < at + 5 + len {
            return Err(SniError::Incomplete);
        }
        hs.extend_from_slice(&buf[at + 5..at + 5 + len]);
        at += 5 + len;
        if hs.len() >= 4 {
            if hs[0] != 1 {
                return Err(SniError::NotTls);
            }
            let body = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
            if body > MAX_HELLO {
                return Err(SniError::Malformed("ClientHello too large"));
            }
            if hs.len() >= 4 + body {
                return hello_sni(&hs[4..4 + body]);
            }
        }
    }
}

fn hello_sni(body: &[u8]) -> Result<String, SniError> {
    let mut r = Reader { b: body };
    r.take(2)?; // client version
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    if r.b.is_empty() {
        return Err(SniError::NoServerName);
    }
    let mut ext = Reader { b: r.vec16()? };
    while !ext.b.is_empty() {
        let kind = ext.u16()?;
        let data = ext.vec16()?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader { b: Reader { b: data }.vec16()? };
        while !list.b.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                let s =
                    std::str::from_utf8(name).map_err(|_| SniError::Malformed("server name is not text"))?;
                if s.is_empty()
                    || !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
                {
                    return Err(SniError::Malformed("server name characters"));
                }
                return Ok(s.to_ascii_lowercase());
            }
        }
    }
    Err(SniError::NoServerName)
}

/// What a server name asks a gateway for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `server.<dc>.<domain>`: any server of `dc`.
    Server {
        /// The datacenter.
        dc: String,
    },
    /// `<node>.server.<dc>.<domain>`: that server of `dc`.
    Node {
        /// The server's node name.
        node: String,
        /// The datacenter.
        dc: String,
    },
    /// `gateway.<dc>.<domain>`: a gateway of `dc` itself.
    Gateway {
        /// The datacenter.
        dc: String,
    },
}

impl Target {
    /// The datacenter named.
    pub fn dc(&self) -> &str {
        match self {
            Target::Server { dc } | Target::Node { dc, .. } | Target::Gateway { dc } => dc,
        }
    }
}

/// Reads `sni` under `domain` (`consul`), `None` for names a gateway does not route.
pub fn classify_sni(sni: &str, domain: &str) -> Option<Target> {
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    let sni = sni.trim_end_matches('.').to_ascii_lowercase();
    let rest = sni.strip_suffix(&domain)?.strip_suffix('.')?;
    let labels: Vec<&str> = rest.split('.').collect();
    let ok = |s: &str| !s.is_empty();
    match labels.as_slice() {
        ["server", dc] if ok(dc) => Some(Target::Server { dc: (*dc).to_owned() }),
        ["gateway", dc] if ok(dc) => Some(Target::Gateway { dc: (*dc).to_owned() }),
        [node, "server", dc] if ok(node) && ok(dc) => {
            Some(Target::Node { node: (*node).to_owned(), dc: (*dc).to_owned() })
        }
        _ => None,
    }
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Servers of this gateway's datacenter, to try in order.
    Local(Vec<String>),
    /// Gateways of another datacenter, to try in order.
    Remote(Vec<String>),
    /// Nowhere: unknown datacenter or server, or nothing known there.
    Unroutable(String),
}

/// A gateway's routing table: its datacenter's servers and the other datacenters' gateways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingTable {
    /// This gateway's datacenter.
    pub datacenter: String,
    /// `(node name, RPC address)` of this datacenter's servers (the name may be empty).
    pub servers: Vec<(String, String)>,
    /// Gateway addresses of other datacenters.
    pub remote: BTreeMap<String, Vec<String>>,
}

impl RoutingTable {
    /// The route of `target`; `rotate` spreads connections over the servers or gateways.
    pub fn route(&self, target: &Target, rotate: usize) -> Route {
        let spread = |list: Vec<String>| {
            let n = list.len().max(1);
            let mut l = list;
            l.rotate_left(rotate % n);
            l
        };
        let dc = target.dc();
        if dc != self.datacenter {
            return match self.remote.get(dc).filter(|g| !g.is_empty()) {
                Some(g) => Route::Remote(spread(g.clone())),
                None => Route::Unroutable(format!("no gateway known for datacenter {dc:?}")),
            };
        }
        match target {
            Target::Gateway { .. } => Route::Unroutable("this gateway serves no endpoint of its own".into()),
            Target::Server { .. } if self.servers.is_empty() => {
                Route::Unroutable(format!("no server of {dc:?} is known"))
            }
            Target::Server { .. } => {
                Route::Local(spread(self.servers.iter().map(|(_, a)| a.clone()).collect()))
            }
            Target::Node { node, .. } => {
                match self.servers.iter().find(|(n, _)| n.eq_ignore_ascii_case(node)) {
                    Some((_, a)) => Route::Local(vec![a.clone()]),
                    None => Route::Unroutable(format!("no server {node:?} in {dc:?}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal TLS 1.2-style ClientHello naming `name`, split over `records` records.
    fn hello(name: Option<&str>, records: usize) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one cipher suite
        body.extend([1, 0]); // null compression
        let mut exts = Vec::new();
        exts.extend([0, 10, 0, 4, 0, 2, 0, 29]); // supported_groups first
        if let Some(n) = name {
            let n = n.as_bytes();
            let entry_len = 3 + n.len();
            exts.extend([0, 0]);
            exts.extend(((entry_len + 2) as u16).to_be_bytes());
            exts.extend((entry_len as u16).to_be_bytes());
            exts.push(0);
            exts.extend((n.len() as u16).to_be_bytes());
            exts.extend(n);
        }
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut out = Vec::new();
        let chunk = hs.len().div_ceil(records);
        for part in hs.chunks(chunk) {
            out.extend([22, 3, 1]);
            out.extend((part.len() as u16).to_be_bytes());
            out.extend(part);
        }
        out
    }

    #[test]
    fn reads_the_server_name_even_across_records_and_asks_for_more_when_short() {
        let h = hello(Some("Server.DC2.consul"), 1);
        assert_eq!(client_hello_sni(&h), Ok("server.dc2.consul".into()));
        let split = hello(Some("node-1.server.dc2.consul"), 3);
        assert_eq!(client_hello_sni(&split), Ok("node-1.server.dc2.consul".into()));
        for cut in [0, 3, 5, 20, split.len() - 1] {
            assert_eq!(client_hello_sni(&split[..cut]), Err(SniError::Incomplete), "cut at {cut}");
        }
        let mut more = h.clone();
        more.extend([23, 3, 3, 0, 1, 0]); // whatever follows is ignored
        assert_eq!(client_hello_sni(&more), Ok("server.dc2.consul".into()));
    }

    #[test]
    fn garbage_and_nameless_hellos_are_refused() {
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n\r\n"), Err(SniError::NotTls));
        assert_eq!(client_hello_sni(&hello(None, 1)), Err(SniError::NoServerName));
        let mut bad = hello(Some("server.dc2.consul"), 1);
        let n = bad.len();
        bad[n - 3] = b'/';
        assert!(matches!(client_hello_sni(&bad), Err(SniError::Malformed(_))));
        // Arbitrary bytes never panic.
        let mut seed = 1u64;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if i < 2 { [22, 3][i] } else { (seed >> 33) as u8 }
                })
                .collect();
            let _ = client_hello_sni(&junk);
        }
    }

    #[test]
    fn names_are_classified_under_the_domain() {
        let c = |s| classify_sni(s, "consul");
        assert_eq!(c("server.dc2.consul"), Some(Target::Server { dc: "dc2".into() }));
        assert_eq!(c("s1.server.dc2.consul."), Some(Target::Node { node: "s1".into(), dc: "dc2".into() }));
        assert_eq!(c("gateway.dc3.consul"), Some(Target::Gateway { dc: "dc3".into() }));
        assert_eq!(c("server.dc2.example.com"), None);
        assert_eq!(c("client.dc2.consul"), None);
        assert_eq!(c("a.b.server.dc2.consul"), None);
        assert_eq!(
            classify_sni("server.dc2.corp.example", "corp.example."),
            Some(Target::Server { dc: "dc2".into() })
        );
    }

    #[test]
    fn routes_local_servers_remote_gateways_or_nowhere() {
        let t = RoutingTable {
            datacenter: "dc1".into(),
            servers: vec![("s1".into(), "10.0.0.1:8300".into()), ("s2".into(), "10.0.0.2:8300".into())],
            remote: BTreeMap::from([("dc2".to_owned(), vec!["192.0.2.1:8443".to_owned()])]),
        };
        let server = |dc: &str| Target::Server { dc: dc.into() };
        assert_eq!(
            t.route(&server("dc1"), 1),
            Route::Local(vec!["10.0.0.2:8300".into(), "10.0.0.1:8300".into()])
        );
        assert_eq!(t.route(&server("dc2"), 5), Route::Remote(vec!["192.0.2.1:8443".into()]));
        assert!(matches!(t.route(&server("dc9"), 0), Route::Unroutable(_)));
        let node = |n: &str| Target::Node { node: n.into(), dc: "dc1".into() };
        assert_eq!(t.route(&node("S2"), 0), Route::Local(vec!["10.0.0.2:8300".into()]));
        assert!(matches!(t.route(&node("s9"), 0), Route::Unroutable(_)));
        assert!(matches!(t.route(&Target::Gateway { dc: "dc1".into() }, 0), Route::Unroutable(_)));
    }
}
