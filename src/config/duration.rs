//! Go's `time.ParseDuration` syntax, which Consul uses for every duration it reads.

use std::time::Duration;

/// Parses a Go duration string: `"10s"`, `"1m30s"`, `"0.5s"`, `"1.5h"`, `"300ms"`,
/// `"10us"`, `"0"`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. Negative durations
/// and values beyond Go's limit (about 292 years) are rejected.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {s:?}");
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" || body == "-0" {
        return Ok(Duration::ZERO);
    }
    if body.starts_with('-') {
        return Err(format!("negative duration {s:?} is not allowed"));
    }
    if body.is_empty() {
        return Err(invalid());
    }
    let mut rest = body;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, frac, after) = split_number(rest).ok_or_else(invalid)?;
        let (unit, after) = split_unit(after);
        if unit.is_empty() {
            return Err(format!("missing unit in duration {s:?}"));
        }
        let per = unit_nanos(unit).ok_or_else(|| format!("unknown unit {unit:?} in duration {s:?}"))?;
        total += component(whole, frac, per).ok_or_else(|| format!("duration {s:?} is too large"))?;
        if total > i64::MAX as u128 {
            return Err(format!("duration {s:?} is too large"));
        }
        rest = after;
    }
    u64::try_from(total).map(Duration::from_nanos).map_err(|_| invalid())
}

/// Splits `12.5xyz` into ("12", "5", "xyz"); `None` when there is no digit at all.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let whole_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (whole, after) = s.split_at(whole_len);
    let (frac, after) = match after.strip_prefix('.') {
        Some(tail) => {
            let n = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
            tail.split_at(n)
        }
        None => ("", after),
    };
    (!whole.is_empty() || !frac.is_empty()).then_some((whole, frac, after))
}

fn split_unit(s: &str) -> (&str, &str) {
    let n = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(n)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// `whole.frac` units of `per` nanoseconds each, truncated to whole nanoseconds.
fn component(whole: &str, frac: &str, per: u128) -> Option<u128> {
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac = &frac[..frac.len().min(18)];
    let frac_nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().ok()? * per / 10u128.pow(u32::try_from(frac.len()).ok()?)
    };
    whole.checked_mul(per)?.checked_add(frac_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_duration_table() {
        let ms = Duration::from_millis;
        let table: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("10s", Duration::from_secs(10)),
            ("+5s", Duration::from_secs(5)),
            ("1m30s", Duration::from_secs(90)),
            ("0.5s", ms(500)),
            (".5s", ms(500)),
            ("1.s", Duration::from_secs(1)),
            ("1.5h", Duration::from_secs(5400)),
            ("24h", Duration::from_secs(86_400)),
            ("300ms", ms(300)),
            ("10us", Duration::from_micros(10)),
            ("10\u{b5}s", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ];
        for (input, want) in table {
            assert_eq!(parse_go_duration(input).as_ref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "s", "10", "1x", "-1s", "1.2.3s", "abc", "1m 30s", "3000000h", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(parse_go_duration("10").unwrap_err(), "missing unit in duration \"10\"");
        assert_eq!(parse_go_duration("5d").unwrap_err(), "unknown unit \"d\" in duration \"5d\"");
    }
}
