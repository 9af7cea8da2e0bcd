//! The small expression language of conditions (`if: customer.tier == "gold"`),
//! validators (`valid: value >= 1`) and the inside of `{{ }}` templates.
//!
//! Evaluation is total: a missing field is `null`, a comparison between
//! things that do not compare is false. A call never stops because CRM data
//! came back in an unexpected shape; the validator catches what can be
//! caught before a call (syntax, unknown names and functions).
//!
//! Grammar, loosest first:
//! `a | f(x)` (pipe: `f(a, x)`), `or`/`||`, `and`/`&&`, `not`/`!`,
//! `== != < <= > >= in`, `+ -`, unary `-`, `a.b`, `a[i]`, literals
//! (`"text"`, `'text'`, numbers, `true`, `false`, `null`, `[a, b]`),
//! names and calls `f(x)`.

use std::collections::BTreeMap;
use std::fmt;

use crate::value::{format_number, Value};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(String),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
}

/// The functions expressions may call (also usable as `| filters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `len(x)`: characters of text, items of a list or map; 0 for null.
    Len,
    /// `lower(x)`, `upper(x)`: change case.
    Lower,
    Upper,
    /// `default(x, d)`: `x`, or `d` when `x` is null or empty text.
    Default,
    /// `digits(x)`: "1234" → "1 2 3 4", so speech reads digits one by one.
    Digits,
    /// `contains(a, b)`: `b in a`.
    Contains,
}

impl Func {
    pub const ALL: [(&'static str, Func, usize); 6] = [
        ("len", Func::Len, 1),
        ("lower", Func::Lower, 1),
        ("upper", Func::Upper, 1),
        ("default", Func::Default, 2),
        ("digits", Func::Digits, 1),
        ("contains", Func::Contains, 2),
    ];

    fn by_name(name: &str) -> Option<(Func, usize)> {
        Func::ALL
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, f, a)| (*f, *a))
    }
}

/// A syntax error, at a character offset in the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

/// Names an expression can read.
pub trait Scope {
    fn get(&self, name: &str) -> Option<&Value>;
}

impl Scope for BTreeMap<String, Value> {
    fn get(&self, name: &str) -> Option<&Value> {
        BTreeMap::get(self, name)
    }
}

/// A scope plus one extra name (e.g. `value` in a slot validator).
pub struct With<'a> {
    pub base: &'a dyn Scope,
    pub name: &'a str,
    pub value: &'a Value,
}

impl Scope for With<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        if name == self.name {
            Some(self.value)
        } else {
            self.base.get(name)
        }
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let tokens = lex(src)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: src.chars().count(),
        };
        let e = p.pipe()?;
        match p.peek() {
            None => Ok(e),
            Some((_, at)) => Err(ExprError {
                offset: at,
                message: format!("unexpected `{}`", p.tokens[p.pos].0),
            }),
        }
    }

    /// The variable names the expression reads (each once, in order).
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk_vars(&mut out);
        out
    }

    /// The variables with the field path read from each, e.g. `order.status`.
    fn walk_vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Expr::Field(e, _) | Expr::Not(e) | Expr::Neg(e) => e.walk_vars(out),
            Expr::Index(a, b) | Expr::Bin(_, a, b) => {
                a.walk_vars(out);
                b.walk_vars(out);
            }
            Expr::List(v) | Expr::Call(_, v) => v.iter().for_each(|e| e.walk_vars(out)),
        }
    }

    pub fn eval(&self, scope: &dyn Scope) -> Value {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Var(name) => scope.get(name).cloned().unwrap_or(Value::Null),
            Expr::Field(e, name) => e.eval(scope).field(name).clone(),
            Expr::Index(e, i) => e.eval(scope).item(&i.eval(scope)).clone(),
            Expr::List(items) => Value::List(items.iter().map(|e| e.eval(scope)).collect()),
            Expr::Not(e) => Value::Bool(!e.eval(scope).truthy()),
            Expr::Neg(e) => match e.eval(scope).as_number() {
                Some(n) => Value::Number(-n),
                None => Value::Null,
            },
            Expr::Bin(Op::And, a, b) => {
                Value::Bool(a.eval(scope).truthy() && b.eval(scope).truthy())
            }
            Expr::Bin(Op::Or, a, b) => {
                Value::Bool(a.eval(scope).truthy() || b.eval(scope).truthy())
            }
            Expr::Bin(op, a, b) => binary(*op, &a.eval(scope), &b.eval(scope)),
            Expr::Call(f, args) => {
                let args: Vec<Value> = args.iter().map(|a| a.eval(scope)).collect();
                call(*f, &args)
            }
        }
    }

    /// Evaluate as a condition.
    pub fn holds(&self, scope: &dyn Scope) -> bool {
        self.eval(scope).truthy()
    }
}

/// Loose equality: numbers (and numeric text) compare by value, so an order
/// id the CRM sends as text equals the number the caller typed.
pub fn equal(a: &Value, b: &Value) -> bool {
    let numeric = matches!(a, Value::Number(_)) || matches!(b, Value::Number(_));
    if numeric {
        if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
            return x == y;
        }
    }
    a == b
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y),
            // Text order: ISO dates and times compare correctly.
            _ => Some(x.cmp(y)),
        },
        _ => a.as_number()?.partial_cmp(&b.as_number()?),
    }
}

fn binary(op: Op, a: &Value, b: &Value) -> Value {
    use std::cmp::Ordering::*;
    let cmp =
        |want: &[std::cmp::Ordering]| Value::Bool(order(a, b).is_some_and(|o| want.contains(&o)));
    match op {
        Op::Eq => Value::Bool(equal(a, b)),
        Op::Ne => Value::Bool(!equal(a, b)),
        Op::Lt => cmp(&[Less]),
        Op::Le => cmp(&[Less, Equal]),
        Op::Gt => cmp(&[Greater]),
        Op::Ge => cmp(&[Greater, Equal]),
        Op::In => Value::Bool(contains(b, a)),
        Op::Add => match (a, b) {
            (Value::Number(x), Value::Number(y)) => Value::Number(x + y),
            (Value::Null, Value::Number(_)) => b.clone(),
            (Value::Number(_), Value::Null) => a.clone(),
            _ => Value::String(format!("{a}{b}")),
        },
        Op::Sub => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => Value::Number(x - y),
            _ => Value::Null,
        },
        // Handled with short-circuit in `eval`.
        Op::And => Value::Bool(a.truthy() && b.truthy()),
        Op::Or => Value::Bool(a.truthy() || b.truthy()),
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|v| equal(v, needle)),
        Value::Map(m) => needle.as_str().is_some_and(|k| m.contains_key(k)),
        Value::String(s) => !needle.is_null() && s.contains(&needle.to_string()),
        _ => false,
    }
}

fn call(f: Func, args: &[Value]) -> Value {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    match f {
        Func::Len => Value::Number(match &arg(0) {
            Value::String(s) => s.chars().count() as f64,
            Value::List(l) => l.len() as f64,
            Value::Map(m) => m.len() as f64,
            Value::Null => 0.0,
            other => other.to_string().chars().count() as f64,
        }),
        Func::Lower => Value::String(arg(0).to_string().to_lowercase()),
        Func::Upper => Value::String(arg(0).to_string().to_uppercase()),
        Func::Default => {
            let v = arg(0);
            if v.is_null() || v.as_str() == Some("") {
                arg(1)
            } else {
                v
            }
        }
        Func::Digits => {
            let s = match arg(0) {
                Value::Number(n) => format_number(n),
                v => v.to_string(),
            };
            let spaced: Vec<String> = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(String::from)
                .collect();
            Value::String(spaced.join(" "))
        }
        Func::Contains => Value::Bool(contains(&arg(0), &arg(1))),
    }
}

// ---- lexer ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{}", format_number(*n)),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Ident(s) => f.write_str(s),
            Tok::Sym(s) => f.write_str(s),
        }
    }
}

const SYMBOLS: [&str; 18] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", ".", "|", "+", "-",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let n = text.parse().map_err(|_| ExprError {
                offset: start,
                message: format!("bad number `{text}`"),
            })?;
            out.push((Tok::Num(n), start));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(ExprError {
                        offset: start,
                        message: "text has no closing quote".into(),
                    });
                };
                i += 1;
                if ch == c {
                    break;
                }
                if ch == '\\' {
                    match chars.get(i) {
                        Some('n') => s.push('\n'),
                        Some(&e) => s.push(e),
                        None => continue,
                    }
                    i += 1;
                } else {
                    s.push(ch);
                }
            }
            out.push((Tok::Str(s), start));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err(ExprError {
                    offset: start,
                    message: format!("unexpected character `{c}`"),
                });
            };
            i += sym.chars().count();
            out.push((Tok::Sym(sym), start));
        }
    }
    Ok(out)
}

// ---- parser (recursive descent, one function per precedence level) ----

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(&Tok, usize)> {
        self.tokens.get(self.pos).map(|(t, at)| (t, *at))
    }

    fn here(&self) -> usize {
        self.peek().map(|(_, at)| at).unwrap_or(self.end)
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some((Tok::Sym(s), _)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some((Tok::Ident(s), _)) if s == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), ExprError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{sym}`")))
        }
    }

    fn error(&self, message: String) -> ExprError {
        let message = match self.peek() {
            Some((t, _)) => format!("{message}, found `{t}`"),
            None => format!("{message} at the end"),
        };
        ExprError {
            offset: self.here(),
            message,
        }
    }

    fn pipe(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.or()?;
        while self.eat_sym("|") {
            let at = self.here();
            let Some((Tok::Ident(name), _)) = self.peek() else {
                return Err(self.error("expected a function name after `|`".into()));
            };
            let name = name.clone();
            self.pos += 1;
            let mut args = vec![e];
            if self.eat_sym("(") {
                args.extend(self.args()?);
            }
            e = self.make_call(&name, args, at)?;
        }
        Ok(e)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.and()?;
        while self.eat_word("or") || self.eat_sym("||") {
            e = Expr::Bin(Op::Or, Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.not()?;
        while self.eat_word("and") || self.eat_sym("&&") {
            e = Expr::Bin(Op::And, Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.eat_word("not") || self.eat_sym("!") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, ExprError> {
        let left = self.sum()?;
        let op = match self.peek() {
            Some((Tok::Sym("=="), _)) => Op::Eq,
            Some((Tok::Sym("!="), _)) => Op::Ne,
            Some((Tok::Sym("<"), _)) => Op::Lt,
            Some((Tok::Sym("<="), _)) => Op::Le,
            Some((Tok::Sym(">"), _)) => Op::Gt,
            Some((Tok::Sym(">="), _)) => Op::Ge,
            Some((Tok::Ident(w), _)) if w == "in" => Op::In,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.sum()?;
        Ok(Expr::Bin(op, Box::new(left), Box::new(right)))
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat_sym("+") {
                Op::Add
            } else if self.eat_sym("-") {
                Op::Sub
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.eat_sym(".") {
                match self.peek() {
                    Some((Tok::Ident(name), _)) => {
                        let name = name.clone();
                        self.pos += 1;
                        e = Expr::Field(Box::new(e), name);
                    }
                    // `items.0` reads as an index.
                    Some((Tok::Num(n), _)) => {
                        let n = *n;
                        self.pos += 1;
                        e = Expr::Index(Box::new(e), Box::new(Expr::Lit(Value::Number(n))));
                    }
                    _ => return Err(self.error("expected a field name after `.`".into())),
                }
            } else if self.eat_sym("[") {
                let i = self.pipe()?;
                self.expect_sym("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }

    fn args(&mut self) -> Result<Vec<Expr>, ExprError> {
        let mut out = Vec::new();
        if self.eat_sym(")") {
            return Ok(out);
        }
        loop {
            out.push(self.pipe()?);
            if self.eat_sym(")") {
                return Ok(out);
            }
            self.expect_sym(",")?;
        }
    }

    fn make_call(&self, name: &str, args: Vec<Expr>, at: usize) -> Result<Expr, ExprError> {
        let Some((f, arity)) = Func::by_name(name) else {
            let known: Vec<&str> = Func::ALL.iter().map(|(n, _, _)| *n).collect();
            return Err(ExprError {
                offset: at,
                message: format!("unknown function `{name}` (known: {})", known.join(", ")),
            });
        };
        if args.len() != arity {
            return Err(ExprError {
                offset: at,
                message: format!(
                    "`{name}` takes {arity} argument{}, got {}",
                    if arity == 1 { "" } else { "s" },
                    args.len()
                ),
            });
        }
        Ok(Expr::Call(f, args))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((tok, at)) = self.peek() else {
            return Err(self.error("expected a value".into()));
        };
        let tok = tok.clone();
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(Value::Number(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "and" | "or" | "not" | "in" => {
                    self.pos -= 1;
                    Err(self.error("expected a value".into()))
                }
                _ if self.eat_sym("(") => {
                    let args = self.args()?;
                    self.make_call(&w, args, at)
                }
                _ => Ok(Expr::Var(w)),
            },
            Tok::Sym("(") => {
                let e = self.pipe()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat_sym("]") {
                    loop {
                        items.push(self.pipe()?);
                        if self.eat_sym("]") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Sym(_) => {
                self.pos -= 1;
                Err(self.error("expected a value".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> BTreeMap<String, Value> {
        let mut s = BTreeMap::new();
        s.insert(
            "customer".to_string(),
            Value::map([
                ("tier", Value::from("gold")),
                ("name", Value::from("Alice")),
            ]),
        );
        s.insert(
            "stock".to_string(),
            Value::map([("available", Value::from("12"))]),
        );
        s.insert("order_id".to_string(), Value::from("100234"));
        s
    }

    fn eval(src: &str) -> Value {
        Expr::parse(src).unwrap().eval(&scope())
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(eval("customer.tier == \"gold\""), Value::Bool(true));
        assert_eq!(eval("customer.tier != 'gold'"), Value::Bool(false));
        assert_eq!(eval("stock.available > 0"), Value::Bool(true));
        assert_eq!(
            eval("stock.available > 0 and not customer.missing"),
            Value::Bool(true)
        );
        assert_eq!(eval("customer.missing.deeper == null"), Value::Bool(true));
        assert_eq!(eval("order_id == 100234"), Value::Bool(true));
        assert_eq!(
            eval("customer.tier in [\"gold\", \"silver\"]"),
            Value::Bool(true)
        );
        assert_eq!(eval("\"2026-11-01\" < \"2026-11-21\""), Value::Bool(true));
        assert_eq!(eval("customer.name > 3"), Value::Bool(false));
        assert_eq!(eval("(1 + 2) >= 3 || false"), Value::Bool(true));
    }

    #[test]
    fn functions_and_pipes() {
        assert_eq!(eval("order_id | digits"), Value::from("1 0 0 2 3 4"));
        assert_eq!(
            eval("customer.first | default(\"there\")"),
            Value::from("there")
        );
        assert_eq!(eval("len(order_id)"), Value::from(6.0));
        assert_eq!(eval("upper(customer.tier)"), Value::from("GOLD"));
        assert_eq!(eval("\"Hi \" + customer.name"), Value::from("Hi Alice"));
    }

    #[test]
    fn variables_are_listed_once() {
        let e = Expr::parse("a.b == c and a.d | default(e)").unwrap();
        assert_eq!(e.variables(), vec!["a", "c", "e"]);
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = Expr::parse("customer.tier = \"gold\"").unwrap_err();
        assert_eq!(e.offset, 14);
        let e = Expr::parse("a ==").unwrap_err();
        assert!(e.message.contains("at the end"), "{e}");
        let e = Expr::parse("shout(a)").unwrap_err();
        assert!(e.message.contains("unknown function `shout`"), "{e}");
        let e = Expr::parse("default(a)").unwrap_err();
        assert!(e.message.contains("takes 2 arguments"), "{e}");
        assert!(Expr::parse("'open").is_err());
        assert!(Expr::parse("a and").is_err());
        assert!(Expr::parse("(a").is_err());
    }
}
