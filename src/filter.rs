//! Consul's `?filter=` expressions: a parser and evaluator for the subset of
//! [go-bexpr](https://github.com/hashicorp/go-bexpr) that Consul's list endpoints accept.
//!
//! A [`Filter`] is evaluated against the JSON object Consul would return for one list element
//! (PascalCase field names), e.g. `Service.Tags contains "primary" and Node.Meta.env == qa`.
//!
//! Grammar: match expressions joined by `or`, `and` and `not` (or `!`) with the usual
//! precedence (`not` > `and` > `or`) and parentheses. Match expressions are
//! `<Selector> == <Value>`, `!=`, `<Value> in <Selector>`, `<Value> not in <Selector>`,
//! `<Selector> contains <Value>`, `not contains`, `<Selector> is empty`, `is not empty`,
//! `<Selector> matches <Value>` and `not matches` (an unanchored regular expression).
//! Selectors are dotted paths of `[a-zA-Z][a-zA-Z0-9_]*` names, with `["any key"]` for map keys
//! and `.N` for an array index. Values are `"quoted"` strings (Go escapes), `` `raw` `` strings,
//! numbers, or bare selector-like words (`Status == passing`). Keywords are case-sensitive.
//!
//! Semantics follow go-bexpr as used by Consul:
//! - a path through an array of objects (`Checks.Status`) is an *any* match: the whole match
//!   expression, negated operators included, holds if it holds for some element;
//! - `==` compares strings exactly, numbers and booleans by parsed value (`Port == 80`,
//!   `EnableTagOverride == true`, Go's `strconv.ParseBool` spellings);
//! - `in`/`contains` checks the keys of a map, the elements of an array, a substring of a string;
//! - `is empty` holds for null, missing, `""`, `[]` and `{}`;
//! - a missing (or null) field: `==`, `in`, `matches`, `is not empty` are false, their
//!   negations are true;
//! - an operator that does not apply to the value (`==` on an array, `in` on a number,
//!   `is empty` on a bool, a value that is not a number for a numeric field) is a type error,
//!   which go-bexpr reports; here the match expression is false, negated form included.
//!
//! Not supported: go-bexpr's `<`/`>` comparisons, JSON-pointer (`"/a/b"`) and inline-list
//! selectors, `all`/`any` collection expressions, and schema validation of selectors.
//! An empty expression is a parse error: callers treat a missing or empty `filter` as no filter.

use regex::Regex;
use serde_json::{Number, Value};

/// Deepest nesting of parentheses and `not` accepted (the HTTP input is untrusted).
const MAX_DEPTH: usize = 64;

/// A compiled filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
}

/// Why a filter expression could not be parsed; `message` starts with `line:col (offset)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Failed to create boolean expression evaluator: {message}")]
pub struct FilterError {
    /// Human-readable description, with the position of the problem.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

/// One match expression: `path` selects the value, `op` tests it, `negate` flips a
/// successful test (`!=`, `not in`, `is not empty`, `not matches`).
#[derive(Debug, Clone)]
struct Match {
    path: Vec<String>,
    op: Op,
    negate: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Equal(String),
    In(String),
    Empty,
    Matches(Regex),
}

impl Filter {
    /// Parses a go-bexpr expression.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let mut p = Parser { src: expr, pos: 0, depth: 0 };
        p.skip_ws();
        if p.pos == expr.len() {
            return p.err(p.pos, "empty filter expression");
        }
        let root = p.parse_or()?;
        p.skip_ws();
        match p.peek() {
            None => Ok(Filter { root }),
            Some(')') => p.err(p.pos, "unmatched ')'"),
            Some(_) => {
                let found: String = p.rest().chars().take(20).collect();
                p.err(p.pos, format!("expected 'and', 'or' or end of expression, found {found:?}"))
            }
        }
    }

    /// Whether `item` (one list element as Consul would return it) matches.
    pub fn matches(&self, item: &Value) -> bool {
        self.root.eval(item)
    }
}

/// Keep the elements of `items` that match `filter` (None keeps everything).
pub fn apply(filter: Option<&Filter>, items: Vec<Value>) -> Vec<Value> {
    match filter {
        None => items,
        Some(f) => items.into_iter().filter(|item| f.matches(item)).collect(),
    }
}

impl Expr {
    fn eval(&self, item: &Value) -> bool {
        match self {
            Expr::Or(terms) => terms.iter().any(|e| e.eval(item)),
            Expr::And(terms) => terms.iter().all(|e| e.eval(item)),
            Expr::Not(e) => !e.eval(item),
            Expr::Match(m) => m.eval(item, 0),
        }
    }
}

impl Match {
    fn eval(&self, value: &Value, depth: usize) -> bool {
        let Some(seg) = self.path.get(depth) else {
            return self.terminal(value);
        };
        match value {
            Value::Object(map) => self.eval(map.get(seg).unwrap_or(&Value::Null), depth + 1),
            Value::Array(items) if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) => {
                let elem = seg.parse::<usize>().ok().and_then(|i| items.get(i));
                self.eval(elem.unwrap_or(&Value::Null), depth + 1)
            }
            Value::Array(items) => items.iter().any(|elem| self.eval(elem, depth)),
            Value::Null => self.terminal(&Value::Null),
            // A scalar has no fields: a type error.
            _ => false,
        }
    }

    fn terminal(&self, value: &Value) -> bool {
        self.op.test(value).is_some_and(|ok| ok != self.negate)
    }
}

impl Op {
    /// The un-negated test; `None` when the operator does not apply to the value.
    fn test(&self, value: &Value) -> Option<bool> {
        match (self, value) {
            (Op::Equal(text), v) => scalar_eq(v, text),
            (Op::In(_) | Op::Matches(_), Value::Null) => Some(false),
            (Op::In(text), Value::String(s)) => Some(s.contains(text.as_str())),
            (Op::In(text), Value::Array(items)) => {
                Some(items.iter().any(|v| scalar_eq(v, text) == Some(true)))
            }
            (Op::In(text), Value::Object(map)) => Some(map.contains_key(text)),
            (Op::Empty, Value::Null) => Some(true),
            (Op::Empty, Value::String(s)) => Some(s.is_empty()),
            (Op::Empty, Value::Array(items)) => Some(items.is_empty()),
            (Op::Empty, Value::Object(map)) => Some(map.is_empty()),
            (Op::Matches(re), Value::String(s)) => Some(re.is_match(s)),
            (Op::Matches(re), Value::Number(n)) => Some(re.is_match(&n.to_string())),
            (Op::Matches(re), Value::Bool(b)) => Some(re.is_match(if *b { "true" } else { "false" })),
            _ => None,
        }
    }
}

/// `value == text` with go-bexpr's coercion of the text to the value's type.
fn scalar_eq(value: &Value, text: &str) -> Option<bool> {
    match value {
        Value::Null => Some(false),
        Value::String(s) => Some(s == text),
        Value::Number(n) => number_eq(n, text),
        Value::Bool(b) => parse_go_bool(text).map(|t| t == *b),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn number_eq(n: &Number, text: &str) -> Option<bool> {
    if let (Some(a), Ok(b)) = (n.as_i64(), text.parse::<i64>()) {
        return Some(a == b);
    }
    if let (Some(a), Ok(b)) = (n.as_u64(), text.parse::<u64>()) {
        return Some(a == b);
    }
    let b = text.parse::<f64>().ok()?;
    Some(n.as_f64()? == b)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The left or right side of a match operator before it is known which one it is.
enum Operand {
    Selector(Vec<String>),
    Number(String),
    Str(String),
}

impl Operand {
    fn describe(&self) -> &'static str {
        match self {
            Operand::Selector(_) => "a selector",
            Operand::Number(_) => "a number",
            Operand::Str(_) => "a string literal",
        }
    }

    /// The raw value text; a bare selector used as a value is its dotted path.
    fn into_text(self) -> String {
        match self {
            Operand::Selector(path) => path.join("."),
            Operand::Number(s) | Operand::Str(s) => s,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum OpKind {
    Equal,
    In,
    Contains,
    Empty,
    Matches,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Scannerless recursive-descent parser; `pos` is a byte offset into `src`.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, at: usize, msg: impl Into<String>) -> Result<T, FilterError> {
        let before = &self.src[..at];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Err(FilterError { message: format!("{line}:{col} ({at}): {}", msg.into()) })
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
    }

    /// Consumes `kw` if it is next and not merely the prefix of a longer word.
    fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        let found = rest.starts_with(kw) && !rest[kw.len()..].starts_with(is_ident_char);
        if found {
            self.pos += kw.len();
        }
        found
    }

    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(at, format!("expression nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.parse_and()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.keyword("or") {
                self.pos = save;
                break;
            }
            self.skip_ws();
            terms.push(self.parse_and()?);
        }
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::Or(terms) })
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.parse_not()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.keyword("and") {
                self.pos = save;
                break;
            }
            self.skip_ws();
            terms.push(self.parse_not()?);
        }
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::And(terms) })
    }

    fn parse_not(&mut self) -> Result<Expr, FilterError> {
        let start = self.pos;
        let bang = self.rest().starts_with('!') && !self.rest().starts_with("!=");
        if bang {
            self.pos += 1;
        }
        if !(bang || self.keyword("not")) {
            return self.parse_primary();
        }
        self.enter(start)?;
        self.skip_ws();
        let inner = self.parse_not()?;
        self.depth -= 1;
        Ok(match inner {
            Expr::Not(e) => *e,
            e => Expr::Not(Box::new(e)),
        })
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        let open = self.pos;
        if self.peek() != Some('(') {
            return Ok(Expr::Match(self.parse_match()?));
        }
        self.pos += 1;
        self.enter(open)?;
        self.skip_ws();
        let inner = self.parse_or()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return self
                .err(self.pos, format!("expected 'and', 'or' or ')' to close the '(' at offset {open}"));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(inner)
    }

    fn parse_match(&mut self) -> Result<Match, FilterError> {
        let lhs_at = self.pos;
        let lhs = self.parse_operand("a selector, a value, 'not' or '('")?;
        self.skip_ws();
        let (kind, negate, name) = self.parse_operator()?;
        if kind == OpKind::In {
            self.skip_ws();
            let rhs_at = self.pos;
            let path = match self.parse_operand("a selector")? {
                Operand::Selector(path) => path,
                other => {
                    let msg =
                        format!("the right side of '{name}' must be a selector, found {}", other.describe());
                    return self.err(rhs_at, msg);
                }
            };
            return Ok(Match { path, op: Op::In(lhs.into_text()), negate });
        }
        let path = match lhs {
            Operand::Selector(path) => path,
            other => {
                let msg = format!("the left side of '{name}' must be a selector, found {}", other.describe());
                return self.err(lhs_at, msg);
            }
        };
        if kind == OpKind::Empty {
            return Ok(Match { path, op: Op::Empty, negate });
        }
        self.skip_ws();
        let value_at = self.pos;
        let value = self.parse_operand("a value (a quoted string, a number or a bare word)")?.into_text();
        let op = match kind {
            OpKind::Matches => match Regex::new(&value) {
                Ok(re) => Op::Matches(re),
                Err(e) => {
                    return self.err(value_at, format!("invalid regular expression {value:?}: {e}"));
                }
            },
            OpKind::Contains => Op::In(value),
            _ => Op::Equal(value),
        };
        Ok(Match { path, op, negate })
    }

    /// Returns the operator, whether it is negated, and its spelling for messages.
    fn parse_operator(&mut self) -> Result<(OpKind, bool, &'static str), FilterError> {
        let at = self.pos;
        if self.rest().starts_with("==") {
            self.pos += 2;
            return Ok((OpKind::Equal, false, "=="));
        }
        if self.rest().starts_with("!=") {
            self.pos += 2;
            return Ok((OpKind::Equal, true, "!="));
        }
        if self.keyword("is") {
            self.skip_ws();
            let negate = self.keyword("not");
            self.skip_ws();
            if !self.keyword("empty") {
                return self.err(self.pos, "expected 'empty' or 'not empty' after 'is'");
            }
            return Ok((OpKind::Empty, negate, if negate { "is not empty" } else { "is empty" }));
        }
        for (kw, kind) in [("in", OpKind::In), ("contains", OpKind::Contains), ("matches", OpKind::Matches)] {
            if self.keyword(kw) {
                return Ok((kind, false, kw));
            }
        }
        if self.keyword("not") {
            self.skip_ws();
            for (kw, kind, name) in [
                ("in", OpKind::In, "not in"),
                ("contains", OpKind::Contains, "not contains"),
                ("matches", OpKind::Matches, "not matches"),
            ] {
                if self.keyword(kw) {
                    return Ok((kind, true, name));
                }
            }
            return self.err(self.pos, "expected 'in', 'contains' or 'matches' after 'not'");
        }
        let found = match self.peek() {
            None => "end of input".to_string(),
            Some(_) => format!("{:?}", self.rest().chars().take(12).collect::<String>()),
        };
        self.err(
            at,
            format!(
                "expected an operator (==, !=, in, not in, contains, not contains, is empty, \
                 is not empty, matches, not matches), found {found}"
            ),
        )
    }

    fn parse_operand(&mut self, expected: &str) -> Result<Operand, FilterError> {
        match self.peek() {
            Some('"' | '`') => Ok(Operand::Str(self.parse_string()?)),
            Some(c) if c == '-' || c.is_ascii_digit() => Ok(Operand::Number(self.parse_number()?)),
            Some(c) if c.is_ascii_alphabetic() => Ok(Operand::Selector(self.parse_selector()?)),
            Some(c) => self.err(self.pos, format!("expected {expected}, found '{c}'")),
            None => self.err(self.pos, format!("expected {expected}, found end of input")),
        }
    }

    fn parse_ident(&mut self) -> String {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    fn parse_selector(&mut self) -> Result<Vec<String>, FilterError> {
        let mut path = vec![self.parse_ident()];
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) if c.is_ascii_alphanumeric() => path.push(self.parse_ident()),
                        _ => return self.err(self.pos, "expected a field name after '.'"),
                    }
                }
                Some('[') => {
                    let open = self.pos;
                    self.pos += 1;
                    self.skip_ws();
                    if !matches!(self.peek(), Some('"' | '`')) {
                        return self.err(self.pos, "expected a quoted map key inside '[ ]'");
                    }
                    path.push(self.parse_string()?);
                    self.skip_ws();
                    if self.peek() != Some(']') {
                        return self.err(self.pos, format!("expected ']' to close the '[' at offset {open}"));
                    }
                    self.pos += 1;
                }
                _ => return Ok(path),
            }
        }
    }

    fn parse_number(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits_from = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = start + usize::from(bytes[start] == b'-');
        i = match bytes.get(i) {
            Some(b'0') => i + 1,
            Some(b) if b.is_ascii_digit() => digits_from(i),
            _ => return self.err(start, "invalid number literal"),
        };
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i = digits_from(i + 1);
        }
        if bytes.get(i).is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b')')) {
            return self.err(start, "invalid number literal (quote values that are not numbers)");
        }
        self.pos = i;
        Ok(self.src[start..i].to_string())
    }

    /// A `"..."` string with Go escapes or a `` `...` `` raw string.
    fn parse_string(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let body = &self.src[start + 1..];
        if self.src[start..].starts_with('`') {
            let Some(end) = body.find('`') else {
                return self.err(start, "unterminated string literal");
            };
            self.pos = start + 1 + end + 1;
            return Ok(body[..end].replace('\r', ""));
        }
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let esc_at = start + 1 + i;
                    let invalid = |p: &Self| p.err(esc_at, "invalid escape sequence in string literal");
                    let Some((_, e)) = chars.next() else { break };
                    let simple = match e {
                        'a' => Some('\x07'),
                        'b' => Some('\x08'),
                        'f' => Some('\x0c'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'v' => Some('\x0b'),
                        '\\' | '"' => Some(e),
                        _ => None,
                    };
                    if let Some(ch) = simple {
                        out.push(ch);
                        continue;
                    }
                    let (radix, len, first) = match e {
                        'x' => (16, 2, String::new()),
                        'u' => (16, 4, String::new()),
                        'U' => (16, 8, String::new()),
                        '0'..='7' => (8, 2, e.to_string()),
                        _ => return invalid(self),
                    };
                    let digits: String =
                        first + &chars.by_ref().take(len).map(|(_, d)| d).collect::<String>();
                    let code = u32::from_str_radix(&digits, radix).ok();
                    // `\x` and octal escapes are bytes in Go; only ASCII ones are valid UTF-8.
                    let byte_escape = matches!(e, 'x' | '0'..='7');
                    let well_formed = digits.len() == len + usize::from(radix == 8)
                        && digits.chars().all(|d| d.is_digit(radix));
                    let ch = code.filter(|c| well_formed && (!byte_escape || *c < 0x80));
                    let Some(ch) = ch.and_then(char::from_u32) else {
                        return invalid(self);
                    };
                    out.push(ch);
                }
                _ => out.push(c),
            }
        }
        self.err(start, "unterminated string literal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An element of `/v1/catalog/service/web`.
    fn catalog() -> Value {
        json!({
            "ID": "40e4a748", "Node": "web-01", "Address": "10.0.0.1", "Datacenter": "dc1",
            "TaggedAddresses": {"lan": "10.0.0.1"}, "NodeMeta": null, "ServiceKind": "",
            "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1", "prod"],
            "ServiceAddress": "", "ServiceWeights": {"Passing": 1, "Warning": 1},
            "ServiceMeta": {"env": "prod", "some key": "x"}, "ServicePort": 80,
            "ServiceEnableTagOverride": false, "ServiceProxy": {"MeshGateway": {}, "Expose": {}},
            "CreateIndex": 10, "ModifyIndex": 12
        })
    }

    /// An element of `/v1/health/service/web`.
    fn health() -> Value {
        json!({
            "Node": {"Node": "web-01", "Address": "10.0.0.1", "Meta": {"os": "linux", "env": "qa"}},
            "Service": {"ID": "web-1", "Service": "web", "Tags": ["primary", "v2"], "Port": 8080,
                        "Meta": {}, "EnableTagOverride": true, "Weights": {"Passing": 3}},
            "Checks": [
                {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": []},
                {"CheckID": "service:web-1", "Status": "critical", "ServiceTags": ["primary", "v2"]}
            ]
        })
    }

    /// An element of `/v1/agent/services` (a value of the map).
    fn agent() -> Value {
        json!({"ID": "redis", "Service": "redis", "Tags": ["primary"], "Meta": {"env": "qa"},
               "Port": 6379, "NodeMeta": {"os": "linux"}, "Ratio": 0.5, "Big": 18446744073709551615u64})
    }

    /// Each non-blank line of `table` is `<expression> => <true|false>`.
    fn check(item: &Value, table: &str) {
        for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (expr, want) = line.rsplit_once(" => ").expect("`expr => bool` line");
            let filter = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let want = match want {
                "true" => true,
                "false" => false,
                other => panic!("{expr}: expected true or false, got {other:?}"),
            };
            assert_eq!(filter.matches(item), want, "{expr}");
        }
    }

    #[test]
    fn consul_doc_examples() {
        check(
            &health(),
            r#"
            Service.Tags contains "primary" => true
            Service.Tags contains "canary" => false
            "primary" in Service.Tags => true
            Node.Meta.os == linux => true
            Node.Meta.env == "qa" and Service.Port == 8080 => true
            Service.Meta is empty => true
            Node.Meta is not empty => true
            Node.Node matches "^web-[0-9]+" => true
            Node.Node not matches "^db-" => true
            "#,
        );
        check(
            &agent(),
            r#"
            Meta.env == "qa" and not (Tags contains "canary") => true
            Meta.env == "qa" and not (Tags contains "primary") => false
            NodeMeta.os == linux => true
            NodeMeta.os != linux => false
            Service == redis => true
            "#,
        );
        check(
            &catalog(),
            r#"
            "v1" in ServiceTags => true
            v1 in ServiceTags => true
            "v2" in ServiceTags => false
            "v2" not in ServiceTags => true
            ServiceTags not contains "prod" => false
            ServiceMeta is empty => false
            NodeMeta is empty => true
            NodeMeta is not empty => false
            Node matches "^web-[0-9]+" => true
            Node matches "[0-9]+$" => true
            Node matches "^[0-9]" => false
            ServiceMeta["some key"] == "x" => true
            ServiceMeta[ `some key` ] == x => true
            ServiceMeta.env == prod and ServiceName == web => true
            "#,
        );
    }

    #[test]
    fn comparisons_and_coercion() {
        check(
            &catalog(),
            r#"
            ServicePort == 80 => true
            ServicePort == "80" => true
            ServicePort == 80.0 => true
            ServicePort != 80 => false
            ServicePort == 81 => false
            ServicePort != 81 => true
            ServicePort matches "^8" => true
            ServiceEnableTagOverride == false => true
            ServiceEnableTagOverride == F => true
            ServiceEnableTagOverride == 0 => true
            ServiceEnableTagOverride == true => false
            ServiceEnableTagOverride != true => true
            ServiceWeights.Passing == 1 => true
            ServiceKind == "" => true
            ServiceKind is empty => true
            ServiceAddress is not empty => false
            ServiceProxy.MeshGateway is empty => true
            "eb-0" in Node => true
            Node contains "db" => false
            env in ServiceMeta => true
            "some key" in ServiceMeta => true
            prod in ServiceMeta => false
            lan in TaggedAddresses => true
            "#,
        );
        // Type errors (the operator does not apply to the value): false in both polarities.
        check(
            &catalog(),
            r#"
            ServicePort == eighty => false
            ServicePort != eighty => false
            ServiceEnableTagOverride == yes => false
            ServiceEnableTagOverride != yes => false
            ServiceTags == v1 => false
            ServiceTags != v1 => false
            "8" in ServicePort => false
            "8" not in ServicePort => false
            ServicePort is empty => false
            ServicePort is not empty => false
            ServicePort.Foo == 1 => false
            ServicePort.Foo != 1 => false
            "#,
        );
        check(
            &agent(),
            r#"
            Ratio == 0.5 => true
            Ratio == 0.50 => true
            Ratio == 1 => false
            Port == -6379 => false
            Big == 18446744073709551615 => true
            Big == 18446744073709551614 => false
            "#,
        );
    }

    #[test]
    fn missing_and_null_fields() {
        check(
            &catalog(),
            r#"
            Nope == x => false
            Nope != x => true
            Nope is empty => true
            Nope is not empty => false
            x in Nope => false
            x not in Nope => true
            Nope matches ".*" => false
            Nope not matches "x" => true
            NodeMeta.os == linux => false
            NodeMeta.os != linux => true
            ServiceMeta.missing == x => false
            ServiceMeta.missing != x => true
            ServiceMeta.missing.deeper is empty => true
            "#,
        );
    }

    #[test]
    fn paths_through_arrays_are_any_matches() {
        check(
            &health(),
            r#"
            Checks.Status == passing => true
            Checks.Status == critical => true
            Checks.Status == warning => false
            Checks.Status != passing => true
            "critical" in Checks.Status => true
            "warning" in Checks.Status => false
            Checks.ServiceTags is empty => true
            Checks.ServiceTags contains v2 => true
            Checks.CheckID == serfHealth and Checks.Status == critical => true
            Checks is not empty => true
            Checks.0.Status == passing => true
            Checks.1.Status == passing => false
            Checks.5.Status is empty => true
            Service.Tags.0 == primary => true
            "#,
        );
        check(
            &json!({"Checks": []}),
            r#"
            Checks.Status == passing => false
            Checks.Status != passing => false
            Checks is empty => true
            "#,
        );
    }

    #[test]
    fn precedence_and_grouping() {
        check(
            &json!({"A": true, "B": false, "C": true}),
            r#"
            A == true or B == true and C == false => true
            (A == true or B == true) and C == false => false
            B == true and C == true or A == true => true
            B == true and (C == true or A == true) => false
            not A == true and B == true => false
            not B == true and C == true => true
            not (A == true and B == true) => true
            not A == true or C == true => true
            ! A == true => false
            !(B == true) => true
            not not A == true => true
            not not not A == true => false
            ((A == true)) => true
            (((A == true) and ((C == true))) or (B == true)) => true
            not(A == true) => false
            A == true and B == false and C == true => true
            B == true or B == true or C == false => false
            A==true and(C==true) => true
            "#,
        );
        let multiline = Filter::parse("\n\tA == true\r\n  and\tC==true  ").expect("whitespace");
        assert!(multiline.matches(&json!({"A": true, "C": true})));
    }

    #[test]
    fn string_literals() {
        check(
            &json!({"S": "a\"b\\c\nd", "U": "é✓", "R": "x\\ny"}),
            r#"
            S == "a\"b\\c\nd" => true
            S == "a\x22b\x5cc\x0ad" => true
            S == "a\042b\134c\012d" => true
            U == "\u00e9\U00002713" => true
            U == "é✓" => true
            R == `x\ny` => true
            R == "x\ny" => false
            S contains "(" => false
            S matches `^a"b\\c` => true
            "#,
        );
    }

    #[test]
    fn parse_errors() {
        // Each line is `<expression> ~> <expected part of the message>`.
        let table = r#"
            foo ~> 1:4 (3): expected an operator
            Service == ~> 1:11 (10): expected a value
            Service = web ~> 1:9 (8): expected an operator
            == web ~> 1:1 (0): expected a selector
            "web" == Service ~> 1:1 (0): the left side of '==' must be a selector, found a string
            80 is empty ~> the left side of 'is empty' must be a selector, found a number
            web in "Tags" ~> 1:8 (7): the right side of 'in' must be a selector
            x not in 5 ~> the right side of 'not in' must be a selector
            Tags is full ~> 1:9 (8): expected 'empty' or 'not empty' after 'is'
            Tags not equals x ~> expected 'in', 'contains' or 'matches' after 'not'
            (Port == 80 ~> 1:12 (11): expected 'and', 'or' or ')' to close the '(' at offset 0
            Port == 80) ~> 1:11 (10): unmatched ')'
            Port == 80 Name == x ~> 1:12 (11): expected 'and', 'or' or end of expression
            Port == 80 and ~> 1:15 (14): expected a selector, a value
            Port == 80 and or ~> expected an operator
            Name == "web ~> 1:9 (8): unterminated string literal
            Name == `web ~> unterminated string literal
            Name == "a\qb" ~> 1:11 (10): invalid escape sequence
            Name == "\xff" ~> invalid escape sequence
            Name == "\x+1" ~> invalid escape sequence
            Name == "\ud800" ~> invalid escape sequence
            Port == 80x ~> 1:9 (8): invalid number literal
            Port == 007 ~> invalid number literal
            Port == - ~> invalid number literal
            Name == web-1 ~> expected 'and', 'or' or end of expression
            Meta. == x ~> 1:6 (5): expected a field name after '.'
            Meta[env] == x ~> 1:6 (5): expected a quoted map key
            Meta["env" == x ~> expected ']' to close the '[' at offset 4
            Node matches "(" ~> 1:14 (13): invalid regular expression
            Port == 80 AND Name == x ~> expected 'and', 'or' or end of expression
            Tags CONTAINS x ~> expected an operator
            Name == web andName == x ~> expected 'and', 'or' or end of expression
            not ~> expected a selector
            not in Tags ~> expected an operator
        "#;
        let lines = table.lines().map(str::trim).filter(|l| !l.is_empty());
        let cases = lines.map(|l| l.split_once(" ~> ").expect("`expr ~> message` line"));
        let extra = [
            ("", "1:1 (0): empty filter expression"),
            ("  \t", "empty filter expression"),
            ("Port == 80 and\n  Name = x", "2:8 (22): expected an operator"),
        ];
        for (expr, want) in cases.chain(extra) {
            let err = Filter::parse(expr).expect_err(expr);
            assert!(err.message.contains(want), "{expr:?}: got {:?}", err.message);
            assert!(err.to_string().starts_with("Failed to create boolean expression evaluator: "));
        }
    }

    #[test]
    fn nesting_is_bounded_but_long_chains_are_fine() {
        let deep = format!("{}A == 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(Filter::parse(&deep).unwrap_err().message.contains("nested more than"));
        assert!(Filter::parse(&format!("{}A == 1", "not ".repeat(MAX_DEPTH + 1))).is_err());
        let ok = format!("{}A == 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).expect("max depth").matches(&json!({"A": 1})));
        let chain = vec!["A == 2"; 20_000].join(" or ") + " or A == 1";
        assert!(Filter::parse(&chain).expect("long chain").matches(&json!({"A": 1})));
    }

    #[test]
    fn apply_filters_lists() {
        let items = vec![
            json!({"Node": "web-01", "ServiceTags": ["v1"]}),
            json!({"Node": "web-02", "ServiceTags": ["v2"]}),
            json!({"Node": "db-01", "ServiceTags": ["v1", "db"]}),
        ];
        assert_eq!(apply(None, items.clone()), items);
        let f = Filter::parse("v1 in ServiceTags and Node matches `^web`").expect("valid");
        assert_eq!(apply(Some(&f), items.clone()), vec![items[0].clone()]);
        let none = Filter::parse("Node == nobody").expect("valid");
        assert!(apply(Some(&none), items).is_empty());
        assert!(format!("{:?}", f.clone()).contains("ServiceTags"));
    }
}
