//! Conversions between `SystemTime`, unix seconds, `time::OffsetDateTime` and rustls'
//! `UnixTime`. The crate never reads the clock itself; every `now` comes from the caller.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::time::OffsetDateTime;
use rustls::pki_types::UnixTime;

use crate::error::{Error, Result};

/// Seconds per day, for `days` parameters.
pub(crate) const DAY_SECS: i64 = 86_400;

/// Certificates start this many seconds before `now` to tolerate small clock skew (Consul
/// back-dates by one minute too).
pub(crate) const BACKDATE_SECS: i64 = 60;

/// Unix seconds of `t` (negative before 1970).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `SystemTime` for unix seconds.
pub(crate) fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `OffsetDateTime` for unix seconds, with an error outside the supported range.
pub(crate) fn offset(secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| Error::InvalidParams(format!("time out of range: {e}")))
}

/// rustls' `UnixTime` for `t` (times before 1970 clamp to the epoch).
pub(crate) fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// Validity window `[now - backdate, now + days]` in unix seconds.
pub(crate) fn validity_window(now: SystemTime, days: u32) -> Result<(i64, i64)> {
    if days == 0 {
        return Err(Error::InvalidParams("days must be greater than 0".into()));
    }
    let now = unix_secs(now);
    Ok((now.saturating_sub(BACKDATE_SECS), now.saturating_add(i64::from(days) * DAY_SECS)))
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_utc(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{secs} (unix seconds)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_formats() {
        let t = system_time(1_700_000_000);
        assert_eq!(unix_secs(t), 1_700_000_000);
        assert_eq!(unix_secs(system_time(-5)), -5);
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn validity_rejects_zero_days() {
        assert!(validity_window(SystemTime::UNIX_EPOCH, 0).is_err());
        let (nb, na) = validity_window(system_time(1000), 1).unwrap();
        assert_eq!((nb, na), (940, 1000 + DAY_SECS));
    }
}
