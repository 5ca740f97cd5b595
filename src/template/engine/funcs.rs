//! Built-in functions: Go's (`and` … `println`) and consul-template's helpers.
//!
//! Errors come in Go's two shapes: a bad argument (`wrong number of args for split: want 2 got 1`,
//! `wrong type for value; expected string; got int`) and a failing function
//! (`error calling index: index out of range: 5`).

use std::cmp::Ordering;

use super::fmt::{Num, go_type, num, sprint, sprint_v, sprintf, sprintln};
use super::{MAX_OUTPUT, Value, clock, json};

macro_rules! builtins {
    ($($variant:ident $name:literal $arity:expr,)*) => {
        /// A built-in function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Builtin { $($variant,)* }

        impl Builtin {
            /// The built-in called `name`.
            pub(super) fn from_name(name: &str) -> Option<Builtin> {
                match name { $($name => Some(Builtin::$variant),)* _ => None }
            }

            /// Its name in templates.
            pub(super) fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name,)* }
            }

            fn arity(self) -> Arity {
                match self { $(Builtin::$variant => $arity,)* }
            }
        }
    };
}

use Arity::{AtLeast, AtMost, Exactly};

builtins! {
    And "and" AtLeast(1),
    Or "or" AtLeast(1),
    Not "not" Exactly(1),
    Eq "eq" AtLeast(2),
    Ne "ne" Exactly(2),
    Lt "lt" Exactly(2),
    Le "le" Exactly(2),
    Gt "gt" Exactly(2),
    Ge "ge" Exactly(2),
    Len "len" Exactly(1),
    Index "index" AtLeast(1),
    Slice "slice" AtLeast(1),
    Print "print" AtLeast(0),
    Printf "printf" AtLeast(1),
    Println "println" AtLeast(0),
    ToJson "toJSON" Exactly(1),
    ToJsonPretty "toJSONPretty" Exactly(1),
    ParseJson "parseJSON" Exactly(1),
    Split "split" Exactly(2),
    Join "join" Exactly(2),
    ReplaceAll "replaceAll" Exactly(3),
    ToLower "toLower" Exactly(1),
    ToUpper "toUpper" Exactly(1),
    ToTitle "toTitle" Exactly(1),
    TrimSpace "trimSpace" Exactly(1),
    Contains "contains" Exactly(2),
    In "in" Exactly(2),
    ContainsAny "containsAny" Exactly(2),
    ContainsAll "containsAll" Exactly(2),
    Env "env" Exactly(1),
    Timestamp "timestamp" AtMost(1),
}

/// How many arguments a built-in takes.
#[derive(Debug, Clone, Copy)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
    AtMost(usize),
}

/// Why a built-in failed.
enum Fail {
    /// The arguments do not fit the function; reported as is.
    Arg(String),
    /// The function itself failed; reported as `error calling NAME: …`.
    Call(String),
}

type Result<T> = std::result::Result<T, Fail>;

fn call_err<T>(message: impl Into<String>) -> Result<T> {
    Err(Fail::Call(message.into()))
}

/// Checks the argument count of `b`, for `and`/`or`, which the evaluator runs lazily.
pub(super) fn check_arity(b: Builtin, got: usize) -> std::result::Result<(), String> {
    let name = b.name();
    match b.arity() {
        Exactly(n) if got != n => Err(format!("wrong number of args for {name}: want {n} got {got}")),
        AtLeast(n) if got < n => Err(format!("wrong number of args for {name}: want at least {n} got {got}")),
        AtMost(n) if got > n => Err(format!("wrong number of args for {name}: want at most {n} got {got}")),
        _ => Ok(()),
    }
}

/// Calls `b` with evaluated arguments.
pub(super) fn call(b: Builtin, args: &[Value]) -> std::result::Result<Value, String> {
    check_arity(b, args.len())?;
    let value = run(b, args).map_err(|f| match f {
        Fail::Arg(m) => m,
        Fail::Call(m) => format!("error calling {}: {m}", b.name()),
    })?;
    if let Value::String(s) = &value
        && s.len() > MAX_OUTPUT
    {
        return Err(format!("error calling {}: result exceeds {MAX_OUTPUT} bytes", b.name()));
    }
    Ok(value)
}

fn run(b: Builtin, a: &[Value]) -> Result<Value> {
    use Builtin as B;
    Ok(match b {
        B::And => a.iter().find(|v| !truth(v)).unwrap_or(&a[a.len() - 1]).clone(),
        B::Or => a.iter().find(|v| truth(v)).unwrap_or(&a[a.len() - 1]).clone(),
        B::Not => Value::Bool(!truth(&a[0])),
        B::Eq => Value::Bool(eq(&a[0], &a[1..])?),
        B::Ne => Value::Bool(!eq(&a[0], &a[1..])?),
        B::Lt => Value::Bool(compare(&a[0], &a[1])?.is_lt()),
        B::Le => Value::Bool(compare(&a[0], &a[1])?.is_le()),
        B::Gt => Value::Bool(compare(&a[0], &a[1])?.is_gt()),
        B::Ge => Value::Bool(compare(&a[0], &a[1])?.is_ge()),
        B::Len => Value::from(len(&a[0])?),
        B::Index => index(&a[0], &a[1..])?,
        B::Slice => slice(&a[0], &a[1..])?,
        B::Print => Value::String(sprint(a)),
        B::Printf => Value::String(sprintf(string(&a[0])?, &a[1..])),
        B::Println => Value::String(sprintln(a)),
        B::ToJson => Value::String(json::encode(&a[0], false)),
        B::ToJsonPretty => Value::String(json::encode(&a[0], true)),
        B::ParseJson => parse_json(string(&a[0])?)?,
        B::Split => split(string(&a[0])?, string(&a[1])?),
        B::Join => Value::String(join(string(&a[0])?, &a[1])?),
        B::ReplaceAll => Value::String(replace_all(string(&a[0])?, string(&a[1])?, string(&a[2])?)?),
        B::ToLower => Value::String(string(&a[0])?.to_lowercase()),
        B::ToUpper => Value::String(string(&a[0])?.to_uppercase()),
        B::ToTitle => Value::String(title(string(&a[0])?)),
        B::TrimSpace => Value::String(string(&a[0])?.trim().to_string()),
        B::Contains => Value::Bool(contains(&a[1], &a[0])?),
        B::In => Value::Bool(contains(&a[0], &a[1])?),
        B::ContainsAny => Value::Bool(contains_some(&a[0], &a[1], false)?),
        B::ContainsAll => Value::Bool(contains_some(&a[0], &a[1], true)?),
        B::Env => Value::String(
            std::env::var_os(string(&a[0])?).map(|v| v.to_string_lossy().into_owned()).unwrap_or_default(),
        ),
        B::Timestamp => Value::String(timestamp(a.first().map(string).transpose()?)),
    })
}

/// Go's truth: false, 0, null and empty strings, lists and maps are false.
pub(super) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => match num(n) {
            Num::Int(i) => i != 0,
            Num::Float(f) => f != 0.0,
        },
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn string(v: &Value) -> Result<&str> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => Err(Fail::Arg("invalid value; expected string".into())),
        _ => Err(Fail::Arg(format!("wrong type for value; expected string; got {}", go_type(v)))),
    }
}

fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => match num(n) {
            Num::Int(i) => Some(i),
            Num::Float(_) => None,
        },
        _ => None,
    }
}

/// `eq a b c…`: whether `a` equals any of the others.
fn eq(a: &Value, others: &[Value]) -> Result<bool> {
    for b in others {
        if equal(a, b)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn equal(a: &Value, b: &Value) -> Result<bool> {
    match (a, b) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            call_err("non-comparable type")
        }
        (Value::Null, _) | (_, Value::Null) => Ok(a.is_null() && b.is_null()),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::String(x), Value::String(y)) => Ok(x == y),
        (Value::Number(x), Value::Number(y)) => Ok(compare_num(num(x), num(y)) == Ordering::Equal),
        _ => call_err("incompatible types for comparison"),
    }
}

fn compare_num(x: Num, y: Num) -> Ordering {
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (x, y) => {
            let f = |n| match n {
                Num::Int(i) => i as f64,
                Num::Float(f) => f,
            };
            f(x).partial_cmp(&f(y)).unwrap_or(Ordering::Equal)
        }
    }
}

fn compare(a: &Value, b: &Value) -> Result<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => Ok(compare_num(num(x), num(y))),
        (Value::String(_) | Value::Number(_), Value::String(_) | Value::Number(_)) => {
            call_err("incompatible types for comparison")
        }
        _ => call_err("invalid type for comparison"),
    }
}

fn len(v: &Value) -> Result<usize> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::Array(a) => Ok(a.len()),
        Value::Object(m) => Ok(m.len()),
        Value::Null => call_err("len of nil pointer"),
        _ => call_err(format!("len of type {}", go_type(v))),
    }
}

/// `index x 1 "k"`: lists by integer, maps by string (missing keys are null), strings by byte.
fn index(item: &Value, keys: &[Value]) -> Result<Value> {
    let mut cur = item.clone();
    for key in keys {
        cur = match (&cur, key) {
            (Value::Array(a), k) => a.get(position(k, a.len())?).cloned().unwrap_or(Value::Null),
            (Value::String(s), k) => Value::from(s.as_bytes()[position(k, s.len())?]),
            (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
            (Value::Object(_), k) => {
                return call_err(format!("value has type {}; should be string", go_type(k)));
            }
            (Value::Null, _) => return call_err("index of untyped nil"),
            (v, _) => return call_err(format!("can't index item of type {}", go_type(v))),
        };
    }
    Ok(cur)
}

/// A list or string index that must be below `len`.
fn position(k: &Value, len: usize) -> Result<usize> {
    let Some(i) = int(k) else {
        return call_err(format!("cannot index slice/array with type {}", go_type(k)));
    };
    usize::try_from(i)
        .ok()
        .filter(|&i| i < len)
        .map_or_else(|| call_err(format!("index out of range: {i}")), Ok)
}

/// `slice x 1 2`: a sub-list or sub-string (by bytes).
fn slice(item: &Value, bounds: &[Value]) -> Result<Value> {
    let len = match item {
        Value::Array(a) => a.len(),
        Value::String(s) => s.len(),
        Value::Null => return call_err("slice of untyped nil"),
        v => return call_err(format!("can't slice item of type {}", go_type(v))),
    };
    if bounds.len() > 2 {
        return call_err("too many slice indexes");
    }
    let mut idx = [0, len];
    for (slot, b) in idx.iter_mut().zip(bounds) {
        let Some(i) = int(b).and_then(|i| usize::try_from(i).ok()) else {
            return call_err(format!("cannot index slice/array with type {}", go_type(b)));
        };
        if i > len {
            return call_err(format!("index out of range: {i}"));
        }
        *slot = i;
    }
    let [lo, hi] = idx;
    if lo > hi {
        return call_err(format!("invalid slice index: {lo} > {hi}"));
    }
    Ok(match item {
        Value::Array(a) => Value::Array(a[lo..hi].to_vec()),
        Value::String(s) => Value::String(String::from_utf8_lossy(&s.as_bytes()[lo..hi]).into_owned()),
        _ => Value::Null,
    })
}

/// consul-template's `parseJSON`: the empty string is an empty map.
fn parse_json(s: &str) -> Result<Value> {
    if s.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(s).or_else(|e| call_err(e.to_string()))
}

/// consul-template's `split SEP S`: trims `S`, and splits the empty string into no parts.
fn split(sep: &str, s: &str) -> Value {
    let s = s.trim();
    let parts: Vec<Value> = if s.is_empty() {
        Vec::new()
    } else if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    Value::Array(parts)
}

/// `join SEP LIST`: strings as they are, other elements as `%v` prints them.
fn join(sep: &str, list: &Value) -> Result<String> {
    let items = match list {
        Value::Array(a) => a,
        Value::Null => return Ok(String::new()),
        v => return Err(Fail::Arg(format!("wrong type for value; expected []string; got {}", go_type(v)))),
    };
    let parts: Vec<String> =
        items.iter().map(|v| v.as_str().map_or_else(|| sprint_v(v), str::to_string)).collect();
    let size = parts.iter().map(String::len).sum::<usize>() + sep.len() * parts.len().saturating_sub(1);
    if size > MAX_OUTPUT {
        return call_err(format!("result exceeds {MAX_OUTPUT} bytes"));
    }
    Ok(parts.join(sep))
}

/// `replaceAll FROM TO S`, refusing results over the output limit before building them.
fn replace_all(from: &str, to: &str, s: &str) -> Result<String> {
    let matches = if from.is_empty() { s.chars().count() + 1 } else { s.matches(from).count() };
    if s.len().saturating_add(matches.saturating_mul(to.len())) > MAX_OUTPUT {
        return call_err(format!("result exceeds {MAX_OUTPUT} bytes"));
    }
    Ok(s.replace(from, to))
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for c in s.chars() {
        let separator = if prev.is_ascii() {
            !(prev.is_ascii_alphanumeric() || prev == '_')
        } else {
            prev.is_whitespace()
        };
        if separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// consul-template's `in HAYSTACK NEEDLE`: an element of a list, or a substring of a string.
fn contains(haystack: &Value, needle: &Value) -> Result<bool> {
    match haystack {
        Value::Array(items) => Ok(items.iter().any(|item| equal(item, needle).unwrap_or(false))),
        Value::String(s) => Ok(s.contains(string(needle)?)),
        Value::Null => Ok(false),
        v => call_err(format!("unsupported type {}", go_type(v))),
    }
}

/// `containsAny NEEDLES HAYSTACK` / `containsAll NEEDLES HAYSTACK`.
fn contains_some(needles: &Value, haystack: &Value, all: bool) -> Result<bool> {
    let Value::Array(needles) = needles else {
        return call_err(format!("unsupported type {}", go_type(needles)));
    };
    for n in needles {
        if contains(haystack, n)? != all {
            return Ok(!all);
        }
    }
    Ok(all)
}

/// consul-template's `timestamp`: RFC 3339 in UTC, `"unix"` seconds, or a Go layout.
fn timestamp(layout: Option<&str>) -> String {
    let (secs, nanos) = clock::now();
    match layout {
        Some("unix") => secs.to_string(),
        Some(layout) => clock::format(secs, nanos, layout),
        None => clock::format(secs, nanos, clock::RFC3339),
    }
}
