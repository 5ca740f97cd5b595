//! Watch handlers: a script that reads the JSON on stdin, or an HTTP endpoint the JSON is
//! sent to.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::plan::{HandlerSpec, HttpHandlerConfig};
use super::runner::{Handler, Update};

/// How much of a script's output the agent keeps for its log line.
const MAX_LOGGED_OUTPUT: usize = 4096;

/// The JSON a handler receives: compact with a trailing newline, as Go's `json.Encoder`.
pub fn encode(update: &Update) -> Vec<u8> {
    let mut body = serde_json::to_vec(&update.body).unwrap_or_else(|_| b"null".to_vec());
    body.push(b'\n');
    body
}

/// Runs a program per change with the JSON on stdin and `CONSUL_INDEX` set.
#[derive(Debug, Clone)]
pub struct ScriptHandler {
    argv: Vec<String>,
    /// Let the child write to our stdout and stderr (the CLI); otherwise its output is
    /// collected and logged (the agent).
    pub inherit_output: bool,
}

impl ScriptHandler {
    /// `argv[0]` run directly with the rest as its arguments.
    pub fn args(argv: Vec<String>) -> Self {
        ScriptHandler { argv, inherit_output: false }
    }

    /// A command line run with `sh -c`.
    pub fn shell(line: &str) -> Self {
        Self::args(vec!["/bin/sh".into(), "-c".into(), line.to_owned()])
    }

    /// Runs the handler once; `Err` names a failed start or a non-zero exit.
    pub async fn run(&self, update: &Update) -> Result<(), String> {
        let (prog, rest) = self.argv.split_first().ok_or("empty handler command")?;
        let mut cmd = Command::new(prog);
        cmd.args(rest).env("CONSUL_INDEX", update.index.to_string()).stdin(Stdio::piped()).kill_on_drop(true);
        if !self.inherit_output {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| format!("starting {prog}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A handler that ignores its input may exit before reading it all.
            let _ = stdin.write_all(&encode(update)).await;
        }
        let output = child.wait_with_output().await.map_err(|e| format!("waiting for {prog}: {e}"))?;
        if !self.inherit_output {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            let cut = crate::checks::floor_boundary(&text, MAX_LOGGED_OUTPUT);
            tracing::debug!(handler = %prog, output = %&text[..cut], "watch handler output");
        }
        match output.status.code() {
            Some(0) => Ok(()),
            Some(code) => Err(format!("exit status {code}")),
            None => Err(format!("{prog} was killed by a signal")),
        }
    }
}

/// POSTs the JSON (by default) with `X-Consul-Index` and `Content-Type: application/json`.
#[derive(Debug, Clone)]
pub struct HttpHandler(pub HttpHandlerConfig);

impl HttpHandler {
    /// Sends one request; `Err` unless the answer is 2xx.
    pub async fn run(&self, update: &Update) -> Result<(), String> {
        let cfg = &self.0;
        let mut headers = cfg.header.clone();
        headers.entry("Content-Type".into()).or_insert_with(|| vec!["application/json".into()]);
        headers.insert("X-Consul-Index".into(), vec![update.index.to_string()]);
        let body = String::from_utf8_lossy(&encode(update)).into_owned();
        let probe = crate::checks::http::HttpProbe {
            url: &cfg.path,
            method: &cfg.method,
            headers: &headers,
            body: &body,
            tls_skip_verify: cfg.tls_skip_verify,
            tls_server_name: "",
            disable_redirects: false,
        };
        let (status, output) = probe.check(cfg.timeout, MAX_LOGGED_OUTPUT).await;
        if status == crate::checks::Status::Passing { Ok(()) } else { Err(output) }
    }
}

/// An agent config watch's handler: failures are logged and the watch goes on.
#[derive(Debug, Clone)]
pub struct LoggingHandler {
    /// Names the watch in log lines.
    pub name: String,
    handler: Configured,
}

#[derive(Debug, Clone)]
enum Configured {
    Script(ScriptHandler),
    Http(HttpHandler),
}

impl LoggingHandler {
    /// The handler for `spec`.
    pub fn new(name: String, spec: &HandlerSpec) -> Self {
        let handler = match spec {
            HandlerSpec::Args(a) => Configured::Script(ScriptHandler::args(a.clone())),
            HandlerSpec::Shell(s) => Configured::Script(ScriptHandler::shell(s)),
            HandlerSpec::Http(h) => Configured::Http(HttpHandler(h.clone())),
        };
        LoggingHandler { name, handler }
    }
}

impl Handler for LoggingHandler {
    async fn handle(&mut self, update: Update) -> Result<(), String> {
        let r = match &self.handler {
            Configured::Script(s) => s.run(&update).await,
            Configured::Http(h) => h.run(&update).await,
        };
        match r {
            Ok(()) => tracing::debug!(watch = %self.name, index = update.index, "watch handler ran"),
            Err(e) => {
                tracing::error!(watch = %self.name, index = update.index, error = %e, "watch handler failed")
            }
        }
        Ok(())
    }
}
