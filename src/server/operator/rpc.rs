//! Server-to-server calls of the operator endpoints (`/rpc/v1/operator/*`).
//!
//! | path | request | answer | where |
//! |---|---|---|---|
//! | `/rpc/v1/operator/stats` | `()` | `ServerStats` | any server: its own Raft stats (autopilot health) |
//! | `/rpc/v1/operator/health` | `()` | `Result<AutopilotHealth, Error>` | leader |
//! | `/rpc/v1/operator/transfer` | `Option<String>` (target ID) | `Result<u64, Error>` | leader |
//! | `/rpc/v1/operator/elect` | `u64` (milliseconds) | `Result<(), Error>` | the transfer target: campaign until it leads |

use std::time::Duration;

use bytes::Bytes;

use super::super::{Error, Server};
use crate::rpc::{self, HandlerResult, RpcError};

/// The path prefix routed here.
pub(crate) const PREFIX: &str = "/rpc/v1/operator/";
pub(super) const STATS: &str = "/rpc/v1/operator/stats";
pub(super) const HEALTH: &str = "/rpc/v1/operator/health";
pub(super) const TRANSFER: &str = "/rpc/v1/operator/transfer";
pub(super) const ELECT: &str = "/rpc/v1/operator/elect";

/// Handles one operator call.
pub(crate) async fn dispatch(server: &Server, path: &str, body: &Bytes) -> HandlerResult {
    match path {
        STATS => rpc::encode(&server.own_stats()),
        HEALTH => {
            let r = if server.is_leader() {
                Ok(server.autopilot_health_local().await)
            } else {
                Err(Error::NoLeader)
            };
            rpc::encode(&r)
        }
        TRANSFER => {
            let to: Option<String> = rpc::decode(body)?;
            let r = if server.is_leader() {
                server.transfer_leader_local(to).await
            } else {
                Err(Error::NoLeader)
            };
            rpc::encode(&r)
        }
        ELECT => {
            let millis: u64 = rpc::decode(body)?;
            let within = Duration::from_millis(millis.min(60_000));
            rpc::encode(&server.campaign(within).await)
        }
        _ => Err(RpcError::NotFound(path.to_owned())),
    }
}

/// Decodes the request body of operator call `path` as [`dispatch`] would, without running it
/// (the fuzz targets, [`crate::fuzzing::rpc_frame`]).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn decode_request(path: &str, body: &[u8]) -> Result<(), RpcError> {
    match path {
        STATS | HEALTH => Ok(()),
        TRANSFER => rpc::decode::<Option<String>>(body).map(drop),
        ELECT => rpc::decode::<u64>(body).map(drop),
        _ => Err(RpcError::NotFound(path.to_owned())),
    }
}
