//! Watch plans: what to watch (Consul's watch types), where the JSON goes (handlers), and
//! parsing the agent config's `watches` entries with Consul's keys and error texts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::url::{append_param, escape_path};

/// One watched view, as `consul watch -type` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchKind {
    /// `key`: one KV entry (`null` while it does not exist).
    Key { key: String },
    /// `keyprefix`: every entry under a prefix (`null` when there is none).
    KeyPrefix { prefix: String },
    /// `services`: service name → tags.
    Services,
    /// `nodes`: the catalog's nodes.
    Nodes,
    /// `service`: health entries of one service, optionally filtered by tags and status.
    Service { service: String, tags: Vec<String>, passing_only: bool },
    /// `checks`: the checks of one service, or every check in one state.
    Checks { service: Option<String>, state: Option<String> },
    /// `event`: user events (optionally of one name) seen since the previous run.
    Event { name: Option<String> },
}

/// The watch types, for help texts and errors.
pub const TYPES: [&str; 7] = ["key", "keyprefix", "services", "nodes", "service", "checks", "event"];

impl WatchKind {
    /// The blocking-query path without `index`/`wait` (Consul's watch funcs in `watch/funcs.go`).
    pub fn path(&self) -> String {
        match self {
            WatchKind::Key { key } => format!("/v1/kv/{}", escape_path(key)),
            WatchKind::KeyPrefix { prefix } => {
                let mut p = format!("/v1/kv/{}", escape_path(prefix));
                append_param(&mut p, "recurse", None);
                p
            }
            WatchKind::Services => "/v1/catalog/services".to_owned(),
            WatchKind::Nodes => "/v1/catalog/nodes".to_owned(),
            WatchKind::Service { service, tags, passing_only } => {
                let mut p = format!("/v1/health/service/{}", escape_path(service));
                for t in tags {
                    append_param(&mut p, "tag", Some(t));
                }
                if *passing_only {
                    append_param(&mut p, "passing", None);
                }
                p
            }
            WatchKind::Checks { service: Some(s), .. } => format!("/v1/health/checks/{}", escape_path(s)),
            WatchKind::Checks { state, .. } => {
                format!("/v1/health/state/{}", escape_path(state.as_deref().unwrap_or("any")))
            }
            WatchKind::Event { name } => {
                let mut p = "/v1/event/list".to_owned();
                if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
                    append_param(&mut p, "name", Some(n));
                }
                p
            }
        }
    }

    /// The type name (`key`, `keyprefix`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchKind::Key { .. } => "key",
            WatchKind::KeyPrefix { .. } => "keyprefix",
            WatchKind::Services => "services",
            WatchKind::Nodes => "nodes",
            WatchKind::Service { .. } => "service",
            WatchKind::Checks { .. } => "checks",
            WatchKind::Event { .. } => "event",
        }
    }
}

/// The type-specific parameters, as flags or config keys give them.
#[derive(Debug, Clone, Default)]
pub struct KindParams {
    pub key: Option<String>,
    pub prefix: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    pub passing_only: bool,
    pub state: Option<String>,
    pub name: Option<String>,
}

/// Builds a watch kind from its type name, with Consul's error texts.
pub fn kind(type_name: &str, p: KindParams) -> Result<WatchKind, String> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(match type_name {
        "key" => {
            let key = nonempty(p.key).ok_or("Must specify a single key to watch")?;
            WatchKind::Key { key }
        }
        "keyprefix" => {
            let prefix = p.prefix.ok_or("Must specify a single prefix to watch")?;
            WatchKind::KeyPrefix { prefix }
        }
        "services" => WatchKind::Services,
        "nodes" => WatchKind::Nodes,
        "service" => {
            let service = nonempty(p.service).ok_or("Must specify a single service to watch")?;
            WatchKind::Service { service, tags: p.tags, passing_only: p.passing_only }
        }
        "checks" => {
            let (service, state) = (nonempty(p.service), nonempty(p.state));
            if service.is_some() && state.is_some() {
                return Err("Cannot specify service and state".into());
            }
            WatchKind::Checks { service, state }
        }
        "event" => WatchKind::Event { name: nonempty(p.name) },
        "" => return Err("Watch type must be specified".into()),
        other => return Err(format!("Unsupported watch type: {other}")),
    })
}

/// Where the JSON of each change goes.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerSpec {
    /// Run a program directly (`args`), JSON on stdin, `CONSUL_INDEX` in the environment.
    Args(Vec<String>),
    /// Run a command line with `sh -c` (Consul's deprecated `handler` string, and the CLI's
    /// `-shell`).
    Shell(String),
    /// POST the JSON to a URL.
    Http(HttpHandlerConfig),
}

/// `http_handler_config { path, method, header, timeout, tls_skip_verify }`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpHandlerConfig {
    pub path: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub timeout: Duration,
    pub tls_skip_verify: bool,
}

/// One watch from the agent config: the view, how to query it and its handler.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSpec {
    pub kind: WatchKind,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    pub stale: bool,
    pub handler: HandlerSpec,
}

/// Parses every `watches` entry; an error names the entry (`watches[1] (type "key")`).
pub fn parse_config_watches(watches: &[Value]) -> Result<Vec<WatchSpec>, String> {
    watches
        .iter()
        .enumerate()
        .map(|(i, w)| {
            parse_config_watch(w).map_err(|e| {
                let t = w.get("type").and_then(Value::as_str).unwrap_or("");
                format!("watches[{i}] (type {t:?}): Failed to parse watch: {e}")
            })
        })
        .collect()
}

/// Parses one `watches` entry (Consul's `watch.Parse` plus the agent's handler keys).
pub fn parse_config_watch(w: &Value) -> Result<WatchSpec, String> {
    let mut m = w.as_object().cloned().ok_or("a watch must be an object")?;
    let type_name = take_str(&mut m, "type")?.unwrap_or_default();
    if type_name.starts_with("connect_") {
        return Err(format!("Watch type {type_name} is not allowed in agent config"));
    }
    let params = KindParams {
        key: take_str(&mut m, "key")?,
        prefix: take_str(&mut m, "prefix")?,
        service: take_str(&mut m, "service")?,
        tags: take_strings(&mut m, "tag")?.unwrap_or_default(),
        passing_only: take_bool(&mut m, "passingonly")?,
        state: take_str(&mut m, "state")?,
        name: take_str(&mut m, "name")?,
    };
    let datacenter = take_str(&mut m, "datacenter")?.filter(|s| !s.is_empty());
    let token = take_str(&mut m, "token")?.filter(|s| !s.is_empty());
    let stale = take_bool(&mut m, "stale")?;
    let handler = take_handler(&mut m)?;
    if !m.is_empty() {
        let keys: Vec<&String> = m.keys().collect();
        return Err(format!("Invalid parameters: {keys:?}"));
    }
    let kind = kind(&type_name, params)?;
    Ok(WatchSpec { kind, datacenter, token, stale, handler })
}

fn take_handler(m: &mut Map<String, Value>) -> Result<HandlerSpec, String> {
    let handler_type = take_str(m, "handler_type")?.unwrap_or_else(|| "script".to_owned());
    let shell = take_str(m, "handler")?.filter(|s| !s.is_empty());
    let args = match m.remove("args") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.into_iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or("Watch handler 'args' must be a list of strings")
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("Watch handler 'args' must be a list of strings".into()),
    };
    let http = m.remove("http_handler_config");
    match handler_type.as_str() {
        "script" => match (shell, args) {
            (Some(_), Some(_)) => Err("Only one watch handler allowed".into()),
            (Some(s), None) => Ok(HandlerSpec::Shell(s)),
            (None, Some(a)) if !a.is_empty() => Ok(HandlerSpec::Args(a)),
            _ => Err("Must define a watch handler".into()),
        },
        "http" => {
            if shell.is_some() || args.is_some() {
                return Err("Only one watch handler allowed".into());
            }
            let cfg = http.ok_or("Must define a watch handler (http_handler_config)")?;
            parse_http_config(cfg).map(HandlerSpec::Http)
        }
        other => Err(format!("Handler type '{other}' not recognized")),
    }
}

fn parse_http_config(v: Value) -> Result<HttpHandlerConfig, String> {
    let Value::Object(mut m) = v else { return Err("http_handler_config must be an object".into()) };
    let path = take_str(&mut m, "path")?.filter(|p| !p.is_empty());
    let path = path.ok_or("Requires a valid http_handler_config.path")?;
    let method = take_str(&mut m, "method")?.filter(|s| !s.is_empty()).unwrap_or_else(|| "POST".into());
    let timeout = match take_str(&mut m, "timeout")? {
        None => Duration::from_secs(10),
        Some(t) => {
            crate::config::parse_go_duration(&t).map_err(|e| format!("http_handler_config.timeout: {e}"))?
        }
    };
    let tls_skip_verify = take_bool(&mut m, "tls_skip_verify")?;
    let mut header = BTreeMap::new();
    if let Some(h) = m.remove("header") {
        let Value::Object(h) = h else { return Err("http_handler_config.header must be an object".into()) };
        for (k, v) in h {
            let values = match v {
                Value::String(s) => vec![s],
                Value::Array(a) => a.into_iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                _ => return Err(format!("http_handler_config.header.{k} must be a list of strings")),
            };
            header.insert(k, values);
        }
    }
    if !m.is_empty() {
        let keys: Vec<&String> = m.keys().collect();
        return Err(format!("Invalid http_handler_config parameters: {keys:?}"));
    }
    Ok(HttpHandlerConfig { path, method, header, timeout, tls_skip_verify })
}

fn take_str(m: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Expecting {key} to be a string")),
    }
}

fn take_strings(m: &mut Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("Expecting {key} to be a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("Expecting {key} to be a string or a list of strings")),
    }
}

fn take_bool(m: &mut Map<String, Value>, key: &str) -> Result<bool, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) => s.parse().map_err(|_| format!("Expecting {key} to be a boolean")),
        Some(_) => Err(format!("Expecting {key} to be a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn config_watches_parse_with_consul_keys() {
        let w = parse_config_watch(&json!({
            "type": "service", "service": "web", "tag": ["a", "b"], "passingonly": true,
            "datacenter": "dc2", "token": "t", "args": ["/bin/handler", "-x"]
        }))
        .unwrap();
        assert_eq!(w.kind.path(), "/v1/health/service/web?tag=a&tag=b&passing=");
        assert_eq!(w.datacenter.as_deref(), Some("dc2"));
        assert_eq!(w.handler, HandlerSpec::Args(vec!["/bin/handler".into(), "-x".into()]));
        let w = parse_config_watch(&json!({
            "type": "keyprefix", "prefix": "app/", "handler_type": "http",
            "http_handler_config": {"path": "http://h/x", "header": {"A": ["1"]}, "timeout": "5s"}
        }))
        .unwrap();
        let HandlerSpec::Http(h) = w.handler else { panic!("http handler") };
        assert_eq!((h.method.as_str(), h.timeout), ("POST", Duration::from_secs(5)));
        let w = parse_config_watch(&json!({"type": "nodes", "handler": "echo hi"})).unwrap();
        assert_eq!(w.handler, HandlerSpec::Shell("echo hi".into()));
    }

    #[test]
    fn bad_config_watches_name_the_entry_and_the_rule() {
        let cases = [
            (json!({"type": "key", "args": ["x"]}), "Must specify a single key to watch"),
            (json!({"type": "bogus", "args": ["x"]}), "Unsupported watch type: bogus"),
            (json!({"args": ["x"]}), "Watch type must be specified"),
            (json!({"type": "nodes"}), "Must define a watch handler"),
            (json!({"type": "nodes", "args": ["x"], "handler": "y"}), "Only one watch handler allowed"),
            (json!({"type": "nodes", "args": ["x"], "color": 1}), "Invalid parameters: [\"color\"]"),
            (json!({"type": "nodes", "handler_type": "ftp"}), "Handler type 'ftp' not recognized"),
            (json!({"type": "checks", "service": "a", "state": "passing", "args": ["x"]}), "Cannot specify"),
        ];
        for (w, want) in cases {
            let err =
                parse_config_watches(&[json!({"type": "nodes", "args": ["x"]}), w.clone()]).unwrap_err();
            assert!(err.starts_with("watches[1] (type "), "{err}");
            assert!(err.contains(want), "{w}: {err}");
        }
    }

    #[test]
    fn paths_follow_consuls_watch_functions() {
        let k = |t: &str, p: KindParams| kind(t, p).unwrap().path();
        assert_eq!(
            k("key", KindParams { key: Some("a b/c".into()), ..Default::default() }),
            "/v1/kv/a%20b/c"
        );
        assert_eq!(
            k("keyprefix", KindParams { prefix: Some("app/".into()), ..Default::default() }),
            "/v1/kv/app/?recurse="
        );
        assert_eq!(
            k("checks", KindParams { state: Some("critical".into()), ..Default::default() }),
            "/v1/health/state/critical"
        );
        assert_eq!(k("checks", KindParams::default()), "/v1/health/state/any");
        assert_eq!(
            k("event", KindParams { name: Some("deploy".into()), ..Default::default() }),
            "/v1/event/list?name=deploy"
        );
    }
}
