//! Query templates: the `${...}` interpolation of every string in a template's `Service`
//! (Consul evaluates them with HIL). Supported: `${name.full}`, `${name.prefix}`,
//! `${name.suffix}`, `${match(N)}` (a group of `Template.Regexp` matched against the whole
//! name, `""` when it does not match or N is out of range), string literals (`${"x"}`) and
//! `$${` for a literal `${`. A template is compiled when it is stored (errors refuse it)
//! and rendered for each name it resolves.

use regex::Regex;

use super::{PreparedQuery, ServiceQuery, TEMPLATE_NAME_PREFIX_MATCH};

/// A piece of a string field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
    Match(i64),
}

/// A template ready to render: the query, its parsed fields and its regexp.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    query: PreparedQuery,
    re: Option<Regex>,
}

/// Validates `q` as a template: its type, every `Service` string, its regexp, and a trial
/// render for its own name (Consul's `Compile`). Errors are Consul's texts.
pub fn compile(q: &PreparedQuery) -> Result<CompiledTemplate, String> {
    if q.template.kind != TEMPLATE_NAME_PREFIX_MATCH {
        return Err(format!("Bad Template.Type '{}'", q.template.kind));
    }
    let mut svc = q.service.clone();
    walk(&mut svc, &mut |path, v| {
        parse(v).map(drop).map_err(|e| format!("Bad format '{v}' in Service{path}: {e}"))
    })?;
    let re = if q.template.regexp.is_empty() {
        None
    } else {
        Some(Regex::new(&q.template.regexp).map_err(|e| format!("Bad Regexp: {e}"))?)
    };
    let ct = CompiledTemplate { query: q.clone(), re };
    ct.render(&q.name)?;
    Ok(ct)
}

impl CompiledTemplate {
    /// The query for `name`: every `Service` string interpolated, empty tags dropped with
    /// `RemoveEmptyTags`.
    pub fn render(&self, name: &str) -> Result<PreparedQuery, String> {
        let mut q = self.query.clone();
        let groups: Vec<String> = match &self.re {
            Some(re) => re
                .captures(name)
                .map(|c| c.iter().map(|m| m.map_or_else(String::new, |m| m.as_str().to_owned())).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let suffix = name.strip_prefix(q.name.as_str()).unwrap_or(name).to_owned();
        let vars = [("name.full", name.to_owned()), ("name.prefix", q.name.clone()), ("name.suffix", suffix)];
        walk(&mut q.service, &mut |path, v| {
            let parts = parse(v).map_err(|e| format!("Bad format '{v}' in Service{path}: {e}"))?;
            *v = eval(&parts, &vars, &groups)
                .map_err(|e| format!("Bad evaluation for '{v}' in Service{path}: {e}"))?;
            Ok(())
        })?;
        if q.template.remove_empty_tags
            && let Some(tags) = q.service.tags.as_mut()
        {
            tags.retain(|t| !t.is_empty());
        }
        Ok(q)
    }
}

fn eval(parts: &[Part], vars: &[(&str, String)], groups: &[String]) -> Result<String, String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Var(name) => match vars.iter().find(|(n, _)| n == name) {
                Some((_, v)) => out.push_str(v),
                None => return Err(format!("unknown variable accessed: {name}")),
            },
            Part::Match(i) => {
                if let Some(g) = usize::try_from(*i).ok().and_then(|i| groups.get(i)) {
                    out.push_str(g);
                }
            }
        }
    }
    Ok(out)
}

/// Calls `f` with the path (`.Service`, `.Tags[0]`, `.NodeMeta[k]`, ...) and a mutable
/// reference of every string of a `Service` structure, as Consul's reflection walk does.
fn walk(
    s: &mut ServiceQuery,
    f: &mut dyn FnMut(&str, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    f(".Service", &mut s.service)?;
    for (i, dc) in s.failover.datacenters.iter_mut().flatten().enumerate() {
        f(&format!(".Failover.Datacenters[{i}]"), dc)?;
    }
    for (i, t) in s.failover.targets.iter_mut().flatten().enumerate() {
        f(&format!(".Failover.Targets[{i}].Peer"), &mut t.peer)?;
        f(&format!(".Failover.Targets[{i}].Datacenter"), &mut t.datacenter)?;
    }
    for (i, id) in s.ignore_check_ids.iter_mut().flatten().enumerate() {
        f(&format!(".IgnoreCheckIDs[{i}]"), id)?;
    }
    f(".Near", &mut s.near)?;
    for (i, t) in s.tags.iter_mut().flatten().enumerate() {
        f(&format!(".Tags[{i}]"), t)?;
    }
    for (k, v) in s.node_meta.iter_mut().flatten() {
        f(&format!(".NodeMeta[{k}]"), v)?;
    }
    for (k, v) in s.service_meta.iter_mut().flatten() {
        f(&format!(".ServiceMeta[{k}]"), v)?;
    }
    Ok(())
}

/// Splits a string into text and `${...}` expressions.
fn parse(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = expr_end(tail).ok_or_else(|| format!("unterminated interpolation in {s:?}"))?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(parse_expr(tail[..end].trim())?);
            rest = &tail[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// The index of the `}` closing an expression, skipping string literals.
fn expr_end(s: &str) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '}' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_expr(e: &str) -> Result<Part, String> {
    if e.is_empty() {
        return Err("empty interpolation".into());
    }
    if let Some(lit) = e.strip_prefix('"') {
        let body = lit.strip_suffix('"').ok_or_else(|| format!("unterminated string in {e:?}"))?;
        return Ok(Part::Text(body.replace("\\\"", "\"").replace("\\\\", "\\")));
    }
    if let Some((func, args)) = e.split_once('(') {
        let func = func.trim();
        let args = args.strip_suffix(')').ok_or_else(|| format!("expected ')' in {e:?}"))?.trim();
        if func != "match" {
            return Err(format!("unknown function called: {func}"));
        }
        let n = args.parse::<i64>().map_err(|_| format!("match: argument 1 should be int, got {args:?}"))?;
        return Ok(Part::Match(n));
    }
    if !e.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!("invalid expression {e:?}"));
    }
    Ok(Part::Var(e.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str, regexp: &str, service: ServiceQuery) -> PreparedQuery {
        PreparedQuery {
            name: name.into(),
            template: super::super::QueryTemplate {
                kind: TEMPLATE_NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: false,
            },
            service,
            ..Default::default()
        }
    }

    #[test]
    fn names_and_match_groups_are_interpolated_everywhere() {
        let svc = ServiceQuery {
            service: "${match(1)}".into(),
            tags: Some(vec!["${match(2)}".into(), "x-${name.suffix}".into(), "$${literal}".into()]),
            near: "${name.full}".into(),
            node_meta: Some([("rack".to_string(), "${name.prefix}".to_string())].into()),
            ..Default::default()
        };
        let q = template("geo-db", r"^geo-db-(.*?)-([^\-]+?)$", svc);
        let r = compile(&q).unwrap().render("geo-db-customer-primary").unwrap();
        assert_eq!(r.service.service, "customer");
        assert_eq!(
            r.service.tags.unwrap(),
            ["primary", "x--customer-primary", "${literal}"].map(String::from).to_vec()
        );
        assert_eq!(r.service.near, "geo-db-customer-primary");
        assert_eq!(r.service.node_meta.unwrap()["rack"], "geo-db");
    }

    #[test]
    fn a_regexp_that_does_not_match_gives_empty_groups_and_empty_tags_can_go() {
        let svc = ServiceQuery {
            service: "svc${match(1)}${match(7)}".into(),
            tags: Some(vec!["${match(1)}".into(), "keep".into()]),
            ..Default::default()
        };
        let mut q = template("", "^db-(.*)$", svc);
        let r = compile(&q).unwrap().render("web").unwrap();
        assert_eq!(r.service.service, "svc");
        assert_eq!(r.service.tags.unwrap(), ["", "keep"]);
        q.template.remove_empty_tags = true;
        let r = compile(&q).unwrap().render("web").unwrap();
        assert_eq!(r.service.tags.unwrap(), ["keep"]);
    }

    #[test]
    fn bad_templates_are_refused_with_consuls_texts() {
        let svc = |s: &str| ServiceQuery { service: s.into(), ..Default::default() };
        let mut q = template("x", "", svc("${name.full}"));
        q.template.kind = "prefix".into();
        assert_eq!(compile(&q).unwrap_err(), "Bad Template.Type 'prefix'");
        let e = compile(&template("x", "", svc("${name.full"))).unwrap_err();
        assert!(e.starts_with("Bad format '${name.full' in Service.Service: "), "{e}");
        let e = compile(&template("x", "(", svc("a"))).unwrap_err();
        assert!(e.starts_with("Bad Regexp: "), "{e}");
        let e = compile(&template("x", "", svc("${name.nope}"))).unwrap_err();
        assert_eq!(
            e,
            "Bad evaluation for '${name.nope}' in Service.Service: unknown variable accessed: name.nope"
        );
        let e = compile(&template("x", "", svc("${upper(1)}"))).unwrap_err();
        assert!(e.ends_with("unknown function called: upper"), "{e}");
    }

    #[test]
    fn text_without_interpolation_is_kept_as_written() {
        assert_eq!(parse("a$b").unwrap(), vec![Part::Text("a$b".into())]);
        assert_eq!(parse("${\"}x\"}").unwrap(), vec![Part::Text("}x".into())]);
        assert!(parse("").unwrap().is_empty());
    }
}
