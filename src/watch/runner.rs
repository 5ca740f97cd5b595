//! The watch loop: a poller running blocking queries against a [`Source`], and a handler
//! loop that takes the newest value whenever it is idle.
//!
//! ```text
//!  poller: fetch(index) ─► error? back off (min·2ⁿ, capped) ─► retry same index
//!            │ ok (new index, body)
//!            ├─ index unchanged (wait timed out) ─► fetch again
//!            ├─ index went backwards ─► next fetch from index 0
//!            └─ body differs from the last one sent ─► latest := (index, body)
//!  handler:  wait for latest to change ─► handle(newest) ─► repeat
//! ```
//!
//! The handler never runs twice at once; values that arrive while it runs overwrite each
//! other in the `latest` slot, so a burst of changes becomes one later run with the newest
//! value. Identical bodies are not handed on again (Consul's watch compares results with
//! `reflect.DeepEqual` the same way), so a write that changes nothing does not fire.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One result of a watched view.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The `X-Consul-Index` it was read at.
    pub index: u64,
    /// The JSON view (Consul's shapes).
    pub body: Value,
}

/// A blocking query: returns once the view's index passes `index` (or its wait ends);
/// `index` 0 answers at once.
pub trait Source: Send + 'static {
    /// Reads the view.
    fn fetch(&mut self, index: u64) -> impl Future<Output = Result<Update, String>> + Send;
}

/// Receives each changed view. An error ends the watch (the CLI exits 1); agent handlers
/// log their failures and return `Ok`.
pub trait Handler: Send + 'static {
    /// Handles one value.
    fn handle(&mut self, update: Update) -> impl Future<Output = Result<(), String>> + Send;
}

/// Exponential backoff between failed queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The pause after the first failure.
    pub min: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { min: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// The pause after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.min.saturating_mul(1 << exp).min(self.max)
    }
}

/// The index of the next query after one answered at `got` when the previous asked from
/// `last`: back to 0 when the index went backwards (snapshot restore, deleted keys), never
/// blocking on 0 otherwise (Consul's blocking-query rules).
pub fn next_index(last: u64, got: u64) -> u64 {
    if got < last { 0 } else { got.max(1) }
}

/// Runs a watch until `stop` is cancelled (`Ok`) or the handler fails (`Err`).
pub async fn run<S: Source, H: Handler>(
    source: S,
    mut handler: H,
    backoff: Backoff,
    stop: CancellationToken,
) -> Result<(), String> {
    let (tx, mut rx) = watch::channel::<Option<Update>>(None);
    let handle = async move {
        while rx.changed().await.is_ok() {
            let update = rx.borrow_and_update().clone();
            if let Some(update) = update {
                handler.handle(update).await?;
            }
        }
        Ok(())
    };
    tokio::select! {
        () = stop.cancelled() => Ok(()),
        () = poll(source, backoff, tx) => Ok(()),
        r = handle => r,
    }
}

/// The poller: blocking queries forever, publishing changed bodies into `tx`.
async fn poll<S: Source>(mut source: S, backoff: Backoff, tx: watch::Sender<Option<Update>>) {
    let mut index = 0;
    let mut failures = 0u32;
    let mut last_body: Option<Value> = None;
    loop {
        let update = match source.fetch(index).await {
            Ok(u) => u,
            Err(e) => {
                failures = failures.saturating_add(1);
                let retry = backoff.delay(failures);
                tracing::warn!(error = %e, ?retry, "watch query failed");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        failures = 0;
        if last_body.is_some() && update.index == index {
            continue;
        }
        index = next_index(index, update.index);
        if last_body.as_ref() == Some(&update.body) {
            continue;
        }
        last_body = Some(update.body.clone());
        tx.send_replace(Some(update));
    }
}

#[cfg(test)]
mod tests;
