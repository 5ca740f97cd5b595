//! Go's `fmt` for the JSON data model: `%v` printing, `print`, `println` and `printf`.
//!
//! Numbers are untyped here (Go would have `int` or `float64`): integers print as Go's `int`,
//! other numbers as `float64`, and the float verbs also accept integers (and `%d` integral floats).

use super::Value;

/// An integer or a float, from a JSON number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

/// The number in `n`.
pub(super) fn num(n: &serde_json::Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Go's name for the type of `v`, as `%T` and error messages print it.
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) => match num(n) {
            Num::Int(_) => "int",
            Num::Float(_) => "float64",
        },
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// What an action prints: `<no value>` for null, `%v` otherwise.
pub(super) fn output(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        _ => sprint_v(v),
    }
}

/// `%v`.
pub(super) fn sprint_v(v: &Value) -> String {
    let mut out = String::new();
    format_arg(&mut out, &Spec::default(), 'v', v);
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        format_arg(&mut out, &Spec::default(), 'v', a);
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands and a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut out = args.iter().map(sprint_v).collect::<Vec<_>>().join(" ");
    out.push('\n');
    out
}

/// Flags, width and precision of one verb.
#[derive(Debug, Default, Clone)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's limit on widths and precisions.
const TOO_LARGE: usize = 1_000_000;

/// Go's `fmt.Sprintf`, including its `%!verb(type=value)`, `MISSING` and `EXTRA` notes.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        let mut bad = None;
        spec.width = number(&mut chars, args, &mut next_arg).unwrap_or_else(|()| {
            bad = Some("%!(BADWIDTH)");
            None
        });
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = match number(&mut chars, args, &mut next_arg) {
                Ok(p) => Some(p.unwrap_or(0)),
                Err(()) => {
                    bad = Some("%!(BADPREC)");
                    None
                }
            };
        }
        if let Some(note) = bad {
            out.push_str(note);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
        } else if let Some(arg) = args.get(next_arg) {
            next_arg += 1;
            format_arg(&mut out, &spec, verb, arg);
        } else {
            out.push_str(&format!("%!{verb}(MISSING)"));
        }
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..].iter().map(typed).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// A width or precision: digits, or `*` taking an integer argument.
fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next_arg: &mut usize,
) -> Result<Option<usize>, ()> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args.get(*next_arg).and_then(Value::as_u64).ok_or(())?;
        *next_arg += 1;
        return usize::try_from(n).ok().filter(|n| *n <= TOO_LARGE).map(Some).ok_or(());
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        if n > Some(TOO_LARGE) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            return Err(());
        }
    }
    Ok(n)
}

/// `type=value`, as in `%!d(string=x)`.
fn typed(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        _ => format!("{}={}", go_type(v), sprint_v(v)),
    }
}

fn bad_verb(out: &mut String, verb: char, v: &Value) {
    out.push_str(&format!("%!{verb}({})", typed(v)));
}

/// Formats one argument with one verb.
fn format_arg(out: &mut String, spec: &Spec, verb: char, v: &Value) {
    if verb == 'T' {
        return pad(out, spec, go_type(v));
    }
    match v {
        Value::Null if verb == 'v' => pad(out, spec, "<nil>"),
        Value::Null => bad_verb(out, verb, v),
        Value::Bool(b) if matches!(verb, 'v' | 't') => pad(out, spec, if *b { "true" } else { "false" }),
        Value::Number(n) => format_number(out, spec, verb, num(n), v),
        Value::String(s) => format_string(out, spec, verb, s, v),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, spec, verb, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_string(out, spec, verb, k, &Value::String(k.clone()));
                out.push(':');
                format_arg(out, spec, verb, &map[k]);
            }
            out.push(']');
        }
        Value::Bool(_) => bad_verb(out, verb, v),
    }
}

fn format_string(out: &mut String, spec: &Spec, verb: char, s: &str, v: &Value) {
    match verb {
        'v' | 's' => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            if verb == 'v' && spec.sharp { pad(out, spec, &quote(&s)) } else { pad(out, spec, &s) }
        }
        'q' => pad(out, spec, &quote(s)),
        'x' | 'X' => {
            let hex: String = s
                .bytes()
                .map(|b| if verb == 'x' { format!("{b:02x}") } else { format!("{b:02X}") })
                .collect();
            pad(out, spec, &hex)
        }
        _ => bad_verb(out, verb, v),
    }
}

fn format_number(out: &mut String, spec: &Spec, verb: char, n: Num, v: &Value) {
    match (n, verb) {
        (Num::Int(i), 'd' | 'v' | 'b' | 'o' | 'O' | 'x' | 'X') => format_int(out, spec, verb, i),
        (Num::Int(i), 'c' | 'q' | 'U') => {
            let c = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            match verb {
                'c' => pad(out, spec, &c.to_string()),
                'q' => pad(out, spec, &quote_char(c)),
                _ => pad(out, spec, &format!("U+{:04X}", c as u32)),
            }
        }
        (Num::Int(i), 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => format_float(out, spec, verb, i as f64),
        (Num::Float(f), 'd') if f.fract() == 0.0 && f.abs() < 1e38 => format_int(out, spec, verb, f as i128),
        (Num::Float(f), 'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => format_float(out, spec, verb, f),
        _ => bad_verb(out, verb, v),
    }
}

fn format_int(out: &mut String, spec: &Spec, verb: char, i: i128) {
    let mag = i.unsigned_abs();
    let mut digits = match verb {
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        _ => mag.to_string(),
    };
    if let Some(p) = spec.prec {
        if p == 0 && i == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp => "0",
        'O' => "0o",
        'b' if spec.sharp => "0b",
        _ => "",
    };
    let head = format!("{}{prefix}", sign(spec, i < 0));
    pad_number(out, spec, &head, &digits, spec.prec.is_none());
}

fn format_float(out: &mut String, spec: &Spec, verb: char, f: f64) {
    let body = match verb {
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f.abs()),
        'e' | 'E' => exp_form(&format!("{:.*e}", spec.prec.unwrap_or(6), f.abs()), verb == 'E'),
        _ => format_g(f.abs(), spec.prec, verb == 'G'),
    };
    let neg = f.is_sign_negative() && f != 0.0;
    pad_number(out, spec, sign(spec, neg), &body, true);
}

fn sign(spec: &Spec, neg: bool) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// Rust's `1.5e-7` as Go's `1.5e-07`.
fn exp_form(rust: &str, upper: bool) -> String {
    let (mant, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}{e}{sign}{:02}", exp.abs())
}

/// Go's `%g` of a non-negative float: shortest digits (or `prec` significant ones), in
/// exponent form when the exponent is below -4 or at least the precision (6 for shortest).
pub(super) fn format_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    let rust = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
        None => format!("{f:e}"),
    };
    let (mant, exp) = rust.split_once('e').unwrap_or((&rust, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.trim_end_matches('0') {
        "" => "0",
        d => d,
    };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > nd && nd >= dp { nd } else { p }
        }
    };
    if exp < -4 || exp >= eprec {
        let frac = if nd > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        return exp_form(&format!("{}{frac}e{exp}", &digits[..1]), upper);
    }
    if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    }
}

/// Pads to the width with spaces.
fn pad(out: &mut String, spec: &Spec, s: &str) {
    let fill = spec.width.unwrap_or(0).saturating_sub(s.chars().count());
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// Pads a number, with zeros after the sign when the `0` flag asks and `zero_ok`.
fn pad_number(out: &mut String, spec: &Spec, head: &str, body: &str, zero_ok: bool) {
    let len = head.chars().count() + body.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.zero && zero_ok && !spec.minus {
        out.push_str(head);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(body);
    } else {
        pad(out, spec, &format!("{head}{body}"));
    }
}

/// Go's `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`.
fn quote_char(c: char) -> String {
    let mut out = String::from("'");
    escape_char(&mut out, c, '\'');
    out.push('\'');
    out
}

fn escape_char(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() || (c.is_whitespace() && c != ' ') => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}
