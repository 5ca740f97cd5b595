//! The argv pre-pass that lets Consul's Go-style flags through clap.
//!
//! Go's `flag` package spells long flags with one dash (`-http-addr=x`, `-recurse`), and
//! scripts written for `consul` use that form. Sekisho defines no short flags besides
//! clap's `-h` and `-V`, so every `-name` with a name of two or more letters is rewritten
//! to `--name` before clap sees it. Left alone: `-` (stdin), negative numbers, single-letter
//! flags, anything already starting with `--`, and everything after a bare `--` (the way to
//! pass a value that starts with a dash).

use std::ffi::OsString;

/// Rewrites single-dash long flags to double-dash ones, guided by the clap definition `cmd`:
/// subcommands are followed, a flag's separate value is passed through untouched, and once
/// a command's trailing argument list starts (`lock <prefix> <command...>`, `exec`, a watch
/// handler) the rest is left as written, the way Go's `flag` stops at the first non-flag
/// argument: `sekisho lock app ls -la` runs `ls -la`. The first element (the program name)
/// is kept as is.
pub(crate) fn rewrite<I>(cmd: &clap::Command, args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut built = cmd.clone();
    built.build();
    let mut cur = &built;
    let mut iter = args.into_iter();
    let mut out: Vec<OsString> = iter.next().into_iter().collect();
    let (mut verbatim, mut value_next, mut positionals) = (false, false, 0usize);
    for arg in iter {
        if verbatim || std::mem::take(&mut value_next) {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            verbatim = true;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            continue;
        };
        if let Some(flag) = text.strip_prefix("--").or_else(|| long_name(&text)) {
            let (name, inline) = flag.split_once('=').map_or((flag, false), |(n, _)| (n, true));
            value_next = !inline && takes_separate_value(cur, name);
            out.push(if text.starts_with("--") { arg } else { OsString::from(format!("-{text}")) });
            continue;
        }
        out.push(arg);
        if let Some(short) = text.strip_prefix('-') {
            // `-n 2`: a short flag whose value follows; `-`, `-1`, `-n2`: clap's to judge.
            let mut chars = short.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                value_next = takes_separate_value_short(cur, c);
            }
            continue;
        }
        if positionals == 0
            && let Some(sub) = cur.find_subcommand(&text)
        {
            cur = sub;
            continue;
        }
        positionals += 1;
        let trailing =
            cur.get_positionals().find(|a| a.is_trailing_var_arg_set()).and_then(|a| a.get_index());
        // clap's positional indexes count from 1; the trailing list starts at its index.
        if trailing.is_some_and(|i| positionals >= i) {
            verbatim = true;
        }
    }
    out
}

/// `name` for `-name` / `-name=value` with a name of two or more characters starting with a
/// letter; `None` for `-`, `-1`, `-h`, `--x`.
fn long_name(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('-').filter(|r| !r.starts_with('-'))?;
    let name = rest.split('=').next().unwrap_or_default();
    (name.len() >= 2 && name.starts_with(|c: char| c.is_ascii_alphabetic())).then_some(rest)
}

fn takes_separate_value_short(cmd: &clap::Command, c: char) -> bool {
    cmd.get_arguments().find(|a| a.get_short() == Some(c)).is_some_and(always_takes_a_value)
}

fn always_takes_a_value(a: &clap::Arg) -> bool {
    a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0)
}

/// Whether `--name` of `cmd` always takes a value, given as the next argument when no `=`
/// is written.
fn takes_separate_value(cmd: &clap::Command, name: &str) -> bool {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name)))
        .is_some_and(always_takes_a_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
        rewrite(&cmd, args.iter().map(OsString::from)).into_iter().map(|a| a.into_string().unwrap()).collect()
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
    fn a_trailing_command_is_passed_as_written() {
        assert_eq!(
            run(&["x", "lock", "-n", "2", "-timeout", "5s", "app/job", "ls", "-la", "-shell"]),
            ["x", "lock", "-n", "2", "--timeout", "5s", "app/job", "ls", "-la", "-shell"]
        );
        assert_eq!(
            run(&["x", "exec", "-node", "web-", "uptime", "-pretty"]),
            ["x", "exec", "--node", "web-", "uptime", "-pretty"]
        );
        assert_eq!(
            run(&["x", "watch", "-type", "key", "-key", "k", "/bin/h", "-verbose"]),
            ["x", "watch", "--type", "key", "--key", "k", "/bin/h", "-verbose"]
        );
    }

    #[test]
    fn a_flag_value_that_starts_with_a_dash_is_not_rewritten() {
        assert_eq!(
            run(&["x", "kv", "put", "-flags", "42", "k", "v"]),
            ["x", "kv", "put", "--flags", "42", "k", "v"]
        );
        assert_eq!(run(&["x", "event", "-name", "-weird", "p"]), ["x", "event", "--name", "-weird", "p"]);
    }

    #[test]
    fn program_name_is_untouched() {
        assert_eq!(run(&["-weird-name", "-dev"]), ["-weird-name", "--dev"]);
    }
}
