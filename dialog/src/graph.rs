//! The flow as a picture for review: Graphviz DOT and Mermaid. Every state
//! is a node shaped by its action; every way between states is an edge
//! labelled with the outcome, intent, key or condition that takes it.
//! Handlers that apply at every question start from an "any question" node.

use std::fmt::Write;

use crate::analysis::{self, Action, EdgeKind, Unit};
use crate::format::{State, REPEAT};
use crate::load::Loaded;

/// The output formats of `voxbridge graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    /// DOT rendered by Graphviz's `dot` (the CLI runs it).
    Svg,
}

impl GraphFormat {
    pub fn parse(s: &str) -> Option<GraphFormat> {
        match s.to_ascii_lowercase().as_str() {
            "dot" | "gv" => Some(GraphFormat::Dot),
            "mermaid" | "mmd" => Some(GraphFormat::Mermaid),
            "svg" => Some(GraphFormat::Svg),
            _ => None,
        }
    }
}

/// A node id that both formats accept.
fn node_id(unit: &Unit, state: &str) -> String {
    let raw = match unit.flow {
        Some(f) => format!("{f}__{state}"),
        None => state.to_string(),
    };
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Mermaid reserves a few words as ids.
    if matches!(
        id.as_str(),
        "end" | "graph" | "subgraph" | "style" | "class"
    ) || id.starts_with(|c: char| c.is_ascii_digit())
    {
        id.insert_str(0, "s_");
    }
    // Names that differ only in non-ASCII characters must not collide.
    if !raw.is_ascii() {
        let h = raw
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let _ = write!(id, "_{h:x}");
    }
    id
}

/// What a state does, in a few words, for its node.
fn summary(state: &State) -> String {
    let short = |v: &[String]| {
        if v.len() > 4 {
            format!("{}, …", v[..4].join(", "))
        } else {
            v.join(", ")
        }
    };
    match Action::of(state) {
        Action::None if state.say.is_some() => "say".into(),
        Action::None => "branch".into(),
        Action::Ask(a) => match (&a.slot, analysis::slot_type(a)) {
            (Some(slot), Some(t)) => format!("ask {slot} ({})", t.name()),
            _ => format!("ask: {}", short(&a.intents)),
        },
        Action::Lookup(l) => format!("lookup {} → {}", l.name, l.into),
        Action::Ticket(t) => format!("ticket → {}", t.queue),
        Action::Transfer(t) => format!("transfer → {}", t.to),
        Action::Hangup(d) => format!("hangup: {d}"),
        Action::Flow(f) => format!("flow {f}"),
        Action::Return(v) => format!("return {v}"),
    }
}

fn edge_label(kind: &EdgeKind, cond: Option<&str>) -> String {
    let base = match kind {
        EdgeKind::Next => String::new(),
        EdgeKind::On(o) => o.clone(),
        EdgeKind::NoInput => "no input".into(),
        EdgeKind::NoMatch => "no match".into(),
        EdgeKind::Global(g) => g.clone(),
    };
    match (base.is_empty(), cond) {
        (_, None) => base,
        (true, Some(c)) => format!("if {c}"),
        (false, Some(c)) => format!("{base} if {c}"),
    }
}

/// The flow's nodes and edges, format-neutral: what DOT and Mermaid are
/// written from, and what the console lays out as SVG ([`model`]).
#[derive(Debug, Clone)]
pub struct Graph {
    /// (unit title or None, nodes)
    pub clusters: Vec<(Option<String>, Vec<Node>)>,
    pub edges: Vec<GEdge>,
    /// The node the call starts at.
    pub start: String,
    /// Whether the "any question" node ([`ANY`]) has edges.
    pub has_global: bool,
}

/// One state.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// The state's name, a newline, what it does.
    pub label: String,
    pub shape: Shape,
}

/// What a state does, as its node's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    Ask,
    Lookup,
    Ticket,
    Transfer,
    Hangup,
    Flow,
    Return,
}

/// One way between states.
#[derive(Debug, Clone)]
pub struct GEdge {
    pub from: String,
    pub to: String,
    pub label: String,
    /// No input, no match and handlers of every question.
    pub dashed: bool,
}

/// The id of the "any question" node global handlers start from.
pub const ANY: &str = "__any";

/// The flow as nodes and edges.
pub fn model(loaded: &Loaded) -> Graph {
    build(loaded)
}

fn build(loaded: &Loaded) -> Graph {
    let script = &loaded.script;
    let units = analysis::units(loaded);
    let mut g = Graph {
        clusters: Vec::new(),
        edges: Vec::new(),
        start: String::new(),
        has_global: false,
    };
    for unit in &units {
        let mut nodes = Vec::new();
        for (name, state) in unit.states {
            let shape = match Action::of(state) {
                Action::None => Shape::Plain,
                Action::Ask(_) => Shape::Ask,
                Action::Lookup(_) => Shape::Lookup,
                Action::Ticket(_) => Shape::Ticket,
                Action::Transfer(_) => Shape::Transfer,
                Action::Hangup(_) => Shape::Hangup,
                Action::Flow(_) => Shape::Flow,
                Action::Return(_) => Shape::Return,
            };
            nodes.push(Node {
                id: node_id(unit, name),
                label: format!("{name}\n{}", summary(state)),
                shape,
            });
            // A flow call enters the flow's start.
            if let Action::Flow(f) = Action::of(state) {
                if let Some(target) = units.iter().find(|u| u.flow == Some(f)) {
                    g.edges.push(GEdge {
                        from: node_id(unit, name),
                        to: node_id(target, target.start),
                        label: "enter".into(),
                        dashed: true,
                    });
                }
            }
        }
        let title = unit.flow.map(|f| format!("flow {f}"));
        g.clusters.push((title, nodes));
        if unit.flow.is_none() {
            g.start = node_id(unit, unit.start);
        }
        for e in analysis::edges(script, unit) {
            let label = edge_label(&e.kind, e.cond);
            let from = match e.from {
                Some(f) => node_id(unit, f),
                None => {
                    g.has_global = true;
                    ANY.to_string()
                }
            };
            let to = if e.to == REPEAT {
                if e.from.is_none() {
                    // "repeat" from anywhere: a loop on the any-question node.
                    ANY.to_string()
                } else {
                    from.clone()
                }
            } else if unit.states.contains_key(e.to) {
                node_id(unit, e.to)
            } else {
                continue;
            };
            let dashed = matches!(
                e.kind,
                EdgeKind::NoInput | EdgeKind::NoMatch | EdgeKind::Global(_)
            );
            g.edges.push(GEdge {
                from,
                to,
                label,
                dashed,
            });
        }
    }
    g
}

/// Graphviz DOT.
pub fn dot(loaded: &Loaded) -> String {
    let g = build(loaded);
    let mut s = String::new();
    let title = &loaded.script.name;
    let _ = writeln!(s, "digraph \"{}\" {{", dot_escape(title));
    s.push_str("  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    s.push_str("  __start [shape=point, width=0.15];\n");
    if g.has_global {
        let _ = writeln!(
            s,
            "  {ANY} [label=\"any question\", shape=diamond, style=dashed];"
        );
    }
    for (title, nodes) in &g.clusters {
        let indent = if title.is_some() { "    " } else { "  " };
        if let Some(t) = title {
            let _ = writeln!(
                s,
                "  subgraph cluster_{} {{\n    label=\"{}\";\n    style=rounded;",
                dot_id_part(t),
                dot_escape(t)
            );
        }
        for n in nodes {
            let (shape, style) = match n.shape {
                Shape::Plain => ("box", ""),
                Shape::Ask => ("box", ", style=\"rounded,filled\", fillcolor=\"#dbeafe\""),
                Shape::Lookup => ("cylinder", ", style=filled, fillcolor=\"#ecfccb\""),
                Shape::Ticket => ("note", ", style=filled, fillcolor=\"#fef9c3\""),
                Shape::Transfer => ("cds", ", style=filled, fillcolor=\"#fed7aa\""),
                Shape::Hangup => (
                    "box",
                    ", style=\"rounded,filled,bold\", fillcolor=\"#fecaca\"",
                ),
                Shape::Flow => ("component", ", style=filled, fillcolor=\"#e9d5ff\""),
                Shape::Return => ("house", ", style=filled, fillcolor=\"#e9d5ff\""),
            };
            let _ = writeln!(
                s,
                "{indent}{} [label=\"{}\", shape={shape}{style}];",
                n.id,
                dot_escape(&n.label)
            );
        }
        if title.is_some() {
            s.push_str("  }\n");
        }
    }
    let _ = writeln!(s, "  __start -> {};", g.start);
    for e in &g.edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!("label=\"{}\"", dot_escape(&e.label)));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(s, "  {} -> {}{attrs};", e.from, e.to);
    }
    s.push_str("}\n");
    s
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn dot_id_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Mermaid `flowchart` (renders in GitHub/GitLab markdown and most wikis).
pub fn mermaid(loaded: &Loaded) -> String {
    let g = build(loaded);
    let mut s = String::from("flowchart TD\n");
    s.push_str("  __start((start))\n");
    if g.has_global {
        let _ = writeln!(s, "  {ANY}{{\"any question\"}}");
    }
    for (title, nodes) in &g.clusters {
        let indent = if title.is_some() { "    " } else { "  " };
        if let Some(t) = title {
            let _ = writeln!(
                s,
                "  subgraph cluster_{}[\"{}\"]",
                dot_id_part(t),
                mm_escape(t)
            );
        }
        for n in nodes {
            let l = mm_escape(&n.label);
            let shape = match n.shape {
                Shape::Plain => format!("[\"{l}\"]"),
                Shape::Ask => format!("([\"{l}\"])"),
                Shape::Lookup => format!("[(\"{l}\")]"),
                Shape::Ticket => format!("[/\"{l}\"/]"),
                Shape::Transfer => format!("{{{{\"{l}\"}}}}"),
                Shape::Hangup => format!("(((\"{l}\")))"),
                Shape::Flow => format!("[[\"{l}\"]]"),
                Shape::Return => format!(">\"{l}\"]"),
            };
            let _ = writeln!(s, "{indent}{}{shape}", n.id);
        }
        if title.is_some() {
            s.push_str("  end\n");
        }
    }
    let _ = writeln!(s, "  __start --> {}", g.start);
    for e in &g.edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        if e.label.is_empty() {
            let _ = writeln!(s, "  {} {arrow} {}", e.from, e.to);
        } else {
            let _ = writeln!(
                s,
                "  {} {arrow}|\"{}\"| {}",
                e.from,
                mm_escape(&e.label),
                e.to
            );
        }
    }
    s
}

fn mm_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;

    const SCRIPT: &str = r#"
name: demo "graph"
defaults:
  no_input: [{ goto: bye }]
  no_match: [{ goto: bye }]
global:
  intents: { agent: agent, repeat: repeat }
flows:
  confirm:
    start: ask
    states:
      ask:
        ask: { prompt: ok?, slot: ok, type: yes_no }
        on: { yes: done, no: done }
      done:
        return: confirmed
start: menu
states:
  menu:
    ask:
      prompt: Hi
      intents: [orders, agent]
    on: { orders: find, agent: agent }
  find:
    lookup: { name: stock, args: { product: x }, into: stock }
    on: { error: bye }
    next:
      - if: stock.available > 0
        goto: check
      - goto: bye
  check:
    flow: confirm
    on: { confirmed: bye }
  agent:
    transfer: { to: agents }
    on: { failed: bye }
  bye:
    hangup: done
"#;

    fn loaded() -> Loaded {
        load_str("t.yaml", None, SCRIPT, None).unwrap()
    }

    #[test]
    fn dot_has_every_state_and_edge() {
        let d = dot(&loaded());
        assert!(d.starts_with("digraph \"demo \\\"graph\\\"\" {"), "{d}");
        for id in [
            "menu",
            "find",
            "check",
            "agent",
            "bye",
            "confirm__ask",
            "confirm__done",
        ] {
            assert!(
                d.contains(&format!("  {id} [")) || d.contains(&format!("    {id} [")),
                "{id} missing:\n{d}"
            );
        }
        assert!(d.contains("__start -> menu;"));
        assert!(d.contains("menu -> find [label=\"orders\"];"));
        assert!(d.contains("find -> check [label=\"if stock.available > 0\"];"));
        assert!(d.contains("check -> confirm__ask [label=\"enter\", style=dashed];"));
        assert!(d.contains("__any -> agent [label=\"agent\", style=dashed];"));
        assert!(d.contains("__any -> __any [label=\"repeat\", style=dashed];"));
        assert!(d.contains("subgraph cluster_flow_confirm"));
        assert!(d.contains("shape=cylinder"));
        assert!(d.contains("lookup stock → stock"));
    }

    #[test]
    fn mermaid_has_every_state_and_edge() {
        let m = mermaid(&loaded());
        assert!(m.starts_with("flowchart TD\n"));
        assert!(
            m.contains("  menu([\"menu<br/>ask: orders, agent\"])"),
            "{m}"
        );
        assert!(m.contains("  find[(\"find<br/>lookup stock → stock\")]"));
        assert!(m.contains("  agent{{\"agent<br/>transfer → agents\"}}"));
        assert!(m.contains("  bye(((\"bye<br/>hangup: done\")))"));
        assert!(m.contains("  menu -->|\"orders\"| find"));
        assert!(m.contains("  __any -.->|\"no-input\"| bye"));
        assert!(m.contains("subgraph cluster_flow_confirm[\"flow confirm\"]"));
        assert!(m.contains("  end\n"));
    }

    #[test]
    fn ids_are_safe() {
        let l = loaded();
        let u = &analysis::units(&l)[0];
        assert_eq!(node_id(u, "end"), "s_end");
        assert_eq!(node_id(u, "a-b"), "a_b");
        assert_ne!(node_id(u, "问候"), node_id(u, "结束"));
    }

    #[test]
    fn formats_parse() {
        assert_eq!(GraphFormat::parse("DOT"), Some(GraphFormat::Dot));
        assert_eq!(GraphFormat::parse("mermaid"), Some(GraphFormat::Mermaid));
        assert_eq!(GraphFormat::parse("svg"), Some(GraphFormat::Svg));
        assert_eq!(GraphFormat::parse("png"), None);
    }
}
