//! Agent-local state: the services and checks this agent owns, their check runners, and
//! maintenance mode. The agent is the source of truth for them; anti-entropy ([`sync`])
//! copies the differences into the catalog.
//!
//! ```text
//!  config files ──┐                         ┌─► CheckRunner per check ─► update() ─┐
//!  PUT /v1/agent/…├─► LocalState (services, checks, maintenance) ◄─────────────────┘
//!  maint, reload ─┘        │ changes (watch)            │ persist (API entries, maintenance)
//!                          ▼                            ▼
//!                 sync: diff with the catalog ─► Raft   <data_dir>/local/state.json
//! ```

pub mod definition;
mod persist;
pub mod sync;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use crate::checks::{AliasedCheck, CheckNotify, CheckRunner, CheckSpec, Status};
use crate::http::decode::go_duration as go_duration_str;
use crate::server::Server;
use crate::state::types::{CRITICAL, HealthCheck, PASSING, Service, WARNING};
use definition::{CheckDef, ServiceDef, parse_check, parse_service};

/// The node maintenance check.
pub const NODE_MAINT_ID: &str = "_node_maintenance";
/// Prefix of service maintenance checks (`_service_maintenance:<service id>`).
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";
const NODE_MAINT_DEFAULT: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
const SERVICE_MAINT_DEFAULT: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

/// Where an entry came from: config files are replaced on reload, API entries are persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Api,
}

/// What the local state needs to know about its agent.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub node_name: String,
    pub datacenter: String,
    pub node_id: String,
    pub address: String,
    /// Script checks from the HTTP API (and config files).
    pub enable_script_checks: bool,
    /// Script checks from config files only.
    pub enable_local_script_checks: bool,
    /// Check output is cut to this many bytes.
    pub max_output: usize,
    /// Where API registrations and maintenance are persisted (`None`: dev mode, not persisted).
    pub data_dir: Option<PathBuf>,
}

/// Errors of local operations; the HTTP layer maps them to status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// Unknown service or check (404).
    #[error("{0}")]
    NotFound(String),
    /// The change is in effect but could not be written to disk (500).
    #[error("{0}")]
    Persist(String),
}

struct LocalService {
    service: Service,
    source: Source,
    raw: Value,
}

struct LocalCheck {
    check: HealthCheck,
    spec: Option<Arc<CheckSpec>>,
    runner: Option<Arc<CheckRunner>>,
    source: Source,
    /// The check's own definition (`Null` for maintenance checks).
    raw: Value,
    /// Part of a service definition (persisted with it, not on its own).
    embedded: bool,
    critical_since: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    services: BTreeMap<String, LocalService>,
    checks: BTreeMap<String, LocalCheck>,
}

/// A service and its checks as `/v1/agent/*` shows them.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub service: Service,
    pub checks: Vec<HealthCheck>,
}

/// The agent's own services and checks.
pub struct LocalState {
    cfg: LocalConfig,
    server: Server,
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
    me: Weak<LocalState>,
}

impl std::fmt::Debug for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalState").field("node", &self.cfg.node_name).finish_non_exhaustive()
    }
}

/// The runners' view of the local state (a weak reference: runners never keep it alive).
struct Notifier(Weak<LocalState>);

impl CheckNotify for Notifier {
    fn update(&self, check_id: &str, status: Status, output: &str) {
        if let Some(l) = self.0.upgrade() {
            l.set_status(check_id, status.as_str(), output);
        }
    }

    fn alias_checks(&self, node: Option<&str>, service_id: &str) -> Option<Vec<AliasedCheck>> {
        let l = self.0.upgrade()?;
        let checks = match node {
            Some(n) if n != l.cfg.node_name => l.catalog_checks(n, service_id)?,
            _ => l.service(service_id)?.checks,
        };
        let aliased = checks
            .into_iter()
            .map(|c| AliasedCheck {
                status: Status::parse(&c.status).unwrap_or(Status::Critical),
                check_id: c.check_id,
                name: c.name,
                output: c.output,
            })
            .collect();
        Some(aliased)
    }

    fn alias_changes(&self) -> watch::Receiver<u64> {
        match self.0.upgrade() {
            Some(l) => l.changes.subscribe(),
            None => watch::channel(0).1,
        }
    }
}

/// Refuses script checks the agent is not allowed to run.
fn vet_script(cfg: &LocalConfig, spec: &CheckSpec, source: Source) -> Result<(), LocalError> {
    if !spec.is_script() {
        return Ok(());
    }
    match source {
        Source::Api if !cfg.enable_script_checks => Err(LocalError::Invalid(
            "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true"
                .into(),
        )),
        Source::Config if !cfg.enable_script_checks && !cfg.enable_local_script_checks => {
            Err(LocalError::Invalid(format!(
                "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true (check {:?})",
                spec.id
            )))
        }
        _ => Ok(()),
    }
}

/// Parses and vets the config files' services and checks (an agent refuses to start, and a
/// reload changes nothing, when this fails).
pub fn parse_config(
    cfg: &LocalConfig,
    services: &[Value],
    checks: &[Value],
) -> Result<(Vec<ServiceDef>, Vec<CheckDef>), String> {
    let mut sdefs: Vec<ServiceDef> = Vec::with_capacity(services.len());
    for v in services {
        let d = parse_service(v).map_err(|e| format!("invalid service definition {v}: {e}"))?;
        for c in &d.checks {
            vet_script(cfg, &c.spec, Source::Config).map_err(|e| e.to_string())?;
        }
        if sdefs.iter().any(|s| s.service.id == d.service.id) {
            return Err(format!("service ID {:?} is defined twice in the config files", d.service.id));
        }
        sdefs.push(d);
    }
    let mut cdefs = Vec::with_capacity(checks.len());
    for v in checks {
        let d = parse_check(v).map_err(|e| format!("invalid check definition {v}: {e}"))?;
        vet_script(cfg, &d.spec, Source::Config).map_err(|e| e.to_string())?;
        let sid = &d.spec.service_id;
        if !sid.is_empty() && !sdefs.iter().any(|s| &s.service.id == sid) {
            return Err(format!(
                "check {:?}: ServiceID {sid:?} is not defined in the config files",
                d.spec.id
            ));
        }
        cdefs.push(d);
    }
    Ok((sdefs, cdefs))
}

/// Worst of several statuses (critical > warning > passing); `None` for no checks.
fn worst<'a>(statuses: impl Iterator<Item = &'a str>) -> Status {
    let mut w = Status::Passing;
    for s in statuses {
        match s {
            CRITICAL => return Status::Critical,
            WARNING => w = Status::Warning,
            _ => {}
        }
    }
    w
}

impl LocalState {
    /// Creates the local state and loads what was persisted in the data dir.
    pub fn new(cfg: LocalConfig, server: Server) -> Result<Arc<LocalState>, String> {
        let (changes, _) = watch::channel(0);
        let l = Arc::new_cyclic(|me| LocalState {
            cfg,
            server,
            inner: Mutex::new(Inner::default()),
            changes,
            me: me.clone(),
        });
        if let Some(dir) = &l.cfg.data_dir {
            let saved = persist::load(dir)?;
            for v in &saved.services {
                let def = parse_service(v).map_err(|e| format!("persisted service is invalid: {e}"))?;
                l.insert_service(def, Source::Api);
            }
            for v in &saved.checks {
                let def = parse_check(v).map_err(|e| format!("persisted check is invalid: {e}"))?;
                l.insert_check(def, Source::Api);
            }
            if let Some(reason) = &saved.node_maintenance {
                l.insert_maintenance(None, reason);
            }
            for (id, reason) in &saved.service_maintenance {
                if l.inner.lock().services.contains_key(id) {
                    l.insert_maintenance(Some(id), reason);
                }
            }
        }
        Ok(l)
    }

    /// This agent's node name.
    pub fn node_name(&self) -> &str {
        &self.cfg.node_name
    }

    /// The agent configuration the local state runs with.
    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    /// A receiver that changes on every local change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn notifier(&self) -> Arc<dyn CheckNotify> {
        Arc::new(Notifier(self.me.clone()))
    }

    fn new_check(&self, spec: &CheckSpec, service: Option<&Service>) -> HealthCheck {
        let show = |d: std::time::Duration| if d.is_zero() { String::new() } else { go_duration_str(d) };
        let (interval, timeout) = (show(spec.interval), show(spec.timeout));
        HealthCheck {
            node: self.cfg.node_name.clone(),
            check_id: spec.id.clone(),
            name: spec.name.clone(),
            status: spec.initial_status.unwrap_or(Status::Critical).as_str().to_owned(),
            notes: spec.notes.clone(),
            service_id: spec.service_id.clone(),
            service_name: service.map(|s| s.service.clone()).unwrap_or_default(),
            service_tags: service.map(|s| s.tags.clone()).unwrap_or_default(),
            check_type: spec.type_name().to_owned(),
            interval,
            timeout,
            definition: spec.definition.clone(),
            ..Default::default()
        }
    }

    fn vet_script(&self, spec: &CheckSpec, source: Source) -> Result<(), LocalError> {
        vet_script(&self.cfg, spec, source)
    }

    /// Inserts a service and its checks; a check whose definition did not change keeps running.
    fn insert_service(&self, def: ServiceDef, source: Source) {
        let mut inner = self.inner.lock();
        let id = def.service.id.clone();
        let mut service = def.service.clone();
        if let Some(old) = inner.services.get(&id)
            && old.service.enable_tag_override
            && service.enable_tag_override
        {
            // Tags may have been changed in the catalog; keep them until the definition changes them.
            if old.raw == def.raw {
                service.tags = old.service.tags.clone();
            }
        }
        inner.services.insert(id.clone(), LocalService { service: service.clone(), source, raw: def.raw });
        for c in def.checks {
            self.insert_check_locked(&mut inner, c, source, Some(&service), true);
        }
        // Refresh the service fields other checks of this service carry.
        for c in inner.checks.values_mut().filter(|c| c.check.service_id == id) {
            c.check.service_name = service.service.clone();
            c.check.service_tags = service.tags.clone();
        }
        drop(inner);
        self.bump();
    }

    fn insert_check(&self, def: CheckDef, source: Source) {
        let mut inner = self.inner.lock();
        let svc = inner.services.get(&def.spec.service_id).map(|s| s.service.clone());
        self.insert_check_locked(&mut inner, def, source, svc.as_ref(), false);
        drop(inner);
        self.bump();
    }

    fn insert_check_locked(
        &self,
        inner: &mut Inner,
        def: CheckDef,
        source: Source,
        service: Option<&Service>,
        embedded: bool,
    ) {
        let CheckDef { spec, raw } = def;
        if let Some(old) = inner.checks.get_mut(&spec.id)
            && old.raw == raw
            && old.embedded == embedded
            && old.spec.as_ref().is_some_and(|s| s.service_id == spec.service_id)
            && old.runner.is_some()
        {
            old.source = source;
            return;
        }
        let check = self.new_check(&spec, service);
        let critical_since = (check.status == CRITICAL).then(Instant::now);
        let runner = Arc::new(CheckRunner::spawn(spec.clone(), self.cfg.max_output, self.notifier()));
        let id = spec.id.clone();
        let c = LocalCheck {
            check,
            spec: Some(spec),
            runner: Some(runner),
            source,
            raw,
            embedded,
            critical_since,
        };
        inner.checks.insert(id, c);
    }

    fn insert_maintenance(&self, service_id: Option<&str>, reason: &str) {
        let mut inner = self.inner.lock();
        let (id, name, notes, svc) = match service_id {
            None => (
                NODE_MAINT_ID.to_owned(),
                "Node Maintenance Mode",
                if reason.is_empty() { NODE_MAINT_DEFAULT } else { reason },
                None,
            ),
            Some(sid) => (
                format!("{SERVICE_MAINT_PREFIX}{sid}"),
                "Service Maintenance Mode",
                if reason.is_empty() { SERVICE_MAINT_DEFAULT } else { reason },
                inner.services.get(sid).map(|s| s.service.clone()),
            ),
        };
        let check = HealthCheck {
            node: self.cfg.node_name.clone(),
            check_id: id.clone(),
            name: name.to_owned(),
            status: CRITICAL.to_owned(),
            notes: notes.to_owned(),
            service_id: service_id.unwrap_or_default().to_owned(),
            service_name: svc.as_ref().map(|s| s.service.clone()).unwrap_or_default(),
            service_tags: svc.as_ref().map(|s| s.tags.clone()).unwrap_or_default(),
            check_type: "maintenance".to_owned(),
            ..Default::default()
        };
        inner.checks.insert(
            id,
            LocalCheck {
                check,
                spec: None,
                runner: None,
                source: Source::Api,
                raw: Value::Null,
                embedded: false,
                critical_since: None,
            },
        );
        drop(inner);
        self.bump();
    }

    fn remove_service_locked(inner: &mut Inner, id: &str) -> bool {
        let existed = inner.services.remove(id).is_some();
        inner.checks.retain(|_, c| c.check.service_id != id);
        existed
    }

    /// `PUT /v1/agent/service/register`.
    pub fn register_service(&self, v: &Value, replace_existing_checks: bool) -> Result<(), LocalError> {
        let def = parse_service(v).map_err(LocalError::Invalid)?;
        for c in &def.checks {
            self.vet_script(&c.spec, Source::Api)?;
        }
        if replace_existing_checks {
            let keep: Vec<&str> = def.checks.iter().map(|c| c.spec.id.as_str()).collect();
            let id = def.service.id.as_str();
            self.inner.lock().checks.retain(|cid, c| {
                c.check.service_id != id || keep.contains(&cid.as_str()) || c.spec.is_none()
            });
        }
        self.insert_service(def, Source::Api);
        self.save()
    }

    /// `PUT /v1/agent/service/deregister/:id`.
    pub fn deregister_service(&self, id: &str) -> Result<(), LocalError> {
        let removed = Self::remove_service_locked(&mut self.inner.lock(), id);
        if !removed {
            return Err(LocalError::NotFound(format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            )));
        }
        self.bump();
        self.save()
    }

    /// `PUT /v1/agent/check/register`.
    pub fn register_check(&self, v: &Value) -> Result<(), LocalError> {
        let def = parse_check(v).map_err(LocalError::Invalid)?;
        self.vet_script(&def.spec, Source::Api)?;
        let sid = &def.spec.service_id;
        if !sid.is_empty() && !self.inner.lock().services.contains_key(sid) {
            return Err(LocalError::Invalid(format!("ServiceID {sid:?} does not exist")));
        }
        self.insert_check(def, Source::Api);
        self.save()
    }

    /// `PUT /v1/agent/check/deregister/:id`.
    pub fn deregister_check(&self, id: &str) -> Result<(), LocalError> {
        let removed = self.inner.lock().checks.remove(id).is_some();
        if !removed {
            return Err(LocalError::NotFound(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            )));
        }
        self.bump();
        self.save()
    }

    /// `PUT /v1/agent/check/pass|warn|fail|update/:id`: TTL checks only.
    pub fn update_ttl(&self, id: &str, status: Status, output: &str) -> Result<(), LocalError> {
        // The runner reports back through `set_status`, which takes the lock: release it first.
        let runner = {
            let inner = self.inner.lock();
            let Some(c) = inner.checks.get(id) else {
                return Err(LocalError::NotFound(format!("Unknown check ID {id:?}")));
            };
            c.runner.clone()
        };
        match runner {
            Some(r) => r.ttl_update(status, output).map(drop).map_err(LocalError::Invalid),
            None => Err(LocalError::Invalid(format!("CheckID {id:?} does not have associated TTL"))),
        }
    }

    /// A runner's result.
    fn set_status(&self, id: &str, status: &str, output: &str) {
        let mut inner = self.inner.lock();
        let Some(c) = inner.checks.get_mut(id) else { return };
        if c.check.status == status && c.check.output == output {
            return;
        }
        if status == CRITICAL {
            c.critical_since.get_or_insert_with(Instant::now);
        } else {
            c.critical_since = None;
        }
        c.check.status = status.to_owned();
        c.check.output = output.to_owned();
        drop(inner);
        self.bump();
    }

    /// `PUT /v1/agent/maintenance` (`service` = `None`) and `/v1/agent/service/maintenance/:id`.
    pub fn set_maintenance(
        &self,
        service: Option<&str>,
        enable: bool,
        reason: &str,
    ) -> Result<(), LocalError> {
        if let Some(sid) = service
            && !self.inner.lock().services.contains_key(sid)
        {
            return Err(LocalError::NotFound(format!("No service registered with ID {sid:?}")));
        }
        if enable {
            self.insert_maintenance(service, reason);
        } else {
            let id = match service {
                None => NODE_MAINT_ID.to_owned(),
                Some(sid) => format!("{SERVICE_MAINT_PREFIX}{sid}"),
            };
            if self.inner.lock().checks.remove(&id).is_some() {
                self.bump();
            }
        }
        self.save()
    }

    /// Services as `/v1/agent/services` shows them.
    pub fn services(&self) -> Vec<Service> {
        self.inner.lock().services.values().map(|s| s.service.clone()).collect()
    }

    /// One service with its checks and the node's checks.
    pub fn service(&self, id: &str) -> Option<ServiceView> {
        let inner = self.inner.lock();
        let s = inner.services.get(id)?;
        let checks = inner
            .checks
            .values()
            .filter(|c| c.check.service_id == id || c.check.service_id.is_empty())
            .map(|c| c.check.clone())
            .collect();
        Some(ServiceView { service: s.service.clone(), checks })
    }

    /// Adopts tags changed in the catalog for a service with `enable_tag_override`.
    pub fn adopt_tags(&self, id: &str, tags: Vec<String>) {
        let mut inner = self.inner.lock();
        let Some(s) = inner.services.get_mut(id) else { return };
        if !s.service.enable_tag_override || s.service.tags == tags {
            return;
        }
        s.service.tags = tags.clone();
        for c in inner.checks.values_mut().filter(|c| c.check.service_id == id) {
            c.check.service_tags = tags.clone();
        }
        drop(inner);
        self.bump();
    }

    /// Every local check.
    pub fn checks(&self) -> Vec<HealthCheck> {
        self.inner.lock().checks.values().map(|c| c.check.clone()).collect()
    }

    /// A service's checks and its node's checks on another node, from the catalog.
    fn catalog_checks(&self, node: &str, service_id: &str) -> Option<Vec<HealthCheck>> {
        self.server.state().read(|s| {
            s.services.get(node)?.get(service_id)?;
            let checks = s.checks.get(node).map(|m| {
                m.values()
                    .filter(|c| c.service_id.is_empty() || c.service_id == service_id)
                    .cloned()
                    .collect()
            });
            Some(checks.unwrap_or_default())
        })
    }

    /// Applies the config files' services and checks: validates all of them first (an error
    /// changes nothing), then adds, replaces and removes config entries; unchanged checks keep
    /// running.
    pub fn load_config(&self, services: &[Value], checks: &[Value]) -> Result<(), String> {
        let (sdefs, cdefs) = parse_config(&self.cfg, services, checks)?;
        {
            let mut inner = self.inner.lock();
            let keep_s: Vec<&str> = sdefs.iter().map(|d| d.service.id.as_str()).collect();
            let gone: Vec<String> = inner
                .services
                .iter()
                .filter(|(id, s)| s.source == Source::Config && !keep_s.contains(&id.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                Self::remove_service_locked(&mut inner, &id);
            }
            let mut keep_c: Vec<&str> = cdefs.iter().map(|d| d.spec.id.as_str()).collect();
            keep_c.extend(sdefs.iter().flat_map(|d| d.checks.iter().map(|c| c.spec.id.as_str())));
            inner.checks.retain(|id, c| c.source != Source::Config || keep_c.contains(&id.as_str()));
        }
        for d in sdefs {
            self.insert_service(d, Source::Config);
        }
        for d in cdefs {
            self.insert_check(d, Source::Config);
        }
        self.bump();
        Ok(())
    }

    /// Deregisters services whose check has been critical longer than its
    /// `deregister_critical_service_after`. Returns the removed service IDs.
    pub fn reap(&self, now: Instant) -> Vec<String> {
        let mut inner = self.inner.lock();
        let doomed: Vec<String> = inner
            .checks
            .values()
            .filter_map(|c| {
                let after = c.spec.as_ref()?.deregister_critical_service_after?;
                let since = c.critical_since?;
                (!c.check.service_id.is_empty() && now.duration_since(since) >= after)
                    .then(|| c.check.service_id.clone())
            })
            .collect();
        for id in &doomed {
            tracing::info!(service = %id, "deregistering a service whose check stayed critical");
            Self::remove_service_locked(&mut inner, id);
        }
        drop(inner);
        if !doomed.is_empty() {
            self.bump();
            if let Err(e) = self.save() {
                tracing::warn!(error = %e, "could not persist the local state after reaping");
            }
        }
        doomed
    }

    /// Node and service maintenance reasons (`sekisho maint`).
    pub fn maintenance(&self) -> (Option<String>, Vec<(String, String)>) {
        let inner = self.inner.lock();
        let node = inner.checks.get(NODE_MAINT_ID).map(|c| c.check.notes.clone());
        let services = inner
            .checks
            .values()
            .filter_map(|c| {
                c.check
                    .check_id
                    .strip_prefix(SERVICE_MAINT_PREFIX)
                    .map(|id| (id.to_owned(), c.check.notes.clone()))
            })
            .collect();
        (node, services)
    }

    /// Stops every check runner.
    pub fn stop(&self) {
        for c in self.inner.lock().checks.values() {
            if let Some(r) = &c.runner {
                r.stop();
            }
        }
    }

    /// Writes API registrations and maintenance to the data dir.
    fn save(&self) -> Result<(), LocalError> {
        let Some(dir) = &self.cfg.data_dir else { return Ok(()) };
        let saved = {
            let inner = self.inner.lock();
            persist::Saved {
                services: inner
                    .services
                    .values()
                    .filter(|s| s.source == Source::Api)
                    .map(|s| s.raw.clone())
                    .collect(),
                checks: inner
                    .checks
                    .values()
                    .filter(|c| c.source == Source::Api && c.spec.is_some() && !c.embedded)
                    .map(|c| c.raw.clone())
                    .collect(),
                node_maintenance: inner.checks.get(NODE_MAINT_ID).map(|c| c.check.notes.clone()),
                service_maintenance: inner
                    .checks
                    .values()
                    .filter_map(|c| {
                        let id = c.check.check_id.strip_prefix(SERVICE_MAINT_PREFIX)?;
                        Some((id.to_owned(), c.check.notes.clone()))
                    })
                    .collect(),
            }
        };
        persist::save(dir, &saved).map_err(|e| {
            LocalError::Persist(format!(
                "the change is in effect but could not be saved in {}: {e}",
                dir.display()
            ))
        })
    }

    /// Aggregated health of a service for `/v1/agent/health/service/*`: `maintenance` when a
    /// maintenance check is critical, else the worst status.
    pub fn aggregated(checks: &[HealthCheck]) -> &'static str {
        let maint = checks.iter().any(|c| {
            c.status == CRITICAL
                && (c.check_id == NODE_MAINT_ID || c.check_id.starts_with(SERVICE_MAINT_PREFIX))
        });
        if maint {
            return "maintenance";
        }
        match worst(checks.iter().map(|c| c.status.as_str())) {
            Status::Critical => CRITICAL,
            Status::Warning => WARNING,
            Status::Passing => PASSING,
        }
    }
}

impl Drop for LocalState {
    fn drop(&mut self) {
        for c in self.inner.get_mut().checks.values() {
            if let Some(r) = &c.runner {
                r.stop();
            }
        }
    }
}
