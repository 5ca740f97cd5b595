//! Renders templates against an agent and keeps them current (consul-template's runner).
//!
//! ```text
//!  render pass: every template through the engine with a Backend over the cache
//!      a call such as `key "x"` names a Dependency; missing → a fetch task starts, the
//!      template is incomplete this pass (nothing written)
//!  fetch task per dependency: GET … (then ?index=N&wait=…, blocking) → cache → wake
//!  main loop: wake → quiet period (-wait min:max) → render pass → write changed outputs
//!      (temp file + rename, mode and owner kept) → run each changed template's command
//! ```
//! An agent that goes away leaves every output as it was: the fetch tasks retry with a
//! backoff and the next render happens when answers come back.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::engine::{Functions, Template, TemplateError};
use crate::client::Client;

/// One `-template "in:out[:command]"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// The template file.
    pub source: PathBuf,
    /// Where the output goes (`None`: stdout).
    pub destination: Option<PathBuf>,
    /// Run with `sh -c` after the output changed.
    pub command: Option<String>,
}

impl TemplateSpec {
    /// Parses consul-template's `in.ctmpl:out[:command]` (the command may contain colons).
    pub fn parse(s: &str) -> Result<TemplateSpec, String> {
        let mut parts = s.splitn(3, ':');
        let source = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("-template {s:?}: no source file"))?;
        let destination = parts.next().filter(|p| !p.is_empty()).map(PathBuf::from);
        let command = parts.next().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
        if destination.is_none() && command.is_some() {
            return Err(format!("-template {s:?}: a command needs a destination file"));
        }
        Ok(TemplateSpec { source: PathBuf::from(source), destination, command })
    }
}

/// One agent-config `template { source, destination, command, wait }` stanza (`i` is its
/// position, named in errors). `wait` is `"min[:max]"` or `{ min = "1s", max = "3s" }`.
pub fn parse_config(i: usize, v: &Value) -> Result<(TemplateSpec, Option<(Duration, Duration)>), String> {
    let at = |k: &str| format!("template[{i}].{k}");
    let Value::Object(o) = v else { return Err(format!("template[{i}]: expected an object, found {v}")) };
    let text = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(other) => Err(format!("{}: expected a string, found {other}", at(k))),
        }
    };
    for k in o.keys() {
        if !matches!(k.as_str(), "source" | "destination" | "command" | "wait") {
            return Err(format!("{}: unknown key (source, destination, command, wait)", at(k)));
        }
    }
    let source = text("source")?.ok_or_else(|| format!("{} is required", at("source")))?;
    let destination = text("destination")?.ok_or_else(|| format!("{} is required", at("destination")))?;
    let wait = match o.get("wait") {
        None | Some(Value::Null) => None,
        Some(Value::String(w)) => Some(parse_wait(w).map_err(|e| format!("{}: {e}", at("wait")))?),
        Some(Value::Object(w)) => {
            let part = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("");
            let spec = if part("max").is_empty() {
                part("min").to_owned()
            } else {
                format!("{}:{}", part("min"), part("max"))
            };
            Some(parse_wait(&spec).map_err(|e| format!("{}: {e}", at("wait")))?)
        }
        Some(other) => {
            return Err(format!("{}: expected \"min:max\" or {{min, max}}, found {other}", at("wait")));
        }
    };
    let spec = TemplateSpec {
        source: PathBuf::from(source),
        destination: Some(PathBuf::from(destination)),
        command: text("command")?,
    };
    Ok((spec, wait))
}

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Render once every dependency is known, then stop.
    pub once: bool,
    /// Print outputs to stdout (`> path` headers) instead of writing files.
    pub dry: bool,
    /// Quiescence: wait until nothing changed for `min`, but never longer than `max`.
    pub wait: Option<(Duration, Duration)>,
    /// Blocking-query wait (the server caps it at 10 minutes).
    pub block: Duration,
    /// `-exec`: a child process started after the first complete render and restarted after
    /// every change; when it exits, the run ends with its exit code.
    pub exec: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { once: false, dry: false, wait: None, block: Duration::from_secs(60), exec: None }
    }
}

/// Parses `-wait min[:max]` (`max` defaults to 4×min, as in consul-template).
pub fn parse_wait(s: &str) -> Result<(Duration, Duration), String> {
    let d = |t: &str| crate::config::parse_go_duration(t).map_err(|e| format!("-wait {s:?}: {e}"));
    let (min, max) = match s.split_once(':') {
        Some((a, b)) => (d(a)?, d(b)?),
        None => {
            let m = d(s)?;
            (m, m * 4)
        }
    };
    if max < min {
        return Err(format!("-wait {s:?}: the maximum is smaller than the minimum"));
    }
    Ok((min, max))
}

/// What a template function reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// One key (`key`, `keyOrDefault`).
    Key(String),
    /// The entries under a prefix (`ls`: one level, `tree`: all).
    Prefix(String),
    /// The key names under a prefix (`keys`).
    Keys(String),
    /// Healthy instances: `service "[tag.]name[@dc][|filter]"`.
    Service {
        /// The service name.
        name: String,
        /// Only instances with this tag.
        tag: Option<String>,
        /// The datacenter.
        dc: Option<String>,
        /// Every instance, whatever its health (`|any`).
        any: bool,
    },
    /// The catalog's services (`services`).
    Services(Option<String>),
    /// The catalog's nodes (`nodes`).
    Nodes(Option<String>),
    /// One node (`node`; `None` is the agent's own).
    Node(Option<String>),
    /// `datacenters`.
    Datacenters,
}

/// The functions the runner provides to the engine.
pub const FUNCTIONS: &[&str] =
    &["key", "keyOrDefault", "ls", "tree", "keys", "service", "services", "nodes", "node", "datacenters"];

impl Dependency {
    fn path(&self, self_node: &str) -> String {
        let q = crate::client::url::escape_query;
        let dc = |dc: &Option<String>| dc.as_ref().map(|d| format!("dc={}", q(d)));
        let join = |parts: Vec<Option<String>>| {
            let parts: Vec<String> = parts.into_iter().flatten().collect();
            if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
        };
        let kv = crate::client::url::escape_path;
        match self {
            Dependency::Key(k) => format!("/v1/kv/{}", kv(k)),
            Dependency::Prefix(p) => format!("/v1/kv/{}?recurse", kv(p)),
            Dependency::Keys(p) => format!("/v1/kv/{}?keys", kv(p)),
            Dependency::Service { name, tag, dc: d, any } => format!(
                "/v1/health/service/{}{}",
                kv(name),
                join(vec![
                    tag.as_ref().map(|t| format!("tag={}", q(t))),
                    dc(d),
                    (!any).then(|| "passing".to_owned()),
                ])
            ),
            Dependency::Services(d) => format!("/v1/catalog/services{}", join(vec![dc(d)])),
            Dependency::Nodes(d) => format!("/v1/catalog/nodes{}", join(vec![dc(d)])),
            Dependency::Node(n) => format!("/v1/catalog/node/{}", kv(n.as_deref().unwrap_or(self_node))),
            Dependency::Datacenters => "/v1/catalog/datacenters".to_owned(),
        }
    }

    /// The dependency a call names, or the error shown for bad arguments.
    fn of_call(name: &str, args: &[Value]) -> Result<Dependency, String> {
        let s = |i: usize| -> Result<String, String> {
            match args.get(i) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!("{name}: argument {} must be a string, not {other}", i + 1)),
                None => Err(format!("{name}: missing argument {}", i + 1)),
            }
        };
        let opt = |i: usize| args.get(i).and_then(Value::as_str).map(str::to_owned);
        let dc_of =
            |a: Option<String>| a.map(|s| s.trim_start_matches('@').to_owned()).filter(|s| !s.is_empty());
        let prefix = |p: String| p.trim_start_matches('/').to_owned();
        Ok(match name {
            "key" | "keyOrDefault" => Dependency::Key(s(0)?.trim_start_matches('/').to_owned()),
            "ls" | "tree" => Dependency::Prefix(prefix(s(0)?)),
            "keys" => Dependency::Keys(prefix(s(0)?)),
            "service" => parse_service(&s(0)?, args.get(1).and_then(Value::as_str))?,
            "services" => Dependency::Services(dc_of(opt(0))),
            "nodes" => Dependency::Nodes(dc_of(opt(0))),
            "node" => Dependency::Node(opt(0).filter(|n| !n.starts_with('@') && !n.is_empty())),
            "datacenters" => Dependency::Datacenters,
            other => return Err(format!("function {other:?} is not a dependency function")),
        })
    }
}

/// `[tag.]name[@dc][|any|passing,…]` (and consul-template's second-argument form).
fn parse_service(spec: &str, filter_arg: Option<&str>) -> Result<Dependency, String> {
    let (spec, mut filter) = match spec.split_once('|') {
        Some((a, b)) => (a, Some(b.to_owned())),
        None => (spec, None),
    };
    if let Some(f) = filter_arg {
        filter = Some(f.to_owned());
    }
    let (spec, dc) = match spec.split_once('@') {
        Some((a, b)) => (a, Some(b.to_owned()).filter(|d| !d.is_empty())),
        None => (spec, None),
    };
    let (tag, name) = match spec.rsplit_once('.') {
        Some((t, n)) => (Some(t.to_owned()), n.to_owned()),
        None => (None, spec.to_owned()),
    };
    if name.is_empty() {
        return Err(format!("service {spec:?}: no service name"));
    }
    let any = match filter.as_deref().map(str::trim) {
        None | Some("") | Some("passing") => false,
        Some("any") => true,
        // Anything that admits warning or critical instances needs them all; the engine
        // cannot filter statuses the health endpoint left out.
        Some(f)
            if f.split(',')
                .all(|s| matches!(s.trim(), "passing" | "warning" | "critical" | "maintenance")) =>
        {
            true
        }
        Some(f) => {
            return Err(format!("service: unknown health filter {f:?} (any, passing, warning, critical)"));
        }
    };
    Ok(Dependency::Service { name, tag, dc, any })
}

/// A fetched dependency: its data (`Null` for a key that does not exist) and its index.
#[derive(Debug, Clone)]
struct Fetched {
    data: Value,
}

#[derive(Default)]
struct Shared {
    cache: Mutex<HashMap<Dependency, Fetched>>,
    started: Mutex<std::collections::HashSet<Dependency>>,
    wake: Notify,
}

/// The engine's view of the cache for one render pass.
struct Backend<'a> {
    shared: &'a Shared,
    missing: Mutex<Vec<Dependency>>,
    /// A `key` that does not exist yet: the render waits for it (consul-template blocks).
    waiting: Mutex<bool>,
}

fn kv_value(entry: &Value) -> String {
    use base64::Engine as _;
    let raw = entry["Value"].as_str().unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Functions for Backend<'_> {
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let dep = Dependency::of_call(name, args)?;
        let Some(f) = self.shared.cache.lock().get(&dep).cloned() else {
            self.missing.lock().push(dep);
            return Ok(match name {
                "key" | "keyOrDefault" => Value::String(String::new()),
                "node" => Value::Null,
                _ => Value::Array(Vec::new()),
            });
        };
        Ok(shape(name, &dep, &f.data, args, &mut self.waiting.lock()))
    }
}

/// consul-template's objects from the API's JSON.
fn shape(name: &str, dep: &Dependency, data: &Value, args: &[Value], waiting: &mut bool) -> Value {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    match (name, dep) {
        ("key", _) => match list(data).first() {
            Some(e) => Value::String(kv_value(e)),
            None => {
                *waiting = true;
                Value::String(String::new())
            }
        },
        ("keyOrDefault", _) => match list(data).first() {
            Some(e) => Value::String(kv_value(e)),
            None => args.get(1).cloned().unwrap_or(Value::String(String::new())),
        },
        ("ls" | "tree", Dependency::Prefix(prefix)) => {
            let base = if prefix.is_empty() || prefix.ends_with('/') {
                prefix.clone()
            } else {
                format!("{prefix}/")
            };
            let entries = list(data).into_iter().filter_map(|e| {
                let key = e["Key"].as_str()?.to_owned();
                let rel = key.strip_prefix(&base).unwrap_or(&key).to_owned();
                if rel.is_empty() || rel.ends_with('/') || (name == "ls" && rel.contains('/')) {
                    return None;
                }
                Some(json!({"Key": rel, "Path": key, "Value": kv_value(&e), "Flags": e["Flags"],
                            "CreateIndex": e["CreateIndex"], "ModifyIndex": e["ModifyIndex"]}))
            });
            Value::Array(entries.collect())
        }
        ("keys", Dependency::Keys(_)) => data.clone(),
        ("service", _) => Value::Array(
            list(data)
                .into_iter()
                .map(|e| {
                    let node = &e["Node"];
                    let svc = &e["Service"];
                    let address =
                        svc["Address"].as_str().filter(|a| !a.is_empty()).or(node["Address"].as_str());
                    let checks = list(&e["Checks"]);
                    let status = if checks.iter().any(|c| c["Status"] == "critical") {
                        "critical"
                    } else if checks.iter().any(|c| c["Status"] == "warning") {
                        "warning"
                    } else {
                        "passing"
                    };
                    json!({
                        "Node": node["Node"], "NodeAddress": node["Address"], "NodeMeta": node["Meta"],
                        "Address": address, "ID": svc["ID"], "Name": svc["Service"], "Tags": svc["Tags"],
                        "Port": svc["Port"], "Meta": svc["Meta"], "Status": status, "Checks": checks,
                    })
                })
                .collect(),
        ),
        ("services", _) => {
            let m = data.as_object().cloned().unwrap_or_default();
            let sorted: BTreeMap<_, _> = m.into_iter().collect();
            Value::Array(sorted.into_iter().map(|(name, tags)| json!({"Name": name, "Tags": tags})).collect())
        }
        ("nodes", _) => Value::Array(list(data)),
        ("node", _) => {
            if data.is_null() {
                return Value::Null;
            }
            let services: Vec<Value> =
                data["Services"].as_object().map(|m| m.values().cloned().collect()).unwrap_or_default();
            json!({"Node": data["Node"], "Services": services})
        }
        _ => data.clone(),
    }
}

/// Fetches `dep` and keeps it current with blocking queries until `stop`.
async fn follow(
    client: Client,
    dep: Dependency,
    self_node: String,
    shared: Arc<Shared>,
    block: Duration,
    once: bool,
    stop: tokio_util::sync::CancellationToken,
) {
    let base = dep.path(&self_node);
    let mut index = 0u64;
    let mut backoff = Duration::from_millis(250);
    loop {
        let path = if index == 0 {
            base.clone()
        } else {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}index={index}&wait={}ms", block.as_millis())
        };
        let answer = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.request(Method::GET, &path, None) => r,
        };
        let data = match answer {
            Ok(r) if r.is_success() => {
                let new_index = r.index().unwrap_or(0);
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                // An index that went backwards (snapshot restore) starts over, as Consul advises.
                index = if new_index < index { 0 } else { new_index };
                backoff = Duration::from_millis(250);
                Some(v)
            }
            Ok(r) if r.status == http::StatusCode::NOT_FOUND => {
                index = r.index().unwrap_or(0);
                Some(Value::Null)
            }
            Ok(r) => {
                tracing::warn!(path = %base, status = %r.status, "template: {}", r.text().trim());
                None
            }
            Err(e) => {
                tracing::warn!(path = %base, "template: {e}; retrying");
                None
            }
        };
        match data {
            Some(v) => {
                let changed = {
                    let mut cache = shared.cache.lock();
                    let old = cache.insert(dep.clone(), Fetched { data: v.clone() });
                    old.is_none_or(|o| o.data != v)
                };
                if changed {
                    shared.wake.notify_one();
                }
                // With -once a missing key (or node) is followed until it appears: `key`
                // waits for it, and nothing else would fetch it again.
                if once && !v.is_null() {
                    return;
                }
            }
            None => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// A loaded template and what it last produced.
struct Loaded {
    spec: TemplateSpec,
    template: Template,
    last: Option<String>,
}

/// Reads and parses every template; errors name the file, line and column.
pub fn load(specs: &[TemplateSpec]) -> Result<Vec<(TemplateSpec, Template)>, String> {
    specs
        .iter()
        .map(|s| {
            let text =
                std::fs::read_to_string(&s.source).map_err(|e| format!("{}: {e}", s.source.display()))?;
            let name = s.source.display().to_string();
            let t = Template::parse(&name, &text, FUNCTIONS).map_err(|e: TemplateError| e.to_string())?;
            Ok((s.clone(), t))
        })
        .collect()
}

/// Writes `text` to `path` through a temp file in the same directory, keeping an existing
/// file's mode and owner.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sekisho-{}.tmp", std::process::id()));
    let old = std::fs::metadata(path).ok();
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    if let Some(m) = &old {
        std::fs::set_permissions(&tmp, m.permissions())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            // Keeping the owner needs privileges; without them the file is ours, as with
            // consul-template.
            let _ = std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()));
        }
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// What a run did, for callers and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Render passes that wrote at least one file.
    pub writes: u64,
    /// Commands run.
    pub commands: u64,
    /// With `-exec`: the child's exit code, when it ended the run.
    pub exit_code: Option<i32>,
    /// With `-exec`: how many times the child was started.
    pub exec_starts: u64,
}

/// Renders `templates` against `client` until `stop` (or once, with `opts.once`).
/// `out` receives dry-run output and per-render progress lines.
pub async fn run(
    client: Client,
    templates: Vec<(TemplateSpec, Template)>,
    opts: Options,
    stop: tokio_util::sync::CancellationToken,
    out: &mut (dyn std::io::Write + Send),
) -> Result<Report, String> {
    let shared = Arc::new(Shared::default());
    let self_node = match client.request(Method::GET, "/v1/agent/self", None).await {
        Ok(r) if r.is_success() => {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            v["Config"]["NodeName"].as_str().unwrap_or_default().to_owned()
        }
        _ => String::new(),
    };
    let mut loaded: Vec<Loaded> = templates
        .into_iter()
        .map(|(spec, template)| {
            let last = spec.destination.as_ref().and_then(|d| std::fs::read_to_string(d).ok());
            Loaded { spec, template, last }
        })
        .collect();
    let mut report = Report::default();
    let mut child: Option<tokio::process::Child> = None;
    let tasks = stop.child_token();
    let _guard = tasks.clone().drop_guard();
    loop {
        // A render pass.
        let mut complete = true;
        let mut changed: Vec<usize> = Vec::new();
        for (i, l) in loaded.iter_mut().enumerate() {
            let backend =
                Backend { shared: &shared, missing: Mutex::new(Vec::new()), waiting: Mutex::new(false) };
            let rendered = l.template.render(&backend);
            let missing = std::mem::take(&mut *backend.missing.lock());
            let waiting = *backend.waiting.lock();
            for dep in missing.iter().cloned() {
                if shared.started.lock().insert(dep.clone()) {
                    tokio::spawn(follow(
                        client.clone(),
                        dep,
                        self_node.clone(),
                        shared.clone(),
                        opts.block,
                        opts.once,
                        tasks.clone(),
                    ));
                }
            }
            if !missing.is_empty() || waiting {
                complete = false;
                continue;
            }
            match rendered {
                Ok(text) => {
                    if l.last.as_deref() != Some(text.as_str()) || (opts.dry && opts.once) {
                        if opts.dry {
                            let dest = l.spec.destination.as_ref().map(|d| d.display().to_string());
                            let _ = writeln!(out, "> {}", dest.unwrap_or_else(|| "stdout".into()));
                            let _ = out.write_all(text.as_bytes());
                        } else if let Some(dest) = &l.spec.destination {
                            write_atomically(dest, &text)
                                .map_err(|e| format!("writing {}: {e}", dest.display()))?;
                        } else {
                            let _ = out.write_all(text.as_bytes());
                        }
                        l.last = Some(text);
                        changed.push(i);
                    }
                }
                // The last good output stays in place; the error is reported and the next
                // change renders again.
                Err(e) => {
                    if opts.once {
                        return Err(e.to_string());
                    }
                    tracing::error!("template: {e}; the last output is kept");
                    let _ = writeln!(out, "template error: {e}");
                }
            }
        }
        let _ = out.flush();
        if !changed.is_empty() {
            report.writes += 1;
        }
        if !opts.dry {
            for i in &changed {
                if let Some(cmd) = &loaded[*i].spec.command {
                    report.commands += 1;
                    let status = tokio::process::Command::new("sh").arg("-c").arg(cmd).status().await;
                    match status {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::warn!(command = %cmd, "template: the command exited with {s}"),
                        Err(e) => tracing::warn!(command = %cmd, "template: cannot run the command: {e}"),
                    }
                }
            }
        }
        if opts.once && complete {
            return Ok(report);
        }
        if let Some(cmd) = opts.exec.as_deref().filter(|_| complete && !opts.dry)
            && (child.is_none() || !changed.is_empty())
        {
            if let Some(mut old) = child.take() {
                let _ = old.kill().await;
            }
            let c = tokio::process::Command::new("sh").arg("-c").arg(cmd).kill_on_drop(true).spawn();
            child = Some(c.map_err(|e| format!("-exec {cmd:?}: {e}"))?);
            report.exec_starts += 1;
        }
        // Wait for a change (or the -exec child's end), then for quiet.
        let exited = async {
            match child.as_mut() {
                Some(c) => c.wait().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return Ok(report),
            _ = shared.wake.notified() => {}
            status = exited => {
                report.exit_code = Some(status.and_then(|s| s.code()).unwrap_or(1));
                return Ok(report);
            }
        }
        if let Some((min, max)) = opts.wait.filter(|_| complete) {
            let until = tokio::time::Instant::now() + max;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(report),
                    _ = shared.wake.notified() => continue,
                    _ = tokio::time::sleep(min) => break,
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_specs_parse_like_consul_template() {
        let s = TemplateSpec::parse("in.ctmpl:/etc/nginx/deny.conf:nginx -s reload && echo a:b").expect("ok");
        assert_eq!(s.source, PathBuf::from("in.ctmpl"));
        assert_eq!(s.destination, Some(PathBuf::from("/etc/nginx/deny.conf")));
        assert_eq!(s.command.as_deref(), Some("nginx -s reload && echo a:b"));
        let s = TemplateSpec::parse("in.ctmpl").expect("ok");
        assert_eq!((s.destination, s.command), (None, None));
        assert!(TemplateSpec::parse(":out").is_err());
    }

    #[test]
    fn wait_takes_min_and_max() {
        assert_eq!(parse_wait("1s:3s"), Ok((Duration::from_secs(1), Duration::from_secs(3))));
        assert_eq!(parse_wait("2s"), Ok((Duration::from_secs(2), Duration::from_secs(8))));
        assert!(parse_wait("3s:1s").unwrap_err().contains("smaller"));
        assert!(parse_wait("soon").is_err());
    }

    #[test]
    fn service_specs_name_tag_dc_and_filter() {
        let d = |s: &str| parse_service(s, None);
        assert_eq!(
            d("primary.web@dc2|any"),
            Ok(Dependency::Service {
                name: "web".into(),
                tag: Some("primary".into()),
                dc: Some("dc2".into()),
                any: true
            })
        );
        assert_eq!(d("web"), Ok(Dependency::Service { name: "web".into(), tag: None, dc: None, any: false }));
        assert!(d("web|sometimes").is_err());
        assert_eq!(
            Dependency::Service { name: "web".into(), tag: Some("v1".into()), dc: None, any: false }
                .path("n"),
            "/v1/health/service/web?tag=v1&passing"
        );
    }
}
