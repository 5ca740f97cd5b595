//! `sekisho template`: consul-template's command over the HTTP API (`crate::template`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args};

use super::http::HttpArgs;
use super::output::Output;
use crate::template::runner::{self, Options, TemplateSpec};

const LONG_ABOUT: &str = "\
Render templates written in consul-template's language (Go templates with key, keyOrDefault,
ls, tree, keys, service, services, nodes, node, datacenters, and printf, toJSON, parseJSON,
split, join, replaceAll, toLower, toUpper, env, timestamp, ...) and keep them current: every
key and service a template reads is watched with a blocking query, and the output is
rewritten (temp file + rename, mode and owner kept) only when its text changes. The command
after the destination runs after each change; with -wait min:max a burst of changes gives
one render and one command run, after `min` of quiet and at most `max` after the first
change. A template that does not parse stops the command with its file, line and column; a
render error later keeps the last good output. The agent going away changes nothing: the
queries retry until it is back. Exit codes: 0 done (or interrupted), 1 error, 2 usage.";

const EXAMPLES: &str = "\
Examples:
  Keep an nginx deny list current and reload nginx once per burst of changes:
    $ sekisho template -wait 1s:3s \\
        -template '/etc/sekisho/deny.ctmpl:/etc/nginx/deny.conf:nginx -s reload'

  Where deny.ctmpl is:
    {{ range tree \"nginx/deny/\" }}deny {{ .Value }};
    {{ end }}

  Print what would be written, once, without writing:
    $ sekisho template -once -dry -template hosts.ctmpl:/etc/hosts";

/// `sekisho template` flags.
#[derive(Args, Debug)]
#[command(about = "Render templates from the catalog and KV, and keep them current", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct TemplateArgs {
    /// `in.ctmpl:out[:command]` (repeatable); without `out` the result goes to stdout
    #[arg(long, value_name = "IN:OUT[:COMMAND]", action = ArgAction::Append, required = true)]
    template: Vec<String>,
    /// Render once every value is known, then exit
    #[arg(long)]
    once: bool,
    /// Print the outputs to stdout (each after a `> path` line) instead of writing them
    #[arg(long)]
    dry: bool,
    /// Quiescence `min[:max]`: render after `min` without changes, at most `max` after the first
    #[arg(long, value_name = "MIN:MAX")]
    wait: Option<String>,
    /// Run COMMAND (with sh -c) once the templates are rendered, restart it after each
    /// change, and exit with its exit code when it ends
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["once", "dry"])]
    exec: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

pub(crate) async fn run(args: &TemplateArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let specs: Result<Vec<TemplateSpec>, String> =
        args.template.iter().map(|t| TemplateSpec::parse(t)).collect();
    let wait = args.wait.as_deref().map(runner::parse_wait).transpose();
    let (specs, wait) = match (specs, wait) {
        (Ok(s), Ok(w)) => (s, w),
        (Err(e), _) | (_, Err(e)) => {
            out.error(format!("Error: {e}"))?;
            return Ok(ExitCode::from(2));
        }
    };
    let templates = match runner::load(&specs) {
        Ok(t) => t,
        Err(e) => {
            out.error(format!("Error: {e}"))?;
            return Ok(ExitCode::FAILURE);
        }
    };
    out.flush()?;
    let client = args.http.client()?;
    let opts = Options {
        once: args.once,
        dry: args.dry,
        wait,
        block: Duration::from_secs(60),
        exec: args.exec.clone(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let mut stdout = std::io::stdout();
    let result = tokio::select! {
        r = runner::run(client, templates, opts, stop.clone(), &mut stdout) => r,
        _ = tokio::signal::ctrl_c() => { stop.cancel(); Ok(runner::Report::default()) }
    };
    match result {
        Ok(r) => Ok(r.exit_code.map_or(ExitCode::SUCCESS, |c| ExitCode::from(u8::try_from(c).unwrap_or(1)))),
        Err(e) => {
            out.error(format!("Error: {e}"))?;
            Ok(ExitCode::FAILURE)
        }
    }
}
