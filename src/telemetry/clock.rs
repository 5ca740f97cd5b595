//! Wall-clock formatting without a date crate: Go's `time.Time.String()` for UTC (the
//! metrics `Timestamp`) and hclog's timestamps (the monitor's log lines).

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) micros: u32,
}

impl Civil {
    /// The UTC fields of `t` (times before 1970 are clamped to the epoch).
    pub(crate) fn of(t: SystemTime) -> Civil {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micros: d.subsec_micros(),
        }
    }

    /// Go's `t.UTC().String()` for a whole second: `2017-08-08 02:55:10 +0000 UTC`.
    pub(crate) fn go_string(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// hclog's text timestamp: `2017-08-08T02:55:10.123Z`.
    pub(crate) fn millis(&self) -> String {
        format!("{}.{:03}Z", self.date_time(), self.micros / 1000)
    }

    /// hclog's JSON timestamp: `2017-08-08T02:55:10.123456Z`.
    pub(crate) fn micros(&self) -> String {
        format!("{}.{:06}Z", self.date_time(), self.micros)
    }

    fn date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_match_go_and_hclog() {
        // 2017-08-08 02:55:10.123456 UTC
        let t = UNIX_EPOCH + Duration::from_micros(1_502_160_910_123_456);
        let c = Civil::of(t);
        assert_eq!(c.go_string(), "2017-08-08 02:55:10 +0000 UTC");
        assert_eq!(c.millis(), "2017-08-08T02:55:10.123Z");
        assert_eq!(c.micros(), "2017-08-08T02:55:10.123456Z");
    }

    #[test]
    fn leap_days_and_year_ends() {
        let day = |d: u64| Civil::of(UNIX_EPOCH + Duration::from_secs(d * 86_400));
        assert_eq!((day(0).year, day(0).month, day(0).day), (1970, 1, 1));
        // 2000-02-29 is day 11_016; 2024-12-31 is day 20_088.
        assert_eq!((day(11_016).year, day(11_016).month, day(11_016).day), (2000, 2, 29));
        assert_eq!((day(20_088).year, day(20_088).month, day(20_088).day), (2024, 12, 31));
    }
}
