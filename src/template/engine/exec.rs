//! The evaluator: walks the tree with a dot and a variable stack, writing the output.
//!
//! Evaluation helpers return `Result<Value, String>`; the node that ran them (an action or a
//! control block) adds its position. `range` counts iterations over the whole render and the
//! output is checked against [`MAX_OUTPUT`] on every write.

use super::fmt::{go_type, output, sprint_v};
use super::funcs::{self, Builtin, truth};
use super::parse::{Cmd, Control, Func, Kind, List, Node, Operand, Pipe, Term};
use super::{Functions, MAX_OUTPUT, MAX_RANGE_ITERATIONS, Pos, TemplateError, Value};

/// Renders `root` with `null` as the dot.
pub(super) fn render(file: &str, root: &List, funcs: &dyn Functions) -> Result<String, TemplateError> {
    let mut st =
        State { file, funcs, out: String::new(), vars: vec![("$".into(), Value::Null)], iterations: 0 };
    st.walk(root, &Value::Null)?;
    Ok(st.out)
}

/// How a list ended: normally, or by `{{break}}`/`{{continue}}` for the enclosing `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    file: &'a str,
    funcs: &'a dyn Functions,
    out: String,
    /// Variables in scope, innermost last; `$` first.
    vars: Vec<(String, Value)>,
    iterations: usize,
}

type Eval<T> = Result<T, String>;

impl State<'_> {
    fn walk(&mut self, list: &List, dot: &Value) -> Result<Flow, TemplateError> {
        for node in list {
            let flow = match node {
                Node::Text(s, pos) => {
                    self.write(s, *pos)?;
                    Flow::Normal
                }
                Node::Action(pos, pipe) => {
                    let v = self.pipe(pipe, dot).map_err(|m| self.error(*pos, m))?;
                    if pipe.decl.is_empty() {
                        self.write(&output(&v), *pos)?;
                    }
                    Flow::Normal
                }
                Node::Control(c) => self.control(c, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn error(&self, pos: Pos, message: String) -> TemplateError {
        pos.error(self.file, message)
    }

    fn write(&mut self, s: &str, pos: Pos) -> Result<(), TemplateError> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.error(pos, format!("output exceeds the maximum of {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn control(&mut self, c: &Control, dot: &Value) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let flow = if c.kind == Kind::Range {
            self.range(c, dot)
        } else {
            let v = self.pipe(&c.pipe, dot).map_err(|m| self.error(c.pos, m))?;
            match (truth(&v), c.kind) {
                (true, Kind::With) => self.walk(&c.body, &v),
                (true, _) => self.walk(&c.body, dot),
                (false, _) => self.walk(&c.otherwise, dot),
            }
        };
        self.vars.truncate(mark);
        flow
    }

    fn range(&mut self, c: &Control, dot: &Value) -> Result<Flow, TemplateError> {
        let v = self.commands(&c.pipe, dot).map_err(|m| self.error(c.pos, m))?;
        let items: Box<dyn Iterator<Item = (Value, &Value)>> = match &v {
            Value::Array(a) => Box::new(a.iter().enumerate().map(|(i, e)| (Value::from(i), e))),
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Box::new(keys.into_iter().map(|k| (Value::String(k.clone()), &m[k])))
            }
            Value::Null => Box::new(std::iter::empty()),
            Value::Number(n) if n.as_u64().is_some() || n.as_i64().is_some() => {
                return self.range_int(c, n.as_u64().unwrap_or(0));
            }
            v => {
                let msg = format!("range can't iterate over {}", sprint_v(v));
                return Err(self.error(c.pos, msg));
            }
        };
        let mut any = false;
        for (key, elem) in items {
            any = true;
            if self.iterate(c, key, elem)? == Flow::Break {
                break;
            }
        }
        if !any {
            return self.walk(&c.otherwise, dot);
        }
        Ok(Flow::Normal)
    }

    /// Go 1.22's `range N`: 0 … N-1, one variable at most.
    fn range_int(&mut self, c: &Control, n: u64) -> Result<Flow, TemplateError> {
        if c.pipe.decl.len() > 1 {
            return Err(self.error(c.pos, "can't use two variables with range over int".into()));
        }
        for i in 0..n {
            let v = Value::from(i);
            if self.iterate(c, v.clone(), &v)? == Flow::Break {
                break;
            }
        }
        if n == 0 {
            return self.walk(&c.otherwise, &Value::Null);
        }
        Ok(Flow::Normal)
    }

    fn iterate(&mut self, c: &Control, key: Value, elem: &Value) -> Result<Flow, TemplateError> {
        self.iterations += 1;
        if self.iterations > MAX_RANGE_ITERATIONS {
            let msg = format!("range exceeded the maximum of {MAX_RANGE_ITERATIONS} iterations");
            return Err(self.error(c.pos, msg));
        }
        let mark = self.vars.len();
        let values = match c.pipe.decl.len() {
            1 => vec![elem.clone()],
            2 => vec![key, elem.clone()],
            _ => Vec::new(),
        };
        for (name, v) in c.pipe.decl.iter().zip(values) {
            self.bind(name, v, c.pipe.assign);
        }
        let flow = self.walk(&c.body, elem);
        self.vars.truncate(mark);
        flow
    }

    /// Declares (`:=`) or assigns (`=`) a variable.
    fn bind(&mut self, name: &str, v: Value, assign: bool) {
        if assign && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        } else {
            self.vars.push((name.to_string(), v));
        }
    }

    /// A pipeline's value, with its declarations applied.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Eval<Value> {
        let v = self.commands(pipe, dot)?;
        for name in &pipe.decl {
            self.bind(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    /// A pipeline's value, each command's result passed as the last argument of the next.
    fn commands(&mut self, pipe: &Pipe, dot: &Value) -> Eval<Value> {
        let mut last = None;
        for cmd in &pipe.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn command(&mut self, cmd: &Cmd, dot: &Value, last: Option<Value>) -> Eval<Value> {
        let first = &cmd.args[0];
        match &first.term {
            Term::Func(f) => self.call(f, &cmd.args[1..], dot, last),
            Term::Nil => Err("nil is not a command".into()),
            _ if cmd.args.len() > 1 || last.is_some() => {
                Err(format!("can't give argument to non-function {}", first.src))
            }
            _ => self.arg(first, dot),
        }
    }

    fn arg(&mut self, op: &Operand, dot: &Value) -> Eval<Value> {
        match &op.term {
            Term::Dot => Ok(dot.clone()),
            Term::Nil => Ok(Value::Null),
            Term::Lit(v) => Ok(v.clone()),
            Term::Field(path) => fields(dot, path),
            Term::Var(name, path) => {
                let v = self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
                let v = v.ok_or_else(|| format!("undefined variable: {name}"))?;
                fields(v, path)
            }
            Term::Func(f) => self.call(f, &[], dot, None),
            Term::Pipe(p) => self.pipe(p, dot),
            Term::Chain(inner, path) => fields(&self.arg(inner, dot)?, path),
        }
    }

    fn call(&mut self, f: &Func, args: &[Operand], dot: &Value, last: Option<Value>) -> Eval<Value> {
        if let Func::Builtin(b @ (Builtin::And | Builtin::Or)) = f {
            return self.and_or(*b, args, dot, last);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(a, dot)?);
        }
        values.extend(last);
        match f {
            Func::Builtin(b) => funcs::call(*b, &values),
            Func::External(name) => {
                self.funcs.call(name, &values).map_err(|e| format!("error calling {name}: {e}"))
            }
        }
    }

    /// `and`/`or`, evaluating arguments only until the answer is known (Go 1.18).
    fn and_or(&mut self, b: Builtin, args: &[Operand], dot: &Value, last: Option<Value>) -> Eval<Value> {
        funcs::check_arity(b, args.len() + usize::from(last.is_some()))?;
        let want = b == Builtin::Or;
        let mut v = Value::Null;
        for a in args {
            v = self.arg(a, dot)?;
            if truth(&v) == want {
                return Ok(v);
            }
        }
        Ok(last.unwrap_or(v))
    }
}

/// `.A.B` on `v`: null and missing keys give null (Go prints `<no value>`).
fn fields(v: &Value, path: &[String]) -> Eval<Value> {
    let mut cur = v;
    for name in path {
        cur = match cur {
            Value::Object(m) => m.get(name).unwrap_or(&Value::Null),
            Value::Null => return Ok(Value::Null),
            other => return Err(format!("can't evaluate field {name} in type {}", go_type(other))),
        };
    }
    Ok(cur.clone())
}
