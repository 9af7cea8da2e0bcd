//! Entities in what a caller said or typed, in English and Chinese: digit
//! strings, numbers, order ids, yes/no/unsure and dates.
//!
//! The one reader of these for the whole workspace: the dialog interpreter
//! fills its slots with it and the engine reads entities for the models'
//! results with it, so a slot and an entity never disagree on what "三百五"
//! or "five five" means. Recognisers write numbers as words as often as
//! digits ("five five two one", "五五二一"), so both are read. Everything is
//! a pure function over text; dates take "today" as an argument (no clock
//! here, no I/O).

pub mod date;
pub mod dates;
pub mod numbers;
pub mod text;
pub mod yesno;

pub use date::Date;
pub use dates::{date, iso_date};
pub use numbers::{digits, number, order_id};
pub use yesno::{answer, yes_no, Answer};

/// Which entity a prompt expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// A string of digits (account, phone, PIN).
    Digits,
    /// A number ("fifty-two", "二十三", "2.5").
    Number,
    /// An order id: letters and at least [`ORDER_ID_MIN_DIGITS`] digits.
    OrderId,
    /// Yes or no.
    YesNo,
    /// A calendar date.
    Date,
}

impl EntityKind {
    /// Parses the names used in configuration and dialog scripts
    /// (`digits`, `number`, `order_id`, `yes_no`/`yesno`, `date`).
    pub fn from_name(name: &str) -> Option<EntityKind> {
        Some(match name {
            "digits" => EntityKind::Digits,
            "number" => EntityKind::Number,
            "order_id" => EntityKind::OrderId,
            "yes_no" | "yesno" => EntityKind::YesNo,
            "date" => EntityKind::Date,
            _ => return None,
        })
    }
}

/// Fewest digits an order id has.
pub const ORDER_ID_MIN_DIGITS: usize = 4;

/// One extracted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Digits(String),
    /// Whole or decimal ("2.5 kilos").
    Number(f64),
    OrderId(String),
    YesNo(bool),
    Date(Date),
}

impl std::fmt::Display for Entity {
    /// The value as a slot string: digits, the number (`52`, `2.5`), the
    /// id, `yes`/`no`, an ISO date.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entity::Digits(s) | Entity::OrderId(s) => f.write_str(s),
            Entity::Number(n) => write!(f, "{n}"),
            Entity::YesNo(b) => f.write_str(if *b { "yes" } else { "no" }),
            Entity::Date(d) => write!(f, "{d}"),
        }
    }
}

/// Extracts a `kind` entity from `text`; `today` resolves relative dates.
/// An unsure answer ("not sure", "不知道") is no yes/no entity.
pub fn extract(kind: EntityKind, text: &str, today: Date) -> Option<Entity> {
    match kind {
        EntityKind::Digits => digits(text).map(Entity::Digits),
        EntityKind::Number => number(text).map(Entity::Number),
        EntityKind::OrderId => order_id(text, ORDER_ID_MIN_DIGITS).map(Entity::OrderId),
        EntityKind::YesNo => yes_no(text).map(Entity::YesNo),
        EntityKind::Date => date(text, today).map(Entity::Date),
    }
}
