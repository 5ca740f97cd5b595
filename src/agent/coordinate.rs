//! Sends this agent's network coordinate to the servers (Consul's `sendCoordinate`): every
//! sync interval, scaled with the pool size so the datacenter as a whole stays near
//! `sync_coordinate_rate_target` updates per second, plus a random stagger so agents do not
//! sync in step. The update is an ordinary write (forwarded to the leader, group-committed);
//! the servers drop updates for nodes the catalog does not know yet.

use std::time::Duration;

use rand::RngExt as _;
use tokio_util::sync::CancellationToken;

use crate::fsm::Command;
use crate::gossip::Gossip;
use crate::server::Server;
use crate::state::coordinate::CoordinateEntry;

/// How often to sync.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyncRate {
    /// `sync_coordinate_interval_min`.
    pub(super) min: Duration,
    /// `sync_coordinate_rate_target` (updates per second for the whole pool).
    pub(super) rate: f64,
}

impl SyncRate {
    /// Consul's `lib.RateScaledInterval`: `members / rate` seconds, at least `min`.
    pub(super) fn interval(self, members: usize) -> Duration {
        let scaled = Duration::from_secs_f64(members as f64 / self.rate);
        scaled.max(self.min)
    }
}

/// Runs until `stop`.
pub(super) async fn run(
    server: Server,
    gossip: Gossip,
    node: String,
    rate: SyncRate,
    stop: CancellationToken,
) {
    loop {
        let every = rate.interval(gossip.members().len());
        let stagger = every.mul_f64(rand::rng().random::<f64>());
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every + stagger) => {}
        }
        let coord = gossip.coordinate();
        if !coord.is_valid() {
            continue;
        }
        let entry = CoordinateEntry { node: node.clone(), segment: String::new(), coord };
        match server.write(Command::CoordinateBatchUpdate(vec![entry])).await {
            Ok(_) => tracing::trace!("coordinate sent"),
            Err(e) => tracing::debug!("coordinate update failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_grows_with_the_pool_past_the_rate_target() {
        let r = SyncRate { min: Duration::from_secs(15), rate: 64.0 };
        assert_eq!(r.interval(3), Duration::from_secs(15));
        assert_eq!(r.interval(64 * 15), Duration::from_secs(15));
        assert_eq!(r.interval(64 * 30), Duration::from_secs(30));
    }
}
