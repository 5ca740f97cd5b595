//! auto_encrypt, both sides.
//!
//! ```text
//!  server (allow_tls): leader creates the CA once ─► Command::AutoEncryptCaSet (Raft)
//!                      every server trusts it for client certificates (extra roots)
//!  client (tls):       join gossip ─► a server's RPC address ─► TLS without a certificate
//!                      ─► /rpc/v1/auto_encrypt/sign(CSR) ─► certificate ─► AgentTls
//!                      renewed at half-life
//! ```
//! The CA key stays in the servers' replicated state; clients only ever hold their own key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::RuntimeConfig;
use crate::fsm::Command;
use crate::gossip::Gossip;
use crate::rpc::RpcClient;
use crate::server::Server;
use crate::server::auto_encrypt::{SIGN_PATH, SignRequest, SignResponse};
use crate::state::auto_encrypt::{AutoEncryptCa, auto_encrypt_ca};
use crate::tls::AgentTls;

/// Servers: create the CA when leading and none exists; trust it once it is replicated.
pub(super) async fn serve_ca(server: Server, tls: Arc<AgentTls>, domain: String, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match server.state().read(|s| auto_encrypt_ca(s).map(|ca| ca.cert_pem.clone())) {
            Some(cert) => {
                if let Err(e) = tls.set_extra_roots(&cert) {
                    tracing::error!("auto_encrypt: cannot trust the replicated CA: {e}");
                }
            }
            None if server.is_leader() => create_ca(&server, &domain).await,
            None => {}
        }
    }
}

async fn create_ca(server: &Server, domain: &str) {
    let mut p = sekisho_pki::CaParams::new(SystemTime::now());
    p.common_name = Some(format!("Sekisho Auto-Encrypt CA {}", server.config().datacenter));
    p.domain = domain.to_owned();
    match sekisho_pki::create_ca(&p) {
        Ok(ca) => {
            let cmd = Command::AutoEncryptCaSet(AutoEncryptCa { cert_pem: ca.cert_pem, key_pem: ca.key_pem });
            match server.write(cmd).await {
                Ok(_) => {
                    tracing::info!("auto_encrypt: created the CA that signs client agents' certificates")
                }
                Err(e) => tracing::warn!("auto_encrypt: storing the CA failed; retrying: {e}"),
            }
        }
        Err(e) => tracing::error!("auto_encrypt: creating the CA failed: {e}"),
    }
}

/// Client agents: obtains the first certificate before the agent starts serving; returns
/// when it is installed (or `stop`).
pub(super) async fn obtain(
    cfg: &RuntimeConfig,
    gossip: &Gossip,
    tls: &Arc<AgentTls>,
    faults: &Arc<crate::net::fault::Faults>,
) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match request(cfg, gossip, tls, faults).await {
            Ok(()) => {
                tracing::info!("auto_encrypt: certificate installed");
                return;
            }
            Err(e) => tracing::warn!(attempt, "auto_encrypt: waiting for a certificate: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250).saturating_mul(attempt.min(8))).await;
    }
}

/// Renews the certificate at half of its lifetime, until `stop`.
pub(super) async fn renew(
    cfg: RuntimeConfig,
    gossip: Gossip,
    tls: Arc<AgentTls>,
    faults: Arc<crate::net::fault::Faults>,
    stop: CancellationToken,
) {
    loop {
        let left = tls.own_certs().iter().map(|c| c.info.not_after - unix_now()).min().unwrap_or(0).max(0);
        let wait = Duration::from_secs((left / 2).max(1) as u64);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = obtain(&cfg, &gossip, &tls, &faults) => {}
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

async fn request(
    cfg: &RuntimeConfig,
    gossip: &Gossip,
    tls: &Arc<AgentTls>,
    faults: &Arc<crate::net::fault::Faults>,
) -> Result<(), String> {
    let servers: Vec<String> = gossip
        .members()
        .iter()
        .filter(|m| m.status == crate::gossip::MemberStatus::Alive)
        .filter_map(|m| super::reconcile::server_identity(m, &cfg.datacenter))
        .map(|(_, node)| node.rpc_addr)
        .collect();
    if servers.is_empty() {
        gossip.join(&cfg.retry_join).await.map_err(|e| format!("joining {:?}: {e}", cfg.retry_join))?;
        return Err("no server known yet".into());
    }
    let ae = &cfg.tls.auto_encrypt;
    let csr = sekisho_pki::generate_csr(
        sekisho_pki::KeyAlgorithm::EcdsaP256,
        &format!("client.{}.{}", cfg.datacenter, cfg.domain),
        &ae.dns_san,
        &ae.ip_san,
    )
    .map_err(|e| e.to_string())?;
    let req = SignRequest {
        node: cfg.node_name.clone(),
        csr_pem: csr.csr_pem,
        dns_san: ae.dns_san.clone(),
        ip_san: ae.ip_san.clone(),
    };
    // A pool of its own: this connection carries no certificate, later ones will.
    let client = RpcClient::new(cfg.bind_addr, faults.clone()).with_tls(Some(tls.clone()));
    let mut last = String::new();
    for addr in servers {
        let answer: Result<Result<SignResponse, crate::server::Error>, _> =
            client.call(&addr, SIGN_PATH, &req, Duration::from_secs(10)).await;
        match answer {
            Ok(Ok(signed)) => {
                return tls.set_auto_cert(signed.cert_pem, csr.key_pem).map_err(|e| e.to_string());
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}
