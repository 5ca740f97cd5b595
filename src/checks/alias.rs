//! Alias checks (Consul's `CheckAlias`): the aliased service instance's health, worst of its
//! checks and its node's checks (critical > warning > passing), re-read on every change
//! notification and periodically. Reports only when the result changes, so a caller that
//! signals a change for every update cannot make it loop.

use std::sync::Arc;
use std::time::Duration;

use super::{AliasedCheck, Reporter, Status};

pub(crate) struct Alias {
    pub(crate) service: String,
    pub(crate) node: Option<String>,
    pub(crate) refresh: Duration,
}

impl Alias {
    pub(crate) async fn run(self, reporter: Arc<Reporter>) {
        let notify = reporter.notify.clone();
        let mut changes = Some(notify.alias_changes());
        let mut last: Option<(Status, String)> = None;
        loop {
            let checks = notify.alias_checks(self.node.as_deref(), &self.service);
            let result = aggregate(&reporter.check_id, &self.service, self.node.as_deref(), checks);
            if last.as_ref() != Some(&result) {
                reporter.report(result.0, &result.1);
                last = Some(result);
            }
            match changes.as_mut() {
                Some(rx) => tokio::select! {
                    r = rx.changed() => if r.is_err() { changes = None },
                    () = tokio::time::sleep(self.refresh) => {}
                },
                None => tokio::time::sleep(self.refresh).await,
            }
        }
    }
}

/// Consul's `processChecks`, skipping the alias check itself.
pub(crate) fn aggregate(
    self_id: &str,
    service: &str,
    node: Option<&str>,
    checks: Option<Vec<AliasedCheck>>,
) -> (Status, String) {
    let Some(checks) = checks else {
        return (
            Status::Critical,
            format!("Service {service} could not be found on node {}", node.unwrap_or("")),
        );
    };
    let mut health = Status::Passing;
    let mut msg = "No checks found.".to_string();
    for c in checks.iter().filter(|c| c.check_id != self_id) {
        match c.status {
            Status::Critical | Status::Warning => {
                health = c.status;
                msg = format!("Aliased check {:?} failing: {}", c.name, c.output);
                if c.status == Status::Critical {
                    break;
                }
            }
            Status::Passing if health == Status::Passing => msg = "All checks passing.".into(),
            Status::Passing => {}
        }
    }
    (health, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chk(id: &str, status: Status, output: &str) -> AliasedCheck {
        AliasedCheck { check_id: id.into(), name: format!("{id} check"), status, output: output.into() }
    }

    #[test]
    fn worst_status_wins_with_consul_texts() {
        use Status::*;
        let agg = |c: Vec<AliasedCheck>| aggregate("me", "web", None, Some(c));
        assert_eq!(agg(vec![]), (Passing, "No checks found.".into()));
        assert_eq!(agg(vec![chk("a", Passing, "")]), (Passing, "All checks passing.".into()));
        assert_eq!(
            agg(vec![chk("a", Warning, "slow"), chk("b", Passing, "")]),
            (Warning, "Aliased check \"a check\" failing: slow".into())
        );
        assert_eq!(
            agg(vec![chk("a", Warning, "slow"), chk("n", Critical, "down"), chk("b", Warning, "x")]),
            (Critical, "Aliased check \"n check\" failing: down".into())
        );
        // The alias check's own (initially critical) status does not count.
        assert_eq!(
            agg(vec![chk("me", Critical, ""), chk("a", Passing, "")]),
            (Passing, "All checks passing.".into())
        );
    }

    #[test]
    fn a_missing_service_is_critical() {
        assert_eq!(
            aggregate("me", "web", Some("n2"), None),
            (Status::Critical, "Service web could not be found on node n2".into())
        );
    }
}
