//! Where things are in a script file. serde gives us typed values but no
//! positions, so each file is also read into a tree of spanned nodes; the
//! validator names problems by their YAML path (`states.menu.ask.intents[2]`)
//! and this tree turns that path into a line and column.

use std::fmt;
use std::path::PathBuf;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// One step of a YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Seg {
        Seg::Key(s.to_string())
    }
}
impl From<String> for Seg {
    fn from(s: String) -> Seg {
        Seg::Key(s)
    }
}
impl From<&String> for Seg {
    fn from(s: &String) -> Seg {
        Seg::Key(s.clone())
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Seg {
        Seg::Index(i)
    }
}

/// A path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    /// This path with one more step.
    pub fn at(&self, seg: impl Into<Seg>) -> YamlPath {
        let mut v = self.0.clone();
        v.push(seg.into());
        YamlPath(v)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A YAML node with the positions of its keys and values.
#[derive(Debug)]
pub enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = a.next_key::<Spanned<String>>()? {
                    let val = a.next_value()?;
                    v.push((k, val));
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A line and column, 1-based; 0 when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl From<Location> for Pos {
    fn from(l: Location) -> Pos {
        Pos {
            line: l.line(),
            column: l.column(),
        }
    }
}

/// One file that makes up a script (the script itself or an import).
#[derive(Debug)]
pub struct Source {
    /// How problems name the file (the path as given).
    pub name: String,
    /// The file's path, when it came from disk.
    pub path: Option<PathBuf>,
    /// The positions of its nodes.
    pub tree: Option<Spanned<Node>>,
}

impl Source {
    /// Read `text` for positions. A file that serde could parse always
    /// reads here too; if not, positions fall back to 0.
    pub fn new(name: impl Into<String>, path: Option<PathBuf>, text: &str) -> Source {
        Source {
            name: name.into(),
            path,
            tree: serde_saphyr::from_str::<Spanned<Node>>(text).ok(),
        }
    }

    /// Where the value at `path` is; the nearest enclosing node when the
    /// path goes further than the file (e.g. a key that was left out).
    pub fn value_pos(&self, path: &YamlPath) -> Pos {
        self.find(path, false)
    }

    /// Where the key that ends `path` is written (a state's name rather than
    /// its body); the value's position for list items.
    pub fn key_pos(&self, path: &YamlPath) -> Pos {
        self.find(path, true)
    }

    fn find(&self, path: &YamlPath, want_key: bool) -> Pos {
        let Some(root) = &self.tree else {
            return Pos::default();
        };
        let mut node = root;
        let mut pos: Pos = root.referenced.into();
        let last = path.0.len().saturating_sub(1);
        for (i, seg) in path.0.iter().enumerate() {
            let (key_pos, value) = match (&node.value, seg) {
                (Node::Map(entries), Seg::Key(k)) => {
                    match entries.iter().find(|(key, _)| &key.value == k) {
                        Some((key, v)) => (Pos::from(key.referenced), v),
                        None => return pos,
                    }
                }
                // A list item has no key: its own position stands in.
                (Node::Seq(items), Seg::Index(n)) => match items.get(*n) {
                    Some(v) => (Pos::from(v.referenced), v),
                    None => return pos,
                },
                _ => return pos,
            };
            pos = if want_key && i == last {
                key_pos
            } else {
                value.referenced.into()
            };
            node = value;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "name: x\nstates:\n  greet:\n    say: hello\n    next:\n      - goto: a\n      - goto: b\n";

    #[test]
    fn finds_keys_and_values() {
        let s = Source::new("t.yaml", None, TEXT);
        let p = YamlPath::root().at("states").at("greet");
        assert_eq!(s.key_pos(&p), Pos { line: 3, column: 3 });
        assert_eq!(
            s.value_pos(&p.at("say")),
            Pos {
                line: 4,
                column: 10
            }
        );
        let b = p.at("next").at(1usize).at("goto");
        assert_eq!(
            s.value_pos(&b),
            Pos {
                line: 7,
                column: 15
            }
        );
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_node() {
        let s = Source::new("t.yaml", None, TEXT);
        let p = YamlPath::root().at("states").at("greet").at("ask").at("x");
        assert_eq!(s.value_pos(&p).line, 4);
        assert_eq!(
            YamlPath::root().at("a").at(2usize).at("b").to_string(),
            "a[2].b"
        );
    }
}
