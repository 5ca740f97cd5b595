//! A pure implementation of Go's `text/template` language, as consul-template uses it.
//!
//! ```text
//!  text ──lex──► tokens ──parse──► Template (tree of nodes; functions resolved, variables checked)
//!                                      │
//!  Functions (key, service, tree, …) ──render──► String   (built-ins: and, eq, printf, split, …)
//! ```
//!
//! The data model is [`serde_json::Value`]: objects with PascalCase keys, arrays, strings,
//! numbers, booleans and null. The dot at the top level is `null`, so everything a template shows
//! comes from functions. Built-in functions are Go's (`and`, `or`, `not`, `eq`, `ne`, `lt`, `le`,
//! `gt`, `ge`, `len`, `index`, `slice`, `print`, `printf`, `println`) plus consul-template's string
//! and JSON helpers (`toJSON`, `toJSONPretty`, `parseJSON`, `split`, `join`, `replaceAll`,
//! `toLower`, `toUpper`, `toTitle`, `trimSpace`, `contains`, `in`, `containsAny`, `containsAll`,
//! `env`, `timestamp`); any other name must be listed in the `externals` given to
//! [`Template::parse`] and is served by [`Functions::call`]. A built-in name wins over an
//! external one.
//!
//! Rendering does no I/O except `env` (process environment) and `timestamp` (the clock). Work is
//! bounded: nesting deeper than [`MAX_DEPTH`], output (or any string built by a function) larger
//! than [`MAX_OUTPUT`] and more than [`MAX_RANGE_ITERATIONS`] `range` iterations are errors.

mod clock;
mod exec;
mod fmt;
mod funcs;
mod json;
mod lex;
mod parse;

use std::fmt::{Display, Formatter};

pub use serde_json::Value;

/// Deepest nesting of control blocks (`if`, `range`, `with`, `else if`) and parentheses.
pub const MAX_DEPTH: usize = 100;
/// Largest rendered output, and largest string any function may build, in bytes (16 MiB).
pub const MAX_OUTPUT: usize = 16 << 20;
/// Most `range` iterations in one render, over all loops together.
pub const MAX_RANGE_ITERATIONS: usize = 1_000_000;

/// A parsed template, ready to render any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    root: parse::List,
}

/// A parse or render error at a position (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template's name as given to [`Template::parse`], usually its file name.
    pub file: String,
    /// 1-based line of the offending token (parse errors) or action (render errors).
    pub line: usize,
    /// 1-based column, in characters, of that token or action.
    pub col: usize,
    /// What went wrong, in Go's words where Go has words for it.
    pub message: String,
}

impl Display for TemplateError {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// The functions a template may call beyond the built-ins: consul-template's `key`, `service`,
/// `tree`, … backed by whatever the caller has (the HTTP API, a fake in tests).
pub trait Functions {
    /// Called for functions that are not built in (`key`, `service`, `tree`, ...). The names
    /// it knows are passed to `Template::parse` so an unknown function is a parse error, as in Go.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String>;
}

impl Template {
    /// Parses `text`. `name` is used in errors (the file name). `externals`: function names
    /// `Functions` provides; calling any other non-built-in name is a parse error.
    pub fn parse(name: &str, text: &str, externals: &[&str]) -> Result<Template, TemplateError> {
        let root = parse::parse(name, text, externals)?;
        Ok(Template { name: name.to_string(), root })
    }

    /// Renders with `null` as the dot; errors from functions or evaluation carry the position of
    /// the action (or control block) that failed.
    pub fn render(&self, funcs: &dyn Functions) -> Result<String, TemplateError> {
        exec::render(&self.name, &self.root, funcs)
    }
}

/// A position in the template text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    col: usize,
}

impl Pos {
    /// The line and column of byte offset `at` in `src`.
    fn of(src: &str, at: usize) -> Pos {
        let before = &src[..at.min(src.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos { line: before.matches('\n').count() + 1, col: before[line_start..].chars().count() + 1 }
    }

    fn error(self, file: &str, message: impl Into<String>) -> TemplateError {
        TemplateError { file: file.to_string(), line: self.line, col: self.col, message: message.into() }
    }
}

#[cfg(test)]
mod tests;
