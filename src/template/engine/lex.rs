//! The lexer: text runs and action tokens, with trim markers applied and comments dropped.
//!
//! Like Go's lexer it keeps spaces inside actions as tokens, because they separate operands
//! (`.A.B` is one field chain, `.A .B` two arguments).

use super::Value;

/// One lexical item.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Plain text between actions, already trimmed by `{{-`/`-}}`.
    Text(String),
    /// `{{` (with or without a trim marker).
    Left,
    /// `}}` (with or without a trim marker).
    Right,
    /// A run of spaces, tabs and newlines inside an action.
    Space,
    /// A function name.
    Ident(String),
    /// A keyword (`if`, `nil`, `true`, …).
    Keyword(Kw),
    /// `.Name`, without the dot.
    Field(String),
    /// `$` or `$name`, with the dollar.
    Var(String),
    /// `.` alone.
    Dot,
    /// A quoted or raw string, unescaped.
    Str(String),
    /// A number or character constant.
    Number(Value),
    /// `|`
    Pipe,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// A single `}` inside an action.
    Brace,
    /// The end of the text.
    Eof,
}

/// Keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Nil,
    True,
    False,
    Define,
    Template,
    Block,
}

impl Kw {
    fn from_word(w: &str) -> Option<Kw> {
        Some(match w {
            "if" => Kw::If,
            "else" => Kw::Else,
            "end" => Kw::End,
            "range" => Kw::Range,
            "with" => Kw::With,
            "break" => Kw::Break,
            "continue" => Kw::Continue,
            "nil" => Kw::Nil,
            "true" => Kw::True,
            "false" => Kw::False,
            "define" => Kw::Define,
            "template" => Kw::Template,
            "block" => Kw::Block,
            _ => return None,
        })
    }
}

/// A token and the byte range of its source text.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// A lexical error at a byte offset.
#[derive(Debug)]
pub(super) struct LexError {
    pub(super) at: usize,
    pub(super) message: String,
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`].
pub(super) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer { src, pos: 0, toks: Vec::new(), trim_next: false };
    lx.run()?;
    Ok(lx.toks)
}

const WS: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_ws(c: char) -> bool {
    WS.contains(&c)
}

/// `{{-` followed by whitespace.
fn has_left_trim(s: &str) -> bool {
    s.starts_with("{{-") && s[3..].starts_with(WS)
}

/// Whitespace followed by `-}}`.
fn has_right_trim(s: &str) -> bool {
    s.starts_with(WS) && s[1..].starts_with("-}}")
}

fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError { at, message: message.into() })
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    trim_next: bool,
}

impl<'a> Lexer<'a> {
    fn run(&mut self) -> Result<(), LexError> {
        loop {
            let open = self.src[self.pos..].find("{{").map_or(self.src.len(), |i| self.pos + i);
            let left_trim = has_left_trim(&self.src[open..]);
            self.text(open, left_trim);
            if open == self.src.len() {
                self.push(Tok::Eof, open, open);
                return Ok(());
            }
            self.pos = open + if left_trim { 4 } else { 2 };
            if self.src[self.pos..].starts_with("/*") {
                self.comment(open)?;
                continue;
            }
            self.push(Tok::Left, open, self.pos);
            self.action(open)?;
        }
    }

    fn push(&mut self, tok: Tok, start: usize, end: usize) {
        self.toks.push(Token { tok, start, end });
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Emits the text from the current position up to `end`, trimmed as the markers ask.
    fn text(&mut self, end: usize, left_trim: bool) {
        let mut start = self.pos;
        let mut s = &self.src[start..end];
        if self.trim_next {
            let t = s.trim_start_matches(WS);
            start += s.len() - t.len();
            s = t;
        }
        if left_trim {
            s = s.trim_end_matches(WS);
        }
        if !s.is_empty() {
            self.push(Tok::Text(s.to_string()), start, start + s.len());
        }
    }

    /// `{{/* … */}}`: the comment must fill the action.
    fn comment(&mut self, open: usize) -> Result<(), LexError> {
        let Some(close) = self.rest().find("*/") else { return err(open, "unclosed comment") };
        self.pos += close + 2;
        if self.rest().starts_with("}}") {
            self.pos += 2;
            self.trim_next = false;
        } else if has_right_trim(self.rest()) {
            self.pos += 4;
            self.trim_next = true;
        } else {
            return err(open, "comment ends before closing delimiter");
        }
        Ok(())
    }

    /// Tokens up to and including the closing `}}`.
    fn action(&mut self, open: usize) -> Result<(), LexError> {
        loop {
            let start = self.pos;
            let rest = self.rest();
            let Some(c) = rest.chars().next() else { return err(open, "unclosed action") };
            if has_right_trim(rest) || rest.starts_with("}}") {
                let len = if rest.starts_with("}}") { 2 } else { 4 };
                self.trim_next = len == 4;
                self.pos += len;
                self.push(Tok::Right, start, self.pos);
                return Ok(());
            }
            let tok = match c {
                c if is_ws(c) => {
                    self.spaces();
                    Tok::Space
                }
                '"' => Tok::Str(self.quoted()?),
                '`' => Tok::Str(self.raw()?),
                '\'' => Tok::Number(self.char_constant()?),
                '$' => {
                    self.pos += 1;
                    Tok::Var(format!("${}", self.word()))
                }
                '.' => self.dot()?,
                '+' | '-' | '0'..='9' => Tok::Number(self.number()?),
                c if c == '_' || c.is_alphabetic() => {
                    let w = self.word();
                    Kw::from_word(&w).map_or(Tok::Ident(w), Tok::Keyword)
                }
                ':' if rest.starts_with(":=") => {
                    self.pos += 2;
                    Tok::Declare
                }
                _ => {
                    self.pos += c.len_utf8();
                    match c {
                        '}' => Tok::Brace,
                        '|' => Tok::Pipe,
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        '=' => Tok::Assign,
                        _ => {
                            let msg = format!("unrecognized character in action: U+{:04X} {c:?}", c as u32);
                            return err(start, msg);
                        }
                    }
                }
            };
            self.push(tok, start, self.pos);
        }
    }

    /// Skips whitespace, stopping before a ` -}}` trim marker.
    fn spaces(&mut self) {
        while let Some(c) = self.rest().chars().next() {
            if !is_ws(c) || has_right_trim(self.rest()) {
                break;
            }
            self.pos += 1;
        }
    }

    fn word(&mut self) -> String {
        let rest = self.rest();
        let len = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    /// `.`, `.Field` or a number like `.5`.
    fn dot(&mut self) -> Result<Tok, LexError> {
        match self.rest()[1..].chars().next() {
            Some(c) if c.is_ascii_digit() => Ok(Tok::Number(self.number()?)),
            Some(c) if c == '_' || c.is_alphabetic() => {
                self.pos += 1;
                Ok(Tok::Field(self.word()))
            }
            _ => {
                self.pos += 1;
                Ok(Tok::Dot)
            }
        }
    }

    /// The body of a quoted literal ending in `quote`, with the position after it.
    fn scan_quoted(&mut self, quote: char, what: &str) -> Result<String, LexError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return err(start, format!("unterminated {what}")),
                },
                Some((i, c)) if c == quote => {
                    let body = self.rest()[1..i].to_string();
                    self.pos += i + 1;
                    return Ok(body);
                }
                Some((_, '\n')) | None => return err(start, format!("unterminated {what}")),
                Some(_) => {}
            }
        }
    }

    fn quoted(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let body = self.scan_quoted('"', "quoted string")?;
        unescape_string(&body).or_else(|m| err(start, m))
    }

    fn raw(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let Some(len) = self.rest()[1..].find('`') else {
            return err(start, "unterminated raw quoted string");
        };
        let body = self.rest()[1..1 + len].replace('\r', "");
        self.pos += len + 2;
        Ok(body)
    }

    fn char_constant(&mut self) -> Result<Value, LexError> {
        let start = self.pos;
        let body = self.scan_quoted('\'', "character constant")?;
        let mut chars = body.chars().peekable();
        let unit = match chars.next() {
            Some('\\') => escape(&mut chars, '\'').or_else(|m| err(start, m))?,
            Some(c) => Unit::Char(c),
            None => return err(start, "empty character constant"),
        };
        if chars.next().is_some() {
            return err(start, format!("invalid character constant '{body}'"));
        }
        Ok(Value::from(match unit {
            Unit::Byte(b) => u32::from(b),
            Unit::Char(c) => c as u32,
        }))
    }

    /// A Go number: optional sign, decimal/hex/octal/binary digits with `_`, fraction, exponent.
    fn number(&mut self) -> Result<Value, LexError> {
        let start = self.pos;
        let rest = self.rest().as_bytes();
        let mut i = usize::from(matches!(rest[0], b'+' | b'-'));
        let digits_from =
            |i: usize, ok: fn(u8) -> bool| i + rest[i..].iter().take_while(|&&b| ok(b) || b == b'_').count();
        let body = i;
        if rest[i..].len() > 1
            && rest[i] == b'0'
            && matches!(rest[i + 1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
        {
            i = digits_from(i + 2, |b| b.is_ascii_hexdigit());
        } else {
            i = digits_from(i, |b| b.is_ascii_digit());
            if rest.get(i) == Some(&b'.') {
                i = digits_from(i + 1, |b| b.is_ascii_digit());
            }
            if matches!(rest.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(rest.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                i = digits_from(i, |b| b.is_ascii_digit());
            }
        }
        let has_digit = rest[body..i].iter().any(u8::is_ascii_digit);
        let tail = self.rest()[i..].find(|c| !is_word_char(c)).unwrap_or(self.rest().len() - i);
        if !has_digit || tail > 0 {
            return err(start, format!("bad number syntax: {:?}", &self.rest()[..i + tail]));
        }
        let text = &self.rest()[..i];
        let value = parse_number(text).or_else(|m| err(start, m))?;
        self.pos += i;
        Ok(value)
    }
}

/// The value of a number literal: an integer unless it has a fraction or exponent.
fn parse_number(text: &str) -> Result<Value, String> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let bad = || format!("bad number syntax: {text:?}");
    let radix = match body.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => Some((16, &body[2..])),
        Some("0o") => Some((8, &body[2..])),
        Some("0b") => Some((2, &body[2..])),
        _ if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) => {
            Some((8, &body[1..]))
        }
        _ => None,
    };
    if let Some((radix, digits)) = radix {
        let n = u64::from_str_radix(digits, radix).map_err(|_| bad())?;
        return int_value(neg, n).ok_or_else(|| format!("integer overflow: {text:?}"));
    }
    if body.contains(['.', 'e', 'E']) {
        let f: f64 = clean.parse().map_err(|_| bad())?;
        return serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(bad);
    }
    let n: u64 = body.parse().map_err(|_| format!("integer overflow: {text:?}"))?;
    int_value(neg, n).ok_or_else(|| format!("integer overflow: {text:?}"))
}

fn int_value(neg: bool, n: u64) -> Option<Value> {
    if !neg {
        return Some(Value::from(n));
    }
    0i64.checked_sub_unsigned(n).map(Value::from)
}

/// One decoded unit of a literal: `\xff` and octal escapes are bytes, the rest characters.
enum Unit {
    Byte(u8),
    Char(char),
}

/// Decodes Go's escapes in a `"…"` string; byte escapes that do not form UTF-8 become U+FFFD.
fn unescape_string(body: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        let unit = if c == '\\' { escape(&mut chars, '"')? } else { Unit::Char(c) };
        match unit {
            Unit::Byte(b) => out.push(b),
            Unit::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Decodes the escape after a backslash.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) -> Result<Unit, String> {
    let e = chars.next().ok_or("invalid syntax")?;
    let mut hex = |n: usize| -> Result<u32, String> {
        let s: String = chars.take(n).collect();
        if s.len() != n {
            return Err(format!("invalid escape \\{e}{s}"));
        }
        u32::from_str_radix(&s, 16).map_err(|_| format!("invalid escape \\{e}{s}"))
    };
    let c = match e {
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        '\\' => '\\',
        c if c == quote => c,
        'x' => return Ok(Unit::Byte(hex(2)? as u8)),
        'u' | 'U' => {
            let n = hex(if e == 'u' { 4 } else { 8 })?;
            char::from_u32(n).ok_or_else(|| format!("invalid escape \\{e}{n:x}"))?
        }
        '0'..='7' => {
            let rest: String = chars.take(2).collect();
            let n =
                u32::from_str_radix(&format!("{e}{rest}"), 8).ok().filter(|n| *n < 256 && rest.len() == 2);
            return n.map(|n| Unit::Byte(n as u8)).ok_or_else(|| format!("invalid escape \\{e}{rest}"));
        }
        _ => return Err(format!("invalid escape \\{e} in quoted literal")),
    };
    Ok(Unit::Char(c))
}
