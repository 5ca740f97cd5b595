//! The datacenter router: which server of which datacenter to ask.
//!
//! ```text
//!  WAN membership ─► set_members ─► per-DC server lists (order kept across updates,
//!                                   newcomers inserted at a seeded random place)
//!  route("dc2") ─► alive servers of dc2, preferred first ─► caller tries them in order
//!  notify_failed("dc2", addr) ─► that server moves to the back, so the next call tries another
//!  datacenters_by_distance ─► local DC first, then by median Vivaldi RTT, unmeasured last
//! ```
//! I/O-free: the server feeds it from WAN gossip and reports failures; nothing here sleeps
//! or opens sockets, so it is tested with plain unit tests.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::coordinate::Coordinate;

/// A server of some datacenter, as WAN membership shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Node name, without the `.<dc>` suffix of the WAN member name.
    pub name: String,
    /// Its datacenter.
    pub dc: String,
    /// Where its RPC listener is, `ip:port`.
    pub rpc_addr: String,
    /// Whether WAN gossip sees it alive.
    pub alive: bool,
}

/// Why a datacenter cannot be routed to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No server of that datacenter was ever seen.
    #[error("unknown datacenter {0:?}")]
    UnknownDatacenter(String),
    /// Servers are known but none is alive.
    #[error("no healthy server in datacenter {0:?}")]
    NoHealthyServer(String),
}

/// Per-datacenter server lists with a preference order.
#[derive(Debug, Clone)]
pub struct Router {
    local_dc: String,
    rng: u64,
    dcs: BTreeMap<String, Vec<ServerInfo>>,
}

impl Router {
    /// A router for a server of `local_dc`; `seed` drives where new servers are placed.
    pub fn new(local_dc: &str, seed: u64) -> Router {
        Router { local_dc: local_dc.to_owned(), rng: seed, dcs: BTreeMap::new() }
    }

    /// The local datacenter's name.
    pub fn local_dc(&self) -> &str {
        &self.local_dc
    }

    fn next(&mut self) -> u64 {
        // SplitMix64: small, seeded, good enough to spread load.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Replaces the membership. Servers already known keep their place (and so a server that
    /// failed stays at the back); new ones go to a random place; departed ones are dropped.
    pub fn set_members(&mut self, servers: impl IntoIterator<Item = ServerInfo>) {
        let mut by_dc: BTreeMap<String, Vec<ServerInfo>> = BTreeMap::new();
        for s in servers {
            by_dc.entry(s.dc.clone()).or_default().push(s);
        }
        let mut out = BTreeMap::new();
        for (dc, fresh) in by_dc {
            let old = self.dcs.remove(&dc).unwrap_or_default();
            let mut list: Vec<ServerInfo> =
                old.iter().filter_map(|o| fresh.iter().find(|f| f.name == o.name).cloned()).collect();
            for f in fresh {
                if !list.iter().any(|s| s.name == f.name) {
                    let at = (self.next() % (list.len() as u64 + 1)) as usize;
                    list.insert(at, f);
                }
            }
            out.insert(dc, list);
        }
        self.dcs = out;
    }

    /// RPC addresses of `dc`'s alive servers, the preferred one first.
    pub fn route(&self, dc: &str) -> Result<Vec<String>, RouteError> {
        let list = self.dcs.get(dc).ok_or_else(|| RouteError::UnknownDatacenter(dc.to_owned()))?;
        let addrs: Vec<String> = list.iter().filter(|s| s.alive).map(|s| s.rpc_addr.clone()).collect();
        if addrs.is_empty() {
            return Err(RouteError::NoHealthyServer(dc.to_owned()));
        }
        Ok(addrs)
    }

    /// `addr` of `dc` did not answer: it goes to the back of the list.
    pub fn notify_failed(&mut self, dc: &str, addr: &str) {
        if let Some(list) = self.dcs.get_mut(dc)
            && let Some(i) = list.iter().position(|s| s.rpc_addr == addr)
        {
            let s = list.remove(i);
            list.push(s);
        }
    }

    /// Reshuffles every list (spreads load again after failures healed).
    pub fn rebalance(&mut self, seed: u64) {
        self.rng ^= seed;
        let mut dcs = std::mem::take(&mut self.dcs);
        for list in dcs.values_mut() {
            for i in (1..list.len()).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                list.swap(i, j);
            }
        }
        self.dcs = dcs;
    }

    /// Every known datacenter (the local one included), by name.
    pub fn datacenters(&self) -> Vec<String> {
        let mut out: Vec<String> = self.dcs.keys().cloned().collect();
        if !out.contains(&self.local_dc) {
            out.push(self.local_dc.clone());
            out.sort();
        }
        out
    }

    /// The servers of `dc` in preference order.
    pub fn servers(&self, dc: &str) -> Vec<ServerInfo> {
        self.dcs.get(dc).cloned().unwrap_or_default()
    }

    /// Median estimated RTT from `local` to `dc`'s servers that have a coordinate (the upper
    /// middle for an even count, as Consul computes it); `None` when none has one.
    pub fn median_rtt(
        &self,
        dc: &str,
        local: &Coordinate,
        coord_of: impl Fn(&str, &str) -> Option<Coordinate>,
    ) -> Option<Duration> {
        let mut rtts: Vec<Duration> = self
            .dcs
            .get(dc)?
            .iter()
            .filter_map(|s| coord_of(dc, &s.name))
            .filter_map(|c| local.checked_distance_to(&c))
            .collect();
        if rtts.is_empty() {
            return None;
        }
        rtts.sort();
        Some(rtts[rtts.len() / 2])
    }

    /// Datacenters nearest first: the local one, then by median RTT (ties by name), then
    /// those without coordinates by name.
    pub fn datacenters_by_distance(
        &self,
        local: Option<&Coordinate>,
        coord_of: impl Fn(&str, &str) -> Option<Coordinate>,
    ) -> Vec<String> {
        let mut measured = Vec::new();
        let mut unmeasured = Vec::new();
        for dc in self.datacenters() {
            if dc == self.local_dc {
                continue;
            }
            match local.and_then(|l| self.median_rtt(&dc, l, &coord_of)) {
                Some(rtt) => measured.push((rtt, dc)),
                None => unmeasured.push(dc),
            }
        }
        measured.sort();
        let mut out = vec![self.local_dc.clone()];
        out.extend(measured.into_iter().map(|(_, dc)| dc));
        out.extend(unmeasured);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinate::Config;

    fn server(dc: &str, name: &str, port: u16, alive: bool) -> ServerInfo {
        ServerInfo { name: name.into(), dc: dc.into(), rpc_addr: format!("127.0.0.1:{port}"), alive }
    }

    fn coord_at(x: f64) -> Coordinate {
        let mut c = Coordinate::new(&Config::default());
        c.vec[0] = x;
        c
    }

    #[test]
    fn routes_alive_servers_and_fails_over_to_the_next() {
        let mut r = Router::new("dc1", 7);
        r.set_members([
            server("dc2", "a", 1, true),
            server("dc2", "b", 2, true),
            server("dc2", "c", 3, false),
        ]);
        let first = r.route("dc2").unwrap();
        assert_eq!(first.len(), 2, "the dead server is not offered");
        r.notify_failed("dc2", &first[0]);
        let second = r.route("dc2").unwrap();
        assert_eq!(second[0], first[1]);
        assert_eq!(second[1], first[0]);
        // A membership refresh keeps the failed server at the back.
        r.set_members([
            server("dc2", "a", 1, true),
            server("dc2", "b", 2, true),
            server("dc2", "c", 3, false),
        ]);
        assert_eq!(r.route("dc2").unwrap(), second);
    }

    #[test]
    fn unknown_and_unhealthy_datacenters_are_told_apart() {
        let mut r = Router::new("dc1", 1);
        r.set_members([server("dc3", "x", 9, false)]);
        assert_eq!(r.route("dc2"), Err(RouteError::UnknownDatacenter("dc2".into())));
        assert_eq!(r.route("dc3"), Err(RouteError::NoHealthyServer("dc3".into())));
        assert_eq!(r.datacenters(), vec!["dc1", "dc3"]);
        r.set_members([]);
        assert_eq!(r.route("dc3"), Err(RouteError::UnknownDatacenter("dc3".into())));
    }

    #[test]
    fn datacenters_sort_by_median_rtt_with_the_local_one_first() {
        let mut r = Router::new("dc1", 3);
        r.set_members([
            server("dc1", "l", 1, true),
            server("dc2", "a", 2, true),
            server("dc2", "b", 3, true),
            server("dc3", "c", 4, true),
            server("dc4", "d", 5, true),
            server("dc0", "e", 6, true),
        ]);
        let coords = |dc: &str, name: &str| match (dc, name) {
            ("dc2", "a") => Some(coord_at(0.010)),
            ("dc2", "b") => Some(coord_at(0.050)),
            ("dc3", "c") => Some(coord_at(0.020)),
            _ => None,
        };
        let local = coord_at(0.0);
        // dc2's median (upper middle of 10 ms and 50 ms) is 50 ms, dc3's 20 ms.
        assert_eq!(r.datacenters_by_distance(Some(&local), coords), vec!["dc1", "dc3", "dc2", "dc0", "dc4"]);
        let m = r.median_rtt("dc2", &local, coords).unwrap();
        assert!(m > Duration::from_millis(45) && m < Duration::from_millis(55), "{m:?}");
        // Without a local coordinate: local first, the rest by name.
        assert_eq!(r.datacenters_by_distance(None, coords), vec!["dc1", "dc0", "dc2", "dc3", "dc4"]);
    }

    #[test]
    fn rebalance_keeps_the_same_servers() {
        let mut r = Router::new("dc1", 5);
        let all: Vec<ServerInfo> = (0..6).map(|i| server("dc2", &format!("s{i}"), i, true)).collect();
        r.set_members(all.clone());
        r.rebalance(99);
        let mut got = r.route("dc2").unwrap();
        got.sort();
        let mut want: Vec<String> = all.iter().map(|s| s.rpc_addr.clone()).collect();
        want.sort();
        assert_eq!(got, want);
    }
}
