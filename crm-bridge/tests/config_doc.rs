//! docs/crm-connectors.md is the one description of the `crm:` block. This
//! test holds it to the code: the key table lists exactly the keys
//! `CrmConfig` and its outbox accept, the defaults it states are the ones
//! `CrmConfig::default()` gives, and every YAML example on the page is a
//! configuration the parser accepts.
//!
//! Accepted keys are found by asking the parser: an unknown key is refused
//! with serde's "unknown field `…`, expected one of …" list, so there is no
//! second description of the structs to keep in step.

use std::collections::BTreeSet;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use voxbridge_crm::CrmConfig;

const DOC: &str = include_str!("../../docs/crm-connectors.md");
const PROBE: &str = "__not_a_key";

/// The rows of the first `key | default | meaning` table: the code spans of
/// the key cell and of the default cell.
fn key_table() -> Vec<(Vec<String>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    let mut in_head = false;
    let mut header: Vec<String> = Vec::new();
    let mut row: Vec<Vec<String>> = Vec::new();
    let mut cell: Option<Vec<String>> = None;
    let mut head_text = String::new();
    for event in Parser::new_ext(DOC, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => {
                in_table = true;
                header.clear();
            }
            Event::End(TagEnd::Table) => {
                if header == ["key", "default", "meaning"] {
                    return rows;
                }
                rows.clear();
                in_table = false;
            }
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableCell) => {
                cell = Some(Vec::new());
                head_text.clear();
            }
            Event::End(TagEnd::TableCell) => {
                if in_head {
                    header.push(head_text.trim().to_string());
                } else if let Some(c) = cell.take() {
                    row.push(c);
                }
            }
            Event::End(TagEnd::TableRow) if in_table && !in_head => {
                let mut cells = std::mem::take(&mut row).into_iter();
                let key = cells.next().unwrap_or_default();
                let default = cells.next().unwrap_or_default();
                rows.push((key, default));
            }
            Event::Text(t) if in_head => head_text.push_str(&t),
            Event::Code(c) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push(c.to_string());
                }
            }
            _ => {}
        }
    }
    panic!("docs/crm-connectors.md has no `key | default | meaning` table");
}

/// The keys the parser accepts at `prefix` (YAML that nests a probe there).
fn accepted(yaml_around_probe: &str) -> BTreeSet<String> {
    let err = match CrmConfig::from_yaml(yaml_around_probe, "probe") {
        Ok(_) => panic!("the probe key was accepted: {yaml_around_probe}"),
        Err(e) => e.to_string(),
    };
    let list = err
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("no key list in {err:?}"));
    // serde_saphyr lists them bare: "expected one of a, b, c".
    let keys: BTreeSet<String> = list
        .split(',')
        .map(|k| k.trim().trim_matches('`').to_string())
        .filter(|k| !k.is_empty())
        .collect();
    assert!(!keys.is_empty(), "no keys in {err:?}");
    keys
}

/// `a.b` / `c` written as documented keys, expanded to full key names:
/// `outbox.backoff_base` / `backoff_max` means two keys under `outbox`.
fn documented_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (key_cells, _) in key_table() {
        let mut parent = String::new();
        for k in key_cells {
            let k = k.split(".<").next().unwrap_or_default().to_string();
            if let Some((p, _)) = k.rsplit_once('.') {
                parent = format!("{p}.");
                keys.insert(k);
            } else {
                keys.insert(format!("{parent}{k}"));
            }
        }
    }
    keys
}

#[test]
fn the_key_table_lists_every_accepted_key_and_no_other() {
    let top = accepted(&format!("{PROBE}: 1\n"));
    let outbox: BTreeSet<String> = accepted(&format!("outbox:\n  {PROBE}: 1\n"))
        .into_iter()
        .map(|k| format!("outbox.{k}"))
        .collect();
    let storage: BTreeSet<String> = accepted(&format!("storage:\n  {PROBE}: 1\n"))
        .into_iter()
        .map(|k| format!("storage.{k}"))
        .collect();
    let mut code: BTreeSet<String> = top
        .into_iter()
        .filter(|k| k != "outbox" && k != "storage")
        .collect();
    code.extend(outbox);
    code.extend(storage);
    let documented = documented_keys();
    let undocumented: Vec<_> = code.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/crm-connectors.md key table: accepted but not documented {undocumented:?}; \
         documented but refused {unknown:?}"
    );
}

/// Builds YAML setting `key` (dotted) to `value`.
fn nested(key: &str, value: &str) -> String {
    let mut yaml = String::new();
    let parts: Vec<&str> = key.split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        yaml.push_str(&"  ".repeat(depth));
        if depth + 1 == parts.len() {
            yaml.push_str(&format!("{part}: {value}\n"));
        } else {
            yaml.push_str(&format!("{part}:\n"));
        }
    }
    yaml
}

#[test]
fn the_stated_defaults_are_the_code_defaults() {
    let default = format!("{:?}", CrmConfig::default());
    let mut checked = 0;
    for (key_cells, default_cells) in key_table() {
        // Rows with one key and one default span: "`outbox.path` | `var/…`".
        // Rows whose default is prose (per-operation budgets, "one
        // embedded system") are described, not a single value.
        let ([key], [value]) = (key_cells.as_slice(), default_cells.as_slice()) else {
            continue;
        };
        if key.contains('<') {
            continue;
        }
        let yaml = nested(key, value);
        let parsed = CrmConfig::from_yaml(&yaml, "default")
            .unwrap_or_else(|e| panic!("documented default of {key} ({value}): {e}"));
        assert_eq!(
            format!("{parsed:?}"),
            default,
            "docs/crm-connectors.md says {key} defaults to {value}, the code disagrees"
        );
        checked += 1;
    }
    // default_country, cache, retry, breaker, outbox path/attempts/…
    assert!(checked >= 8, "only {checked} defaults were checked");
}

#[test]
fn every_yaml_example_on_the_page_parses() {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new(DOC) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) if &*lang == "yaml" => {
                current = Some(String::new())
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    assert!(blocks.len() >= 8, "only {} YAML examples", blocks.len());
    let refused: Vec<String> = blocks
        .iter()
        .filter_map(|block| {
            CrmConfig::from_yaml(block, "docs/crm-connectors.md")
                .err()
                .map(|e| format!("{e}\n{block}"))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "YAML examples that do not parse:\n{}",
        refused.join("\n")
    );
}
