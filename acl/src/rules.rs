//! Policy rules: the resources, dispositions and rule sets of Consul's rule language, parsed
//! from HCL or JSON with errors that name the line and the offending word.
//!
//! ```text
//!  key_prefix "team-a/" { policy = "write" }     Rule { resource: Key, label: Prefix("team-a/"),
//!  service "web" { policy = "read"                       disposition: Write, intentions: None }
//!                  intentions = "write" }
//!  operator = "read"                              Rule { resource: Operator, label: Unlabeled, .. }
//! ```

use std::fmt;

use serde_json::Value;

/// A resource family of the rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `acl = "..."`: the ACL API (and snapshots).
    Acl,
    /// `agent "<node>"` / `agent_prefix`: agent utility endpoints.
    Agent,
    /// `event "<name>"` / `event_prefix`.
    Event,
    /// `key "<key>"` / `key_prefix`: KV.
    Key,
    /// `keyring = "..."`.
    Keyring,
    /// `mesh = "..."`.
    Mesh,
    /// `node "<name>"` / `node_prefix`.
    Node,
    /// `operator = "..."`.
    Operator,
    /// `peering = "..."`.
    Peering,
    /// `query "<name>"` / `query_prefix`: prepared queries.
    Query,
    /// `service "<name>"` / `service_prefix`.
    Service,
    /// `session "<node>"` / `session_prefix`.
    Session,
    /// The `intentions` field of service rules, authorized on the destination service name.
    Intention,
}

impl Resource {
    /// Every resource that a rule can name, for error messages.
    pub const NAMED: [Resource; 12] = [
        Resource::Acl,
        Resource::Agent,
        Resource::Event,
        Resource::Key,
        Resource::Keyring,
        Resource::Mesh,
        Resource::Node,
        Resource::Operator,
        Resource::Peering,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ];

    /// The word in rules and in permission texts (`key`, `service`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
            Resource::Intention => "intention",
        }
    }

    /// Whether rules of this resource carry a label (`key "x"`) or a bare value (`operator = "read"`).
    pub fn is_labeled(self) -> bool {
        !matches!(
            self,
            Resource::Acl | Resource::Keyring | Resource::Mesh | Resource::Operator | Resource::Peering
        )
    }

    /// Parses a resource word; `_prefix` forms give `(resource, true)`.
    pub fn from_word(word: &str) -> Option<(Resource, bool)> {
        let (base, prefix) = match word.strip_suffix("_prefix") {
            Some(b) => (b, true),
            None => (word, false),
        };
        let r = Resource::NAMED.into_iter().find(|r| r.as_str() == base)?;
        (!prefix || r.is_labeled()).then_some((r, prefix))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule grants. Ordered by precedence when policies disagree on one label:
/// `Deny` > `Write` > `List` > `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Disposition {
    /// Reads only.
    Read,
    /// Reads and recursive listing (KV only).
    List,
    /// Everything.
    Write,
    /// Nothing; wins over every grant on the same label.
    Deny,
}

impl Disposition {
    /// The word in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Read => "read",
            Disposition::List => "list",
            Disposition::Write => "write",
            Disposition::Deny => "deny",
        }
    }

    fn parse(word: &str) -> Option<Disposition> {
        match word {
            "read" => Some(Disposition::Read),
            "list" => Some(Disposition::List),
            "write" => Some(Disposition::Write),
            "deny" => Some(Disposition::Deny),
            _ => None,
        }
    }

    /// Whether this disposition permits `access`.
    pub fn allows(self, access: Access) -> bool {
        match (self, access) {
            (Disposition::Deny, _) => false,
            (Disposition::Write, _) => true,
            (Disposition::List, a) => a != Access::Write,
            (Disposition::Read, a) => a == Access::Read,
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Reading.
    Read,
    /// Recursive listing (KV with `enable_key_list_policy`).
    List,
    /// Writing.
    Write,
}

impl Access {
    /// The word in permission texts (`key:write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
        }
    }

    /// Parses `read`, `list` or `write`.
    pub fn parse(word: &str) -> Option<Access> {
        match word {
            "read" => Some(Access::Read),
            "list" => Some(Access::List),
            "write" => Some(Access::Write),
            _ => None,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a rule selects segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// `operator = "read"`: the resource as a whole.
    Unlabeled,
    /// `key "a/b"`: exactly this segment.
    Exact(String),
    /// `key_prefix "a/"`: every segment starting with it.
    Prefix(String),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The resource family.
    pub resource: Resource,
    /// Which segments it covers.
    pub label: Label,
    /// `policy = "..."` (absent for a service rule that sets only `intentions`).
    pub disposition: Option<Disposition>,
    /// `intentions = "..."` (service rules only).
    pub intentions: Option<Disposition>,
    /// The 1-based line it was written on (0 for synthesized rules and JSON).
    pub line: usize,
}

impl fmt::Display for Rule {
    /// The rule in HCL, as an operator would write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.resource.as_str();
        match &self.label {
            Label::Unlabeled => {
                return write!(f, "{r} = \"{}\"", self.disposition.map_or("", Disposition::as_str));
            }
            Label::Exact(s) => write!(f, "{r} {} {{", quote(s))?,
            Label::Prefix(s) => write!(f, "{r}_prefix {} {{", quote(s))?,
        }
        if let Some(d) = self.disposition {
            write!(f, " policy = \"{d}\"")?;
        }
        if let Some(d) = self.intentions {
            write!(f, " intentions = \"{d}\"")?;
        }
        f.write_str(" }")
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A parsed rule set: the `Rules` of one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The rules in the order written.
    pub rules: Vec<Rule>,
}

/// Why rules could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *line > 0 { format!("line {line}: ") } else { String::new() })]
pub struct RuleError {
    /// The 1-based line (0 when unknown).
    pub line: usize,
    /// What was wrong, naming the word.
    pub message: String,
}

impl RuleError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

impl Rules {
    /// Parses rules written in HCL or JSON (a text starting with `{` is JSON, as in Consul).
    pub fn parse(text: &str) -> Result<Rules, RuleError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim_start().starts_with('{') { parse_json(text) } else { parse_hcl(text) }
    }

    /// The rules of `resource`.
    pub fn of(&self, resource: Resource) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.resource == resource)
    }
}

fn resource_word(word: &str, line: usize) -> Result<(Resource, bool), RuleError> {
    if let Some(r) = Resource::from_word(word) {
        return Ok(r);
    }
    let known: Vec<&str> = Resource::NAMED.iter().map(|r| r.as_str()).collect();
    let hint = if matches!(word, "partition" | "partition_prefix" | "namespace" | "namespace_prefix") {
        " (an Enterprise resource; Sekisho has no partitions or namespaces)".to_owned()
    } else if let Some(base) = word.strip_suffix("_prefix")
        && Resource::from_word(base).is_some()
    {
        format!(" ({base} takes a value, not a label: {base} = \"read\")")
    } else {
        format!(" (expected one of: {}, or a labeled one with _prefix)", known.join(", "))
    };
    Err(RuleError::at(line, format!("unknown resource \"{word}\"{hint}")))
}

fn parse_disposition(
    resource: Resource,
    field: &str,
    word: &str,
    line: usize,
) -> Result<Disposition, RuleError> {
    let d = Disposition::parse(word).ok_or_else(|| {
        RuleError::at(
            line,
            format!(
                "invalid {field} \"{word}\" for {resource}: expected read, write or deny{}",
                if resource == Resource::Key && field == "policy" { " (or list)" } else { "" }
            ),
        )
    })?;
    if d == Disposition::List && (resource != Resource::Key || field != "policy") {
        return Err(RuleError::at(
            line,
            format!("invalid {field} \"list\" for {resource}: list applies to key rules only"),
        ));
    }
    Ok(d)
}

/// The fields of one labeled block, with the line of each.
struct BlockFields {
    policy: Option<(String, usize)>,
    intentions: Option<(String, usize)>,
}

fn labeled_rule(
    resource: Resource,
    prefix: bool,
    label: String,
    fields: BlockFields,
    line: usize,
) -> Result<Rule, RuleError> {
    let disposition = match &fields.policy {
        Some((w, l)) => Some(parse_disposition(resource, "policy", w, *l)?),
        None => None,
    };
    let intentions = match &fields.intentions {
        Some((w, l)) if resource == Resource::Service => {
            Some(parse_disposition(resource, "intentions", w, *l)?)
        }
        Some((_, l)) => {
            return Err(RuleError::at(
                *l,
                format!(
                    "unknown field \"intentions\" in a {resource} rule (only service rules have intentions)"
                ),
            ));
        }
        None => None,
    };
    if disposition.is_none() && intentions.is_none() {
        return Err(RuleError::at(line, format!("the {resource} rule for \"{label}\" sets no policy")));
    }
    let label = if prefix { Label::Prefix(label) } else { Label::Exact(label) };
    Ok(Rule { resource, label, disposition, intentions, line })
}

// ---- HCL --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Eq,
    Open,
    Close,
    Comma,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, RuleError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = '\0';
                loop {
                    match chars.next() {
                        None => return Err(RuleError::at(start, "unterminated /* comment")),
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                    }
                }
            }
            '=' => out.push((Tok::Eq, line)),
            '{' => out.push((Tok::Open, line)),
            '}' => out.push((Tok::Close, line)),
            ',' => out.push((Tok::Comma, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => return Err(RuleError::at(start, "unterminated string")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some('u') => {
                                let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                                let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                                s.push(c.ok_or_else(|| {
                                    RuleError::at(line, format!("invalid escape \\u{hex} in a string"))
                                })?);
                            }
                            Some(c @ ('"' | '\\' | '/')) => s.push(c),
                            Some(c) => {
                                return Err(RuleError::at(line, format!("invalid escape \\{c} in a string")));
                            }
                            None => return Err(RuleError::at(start, "unterminated string")),
                        },
                        Some(c) => s.push(c),
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut w = c.to_string();
                while chars.peek().is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-') {
                    w.extend(chars.next());
                }
                out.push((Tok::Word(w), line));
            }
            c => return Err(RuleError::at(line, format!("unexpected character '{c}'"))),
        }
    }
    Ok(out)
}

struct Hcl {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

impl Hcl {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks.get(self.at).or(self.toks.last()).map_or(1, |(_, l)| *l)
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect_string(&mut self, what: &str) -> Result<(String, usize), RuleError> {
        match self.next() {
            Some((Tok::Str(s), l)) => Ok((s, l)),
            Some((t, l)) => {
                Err(RuleError::at(l, format!("expected a quoted string for {what}, found {}", show(&t))))
            }
            None => {
                Err(RuleError::at(self.line(), format!("expected a quoted string for {what}, found the end")))
            }
        }
    }

    fn skip_commas(&mut self) {
        while self.peek() == Some(&Tok::Comma) {
            self.at += 1;
        }
    }

    fn block(&mut self, resource: Resource, open_line: usize) -> Result<BlockFields, RuleError> {
        let mut fields = BlockFields { policy: None, intentions: None };
        loop {
            self.skip_commas();
            match self.next() {
                Some((Tok::Close, _)) => return Ok(fields),
                Some((Tok::Word(w), l)) => {
                    if self.next().map(|(t, _)| t) != Some(Tok::Eq) {
                        return Err(RuleError::at(l, format!("expected = after \"{w}\"")));
                    }
                    let (value, vl) = self.expect_string(&format!("\"{w}\""))?;
                    match w.as_str() {
                        "policy" => fields.policy = Some((value, vl)),
                        "intentions" => fields.intentions = Some((value, vl)),
                        other => {
                            return Err(RuleError::at(
                                l,
                                format!(
                                    "unknown field \"{other}\" in a {resource} rule (expected policy{})",
                                    if resource == Resource::Service { " or intentions" } else { "" }
                                ),
                            ));
                        }
                    }
                }
                Some((t, l)) => {
                    return Err(RuleError::at(l, format!("expected a field name or }}, found {}", show(&t))));
                }
                None => return Err(RuleError::at(open_line, "unclosed { (missing })")),
            }
        }
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("\"{w}\""),
        Tok::Str(s) => format!("the string \"{s}\""),
        Tok::Eq => "=".into(),
        Tok::Open => "{".into(),
        Tok::Close => "}".into(),
        Tok::Comma => ",".into(),
    }
}

fn parse_hcl(text: &str) -> Result<Rules, RuleError> {
    let mut p = Hcl { toks: lex(text)?, at: 0 };
    let mut rules = Vec::new();
    loop {
        p.skip_commas();
        let Some((tok, line)) = p.next() else { break };
        let Tok::Word(word) = tok else {
            return Err(RuleError::at(line, format!("expected a resource name, found {}", show(&tok))));
        };
        let (resource, prefix) = resource_word(&word, line)?;
        if !resource.is_labeled() {
            // `operator = "read"`
            if p.next().map(|(t, _)| t) != Some(Tok::Eq) {
                return Err(RuleError::at(line, format!("{word} takes a value: {word} = \"read\"")));
            }
            let (value, vl) = p.expect_string(&word)?;
            let d = parse_disposition(resource, "policy", &value, vl)?;
            rules.push(Rule {
                resource,
                label: Label::Unlabeled,
                disposition: Some(d),
                intentions: None,
                line,
            });
            continue;
        }
        let (label, _) = p.expect_string(&format!("the label of {word}"))?;
        // `key "a" = { ... }` is accepted like HCL v1 does.
        if p.peek() == Some(&Tok::Eq) {
            p.at += 1;
        }
        match p.next() {
            Some((Tok::Open, ol)) => {
                let fields = p.block(resource, ol)?;
                rules.push(labeled_rule(resource, prefix, label, fields, line)?);
            }
            Some((t, l)) => {
                return Err(RuleError::at(
                    l,
                    format!("expected {{ after {word} \"{label}\", found {}", show(&t)),
                ));
            }
            None => return Err(RuleError::at(line, format!("expected {{ after {word} \"{label}\""))),
        }
    }
    Ok(Rules { rules })
}

// ---- JSON -------------------------------------------------------------------------------

fn parse_json(text: &str) -> Result<Rules, RuleError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| RuleError::at(e.line(), format!("invalid JSON: {e}")))?;
    let Value::Object(top) = v else { return Err(RuleError::at(1, "rules must be a JSON object")) };
    let line_of = |word: &str| {
        let needle = format!("\"{word}\"");
        text.find(&needle).map_or(0, |i| text[..i].matches('\n').count() + 1)
    };
    let mut rules = Vec::new();
    for (word, value) in top {
        let line = line_of(&word);
        let (resource, prefix) = resource_word(&word, line)?;
        if !resource.is_labeled() {
            let Value::String(s) = value else {
                return Err(RuleError::at(
                    line,
                    format!("{word} takes a string value (\"read\", \"write\" or \"deny\")"),
                ));
            };
            let d = parse_disposition(resource, "policy", &s, line)?;
            rules.push(Rule {
                resource,
                label: Label::Unlabeled,
                disposition: Some(d),
                intentions: None,
                line,
            });
            continue;
        }
        // `"key": {"a": {...}}` or `"key": [{"a": {...}}, ...]`.
        let maps = match value {
            Value::Object(m) => vec![m],
            Value::Array(a) => a
                .into_iter()
                .map(|x| match x {
                    Value::Object(m) => Ok(m),
                    _ => Err(RuleError::at(line, format!("{word} must map labels to rule objects"))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(RuleError::at(line, format!("{word} must map labels to rule objects"))),
        };
        for m in maps {
            for (label, body) in m {
                let Value::Object(body) = body else {
                    return Err(RuleError::at(
                        line,
                        format!("{word} \"{label}\" must be an object with a policy"),
                    ));
                };
                let mut fields = BlockFields { policy: None, intentions: None };
                for (k, v) in body {
                    let Value::String(s) = v else {
                        return Err(RuleError::at(line, format!("{word} \"{label}\": {k} must be a string")));
                    };
                    match k.as_str() {
                        "policy" => fields.policy = Some((s, line)),
                        "intentions" => fields.intentions = Some((s, line)),
                        other => {
                            return Err(RuleError::at(
                                line,
                                format!(
                                    "unknown field \"{other}\" in a {resource} rule (expected policy{})",
                                    if resource == Resource::Service { " or intentions" } else { "" }
                                ),
                            ));
                        }
                    }
                }
                rules.push(labeled_rule(resource, prefix, label, fields, line)?);
            }
        }
    }
    Ok(Rules { rules })
}

// ---- identities -------------------------------------------------------------------------

/// The rules a service identity stands for.
pub fn service_identity_rules(service: &str) -> Rules {
    let rule = |resource, label, d| Rule { resource, label, disposition: Some(d), intentions: None, line: 0 };
    Rules {
        rules: vec![
            rule(Resource::Service, Label::Exact(service.to_owned()), Disposition::Write),
            rule(Resource::Service, Label::Exact(format!("{service}-sidecar-proxy")), Disposition::Write),
            rule(Resource::Service, Label::Prefix(String::new()), Disposition::Read),
            rule(Resource::Node, Label::Prefix(String::new()), Disposition::Read),
        ],
    }
}

/// The rules a node identity stands for.
pub fn node_identity_rules(node: &str) -> Rules {
    let rule = |resource, label, d| Rule { resource, label, disposition: Some(d), intentions: None, line: 0 };
    Rules {
        rules: vec![
            rule(Resource::Node, Label::Exact(node.to_owned()), Disposition::Write),
            rule(Resource::Service, Label::Prefix(String::new()), Disposition::Read),
        ],
    }
}
