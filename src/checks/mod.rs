//! Health-check runners: parsing of check definitions ([`CheckSpec::parse`]) and one
//! independent Tokio task per running check ([`CheckRunner`]), with Consul's probe semantics
//! and output texts (`agent/checks/check.go`, `grpc.go`, `alias.go`).
//!
//! ```text
//!  CheckSpec ──► CheckRunner::spawn ──► task (one per check, never overlapping runs)
//!                     │                   ttl:      deadline timer ◄── ttl_update()
//!                     │                   alias:    alias_changes() / periodic refresh
//!                     │                   others:   random stagger, then probe every interval
//!                     │                              probe ─► Thresholds (StatusHandler)
//!                     ▼                                          │
//!               CheckNotify::update(check_id, status, output) ◄──┘
//! ```
//!
//! The runner never reports the initial status itself: the caller shows
//! `initial_status` (or critical) until the first result. Script checks run the program
//! directly in its own process group; at the timeout the whole group gets SIGKILL. Stopping
//! or dropping a runner cancels it at once (a running script's group is killed too), and once
//! [`CheckRunner::stop`] returns no further `update` for it is delivered.

mod alias;
mod grpc;
pub(crate) mod http;
mod net;
mod script;
mod spec;
mod status;
mod tcp;
mod ttl;

use std::sync::Arc;
use std::time::Duration;

use std::cell::Cell;

use parking_lot::ReentrantMutex;
use rand::RngExt;
use tokio::task::JoinHandle;

pub use spec::{CheckKind, CheckSpec, DEFAULT_PROBE_TIMEOUT, DEFAULT_SCRIPT_TIMEOUT};
pub use status::Status;

/// Consul's `checks.MinInterval`: no interval check runs more often than this.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Consul's `checks.DefaultBufSize` (`check_output_max_size` default).
pub const DEFAULT_OUTPUT_MAX: usize = 4 * 1024;
/// How often an alias check re-reads the aliased service without a change notification
/// (Consul's `maxDurationBetweenUpdates`).
pub const ALIAS_REFRESH: Duration = Duration::from_secs(60);

/// One check of an aliased service instance (or of its node), as the alias check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasedCheck {
    /// The check's ID (an alias check skips itself).
    pub check_id: String,
    /// The check's name, quoted in the alias output.
    pub name: String,
    /// Current status.
    pub status: Status,
    /// Current output.
    pub output: String,
}

/// What a runner reports to, implemented by the agent's local state.
///
/// Calls come from runner tasks; they must not block for long. `update` may stop or drop the
/// runner that called it, but must not call its `ttl_update` (that waits for the TTL timer
/// lock held around the expiry report).
pub trait CheckNotify: Send + Sync + 'static {
    /// A runner's new result (after the threshold logic). Output is already truncated.
    fn update(&self, check_id: &str, status: Status, output: &str);
    /// The checks of service `service_id` on `node` (`None`: this agent's node) together
    /// with that node's own checks, or `None` when the service does not exist there.
    fn alias_checks(&self, node: Option<&str>, service_id: &str) -> Option<Vec<AliasedCheck>>;
    /// A receiver that changes whenever local services or checks change; alias checks
    /// re-evaluate on it.
    fn alias_changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Knobs of a runner beyond its spec.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// `check_output_max_size`; 0 means [`DEFAULT_OUTPUT_MAX`]. A spec's smaller
    /// `output_max_size` wins.
    pub max_output: usize,
    /// Interval floor ([`MIN_INTERVAL`]; tests lower it).
    pub min_interval: Duration,
    /// Alias re-evaluation period without notifications ([`ALIAS_REFRESH`]).
    pub alias_refresh: Duration,
    /// Delay an interval check's first run by a random part of its interval, as Consul does
    /// so that checks loaded together do not run together (default `true`; tests turn it
    /// off to get the first result at once).
    pub stagger: bool,
}

impl RunnerOptions {
    /// Consul's defaults with the given output limit.
    pub fn new(max_output: usize) -> RunnerOptions {
        RunnerOptions { max_output, min_interval: MIN_INTERVAL, alias_refresh: ALIAS_REFRESH, stagger: true }
    }

    fn output_limit(&self, spec: &CheckSpec) -> usize {
        let agent = if self.max_output == 0 { DEFAULT_OUTPUT_MAX } else { self.max_output };
        if spec.output_max_size > 0 { agent.min(spec.output_max_size) } else { agent }
    }
}

/// Delivers results for one check until stopped. `stop` from another thread waits for a
/// running delivery; the lock is reentrant so that `update` itself may stop (drop) the runner.
pub(crate) struct Reporter {
    check_id: String,
    notify: Arc<dyn CheckNotify>,
    stopped: ReentrantMutex<Cell<bool>>,
}

impl Reporter {
    pub(crate) fn report(&self, status: Status, output: &str) {
        let stopped = self.stopped.lock();
        if !stopped.get() {
            self.notify.update(&self.check_id, status, output);
        }
    }

    fn stop(&self) {
        self.stopped.lock().set(true);
    }
}

/// A running check. Dropping it (or [`CheckRunner::stop`]) cancels it promptly.
pub struct CheckRunner {
    reporter: Arc<Reporter>,
    task: JoinHandle<()>,
    ttl: Option<Arc<ttl::TtlShared>>,
}

impl CheckRunner {
    /// Starts `spec` with Consul's defaults ([`RunnerOptions::new`]). Must be called inside a
    /// Tokio runtime.
    pub fn spawn(spec: Arc<CheckSpec>, max_output: usize, notify: Arc<dyn CheckNotify>) -> CheckRunner {
        CheckRunner::spawn_with(spec, RunnerOptions::new(max_output), notify)
    }

    /// Starts `spec` with explicit options. Must be called inside a Tokio runtime.
    pub fn spawn_with(
        spec: Arc<CheckSpec>,
        opts: RunnerOptions,
        notify: Arc<dyn CheckNotify>,
    ) -> CheckRunner {
        let max_output = opts.output_limit(&spec);
        let reporter = Arc::new(Reporter {
            check_id: spec.id.clone(),
            notify,
            stopped: ReentrantMutex::new(Cell::new(false)),
        });
        let mut ttl = None;
        let task = match &spec.kind {
            CheckKind::Ttl { ttl: d } => {
                let shared = Arc::new(ttl::TtlShared::new(*d, max_output));
                ttl = Some(shared.clone());
                tokio::spawn(ttl::run(shared, reporter.clone()))
            }
            CheckKind::Alias { service, node } => {
                let alias = alias::Alias {
                    service: service.clone(),
                    node: node.clone(),
                    refresh: opts.alias_refresh,
                };
                tokio::spawn(alias.run(reporter.clone()))
            }
            _ => tokio::spawn(run_periodic(spec, opts, max_output, reporter.clone())),
        };
        CheckRunner { reporter, task, ttl }
    }

    /// TTL checks: records a status (from `/v1/agent/check/pass|warn|fail|update`), reports it
    /// at once and restarts the TTL. Returns the output as stored (truncated to the output
    /// limit, Consul's `... (captured N of M bytes)`), for persisting. Fails with Consul's
    /// `CheckID "<id>" does not have associated TTL` for other kinds.
    pub fn ttl_update(&self, status: Status, output: &str) -> Result<String, String> {
        match &self.ttl {
            Some(t) => Ok(t.update(&self.reporter, status, output)),
            None => Err(format!("CheckID {:?} does not have associated TTL", self.reporter.check_id)),
        }
    }

    /// Cancels the check. Once this returns, no further `update` for it is delivered.
    pub fn stop(&self) {
        self.reporter.stop();
        self.task.abort();
    }
}

impl Drop for CheckRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one probe run yields.
pub(crate) enum Outcome {
    /// Goes through the thresholds.
    Result(Status, String),
    /// Reported as is (script timeouts and start failures, as in Consul).
    Direct(Status, String),
}

/// Interval checks: a random first delay in `[0, interval)`, then probe, report, wait
/// `interval`, repeat. Runs of one check never overlap.
async fn run_periodic(spec: Arc<CheckSpec>, opts: RunnerOptions, max_output: usize, reporter: Arc<Reporter>) {
    let interval = spec.interval.max(opts.min_interval).max(Duration::from_millis(1));
    if opts.stagger {
        let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        let stagger = Duration::from_nanos(rand::rng().random_range(0..nanos));
        tokio::time::sleep(stagger).await;
    }
    let mut thresholds = status::Thresholds::new(
        spec.success_before_passing,
        spec.failures_before_warning,
        spec.failures_before_critical,
    );
    loop {
        match probe(&spec, max_output).await {
            Outcome::Direct(status, output) => reporter.report(status, &output),
            Outcome::Result(status, output) => {
                if let Some(status) = thresholds.observe(status) {
                    reporter.report(status, &output);
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn probe(spec: &CheckSpec, max_output: usize) -> Outcome {
    let timeout = spec.effective_timeout();
    let (status, output) = match &spec.kind {
        CheckKind::Http {
            url,
            method,
            headers,
            body,
            tls_skip_verify,
            tls_server_name,
            disable_redirects,
        } => {
            let p = http::HttpProbe {
                url,
                method,
                headers,
                body,
                tls_skip_verify: *tls_skip_verify,
                tls_server_name,
                disable_redirects: *disable_redirects,
            };
            p.check(timeout, max_output).await
        }
        CheckKind::Tcp { addr } => tcp::check_tcp(addr, timeout).await,
        CheckKind::Udp { addr } => tcp::check_udp(addr, timeout).await,
        CheckKind::Grpc { target, use_tls, tls_skip_verify, tls_server_name } => {
            let p = grpc::GrpcProbe {
                target,
                use_tls: *use_tls,
                tls_skip_verify: *tls_skip_verify,
                tls_server_name,
            };
            p.check(timeout).await
        }
        CheckKind::Script { args } => return script::run(args, timeout, max_output).await,
        CheckKind::Ttl { .. } | CheckKind::Alias { .. } => {
            return Outcome::Direct(Status::Critical, "not an interval check".into());
        }
    };
    Outcome::Result(status, output)
}

/// `bytes` as text after dropping a character cut in two at the end (by a byte limit);
/// invalid sequences become U+FFFD.
pub(crate) fn lossy_prefix(bytes: &[u8]) -> String {
    let mut end = bytes.len();
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        if need > back {
            end = bytes.len() - back;
        }
        break;
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Decodes `%XX` escapes (`grpc-message`, URL userinfo); a malformed escape stays as is.
pub(crate) fn percent_decode(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%'
            && let Some(b) = v
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The largest index `<= max` that is a char boundary of `s`.
pub(crate) fn floor_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
