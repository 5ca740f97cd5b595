//! The load generator behind `sekisho operator bench` and `benches/compare`.
//!
//! A closed loop, as `wrk` and `etcdctl check perf` drive a server: each client owns one
//! HTTP/1.1 keep-alive connection and keeps exactly one request in flight. The same loop
//! drives Sekisho's `/v1/kv` and `/v1/txn` or etcd's v3 JSON gateway (`/v3/kv/put`, `range`,
//! `txn`), so a side-by-side run compares the servers, not two load generators.
//!
//! ```text
//! connect N clients ─► prefill keys (get, txn) ─► timed loop ─► Report
//!                                                  │ 1 s ticks
//!                                                  ▼
//!                                                Progress (ops, errors so far)
//! ```
//!
//! The `watch` workload parks every client in a blocking query on one key while a writer
//! changes it at an interval; a latency is the time from the start of a write to a watcher's
//! answer carrying that write, and the fan-out figure is per write, to its last watcher.

mod conn;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::Method;
use parking_lot::Mutex;

pub use report::{Latency, Report};

use conn::{Conn, Request};

/// The API the target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Sekisho's (or Consul's) `/v1/kv` and `/v1/txn`.
    Sekisho,
    /// etcd's v3 JSON gateway on its client port.
    Etcd,
}

/// What each client does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Write a key.
    Put,
    /// Read a key (prefilled first).
    Get,
    /// A transaction that writes one key and reads another (prefilled first).
    Txn,
    /// Blocking queries on one key while a writer changes it (Sekisho only).
    Watch,
}

/// Read consistency: Consul's modes; etcd reads are linearizable unless `Stale`
/// (a serializable range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Consul's default mode (leader lease); linearizable on etcd.
    Default,
    /// `?consistent`; linearizable on etcd.
    Consistent,
    /// `?stale`; `serializable` on etcd.
    Stale,
}

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target's API.
    pub api: Api,
    /// `host:port` of the target's HTTP API (plain HTTP).
    pub addr: String,
    /// Sent as `X-Consul-Token` to Sekisho.
    pub token: Option<String>,
    /// The workload.
    pub workload: Workload,
    /// Clients, each with its own connection and one request in flight.
    pub concurrency: usize,
    /// How long the timed loop runs.
    pub duration: Duration,
    /// Bytes per value written.
    pub value_size: usize,
    /// Distinct keys cycled through.
    pub keys: usize,
    /// Read consistency.
    pub consistency: Consistency,
    /// Key prefix (keys are `<prefix><n>`).
    pub prefix: String,
    /// Time between writes in the `watch` workload.
    pub watch_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api: Api::Sekisho,
            addr: "127.0.0.1:8500".into(),
            token: None,
            workload: Workload::Put,
            concurrency: 16,
            duration: Duration::from_secs(10),
            value_size: 256,
            keys: 10_000,
            consistency: Consistency::Default,
            prefix: "bench/".into(),
            watch_interval: Duration::from_millis(200),
        }
    }
}

/// What the loop reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Connections open so far.
    Connecting { open: usize, of: usize },
    /// Keys written by the prefill so far.
    Prefill { done: usize, of: usize },
    /// A tick of the timed loop.
    Running { elapsed: Duration, of: Duration, ops: u64, errors: u64 },
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An option makes no sense.
    #[error("{0}")]
    Usage(String),
    /// The target did not answer as expected before the timed loop.
    #[error("{0}")]
    Target(String),
}

/// Runs the benchmark, calling `progress` from the runtime as it goes.
pub async fn run(
    opts: Options,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Report, BenchError> {
    validate(&opts)?;
    let progress = Arc::new(progress);
    raise_fd_limit(opts.concurrency + 64);
    let plan = Arc::new(Plan::new(&opts));
    let conns = connect_all(&opts, progress.clone()).await?;
    if matches!(opts.workload, Workload::Get | Workload::Txn) {
        prefill(&opts, &plan, progress.clone()).await?;
    }
    match opts.workload {
        Workload::Watch => watch::run(&opts, conns, progress).await,
        _ => timed_loop(&opts, plan, conns, progress).await,
    }
}

fn validate(o: &Options) -> Result<(), BenchError> {
    let usage = |m: &str| Err(BenchError::Usage(m.to_owned()));
    if o.concurrency == 0 {
        return usage("-concurrency must be at least 1");
    }
    if o.keys == 0 {
        return usage("-keys must be at least 1");
    }
    if o.duration.is_zero() {
        return usage("-duration must be longer than 0s");
    }
    if o.workload == Workload::Watch && o.api == Api::Etcd {
        return usage("the watch workload drives Sekisho's blocking queries; it is not implemented for etcd");
    }
    if o.workload == Workload::Txn && o.keys < 2 {
        return usage("the txn workload needs -keys of at least 2");
    }
    if o.addr.starts_with("https://") {
        return usage("operator bench speaks plain HTTP only; point it at an http:// address");
    }
    Ok(())
}

/// Requests built once: one per key, so the loop only clones `Bytes`.
struct Plan {
    api: Api,
    /// Sekisho: the path per key; etcd: the base64 key (JSON-safe).
    keys: Vec<String>,
    value: Bytes,
    value_b64: String,
    read_query: &'static str,
    serializable: bool,
}

impl Plan {
    fn new(o: &Options) -> Self {
        let keys = (0..o.keys)
            .map(|n| match o.api {
                Api::Sekisho => format!("{}{n}", o.prefix),
                Api::Etcd => B64.encode(format!("{}{n}", o.prefix)),
            })
            .collect();
        let value = Bytes::from(vec![b'x'; o.value_size]);
        let read_query = match o.consistency {
            Consistency::Default => "",
            Consistency::Consistent => "?consistent",
            Consistency::Stale => "?stale",
        };
        Self {
            api: o.api,
            keys,
            value_b64: B64.encode(&value),
            value,
            read_query,
            serializable: o.consistency == Consistency::Stale,
        }
    }

    fn put(&self, k: usize) -> Request {
        let key = &self.keys[k % self.keys.len()];
        match self.api {
            Api::Sekisho => Request::new(Method::PUT, format!("/v1/kv/{key}"), self.value.clone()),
            Api::Etcd => Request::new(
                Method::POST,
                "/v3/kv/put".into(),
                format!(r#"{{"key":"{key}","value":"{}"}}"#, self.value_b64).into(),
            ),
        }
    }

    fn get(&self, k: usize) -> Request {
        let key = &self.keys[k % self.keys.len()];
        match self.api {
            Api::Sekisho => {
                Request::new(Method::GET, format!("/v1/kv/{key}{}", self.read_query), Bytes::new())
            }
            Api::Etcd => {
                let body = if self.serializable {
                    format!(r#"{{"key":"{key}","serializable":true}}"#)
                } else {
                    format!(r#"{{"key":"{key}"}}"#)
                };
                Request::new(Method::POST, "/v3/kv/range".into(), body.into())
            }
        }
    }

    fn txn(&self, k: usize) -> Request {
        let n = self.keys.len();
        let (write, read) = (&self.keys[k % n], &self.keys[(k + n / 2) % n]);
        match self.api {
            Api::Sekisho => {
                let body = format!(
                    r#"[{{"KV":{{"Verb":"set","Key":"{write}","Value":"{}"}}}},{{"KV":{{"Verb":"get","Key":"{read}"}}}}]"#,
                    self.value_b64
                );
                Request::new(Method::PUT, "/v1/txn".into(), body.into())
            }
            Api::Etcd => {
                let body = format!(
                    r#"{{"success":[{{"requestPut":{{"key":"{write}","value":"{}"}}}},{{"requestRange":{{"key":"{read}"}}}}]}}"#,
                    self.value_b64
                );
                Request::new(Method::POST, "/v3/kv/txn".into(), body.into())
            }
        }
    }

    fn request(&self, w: Workload, k: usize) -> Request {
        match w {
            Workload::Put | Workload::Watch => self.put(k),
            Workload::Get => self.get(k),
            Workload::Txn => self.txn(k),
        }
    }
}

/// Opens one connection per client, at most 128 handshakes at a time (a listen backlog
/// overflows when thousands arrive at once).
async fn connect_all(
    o: &Options,
    progress: Arc<impl Fn(Progress) + Send + Sync + 'static>,
) -> Result<Vec<Conn>, BenchError> {
    let addr = o.addr.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let first = Conn::open(&addr, o.token.clone())
        .await
        .map_err(|e| BenchError::Target(format!("connecting to {addr}: {e}")))?;
    let mut conns = vec![first];
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 1..o.concurrency {
        let (addr, token, gate) = (addr.clone(), o.token.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut last = None;
            for _ in 0..5 {
                match Conn::open(&addr, token.clone()).await {
                    Ok(c) => return Ok(c),
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(last.map_or_else(String::new, |e| e.to_string()))
        });
    }
    let mut last_tick = Instant::now();
    while let Some(r) = tasks.join_next().await {
        let c = r.map_err(|e| BenchError::Target(e.to_string()))?;
        conns.push(c.map_err(|e| BenchError::Target(format!("connecting to {addr}: {e}")))?);
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            progress(Progress::Connecting { open: conns.len(), of: o.concurrency });
        }
    }
    Ok(conns)
}

/// Writes every key once (with up to 64 connections of its own) so reads find values.
async fn prefill(
    o: &Options,
    plan: &Arc<Plan>,
    progress: Arc<impl Fn(Progress) + Send + Sync + 'static>,
) -> Result<(), BenchError> {
    let writers = o.concurrency.clamp(1, 64).min(o.keys);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let addr = o.addr.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (plan, next, done, addr, token, keys) =
            (plan.clone(), next.clone(), done.clone(), addr.clone(), o.token.clone(), o.keys as u64);
        tasks.spawn(async move {
            let mut c = Conn::open(&addr, token).await.map_err(|e| e.to_string())?;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= keys {
                    return Ok::<_, String>(());
                }
                c.send(plan.put(k as usize)).await.map_err(|e| format!("prefilling key {k}: {e}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let ticker = {
        let (done, of) = (done.clone(), o.keys);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress(Progress::Prefill { done: done.load(Ordering::Relaxed) as usize, of });
            }
        })
    };
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if result.is_ok()
            && let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r)
        {
            // Keep the first error: the aborted writers' cancellations say nothing.
            result = Err(BenchError::Target(e));
            tasks.abort_all();
        }
    }
    ticker.abort();
    result
}

/// Per-client outcome of the timed loop.
#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn timed_loop(
    o: &Options,
    plan: Arc<Plan>,
    conns: Vec<Conn>,
    progress: Arc<impl Fn(Progress) + Send + Sync + 'static>,
) -> Result<Report, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ops, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let deadline = start + o.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for (w, mut c) in conns.into_iter().enumerate() {
        let (plan, stop, ops, errors, workload) =
            (plan.clone(), stop.clone(), ops.clone(), errors.clone(), o.workload);
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut k = w.wrapping_mul(7919);
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let outcome = c.send(plan.request(workload, k)).await;
                let now = Instant::now();
                if now > deadline {
                    break;
                }
                match outcome {
                    Ok(()) => {
                        t.micros.push(u32::try_from((now - sent).as_micros()).unwrap_or(u32::MAX));
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        t.errors += 1;
                        errors.fetch_add(1, Ordering::Relaxed);
                        t.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
                k = k.wrapping_add(1);
            }
            t
        }));
    }
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        let elapsed = start.elapsed().min(o.duration);
        progress(Progress::Running {
            elapsed,
            of: o.duration,
            ops: ops.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
        });
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.map_err(|e| BenchError::Target(e.to_string()))?;
        all.micros.extend(t.micros);
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    Ok(Report::new(o, o.duration, all.micros, all.errors, all.first_error, None))
}

mod watch {
    //! The blocking-query fan-out workload.
    use super::*;

    /// Write `seq` → when its write started.
    type Sent = Arc<Mutex<Vec<Option<Instant>>>>;

    pub(super) async fn run(
        o: &Options,
        mut conns: Vec<Conn>,
        progress: Arc<impl Fn(Progress) + Send + Sync + 'static>,
    ) -> Result<Report, BenchError> {
        let key = format!("{}watch", o.prefix);
        let mut writer = conns.pop().ok_or_else(|| BenchError::Usage("no connection".into()))?;
        // The key's first value (sequence 0) and its index: every watcher starts there.
        writer
            .send(Request::new(Method::PUT, format!("/v1/kv/{key}"), Bytes::from_static(b"0")))
            .await
            .map_err(|e| BenchError::Target(format!("writing {key}: {e}")))?;
        let first = writer
            .get_with_index(&format!("/v1/kv/{key}?raw"))
            .await
            .map_err(|e| BenchError::Target(format!("reading {key}: {e}")))?;
        let sent: Sent = Arc::new(Mutex::new(vec![None]));
        let stop = Arc::new(AtomicBool::new(false));
        let (ops, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let parked = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        // The writer's own connection is not a watcher, so add one back.
        conns.push(
            Conn::open(writer.addr(), o.token.clone())
                .await
                .map_err(|e| BenchError::Target(e.to_string()))?,
        );
        for mut c in conns {
            let (key, sent, stop, ops, errors, parked) =
                (key.clone(), sent.clone(), stop.clone(), ops.clone(), errors.clone(), parked.clone());
            let mut index = first.0;
            tasks.push(tokio::spawn(async move {
                let mut t = Tally::default();
                let mut per_write: Vec<(u64, u32)> = Vec::new();
                let mut announced = false;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/v1/kv/{key}?raw&index={index}&wait=5s");
                    let fut = c.get_with_index(&path);
                    if !announced {
                        announced = true;
                        parked.fetch_add(1, Ordering::Relaxed);
                    }
                    match fut.await {
                        Ok((new_index, body)) => {
                            let now = Instant::now();
                            if new_index == index {
                                continue; // the wait ran out with no change
                            }
                            index = new_index;
                            let seq: u64 =
                                std::str::from_utf8(&body).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                            let at = sent.lock().get(seq as usize).copied().flatten();
                            if let Some(at) = at {
                                let us = u32::try_from((now - at).as_micros()).unwrap_or(u32::MAX);
                                t.micros.push(us);
                                per_write.push((seq, us));
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            t.errors += 1;
                            errors.fetch_add(1, Ordering::Relaxed);
                            t.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (t, per_write)
            }));
        }
        // Wait until every watcher has sent its first blocking query, then a little for the
        // server to park them (bounded: a watcher stuck connecting is counted as an error).
        let wait_start = Instant::now();
        while (parked.load(Ordering::Relaxed) as usize) < tasks.len()
            && wait_start.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200) + Duration::from_micros(50 * tasks.len() as u64)).await;
        let start = Instant::now();
        let mut seq = 0u64;
        let mut last_tick = start;
        while start.elapsed() < o.duration {
            seq += 1;
            let at = Instant::now();
            sent.lock().push(Some(at));
            let write = Request::new(Method::PUT, format!("/v1/kv/{key}"), Bytes::from(seq.to_string()));
            if let Err(e) = writer.send(write).await {
                return Err(BenchError::Target(format!("writing {key}: {e}")));
            }
            tokio::time::sleep(o.watch_interval.saturating_sub(at.elapsed())).await;
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                progress(Progress::Running {
                    elapsed: start.elapsed().min(o.duration),
                    of: o.duration,
                    ops: ops.load(Ordering::Relaxed),
                    errors: errors.load(Ordering::Relaxed),
                });
            }
        }
        // Let the last write reach its watchers before stopping them.
        tokio::time::sleep(Duration::from_secs(1).max(o.watch_interval)).await;
        stop.store(true, Ordering::Relaxed);
        // The final write wakes every parked watcher so they see `stop`.
        let _ =
            writer.send(Request::new(Method::PUT, format!("/v1/kv/{key}"), Bytes::from_static(b"end"))).await;
        let mut all = Tally::default();
        let mut last_per_write = vec![0u32; seq as usize + 1];
        let mut answered = vec![0u64; seq as usize + 1];
        for task in tasks {
            let (t, per_write) = task.await.map_err(|e| BenchError::Target(e.to_string()))?;
            all.micros.extend(t.micros);
            all.errors += t.errors;
            if all.first_error.is_none() {
                all.first_error = t.first_error;
            }
            for (s, us) in per_write {
                if let Some(slot) = last_per_write.get_mut(s as usize) {
                    *slot = (*slot).max(us);
                    answered[s as usize] += 1;
                }
            }
        }
        // Fan-out per write: only writes every watcher saw (a watcher can skip a write that
        // landed while its previous answer was in flight; it then sees a later one).
        let fanout: Vec<u32> =
            (1..=seq as usize).filter(|&s| answered[s] > 0).map(|s| last_per_write[s]).collect();
        Ok(Report::new(o, o.duration, all.micros, all.errors, all.first_error, Some((seq, fanout))))
    }
}

/// Raises the soft open-files limit towards the hard one so thousands of clients fit.
fn raise_fd_limit(want: usize) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let want = want as libc::rlim_t;
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests;
