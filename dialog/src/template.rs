//! Prompt and argument templates: text with `{{ expression }}` holes, e.g.
//! `"Your order {{ order.id | digits }} is {{ order.status }}."`

use std::fmt;

use crate::expr::{Expr, Scope};
use crate::value::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Hole(Expr),
}

/// A template syntax error, at a character offset in the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = src.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                let open = i;
                let Some(close) = find_close(&chars, i + 2) else {
                    return Err(TemplateError {
                        offset: open,
                        message: "`{{` has no closing `}}`".into(),
                    });
                };
                let inner: String = chars[i + 2..close].iter().collect();
                if inner.trim().is_empty() {
                    return Err(TemplateError {
                        offset: open,
                        message: "empty `{{ }}`".into(),
                    });
                }
                let expr = Expr::parse(&inner).map_err(|e| TemplateError {
                    offset: open + 2 + e.offset,
                    message: e.message,
                })?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Hole(expr));
                i = close + 2;
            } else if chars[i] == '}' && chars.get(i + 1) == Some(&'}') {
                return Err(TemplateError {
                    offset: i,
                    message: "`}}` without an opening `{{`".into(),
                });
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// A template with no holes.
    pub fn literal(s: &str) -> Template {
        Template {
            parts: vec![Part::Text(s.to_string())],
        }
    }

    pub fn render(&self, scope: &dyn Scope) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Hole(e) => out.push_str(&e.eval(scope).to_string()),
            }
        }
        out
    }

    /// The value: typed when the template is exactly one `{{ }}` (so
    /// `set: {n: "{{ attempts + 1 }}"}` stays a number), else the text.
    pub fn value(&self, scope: &dyn Scope) -> Value {
        match self.parts.as_slice() {
            [Part::Hole(e)] => e.eval(scope),
            _ => Value::String(self.render(scope)),
        }
    }

    pub fn has_holes(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Hole(_)))
    }

    /// The variable names the template reads.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.parts {
            if let Part::Hole(e) = p {
                for v in e.variables() {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
        }
        out
    }
}

/// The `}}` closing a hole that starts at `from`, skipping quoted text.
fn find_close(chars: &[char], from: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut i = from;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(_) if c == '\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' && chars.get(i + 1) == Some(&'}') => return Some(i),
            None if c == '{' && chars.get(i + 1) == Some(&'{') => return None,
            None => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn scope() -> BTreeMap<String, Value> {
        let mut s = BTreeMap::new();
        s.insert(
            "order".to_string(),
            Value::map([
                ("id", Value::from("123")),
                ("status", Value::from("shipped")),
            ]),
        );
        s.insert("n".to_string(), Value::from(2.0));
        s
    }

    #[test]
    fn renders_holes() {
        let t = Template::parse("Order {{ order.id | digits }} is {{order.status}}.").unwrap();
        assert_eq!(t.render(&scope()), "Order 1 2 3 is shipped.");
        assert_eq!(t.variables(), vec!["order"]);
        let t = Template::parse("no holes").unwrap();
        assert!(!t.has_holes());
        let t = Template::parse("{{ \"}}\" }}").unwrap();
        assert_eq!(t.render(&scope()), "}}");
    }

    #[test]
    fn single_hole_keeps_type() {
        let t = Template::parse("{{ n + 1 }}").unwrap();
        assert_eq!(t.value(&scope()), Value::from(3.0));
        let t = Template::parse("n={{ n }}").unwrap();
        assert_eq!(t.value(&scope()), Value::from("n=2"));
    }

    #[test]
    fn errors_point_into_the_text() {
        let e = Template::parse("Hello {{ name").unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("no closing"));
        let e = Template::parse("Hi }} there").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = Template::parse("Hi {{ }}").unwrap_err();
        assert_eq!(e.message, "empty `{{ }}`");
        let e = Template::parse("Hi {{ a == }}").unwrap_err();
        assert_eq!(e.offset, 11);
        let e = Template::parse("{{ a {{ b }}").unwrap_err();
        assert_eq!(e.offset, 0);
    }
}
