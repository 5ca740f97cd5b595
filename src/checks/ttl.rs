//! TTL checks (Consul's `CheckTTL`): each update is reported at once and restarts the timer;
//! when the timer runs out the check turns critical with `TTL expired` (plus the last output),
//! once, until the next update.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Reporter, Status, floor_boundary};
use std::sync::Arc;

pub(crate) struct TtlShared {
    ttl: Duration,
    max_output: usize,
    state: Mutex<TtlState>,
    wake: Notify,
}

struct TtlState {
    deadline: Instant,
    last_output: String,
    expired: bool,
}

impl TtlShared {
    pub(crate) fn new(ttl: Duration, max_output: usize) -> TtlShared {
        TtlShared {
            ttl,
            max_output,
            state: Mutex::new(TtlState {
                deadline: Instant::now() + ttl,
                last_output: String::new(),
                expired: false,
            }),
            wake: Notify::new(),
        }
    }

    /// Consul's `CheckTTL.SetStatus`: truncate, report, remember, restart the timer.
    pub(crate) fn update(&self, reporter: &Reporter, status: Status, output: &str) -> String {
        let output = truncate(output, self.max_output);
        let mut st = self.state.lock();
        reporter.report(status, &output);
        st.deadline = Instant::now() + self.ttl;
        st.expired = false;
        st.last_output.clone_from(&output);
        drop(st);
        self.wake.notify_one();
        output
    }
}

/// Consul's TTL truncation: `<first max bytes> ... (captured <max> of <total> bytes)`.
fn truncate(output: &str, max: usize) -> String {
    if output.len() <= max {
        return output.to_string();
    }
    let cut = floor_boundary(output, max);
    format!("{} ... (captured {max} of {} bytes)", &output[..cut], output.len())
}

fn expired_output(last: &str) -> String {
    if last.is_empty() {
        "TTL expired".into()
    } else {
        format!("TTL expired (last output before timeout follows): {last}")
    }
}

pub(crate) async fn run(shared: Arc<TtlShared>, reporter: Arc<Reporter>) {
    loop {
        let (deadline, expired) = {
            let st = shared.state.lock();
            (st.deadline, st.expired)
        };
        if expired {
            shared.wake.notified().await;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                let mut st = shared.state.lock();
                if !st.expired && Instant::now() >= st.deadline {
                    reporter.report(Status::Critical, &expired_output(&st.last_output));
                    st.expired = true;
                }
            }
            () = shared.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_matches_consul_and_respects_characters() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefgh", 4), "abcd ... (captured 4 of 8 bytes)");
        assert_eq!(truncate("aé", 2), "a ... (captured 2 of 3 bytes)");
    }

    #[test]
    fn expiry_output_keeps_the_last_output() {
        assert_eq!(expired_output(""), "TTL expired");
        assert_eq!(expired_output("ok"), "TTL expired (last output before timeout follows): ok");
    }
}
