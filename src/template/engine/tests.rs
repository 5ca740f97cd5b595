//! Table-driven tests: template text in, output or `file:line:col: message` out.

use proptest::prelude::*;
use serde_json::json;

use super::{Functions, Template, Value, clock};

/// A fake consul-template backend with a few keys and services.
struct Fake;

const EXTERNALS: &[&str] = &["key", "service", "services", "tree", "fail", "echo"];

impl Functions for Fake {
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let arg = args.first().and_then(Value::as_str).unwrap_or("");
        match (name, arg) {
            ("key", "x") => Ok(json!("hello")),
            ("key", "empty") => Ok(json!("")),
            ("key", _) => Err("no such key".into()),
            ("service", "web") => Ok(json!([
                {"Address": "10.0.0.1", "Port": 80, "Tags": ["primary", "http"]},
                {"Address": "10.0.0.2", "Port": 8080, "Tags": []},
            ])),
            ("service", _) => Ok(json!([])),
            ("services", _) => Ok(json!({"web": {"Tags": ["http", "v1"]}, "db": {"Tags": ["primary"]}})),
            ("tree", _) => Ok(json!([{"Key": "a", "Value": "1"}, {"Key": "b/c", "Value": "2"}])),
            ("echo", _) => Ok(Value::Array(args.to_vec())),
            _ => Err("boom".into()),
        }
    }
}

fn render(text: &str) -> Result<String, String> {
    let t = Template::parse("t", text, EXTERNALS).map_err(|e| e.to_string())?;
    t.render(&Fake).map_err(|e| e.to_string())
}

/// (template, expected output)
const OUTPUTS: &[(&str, &str)] = &[
    ("plain text", "plain text"),
    (r#"{{ "a" }}"#, "a"),
    (r#"{{ `raw\n` }}"#, r"raw\n"),
    (r#"{{ "tab\there\u00e9\x41\101" }}"#, "tab\there\u{e9}AA"),
    ("{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 1e3 }} {{ 0x1F }} {{ 'a' }} {{ 1_000 }}", "42 -7 1.5 1000 31 97 1000"),
    ("{{ true }} {{ false }} {{ print nil }}", "true false <nil>"),
    ("{{ .Missing }}|{{ $ }}|{{ . }}", "<no value>|<no value>|<no value>"),
    (
        r#"{{ service "web" }}"#,
        "[map[Address:10.0.0.1 Port:80 Tags:[primary http]] map[Address:10.0.0.2 Port:8080 Tags:[]]]",
    ),
    (
        r#"{{ 3.0 }} {{ 1000000.0 }} {{ 0.00001 }} {{ parseJSON `[1,"a",null,true,{"k":2.5}]` }}"#,
        "3 1e+06 1e-05 [1 a <nil> true map[k:2.5]]",
    ),
    // trim markers
    ("a  {{- \"b\" -}}  \n c", "abc"),
    ("{{/* comment */}}x{{- /* c2 */ -}} \n y", "xy"),
    ("line1\n{{- /* gone */}}\nline2", "line1\nline2"),
    ("{{ if false }}\n  a\n{{- else -}}\n  b\n{{ end -}}\n", "b\n"),
    ("{{-3}}", "-3"),
    // pipelines, parens, fields, variables
    (r#"{{ "a,b" | split "," | join "+" }}"#, "a+b"),
    (r#"{{ split "," " a,b " | len }} {{ split "," "" | len }}"#, "2 0"),
    (r#"{{ (key "x") | toUpper }} {{ len (split "," "a,b,c") }}"#, "HELLO 3"),
    (r#"{{ (index (service "web") 0).Address }} {{ (index (service "web") 1).Tags }}"#, "10.0.0.1 []"),
    (r#"{{ (parseJSON `{"a":{}}`).a.b.c }}"#, "<no value>"),
    (r#"{{ "c" | echo "a" "b" }}"#, "[a b c]"),
    ("{{ len timestamp }}", "20"),
    (r#"{{ $x := key "x" }}{{ $x }}-{{ $x = "bye" }}{{ $x }}"#, "hello-bye"),
    (r#"{{ $s := index (service "web") 0 }}{{ $s.Address }}:{{ $s.Port }}"#, "10.0.0.1:80"),
    ("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}", "21"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
    ("{{ $x := 9 }}{{ range 3 }}{{ $x = . }}{{ end }}{{ $x }} {{ $ }}", "2 <no value>"),
    (
        r#"{{ index "abc" 1 }} {{ printf "%3v" (split "," "a,b") }} {{ printf "%T %T" 1 (service "web") }}"#,
        "98 [  a   b] int []interface {}",
    ),
    ("{{ printf \"%s-%s\"\n  \"a\"\n  \"b\" }}", "a-b"),
    // if / with
    ("{{ if eq 1 2 }}a{{ else if eq 2 2 }}b{{ else }}c{{ end }}", "b"),
    (r#"{{ if "" }}a{{ else }}b{{ end }}{{ if 0 }}x{{ end }}{{ if service "web" }}y{{ end }}"#, "by"),
    (
        r#"{{ if parseJSON "[]" }}x{{ else }}e{{ end }}{{ if parseJSON "{}" }}x{{ else }}e{{ end }}{{ if 0.0 }}x{{ else }}z{{ end }}"#,
        "eez",
    ),
    (r#"{{ if $v := key "x" }}{{ $v }}{{ else }}no{{ end }}"#, "hello"),
    (r#"{{ with $v := key "x" }}{{ $v }}/{{ . }}{{ end }}"#, "hello/hello"),
    (r#"{{ with key "empty" }}x{{ else }}none{{ end }}"#, "none"),
    (r#"{{ with key "empty" }}x{{ else with key "x" }}{{ . }}{{ end }}"#, "hello"),
    // range
    (r#"{{ range $i, $e := split "," "a,b" }}{{ $i }}={{ $e }};{{ end }}"#, "0=a;1=b;"),
    (r#"{{ range $k, $v := parseJSON `{"b":2,"a":1}` }}{{ $k }}{{ $v }}{{ end }}"#, "a1b2"),
    (r#"{{ range $e := split "," "a,b" }}{{ $e }}{{ end }}"#, "ab"),
    (r#"{{ range split "," "" }}x{{ else }}empty{{ end }}"#, "empty"),
    (r#"{{ range split "," "a,b" }}[{{ . }}]{{ end }}"#, "[a][b]"),
    ("{{ range 3 }}{{ . }}{{ end }}{{ range .Nothing }}x{{ else }}-{{ end }}", "012-"),
    (
        "{{ range service \"web\" }}server {{ .Address }}:{{ .Port }};\n{{ end }}",
        "server 10.0.0.1:80;\nserver 10.0.0.2:8080;\n",
    ),
    (
        "{{ range $name, $s := services }}{{ $name }}:{{ range $s.Tags }}{{ . }},{{ end }};{{ end }}",
        "db:primary,;web:http,v1,;",
    ),
    ("{{ range tree \"cfg\" }}{{ .Key }}={{ .Value }}\n{{ end }}", "a=1\nb/c=2\n"),
    (
        r#"{{ range $i, $e := split "," "a,b,c,d" }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $e "d" }}{{ break }}{{ end }}{{ $e }}{{ end }}"#,
        "ac",
    ),
    ("{{ range $i, $e := split \",\" \"a,b\" }}{{ $x := $e }}{{ $x }}{{ end }}", "ab"),
    // built-ins
    ("{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ and 1 2 }} {{ or 0 false }} {{ not 0 }}", "0 x 2 false true"),
    ("{{ and false (fail) }} {{ or true (fail) }} {{ 0 | and 1 }}", "false true 0"),
    (
        r#"{{ eq 1 2 1 }} {{ ne "a" "b" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1 1.5 }} {{ eq 80 80.0 }}"#,
        "true true true true true false true",
    ),
    (
        r#"{{ len "héllo" }} {{ index (service "web") 1 "Port" }} {{ index (parseJSON `{"a":1}`) "b" }} {{ slice (split "," "a,b,c") 1 }}"#,
        "6 8080 <no value> [b c]",
    ),
    (
        r#"{{ printf "%s|%d|%v|%q|%f|%.2f|%x|%5s|%-5s|%%" "a" 42 true "q" 1.5 3.14159 255 "r" "l" }}"#,
        r#"a|42|true|"q"|1.500000|3.14|ff|    r|l    |%"#,
    ),
    (
        r#"{{ printf "%5.1f|%05d|%+d|%x|%X|%o|%c|%t|%e|%g" 3.14159 42 5 "hi" 255 8 65 true 1234.5678 0.000012 }}"#,
        "  3.1|00042|+5|6869|FF|10|A|true|1.234568e+03|1.2e-05",
    ),
    (
        r#"{{ printf "%d %s" "x" }}|{{ printf "%d" 1 2 }}|{{ printf "%v %s" (split "," "a,b") (parseJSON `{"k":"v"}`) }}"#,
        "%!d(string=x) %!s(MISSING)|1%!(EXTRA int=2)|[a b] map[k:v]",
    ),
    (
        r#"{{ print "a" 1 2 "b" }}|{{ println "a" 1 }}|{{ printf "%q" "a\"b\n" }}"#,
        "a1 2b|a 1\n|\"a\\\"b\\n\"",
    ),
    (r#"{{ parseJSON `{"b":[1,2],"a":"<x>"}` | toJSON }}"#, r#"{"a":"\u003cx\u003e","b":[1,2]}"#),
    (r#"{{ toJSONPretty (parseJSON `{"a":[1],"b":{}}`) }}"#, "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"),
    (
        r#"{{ replaceAll "." "-" "a.b.c" }} {{ toLower "AbC" }} {{ toUpper "abc" }} {{ toTitle "hello big_world-x" }} [{{ trimSpace "  x \n" }}]"#,
        "a-b-c abc ABC Hello Big_world-X [x]",
    ),
    (
        r#"{{ range service "web" }}{{ if .Tags | contains "http" }}{{ .Address }}{{ end }}{{ end }} {{ contains "ell" "hello" }} {{ in (split "," "a,b") "b" }}"#,
        "10.0.0.1 true true",
    ),
    (
        r#"{{ $t := (index (service "web") 0).Tags }}{{ $t | containsAny (split "," "x,http") }} {{ $t | containsAll (split "," "x,http") }}"#,
        "true false",
    ),
    (r#"[{{ env "SEKISHO_TEMPLATE_TEST_SURELY_UNSET" }}]"#, "[]"),
];

/// (template, expected substring of the error)
const ERRORS: &[(&str, &str)] = &[
    ("{{ .X } }}", r#"t:1:7: unexpected "}" in operand"#),
    ("{{ foo 1 }}", r#"t:1:4: function "foo" not defined"#),
    ("{{ if true }}a", "t:1:15: unexpected EOF: missing {{end}} for {{if}} at 1:1"),
    ("{{ range 1 }}{{ else }}", "t:1:24: unexpected EOF"),
    ("a\n{{ .X", "t:2:1: unclosed action"),
    ("{{ end }}", "t:1:1: unexpected {{end}}"),
    ("{{ if true }}{{ end }}{{ end }}", "t:1:23: unexpected {{end}}"),
    ("{{ else }}", "t:1:1: unexpected {{else}}"),
    ("{{ $x }}", r#"t:1:4: undefined variable "$x""#),
    ("{{ $x = 1 }}", r#"t:1:4: undefined variable "$x""#),
    ("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}", r#"t:1:39: undefined variable "$x""#),
    ("{{ \"abc }}", "t:1:4: unterminated quoted string"),
    ("{{ `abc }}", "t:1:4: unterminated raw quoted string"),
    (r#"{{ "\q" }}"#, "t:1:4: invalid escape"),
    ("{{ 12ab }}", r#"t:1:4: bad number syntax: "12ab""#),
    ("{{ .X @ }}", "t:1:7: unrecognized character in action: U+0040 '@'"),
    ("{{ /* bad */ }}", "t:1:4: unrecognized character in action: U+002F '/'"),
    ("{{/* x */ y }}", "t:1:1: comment ends before closing delimiter"),
    ("{{/* x", "t:1:1: unclosed comment"),
    ("{{ 1 | 2 }}", "t:1:8: non executable command in pipeline stage 2"),
    ("{{ }}", "t:1:4: missing value for command"),
    ("{{ key \"x\" | }}", "t:1:14: missing value for command"),
    ("{{ if }}{{ end }}", "t:1:7: missing value for if"),
    ("{{ break }}", "t:1:1: {{break}} outside {{range}}"),
    ("{{ range 1 }}{{ else }}{{ continue }}{{ end }}", "t:1:24: {{continue}} outside {{range}}"),
    ("{{ (1 }}", "t:1:7: unclosed left paren"),
    ("{{ 1) }}", r#"t:1:5: unexpected ")" in command"#),
    ("{{ define \"x\" }}{{ end }}", "t:1:4: {{define}} is not supported"),
    ("{{ if true }}{{ else }}{{ else }}{{ end }}", "t:1:24: expected end; found {{else}}"),
    ("{{ $a, $b := 1 }}", "t:1:6: too many declarations in command"),
    ("{{ with $x := 1 }}{{ end }}{{ $x }}", r#"t:1:31: undefined variable "$x""#),
    ("{{ \"x\".Y }}", r#"t:1:4: unexpected . after term "\"x\".Y""#),
    // render errors carry the action's position
    ("x\n  {{ key \"boom\" }}", "t:2:3: error calling key: no such key"),
    ("{{ fail }}", "t:1:1: error calling fail: boom"),
    ("{{ split \",\" }}", "t:1:1: wrong number of args for split: want 2 got 1"),
    ("{{ and }}", "wrong number of args for and: want at least 1 got 0"),
    ("{{ index (split \",\" \"a\") 5 }}", "t:1:1: error calling index: index out of range: 5"),
    ("{{ (key \"x\").Foo }}", "t:1:1: can't evaluate field Foo in type string"),
    ("{{ range service \"web\" }}\n  {{ .Port.X }}\n{{ end }}", "t:2:3: can't evaluate field X in type int"),
    ("ab{{ range key \"x\" }}{{ end }}", "t:1:3: range can't iterate over hello"),
    ("{{ \"x\" | .Foo }}", "can't give argument to non-function .Foo"),
    ("{{ nil }}", "t:1:1: nil is not a command"),
    ("{{ eq \"a\" 1 }}", "error calling eq: incompatible types for comparison"),
    ("{{ lt true false }}", "error calling lt: invalid type for comparison"),
    ("{{ toUpper 1 }}", "wrong type for value; expected string; got int"),
    ("{{ len 3 }}", "error calling len: len of type int"),
    ("{{ parseJSON \"{\" }}", "error calling parseJSON: EOF while parsing"),
    ("{{ if true }}{{ if (fail) }}{{ end }}{{ end }}", "t:1:14: error calling fail: boom"),
];

#[test]
fn renders_each_construct() {
    for (text, want) in OUTPUTS {
        assert_eq!(render(text).as_deref(), Ok(*want), "template: {text}");
    }
}

#[test]
fn errors_name_the_position() {
    for (text, want) in ERRORS {
        match render(text) {
            Ok(out) => panic!("template {text:?} rendered {out:?}, want error {want:?}"),
            Err(e) => assert!(e.contains(want), "template {text:?}: got {e:?}, want {want:?}"),
        }
    }
}

#[test]
fn error_fields_and_display() {
    let e = Template::parse("web.ctmpl", "ok\n  {{ nope }}", &[]).unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.col), ("web.ctmpl", 2, 6));
    assert_eq!(e.to_string(), r#"web.ctmpl:2:6: function "nope" not defined"#);
}

#[test]
fn externals_are_known_only_when_listed() {
    assert!(Template::parse("t", "{{ key \"x\" }}", &["key"]).is_ok());
    assert!(Template::parse("t", "{{ key \"x\" }}", &[]).is_err());
    // built-ins win over an external of the same name
    let t = Template::parse("t", "{{ toUpper \"a\" }}", &["toUpper"]).unwrap();
    assert_eq!(t.render(&Fake).unwrap(), "A");
}

#[test]
fn env_reads_the_process_environment() {
    let (name, value) = std::env::vars().next().expect("some environment variable");
    let out = render(&format!("{{{{ env {name:?} }}}}")).unwrap();
    assert_eq!(out, value);
}

#[test]
fn timestamp_formats_now_in_utc() {
    let out = render(r#"{{ timestamp }}|{{ timestamp "2006-01-02" }}|{{ timestamp "unix" }}"#).unwrap();
    let parts: Vec<&str> = out.split('|').collect();
    assert_eq!(parts[0].len(), 20, "{out}");
    assert!(parts[0].ends_with('Z') && parts[0].starts_with(parts[1]), "{out}");
    assert!(parts[2].parse::<u64>().unwrap() > 1_700_000_000);
}

#[test]
fn clock_formats_go_layouts() {
    assert_eq!(clock::format(0, 0, clock::RFC3339), "1970-01-01T00:00:00Z");
    let t = 1_709_210_096; // 2024-02-29 12:34:56 UTC, a Thursday, day 60
    assert_eq!(
        clock::format(
            t,
            123_456_789,
            "Mon Monday Jan January _2 2 02 1 01 06 2006 15 03 3 04 4 05 5 PM pm MST -07:00 002"
        ),
        "Thu Thursday Feb February 29 29 29 2 02 24 2024 12 12 12 34 34 56 56 PM pm UTC +00:00 060"
    );
    assert_eq!(clock::format(t, 123_456_789, "15:04:05.000 .999999 ,00"), "12:34:56.123 .123456 ,12");
    assert_eq!(clock::format(t, 0, "05.999|2006-01-02T15:04:05Z07:00"), "56|2024-02-29T12:34:56Z");
    assert_eq!(clock::format(951_829_509, 0, "Mon 2006-01-02 03:04PM"), "Tue 2000-02-29 01:05PM");
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}x{}", "{{ if true }}".repeat(100), "{{ end }}".repeat(100));
    assert_eq!(render(&ok).unwrap(), "x");
    let deep = format!("{}x{}", "{{ if true }}".repeat(101), "{{ end }}".repeat(101));
    let e = render(&deep).unwrap_err();
    assert!(e.contains("t:1:1301: exceeded maximum nesting depth of 100"), "{e}");
    let ok = format!("{{{{ {}1{} }}}}", "(".repeat(100), ")".repeat(100));
    assert_eq!(render(&ok).unwrap(), "1");
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(render(&parens).unwrap_err().contains("exceeded maximum nesting depth"));
    let chain = format!("{{{{ if false }}}}{}{{{{ end }}}}", "{{ else if false }}".repeat(200));
    assert!(render(&chain).unwrap_err().contains("exceeded maximum nesting depth"));
}

#[test]
fn output_size_is_bounded() {
    let e = render(r#"{{ range 20 }}{{ printf "%1000000s" "" }}{{ end }}"#).unwrap_err();
    assert!(e.contains("t:1:15: output exceeds the maximum of 16777216 bytes"), "{e}");
    let e = render(r#"{{ $x := "ab" }}{{ range 40 }}{{ $x = printf "%s%s" $x $x }}{{ end }}"#).unwrap_err();
    assert!(e.contains("error calling printf: result exceeds 16777216 bytes"), "{e}");
    let e = render(r#"{{ $x := printf "%1000000s" "" }}{{ replaceAll " " "xxxxxxxxxxxxxxxxxxxx" $x }}"#)
        .unwrap_err();
    assert!(e.contains("error calling replaceAll: result exceeds"), "{e}");
    assert_eq!(render(r#"{{ printf "%2000000s" "" }}"#).unwrap(), "%!(BADWIDTH)");
}

#[test]
fn range_iterations_are_bounded() {
    let e = render("{{ range 1000 }}{{ range 1001 }}{{ end }}{{ end }}").unwrap_err();
    assert!(e.contains("t:1:17: range exceeded the maximum of 1000000 iterations"), "{e}");
}

#[test]
fn a_template_renders_repeatedly_with_fresh_variables() {
    let t = Template::parse("t", "{{ $x := key \"x\" }}{{ $x }}", EXTERNALS).unwrap();
    assert_eq!(t.render(&Fake).unwrap(), "hello");
    assert_eq!(t.render(&Fake).unwrap(), "hello");
}

/// Pieces that make syntactically interesting templates when glued at random.
const PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/*",
    "*/}}",
    " ",
    "\n",
    "if ",
    "else ",
    "end",
    "range ",
    "with ",
    "break",
    "continue",
    "$x",
    "$",
    ":=",
    "=",
    ",",
    "(",
    ")",
    "|",
    ".",
    ".A",
    ".B",
    "\"s\"",
    "`r`",
    "'c'",
    "1",
    "-2",
    "1.5e3",
    "0x",
    "nil",
    "true",
    "key",
    "printf",
    "\"%d\"",
    "len",
    "index",
    "and",
    "or",
    "eq",
    "}",
    "{",
    "\\",
    "\"",
    "é",
    "service \"web\"",
    "split \",\" ",
    "toJSON",
];

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(t) = Template::parse("t", &text, EXTERNALS) {
            let _ = t.render(&Fake);
        }
    }

    #[test]
    fn parse_and_render_never_panic_on_token_soup(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let text: String = idx.into_iter().map(|i| PIECES[i]).collect();
        if let Ok(t) = Template::parse("t", &text, EXTERNALS) {
            let _ = t.render(&Fake);
        }
    }
}
