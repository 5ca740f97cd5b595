//! Check statuses and Consul's `StatusHandler` threshold logic as a pure state machine.

use std::fmt;
use std::str::FromStr;

/// A check's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// `"passing"`.
    Passing,
    /// `"warning"`.
    Warning,
    /// `"critical"`.
    Critical,
}

impl Status {
    /// Consul's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => crate::state::types::PASSING,
            Status::Warning => crate::state::types::WARNING,
            Status::Critical => crate::state::types::CRITICAL,
        }
    }

    /// Parses Consul's spelling (exact, lowercase); `None` for anything else.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "passing" => Some(Status::Passing),
            "warning" => Some(Status::Warning),
            "critical" => Some(Status::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    /// Fails with Consul's "Bad check status".
    fn from_str(s: &str) -> Result<Status, String> {
        Status::parse(s).ok_or_else(|| "Bad check status".to_string())
    }
}

/// Consul's `StatusHandler`: consecutive-result counters that hold back a status change until
/// `success_before_passing` successes or `failures_before_warning` / `failures_before_critical`
/// failures in a row. Both counters start at their thresholds, so the very first result is
/// reported at once (the check starts out critical, or at its initial status, anyway).
/// A warning result counts as a success, as in Consul.
#[derive(Debug, Clone)]
pub(crate) struct Thresholds {
    success_before_passing: u32,
    success_counter: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    failures_counter: u32,
}

impl Thresholds {
    pub(crate) fn new(
        success_before_passing: u32,
        failures_before_warning: u32,
        failures_before_critical: u32,
    ) -> Self {
        Thresholds {
            success_before_passing,
            success_counter: success_before_passing,
            failures_before_warning,
            failures_before_critical,
            failures_counter: failures_before_critical,
        }
    }

    /// Feeds one probe result; returns the status to report, if any.
    pub(crate) fn observe(&mut self, status: Status) -> Option<Status> {
        match status {
            Status::Passing | Status::Warning => {
                self.success_counter = self.success_counter.saturating_add(1);
                self.failures_counter = 0;
                (self.success_counter >= self.success_before_passing).then_some(status)
            }
            Status::Critical => {
                self.failures_counter = self.failures_counter.saturating_add(1);
                self.success_counter = 0;
                if self.failures_counter >= self.failures_before_critical {
                    Some(Status::Critical)
                } else if self.failures_counter >= self.failures_before_warning {
                    Some(Status::Warning)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn run(t: (u32, u32, u32), results: &[Status]) -> Vec<Option<Status>> {
        let mut th = Thresholds::new(t.0, t.1, t.2);
        results.iter().map(|s| th.observe(*s)).collect()
    }

    #[test]
    fn status_round_trips_and_rejects_other_spellings() {
        for s in [Passing, Warning, Critical] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert_eq!("Passing".parse::<Status>(), Err("Bad check status".to_string()));
        assert_eq!(Status::parse("maintenance"), None);
    }

    #[test]
    fn without_thresholds_every_result_is_reported() {
        assert_eq!(
            run((0, 0, 0), &[Passing, Critical, Warning, Critical]),
            vec![Some(Passing), Some(Critical), Some(Warning), Some(Critical)]
        );
    }

    #[test]
    fn consul_status_handler_sequence() {
        // Consul's TestStatusHandlerUpdateStatusAfterConsecutiveChecks: (2, 2, 3).
        let got = run((2, 2, 3), &[Passing, Critical, Critical, Critical, Passing, Passing]);
        assert_eq!(got, vec![Some(Passing), None, Some(Warning), Some(Critical), None, Some(Passing)]);
    }

    #[test]
    fn first_failure_is_reported_at_once_then_failures_must_be_consecutive() {
        let got =
            run((1, 3, 3), &[Critical, Passing, Critical, Critical, Passing, Critical, Critical, Critical]);
        assert_eq!(
            got,
            vec![Some(Critical), Some(Passing), None, None, Some(Passing), None, None, Some(Critical)]
        );
    }

    #[test]
    fn warning_results_count_as_successes() {
        let got = run((2, 1, 1), &[Critical, Warning, Warning]);
        assert_eq!(got, vec![Some(Critical), None, Some(Warning)]);
    }
}
