//! docs/configuration.md is the one list of configuration keys and their
//! defaults. This test holds it to the code: every key the config structs
//! accept is documented, every documented key is accepted, every documented
//! default is what `Config::default()` gives, and the environment-variable
//! table is `ENV_OVERRIDES`.
//!
//! The keys the structs accept are found by asking the parser: an unknown key
//! under a struct is refused with serde's "unknown field `…`, expected one of
//! …" list, so probing each level with a made-up key walks the whole tree
//! without a second description of the structs.

use std::collections::BTreeMap;
use std::path::Path;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use voxbridge_engine::config::{Config, ENV_OVERRIDES};

const DOC: &str = include_str!("../../docs/configuration.md");
const PROBE: &str = "__not_a_key";

/// One table cell: its plain text and its code spans.
#[derive(Debug, Default, Clone)]
struct Cell {
    text: String,
    code: Vec<String>,
}

/// Every table in a Markdown text: header cells, then body rows.
fn tables(markdown: &str) -> Vec<(Vec<Cell>, Vec<Vec<Cell>>)> {
    let mut out = Vec::new();
    let mut head: Vec<Cell> = Vec::new();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut cell: Option<Cell> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => {
                head.clear();
                rows.clear();
            }
            Event::Start(Tag::TableCell) => cell = Some(Cell::default()),
            Event::End(TagEnd::TableCell) => row.extend(cell.take()),
            Event::End(TagEnd::TableHead) => head = std::mem::take(&mut row),
            Event::End(TagEnd::TableRow) => rows.push(std::mem::take(&mut row)),
            Event::End(TagEnd::Table) => {
                out.push((std::mem::take(&mut head), std::mem::take(&mut rows)))
            }
            Event::Code(code) => {
                if let Some(c) = cell.as_mut() {
                    c.text.push_str(&code);
                    c.code.push(code.to_string());
                }
            }
            Event::Text(text) => {
                if let Some(c) = cell.as_mut() {
                    c.text.push_str(&text);
                }
            }
            _ => {}
        }
    }
    out
}

/// What the documentation says about one key.
#[derive(Debug)]
enum Default_ {
    /// Must be given (a field of a list item without a default).
    Required,
    /// The default, written as YAML.
    Yaml(String),
}

/// The key tables (header `key | default | meaning`): key → default.
fn documented_keys() -> BTreeMap<String, Default_> {
    let mut keys = BTreeMap::new();
    for (head, rows) in tables(DOC) {
        let names: Vec<&str> = head.iter().map(|c| c.text.trim()).collect();
        if names != ["key", "default", "meaning"] {
            continue;
        }
        for row in rows {
            let key = match row[0].code.as_slice() {
                [key] => key.clone(),
                other => panic!("a key cell holds exactly one `key`, not {other:?}"),
            };
            let default = if row[1].text.trim() == "required" {
                Default_::Required
            } else {
                match row[1].code.first() {
                    Some(yaml) => Default_::Yaml(yaml.clone()),
                    None => panic!("`{key}`: the default cell starts with the value in backticks"),
                }
            };
            assert!(
                keys.insert(key.clone(), default).is_none(),
                "`{key}` is documented twice"
            );
        }
    }
    keys
}

/// Block YAML setting the dotted key `a.b.c` to `value` (inline YAML).
fn yaml_map(dotted: &str, value: &str) -> String {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let pad = "  ".repeat(i);
        if i + 1 == parts.len() {
            out.push_str(&format!("{pad}{part}: {value}\n"));
        } else {
            out.push_str(&format!("{pad}{part}:\n"));
        }
    }
    out
}

/// YAML setting the list `list` to one item with these fields.
fn yaml_item(list: &str, fields: &[(String, String)]) -> String {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    yaml_map(list, &format!("[{{{}}}]", fields.join(", ")))
}

/// YAML that puts `value` at `key`, which may be a field of a list item
/// (`a.b[].c`).
fn yaml_at(key: &str, value: &str) -> String {
    match key.split_once("[].") {
        Some((list, field)) => yaml_item(list, &[(field.to_string(), value.to_string())]),
        None => yaml_map(key, value),
    }
}

fn parse(yaml: &str) -> Result<Config, String> {
    Config::parse(Path::new("probe.yaml"), yaml).map_err(|e| e.to_string())
}

/// The fields serde lists when it refuses an unknown one, or None when the
/// value at this place is not a struct.
fn fields_of(yaml_with_probe: &str) -> Option<Vec<String>> {
    let err = parse(yaml_with_probe).err()?;
    let (_, rest) = err.split_once(&format!("unknown field `{PROBE}`, "))?;
    if rest.starts_with("there are no fields") {
        return Some(Vec::new());
    }
    let list = rest
        .strip_prefix("expected one of ")
        .or_else(|| rest.strip_prefix("expected "))?;
    Some(
        list.split(", ")
            .map(|f| f.trim().trim_matches('`').to_string())
            .collect(),
    )
}

/// Every key the structs accept, as dotted paths (`a.b[].c` inside lists of
/// structs), each with whether it has fields of its own (a section, or a
/// list of structs). Maps and scalars are leaves.
fn accepted_keys() -> BTreeMap<String, bool> {
    let probe = format!("{{{PROBE}: 1}}");
    let list_probe = format!("[{{{PROBE}: 1}}]");
    let mut keys = BTreeMap::new();
    // Prefixes still to walk, with their fields.
    let top = fields_of(&format!("{PROBE}: 1\n")).expect("the top level is a struct");
    let mut todo: Vec<(String, Vec<String>)> = vec![(String::new(), top)];
    while let Some((prefix, fields)) = todo.pop() {
        for field in fields {
            let key = if prefix.is_empty() {
                field
            } else {
                format!("{prefix}.{field}")
            };
            let nested = fields_of(&yaml_at(&key, &probe));
            let in_list = if key.contains("[].") {
                None
            } else {
                fields_of(&yaml_map(&key, &list_probe))
            };
            keys.insert(key.clone(), nested.is_some() || in_list.is_some());
            if let Some(f) = nested {
                assert!(
                    !key.contains("[]."),
                    "`{key}`: sections inside list items are not walked yet"
                );
                todo.push((key, f));
            } else if let Some(f) = in_list {
                todo.push((format!("{key}[]"), f));
            }
        }
    }
    keys
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let documented = documented_keys();
    let accepted = accepted_keys();
    // A section is documented by its fields; a list of structs may be
    // documented itself (its default) as well as by its items' fields.
    let undocumented: Vec<_> = accepted
        .iter()
        .filter(|(k, nested)| !**nested && !documented.contains_key(*k))
        .map(|(k, _)| k)
        .collect();
    let unknown: Vec<_> = documented
        .keys()
        .filter(|k| !accepted.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys the engine accepts but docs/configuration.md does not list: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md lists but the engine refuses: {unknown:?}"
    );
    assert!(accepted.len() > 60, "the walk found only {accepted:?}");
}

#[test]
fn documented_defaults_are_the_code_defaults() {
    let keys = documented_keys();
    // A list item needs its required fields; any string will do for them.
    let item_base = |list: &str| -> Vec<(String, String)> {
        keys.iter()
            .filter_map(|(k, d)| {
                let field = k.strip_prefix(&format!("{list}[]."))?;
                matches!(d, Default_::Required).then(|| (field.to_string(), "x".to_string()))
            })
            .collect()
    };
    let mut wrong = Vec::new();
    for (key, default) in &keys {
        let Default_::Yaml(value) = default else {
            continue;
        };
        // A key inside an optional block (`sip.tls`, default `null`) has its
        // default only once the block is given with its required keys.
        let in_optional_block = key.rsplit_once('.').is_some_and(
            |(parent, _)| matches!(keys.get(parent), Some(Default_::Yaml(d)) if d == "null"),
        );
        if in_optional_block {
            continue;
        }
        let mut value = value.replace("<version>", env!("CARGO_PKG_VERSION"));
        // The grammar engine defaults to on only where it can start.
        if key == "speech.grammar" && !cfg!(feature = "sphinx") {
            value = "false".into();
        }
        let (with, without) = match key.split_once("[].") {
            Some((list, field)) => {
                let base = item_base(list);
                let mut item = base.clone();
                item.push((field.to_string(), value.clone()));
                (yaml_item(list, &item), yaml_item(list, &base))
            }
            None => (yaml_map(key, &value), String::new()),
        };
        let expected = parse(&without).unwrap_or_else(|e| panic!("{without}: {e}"));
        match parse(&with) {
            Ok(got) if got == expected => {}
            Ok(_) => wrong.push(format!(
                "`{key}`: documented default `{value}` is not the code's"
            )),
            Err(e) => wrong.push(format!(
                "`{key}`: documented default `{value}` does not parse: {e}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn environment_table_is_the_engines() {
    let table = tables(DOC)
        .into_iter()
        .find(|(head, _)| head.first().is_some_and(|c| c.text.trim() == "variable"))
        .expect("the environment variable table");
    let documented: BTreeMap<String, String> = table
        .1
        .iter()
        .map(|row| (row[0].code[0].clone(), row[1].code[0].clone()))
        .collect();
    let engine: BTreeMap<String, String> = ENV_OVERRIDES
        .iter()
        .map(|(var, key)| (var.to_string(), key.to_string()))
        .collect();
    assert_eq!(documented, engine);
}

#[test]
fn a_wrong_default_would_be_caught() {
    // The comparisons above must be able to fail: 501 is not the default.
    assert_ne!(
        parse(&yaml_map("calls.max_calls", "501")).unwrap(),
        Config::default()
    );
    let base = [
        ("registrar".to_string(), "x".to_string()),
        ("username".to_string(), "x".to_string()),
    ];
    let mut with = base.to_vec();
    with.push(("expires_secs".into(), "301".into()));
    assert_ne!(
        parse(&yaml_item("registration.accounts", &with)).unwrap(),
        parse(&yaml_item("registration.accounts", &base)).unwrap()
    );
    // And an unknown key is refused with the list the walk reads.
    assert!(fields_of(&yaml_map("sip.not_a_key_either", "1")).is_none());
    assert!(fields_of(&yaml_map(&format!("sip.{PROBE}"), "1"))
        .is_some_and(|f| f.contains(&"listen".to_string())));
}
