//! Log streaming for `/v1/agent/monitor`: a tracing [`Layer`] that hands every event to the
//! monitors attached at that moment, through a bounded broadcast channel.
//!
//! ```text
//!  tracing event ─► layer(): no monitor? return ─► LogRecord ─► broadcast (512, drops oldest)
//!                   level filter = the most verbose monitor       │
//!  GET /v1/agent/monitor ─► subscribe(level, json) ─► LogStream::next ─► hclog-style line
//! ```
//!
//! Logging never blocks and never waits for a slow monitor: the channel overwrites the oldest
//! records and a monitor that fell behind gets one line saying how many it lost. The filter
//! lets through only the levels some monitor asked for, so with no monitor attached the layer
//! costs nothing. The layer is installed by `sekisho agent`; without it (in-process test
//! agents) monitors simply see no lines.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::clock::Civil;

/// Records buffered per monitor before the oldest are dropped (Consul's monitor buffer).
const BUFFER: usize = 512;

/// One log event, captured once and formatted by each monitor as it asked.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub time: SystemTime,
    pub level: Level,
    /// `server.leader` for target `sekisho::server::leader`.
    pub module: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

struct Hub {
    tx: broadcast::Sender<Arc<LogRecord>>,
    /// Monitors attached per level (index: ERROR 0 … TRACE 4).
    attached: Mutex<[usize; 5]>,
    /// The most verbose level asked for: 0 none, 1 ERROR … 5 TRACE.
    max: AtomicU8,
    closed: Mutex<CancellationToken>,
}

static HUB: LazyLock<Hub> = LazyLock::new(|| Hub {
    tx: broadcast::channel(BUFFER).0,
    attached: Mutex::new([0; 5]),
    max: AtomicU8::new(0),
    closed: Mutex::new(CancellationToken::new()),
});

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Consul's `loglevel` values (`trace`, `debug`, `info`, `warn`, `err`, `error`), any case.
pub fn parse_level(s: &str) -> Option<Level> {
    Some(match s.to_ascii_lowercase().as_str() {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "warn" => Level::WARN,
        "err" | "error" => Level::ERROR,
        _ => return None,
    })
}

/// The layer `sekisho agent` adds to its subscriber, with its own level filter.
pub fn layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Broadcast.with_filter(MonitorFilter)
}

struct Broadcast;

impl<S: Subscriber> Layer<S> for Broadcast {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let hub = &*HUB;
        if hub.tx.receiver_count() == 0 {
            return;
        }
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = LogRecord {
            time: SystemTime::now(),
            level: *meta.level(),
            module: module_of(meta.target()),
            message: fields.message,
            fields: fields.rest,
        };
        // Fails only when every monitor left meanwhile.
        let _ = hub.tx.send(Arc::new(record));
    }
}

/// Lets through the levels some monitor wants; re-evaluated when monitors come and go.
struct MonitorFilter;

impl MonitorFilter {
    fn wants(level: &Level) -> bool {
        rank(level) <= HUB.max.load(Ordering::Relaxed)
    }
}

impl<S> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        Self::wants(meta.level())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta.level()) { Interest::always() } else { Interest::never() }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match HUB.max.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.rest.push((field.name().to_owned(), value));
        }
    }
}

/// `sekisho::server::leader` → `server.leader`; other crates keep their name.
fn module_of(target: &str) -> String {
    let t = target.strip_prefix("sekisho::").unwrap_or(target);
    if t == "sekisho" { "agent".to_owned() } else { t.replace("::", ".") }
}

/// Ends every monitor stream attached now (the agent calls it when it shuts down, so open
/// monitor connections do not hold up the HTTP server's graceful stop). Later monitors work.
pub fn close_monitors() {
    let mut closed = HUB.closed.lock();
    closed.cancel();
    *closed = CancellationToken::new();
}

/// How many monitors are attached right now.
pub fn attached() -> usize {
    HUB.attached.lock().iter().sum()
}

/// Attaches a monitor for `level` and more severe, formatted as hclog text or JSON lines.
pub fn subscribe(level: Level, json: bool) -> LogStream {
    let slot = Slot::attach(&level);
    LogStream { rx: HUB.tx.subscribe(), level, json, closed: HUB.closed.lock().clone(), _slot: slot }
}

/// One attached monitor.
#[derive(Debug)]
pub struct LogStream {
    rx: broadcast::Receiver<Arc<LogRecord>>,
    level: Level,
    json: bool,
    closed: CancellationToken,
    _slot: Slot,
}

impl LogStream {
    /// The next line (with its newline), or `None` once the monitors were closed or `stop`
    /// was cancelled; records already buffered then are still delivered first.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<String> {
        loop {
            if self.closed.is_cancelled() || stop.is_cancelled() {
                return match self.rx.try_recv() {
                    Ok(r) if self.wants(&r) => Some(self.format(&r)),
                    Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
                    Err(_) => None,
                };
            }
            let received = tokio::select! {
                biased;
                r = self.rx.recv() => r,
                () = self.closed.cancelled() => continue,
                () = stop.cancelled() => continue,
            };
            match received {
                Ok(r) if self.wants(&r) => return Some(self.format(&r)),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => return Some(self.format(&dropped(n))),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn wants(&self, r: &LogRecord) -> bool {
        rank(&r.level) <= rank(&self.level)
    }

    fn format(&self, r: &LogRecord) -> String {
        if self.json { json_line(r) } else { text_line(r) }
    }
}

fn dropped(n: u64) -> LogRecord {
    LogRecord {
        time: SystemTime::now(),
        level: Level::WARN,
        module: "agent.monitor".into(),
        message: "monitor fell behind; log lines dropped".into(),
        fields: vec![("dropped_count".into(), n.to_string())],
    }
}

/// Keeps the level bookkeeping of one monitor; detaching may lower the filter level.
#[derive(Debug)]
struct Slot(usize);

impl Slot {
    fn attach(level: &Level) -> Slot {
        let i = usize::from(rank(level) - 1);
        HUB.attached.lock()[i] += 1;
        refresh_max();
        Slot(i)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        HUB.attached.lock()[self.0] -= 1;
        refresh_max();
    }
}

fn refresh_max() {
    let max = {
        let attached = HUB.attached.lock();
        attached.iter().rposition(|&n| n > 0).map_or(0, |i| i as u8 + 1)
    };
    if HUB.max.swap(max, Ordering::Relaxed) != max {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// hclog's text format: `2017-08-08T02:55:10.123Z [INFO]  server.leader: message: k=v`.
pub fn text_line(r: &LogRecord) -> String {
    let bracket = match r.level {
        Level::TRACE => "[TRACE]",
        Level::DEBUG => "[DEBUG]",
        Level::INFO => "[INFO] ",
        Level::WARN => "[WARN] ",
        Level::ERROR => "[ERROR]",
    };
    let mut line = format!("{} {bracket} ", Civil::of(r.time).millis());
    if !r.module.is_empty() {
        line.push_str(&r.module);
        line.push_str(": ");
    }
    line.push_str(&r.message);
    if !r.fields.is_empty() {
        line.push(':');
        for (k, v) in &r.fields {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&quote(v));
        }
    }
    line.push('\n');
    line
}

/// A value as hclog prints it: bare unless it has spaces, quotes or control characters.
fn quote(v: &str) -> String {
    let plain =
        !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
    if plain { v.to_owned() } else { format!("{v:?}") }
}

/// hclog's JSON format: `{"@level":"info","@message":…,"@module":…,"@timestamp":…,"k":"v"}`.
pub fn json_line(r: &LogRecord) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("@level".into(), r.level.as_str().to_ascii_lowercase().into());
    obj.insert("@message".into(), r.message.clone().into());
    obj.insert("@module".into(), r.module.clone().into());
    obj.insert("@timestamp".into(), Civil::of(r.time).micros().into());
    for (k, v) in &r.fields {
        obj.entry(k.clone()).or_insert_with(|| v.clone().into());
    }
    let mut line = serde_json::Value::Object(obj).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn record(level: Level, message: &str) -> LogRecord {
        LogRecord {
            time: UNIX_EPOCH + Duration::from_millis(1_502_160_910_123),
            level,
            module: "server.leader".into(),
            message: message.into(),
            fields: vec![("key".into(), "a/b".into()), ("reason".into(), "two words".into())],
        }
    }

    #[test]
    fn text_lines_look_like_hclog() {
        let line = text_line(&record(Level::INFO, "lock acquired"));
        assert_eq!(
            line,
            "2017-08-08T02:55:10.123Z [INFO]  server.leader: lock acquired: key=a/b reason=\"two words\"\n"
        );
        let mut bare = record(Level::ERROR, "boom");
        bare.fields.clear();
        bare.module.clear();
        assert_eq!(text_line(&bare), "2017-08-08T02:55:10.123Z [ERROR] boom\n");
    }

    #[test]
    fn json_lines_use_hclog_keys() {
        let line = json_line(&record(Level::WARN, "slow"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "slow");
        assert_eq!(v["@module"], "server.leader");
        assert_eq!(v["@timestamp"], "2017-08-08T02:55:10.123000Z");
        assert_eq!(v["reason"], "two words");
    }

    #[test]
    fn levels_parse_like_consul() {
        assert_eq!(parse_level("ERR"), Some(Level::ERROR));
        assert_eq!(parse_level("Debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("warning"), None);
        assert_eq!(module_of("sekisho::server::leader"), "server.leader");
        assert_eq!(module_of("openraft::core"), "openraft.core");
    }

    /// Everything that touches the process-wide hub runs in this one test, in order.
    #[tokio::test]
    async fn monitors_see_their_levels_and_a_lagging_one_is_told() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(layer());
        let _guard = tracing::subscriber::set_default(subscriber);
        let stop = CancellationToken::new();

        tracing::info!("before anyone listens");
        let mut info = subscribe(Level::INFO, false);
        let mut debug = subscribe(Level::DEBUG, true);
        tracing::debug!(key = "k1", "debug line");
        tracing::info!("info line");
        let first = info.next(&stop).await.unwrap();
        assert!(first.contains("[INFO]  ") && first.ends_with("info line\n"), "{first}");
        let d = debug.next(&stop).await.unwrap();
        assert!(d.contains("\"@message\":\"debug line\"") && d.contains("\"key\":\"k1\""), "{d}");
        assert!(debug.next(&stop).await.unwrap().contains("info line"));

        // A monitor that does not read loses the oldest lines and is told how many.
        for i in 0..BUFFER + 10 {
            tracing::info!("flood {i}");
        }
        let lag = info.next(&stop).await.unwrap();
        assert!(lag.contains("log lines dropped: dropped_count=10"), "{lag}");
        assert!(info.next(&stop).await.unwrap().ends_with("flood 10\n"));

        // Closing ends the streams once what was buffered is read.
        drop(debug);
        close_monitors();
        let mut seen = 0;
        while info.next(&stop).await.is_some() {
            seen += 1;
        }
        assert_eq!(seen, BUFFER - 1);
        drop(info);
        assert_eq!(HUB.max.load(Ordering::Relaxed), 0);
    }
}
