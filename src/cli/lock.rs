//! `sekisho lock [flags] <prefix> <command...>`: Consul's `consul lock`, run a command while
//! holding a lock (`-n 1`) or a semaphore slot (`-n N`), over `crate::client::lock`.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use clap::{ArgAction, Args};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::http::HttpArgs;
use super::output::Output;
use crate::client::Client;
use crate::client::lock::{
    DEFAULT_LOCK_RETRY_TIME, DEFAULT_SEMAPHORE_KEY, Held, Lock, LockError, LockOptions, Semaphore, join_key,
};

/// Between SIGTERM and SIGKILL for a child whose lock is gone (Consul's lockKillGracePeriod).
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Pause between monitor retries (Consul's defaultMonitorRetryTime for `consul lock`).
const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);

const LONG_ABOUT: &str = "\
Acquires a lock or semaphore at a given path, and invokes a child process when successful.
The child process can assume the lock is held while it executes. If the lock is lost or
communication is disrupted the child process (its whole process group) is sent a SIGTERM
signal and given 5 seconds to exit gracefully, then SIGKILL.

When -n=1, only a single lock holder exists (key <prefix>/.lock), providing mutual exclusion.
A higher value switches to a semaphore allowing that many holders; all of them must use the
same -n. The protocol is the Go client's, so `consul lock` and `sekisho lock` exclude each
other on the same prefix. The prefix must have write privileges.

The child sees CONSUL_LOCK_HELD=true and SEKISHO_LOCK_FENCE=<LockIndex>/<ModifyIndex>, a
fencing token that grows with every acquisition. A leader election does not count as losing
the lock; only the key leaving our session, or the session dying, does (after -monitor-retry
failed reads in a row). Flags end where the child command begins, as in Consul: `sekisho lock app ls -la`
runs `ls -la`.";

const EXAMPLES: &str = "\
Examples:
  Run a backup on one node at a time:
    $ sekisho lock service/backup/lock 'backup.sh --full'

  Allow three concurrent workers, give up after 10s of waiting:
    $ sekisho lock -n 3 -timeout 10s jobs/reindex ./reindex

  Exec the child without a shell and pass its exit code through:
    $ sekisho lock -shell=false -child-exit-code locks/db -- /usr/bin/migrate -up";

/// `sekisho lock` flags.
#[derive(Args, Debug)]
#[command(about = "Execute a command holding a lock", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub(crate) struct LockArgs {
    /// Limit on concurrent holders; above 1 the lock becomes a semaphore
    #[arg(short = 'n', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Name of the lock session [default: Consul lock for '<command>' at '<prefix>']
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Maximum time to wait for the lock; 0 waits forever (alias -try)
    #[arg(long, alias = "try", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    timeout: Duration,
    /// Failed reads in a row tolerated while monitoring the lock, 1s apart
    #[arg(long = "monitor-retry", value_name = "N", default_value_t = 3)]
    monitor_retry: u32,
    /// Exit with the child's exit code instead of 0
    #[arg(long = "child-exit-code")]
    child_exit_code: bool,
    /// Pass stdin to the child
    #[arg(long = "pass-stdin")]
    pass_stdin: bool,
    /// Run the command with $SHELL (or /bin/sh) -c; -shell=false execs it directly
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = true, action = ArgAction::Set)]
    shell: bool,
    /// Print progress on stderr
    #[arg(long)]
    verbose: bool,
    /// Session TTL (a Sekisho extension; at least the agent's session_ttl_min)
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    ttl: Duration,
    /// Session lock-delay: how long a lost lock stays unacquirable (a Sekisho extension)
    #[arg(long = "lock-delay", value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    lock_delay: Duration,
    /// The KV prefix
    #[arg(value_name = "PREFIX")]
    prefix: String,
    /// The child command
    #[arg(value_name = "COMMAND", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_go_duration(s)
}

/// A lock or a semaphore, as Consul's `LockUnlock`.
enum Mutex {
    Lock(Lock),
    Semaphore(Semaphore),
}

impl Mutex {
    async fn acquire(
        &self,
        stop: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Held>, LockError> {
        match self {
            Self::Lock(l) => l.acquire(stop, deadline).await,
            Self::Semaphore(s) => s.acquire(stop, deadline).await,
        }
    }

    async fn release(&self, held: Held) -> Result<(), LockError> {
        match self {
            Self::Lock(l) => l.release(held).await,
            Self::Semaphore(s) => s.release(held).await,
        }
    }

    async fn destroy(&self) -> Result<(), LockError> {
        match self {
            Self::Lock(l) => l.destroy().await,
            Self::Semaphore(s) => s.destroy().await,
        }
    }
}

struct Ui {
    verbose: bool,
}

impl Ui {
    fn info(&self, msg: &str) {
        if self.verbose {
            eprintln!("{msg}");
        }
    }
}

pub(crate) async fn run(args: &LockArgs, client: &Client, _out: &mut Output) -> anyhow::Result<ExitCode> {
    let ui = Ui { verbose: args.verbose };
    let prefix = args.prefix.trim_start_matches('/').to_owned();
    // Consul asks /v1/agent/self; any answer from the agent proves it is reachable.
    let probe = client.request(http::Method::GET, "/v1/status/leader", None).await;
    if let Err(e) = probe.and_then(crate::client::Response::error_for_status) {
        eprintln!("Error querying Consul agent: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let mutex = setup(args, client, &prefix, &ui);
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone()));
    let code = hold_and_run(args, &mutex, &shutdown, &ui).await;
    signals.abort();
    Ok(code)
}

fn setup(args: &LockArgs, client: &Client, prefix: &str, ui: &Ui) -> Mutex {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("Consul lock for '{}' at '{prefix}'", args.command.join(" ")));
    let opts = LockOptions {
        session_name: name,
        session_ttl: args.ttl,
        lock_delay: args.lock_delay,
        monitor_retries: args.monitor_retry,
        monitor_retry_time: MONITOR_RETRY_TIME,
        // After an acquire refused by the lock-delay of a lost holder, retry when a delay as
        // long as ours has passed (Go waits a flat 5 s), so a takeover comes within about
        // TTL + lock-delay.
        retry_time: args.lock_delay.clamp(Duration::from_millis(250), DEFAULT_LOCK_RETRY_TIME),
        ..LockOptions::default()
    };
    if args.limit == 1 {
        let key = join_key(prefix, DEFAULT_SEMAPHORE_KEY);
        ui.info(&format!("Setting up lock at path: {key}"));
        Mutex::Lock(Lock::new(client.clone(), key, opts))
    } else {
        ui.info(&format!("Setting up semaphore (limit {}) at prefix: {prefix}", args.limit));
        Mutex::Semaphore(Semaphore::new(client.clone(), prefix, args.limit, opts))
    }
}

async fn hold_and_run(args: &LockArgs, mutex: &Mutex, shutdown: &CancellationToken, ui: &Ui) -> ExitCode {
    ui.info("Attempting lock acquisition");
    let deadline = (!args.timeout.is_zero()).then(|| tokio::time::Instant::now() + args.timeout);
    let held = match mutex.acquire(shutdown, deadline).await {
        Ok(Some(held)) => held,
        Ok(None) => {
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("Lock acquisition failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let child_code = if shutdown.is_cancelled() {
        eprintln!("Shutdown triggered during lock acquisition");
        0
    } else {
        supervise(args, &held, shutdown, ui).await
    };
    if let Err(e) = mutex.release(held).await {
        eprintln!("Lock release failed: {e}");
        return ExitCode::FAILURE;
    }
    match mutex.destroy().await {
        Ok(()) => ui.info("Cleanup succeeded"),
        Err(LockError::InUse | LockError::SemaphoreInUse) => ui.info("Cleanup aborted, lock in use"),
        Err(e) => {
            eprintln!("Lock cleanup failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if args.child_exit_code {
        ExitCode::from(u8::try_from(child_code).unwrap_or(1))
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the child until it exits, the lock is lost or we are told to stop; its exit code
/// (128 + signal when killed, 2 when it could not start).
async fn supervise(args: &LockArgs, held: &Held, shutdown: &CancellationToken, ui: &Ui) -> i32 {
    ui.info("Starting handler");
    let mut child = match spawn_child(args, held, ui) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("Error starting handler: {e}");
            return 2;
        }
    };
    tokio::select! {
        status = child.wait() => {
            ui.info("Child terminated, releasing lock");
            return status.map_or(2, exit_code);
        }
        () = shutdown.cancelled() => ui.info("Shutdown triggered, killing child"),
        () = held.lost() => ui.info("Lock lost, killing child"),
    }
    kill_child(&mut child, ui).await
}

fn spawn_child(args: &LockArgs, held: &Held, ui: &Ui) -> std::io::Result<Child> {
    let mut command = if args.shell {
        let shell = std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
        let mut c = tokio::process::Command::new(shell);
        c.arg("-c").arg(args.command.join(" "));
        c
    } else {
        let mut c = tokio::process::Command::new(&args.command[0]);
        c.args(&args.command[1..]);
        c
    };
    command.env("CONSUL_LOCK_HELD", "true").env("SEKISHO_LOCK_FENCE", held.fence().to_string());
    if args.pass_stdin {
        ui.info("Stdin passed to handler process");
        command.stdin(Stdio::inherit());
    } else {
        command.stdin(Stdio::null());
    }
    // Its own process group, so SIGTERM reaches everything it started.
    command.process_group(0).kill_on_drop(false);
    command.spawn()
}

async fn kill_child(child: &mut Child, ui: &Ui) -> i32 {
    let Some(pid) = child.id() else { return child.wait().await.map_or(2, exit_code) };
    ui.info(&format!("Terminating child pid {pid}"));
    signal_group(pid, libc::SIGTERM);
    if let Ok(status) = tokio::time::timeout(KILL_GRACE, child.wait()).await {
        ui.info("Child terminated");
        return status.map_or(2, exit_code);
    }
    ui.info(&format!("Child did not exit after grace period of {KILL_GRACE:?}"));
    ui.info(&format!("Killing child pid {pid}"));
    signal_group(pid, libc::SIGKILL);
    child.wait().await.map_or(2, exit_code)
}

fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory effects; a negative pid addresses the child's group.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        eprintln!("Failed to signal {pid}: {}", std::io::Error::last_os_error());
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
}
