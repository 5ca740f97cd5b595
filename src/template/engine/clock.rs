//! UTC time formatting with Go's reference layout (`Mon Jan 2 15:04:05 MST 2006`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Go's `time.RFC3339`.
pub(super) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Seconds and nanoseconds since the Unix epoch.
pub(super) fn now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// A moment broken into calendar fields (UTC).
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    yday: i64,
    weekday: usize,
    hour: i64,
    min: i64,
    sec: i64,
    nanos: u32,
}

impl Civil {
    fn new(secs: i64, nanos: u32) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = crate::telemetry::civil_from_days(days);
        let (month, day) = (i64::from(month), i64::from(day));
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][(month - 1) as usize];
        let yday = before + day + i64::from(leap && month > 2);
        Civil {
            year,
            month: month as usize,
            day,
            yday,
            weekday: (days + 4).rem_euclid(7) as usize,
            hour: rem / 3600,
            min: rem / 60 % 60,
            sec: rem % 60,
            nanos,
        }
    }
}

/// Formats a UTC moment with a Go layout; text that is not a layout element is copied.
pub(super) fn format(secs: i64, nanos: u32, layout: &str) -> String {
    let t = Civil::new(secs, nanos);
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let (text, len) = element(&t, rest).unwrap_or_else(|| (c.to_string(), c.len_utf8()));
        out.push_str(&text);
        rest = &rest[len..];
    }
    out
}

/// The layout element at the start of `s`, formatted, and its length.
fn element(t: &Civil, s: &str) -> Option<(String, usize)> {
    let hour12 = if t.hour % 12 == 0 { 12 } else { t.hour % 12 };
    let table: [(&str, String); 33] = [
        ("January", MONTHS[t.month - 1].into()),
        ("Jan", MONTHS[t.month - 1][..3].into()),
        ("Monday", DAYS[t.weekday].into()),
        ("Mon", DAYS[t.weekday][..3].into()),
        ("MST", "UTC".into()),
        ("2006", format!("{:04}", t.year)),
        ("002", format!("{:03}", t.yday)),
        ("__2", format!("{:>3}", t.yday)),
        ("01", format!("{:02}", t.month)),
        ("02", format!("{:02}", t.day)),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", t.min)),
        ("05", format!("{:02}", t.sec)),
        ("06", format!("{:02}", t.year.rem_euclid(100))),
        ("_2", format!("{:>2}", t.day)),
        ("15", format!("{:02}", t.hour)),
        ("1", t.month.to_string()),
        ("2", t.day.to_string()),
        ("3", hour12.to_string()),
        ("4", t.min.to_string()),
        ("5", t.sec.to_string()),
        ("PM", if t.hour < 12 { "AM" } else { "PM" }.into()),
        ("pm", if t.hour < 12 { "am" } else { "pm" }.into()),
        ("-07:00:00", "+00:00:00".into()),
        ("-070000", "+000000".into()),
        ("-07:00", "+00:00".into()),
        ("-0700", "+0000".into()),
        ("-07", "+00".into()),
        ("Z07:00:00", "Z".into()),
        ("Z070000", "Z".into()),
        ("Z07:00", "Z".into()),
        ("Z0700", "Z".into()),
        ("Z07", "Z".into()),
    ];
    if let Some((pat, text)) = table.into_iter().find(|(pat, _)| s.starts_with(pat)) {
        return Some((text, pat.len()));
    }
    fraction(t, s)
}

/// `.000` (fixed digits) or `.999` (trailing zeros dropped) after a second.
fn fraction(t: &Civil, s: &str) -> Option<(String, usize)> {
    let sep = s.chars().next().filter(|c| matches!(c, '.' | ','))?;
    let digit = s[1..].chars().next().filter(|c| matches!(c, '0' | '9'))?;
    let n = s[1..].chars().take_while(|&c| c == digit).count();
    if s[1 + n..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{:09}", t.nanos);
    let mut frac = digits[..n.min(9)].to_string();
    if digit == '9' {
        frac = frac.trim_end_matches('0').to_string();
        if frac.is_empty() {
            return Some((String::new(), 1 + n));
        }
    }
    Some((format!("{sep}{frac}"), 1 + n))
}
