//! A script's state graph as SVG, laid out in Rust (no Graphviz at run
//! time): a small layered layout. Layers are the distance from the start
//! (breadth first, so loops back up do not stretch the picture), nodes in
//! a layer are ordered by the mean position of their parents (a few
//! sweeps), edges that go down are straight, edges that go up or sideways
//! curve around the right. Nodes and edges come from
//! [`voxbridge_dialog::graph::model`], the same model the DOT and Mermaid
//! outputs are written from.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use voxbridge_dialog::graph::{Graph, Shape, ANY};

use super::chart::xml;

const START: &str = "__start";
/// Pixel sizes: a character, a text line, the gaps.
const CHAR_W: f64 = 6.6;
const LINE_H: f64 = 14.0;
const PAD: f64 = 8.0;
const GAP_X: f64 = 28.0;
const GAP_Y: f64 = 46.0;
const MARGIN: f64 = 16.0;
/// Ordering sweeps; more change little on script-sized graphs.
const SWEEPS: usize = 4;

/// A placed node.
#[derive(Debug, Clone)]
struct Placed {
    id: String,
    lines: Vec<String>,
    shape: Option<Shape>,
    layer: usize,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// The layer of each node id: breadth-first distance from the start; the
/// "any question" node sits beside the start; nodes nothing reaches go
/// below everything else.
fn layers(ids: &[String], g: &Graph) -> HashMap<String, usize> {
    let mut out: HashMap<String, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    out.insert(START.to_string(), 0);
    queue.push_back(START.to_string());
    if g.has_global {
        out.insert(ANY.to_string(), 0);
        queue.push_back(ANY.to_string());
    }
    let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
    next.entry(START).or_default().push(g.start.as_str());
    for e in &g.edges {
        next.entry(e.from.as_str()).or_default().push(e.to.as_str());
    }
    while let Some(id) = queue.pop_front() {
        let depth = out[&id];
        for to in next.get(id.as_str()).into_iter().flatten() {
            if !out.contains_key(*to) {
                out.insert(to.to_string(), depth + 1);
                queue.push_back(to.to_string());
            }
        }
    }
    let deepest = out.values().copied().max().unwrap_or(0);
    for id in ids {
        out.entry(id.clone()).or_insert(deepest + 1);
    }
    out
}

/// Lay the graph out and draw it. `id` names the `<svg>` element.
pub fn render(id: &str, title: &str, g: &Graph) -> String {
    // Every node: the start dot, the "any question" node, each state.
    let mut nodes: Vec<Placed> = vec![Placed {
        id: START.into(),
        lines: vec!["start".into()],
        shape: None,
        layer: 0,
        x: 0.0,
        y: 0.0,
        w: 0.0,
        h: 0.0,
    }];
    if g.has_global {
        nodes.push(Placed {
            id: ANY.into(),
            lines: vec!["any question".into()],
            shape: None,
            layer: 0,
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0,
        });
    }
    for (_, cluster) in &g.clusters {
        for n in cluster {
            nodes.push(Placed {
                id: n.id.clone(),
                lines: n.label.lines().map(str::to_string).collect(),
                shape: Some(n.shape),
                layer: 0,
                x: 0.0,
                y: 0.0,
                w: 0.0,
                h: 0.0,
            });
        }
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let layer_of = layers(&ids, g);
    for n in &mut nodes {
        n.layer = layer_of.get(&n.id).copied().unwrap_or(0);
        let longest = n.lines.iter().map(|l| l.chars().count()).max().unwrap_or(1);
        (n.w, n.h) = if n.id == START {
            (12.0, 12.0)
        } else {
            (
                longest as f64 * CHAR_W + 2.0 * PAD,
                n.lines.len() as f64 * LINE_H + PAD,
            )
        };
    }
    let layer_count = nodes.iter().map(|n| n.layer).max().unwrap_or(0) + 1;
    // Order within layers: first seen, then by the parents' mean position.
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (i, n) in nodes.iter().enumerate() {
        order[n.layer].push(i);
    }
    let index: HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), i))
        .collect();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    if let (Some(&s), Some(&t)) = (index.get(START), index.get(g.start.as_str())) {
        parents[t].push(s);
    }
    for e in &g.edges {
        if let (Some(&f), Some(&t)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            if nodes[f].layer < nodes[t].layer {
                parents[t].push(f);
            }
        }
    }
    for _ in 0..SWEEPS {
        let mut pos = vec![0.0; nodes.len()];
        for layer in &order {
            for (p, &i) in layer.iter().enumerate() {
                pos[i] = p as f64;
            }
        }
        for layer in order.iter_mut().skip(1) {
            let key = |i: &usize| {
                let ps = &parents[*i];
                if ps.is_empty() {
                    pos[*i]
                } else {
                    ps.iter().map(|p| pos[*p]).sum::<f64>() / ps.len() as f64
                }
            };
            layer.sort_by(|a, b| key(a).total_cmp(&key(b)));
            for (p, &i) in layer.iter().enumerate() {
                pos[i] = p as f64;
            }
        }
    }
    // Place: layers top to bottom, each centred on the widest.
    let widths: Vec<f64> = order
        .iter()
        .map(|l| {
            l.iter().map(|&i| nodes[i].w).sum::<f64>() + GAP_X * l.len().saturating_sub(1) as f64
        })
        .collect();
    let widest = widths.iter().copied().fold(0.0, f64::max);
    let mut y = MARGIN;
    for (layer, width) in order.iter().zip(&widths) {
        let tallest = layer.iter().map(|&i| nodes[i].h).fold(0.0, f64::max);
        let mut x = MARGIN + (widest - width) / 2.0;
        for &i in layer {
            nodes[i].x = x;
            nodes[i].y = y + (tallest - nodes[i].h) / 2.0;
            x += nodes[i].w + GAP_X;
        }
        y += tallest + GAP_Y;
    }
    // Room on the right for edges that curve back up.
    let width = widest + 2.0 * MARGIN + 80.0;
    let height = y - GAP_Y + MARGIN;

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="graph" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{t}"><title>{t}</title><defs><marker id="{id}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>"##,
        id = xml(id),
        t = xml(title)
    );
    let arrow = format!("url(#{})", xml(id));
    let mut edges: Vec<(usize, usize, &str, bool)> = Vec::new();
    if let (Some(&f), Some(&t)) = (index.get(START), index.get(g.start.as_str())) {
        edges.push((f, t, "", false));
    }
    for e in &g.edges {
        if let (Some(&f), Some(&t)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            edges.push((f, t, e.label.as_str(), e.dashed));
        }
    }
    for (f, t, label, dashed) in edges {
        let (a, b) = (&nodes[f], &nodes[t]);
        let dash = if dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let (path, lx, ly) = if f == t {
            // A loop on the node's right side.
            let (x, y) = (a.x + a.w, a.y + a.h / 2.0);
            (
                format!(
                    "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                    x,
                    y - 4.0,
                    x + 30.0,
                    y - 18.0,
                    x + 30.0,
                    y + 18.0,
                    x,
                    y + 4.0
                ),
                x + 32.0,
                y,
            )
        } else if a.layer < b.layer {
            let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
            let (x2, y2) = (b.x + b.w / 2.0, b.y);
            (
                format!("M{x1:.1},{y1:.1} L{x2:.1},{y2:.1}"),
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0,
            )
        } else {
            // Up or sideways: out of the right side, around, into the right side.
            let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
            let (x2, y2) = (b.x + b.w, b.y + b.h / 2.0);
            let bulge = x1.max(x2) + 24.0 + 6.0 * (a.layer.abs_diff(b.layer) as f64);
            (
                format!("M{x1:.1},{y1:.1} C{bulge:.1},{y1:.1} {bulge:.1},{y2:.1} {x2:.1},{y2:.1}"),
                bulge - 4.0,
                (y1 + y2) / 2.0,
            )
        };
        let _ = write!(
            s,
            r##"<path class="edge" d="{path}" fill="none" stroke="#57606a" stroke-width="1.2"{dash} marker-end="{arrow}"/>"##
        );
        if !label.is_empty() {
            let _ = write!(
                s,
                r##"<text class="edge-label" x="{lx:.1}" y="{ly:.1}" font-size="9" text-anchor="middle" fill="#0550ae">{}</text>"##,
                xml(label)
            );
        }
    }
    for n in &nodes {
        if n.id == START {
            let _ = write!(
                s,
                r##"<circle class="start" cx="{:.1}" cy="{:.1}" r="6" fill="#24292f"/>"##,
                n.x + n.w / 2.0,
                n.y + n.h / 2.0
            );
            continue;
        }
        let (fill, rx, stroke_w) = match n.shape {
            None => ("#f6f8fa", 0.0, 1.0),
            Some(Shape::Plain) => ("#ffffff", 0.0, 1.0),
            Some(Shape::Ask) => ("#dbeafe", 10.0, 1.0),
            Some(Shape::Lookup) => ("#ecfccb", 4.0, 1.0),
            Some(Shape::Ticket) => ("#fef9c3", 2.0, 1.0),
            Some(Shape::Transfer) => ("#fed7aa", 4.0, 1.0),
            Some(Shape::Hangup) => ("#fecaca", 10.0, 2.0),
            Some(Shape::Flow) | Some(Shape::Return) => ("#e9d5ff", 4.0, 1.0),
        };
        let dash = if n.shape.is_none() {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            s,
            r##"<g class="state" data-state="{}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{rx}" fill="{fill}" stroke="#24292f" stroke-width="{stroke_w}"{dash}/>"##,
            xml(&n.id),
            n.x,
            n.y,
            n.w,
            n.h
        );
        for (k, line) in n.lines.iter().enumerate() {
            let weight = if k == 0 { r#" font-weight="bold""# } else { "" };
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#24292f"{weight}>{}</text>"##,
                n.x + n.w / 2.0,
                n.y + PAD / 2.0 + LINE_H * (k as f64 + 1.0) - 3.0,
                xml(line)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(yaml: &str) -> Graph {
        let loaded =
            voxbridge_dialog::load::load_str("t.yaml", None, yaml, None).expect("a script");
        voxbridge_dialog::graph::model(&loaded)
    }

    const SCRIPT: &str = "name: t\nstart: hello\nstates:\n  hello:\n    say: Hello.\n    next: menu\n  menu:\n    ask:\n      prompt: Sales or support?\n      intents: [sales, support]\n    on:\n      sales: bye\n      support: menu\n  bye:\n    hangup: done\n";

    #[test]
    fn every_state_is_drawn_in_layers_with_its_edges() {
        let svg = render("g", "t <script>", &graph(SCRIPT));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        for state in ["hello", "menu", "bye"] {
            assert!(
                svg.contains(&format!("data-state=\"{state}\"")),
                "{state}: {svg}"
            );
        }
        assert!(
            svg.contains(">sales<") && svg.contains(">support<"),
            "{svg}"
        );
        assert!(svg.contains("t &lt;script&gt;"));
        assert!(!svg.contains("style="), "no inline styles (CSP)");
        // hello above menu above bye: read the boxes' y.
        let y = |state: &str| -> f64 {
            let at = svg.find(&format!("data-state=\"{state}\"")).unwrap();
            let rest = &svg[at..];
            let y = rest.split("y=\"").nth(1).unwrap();
            y.split('"').next().unwrap().parse().unwrap()
        };
        assert!(y("hello") < y("menu") && y("menu") < y("bye"));
        // "support" loops back on menu: a curve, not a straight line.
        assert!(svg.contains(" C"), "{svg}");
    }

    #[test]
    fn layers_follow_distance_from_the_start() {
        let g = graph(SCRIPT);
        let ids: Vec<String> = g
            .clusters
            .iter()
            .flat_map(|(_, n)| n.iter().map(|n| n.id.clone()))
            .collect();
        let l = layers(&ids, &g);
        assert_eq!(l["hello"], 1);
        assert_eq!(l["menu"], 2);
        assert_eq!(l["bye"], 3);
    }

    #[test]
    fn the_shipped_customer_service_script_lays_out() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/scripts/customer-service.yaml");
        let loaded = voxbridge_dialog::load::load_file(&path).expect("the shipped script loads");
        let g = voxbridge_dialog::graph::model(&loaded);
        let svg = render("cs", "customer service", &g);
        let states = g.clusters.iter().map(|(_, n)| n.len()).sum::<usize>();
        assert!(states > 5);
        assert_eq!(
            svg.matches("class=\"state\"").count(),
            states + usize::from(g.has_global)
        );
    }
}
