//! The parser: tokens to a tree of nodes, following Go's `text/template/parse`.
//!
//! Functions are resolved and variables checked here, so a template that parses can only fail
//! at render time on values (types, missing indexes) and on what functions return.

use super::funcs::Builtin;
use super::lex::{self, Kw, Tok, Token};
use super::{MAX_DEPTH, Pos, TemplateError, Value};

/// A sequence of nodes.
pub(super) type List = Vec<Node>;

/// One node of the tree.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// Literal text.
    Text(String, Pos),
    /// `{{ pipeline }}`: prints the value unless the pipeline declares or assigns variables.
    Action(Pos, Pipe),
    /// `{{if}}`, `{{with}}` or `{{range}}` with its body and `{{else}}` list.
    Control(Box<Control>),
    /// `{{break}}`
    Break,
    /// `{{continue}}`
    Continue,
}

/// Which control structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

/// A control structure.
#[derive(Debug, Clone)]
pub(super) struct Control {
    pub(super) kind: Kind,
    pub(super) pos: Pos,
    pub(super) pipe: Pipe,
    pub(super) body: List,
    pub(super) otherwise: List,
}

/// `$x := cmd | cmd …`
#[derive(Debug, Clone)]
pub(super) struct Pipe {
    /// Declared or assigned variables, with the `$`.
    pub(super) decl: Vec<String>,
    /// `=` rather than `:=`.
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
}

/// One stage of a pipeline: a function and its arguments, or a single operand.
#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Operand>,
}

/// An operand with its source text (for error messages).
#[derive(Debug, Clone)]
pub(super) struct Operand {
    pub(super) term: Term,
    pub(super) src: String,
}

/// What an operand is.
#[derive(Debug, Clone)]
pub(super) enum Term {
    Dot,
    Nil,
    Lit(Value),
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (the path may be empty)
    Var(String, Vec<String>),
    Func(Func),
    Pipe(Box<Pipe>),
    /// `(pipeline).A.B` or `func.A`
    Chain(Box<Operand>, Vec<String>),
}

/// A resolved function name.
#[derive(Debug, Clone)]
pub(super) enum Func {
    Builtin(Builtin),
    External(String),
}

/// Parses a whole template.
pub(super) fn parse(file: &str, src: &str, externals: &[&str]) -> Result<List> {
    let toks = lex::lex(src).map_err(|e| Pos::of(src, e.at).error(file, e.message))?;
    let mut p = Parser { file, src, toks, i: 0, vars: vec!["$".into()], externals, depth: 0, loops: 0 };
    let (list, stop) = p.list()?;
    match stop {
        Stop::Eof(_) => Ok(list),
        Stop::End(at) => Err(p.err(at, "unexpected {{end}}")),
        Stop::Else(at) => Err(p.err(at, "unexpected {{else}}")),
    }
}

/// Why a list ended, with the byte offset of the `{{` or the end of the text.
enum Stop {
    End(usize),
    Else(usize),
    Eof(usize),
}

/// Where a pipeline ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Close {
    Action,
    Paren,
}

struct Parser<'a> {
    file: &'a str,
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    externals: &'a [&'a str],
    depth: usize,
    /// How many `range` bodies enclose the current position.
    loops: usize,
}

type Result<T> = std::result::Result<T, TemplateError>;

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> TemplateError {
        Pos::of(self.src, at).error(self.file, message)
    }

    fn cur(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn bump(&mut self) {
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
    }

    fn skip_space(&mut self) {
        while *self.peek() == Tok::Space {
            self.bump();
        }
    }

    /// How a token reads in an error message.
    fn describe(&self, t: &Token) -> String {
        match t.tok {
            Tok::Eof => "EOF".into(),
            _ => format!("{:?}", &self.src[t.start..t.end]),
        }
    }

    fn unexpected(&self, context: &str) -> TemplateError {
        let t = self.cur();
        self.err(t.start, format!("unexpected {} in {context}", self.describe(t)))
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(at, format!("exceeded maximum nesting depth of {MAX_DEPTH}")));
        }
        Ok(())
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of the text.
    fn list(&mut self) -> Result<(List, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.cur();
            let start = t.start;
            match &t.tok {
                Tok::Text(s) => {
                    nodes.push(Node::Text(s.clone(), Pos::of(self.src, start)));
                    self.bump();
                }
                Tok::Left => {
                    self.bump();
                    if let Some(stop) = self.action(&mut nodes, start)? {
                        return Ok((nodes, stop));
                    }
                }
                Tok::Eof => return Ok((nodes, Stop::Eof(start))),
                _ => return Err(self.unexpected("text")),
            }
        }
    }

    /// One action after its `{{`; `Some` when it ends the current list.
    fn action(&mut self, nodes: &mut List, open: usize) -> Result<Option<Stop>> {
        self.skip_space();
        let pos = Pos::of(self.src, open);
        let Tok::Keyword(kw) = *self.peek() else {
            let pipe = self.pipeline("command", Close::Action)?;
            nodes.push(Node::Action(pos, pipe));
            return Ok(None);
        };
        match kw {
            Kw::End => {
                self.bump();
                self.expect_right("end")?;
                return Ok(Some(Stop::End(open)));
            }
            Kw::Else => {
                self.bump();
                return Ok(Some(Stop::Else(open)));
            }
            Kw::If | Kw::With | Kw::Range => {
                self.bump();
                let kind = match kw {
                    Kw::If => Kind::If,
                    Kw::With => Kind::With,
                    _ => Kind::Range,
                };
                nodes.push(Node::Control(Box::new(self.control(kind, open)?)));
            }
            Kw::Break | Kw::Continue => {
                let name = if kw == Kw::Break { "break" } else { "continue" };
                if self.loops == 0 {
                    return Err(self.err(open, format!("{{{{{name}}}}} outside {{{{range}}}}")));
                }
                self.bump();
                self.expect_right(name)?;
                nodes.push(if kw == Kw::Break { Node::Break } else { Node::Continue });
            }
            Kw::Define | Kw::Template | Kw::Block => {
                let t = self.cur();
                let word = &self.src[t.start..t.end];
                return Err(self.err(t.start, format!("{{{{{word}}}}} is not supported")));
            }
            Kw::Nil | Kw::True | Kw::False => {
                let pipe = self.pipeline("command", Close::Action)?;
                nodes.push(Node::Action(pos, pipe));
            }
        }
        Ok(None)
    }

    fn expect_right(&mut self, context: &str) -> Result<()> {
        self.skip_space();
        if *self.peek() != Tok::Right {
            return Err(self.unexpected(context));
        }
        self.bump();
        Ok(())
    }

    /// `{{if …}}`, `{{with …}}` or `{{range …}}` after the keyword, through its `{{end}}`.
    fn control(&mut self, kind: Kind, open: usize) -> Result<Control> {
        self.enter(open)?;
        let mark = self.vars.len();
        let pipe = self.pipeline(kind.name(), Close::Action)?;
        self.loops += usize::from(kind == Kind::Range);
        let (body, stop) = self.list()?;
        self.loops -= usize::from(kind == Kind::Range);
        let otherwise = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Else(at) => self.else_list(kind, at, open)?,
            Stop::Eof(at) => return Err(self.missing_end(kind, at, open)),
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Control { kind, pos: Pos::of(self.src, open), pipe, body, otherwise })
    }

    /// After `{{else`: `if …}}`/`with …}}` chains into a nested control sharing the `{{end}}`.
    fn else_list(&mut self, kind: Kind, at: usize, open: usize) -> Result<List> {
        self.skip_space();
        let chained = matches!(
            (kind, self.peek()),
            (Kind::If, Tok::Keyword(Kw::If)) | (Kind::With, Tok::Keyword(Kw::With))
        );
        if chained {
            self.bump();
            return Ok(vec![Node::Control(Box::new(self.control(kind, at)?))]);
        }
        self.expect_right("else")?;
        let (list, stop) = self.list()?;
        match stop {
            Stop::End(_) => Ok(list),
            Stop::Else(at) => Err(self.err(at, "expected end; found {{else}}")),
            Stop::Eof(at) => Err(self.missing_end(kind, at, open)),
        }
    }

    fn missing_end(&self, kind: Kind, at: usize, open: usize) -> TemplateError {
        let p = Pos::of(self.src, open);
        let name = kind.name();
        self.err(
            at,
            format!("unexpected EOF: missing {{{{end}}}} for {{{{{name}}}}} at {}:{}", p.line, p.col),
        )
    }

    /// `[decl] cmd | cmd …` up to and including `}}` or `)`.
    fn pipeline(&mut self, context: &str, close: Close) -> Result<Pipe> {
        self.skip_space();
        let (decl, assign) = self.declarations(context)?;
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let start = self.cur().start;
            let cmd = self.command(if cmds.is_empty() { context } else { "command" })?;
            let literal = matches!(cmd.args[0].term, Term::Dot | Term::Nil | Term::Lit(_));
            if !cmds.is_empty() && literal {
                let n = cmds.len() + 1;
                return Err(self.err(start, format!("non executable command in pipeline stage {n}")));
            }
            cmds.push(cmd);
            match (self.peek(), close) {
                (Tok::Pipe, _) => self.bump(),
                (Tok::Right, Close::Action) | (Tok::RParen, Close::Paren) => {
                    self.bump();
                    break;
                }
                (Tok::Right, Close::Paren) => return Err(self.err(self.cur().start, "unclosed left paren")),
                _ => return Err(self.unexpected("command")),
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// `$x :=`, `$x =`, and in `range` also `$i, $e :=`.
    fn declarations(&mut self, context: &str) -> Result<(Vec<String>, bool)> {
        let save = self.i;
        let Tok::Var(first) = self.peek().clone() else { return Ok((Vec::new(), false)) };
        self.bump();
        self.skip_space();
        let mut decl = vec![first];
        if *self.peek() == Tok::Comma {
            if context != "range" {
                return Err(self.err(self.cur().start, format!("too many declarations in {context}")));
            }
            self.bump();
            self.skip_space();
            let Tok::Var(second) = self.peek().clone() else { return Err(self.unexpected("declaration")) };
            decl.push(second);
            self.bump();
            self.skip_space();
            if !matches!(self.peek(), Tok::Declare | Tok::Assign) {
                return Err(self.unexpected("declaration"));
            }
        }
        let assign = match self.peek() {
            Tok::Declare => false,
            Tok::Assign => true,
            _ => {
                self.i = save;
                return Ok((Vec::new(), false));
            }
        };
        if assign && let Some(v) = decl.iter().find(|v| !self.vars.contains(v)) {
            return Err(self.err(self.toks[save].start, format!("undefined variable {v:?}")));
        }
        self.bump();
        Ok((decl, assign))
    }

    /// Operands separated by spaces, up to `|`, `}}` or `)` (not consumed).
    fn command(&mut self, context: &str) -> Result<Cmd> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if matches!(self.peek(), Tok::Pipe | Tok::Right | Tok::RParen | Tok::Eof) {
                break;
            }
            args.push(self.operand()?);
            match self.peek() {
                Tok::Space => {}
                Tok::Pipe | Tok::Right | Tok::RParen | Tok::Eof => break,
                _ => return Err(self.unexpected("operand")),
            }
        }
        if args.is_empty() {
            return Err(self.err(self.cur().start, format!("missing value for {context}")));
        }
        Ok(Cmd { args })
    }

    /// A term and the field names that directly follow it.
    fn operand(&mut self) -> Result<Operand> {
        let start = self.cur().start;
        let term = self.term()?;
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek() {
            fields.push(f.clone());
            self.bump();
        }
        let src = self.src[start..self.toks[self.i - 1].end].to_string();
        if fields.is_empty() {
            return Ok(Operand { term, src });
        }
        let term = match term {
            Term::Field(mut path) => {
                path.extend(fields);
                Term::Field(path)
            }
            Term::Var(name, mut path) => {
                path.extend(fields);
                Term::Var(name, path)
            }
            Term::Pipe(_) | Term::Func(_) => {
                let inner = self.src[start..self.toks[self.i - fields.len() - 1].end].to_string();
                Term::Chain(Box::new(Operand { term, src: inner }), fields)
            }
            _ => return Err(self.err(start, format!("unexpected . after term {src:?}"))),
        };
        Ok(Operand { term, src })
    }

    fn term(&mut self) -> Result<Term> {
        let t = self.cur().clone();
        let term = match t.tok {
            Tok::Ident(name) => Term::Func(self.function(&name, t.start)?),
            Tok::Keyword(Kw::Nil) => Term::Nil,
            Tok::Keyword(Kw::True) => Term::Lit(Value::Bool(true)),
            Tok::Keyword(Kw::False) => Term::Lit(Value::Bool(false)),
            Tok::Dot => Term::Dot,
            Tok::Field(name) => Term::Field(vec![name]),
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.err(t.start, format!("undefined variable {name:?}")));
                }
                Term::Var(name, Vec::new())
            }
            Tok::Str(s) => Term::Lit(Value::String(s)),
            Tok::Number(n) => Term::Lit(n),
            Tok::LParen => {
                self.bump();
                self.enter(t.start)?;
                let pipe = self.pipeline("parenthesized pipeline", Close::Paren)?;
                self.depth -= 1;
                return Ok(Term::Pipe(Box::new(pipe)));
            }
            _ => return Err(self.unexpected("operand")),
        };
        self.bump();
        Ok(term)
    }

    fn function(&self, name: &str, at: usize) -> Result<Func> {
        if let Some(b) = Builtin::from_name(name) {
            return Ok(Func::Builtin(b));
        }
        if self.externals.contains(&name) {
            return Ok(Func::External(name.to_string()));
        }
        Err(self.err(at, format!("function {name:?} not defined")))
    }
}
