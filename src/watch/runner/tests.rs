//! The runner against fake sources and handlers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;

/// A source backed by a channel of (index, body): blocks until the index passes the asked one.
struct ChannelSource(watch::Receiver<(u64, Value)>);

impl Source for ChannelSource {
    async fn fetch(&mut self, index: u64) -> Result<Update, String> {
        let got = self.0.wait_for(|(i, _)| *i > index || index == 0).await.map_err(|e| e.to_string())?;
        Ok(Update { index: got.0, body: got.1.clone() })
    }
}

/// A slow handler recording what it saw and how many runs overlapped.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Update>>>,
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
    delay: Duration,
}

impl Handler for Recorder {
    async fn handle(&mut self, update: Update) -> Result<(), String> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.seen.lock().push(update);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn slow_handler_coalesces_a_burst_and_sees_the_final_value() {
    let (tx, rx) = watch::channel((1, json!(0)));
    let rec = Recorder { delay: Duration::from_millis(100), ..Recorder::default() };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(ChannelSource(rx), rec.clone(), Backoff::default(), stop.clone()));
    wait_until("the first run", || rec.running.load(Ordering::SeqCst) == 1).await;
    for i in 1..=100u64 {
        tx.send_replace((i + 1, json!(i)));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_until("the final value", || rec.seen.lock().last().map(|u| u.body.clone()) == Some(json!(100)))
        .await;
    let seen = rec.seen.lock().clone();
    assert!(seen.len() <= 5, "a burst of 100 changes ran the handler {} times", seen.len());
    assert_eq!(seen[0].body, json!(0), "the first run has the value at start");
    assert_eq!(seen.last().unwrap().index, 101);
    assert_eq!(rec.max_running.load(Ordering::SeqCst), 1, "handler runs overlapped");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn identical_bodies_and_unchanged_indexes_do_not_fire() {
    let (tx, rx) = watch::channel((5, json!("a")));
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(ChannelSource(rx), rec.clone(), Backoff::default(), stop.clone()));
    wait_until("the first run", || rec.seen.lock().len() == 1).await;
    tx.send_replace((6, json!("a")));
    tx.send_replace((7, json!("b")));
    wait_until("the change", || rec.seen.lock().len() == 2).await;
    assert_eq!(rec.seen.lock()[1], Update { index: 7, body: json!("b") });
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A scripted source: answers from a queue and records the index of every query.
struct Scripted {
    answers: VecDeque<Result<Update, String>>,
    asked: Arc<Mutex<Vec<(u64, tokio::time::Instant)>>>,
}

impl Source for Scripted {
    async fn fetch(&mut self, index: u64) -> Result<Update, String> {
        self.asked.lock().push((index, tokio::time::Instant::now()));
        match self.answers.pop_front() {
            Some(a) => a,
            None => std::future::pending().await,
        }
    }
}

fn ok(index: u64, body: Value) -> Result<Update, String> {
    Ok(Update { index, body })
}

#[tokio::test]
async fn errors_back_off_exponentially_up_to_the_cap() {
    let mut answers: VecDeque<_> = (0..6).map(|_| Err("down".to_owned())).collect();
    answers.push_back(ok(3, json!(1)));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let source = Scripted { answers, asked: asked.clone() };
    let rec = Recorder::default();
    let backoff = Backoff { min: Duration::from_millis(20), max: Duration::from_millis(100) };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(source, rec.clone(), backoff, stop.clone()));
    wait_until("the run after the errors", || rec.seen.lock().len() == 1).await;
    let times: Vec<_> = asked.lock().iter().map(|(_, t)| *t).collect();
    let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    // Real time: each pause is at least the backoff, and not much more.
    for (gap, want) in gaps.iter().zip([20, 40, 80, 100, 100, 100]) {
        assert!(*gap >= want && *gap < want + 200, "pauses {gaps:?}");
    }
    assert!(asked.lock()[..7].iter().all(|(i, _)| *i == 0), "errors keep the index");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_index_that_goes_backwards_resets_to_zero() {
    let answers =
        VecDeque::from([ok(10, json!("a")), ok(10, json!("a")), ok(4, json!("b")), ok(6, json!("c"))]);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let rec = Recorder::default();
    let source = Scripted { answers, asked: asked.clone() };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(source, rec.clone(), Backoff::default(), stop.clone()));
    wait_until("the last value", || rec.seen.lock().last().map(|u| u.body.clone()) == Some(json!("c"))).await;
    wait_until("the query after it", || asked.lock().len() == 5).await;
    let indexes: Vec<u64> = asked.lock().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 10, 10, 0, 6]);
    // "a" and "b" may be folded into "c" if it arrived while the handler ran.
    let bodies: Vec<Value> = rec.seen.lock().iter().map(|u| u.body.clone()).collect();
    let mut all = [json!("a"), json!("b"), json!("c")].into_iter();
    assert!(bodies.iter().all(|b| all.any(|a| a == *b)), "{bodies:?}");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[test]
fn next_index_never_blocks_on_zero() {
    assert_eq!(next_index(0, 0), 1);
    assert_eq!(next_index(5, 9), 9);
    assert_eq!(next_index(9, 5), 0);
    assert_eq!(Backoff::default().delay(40), Duration::from_secs(60));
}
