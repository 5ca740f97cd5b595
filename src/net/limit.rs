//! Pure admission cores shared by the HTTP, RPC and DNS listeners: a per-IP count of open
//! connections, a token bucket, token buckets per client IP, and a per-IP log throttle. Each
//! takes `now` so tests drive time by hand; the listeners own the locking and the IO.
//!
//! ```text
//!  accept ─► PerIpConns::try_acquire(ip) ─► Some(IpPermit): serve (dropped on close)
//!                                        └► None: over limits.*_max_conns_per_client
//!  request ─► TokenBucket::try_take(now) ─► Ok: go on │ Err(wait): 429 Retry-After
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The address a client is counted by: IPv4-mapped IPv6 addresses count as their IPv4 form.
pub fn client_key(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Open connections per client IP, at most `max` each (0: no limit, nothing tracked).
#[derive(Debug)]
pub struct PerIpConns {
    max: u32,
    open: parking_lot::Mutex<HashMap<IpAddr, u32>>,
}

impl PerIpConns {
    /// A counter allowing `max` concurrent connections per IP (0 disables the limit).
    pub fn new(max: u32) -> Arc<PerIpConns> {
        Arc::new(PerIpConns { max, open: parking_lot::Mutex::default() })
    }

    /// Counts a new connection from `ip`; `None` when `ip` already has `max` open.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        if self.max == 0 {
            return Some(IpPermit { conns: None, ip });
        }
        let ip = client_key(ip);
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpPermit { conns: Some(self.clone()), ip })
    }

    /// How many connections `ip` has open (0 when the limit is disabled).
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open.lock().get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// How many client IPs have connections open (the map's size).
    pub fn clients(&self) -> usize {
        self.open.lock().len()
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct IpPermit {
    conns: Option<Arc<PerIpConns>>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        if let Some(c) = &self.conns {
            c.release(self.ip);
        }
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`; it starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` per second up to `burst` (both at least a tiny
    /// positive amount, so a bucket always refills eventually).
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let rate = rate.max(1e-9);
        let burst = burst.max(1.0);
        TokenBucket { rate, burst, tokens: burst, last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    /// Whether the bucket is full at `now` (an idle client, indistinguishable from a new one).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Token buckets by client IP, with a bounded map: when `max_clients` IPs are tracked, idle
/// (full) buckets are dropped, and if none is idle the newcomers share one overflow bucket,
/// so spoofed source addresses cannot grow memory without bound.
#[derive(Debug)]
pub struct PerIpBuckets {
    rate: f64,
    burst: f64,
    max_clients: usize,
    buckets: HashMap<IpAddr, TokenBucket>,
    overflow: TokenBucket,
}

impl PerIpBuckets {
    /// `rate` per second and `burst` per IP, tracking at most `max_clients` IPs.
    pub fn new(rate: f64, burst: f64, max_clients: usize, now: Instant) -> PerIpBuckets {
        PerIpBuckets {
            rate,
            burst,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
            overflow: TokenBucket::new(rate, burst, now),
        }
    }

    /// Takes a token from `ip`'s bucket: `true` when the request may go on.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = client_key(ip);
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.max_clients {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max_clients {
                return self.overflow.try_take(now).is_ok();
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.entry(ip).or_insert_with(|| TokenBucket::new(rate, burst, now)).try_take(now).is_ok()
    }

    /// How many IPs have a bucket.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// Says yes at most once per `every` for each IP (log lines about one noisy client), keeping
/// at most `max_clients` IPs.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    max_clients: usize,
    last: HashMap<IpAddr, Instant>,
}

impl LogThrottle {
    /// A throttle letting one line per IP through every `every`.
    pub fn new(every: Duration, max_clients: usize) -> LogThrottle {
        LogThrottle { every, max_clients: max_clients.max(1), last: HashMap::new() }
    }

    /// Whether a line about `ip` should be logged at `now`.
    pub fn should_log(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = client_key(ip);
        if let Some(t) = self.last.get(&ip)
            && now.saturating_duration_since(*t) < self.every
        {
            return false;
        }
        if self.last.len() >= self.max_clients {
            let every = self.every;
            self.last.retain(|_, t| now.saturating_duration_since(*t) < every);
            if self.last.len() >= self.max_clients {
                return false;
            }
        }
        self.last.insert(ip, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn connections_are_counted_per_ip_and_freed_on_drop() {
        let conns = PerIpConns::new(2);
        let a1 = conns.try_acquire(ip("10.0.0.1")).expect("first");
        let _a2 = conns.try_acquire(ip("10.0.0.1")).expect("second");
        assert!(conns.try_acquire(ip("10.0.0.1")).is_none(), "third is over the limit");
        let _b = conns.try_acquire(ip("10.0.0.2")).expect("another IP has its own count");
        assert_eq!(conns.open(ip("10.0.0.1")), 2);
        drop(a1);
        assert_eq!(conns.open(ip("10.0.0.1")), 1);
        let _a3 = conns.try_acquire(ip("10.0.0.1")).expect("a freed slot is reusable");
        assert_eq!(conns.clients(), 2);
    }

    #[test]
    fn mapped_ipv6_counts_as_its_ipv4_and_empty_entries_go_away() {
        let conns = PerIpConns::new(1);
        let p = conns.try_acquire(ip("::ffff:127.0.0.1")).expect("first");
        assert!(conns.try_acquire(ip("127.0.0.1")).is_none());
        drop(p);
        assert_eq!(conns.clients(), 0, "no entry is kept for an IP without connections");
    }

    #[test]
    fn zero_disables_the_connection_limit() {
        let conns = PerIpConns::new(0);
        let permits: Vec<_> =
            (0..1000).map(|_| conns.try_acquire(ip("10.0.0.1")).expect("no limit")).collect();
        assert_eq!(permits.len(), 1000);
        assert_eq!(conns.clients(), 0, "nothing is tracked");
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0, t0);
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let wait = b.try_take(t0).expect_err("empty");
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90), "{wait:?}");
        assert!(b.try_take(t0 + Duration::from_millis(50)).is_err(), "half a token is not enough");
        assert!(b.try_take(t0 + Duration::from_millis(150)).is_ok(), "a token about 1/rate later");
        assert!(b.is_full(t0 + Duration::from_secs(10)));
        // Refilling never goes past the burst.
        let later = t0 + Duration::from_secs(10);
        let taken = (0..10).filter(|_| b.try_take(later).is_ok()).count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn time_going_backwards_does_not_mint_tokens() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut b = TokenBucket::new(1.0, 1.0, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0 - Duration::from_secs(3)).is_err());
        assert!(b.try_take(t0).is_err());
    }

    #[test]
    fn per_ip_buckets_limit_each_client_separately() {
        let t0 = Instant::now();
        let mut b = PerIpBuckets::new(1.0, 2.0, 100, t0);
        assert!(b.allow(ip("10.0.0.1"), t0));
        assert!(b.allow(ip("10.0.0.1"), t0));
        assert!(!b.allow(ip("10.0.0.1"), t0));
        assert!(b.allow(ip("10.0.0.2"), t0), "another client has its own bucket");
        assert!(b.allow(ip("10.0.0.1"), t0 + Duration::from_secs(1)));
    }

    #[test]
    fn per_ip_buckets_stay_bounded_under_many_source_addresses() {
        let t0 = Instant::now();
        let mut b = PerIpBuckets::new(1.0, 1.0, 10, t0);
        for i in 0..10u8 {
            assert!(b.allow(IpAddr::from([10, 0, 0, i]), t0));
        }
        // The map is full of busy clients: newcomers share the overflow bucket.
        assert!(b.allow(ip("10.0.1.1"), t0));
        assert!(!b.allow(ip("10.0.1.2"), t0));
        assert_eq!(b.tracked(), 10);
        // Once the first ten are idle (full again) they are dropped to make room.
        let later = t0 + Duration::from_secs(5);
        assert!(b.allow(ip("10.0.1.3"), later));
        assert_eq!(b.tracked(), 1);
    }

    #[test]
    fn log_throttle_lets_one_line_per_ip_per_interval() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(Duration::from_secs(60), 2);
        assert!(t.should_log(ip("10.0.0.1"), t0));
        assert!(!t.should_log(ip("10.0.0.1"), t0 + Duration::from_secs(59)));
        assert!(t.should_log(ip("10.0.0.2"), t0));
        assert!(!t.should_log(ip("10.0.0.3"), t0), "full of recent entries: stay quiet");
        assert!(t.should_log(ip("10.0.0.1"), t0 + Duration::from_secs(60)));
    }
}
