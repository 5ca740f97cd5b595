//! Request-body decoding the way Go's `encoding/json` and Consul do it: keys match
//! case-insensitively and Consul's snake_case aliases match too (`enable_tag_override`,
//! `lockdelay`), durations are Go strings (`"15s"`, `"0.001s"`) or nanosecond integers.
//! User data maps (`Meta`, `NodeMeta`, `TaggedAddresses`) keep their keys as written.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::ApiError;

/// A JSON object read with Consul's key matching.
#[derive(Debug, Clone, Copy)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    ctx: &'static str,
}

fn norm(k: &str) -> String {
    k.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// The JSON type of a value as Go's decoder names it in errors.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_err(ctx: &str, field: &str, want: &str, got: &Value) -> ApiError {
    let kind = json_kind(got);
    ApiError::decode(format!("json: cannot unmarshal {kind} into field {ctx}.{field} of type {want}"))
}

impl<'a> Obj<'a> {
    /// Reads `v` as an object; `ctx` names it in errors.
    pub fn new(v: &'a Value, ctx: &'static str) -> Result<Obj<'a>, ApiError> {
        match v {
            Value::Object(map) => Ok(Obj { map, ctx }),
            other => Err(type_err("", ctx, "object", other)),
        }
    }

    /// The value of `field` (case- and underscore-insensitive), ignoring JSON null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        let want = norm(field);
        self.map.iter().find(|(k, _)| norm(k) == want).map(|(_, v)| v).filter(|v| !v.is_null())
    }

    /// Every entry of the object, keys as written.
    pub fn entries(&self) -> Vec<(&'a String, &'a Value)> {
        self.map.iter().collect()
    }

    /// The first present of several spellings.
    pub fn get_any(&self, fields: &[&str]) -> Option<&'a Value> {
        fields.iter().find_map(|f| self.get(f))
    }

    /// A nested object.
    pub fn obj(&self, field: &'static str) -> Result<Option<Obj<'a>>, ApiError> {
        self.get(field).map(|v| Obj::new(v, field)).transpose()
    }

    /// A string field ("" when absent).
    pub fn str(&self, field: &str) -> Result<String, ApiError> {
        match self.get(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(type_err(self.ctx, field, "string", other)),
        }
    }

    /// A bool field (false when absent).
    pub fn bool(&self, field: &str) -> Result<bool, ApiError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(type_err(self.ctx, field, "bool", other)),
        }
    }

    /// An unsigned integer field (0 when absent).
    pub fn u64(&self, field: &str) -> Result<u64, ApiError> {
        match self.get(field) {
            None => Ok(0),
            Some(Value::Number(n)) => {
                n.as_u64().ok_or_else(|| type_err(self.ctx, field, "uint64", &Value::Number(n.clone())))
            }
            Some(other) => Err(type_err(self.ctx, field, "uint64", other)),
        }
    }

    /// A port (0..=65535).
    pub fn port(&self, field: &str) -> Result<u16, ApiError> {
        let v = self.u64(field)?;
        u16::try_from(v)
            .map_err(|_| ApiError::decode(format!("field {}.{field}: port {v} out of range", self.ctx)))
    }

    /// A list of strings (empty when absent).
    pub fn strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(type_err(self.ctx, field, "[]string", other)),
                })
                .collect(),
            Some(other) => Err(type_err(self.ctx, field, "[]string", other)),
        }
    }

    /// A string → string map, keys kept as written (`None` when absent).
    pub fn string_map(&self, field: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(type_err(self.ctx, field, "map[string]string", other)),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => Err(type_err(self.ctx, field, "map[string]string", other)),
        }
    }

    /// A duration: Go string (`"15s"`) or integer nanoseconds.
    pub fn duration(&self, field: &str) -> Result<Option<Duration>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|ns| Some(Duration::from_nanos(ns)))
                .ok_or_else(|| type_err(self.ctx, field, "duration", &Value::Number(n.clone()))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => crate::config::parse_go_duration(s)
                .map(Some)
                .map_err(|e| ApiError::decode(format!("field {}.{field}: {e}", self.ctx))),
            Some(other) => Err(type_err(self.ctx, field, "duration", other)),
        }
    }

    /// The raw value of a list field (empty when absent).
    pub fn list(&self, field: &str) -> Result<Vec<&'a Value>, ApiError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.iter().collect()),
            Some(other) => Err(type_err(self.ctx, field, "array", other)),
        }
    }
}

/// Parses a request body as JSON (an empty body is `null`).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(ApiError::decode)
}

/// Formats a duration the way Go's `time.Duration.String()` does (`"15s"`, `"1m30s"`, `"1.5s"`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}µs", trim(n as f64 / 1e3)),
            n => format!("{}ms", trim(n as f64 / 1e6)),
        };
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = (ns % 60_000_000_000) as f64 / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim(s)));
    out
}

fn trim(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
