//! The authorizer: a token's policies compiled into one table per resource, answering each
//! request with the decision and the rule (and policy) that made it.
//!
//! ```text
//!  policies ──merge──► per resource: exact labels, prefix labels, unlabeled value
//!               (same label in two policies: deny > write > list > read)
//!  request (resource, segment, access)
//!     exact label == segment ─► else longest prefix of segment ─► else default policy
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::rules::{Access, Disposition, Label, Resource, Rules};

/// The fallthrough for requests no rule matches (`acl.default_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Everything not denied is allowed.
    Allow,
    /// Everything not granted is denied.
    Deny,
}

impl DefaultPolicy {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        }
    }
}

/// Where a rule came from: a policy, or an identity synthesized into one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    /// The policy ID (empty for identities).
    pub id: String,
    /// The policy name, or `service identity "web"` / `node identity "n1"`.
    pub name: String,
}

impl PolicyRef {
    /// A stored policy.
    pub fn policy(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into() }
    }

    /// The synthesized policy of a service identity.
    pub fn service_identity(service: &str) -> Self {
        Self { id: String::new(), name: format!("service identity \"{service}\"") }
    }

    /// The synthesized policy of a node identity.
    pub fn node_identity(node: &str) -> Self {
        Self { id: String::new(), name: format!("node identity \"{node}\"") }
    }
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "policy \"{}\" ({})", self.name, self.id)
        }
    }
}

/// A merged grant for one label and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What it allows.
    pub disposition: Disposition,
    /// The rule, written as HCL.
    pub rule: String,
    /// Its policy.
    pub policy: PolicyRef,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The token has the `global-management` policy.
    Management,
    /// A rule matched.
    Rule(Grant),
    /// No rule matched; the default policy decided.
    Default(DefaultPolicy),
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The resource asked about.
    pub resource: Resource,
    /// The segment (key, service name, ...); empty for unlabeled resources.
    pub segment: String,
    /// The access asked for.
    pub access: Access,
    /// What decided.
    pub reason: Reason,
}

impl Decision {
    /// `key:write`.
    pub fn permission(&self) -> String {
        format!("{}:{}", self.resource, self.access)
    }

    /// Consul's (1.12+) denial text: `Permission denied: token with AccessorID '…' lacks
    /// permission 'key:write' on "a/b"`.
    pub fn denied_message(&self, accessor_id: &str) -> String {
        let mut m = format!(
            "Permission denied: token with AccessorID '{accessor_id}' lacks permission '{}'",
            self.permission()
        );
        if self.resource.is_labeled() {
            m.push_str(&format!(" on {}", serde_json::to_string(&self.segment).unwrap_or_default()));
        }
        m
    }

    /// One line for operators: what decided, as `sekisho acl explain` prints it.
    pub fn explain(&self) -> String {
        let verdict = if self.allowed { "allowed" } else { "denied" };
        let what = self.permission();
        let on = if self.resource.is_labeled() { format!(" on \"{}\"", self.segment) } else { String::new() };
        match &self.reason {
            Reason::Management => format!("{what}{on}: {verdict} by the global-management policy"),
            Reason::Rule(g) => format!("{what}{on}: {verdict} by rule `{}` of {}", g.rule, g.policy),
            Reason::Default(d) => {
                format!("{what}{on}: {verdict}: no rule matches, default policy {}", d.as_str())
            }
        }
    }

    /// For a denial, a rule that would allow the request (and what else stands in the way).
    pub fn suggestion(&self) -> Option<String> {
        if self.allowed {
            return None;
        }
        let grant = match self.access {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
        };
        let rule = if !self.resource.is_labeled() {
            format!("{} = \"{grant}\"", self.resource)
        } else if self.resource == Resource::Intention {
            format!(
                "service {} {{ intentions = \"{grant}\" }}",
                serde_json::to_string(&self.segment).unwrap_or_default()
            )
        } else {
            format!(
                "{} {} {{ policy = \"{grant}\" }}",
                self.resource,
                serde_json::to_string(&self.segment).unwrap_or_default()
            )
        };
        Some(match &self.reason {
            Reason::Rule(g) if g.disposition == Disposition::Deny => {
                format!(
                    "`{}` of {} denies it, and a deny wins over grants on the same label: remove it, or add the more specific `{rule}`",
                    g.rule, g.policy
                )
            }
            _ => format!("a policy of the token with `{rule}`"),
        })
    }
}

#[derive(Debug, Default, Clone)]
struct Table {
    unlabeled: Option<Grant>,
    exact: BTreeMap<String, Grant>,
    prefix: BTreeMap<String, Grant>,
}

impl Table {
    /// Adds `g` under `label`; a label already granted keeps the stronger disposition.
    fn insert(&mut self, label: &Label, g: Grant) {
        fn keep_stronger(old: &mut Grant, g: Grant) {
            if g.disposition > old.disposition {
                *old = g;
            }
        }
        fn into_map(map: &mut BTreeMap<String, Grant>, label: &str, g: Grant) {
            match map.get_mut(label) {
                Some(old) => keep_stronger(old, g),
                None => {
                    map.insert(label.to_owned(), g);
                }
            }
        }
        match label {
            Label::Unlabeled => match &mut self.unlabeled {
                Some(old) => keep_stronger(old, g),
                None => self.unlabeled = Some(g),
            },
            Label::Exact(s) => into_map(&mut self.exact, s, g),
            Label::Prefix(s) => into_map(&mut self.prefix, s, g),
        }
    }

    /// The grant governing `segment`: exact, else the longest matching prefix.
    fn lookup(&self, segment: &str) -> Option<&Grant> {
        if let Some(g) = &self.unlabeled {
            return Some(g);
        }
        if let Some(g) = self.exact.get(segment) {
            return Some(g);
        }
        self.longest_prefix(segment)
    }

    fn longest_prefix(&self, segment: &str) -> Option<&Grant> {
        // Prefixes of `segment` are at most its length: walk down from the longest.
        let mut end = segment.len();
        loop {
            if segment.is_char_boundary(end)
                && let Some(g) = self.prefix.get(&segment[..end])
            {
                return Some(g);
            }
            if end == 0 {
                return None;
            }
            end -= 1;
        }
    }
}

/// A token's compiled policies.
#[derive(Debug, Clone)]
pub struct Authorizer {
    tables: HashMap<Resource, Table>,
    default: DefaultPolicy,
    management: bool,
}

impl Authorizer {
    /// An authorizer with no rules: everything falls through to `default`.
    pub fn new(default: DefaultPolicy) -> Self {
        Self { tables: HashMap::new(), default, management: false }
    }

    /// The authorizer of a management token: everything is allowed.
    pub fn management() -> Self {
        Self { tables: HashMap::new(), default: DefaultPolicy::Allow, management: true }
    }

    /// Adds the rules of one policy (or identity). Service rules without `intentions` imply
    /// `intentions = "read"` for read and write, `"deny"` for deny (Consul's rule).
    pub fn add(&mut self, policy: &PolicyRef, rules: &Rules) -> &mut Self {
        for rule in &rules.rules {
            let text = rule.to_string();
            let grant = |d| Grant { disposition: d, rule: text.clone(), policy: policy.clone() };
            if let Some(d) = rule.disposition {
                self.tables.entry(rule.resource).or_default().insert(&rule.label, grant(d));
            }
            if rule.resource == Resource::Service {
                let implied = match rule.disposition {
                    _ if rule.intentions.is_some() => rule.intentions,
                    Some(Disposition::Deny) => Some(Disposition::Deny),
                    Some(_) => Some(Disposition::Read),
                    None => None,
                };
                if let Some(d) = implied {
                    self.tables.entry(Resource::Intention).or_default().insert(&rule.label, grant(d));
                }
            }
        }
        self
    }

    /// Marks the token as holding `global-management`.
    pub fn set_management(&mut self) -> &mut Self {
        self.management = true;
        self
    }

    /// Whether the token holds `global-management`.
    pub fn is_management(&self) -> bool {
        self.management
    }

    /// The default policy.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default
    }

    /// Decides `access` to `segment` of `resource` (the segment is ignored for unlabeled
    /// resources).
    pub fn authorize(&self, resource: Resource, segment: &str, access: Access) -> Decision {
        let segment = if resource.is_labeled() { segment.to_owned() } else { String::new() };
        let reason = if self.management {
            Reason::Management
        } else {
            match self.tables.get(&resource).and_then(|t| t.lookup(&segment)) {
                Some(g) => Reason::Rule(g.clone()),
                None => Reason::Default(self.default),
            }
        };
        let allowed = match &reason {
            Reason::Management => true,
            Reason::Rule(g) => g.disposition.allows(access),
            Reason::Default(d) => *d == DefaultPolicy::Allow,
        };
        Decision { allowed, resource, segment, access, reason }
    }

    /// Whether every key under `prefix` may be written (a recursive delete): denied when a
    /// more specific rule inside the prefix grants less than write, else as `key:write` on
    /// the prefix.
    pub fn key_write_prefix(&self, prefix: &str) -> Decision {
        if !self.management
            && let Some(t) = self.tables.get(&Resource::Key)
        {
            let inner = t
                .exact
                .iter()
                .chain(t.prefix.iter())
                .filter(|(label, g)| label.starts_with(prefix) && g.disposition != Disposition::Write)
                .min_by(|a, b| a.0.cmp(b.0));
            if let Some((_, g)) = inner {
                return Decision {
                    allowed: false,
                    resource: Resource::Key,
                    segment: prefix.to_owned(),
                    access: Access::Write,
                    reason: Reason::Rule(g.clone()),
                };
            }
        }
        let mut d = self.authorize(Resource::Key, prefix, Access::Write);
        // Only a prefix rule (or the default) covers everything below; an exact rule on the
        // prefix string covers that one key alone.
        if let Reason::Rule(g) = &d.reason
            && self.tables.get(&Resource::Key).is_some_and(|t| t.exact.get(prefix) == Some(g))
        {
            d = match self.tables.get(&Resource::Key).and_then(|t| t.longest_prefix(prefix)) {
                Some(g) => Decision {
                    allowed: g.disposition.allows(Access::Write),
                    reason: Reason::Rule(g.clone()),
                    ..d
                },
                None => Decision {
                    allowed: self.default == DefaultPolicy::Allow,
                    reason: Reason::Default(self.default),
                    ..d
                },
            };
        }
        d
    }

    /// Every rule of this authorizer for `resource`, most specific first, for displays.
    pub fn rules_for(&self, resource: Resource) -> Vec<&Grant> {
        let Some(t) = self.tables.get(&resource) else { return Vec::new() };
        let mut out: Vec<&Grant> = t.unlabeled.iter().chain(t.exact.values()).collect();
        out.extend(t.prefix.iter().rev().map(|(_, g)| g));
        out
    }
}

/// Compiles a token: its policies' rules, its identities, and the default policy.
pub fn compile<'a>(
    default: DefaultPolicy,
    policies: impl IntoIterator<Item = (&'a PolicyRef, &'a Rules)>,
) -> Authorizer {
    let mut a = Authorizer::new(default);
    for (p, r) in policies {
        a.add(p, r);
    }
    a
}
