//! Remote exec (`sekisho exec`), Consul's `_rexec` protocol, the target side.
//!
//! ```text
//!  CLI: session ─► PUT _rexec/<sid>/job {Command|Script, Wait} ─► fire event `_rexec`
//!                  {Prefix, Session} with -node/-service/-tag filters
//!  agent (event delivered here): disable_remote_exec? ─► PUT _rexec/<sid>/<node>/refused
//!        else PUT …/<node>/ack ─► run `sh -c` ─► PUT …/<node>/out/00000, 00001 … ─► …/exit
//!  CLI: blocking reads of _rexec/<sid>/ ─► prints per-node lines ─► destroys the session and
//!       deletes the prefix
//! ```
//! Every key is written with `?acquire=<session>`, so nothing outlives the session. The
//! `refused` key is Sekisho's: Consul's agents stay silent, leaving the CLI to time out.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

use crate::client::Client;

/// The KV prefix and the event name.
pub const PREFIX: &str = "_rexec";
/// The event carrying a job.
pub const EVENT: &str = "_rexec";
/// Output is written in chunks of at most this many bytes.
const CHUNK: usize = 4096;

/// The job the CLI stores at `_rexec/<session>/job` (Consul's `remoteExecSpec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct JobSpec {
    /// A command line run with `sh -c`.
    #[serde(default)]
    pub command: String,
    /// A script (base64 in JSON), run when `command` is empty.
    #[serde(default, with = "crate::exec::b64")]
    pub script: Vec<u8>,
    /// How long to wait for output before giving up on a target (nanoseconds).
    #[serde(default)]
    pub wait: u64,
}

/// The `_rexec` event's payload (Consul's `rexecEvent`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct JobEvent {
    /// Always `_rexec`.
    pub prefix: String,
    /// The CLI's session.
    pub session: String,
}

/// `_rexec/<session>/<node>/<leaf>`.
pub fn node_key(session: &str, node: &str, leaf: &str) -> String {
    format!("{PREFIX}/{session}/{node}/{leaf}")
}

/// `_rexec/<session>/job`.
pub fn job_key(session: &str) -> String {
    format!("{PREFIX}/{session}/job")
}

/// Handles one delivered `_rexec` event on the agent named `node`. `enabled` is
/// `!disable_remote_exec`. Errors are logged; the CLI sees what was written.
pub async fn handle_event(client: &Client, node: &str, enabled: bool, payload: &[u8]) {
    let ev: JobEvent = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("exec: ignoring a malformed _rexec event: {e}");
            return;
        }
    };
    if ev.prefix != PREFIX || ev.session.is_empty() || ev.session.contains('/') {
        tracing::warn!("exec: ignoring a _rexec event for prefix {:?}", ev.prefix);
        return;
    }
    if let Err(e) = run(client, node, enabled, &ev.session).await {
        tracing::warn!(session = %ev.session, "exec: {e}");
    }
}

async fn put(client: &Client, session: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
    let path = format!("/v1/kv/{key}?acquire={session}");
    let r = client.request(http::Method::PUT, &path, Some(value)).await.map_err(|e| e.to_string())?;
    match r.error_for_status() {
        Ok(r) if r.text().trim() == "true" => Ok(()),
        Ok(r) => Err(format!("writing {key} was refused: {}", r.text().trim())),
        Err(e) => Err(format!("writing {key}: {e}")),
    }
}

async fn run(client: &Client, node: &str, enabled: bool, session: &str) -> Result<(), String> {
    if !enabled {
        tracing::warn!(session, "exec: refused a remote execution request (disable_remote_exec is true)");
        let why = b"remote exec is disabled on this agent (disable_remote_exec = true)".to_vec();
        return put(client, session, &node_key(session, node, "refused"), why).await;
    }
    let job = client.kv_get(&job_key(session)).await.map_err(|e| e.to_string())?;
    let Some(job) = job else { return Err("the job is gone".into()) };
    let spec: JobSpec =
        serde_json::from_slice(&job.value.unwrap_or_default()).map_err(|e| format!("malformed job: {e}"))?;
    put(client, session, &node_key(session, node, "ack"), Vec::new()).await?;
    tracing::info!(session, "exec: running a remote command");
    let code = execute(client, node, session, &spec).await?;
    put(client, session, &node_key(session, node, "exit"), code.to_string().into_bytes()).await
}

/// Runs the job with `sh -c`, streaming output chunks; returns the exit code.
async fn execute(client: &Client, node: &str, session: &str, spec: &JobSpec) -> Result<i32, String> {
    let script = if spec.command.is_empty() {
        String::from_utf8_lossy(&spec.script).into_owned()
    } else {
        spec.command.clone()
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting sh: {e}"))?;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let mut seq = 0u32;
    let (mut buf_o, mut buf_e) = ([0u8; CHUNK], [0u8; CHUNK]);
    let (mut open_o, mut open_e) = (true, true);
    while open_o || open_e {
        let chunk = tokio::select! {
            n = out.read(&mut buf_o), if open_o => match n { Ok(0) | Err(_) => { open_o = false; continue } Ok(n) => buf_o[..n].to_vec() },
            n = err.read(&mut buf_e), if open_e => match n { Ok(0) | Err(_) => { open_e = false; continue } Ok(n) => buf_e[..n].to_vec() },
        };
        put(client, session, &node_key(session, node, &format!("out/{seq:05}")), chunk).await?;
        seq += 1;
    }
    let wait = Duration::from_nanos(spec.wait).max(Duration::from_secs(60));
    let status =
        tokio::time::timeout(wait, child.wait()).await.map_err(|_| "the command did not exit".to_owned())?;
    Ok(status.map_err(|e| e.to_string())?.code().unwrap_or(-1))
}

/// Runs every `_rexec` event delivered to this agent (already filtered by node, service and
/// tag), talking to the agent's own HTTP API at `http_addr` with the agent's ACL token
/// (`acl.tokens.agent`, which needs `key:write` on `_rexec`), until `stop`.
pub async fn serve(
    events: std::sync::Arc<crate::event::Events>,
    http_addr: std::net::SocketAddr,
    node: String,
    enabled: bool,
    acl: std::sync::Arc<crate::acl::Acl>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut rx = events.subscribe();
    loop {
        let mut cfg = crate::client::ClientConfig::new(http_addr.to_string());
        cfg.token = acl.tokens().agent.filter(|t| !t.is_empty());
        let client = Client::new(cfg);
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(ev) if ev.name == EVENT => {
                let (client, node) = (client.clone(), node.clone());
                let payload = ev.payload.unwrap_or_default();
                tokio::spawn(async move { handle_event(&client, &node, enabled, &payload).await });
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("exec: {n} events were missed");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Base64 for `Vec<u8>` fields, as Go encodes `[]byte`.
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_events_use_consuls_json() {
        let spec = JobSpec { command: "uptime".into(), script: b"echo hi".to_vec(), wait: 2_000_000_000 };
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Command": "uptime", "Script": "ZWNobyBoaQ==", "Wait": 2_000_000_000u64})
        );
        assert_eq!(serde_json::from_value::<JobSpec>(v).unwrap(), spec);
        let ev: JobEvent = serde_json::from_str(r#"{"Prefix":"_rexec","Session":"abc"}"#).unwrap();
        assert_eq!(ev.session, "abc");
        assert_eq!(node_key("abc", "web-1", "out/00000"), "_rexec/abc/web-1/out/00000");
    }
}
