//! `sekisho monitor [-log-level=LEVEL] [-log-json]`: stream an agent's log lines as they are
//! written, until interrupted (exit 0) or the agent goes away (exit 1, Consul's text).
//!
//! The typed client reads whole bodies, so this command reads `/v1/agent/monitor` chunk by
//! chunk with its own small hyper request.

use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::{ClientConfig, TOKEN_HEADER};

const LONG_ABOUT: &str = "\
Show the log lines of a running agent as they are written. The monitor can ask for a more
verbose level than the agent logs at: an agent started with -log-level=info still streams
its debug lines to `sekisho monitor -log-level=debug`. Stops on Ctrl-C (exit 0) or when the
agent goes away (exit 1).";

const EXAMPLES: &str = "\
Examples:
  $ sekisho monitor
  2024-05-01T10:00:00.123Z [INFO]  agent: agent started: node=node1 dc=dc1

  Debug lines as JSON, for a log shipper:
    $ sekisho monitor -log-level=debug -log-json";

/// Consul's text when the stream ends without being interrupted.
const REMOTE_ENDED: &str = "Remote side ended the monitor! This usually means that the\n\
    remote side has exited or crashed.";

/// `sekisho monitor` flags.
#[derive(Args, Debug)]
#[command(about = "Stream logs from a Sekisho agent", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct MonitorArgs {
    /// Lowest level to show: trace, debug, info, warn or err
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "INFO")]
    log_level: String,
    /// Print each line as a JSON object
    #[arg(long = "log-json")]
    log_json: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Streams until interrupted or the agent ends the stream.
pub(crate) async fn run(
    args: &MonitorArgs,
    config: &ClientConfig,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let mut body = match start(args, config).await {
        Ok(body) => body,
        Err(message) => {
            out.error(format!("Error starting monitor: {message}"))?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut pending = Vec::new();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            signal = interrupted() => {
                signal?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    pending.extend_from_slice(&data);
                    print_lines(&mut pending, out)?;
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    if !pending.is_empty() {
        out.line(&pending)?;
    }
    out.line("")?;
    out.line(REMOTE_ENDED)?;
    Ok(ExitCode::FAILURE)
}

/// Writes every complete line of `pending` and keeps the incomplete rest.
fn print_lines(pending: &mut Vec<u8>, out: &mut Output) -> std::io::Result<()> {
    let Some(last) = pending.iter().rposition(|&b| b == b'\n') else { return Ok(()) };
    for line in pending[..last].split(|&b| b == b'\n') {
        out.line(line)?;
    }
    pending.drain(..=last);
    out.flush()
}

/// Sends the request; a non-2xx answer or a connection failure becomes Consul's message.
async fn start(args: &MonitorArgs, config: &ClientConfig) -> Result<hyper::body::Incoming, String> {
    let url = monitor_url(&config.address, &args.log_level, args.log_json)?;
    let mut request = Request::get(&url);
    if let Some(token) = &config.token {
        request = request.header(TOKEN_HEADER, token);
    }
    let request =
        request.body(Empty::<Bytes>::new()).map_err(|e| format!("invalid request for {url}: {e}"))?;
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.request(request).await.map_err(|e| format!("Get {url:?}: {}", cause(&e, &url)))?;
    let (parts, body) = response.into_parts();
    if parts.status == StatusCode::OK {
        return Ok(body);
    }
    let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    Err(format!("Unexpected response code: {} ({})", parts.status.as_u16(), text.trim()))
}

/// `http://host:port/v1/agent/monitor?loglevel=…[&logjson]` for a configured address.
fn monitor_url(address: &str, level: &str, json: bool) -> Result<String, String> {
    let trimmed = address.trim().trim_end_matches('/');
    let base = match trimmed.split_once("://") {
        None => format!("http://{trimmed}"),
        Some(("http", _)) => trimmed.to_owned(),
        Some((scheme, _)) => {
            return Err(format!("address {address:?}: the {scheme} scheme is not supported"));
        }
    };
    let level: String = level
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    let mut url = format!("{base}/v1/agent/monitor?loglevel={level}");
    if json {
        url.push_str("&logjson");
    }
    url.parse::<http::Uri>().map_err(|e| format!("address {address:?}: {e}"))?;
    Ok(url)
}

/// Why a request failed, Go's way for a refused connection (`dial tcp h:p: connect: connection
/// refused`), else the innermost cause (hyper wraps it in a generic "client error").
fn cause(err: &(dyn std::error::Error + 'static), url: &str) -> String {
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            let authority = url.parse::<http::Uri>().ok().and_then(|u| u.authority().map(|a| a.to_string()));
            return format!("dial tcp {}: connect: connection refused", authority.unwrap_or_default());
        }
        last = e.to_string();
        source = e.source();
    }
    last
}

/// Ctrl-C or SIGTERM.
async fn interrupted() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_level_and_json_flag() {
        assert_eq!(
            monitor_url("127.0.0.1:8500", "debug", true).unwrap(),
            "http://127.0.0.1:8500/v1/agent/monitor?loglevel=debug&logjson"
        );
        assert_eq!(
            monitor_url("http://h:1/", "a b", false).unwrap(),
            "http://h:1/v1/agent/monitor?loglevel=a%20b"
        );
        assert!(monitor_url("https://h:1", "info", false).is_err());
    }

    #[test]
    fn only_complete_lines_are_printed() {
        let (buf, out) = capture();
        let mut o = Output::new(Box::new(out), Box::new(std::io::sink()));
        let mut pending = b"one\ntwo\nthr".to_vec();
        print_lines(&mut pending, &mut o).unwrap();
        assert_eq!(pending, b"thr");
        assert_eq!(&*buf.lock(), b"one\ntwo\n");
    }

    fn capture() -> (std::sync::Arc<parking_lot::Mutex<Vec<u8>>>, Shared) {
        let buf = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        (buf.clone(), Shared(buf))
    }

    struct Shared(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
