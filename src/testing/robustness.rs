//! The robustness workload: concurrent KV clients against a [`TestCluster`] while a
//! nemesis injects faults, every operation recorded for the linearizability checker
//! ([`super::lincheck`]).
//!
//! Clients talk HTTP to the servers directly (from outside the fault fabric, as real
//! clients would: a partitioned server still answers them). Each runs a seeded mix of
//! default and `consistent` reads, `stale` reads, PUT, CAS (`?cas=`), DELETE, transactions
//! (`cas` and `get` verbs) and session locks (`?acquire=` / `?release=`) over a few keys,
//! one request at a time, moving to another server after an error. Every written value is
//! unique (`v<n>`), so a CAS on an index is a CAS on the value read with that index.
//!
//! Stale reads are not linearizable by design; they are checked for what they promise:
//! on one server (between restarts) a read that starts after another finished never sees
//! an older index.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};

use super::TestCluster;
use super::lincheck::{self, Entry, Op, Outcome, SessionId, ValueId};

/// A fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Stops the leader, then starts it again on the same data dir.
    KillLeader,
    /// Stops a follower, then starts it again on the same data dir.
    KillFollower,
    /// Cuts a minority of servers (not the leader) off from the rest.
    PartitionMinority,
    /// Cuts the leader (with a minority) off from the majority, which elects a new one.
    PartitionLeader,
    /// Drops 30% of all messages between servers.
    Drop30,
    /// Delays every message to and from one server by 20-100 ms.
    DelayLinks,
    /// Stops a follower until the leader has compacted its log past it, then starts it, so
    /// it can only catch up by installing a snapshot while the traffic goes on.
    SnapshotInstall,
}

impl Fault {
    /// Every fault type.
    pub const ALL: [Fault; 7] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PartitionMinority,
        Fault::PartitionLeader,
        Fault::Drop30,
        Fault::DelayLinks,
        Fault::SnapshotInstall,
    ];
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seeds the clients' and the nemesis' choices (printed, so a run can be replayed in
    /// its choices; thread timing still varies).
    pub seed: u64,
    /// How long the traffic runs.
    pub duration: Duration,
    /// Concurrent clients.
    pub clients: usize,
    /// Keys the clients share.
    pub keys: usize,
    /// The faults the nemesis chooses from, each once per round in a seeded order (empty: no
    /// faults).
    pub faults: Vec<Fault>,
    /// How long each fault lasts, at least and at most.
    pub hold: (Duration, Duration),
    /// Step budget of the checker per key.
    pub budget: u64,
}

impl Plan {
    /// A plan with a 4-client, 6-key workload, 0.5-1.5 s faults and the given seed,
    /// duration and faults.
    pub fn new(seed: u64, duration: Duration, faults: &[Fault]) -> Plan {
        Plan {
            seed,
            duration,
            clients: 4,
            keys: 6,
            faults: faults.to_vec(),
            hold: (Duration::from_millis(500), Duration::from_millis(1500)),
            budget: 20_000_000,
        }
    }
}

/// Counts per kind of operation.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Operations answered definitely (ok or not ok).
    pub definite: usize,
    /// Writes whose effect is unknown (timeouts, connection errors, 5xx).
    pub unknown: usize,
    /// Reads that failed (dropped from the history).
    pub failed_reads: usize,
    /// Per operation kind, how many ran.
    pub by_kind: HashMap<&'static str, usize>,
}

/// The stale-read check.
#[derive(Debug, Clone, Default)]
pub struct StaleReport {
    /// Stale reads answered.
    pub reads: usize,
    /// Reads that saw an older index than one that finished before they started on the
    /// same server (must be empty).
    pub regressions: Vec<String>,
    /// The largest `X-Consul-LastContact` a stale read reported (ms).
    pub max_lag_ms: u64,
}

/// What a run did and found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The plan's seed.
    pub seed: u64,
    /// The recorded history (default and consistent reads, and writes).
    pub history: Vec<Entry>,
    /// Operation counts.
    pub counts: Counts,
    /// The checker's verdict on `history`.
    pub check: lincheck::Report,
    /// The stale-read check.
    pub stale: StaleReport,
    /// The faults injected, with when they started.
    pub faults: Vec<(Duration, Fault)>,
    /// Fault types that took effect at least once.
    pub exercised: Vec<Fault>,
}

impl RunReport {
    /// A summary of the run (seed, operations, faults, verdict), for test output.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<_> = self.counts.by_kind.iter().collect();
        kinds.sort();
        let verdict = if self.check.ok() && self.stale.regressions.is_empty() {
            "linearizable".to_owned()
        } else {
            format!(
                "VIOLATIONS: {} keys not linearizable, {} undecided, {} stale regressions",
                self.check.violations.len(),
                self.check.undecided.len(),
                self.stale.regressions.len()
            )
        };
        format!(
            "seed {}: {} ops checked over {} keys ({} definite, {} unknown writes, {} failed reads; {:?}); \
             {} stale reads (max lag {} ms); faults {:?}; exercised {:?}; {} checker steps; {verdict}",
            self.seed,
            self.check.ops,
            self.check.keys,
            self.counts.definite,
            self.counts.unknown,
            self.counts.failed_reads,
            kinds,
            self.stale.reads,
            self.stale.max_lag_ms,
            self.faults.iter().map(|(t, f)| format!("{f:?}@{:.1}s", t.as_secs_f64())).collect::<Vec<_>>(),
            self.exercised,
            self.check.steps,
        )
    }

    /// The checker's explanations, for a failing test.
    pub fn details(&self) -> String {
        let mut s = String::new();
        for (key, why) in &self.check.violations {
            s.push_str(&format!("key {key}: {why}\n"));
        }
        for r in &self.stale.regressions {
            s.push_str(&format!("stale: {r}\n"));
        }
        s
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What clients share: addresses, restart epochs, sessions, the value counter, records.
struct Shared {
    start: Instant,
    http: Vec<SocketAddr>,
    epochs: Vec<AtomicU64>,
    sessions: Vec<String>,
    next_value: AtomicU32,
    history: Mutex<Vec<Entry>>,
    stale: Mutex<Vec<StaleRead>>,
    counts: Mutex<Counts>,
    /// The largest `X-Consul-LastContact` of a stale read (ms).
    stale_lag: AtomicU64,
}

#[derive(Debug, Clone)]
struct StaleRead {
    server: usize,
    epoch: u64,
    key: String,
    index: u64,
    invoke: Duration,
    complete: Duration,
}

struct Answer {
    status: u16,
    index: u64,
    last_contact: u64,
    body: Bytes,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

async fn request(c: &HttpClient, method: &str, url: &str, body: Vec<u8>) -> Option<Answer> {
    let req =
        http::Request::builder().method(method).uri(url).body(Full::new(Bytes::from(body))).expect("request");
    let call = async {
        let r = c.request(req).await.ok()?;
        let status = r.status().as_u16();
        let header = |name: &str| {
            r.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let (index, last_contact) = (header("X-Consul-Index"), header("X-Consul-LastContact"));
        let body = r.into_body().collect().await.ok()?.to_bytes();
        Some(Answer { status, index, last_contact, body })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, call).await.ok().flatten()
}

fn value_id(b64: Option<&Value>) -> Option<ValueId> {
    let s = b64?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default();
    // Anything not written by the workload maps to an id no write has: a violation.
    Some(
        std::str::from_utf8(&raw)
            .ok()
            .and_then(|t| t.strip_prefix('v')?.parse().ok())
            .unwrap_or(ValueId::MAX),
    )
}

impl Shared {
    fn session_id(&self, sid: Option<&Value>) -> Option<SessionId> {
        let sid = sid?.as_str().filter(|s| !s.is_empty())?;
        Some(self.sessions.iter().position(|s| s == sid).map_or(SessionId::MAX, |i| i as SessionId))
    }

    /// A read's outcome from a KV entry (`None`: the key does not exist).
    fn read_of(&self, entry: Option<&Value>) -> (Outcome, u64) {
        match entry {
            None => (Outcome::Value { value: None, holder: None }, 0),
            Some(e) => (
                Outcome::Value { value: value_id(e.get("Value")), holder: self.session_id(e.get("Session")) },
                e.get("ModifyIndex").and_then(Value::as_u64).unwrap_or(0),
            ),
        }
    }

    fn record(
        &self,
        client: usize,
        key: &str,
        op: Op,
        outcome: Outcome,
        invoke: Duration,
        kind: &'static str,
    ) {
        let complete = (outcome != Outcome::Unknown).then(|| self.start.elapsed());
        {
            let mut c = self.counts.lock();
            *c.by_kind.entry(kind).or_default() += 1;
            match (op, outcome) {
                (Op::Read, Outcome::Unknown) => c.failed_reads += 1,
                (_, Outcome::Unknown) => c.unknown += 1,
                _ => c.definite += 1,
            }
        }
        self.history.lock().push(Entry { key: key.to_owned(), client, kind, op, outcome, invoke, complete });
    }
}

/// One client's loop.
async fn client(shared: Arc<Shared>, id: usize, seed: u64, keys: usize, until: Instant) {
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut rng = StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut server = rng.random_range(0..shared.http.len());
    // The last value and ModifyIndex this client read per key (for CAS).
    let mut seen: HashMap<String, (Option<ValueId>, u64)> = HashMap::new();
    let session = id as SessionId;
    let sid = shared.sessions[id].clone();
    while Instant::now() < until {
        if rng.random_bool(0.1) {
            server = rng.random_range(0..shared.http.len());
        }
        let key = format!("robust/k{}", rng.random_range(0..keys));
        let base = format!("http://{}", shared.http[server]);
        let url = format!("{base}/v1/kv/{key}");
        let fresh = || shared.next_value.fetch_add(1, Ordering::Relaxed);
        let invoke = shared.start.elapsed();
        let roll = rng.random_range(0..100);
        let ok = match roll {
            // Default and consistent reads.
            0..=34 => {
                let (suffix, kind) =
                    if roll < 22 { ("", "read") } else { ("?consistent", "read-consistent") };
                let a = request(&http, "GET", &format!("{url}{suffix}"), Vec::new()).await;
                let outcome = match a {
                    Some(a) if a.status == 404 => Some(shared.read_of(None)),
                    Some(a) if a.status == 200 => {
                        serde_json::from_slice::<Value>(&a.body).ok().map(|v| shared.read_of(v.get(0)))
                    }
                    _ => None,
                };
                if let Some((Outcome::Value { value, .. }, index)) = outcome {
                    seen.insert(key.clone(), (value, index));
                }
                let o = outcome.map_or(Outcome::Unknown, |(o, _)| o);
                shared.record(id, &key, Op::Read, o, invoke, kind);
                o != Outcome::Unknown
            }
            // Stale reads: checked for monotonicity per server, not linearizability.
            35..=44 => {
                let epoch = shared.epochs[server].load(Ordering::SeqCst);
                let a = request(&http, "GET", &format!("{url}?stale"), Vec::new()).await;
                let complete = shared.start.elapsed();
                let same_life = shared.epochs[server].load(Ordering::SeqCst) == epoch;
                match a {
                    Some(a) if (a.status == 200 || a.status == 404) && same_life => {
                        let r =
                            StaleRead { server, epoch, key: key.clone(), index: a.index, invoke, complete };
                        shared.stale.lock().push(r);
                        *shared.counts.lock().by_kind.entry("read-stale").or_default() += 1;
                        if a.last_contact < u64::from(u32::MAX) {
                            shared.stale_lag.fetch_max(a.last_contact, Ordering::Relaxed);
                        } else {
                            *shared.counts.lock().by_kind.entry("read-stale-no-leader").or_default() += 1;
                        }
                        true
                    }
                    _ => false,
                }
            }
            45..=59 => {
                let v = fresh();
                let a = request(&http, "PUT", &url, format!("v{v}").into_bytes()).await;
                let o = write_outcome(a.as_ref());
                shared.record(id, &key, Op::Put(v), o, invoke, "put");
                o != Outcome::Unknown
            }
            60..=72 => {
                let v = fresh();
                let (expect, index) = seen.get(&key).copied().unwrap_or((None, 0));
                let a =
                    request(&http, "PUT", &format!("{url}?cas={index}"), format!("v{v}").into_bytes()).await;
                let o = write_outcome(a.as_ref());
                shared.record(id, &key, Op::Cas { expect, value: v }, o, invoke, "cas");
                o != Outcome::Unknown
            }
            73..=78 => {
                let v = fresh();
                let (expect, index) = seen.get(&key).copied().unwrap_or((None, 0));
                let body = json!([{"KV": {"Verb": "cas", "Key": key, "Index": index,
                    "Value": base64::engine::general_purpose::STANDARD.encode(format!("v{v}"))}}]);
                let a = request(&http, "PUT", &format!("{base}/v1/txn"), body.to_string().into_bytes()).await;
                let o = match a {
                    Some(a) if a.status == 200 => Outcome::Done(true),
                    Some(a) if a.status == 409 => Outcome::Done(false),
                    _ => Outcome::Unknown,
                };
                shared.record(id, &key, Op::Cas { expect, value: v }, o, invoke, "txn-cas");
                o != Outcome::Unknown
            }
            79..=83 => {
                let body = json!([{"KV": {"Verb": "get", "Key": key}}]);
                let a = request(&http, "PUT", &format!("{base}/v1/txn"), body.to_string().into_bytes()).await;
                let parsed = a.and_then(|a| {
                    let v: Value = serde_json::from_slice(&a.body).ok()?;
                    match a.status {
                        200 => Some(shared.read_of(v.pointer("/Results/0/KV"))),
                        409 if v
                            .pointer("/Errors/0/What")
                            .and_then(Value::as_str)
                            .is_some_and(|w| w.contains("doesn't exist")) =>
                        {
                            Some(shared.read_of(None))
                        }
                        _ => None,
                    }
                });
                if let Some((Outcome::Value { value, .. }, index)) = parsed {
                    seen.insert(key.clone(), (value, index));
                }
                let o = parsed.map_or(Outcome::Unknown, |(o, _)| o);
                shared.record(id, &key, Op::Read, o, invoke, "txn-get");
                o != Outcome::Unknown
            }
            84..=88 => {
                let a = request(&http, "DELETE", &url, Vec::new()).await;
                let o = write_outcome(a.as_ref());
                shared.record(id, &key, Op::Delete, o, invoke, "delete");
                o != Outcome::Unknown
            }
            89..=94 => {
                let v = fresh();
                let a = request(&http, "PUT", &format!("{url}?acquire={sid}"), format!("v{v}").into_bytes())
                    .await;
                let o = write_outcome(a.as_ref());
                shared.record(id, &key, Op::Lock { session, value: v }, o, invoke, "lock");
                o != Outcome::Unknown
            }
            _ => {
                let v = fresh();
                let a = request(&http, "PUT", &format!("{url}?release={sid}"), format!("v{v}").into_bytes())
                    .await;
                let o = write_outcome(a.as_ref());
                shared.record(id, &key, Op::Unlock { session, value: v }, o, invoke, "unlock");
                o != Outcome::Unknown
            }
        };
        if !ok {
            server = (server + 1) % shared.http.len();
        }
    }
}

/// `true` / `false` from a KV write; anything else leaves its effect unknown.
fn write_outcome(a: Option<&Answer>) -> Outcome {
    match a {
        Some(a) if a.status == 200 && a.body.as_ref() == b"true" => Outcome::Done(true),
        Some(a) if a.status == 200 && a.body.as_ref() == b"false" => Outcome::Done(false),
        _ => Outcome::Unknown,
    }
}

/// Stale reads on one server, between restarts, never go back in index.
fn check_stale(reads: &[StaleRead]) -> Vec<String> {
    let mut groups: HashMap<(usize, u64, &str), Vec<&StaleRead>> = HashMap::new();
    for r in reads {
        groups.entry((r.server, r.epoch, &r.key)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((server, _, key), mut rs) in groups {
        rs.sort_by_key(|r| r.complete);
        // For each read, the highest index among the reads that finished before it began.
        let mut prefix_max = Vec::with_capacity(rs.len());
        let mut m = (0u64, Duration::ZERO);
        for r in &rs {
            if r.index > m.0 {
                m = (r.index, r.complete);
            }
            prefix_max.push(m);
        }
        for r in &rs {
            let before = rs.partition_point(|x| x.complete < r.invoke);
            if before > 0 {
                let (idx, at) = prefix_max[before - 1];
                if r.index < idx {
                    out.push(format!(
                        "server {server} key {key}: a stale read at {:.3}s saw index {} after one that finished at {:.3}s saw {idx}",
                        r.invoke.as_secs_f64(),
                        r.index,
                        at.as_secs_f64()
                    ));
                }
            }
        }
    }
    out
}

/// Runs `plan` against `cluster` (its servers are the first nodes) and checks the history.
pub async fn run(cluster: &mut TestCluster, plan: &Plan) -> RunReport {
    let servers = cluster.running_servers();
    let http: Vec<SocketAddr> = servers.iter().map(|&i| cluster.agent(i).http_addr()).collect();
    let admin: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let leader = cluster.wait_leader(Duration::from_secs(20)).await;
    let base = format!("http://{}", cluster.agent(leader).http_addr());
    // Sessions live on a catalog node no fault touches, with no health checks, so they
    // never expire or get invalidated during the run (that would release locks outside
    // the model).
    let reg = json!({"Node": "robustness-clients", "Address": "127.0.0.1"}).to_string();
    let a = request(&admin, "PUT", &format!("{base}/v1/catalog/register"), reg.into_bytes()).await;
    assert_eq!(a.map(|a| a.status), Some(200), "registering the sessions' node");
    let mut sessions = Vec::new();
    for i in 0..plan.clients {
        let body = json!({"Name": format!("robust-{i}"), "Node": "robustness-clients", "NodeChecks": [], "LockDelay": "0s"});
        let a = request(&admin, "PUT", &format!("{base}/v1/session/create"), body.to_string().into_bytes())
            .await
            .expect("session create answers");
        let v: Value = serde_json::from_slice(&a.body).expect("session create returns JSON");
        sessions.push(v["ID"].as_str().expect("session ID").to_owned());
    }
    let shared = Arc::new(Shared {
        start: Instant::now(),
        epochs: http.iter().map(|_| AtomicU64::new(0)).collect(),
        http,
        sessions,
        next_value: AtomicU32::new(1),
        history: Mutex::new(Vec::new()),
        stale: Mutex::new(Vec::new()),
        counts: Mutex::new(Counts::default()),
        stale_lag: AtomicU64::new(0),
    });
    let until = Instant::now() + plan.duration;
    let tasks: Vec<_> = (0..plan.clients)
        .map(|i| tokio::spawn(client(shared.clone(), i, plan.seed, plan.keys, until)))
        .collect();
    let (faults, exercised) = nemesis(cluster, &servers, &shared, plan, until).await;
    for t in tasks {
        t.await.expect("client task");
    }
    let history = std::mem::take(&mut *shared.history.lock());
    let stale_reads = std::mem::take(&mut *shared.stale.lock());
    let check = lincheck::check(&history, plan.budget);
    let stale = StaleReport {
        reads: stale_reads.len(),
        regressions: check_stale(&stale_reads),
        max_lag_ms: shared.stale_lag.load(Ordering::Relaxed),
    };
    let counts = shared.counts.lock().clone();
    RunReport { seed: plan.seed, history, counts, check, stale, faults, exercised }
}

/// Injects faults from `plan` until `until`, each followed by a quiet spell; leaves the
/// cluster healed with every server running.
async fn nemesis(
    cluster: &mut TestCluster,
    servers: &[usize],
    shared: &Shared,
    plan: &Plan,
    until: Instant,
) -> (Vec<(Duration, Fault)>, Vec<Fault>) {
    let mut rng = StdRng::seed_from_u64(plan.seed.wrapping_add(7));
    let mut log = Vec::new();
    let mut exercised = Vec::new();
    let ips: Vec<_> = servers.iter().map(|&i| cluster.node(i).ip).collect();
    // Let the clients warm up first.
    hold_until((Instant::now() + Duration::from_millis(300)).min(until)).await;
    // Faults come from a shuffled bag refilled when empty, so each type runs once before any
    // runs twice.
    let mut bag: Vec<Fault> = Vec::new();
    while !plan.faults.is_empty() && Instant::now() + plan.hold.0 < until {
        if bag.is_empty() {
            bag = plan.faults.clone();
            bag.shuffle(&mut rng);
        }
        let fault = bag.pop().expect("refilled");
        let hold = rng.random_range(plan.hold.0..=plan.hold.1);
        // Every fault starts from a cluster with a leader (a quiet spell ends each one).
        let Some(leader) = super::poll_until(Duration::from_secs(10), || async { cluster.leader() }).await
        else {
            panic!("no leader 10 s after the last fault was healed (seed {})", plan.seed);
        };
        log.push((shared.start.elapsed(), fault));
        let took = match fault {
            Fault::KillLeader | Fault::KillFollower => {
                let victim = if fault == Fault::KillLeader {
                    leader
                } else {
                    let followers: Vec<usize> = servers.iter().copied().filter(|&s| s != leader).collect();
                    followers[rng.random_range(0..followers.len())]
                };
                cluster.kill(victim).await;
                hold_for(hold).await;
                restart(cluster, servers, shared, victim).await;
                true
            }
            Fault::PartitionMinority | Fault::PartitionLeader => {
                let l = leader;
                let minority = (servers.len() - 1) / 2;
                let mut order: Vec<usize> = (0..servers.len()).filter(|&p| servers[p] != l).collect();
                order.shuffle(&mut rng);
                let leader_pos = servers.iter().position(|&s| s == l).expect("leader is a server");
                let small: Vec<usize> = if fault == Fault::PartitionLeader {
                    std::iter::once(leader_pos).chain(order.into_iter().take(minority - 1)).collect()
                } else {
                    order.into_iter().take(minority).collect()
                };
                let a: Vec<_> = small.iter().map(|&p| ips[p]).collect();
                let b: Vec<_> = ips.iter().copied().filter(|ip| !a.contains(ip)).collect();
                cluster.faults.partition(&[&a, &b]);
                hold_for(hold).await;
                cluster.faults.heal();
                true
            }
            Fault::Drop30 => {
                cluster.faults.set_drop_rate(0.3);
                hold_for(hold).await;
                cluster.faults.heal();
                true
            }
            Fault::DelayLinks => {
                let ip = ips[rng.random_range(0..ips.len())];
                cluster.faults.set_node_delay(ip, Duration::from_millis(rng.random_range(20..=100)));
                hold_for(hold).await;
                cluster.faults.heal();
                true
            }
            Fault::SnapshotInstall => snapshot_install(cluster, servers, shared, leader, &mut rng).await,
        };
        if took && !exercised.contains(&fault) {
            exercised.push(fault);
        }
        // Quiet spell.
        hold_for(Duration::from_millis(rng.random_range(200..=500))).await;
    }
    cluster.faults.heal();
    for &s in servers {
        if !cluster.running().contains(&s) {
            restart(cluster, servers, shared, s).await;
        }
    }
    hold_until(until).await;
    (log, exercised)
}

/// Stops a follower, waits (up to 10 s) until the leader's log is compacted past the
/// follower's last entry, then restarts it and waits (up to 10 s) for it to install a
/// snapshot. Whether that happened.
async fn snapshot_install(
    cluster: &mut TestCluster,
    servers: &[usize],
    shared: &Shared,
    l: usize,
    rng: &mut StdRng,
) -> bool {
    let followers: Vec<usize> = servers.iter().copied().filter(|&s| s != l).collect();
    let f = followers[rng.random_range(0..followers.len())];
    let last = cluster.agent(f).server().metrics().last_log_index.unwrap_or(0);
    cluster.kill(f).await;
    let compacted = super::poll_until(Duration::from_secs(10), || async {
        let l = cluster.leader()?;
        let purged = cluster.agent(l).server().metrics().purged.map(|p| p.index)?;
        (purged > last).then_some(purged)
    })
    .await;
    restart(cluster, servers, shared, f).await;
    let Some(purged) = compacted else { return false };
    super::poll_until(Duration::from_secs(10), || async {
        let m = cluster.agent(f).server().metrics();
        m.snapshot.is_some_and(|s| s.index >= purged).then_some(())
    })
    .await
    .is_some()
}

async fn restart(cluster: &mut TestCluster, servers: &[usize], shared: &Shared, node: usize) {
    cluster.restart(node).await;
    if let Some(p) = servers.iter().position(|&s| s == node) {
        shared.epochs[p].fetch_add(1, Ordering::SeqCst);
    }
}

/// Keeps a fault in place (or the nemesis quiet) for `d`: a schedule, not synchronisation.
async fn hold_for(d: Duration) {
    tokio::time::sleep(d).await;
}

async fn hold_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(server: usize, index: u64, invoke: u64, complete: u64) -> StaleRead {
        StaleRead {
            server,
            epoch: 0,
            key: "k".into(),
            index,
            invoke: Duration::from_millis(invoke),
            complete: Duration::from_millis(complete),
        }
    }

    #[test]
    fn stale_reads_going_back_on_one_server_are_reported() {
        assert!(check_stale(&[read(0, 5, 0, 1), read(0, 7, 2, 3), read(0, 7, 4, 5)]).is_empty());
        // Overlapping reads may come back in any order.
        assert!(check_stale(&[read(0, 7, 0, 5), read(0, 5, 1, 6)]).is_empty());
        // Different servers may lag differently.
        assert!(check_stale(&[read(0, 7, 0, 1), read(1, 5, 2, 3)]).is_empty());
        let r = check_stale(&[read(0, 7, 0, 1), read(0, 5, 2, 3)]);
        assert_eq!(r.len(), 1, "{r:?}");
    }

    #[test]
    fn values_not_written_by_the_workload_are_flagged() {
        let b64 = |s: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(value_id(Some(&b64("v42"))), Some(42));
        assert_eq!(value_id(Some(&b64("junk"))), Some(ValueId::MAX));
        assert_eq!(value_id(Some(&Value::Null)), None);
        assert_eq!(value_id(None), None);
    }
}
