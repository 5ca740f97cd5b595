//! Service and check definitions as operators write them: in config files (`service`,
//! `services`, `check`, `checks`, snake_case or camelCase keys) and in
//! `PUT /v1/agent/service/register` / `check/register` bodies (PascalCase). Keys match the way
//! Go's `encoding/json` and Consul match them (case- and underscore-insensitively).

use std::sync::Arc;

use serde_json::Value;

use crate::checks::CheckSpec;
use crate::http::decode::Obj;
use crate::state::types::Service;

/// A parsed check, with the definition it came from (compared on reload so unchanged checks
/// keep running).
#[derive(Debug, Clone)]
pub struct CheckDef {
    pub spec: Arc<CheckSpec>,
    pub raw: Value,
}

/// A parsed service definition with its embedded checks (IDs and names defaulted).
#[derive(Debug, Clone)]
pub struct ServiceDef {
    pub service: Service,
    pub checks: Vec<CheckDef>,
    pub raw: Value,
}

/// A check spec; the ID may be written `CheckID` as well as `ID`.
fn parse_spec(v: &Value) -> Result<CheckSpec, String> {
    let mut spec = CheckSpec::parse(v)?;
    if spec.id.is_empty()
        && let Ok(o) = Obj::new(v, "CheckDefinition")
    {
        spec.id = o.str("CheckID").map_err(|e| e.message)?;
    }
    Ok(spec)
}

/// Parses one check definition; `id`/`name` default the way Consul does (ID = name).
pub fn parse_check(v: &Value) -> Result<CheckDef, String> {
    let mut spec = parse_spec(v)?;
    if spec.name.is_empty() {
        return Err("Missing check name".into());
    }
    if spec.id.is_empty() {
        spec.id = spec.name.clone();
    }
    Ok(CheckDef { spec: Arc::new(spec), raw: v.clone() })
}

/// Parses one service definition (`{"name": "web", "port": 80, "check": {...}}`).
pub fn parse_service(v: &Value) -> Result<ServiceDef, String> {
    let o = Obj::new(v, "ServiceDefinition").map_err(|e| e.message)?;
    let mut service = crate::http::catalog::decode_service(&o).map_err(|e| e.message)?;
    if service.service.is_empty() {
        return Err("Missing service name".into());
    }
    if service.id.is_empty() {
        service.id = service.service.clone();
    }
    if service.id.contains('\n') || service.service.contains('\n') {
        return Err("Invalid service: names and IDs cannot contain a line feed".into());
    }
    if o.obj("Weights").map_err(|e| e.message)?.is_some() && service.weights.passing == 0 {
        return Err("Passing must be greater than 0".into());
    }
    let mut raw_checks: Vec<&Value> = Vec::new();
    if let Some(c) = o.get("Check") {
        raw_checks.push(c);
    }
    raw_checks.extend(o.list("Checks").map_err(|e| e.message)?);
    let many = raw_checks.len() > 1;
    let mut checks = Vec::with_capacity(raw_checks.len());
    for (i, raw) in raw_checks.into_iter().enumerate() {
        let mut spec = parse_spec(raw).map_err(|e| format!("Invalid check: {e}"))?;
        if spec.id.is_empty() {
            spec.id = if many {
                format!("service:{}:{}", service.id, i + 1)
            } else {
                format!("service:{}", service.id)
            };
        }
        if spec.name.is_empty() {
            spec.name = format!("Service '{}' check", service.service);
        }
        spec.service_id = service.id.clone();
        checks.push(CheckDef { spec: Arc::new(spec), raw: raw.clone() });
    }
    Ok(ServiceDef { service, checks, raw: v.clone() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn config_file_spellings_and_defaults() {
        let d = parse_service(&json!({
            "name": "web", "tags": ["v1"], "port": 80, "enableTagOverride": true,
            "check": {"ttl": "10s"}
        }))
        .expect("parses");
        assert_eq!((d.service.id.as_str(), d.service.port), ("web", 80));
        assert!(d.service.enable_tag_override);
        assert_eq!(d.checks.len(), 1);
        assert_eq!(d.checks[0].spec.id, "service:web");
        assert_eq!(d.checks[0].spec.name, "Service 'web' check");
        assert_eq!(d.checks[0].spec.service_id, "web");

        let d = parse_service(&json!({
            "ID": "web-2", "Name": "web", "enable_tag_override": true,
            "Checks": [{"TTL": "10s"}, {"ttl": "5s", "id": "mine"}]
        }))
        .expect("parses");
        assert!(d.service.enable_tag_override);
        let ids: Vec<&str> = d.checks.iter().map(|c| c.spec.id.as_str()).collect();
        assert_eq!(ids, ["service:web-2:1", "mine"]);
    }

    #[test]
    fn bad_definitions_are_refused_with_a_reason() {
        assert_eq!(parse_service(&json!({"port": 80})).unwrap_err(), "Missing service name");
        let e = parse_service(&json!({"name": "web", "port": "eighty"})).unwrap_err();
        assert!(e.contains("Port"), "{e}");
        let e = parse_service(&json!({"name": "web", "weights": {"passing": 0}})).unwrap_err();
        assert!(e.contains("Passing"), "{e}");
        assert!(parse_check(&json!({"ttl": "10s"})).unwrap_err().contains("name"));
        let c = parse_check(&json!({"name": "mem", "ttl": "10s"})).expect("parses");
        assert_eq!(c.spec.id, "mem");
    }
}
