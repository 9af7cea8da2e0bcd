//! The readings on which the dialog's and the models' copies of the entity
//! extractor disagreed before they became this crate (the dialog's reading
//! first in each comment, then the models'): the right one, each held here.

use voxbridge_entities::{self as entities, answer, Answer, Date};

#[test]
fn colloquial_chinese_numbers() {
    // 305 vs 350: "三百五" is three hundred and fifty, as said.
    assert_eq!(entities::number("三百五"), Some(350.0));
    // 10002 vs 12000: "一万二" is twelve thousand; 零 marks the gap.
    assert_eq!(entities::number("一万二"), Some(12_000.0));
    assert_eq!(entities::number("一万零二"), Some(10_002.0));
    assert_eq!(entities::number("两千五"), Some(2_500.0));
}

#[test]
fn digit_words_in_a_row_are_a_digit_string() {
    // 10 vs 55.
    assert_eq!(entities::number("five five"), Some(55.0));
    assert_eq!(entities::digits("five five").as_deref(), Some("55"));
    // 99 vs 1980: a year said in pairs.
    assert_eq!(entities::number("nineteen eighty"), Some(1980.0));
    assert_eq!(entities::number("twenty twenty six"), Some(2026.0));
    // But words that combine are one number.
    assert_eq!(entities::number("fifty five"), Some(55.0));
}

#[test]
fn decimals_are_numbers() {
    // 2.5 vs 25.
    assert_eq!(entities::number("about 2.5 kilos"), Some(2.5));
    assert_eq!(entities::number("0.75"), Some(0.75));
    assert_eq!(entities::number("2.5 then 3"), Some(2.5));
    assert_eq!(entities::number("3 boxes of 2.5 kilos"), Some(3.0));
    // A full stop after a number is not a decimal point.
    assert_eq!(entities::number("I want 7."), Some(7.0));
    assert_eq!(
        entities::extract(entities::EntityKind::Number, "2.5", today())
            .map(|e| e.to_string())
            .as_deref(),
        Some("2.5")
    );
}

#[test]
fn not_knowing_is_not_a_no() {
    // no vs unsure.
    for text in [
        "not sure",
        "I'm not sure",
        "i don't know",
        "no idea",
        "不知道",
        "我不知道",
        "不确定",
        "不清楚",
    ] {
        assert_eq!(answer(text), Some(Answer::Unsure), "{text:?}");
        assert_eq!(entities::yes_no(text), None, "{text:?}");
    }
    assert_eq!(answer("yes"), Some(Answer::Yes));
    assert_eq!(answer("no thanks"), Some(Answer::No));
    assert_eq!(answer("not interested"), Some(Answer::No));
    assert_eq!(answer("还感兴趣"), Some(Answer::Yes));
    assert_eq!(answer("不感兴趣"), Some(Answer::No));
    assert_eq!(answer("please"), Some(Answer::Yes));
    assert_eq!(answer("yes no"), None);
    assert_eq!(answer("banana"), None);
}

fn today() -> Date {
    Date::new(2026, 11, 21).unwrap()
}

#[test]
fn iso_dates_need_no_today() {
    let d = |s: &str| entities::iso_date(s).map(|d| d.to_string());
    assert_eq!(d("2026-12-24 please").as_deref(), Some("2026-12-24"));
    assert_eq!(d("日期2026-12-24。").as_deref(), Some("2026-12-24"));
    assert_eq!(d("12026-12-24"), None);
    assert_eq!(d("2026-12-245"), None);
    assert_eq!(d("tomorrow"), None);
}
