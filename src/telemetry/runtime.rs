//! Process and runtime figures read at render time from `/proc/self` (Linux; elsewhere the
//! figures that cannot be read are left out).

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::registry::Kind;
use super::render::Extra;

/// When telemetry was first touched: close to process start, since the agent configures
/// telemetry before serving.
pub(crate) static STARTED: LazyLock<(Instant, SystemTime)> =
    LazyLock::new(|| (Instant::now(), SystemTime::now()));

/// Linux's clock tick for `/proc/self/stat` CPU times (`CLK_TCK`, 100 on every mainstream
/// architecture).
const CLK_TCK: f64 = 100.0;

/// The figures, each present only when it could be read.
pub(crate) fn extras() -> Vec<Extra> {
    let mut out = Vec::new();
    let mut push = |json_name, prom_name, kind, help, value: Option<f64>| {
        if let Some(value) = value {
            out.push(Extra { json_name, prom_name, kind, help, value });
        }
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status_kib(&status, "VmRSS:").map(|k| k * 1024.0);
    let fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    let tasks = tokio::runtime::Handle::try_current().ok().map(|h| h.metrics().num_alive_tasks() as f64);
    let uptime = STARTED.0.elapsed().as_secs_f64();
    push(
        Some("consul.runtime.num_goroutines"),
        "consul_runtime_num_goroutines",
        Kind::Gauge,
        "Number of live tokio tasks (Consul: goroutines).",
        tasks,
    );
    push(
        Some("consul.runtime.sys_bytes"),
        "consul_runtime_sys_bytes",
        Kind::Gauge,
        "Resident memory in bytes.",
        rss,
    );
    push(
        Some("consul.runtime.open_fds"),
        "consul_runtime_open_fds",
        Kind::Gauge,
        "Open file descriptors.",
        fds,
    );
    push(
        Some("consul.runtime.uptime_seconds"),
        "consul_runtime_uptime_seconds",
        Kind::Gauge,
        "Seconds since the agent started.",
        Some(uptime),
    );
    push(None, "process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.", rss);
    let vsize = status_kib(&status, "VmSize:").map(|k| k * 1024.0);
    push(None, "process_virtual_memory_bytes", Kind::Gauge, "Virtual memory size in bytes.", vsize);
    push(None, "process_open_fds", Kind::Gauge, "Number of open file descriptors.", fds);
    push(None, "process_max_fds", Kind::Gauge, "Maximum number of open file descriptors.", max_fds());
    let start = STARTED.1.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
    push(
        None,
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        start,
    );
    push(
        None,
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
        cpu_seconds(),
    );
    out
}

/// A `Key:   123 kB` line of `/proc/self/status`, in KiB.
fn status_kib(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `)`.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLK_TCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        let status = "Name:\tsekisho\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048.0));
        assert_eq!(status_kib(status, "VmSize:"), Some(123_456.0));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_memory_and_fds() {
        let e = extras();
        let get = |n: &str| e.iter().find(|x| x.prom_name == n).map(|x| x.value);
        assert!(get("process_resident_memory_bytes").is_some_and(|v| v > 0.0));
        assert!(get("process_open_fds").is_some_and(|v| v >= 1.0));
        assert!(get("process_cpu_seconds_total").is_some_and(|v| v >= 0.0));
    }
}
