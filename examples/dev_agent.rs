//! Starts an in-process development agent on a free port, writes and reads a key through the
//! HTTP API, and shuts down. `cargo run --example dev_agent`.

use std::time::Duration;

use sekisho::agent::{Agent, Tuning};
use sekisho::config::RuntimeConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cfg = RuntimeConfig::for_test("dc1", "example");
    cfg.session_ttl_min = Duration::from_secs(10);
    let agent = Agent::start_with(cfg, Tuning::default()).await?;
    let addr = agent.http_addr();
    println!("agent listening on http://{addr}");
    let client = sekisho::client::Client::new(sekisho::client::ClientConfig {
        address: addr.to_string(),
        ..Default::default()
    });
    client.kv_put("greeting", b"hello".to_vec(), None, None).await?;
    let entry = client.kv_get("greeting").await?;
    println!(
        "greeting = {:?}",
        entry.and_then(|e| e.value).map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    agent.shutdown().await;
    Ok(())
}
