//! `sekisho watch -type TYPE [flags] [handler...]`: Consul's `consul watch`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{ArgAction, Args};

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::watch::plan::{self, KindParams};
use crate::watch::{Backoff, Handler, HttpSource, ScriptHandler, Update, runner};

const LONG_ABOUT: &str = "\
Watch a view of the cluster (a key, a key prefix, the service or node list, the instances of
one service, checks or user events) with blocking queries. Without a handler the JSON view is
printed on every change; with one, the handler runs once at start and again whenever the view
changes, with the JSON on stdin and CONSUL_INDEX=<index> in its environment. Changes that
arrive while the handler runs are folded into one later run with the newest view; the
handler never runs twice at once. Query errors are retried with backoff (1s doubling to 60s).
A failing handler stops the watch with exit code 1. Flags end where the handler command
begins: its own dash arguments are passed to it as written.

Types: key (-key), keyprefix (-prefix), services, nodes, service (-service, -tag,
-passingonly), checks (-service or -state), event (-name).";

const EXAMPLES: &str = "\
Examples:
  Print the value of a key on every change:
    $ sekisho watch -type=key -key=app/config

  Run a script whenever the healthy instances of a service change:
    $ sekisho watch -type=service -service=web -passingonly /usr/local/bin/reload-lb

  A handler run without a shell:
    $ sekisho watch -type=nodes -shell=false -- /usr/bin/logger -t nodes";

/// `sekisho watch` flags.
#[derive(Args, Debug)]
#[command(about = "Watch for changes in Sekisho", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct WatchArgs {
    /// What to watch: key, keyprefix, services, nodes, service, checks or event
    #[arg(long = "type", value_name = "TYPE")]
    watch_type: Option<String>,
    /// The key of a key watch
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The prefix of a keyprefix watch
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// The service of a service or checks watch
    #[arg(long, value_name = "SERVICE")]
    service: Option<String>,
    /// With -type=service: only instances with this tag (repeatable)
    #[arg(long, value_name = "TAG", action = ArgAction::Append)]
    tag: Vec<String>,
    /// With -type=service: only instances whose checks all pass
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    passingonly: bool,
    /// With -type=checks: only checks in this state (any, passing, warning, critical)
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// With -type=event: only events of this name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Run the handler with `sh -c "<args joined by spaces>"`; false runs it directly
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = ArgAction::Set)]
    shell: bool,
    /// The handler command; without one the JSON is printed
    #[arg(value_name = "HANDLER", trailing_var_arg = true, allow_hyphen_values = true)]
    handler: Vec<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// Runs the watch until interrupted (exit 0) or the handler fails (exit 1).
pub(crate) async fn run(args: &WatchArgs, client: &Client, out: &mut Output) -> anyhow::Result<ExitCode> {
    let Some(watch_type) = args.watch_type.as_deref().filter(|t| !t.is_empty()) else {
        out.error(
            "Error: -type is required (one of key, keyprefix, services, nodes, service, checks, event)",
        )?;
        return Ok(ExitCode::from(2));
    };
    let params = KindParams {
        key: args.key.clone(),
        prefix: args.prefix.clone(),
        service: args.service.clone(),
        tags: args.tag.clone(),
        passing_only: args.passingonly,
        state: args.state.clone(),
        name: args.name.clone(),
    };
    let kind = match plan::kind(watch_type, params) {
        Ok(k) => k,
        Err(e) => {
            out.error(format!("Error: {e}"))?;
            return Ok(ExitCode::from(2));
        }
    };
    if let Err(e) = client.agent_self().await {
        out.error(format!("Error querying Consul agent: {e}"))?;
        return Ok(ExitCode::FAILURE);
    }
    out.flush()?;
    let source = HttpSource::new(client.clone(), kind);
    let stop = tokio_util::sync::CancellationToken::new();
    let result = if args.handler.is_empty() {
        watch_until_interrupted(source, Printer, stop).await
    } else {
        let mut script = if args.shell {
            ScriptHandler::shell(&args.handler.join(" "))
        } else {
            ScriptHandler::args(args.handler.clone())
        };
        script.inherit_output = true;
        watch_until_interrupted(source, Script(script), stop).await
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            out.error(format!("Error executing handler: {e}"))?;
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn watch_until_interrupted(
    source: HttpSource,
    handler: impl Handler,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    let watch = runner::run(source, handler, Backoff::default(), stop.clone());
    tokio::select! {
        r = watch => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints each view as indented JSON (Go's `json.MarshalIndent(data, "", "    ")`).
struct Printer;

impl Handler for Printer {
    async fn handle(&mut self, update: Update) -> Result<(), String> {
        let text = pretty(&update.body);
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").and_then(|()| stdout.flush()).map_err(|e| format!("writing stdout: {e}"))
    }
}

fn pretty(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs the command with the child's output on ours.
struct Script(ScriptHandler);

impl Handler for Script {
    async fn handle(&mut self, update: Update) -> Result<(), String> {
        self.0.run(&update).await
    }
}
