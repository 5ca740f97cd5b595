//! Consul's pretty layouts for ACL objects (`command/acl/*/formatter.go`), from the API's
//! JSON. Each function returns the text without a trailing newline.

use serde_json::Value;

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn list<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    list(v, field).iter().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// `Policies:` / `Roles:` lines: `   <id> - <name>`.
fn id_name_lines(lines: &mut Vec<String>, v: &Value, field: &str, title: &str, indent: &str) {
    let items = list(v, field);
    if items.is_empty() {
        return;
    }
    lines.push(format!("{indent}{title}:"));
    for l in items {
        lines.push(format!("{indent}   {} - {}", s(l, "ID"), s(l, "Name")));
    }
}

fn identity_lines(lines: &mut Vec<String>, v: &Value, indent: &str) {
    let services = list(v, "ServiceIdentities");
    if !services.is_empty() {
        lines.push(format!("{indent}Service Identities:"));
        for i in services {
            let dcs = strings(i, "Datacenters");
            let dcs = if dcs.is_empty() { "all".to_owned() } else { dcs.join(", ") };
            lines.push(format!("{indent}   {} (Datacenters: {dcs})", s(i, "ServiceName")));
        }
    }
    let nodes = list(v, "NodeIdentities");
    if !nodes.is_empty() {
        lines.push(format!("{indent}Node Identities:"));
        for i in nodes {
            lines.push(format!("{indent}   {} (Datacenter: {})", s(i, "NodeName"), s(i, "Datacenter")));
        }
    }
}

/// A token, as `acl token read` and `acl bootstrap` print it.
pub(super) fn token(v: &Value) -> String {
    let local = v.get("Local").and_then(Value::as_bool).unwrap_or(false);
    let mut lines = vec![
        format!("AccessorID:       {}", s(v, "AccessorID")),
        format!("SecretID:         {}", s(v, "SecretID")),
        format!("Description:      {}", s(v, "Description")),
        format!("Local:            {local}"),
    ];
    if !s(v, "AuthMethod").is_empty() {
        lines.push(format!("Auth Method:      {}", s(v, "AuthMethod")));
    }
    lines.push(format!("Create Time:      {}", s(v, "CreateTime")));
    if !s(v, "ExpirationTime").is_empty() {
        lines.push(format!("Expiration Time:  {}", s(v, "ExpirationTime")));
    }
    id_name_lines(&mut lines, v, "Policies", "Policies", "");
    id_name_lines(&mut lines, v, "Roles", "Roles", "");
    identity_lines(&mut lines, v, "");
    lines.join("\n")
}

/// A policy, rules last.
pub(super) fn policy(v: &Value) -> String {
    [
        format!("ID:           {}", s(v, "ID")),
        format!("Name:         {}", s(v, "Name")),
        format!("Description:  {}", s(v, "Description")),
        format!("Datacenters:  {}", strings(v, "Datacenters").join(", ")),
        "Rules:".to_owned(),
        s(v, "Rules").to_owned(),
    ]
    .join("\n")
}

/// One entry of `acl policy list`.
pub(super) fn policy_entry(v: &Value) -> String {
    [
        format!("{}:", s(v, "Name")),
        format!("   ID:           {}", s(v, "ID")),
        format!("   Description:  {}", s(v, "Description")),
        format!("   Datacenters:  {}", strings(v, "Datacenters").join(", ")),
    ]
    .join("\n")
}

/// A role.
pub(super) fn role(v: &Value) -> String {
    let mut lines = vec![
        format!("ID:           {}", s(v, "ID")),
        format!("Name:         {}", s(v, "Name")),
        format!("Description:  {}", s(v, "Description")),
    ];
    id_name_lines(&mut lines, v, "Policies", "Policies", "");
    identity_lines(&mut lines, v, "");
    lines.join("\n")
}

/// One entry of `acl role list`.
pub(super) fn role_entry(v: &Value) -> String {
    let mut lines = vec![
        format!("{}:", s(v, "Name")),
        format!("   ID:           {}", s(v, "ID")),
        format!("   Description:  {}", s(v, "Description")),
    ];
    id_name_lines(&mut lines, v, "Policies", "Policies", "   ");
    identity_lines(&mut lines, v, "   ");
    lines.join("\n")
}

/// An auth method, its config as indented JSON last.
pub(super) fn auth_method(v: &Value) -> String {
    let mut lines =
        vec![format!("Name:          {}", s(v, "Name")), format!("Type:          {}", s(v, "Type"))];
    if !s(v, "DisplayName").is_empty() {
        lines.push(format!("Display Name:  {}", s(v, "DisplayName")));
    }
    lines.push(format!("Description:   {}", s(v, "Description")));
    match v.get("MaxTokenTTL") {
        Some(Value::String(t)) if !t.is_empty() && t != "0s" => lines.push(format!("MaxTokenTTL:   {t}")),
        Some(Value::Number(n)) if n.as_u64() != Some(0) => lines.push(format!("MaxTokenTTL:   {n}")),
        _ => {}
    }
    if !s(v, "TokenLocality").is_empty() {
        lines.push(format!("TokenLocality: {}", s(v, "TokenLocality")));
    }
    lines.push("Config:".to_owned());
    lines.push(super::to_json(v.get("Config").unwrap_or(&Value::Null)));
    lines.join("\n")
}

/// One entry of `acl auth-method list`.
pub(super) fn auth_method_entry(v: &Value) -> String {
    let mut lines = vec![format!("{}:", s(v, "Name")), format!("   Type:         {}", s(v, "Type"))];
    if !s(v, "DisplayName").is_empty() {
        lines.push(format!("   Display Name: {}", s(v, "DisplayName")));
    }
    lines.push(format!("   Description:  {}", s(v, "Description")));
    lines.join("\n")
}

/// A binding rule.
pub(super) fn binding_rule(v: &Value) -> String {
    [
        format!("ID:           {}", s(v, "ID")),
        format!("AuthMethod:   {}", s(v, "AuthMethod")),
        format!("Description:  {}", s(v, "Description")),
        format!("BindType:     {}", s(v, "BindType")),
        format!("BindName:     {}", s(v, "BindName")),
        format!("Selector:     {}", s(v, "Selector")),
    ]
    .join("\n")
}

/// One entry of `acl binding-rule list`.
pub(super) fn binding_rule_entry(v: &Value) -> String {
    [
        format!("{}:", s(v, "ID")),
        format!("   AuthMethod:   {}", s(v, "AuthMethod")),
        format!("   Description:  {}", s(v, "Description")),
        format!("   BindType:     {}", s(v, "BindType")),
        format!("   BindName:     {}", s(v, "BindName")),
        format!("   Selector:     {}", s(v, "Selector")),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bootstrap_token_reads_like_consul() {
        let v = json!({
            "AccessorID": "a-1", "SecretID": "s-1", "Description": "Bootstrap Token (Global Management)",
            "Local": false, "CreateTime": "2024-01-02T03:04:05Z",
            "Policies": [{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}],
        });
        assert_eq!(
            token(&v),
            "AccessorID:       a-1\nSecretID:         s-1\n\
             Description:      Bootstrap Token (Global Management)\nLocal:            false\n\
             Create Time:      2024-01-02T03:04:05Z\nPolicies:\n   \
             00000000-0000-0000-0000-000000000001 - global-management"
        );
    }

    #[test]
    fn identities_and_rules_are_listed() {
        let v = json!({"ServiceIdentities": [{"ServiceName": "web"}, {"ServiceName": "db", "Datacenters": ["dc1", "dc2"]}],
                       "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}]});
        let t = token(&v);
        assert!(t.ends_with(
            "Service Identities:\n   web (Datacenters: all)\n   db (Datacenters: dc1, dc2)\n\
             Node Identities:\n   n1 (Datacenter: dc1)"
        ));
        let p = policy(&json!({"ID": "p", "Name": "kv", "Rules": "key_prefix \"\" { policy = \"read\" }"}));
        assert!(p.ends_with("Datacenters:  \nRules:\nkey_prefix \"\" { policy = \"read\" }"), "{p}");
    }
}
