//! Running the binary and checking its outcome.

use std::process::Stdio;
use std::time::Duration;

use sekisho::client::{Client, ClientConfig};
use sekisho::testing::TestAgent;
use tokio::io::AsyncWriteExt as _;

/// How long one CLI invocation may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Environment variables that would otherwise leak the developer's agent into a test.
const CLIENT_ENV: [&str; 6] = [
    "CONSUL_HTTP_ADDR",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "SEKISHO_HTTP_ADDR",
    "SEKISHO_HTTP_TOKEN",
    "SEKISHO_HTTP_TOKEN_FILE",
];

/// The outcome of one invocation.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Panics with the whole outcome unless the exit code is `code`.
    pub(crate) fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// Exit code 0, or a panic showing stdout and stderr.
    pub(crate) fn ok(self) -> Self {
        self.expect_code(0)
    }
}

/// Runs `sekisho <args>` with an empty stdin.
pub(crate) async fn sekisho(args: &[&str]) -> Run {
    sekisho_with_stdin(args, b"").await
}

/// Runs `sekisho <args>` feeding `stdin`.
pub(crate) async fn sekisho_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for name in CLIENT_ENV {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("spawning the sekisho binary");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(stdin).await.expect("writing stdin");
    drop(pipe);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`sekisho {}` did not finish within {DEADLINE:?}", args.join(" ")))
        .expect("waiting for sekisho");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `sekisho <family> -http-addr=<agent> <rest>` against `agent`.
pub(crate) async fn sekisho_at(agent: &TestAgent, args: &[&str]) -> Run {
    sekisho_at_with_stdin(agent, args, b"").await
}

/// [`sekisho_at`] feeding `stdin`.
pub(crate) async fn sekisho_at_with_stdin(agent: &TestAgent, args: &[&str], stdin: &[u8]) -> Run {
    let addr = format!("-http-addr={}", agent.http_addr());
    let (family, rest) = args.split_first().expect("a command");
    let mut full = vec![*family, addr.as_str()];
    full.extend_from_slice(rest);
    sekisho_with_stdin(&full, stdin).await
}

/// A typed client for checking what the CLI did.
pub(crate) fn client(agent: &TestAgent) -> Client {
    Client::new(ClientConfig::new(agent.http_addr().to_string()))
}
