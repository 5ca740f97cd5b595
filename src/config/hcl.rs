//! A small parser for HCL **version 1**, the dialect Consul reads its `.hcl` files with.
//!
//! The result is a [`serde_json::Value`] object shaped like Consul's own decoding:
//!
//! - `key = value` and `key { ... }` set `key`; `key "a" "b" { ... }` nests as
//!   `{"key": {"a": {"b": {...}}}}`;
//! - a key given several object values (repeated blocks) becomes an array of them, a
//!   single block stays an object; a repeated scalar or list assignment keeps the last;
//! - items are separated by newlines, commas or nothing at all, as in HCL v1.
//!
//! Interpolation (`${...}`) is not evaluated: Consul does not evaluate it either.

use serde_json::{Map, Number, Value};

/// A syntax error, with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct HclError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

/// The deepest nesting of objects and lists accepted, counting the top-level object, as
/// `serde_json` accepts (so a file loads alike in either format): deeper input is an error
/// rather than a stack overflow of the recursive parser.
pub const MAX_DEPTH: usize = 127;

/// Parses an HCL v1 document into a JSON object.
pub fn parse(src: &str) -> Result<Value, HclError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let tokens = Lexer::new(src).run()?;
    let mut parser = Parser { tokens, at: 0, depth: 1 };
    let value = parser.body(false).map(Value::Object)?;
    // Repeated blocks become arrays after parsing, one level deeper than they were parsed.
    if depth(&value) > MAX_DEPTH {
        return Err(Pos { line: 1, column: 1 }.error(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    Ok(value)
}

/// Nesting depth of objects and lists (a scalar is 0), without recursion.
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(d + 1);
        stack.extend(children.map(|c| (c, d + 1)));
    }
    deepest
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    fn error(self, message: impl Into<String>) -> HclError {
        HclError { line: self.line, column: self.column, message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Number),
    Bool(bool),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Assign,
    Comma,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Str(_) => "string".to_owned(),
            Tok::Num(n) => format!("number {n}"),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::LBrace => "`{`".to_owned(),
            Tok::RBrace => "`}`".to_owned(),
            Tok::LBrack => "`[`".to_owned(),
            Tok::RBrack => "`]`".to_owned(),
            Tok::Assign => "`=`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::Eof => "end of file".to_owned(),
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    pos: Pos,
}

impl Lexer {
    fn new(src: &str) -> Lexer {
        Lexer { chars: src.chars().collect(), at: 0, pos: Pos { line: 1, column: 1 } }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.at + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn run(mut self) -> Result<Vec<(Tok, Pos)>, HclError> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia()?;
            let pos = self.pos;
            let tok = self.token()?;
            let end = tok == Tok::Eof;
            out.push((tok, pos));
            if end {
                return Ok(out);
            }
        }
    }

    fn skip_trivia(&mut self) -> Result<(), HclError> {
        while let Some(c) = self.peek() {
            match (c, self.peek2()) {
                (c, _) if c.is_whitespace() => {
                    self.bump();
                }
                ('#', _) | ('/', Some('/')) => self.skip_line(),
                ('/', Some('*')) => self.skip_block_comment()?,
                _ => break,
            }
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), HclError> {
        let start = self.pos;
        self.bump();
        self.bump();
        loop {
            match self.bump() {
                Some('*') if self.peek() == Some('/') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {}
                None => return Err(start.error("comment not terminated")),
            }
        }
    }

    fn token(&mut self) -> Result<Tok, HclError> {
        let pos = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Tok::Eof);
        };
        let punct = match c {
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '[' => Some(Tok::LBrack),
            ']' => Some(Tok::RBrack),
            '=' => Some(Tok::Assign),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = punct {
            self.bump();
            return Ok(tok);
        }
        match c {
            '"' => self.string().map(Tok::Str),
            '<' if self.peek2() == Some('<') => self.heredoc().map(Tok::Str),
            '-' | '0'..='9' => self.number(),
            c if c.is_alphabetic() || c == '_' => Ok(self.ident()),
            c => Err(pos.error(format!("unexpected character {c:?}"))),
        }
    }

    fn ident(&mut self) -> Tok {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| is_ident_char(c)) {
            s.push(c);
            self.bump();
        }
        match s.as_str() {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            _ => Tok::Ident(s),
        }
    }

    fn take_while(&mut self, s: &mut String, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            s.push(c);
            self.bump();
        }
    }

    fn number(&mut self) -> Result<Tok, HclError> {
        let pos = self.pos;
        let mut s = String::new();
        if self.peek() == Some('-') {
            s.push('-');
            self.bump();
        }
        let hex = self.peek() == Some('0') && matches!(self.peek2(), Some('x' | 'X'));
        if hex {
            self.bump();
            self.bump();
            self.take_while(&mut s, |c| c.is_ascii_hexdigit());
        } else {
            self.decimal(&mut s);
        }
        if self.peek().is_some_and(is_ident_char) || s.is_empty() || s == "-" {
            return Err(pos.error("invalid number (quote durations and other text: \"10s\")"));
        }
        number_token(&s, hex).ok_or_else(|| pos.error(format!("number {s} is out of range")))
    }

    fn decimal(&mut self, s: &mut String) {
        self.take_while(s, |c| c.is_ascii_digit());
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            s.push('.');
            self.bump();
            self.take_while(s, |c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek2(), Some('+' | '-'));
            let digit_at = self.at + 1 + usize::from(sign);
            if self.chars.get(digit_at).is_some_and(char::is_ascii_digit) {
                self.take_while(s, |c| matches!(c, 'e' | 'E'));
                if sign {
                    s.extend(self.bump());
                }
                self.take_while(s, |c| c.is_ascii_digit());
            }
        }
    }

    fn string(&mut self) -> Result<String, HclError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some('\n') | None => return Err(start.error("string not terminated")),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, HclError> {
        let pos = self.pos;
        let c = self.bump().ok_or_else(|| pos.error("string not terminated"))?;
        let simple = match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            '/' => '/',
            'a' => '\u{07}',
            'b' => '\u{08}',
            'f' => '\u{0c}',
            'v' => '\u{0b}',
            'u' => return self.unicode_escape(4, pos),
            'U' => return self.unicode_escape(8, pos),
            c => return Err(pos.error(format!("unknown escape sequence \\{c}"))),
        };
        Ok(simple)
    }

    fn unicode_escape(&mut self, digits: usize, pos: Pos) -> Result<char, HclError> {
        let mut hex = String::new();
        for _ in 0..digits {
            match self.peek().filter(char::is_ascii_hexdigit) {
                Some(c) => {
                    hex.push(c);
                    self.bump();
                }
                None => return Err(pos.error(format!("escape needs {digits} hex digits"))),
            }
        }
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| pos.error(format!("invalid unicode escape \\u{hex}")))
    }

    fn heredoc(&mut self) -> Result<String, HclError> {
        let start = self.pos;
        self.bump();
        self.bump();
        let indented = self.peek() == Some('-');
        if indented {
            self.bump();
        }
        let mut marker = String::new();
        self.take_while(&mut marker, is_ident_char);
        if self.peek() == Some('\r') {
            self.bump();
        }
        if marker.is_empty() || self.bump() != Some('\n') {
            return Err(start.error("heredoc needs a marker followed by a newline: <<EOF"));
        }
        let mut lines = Vec::new();
        loop {
            let Some(line) = self.line() else {
                return Err(start.error(format!("heredoc not terminated: missing {marker}")));
            };
            let candidate = if indented { line.trim_start() } else { line.as_str() };
            if candidate == marker {
                return Ok(join_heredoc(&lines, indented.then_some(&line)));
            }
            lines.push(line);
        }
    }

    /// Reads one line without its line ending; `None` at end of input.
    fn line(&mut self) -> Option<String> {
        self.peek()?;
        let mut s = String::new();
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
            s.push(c);
        }
        if s.ends_with('\r') {
            s.pop();
        }
        Some(s)
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn number_token(s: &str, hex: bool) -> Option<Tok> {
    if hex {
        let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
        let n = i64::from_str_radix(digits, 16).ok()?;
        return Some(Tok::Num(Number::from(if neg { -n } else { n })));
    }
    if s.contains(['.', 'e', 'E']) {
        return s.parse::<f64>().ok().and_then(Number::from_f64).map(Tok::Num);
    }
    s.parse::<i64>().ok().map(|n| Tok::Num(Number::from(n)))
}

/// Joins heredoc lines, each ending with a newline; `<<-` strips the closing marker's
/// indentation from every line when all of them carry it (as HCL v1 does).
fn join_heredoc(lines: &[String], closing: Option<&String>) -> String {
    let prefix: String =
        closing.map(|l| l.chars().take_while(|c| c.is_whitespace()).collect()).unwrap_or_default();
    let strip = !prefix.is_empty() && lines.iter().all(|l| l.starts_with(&prefix));
    let mut out = String::new();
    for line in lines {
        out.push_str(if strip { &line[prefix.len()..] } else { line });
        out.push('\n');
    }
    out
}

struct Parser {
    tokens: Vec<(Tok, Pos)>,
    at: usize,
    /// Nesting depth of the object or list being parsed (the top-level object is 1).
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &(Tok, Pos) {
        let last = self.tokens.len() - 1;
        &self.tokens[self.at.min(last)]
    }

    fn next(&mut self) -> (Tok, Pos) {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    /// Parses `f` `levels` deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        levels: usize,
        pos: Pos,
        f: impl FnOnce(&mut Self) -> Result<T, HclError>,
    ) -> Result<T, HclError> {
        if self.depth + levels > MAX_DEPTH {
            return Err(pos.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += levels;
        let r = f(self);
        self.depth -= levels;
        r
    }

    /// Parses items until `}` (when `nested`) or end of file.
    fn body(&mut self, nested: bool) -> Result<Map<String, Value>, HclError> {
        let mut map = Map::new();
        loop {
            let (tok, pos) = self.peek().clone();
            match tok {
                Tok::Eof if nested => return Err(pos.error("expected `}`, found end of file")),
                Tok::Eof => return Ok(map),
                Tok::RBrace if nested => {
                    self.next();
                    return Ok(map);
                }
                Tok::Comma => {
                    self.next();
                }
                Tok::Ident(_) | Tok::Str(_) => self.item(&mut map)?,
                other => {
                    return Err(pos.error(format!("expected a key, found {}", other.describe())));
                }
            }
        }
    }

    fn item(&mut self, map: &mut Map<String, Value>) -> Result<(), HclError> {
        let mut keys = Vec::new();
        while let (Tok::Ident(k) | Tok::Str(k), _) = self.peek().clone() {
            keys.push(k);
            self.next();
        }
        let (tok, pos) = self.next();
        let value = match tok {
            Tok::Assign if keys.len() == 1 => self.value()?,
            Tok::Assign => return Err(pos.error("expected `{` after block labels, found `=`")),
            Tok::LBrace => Value::Object(self.nested(keys.len(), pos, |p| p.body(true))?),
            other => {
                let msg = format!("expected `=` or `{{` after key {:?}, found {}", keys[0], other.describe());
                return Err(pos.error(msg));
            }
        };
        insert(map, &keys, value);
        Ok(())
    }

    fn value(&mut self) -> Result<Value, HclError> {
        let (tok, pos) = self.next();
        match tok {
            Tok::Str(s) => Ok(Value::String(s)),
            Tok::Num(n) => Ok(Value::Number(n)),
            Tok::Bool(b) => Ok(Value::Bool(b)),
            Tok::LBrace => self.nested(1, pos, |p| p.body(true)).map(Value::Object),
            Tok::LBrack => self.nested(1, pos, Self::list),
            Tok::Ident(s) => Err(pos.error(format!("unquoted value `{s}`: write \"{s}\""))),
            other => Err(pos.error(format!("expected a value, found {}", other.describe()))),
        }
    }

    fn list(&mut self) -> Result<Value, HclError> {
        let mut items = Vec::new();
        loop {
            if self.peek().0 == Tok::RBrack {
                self.next();
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            let (tok, pos) = self.next();
            match tok {
                Tok::Comma => {}
                Tok::RBrack => return Ok(Value::Array(items)),
                other => {
                    return Err(pos.error(format!("expected `,` or `]`, found {}", other.describe())));
                }
            }
        }
    }
}

/// Stores `value` under the key path `keys` (a key followed by block labels).
fn insert(map: &mut Map<String, Value>, keys: &[String], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    if rest.is_empty() {
        add(map, first, value);
        return;
    }
    match map.get_mut(first) {
        Some(Value::Object(inner)) => insert(inner, rest, value),
        _ => {
            let mut nested = Map::new();
            insert(&mut nested, rest, value);
            add(map, first, Value::Object(nested));
        }
    }
}

/// Objects given twice accumulate into an array; anything else keeps the last value.
fn add(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        Some(Value::Array(items)) if value.is_object() => items.push(value),
        Some(existing @ Value::Object(_)) if value.is_object() => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        _ => {
            map.insert(key.to_owned(), value);
        }
    }
}

#[cfg(test)]
#[path = "hcl_tests.rs"]
mod tests;
