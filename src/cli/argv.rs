//! The argv pre-pass that lets Consul's Go-style flags through clap.
//!
//! Go's `flag` package spells long flags with one dash (`-http-addr=x`, `-recurse`), and
//! scripts written for `consul` use that form. Sekisho defines no short flags besides
//! clap's `-h` and `-V`, so every `-name` with a name of two or more letters is rewritten
//! to `--name` before clap sees it. Left alone: `-` (stdin), negative numbers, single-letter
//! flags, anything already starting with `--`, and everything after a bare `--` (the way to
//! pass a value that starts with a dash).

use std::ffi::OsString;

/// Rewrites single-dash long flags to double-dash ones; the first element (the program
/// name) is kept as is.
pub(crate) fn rewrite<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut iter = args.into_iter();
    let mut out: Vec<OsString> = iter.next().into_iter().collect();
    let mut rest_is_positional = false;
    for arg in iter {
        if rest_is_positional {
            out.push(arg);
        } else if arg == "--" {
            rest_is_positional = true;
            out.push(arg);
        } else {
            out.push(rewrite_one(arg));
        }
    }
    out
}

fn rewrite_one(arg: OsString) -> OsString {
    let Some(text) = arg.to_str() else {
        return arg;
    };
    let Some(rest) = text.strip_prefix('-') else {
        return arg;
    };
    let name = rest.split('=').next().unwrap_or_default();
    let long = name.len() >= 2 && name.starts_with(|c: char| c.is_ascii_alphabetic());
    if long { OsString::from(format!("-{text}")) } else { arg }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        rewrite(args.iter().map(OsString::from)).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn single_dash_long_flags_gain_a_dash() {
        assert_eq!(
            run(&["sekisho", "kv", "get", "-recurse", "-http-addr=1.2.3.4:1", "k"]),
            ["sekisho", "kv", "get", "--recurse", "--http-addr=1.2.3.4:1", "k"]
        );
        assert_eq!(run(&["x", "-config-dir", "d"]), ["x", "--config-dir", "d"]);
    }

    #[test]
    fn leaves_dash_numbers_short_flags_and_double_dash_alone() {
        assert_eq!(
            run(&["x", "-", "-1", "-h", "-V", "--stale", "-.5"]),
            ["x", "-", "-1", "-h", "-V", "--stale", "-.5"]
        );
    }

    #[test]
    fn stops_after_double_dash() {
        assert_eq!(
            run(&["x", "kv", "put", "-cas", "--", "k", "-value"]),
            ["x", "kv", "put", "--cas", "--", "k", "-value"]
        );
    }

    #[test]
    fn program_name_is_untouched() {
        assert_eq!(run(&["-weird-name", "-dev"]), ["-weird-name", "--dev"]);
    }
}
