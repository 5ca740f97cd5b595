//! Client-side locks and semaphores over KV and sessions: the protocol of the Go client's
//! `api/lock.go` and `api/semaphore.go`, so Sekisho and Consul clients can contend for the
//! same keys (`sekisho lock` and `consul lock` exclude each other).
//!
//! ```text
//! Lock (key K, flags LOCK_FLAG_VALUE)            Semaphore (prefix P, limit N)
//!  session create {TTL, Behavior: release}        session create {TTL, Behavior: delete}
//!  ┌► GET K?index&wait  ── Session set ─┐          PUT P/<sid>?acquire=<sid>  (contender)
//!  │   PUT K?acquire=<sid>&flags        │         ┌► GET P?recurse&index&wait
//!  │     false: Session set → block ────┘         │   P/.lock {"Limit":N,"Holders":{..}}
//!  │            empty (lock-delay) → retry 5s     │   prune holders without a live key
//!  └────────────────────────────────────          │   full → block; else CAS P/.lock + us
//!  held: renew every TTL/2; monitor with          └── CAS lost → re-read
//!        GET K?consistent&index                  held: monitor P?recurse&consistent
//!  release: PUT K?release=<sid>, destroy session  release: CAS us out, DELETE P/<sid>
//! ```
//!
//! A held lock is lost only on a definite answer: the key no longer carries our session, or
//! the session is gone. Transient errors (5xx, 429, unreachable agent) are retried up to
//! `monitor_retries` times, `monitor_retry_time` apart; a `No cluster leader` answer (a
//! leader election) is ridden out for up to one session TTL without using up a retry,
//! because a new leader restarts every session's TTL timer.

use std::fmt;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::url::escape_path;
use super::{Client, ClientError, KvEntry, Response};

pub use super::semaphore::{SEMAPHORE_FLAG_VALUE, Semaphore, SemaphoreLock};

/// The flags of a lock key (Go `api.LockFlagValue`): a key with other flags is not a lock.
pub const LOCK_FLAG_VALUE: u64 = 0x2ddc_cbc0_58a5_0c18;
/// Go's `api.DefaultLockSessionName`.
pub const DEFAULT_LOCK_SESSION_NAME: &str = "Consul API Lock";
/// Go's `api.DefaultLockSessionTTL`.
pub const DEFAULT_LOCK_SESSION_TTL: Duration = Duration::from_secs(15);
/// Go's `api.DefaultLockWaitTime`: the `wait` of each blocking read.
pub const DEFAULT_LOCK_WAIT_TIME: Duration = Duration::from_secs(15);
/// Go's `api.DefaultLockRetryTime`: the pause after an acquire refused by lock-delay.
pub const DEFAULT_LOCK_RETRY_TIME: Duration = Duration::from_secs(5);
/// Go's `api.DefaultMonitorRetryTime`.
pub const DEFAULT_MONITOR_RETRY_TIME: Duration = Duration::from_secs(2);
/// Consul's session default `LockDelay`.
pub const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
/// The coordination key inside a prefix (Go `api.DefaultSemaphoreKey`); `consul lock -n 1`
/// locks `<prefix>/.lock` too, so a lock and a semaphore on one prefix conflict.
pub const DEFAULT_SEMAPHORE_KEY: &str = ".lock";

/// Everything that can stop a lock or semaphore from being taken, released or cleaned up.
/// The texts are the Go client's.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Creating the session failed.
    #[error("failed to create session: {0}")]
    Session(ClientError),
    /// Reading the lock key failed.
    #[error("failed to read lock: {0}")]
    Read(ClientError),
    /// The acquire request failed.
    #[error("failed to acquire lock: {0}")]
    Acquire(ClientError),
    /// The key exists with flags other than [`LOCK_FLAG_VALUE`].
    #[error("Existing key does not match lock use")]
    Conflict,
    /// Releasing failed.
    #[error("failed to release lock: {0}")]
    Release(ClientError),
    /// Deleting the unused lock key failed.
    #[error("failed to remove lock: {0}")]
    Remove(ClientError),
    /// Cleanup found the lock held.
    #[error("Lock in use")]
    InUse,
    /// The contender key could not be written.
    #[error("failed to make contender entry: {0}")]
    Contender(String),
    /// Listing the semaphore prefix failed.
    #[error("failed to read prefix: {0}")]
    ReadPrefix(ClientError),
    /// The `.lock` key of a semaphore has other flags (a lock lives there).
    #[error("Existing key does not match semaphore use")]
    SemaphoreConflict,
    /// The contenders disagree on the limit.
    #[error("semaphore limit conflict (lock: {lock}, local: {local})")]
    LimitConflict {
        /// The limit stored in `.lock`.
        lock: u32,
        /// Ours.
        local: u32,
    },
    /// The `.lock` value is not the semaphore JSON.
    #[error("lock decoding failed: {0}")]
    Decode(String),
    /// Writing the `.lock` key failed.
    #[error("failed to update lock: {0}")]
    Update(ClientError),
    /// Cleanup found the semaphore held.
    #[error("Semaphore in use")]
    SemaphoreInUse,
}

/// Knobs shared by [`Lock`] and [`Semaphore`]; [`LockOptions::default`] is the Go client's.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// The value stored in the lock (or contender) key.
    pub value: Vec<u8>,
    /// The session's `Name`.
    pub session_name: String,
    /// The session's `TTL`; it is renewed every half TTL.
    pub session_ttl: Duration,
    /// The session's `LockDelay`.
    pub lock_delay: Duration,
    /// Transient errors tolerated in a row while monitoring a held lock.
    pub monitor_retries: u32,
    /// The pause between those retries.
    pub monitor_retry_time: Duration,
    /// The `wait` of each blocking read.
    pub wait_time: Duration,
    /// The pause after an acquire refused while the key is free (lock-delay).
    pub retry_time: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            value: Vec::new(),
            session_name: DEFAULT_LOCK_SESSION_NAME.to_owned(),
            session_ttl: DEFAULT_LOCK_SESSION_TTL,
            lock_delay: DEFAULT_LOCK_DELAY,
            monitor_retries: 0,
            monitor_retry_time: DEFAULT_MONITOR_RETRY_TIME,
            wait_time: DEFAULT_LOCK_WAIT_TIME,
            retry_time: DEFAULT_LOCK_RETRY_TIME,
        }
    }
}

/// A fencing token: the `LockIndex` and `ModifyIndex` of the acquired key. Both only grow,
/// so a resource can refuse writes carrying an older token than one it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fence {
    /// How many times the key has been acquired.
    pub lock_index: u64,
    /// The Raft index of the acquiring write.
    pub modify_index: u64,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.lock_index, self.modify_index)
    }
}

/// A mutex on one key (Go `api.Lock`).
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    key: String,
    opts: LockOptions,
}

impl Lock {
    /// A lock on `key` (`consul lock` uses `<prefix>/.lock`, see [`join_key`]).
    pub fn new(client: Client, key: impl Into<String>, opts: LockOptions) -> Self {
        Self { client, key: key.into(), opts }
    }

    /// The locked key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Blocks until the lock is ours. `Ok(None)` when `stop` fired or `deadline` passed
    /// first; the session is destroyed then, as on an error.
    pub async fn acquire(
        &self,
        stop: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<Option<Held>, LockError> {
        let session = Session::create(&self.client, &self.opts, "release").await?;
        let outcome = tokio::select! {
            r = self.acquire_with(&session.id) => Some(r),
            () = stop.cancelled() => None,
            () = sleep_until(deadline) => None,
        };
        match outcome {
            Some(Ok(fence)) => {
                let probe = Probe::Key(self.key.clone());
                Ok(Some(Held::start(self.client.clone(), session, fence, probe, &self.opts)))
            }
            other => {
                // Dropped mid-way, the loop may have won just before: give the key back.
                if other.is_none() {
                    let _ = self.release_key(&session.id).await;
                }
                session.close().await;
                other.transpose().map(|_| None)
            }
        }
    }

    async fn acquire_with(&self, sid: &str) -> Result<Fence, LockError> {
        let mut index = 0;
        loop {
            let (entry, meta) = self.read(index, false).await?;
            if entry.as_ref().is_some_and(|e| e.flags != LOCK_FLAG_VALUE) {
                return Err(LockError::Conflict);
            }
            if entry.as_ref().is_some_and(|e| e.session.as_deref().is_some_and(|s| !s.is_empty())) {
                index = meta;
                continue;
            }
            if self.try_acquire(sid).await? {
                return self.fence(sid).await;
            }
            // Why not? Held by someone else: block on the key. Free: lock-delay, retry later.
            let (entry, meta) = self.read(0, false).await?;
            if entry.is_some_and(|e| e.session.is_some_and(|s| !s.is_empty())) {
                index = meta;
            } else {
                tokio::time::sleep(self.opts.retry_time).await;
                index = 0;
            }
        }
    }

    async fn read(&self, index: u64, consistent: bool) -> Result<(Option<KvEntry>, u64), LockError> {
        let (entries, meta) = kv_read(&self.client, &self.key, false, index, self.opts.wait_time, consistent)
            .await
            .map_err(LockError::Read)?;
        Ok((entries.into_iter().next(), meta))
    }

    async fn try_acquire(&self, sid: &str) -> Result<bool, LockError> {
        let path = format!("{}?acquire={sid}&flags={LOCK_FLAG_VALUE}", kv_path(&self.key));
        put_bool(&self.client, &path, self.opts.value.clone()).await.map_err(LockError::Acquire)
    }

    async fn fence(&self, sid: &str) -> Result<Fence, LockError> {
        let read = self.read(0, true).await;
        match read {
            Ok((Some(e), _)) if e.session.as_deref() == Some(sid) => {
                Ok(Fence { lock_index: e.lock_index, modify_index: e.modify_index })
            }
            Ok(_) => Ok(Fence { lock_index: 0, modify_index: 0 }),
            Err(e) => {
                let _ = self.release_key(sid).await;
                Err(e)
            }
        }
    }

    async fn release_key(&self, sid: &str) -> Result<bool, ClientError> {
        let path = format!("{}?release={sid}&flags={LOCK_FLAG_VALUE}", kv_path(&self.key));
        put_bool(&self.client, &path, self.opts.value.clone()).await
    }

    /// Gives the lock back (`?release=`), then stops renewing and destroys the session.
    pub async fn release(&self, held: Held) -> Result<(), LockError> {
        let released = self.release_key(&held.session.id).await;
        held.close().await;
        released.map(drop).map_err(LockError::Release)
    }

    /// Deletes the lock key if it is a free lock (Go `Lock.Destroy`); [`LockError::InUse`]
    /// when someone holds it.
    pub async fn destroy(&self) -> Result<(), LockError> {
        let (entry, _) = self.read(0, false).await?;
        let Some(entry) = entry else { return Ok(()) };
        if entry.flags != LOCK_FLAG_VALUE {
            return Err(LockError::Conflict);
        }
        if entry.session.is_some_and(|s| !s.is_empty()) {
            return Err(LockError::InUse);
        }
        match self.client.kv_delete_cas(&self.key, entry.modify_index).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(LockError::InUse),
            Err(e) => Err(LockError::Remove(e)),
        }
    }
}

/// A held lock or semaphore slot: the session is renewed and the hold monitored until
/// [`Lock::release`] / [`Semaphore::release`].
#[derive(Debug)]
pub struct Held {
    session: Session,
    fence: Fence,
    monitor: JoinHandle<()>,
}

impl Held {
    pub(super) fn start(
        client: Client,
        session: Session,
        fence: Fence,
        probe: Probe,
        opts: &LockOptions,
    ) -> Self {
        let watch = Monitor {
            client,
            probe,
            session: session.id.clone(),
            retries: opts.monitor_retries,
            retry_time: opts.monitor_retry_time,
            ttl: opts.session_ttl,
        };
        let (lost, done) = (session.lost.clone(), session.done.clone());
        let monitor = tokio::spawn(async move {
            tokio::select! {
                () = watch.run() => lost.cancel(),
                () = done.cancelled() => {}
            }
        });
        Self { session, fence, monitor }
    }

    /// The session holding the lock.
    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    /// The fencing token of the acquisition.
    pub fn fence(&self) -> Fence {
        self.fence
    }

    /// Resolves once the hold is definitely lost.
    pub async fn lost(&self) {
        self.session.lost.cancelled().await;
    }

    /// True once the hold is definitely lost.
    pub fn is_lost(&self) -> bool {
        self.session.lost.is_cancelled()
    }

    /// Stops monitoring and renewing and destroys the session.
    pub(super) async fn close(self) {
        self.session.done.cancel();
        let _ = self.monitor.await;
        self.session.close().await;
    }
}

/// What the monitor reads to decide whether we still hold.
#[derive(Debug, Clone)]
pub(super) enum Probe {
    Key(String),
    Semaphore { prefix: String, limit: u32 },
}

struct Monitor {
    client: Client,
    probe: Probe,
    session: String,
    retries: u32,
    retry_time: Duration,
    ttl: Duration,
}

impl Monitor {
    /// Returns when the hold is lost.
    async fn run(self) {
        let (mut index, mut retries, mut failing_since) = (0, self.retries, None::<Instant>);
        loop {
            match self.still_held(index).await {
                Ok((true, meta)) => {
                    index = if meta < index { 0 } else { meta };
                    (retries, failing_since) = (self.retries, None);
                    continue;
                }
                Ok((false, _)) => return,
                Err(e)
                    if is_no_leader(&e)
                        && failing_since.get_or_insert_with(Instant::now).elapsed() < self.ttl =>
                {
                    tracing::debug!("lock monitor: riding out a leader election: {e}");
                }
                Err(e) if is_retryable(&e) && retries > 0 => {
                    tracing::debug!("lock monitor: retrying after {e}");
                    retries -= 1;
                }
                Err(e) => {
                    tracing::warn!("lock monitor: giving the lock up: {e}");
                    return;
                }
            }
            index = 0;
            tokio::time::sleep(self.retry_time).await;
        }
    }

    async fn still_held(&self, index: u64) -> Result<(bool, u64), ClientError> {
        let wait = DEFAULT_LOCK_WAIT_TIME;
        match &self.probe {
            Probe::Key(key) => {
                let (entries, meta) = kv_read(&self.client, key, false, index, wait, true).await?;
                let held = entries.first().is_some_and(|e| e.session.as_deref() == Some(&self.session));
                Ok((held, meta))
            }
            Probe::Semaphore { prefix, limit } => {
                let (pairs, meta) = kv_read(&self.client, prefix, true, index, wait, true).await?;
                let held = super::semaphore::holds(prefix, *limit, &pairs, &self.session);
                Ok((held, meta))
            }
        }
    }
}

/// A session with its renewal task. `lost` fires when renewal learns the session is gone.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: String,
    client: Client,
    done: CancellationToken,
    lost: CancellationToken,
    renewer: JoinHandle<()>,
}

impl Session {
    pub(super) async fn create(
        client: &Client,
        opts: &LockOptions,
        behavior: &str,
    ) -> Result<Self, LockError> {
        let body = serde_json::json!({
            "Name": opts.session_name,
            "TTL": go_duration(opts.session_ttl),
            "LockDelay": go_duration(opts.lock_delay),
            "Behavior": behavior,
        });
        let path = "/v1/session/create";
        let r = client.request(Method::PUT, path, Some(body.to_string().into_bytes())).await;
        let v: serde_json::Value =
            r.and_then(|r| r.error_for_status()?.json(path)).map_err(LockError::Session)?;
        let id = v["ID"].as_str().unwrap_or_default().to_owned();
        let (done, lost) = (CancellationToken::new(), CancellationToken::new());
        let renew = renew_loop(client.clone(), id.clone(), opts.session_ttl, lost.clone());
        let stop = done.clone();
        let renewer = tokio::spawn(async move {
            tokio::select! {
                () = renew => {}
                () = stop.cancelled() => {}
            }
        });
        Ok(Self { id, client: client.clone(), done, lost, renewer })
    }

    /// Stops renewing and destroys the session (errors ignored: it expires anyway).
    pub(super) async fn close(self) {
        self.done.cancel();
        let _ = self.renewer.await;
        let path = format!("/v1/session/destroy/{}", escape_path(&self.id));
        let _ = self.client.request(Method::PUT, &path, None).await;
    }
}

/// Renews every TTL/2 (adopting a TTL the server raises); gives up, firing `lost`, when the
/// session is gone or no renewal succeeded for a whole TTL (Go `RenewPeriodic`).
async fn renew_loop(client: Client, id: String, initial_ttl: Duration, lost: CancellationToken) {
    let path = format!("/v1/session/renew/{}", escape_path(&id));
    let (mut ttl, mut wait, mut last_ok) = (initial_ttl, initial_ttl / 2, Instant::now());
    loop {
        tokio::time::sleep(wait).await;
        match client.request(Method::PUT, &path, None).await.and_then(body_unless_404) {
            Ok(Some(body)) => {
                let entries: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
                let Some(entry) = entries.first() else { break };
                if let Some(t) = entry["TTL"].as_str().and_then(|t| crate::config::parse_go_duration(t).ok())
                    && !t.is_zero()
                {
                    ttl = t;
                }
                (wait, last_ok) = (ttl / 2, Instant::now());
            }
            Ok(None) => break,
            Err(e) if last_ok.elapsed() < initial_ttl => {
                tracing::debug!("session renewal failed, retrying: {e}");
                wait = Duration::from_secs(1).min(ttl / 2);
            }
            Err(e) => {
                tracing::warn!("session renewal failed for a whole TTL: {e}");
                break;
            }
        }
    }
    lost.cancel();
}

/// The body of a 2xx answer, `None` for 404, else the API error.
fn body_unless_404(r: Response) -> Result<Option<bytes::Bytes>, ClientError> {
    if r.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    r.error_for_status().map(|r| Some(r.body))
}

/// `path.Join(prefix, name)` for KV keys.
pub fn join_key(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") }
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", escape_path(key))
}

/// A (blocking) KV read that keeps `X-Consul-Index` also on 404.
pub(super) async fn kv_read(
    client: &Client,
    key: &str,
    recurse: bool,
    index: u64,
    wait: Duration,
    consistent: bool,
) -> Result<(Vec<KvEntry>, u64), ClientError> {
    let mut path = kv_path(key);
    let mut params = Vec::new();
    if recurse {
        params.push("recurse".to_owned());
    }
    if consistent {
        params.push("consistent".to_owned());
    }
    if index > 0 {
        params.push(format!("index={index}&wait={}", go_duration(wait)));
    }
    if !params.is_empty() {
        path = format!("{path}?{}", params.join("&"));
    }
    let r = client.request(Method::GET, &path, None).await?;
    let meta = r.index().unwrap_or(0);
    if r.status == StatusCode::NOT_FOUND {
        return Ok((Vec::new(), meta));
    }
    let entries = r.error_for_status()?.json(&path)?;
    Ok((entries, meta))
}

/// A PUT answered with `true` / `false`.
pub(super) async fn put_bool(client: &Client, path: &str, body: Vec<u8>) -> Result<bool, ClientError> {
    let r = client.request(Method::PUT, path, Some(body)).await?.error_for_status()?;
    r.json(path)
}

/// `15s`, `1.5s`: a duration as Go parses it.
pub(super) fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// 5xx, 429 and unreachable agents may heal (Go `api.IsRetryableError`, plus 429).
fn is_retryable(e: &ClientError) -> bool {
    e.is_connect() || e.status().is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS)
}

/// A leader election in progress.
fn is_no_leader(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status, body } if status.is_server_error() && body.contains("No cluster leader"))
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_go_client() {
        assert_eq!(LOCK_FLAG_VALUE, 3_304_740_253_564_472_344);
        assert_eq!(SEMAPHORE_FLAG_VALUE, 16_210_313_421_097_356_768);
    }

    #[test]
    fn keys_join_like_go_path_join() {
        assert_eq!(join_key("service/web", ".lock"), "service/web/.lock");
        assert_eq!(join_key("service/web/", ".lock"), "service/web/.lock");
        assert_eq!(join_key("", ".lock"), ".lock");
    }

    #[test]
    fn durations_are_written_the_way_go_parses_them() {
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(Fence { lock_index: 3, modify_index: 42 }.to_string(), "3/42");
    }

    #[test]
    fn only_elections_and_server_errors_are_transient() {
        let api = |status: u16, body: &str| ClientError::Api {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.to_owned(),
        };
        assert!(is_no_leader(&api(500, "No cluster leader")));
        assert!(!is_no_leader(&api(500, "rpc error")));
        assert!(is_retryable(&api(500, "rpc error")));
        assert!(is_retryable(&api(429, "")));
        assert!(!is_retryable(&api(403, "Permission denied")));
    }
}
