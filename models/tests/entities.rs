//! Entity tables: what a caller says or types → the value a slot gets.

use voxbridge_models::entities::{self, Date, Entity, EntityKind};

/// A Saturday.
fn today() -> Date {
    Date::new(2026, 11, 21).unwrap()
}

#[test]
fn digit_strings() {
    let table: &[(&str, Option<&str>)] = &[
        ("five five two one", Some("5521")),
        ("my account number is five five two one", Some("5521")),
        ("5521", Some("5521")),
        ("55 21", Some("5521")),
        ("5 5 2 1", Some("5521")),
        ("double five two one", Some("5521")),
        ("triple seven", Some("777")),
        ("oh one two three", Some("0123")),
        ("zero one two three", Some("0123")),
        ("fifty two eleven", Some("5211")),
        ("twenty one", Some("21")),
        ("nine one one", Some("911")),
        ("one two three, four five six", Some("123456")),
        ("五五二一", Some("5521")),
        ("我的卡号是五五二一", Some("5521")),
        ("幺三八零零", Some("13800")),
        ("洞幺", Some("01")),
        ("五十二", Some("52")),
        ("５５２１", Some("5521")),
        ("卡号 1234", Some("1234")),
        ("oh no", None),
        ("i don't know", None),
        ("我不知道", None),
        ("", None),
    ];
    for (text, want) in table {
        assert_eq!(entities::digits(text).as_deref(), *want, "{text:?}");
    }
}

#[test]
fn numbers() {
    let table: &[(&str, Option<f64>)] = &[
        ("fifty-two", Some(52.0)),
        ("fifty two", Some(52.0)),
        ("three", Some(3.0)),
        ("i'd like three of them", Some(3.0)),
        ("one hundred and five", Some(105.0)),
        ("a hundred", Some(100.0)),
        ("two thousand", Some(2000.0)),
        ("two thousand and twenty six", Some(2026.0)),
        ("one million two hundred thousand", Some(1_200_000.0)),
        ("twelve", Some(12.0)),
        ("nineteen ninety", Some(1990.0)),
        ("1,000", Some(1000.0)),
        ("52", Some(52.0)),
        ("five five", Some(55.0)),
        ("二十三", Some(23.0)),
        ("要三个", Some(3.0)),
        ("一百零五", Some(105.0)),
        ("两千", Some(2000.0)),
        ("一万二", Some(12000.0)),
        ("三百五", Some(350.0)),
        ("十", Some(10.0)),
        ("我要一个", Some(1.0)),
        ("none", None),
        ("a question", None),
        // Where the dialog's copy read them otherwise (305, 10002, 10, 99,
        // 2.5 as 25 here): one reader now, the colloquial reading.
        ("nineteen eighty", Some(1980.0)),
        ("about 2.5 kilos", Some(2.5)),
        ("一万零二", Some(10_002.0)),
        ("没有", None),
    ];
    for (text, want) in table {
        assert_eq!(entities::number(text), *want, "{text:?}");
    }
}

#[test]
fn order_ids() {
    let table: &[(&str, Option<&str>)] = &[
        ("ORD-12345", Some("ORD12345")),
        ("my order is ab1234", Some("AB1234")),
        ("a b one two three four", Some("AB1234")),
        ("alpha bravo five five two one", Some("AB5521")),
        ("order number one two three four five", Some("12345")),
        ("it's 4 5 6 7 8", Some("45678")),
        ("订单号是五五二一", Some("5521")),
        ("订单号 45678", Some("45678")),
        ("x ray one two three four", Some("X1234")),
        ("one two", None),
        ("i don't have it", None),
    ];
    for (text, want) in table {
        assert_eq!(
            entities::order_id(text, entities::ORDER_ID_MIN_DIGITS).as_deref(),
            *want,
            "{text:?}"
        );
    }
}

#[test]
fn yes_and_no() {
    let table: &[(&str, Option<bool>)] = &[
        ("yes", Some(true)),
        ("Yeah, sure.", Some(true)),
        ("yep that's right", Some(true)),
        ("that's correct", Some(true)),
        ("of course", Some(true)),
        ("no problem", Some(true)),
        ("okay go ahead", Some(true)),
        ("no", Some(false)),
        ("nope", Some(false)),
        ("no thanks", Some(false)),
        ("that's not right", Some(false)),
        ("not really", Some(false)),
        ("absolutely not", Some(false)),
        ("of course not", Some(false)),
        ("i don't think so", Some(false)),
        ("wrong", Some(false)),
        ("yes no", None),
        ("i'm not sure", None),
        ("hello", None),
        ("是", Some(true)),
        ("是的", Some(true)),
        ("对", Some(true)),
        ("对对对", Some(true)),
        ("没错", Some(true)),
        ("没问题", Some(true)),
        ("可以", Some(true)),
        ("好的", Some(true)),
        ("不错", Some(true)),
        ("嗯", Some(true)),
        ("不", Some(false)),
        ("不是", Some(false)),
        ("不是的", Some(false)),
        ("不对", Some(false)),
        ("不要了", Some(false)),
        ("没有", Some(false)),
        ("算了", Some(false)),
        ("当然不", Some(false)),
        ("不可以", Some(false)),
        ("对不对", None),
        ("好不好", None),
        ("我不知道", None),
        ("not sure", None),
        ("不知道", None),
        ("你好", Some(true)), // 好 alone reads as yes; intent decides greetings
    ];
    for (text, want) in table {
        assert_eq!(entities::yes_no(text), *want, "{text:?}");
    }
}

#[test]
fn dates() {
    let t = today();
    let table: &[(&str, Option<&str>)] = &[
        ("today", Some("2026-11-21")),
        ("tomorrow", Some("2026-11-22")),
        ("the day after tomorrow", Some("2026-11-23")),
        ("yesterday", Some("2026-11-20")),
        ("in three days", Some("2026-11-24")),
        ("in a week", Some("2026-11-28")),
        ("two weeks from now", Some("2026-12-05")),
        ("monday", Some("2026-11-23")),
        ("next monday", Some("2026-11-23")),
        ("on Friday", Some("2026-11-27")),
        ("next Friday", Some("2026-11-27")),
        ("saturday", Some("2026-11-28")),
        ("this saturday", Some("2026-11-21")),
        ("this thursday", Some("2026-11-19")),
        ("December 3rd", Some("2026-12-03")),
        ("march fifth", Some("2027-03-05")),
        ("the 5th of March", Some("2027-03-05")),
        ("5 march 2028", Some("2028-03-05")),
        ("twenty first of december", Some("2026-12-21")),
        ("december twenty first", Some("2026-12-21")),
        ("on the 25th", Some("2026-11-25")),
        ("the fifth", Some("2026-12-05")),
        ("2026-12-24", Some("2026-12-24")),
        ("you may call", None),
        ("今天", Some("2026-11-21")),
        ("明天", Some("2026-11-22")),
        ("明天下午", Some("2026-11-22")),
        ("后天", Some("2026-11-23")),
        ("大后天", Some("2026-11-24")),
        ("昨天", Some("2026-11-20")),
        ("三天后", Some("2026-11-24")),
        ("3天以后", Some("2026-11-24")),
        ("周一", Some("2026-11-23")),
        ("星期五", Some("2026-11-27")),
        ("下周一", Some("2026-11-23")),
        ("下周三", Some("2026-11-25")),
        ("下个星期五", Some("2026-11-27")),
        ("这周四", Some("2026-11-19")),
        ("周日", Some("2026-11-22")),
        ("下下周一", Some("2026-11-30")),
        ("3月5日", Some("2027-03-05")),
        ("三月五号", Some("2027-03-05")),
        ("十二月二十四日", Some("2026-12-24")),
        ("2027年1月2日", Some("2027-01-02")),
        ("二十五号", Some("2026-11-25")),
        ("五号", Some("2026-12-05")),
        ("这个月的账单", None),
        ("我不知道", None),
    ];
    for (text, want) in table {
        assert_eq!(
            entities::date(text, t).map(|d| d.to_string()).as_deref(),
            *want,
            "{text:?}"
        );
    }
}

#[test]
fn extract_by_kind_and_slot_strings() {
    let t = today();
    let cases = [
        ("digits", "five five two one", "5521"),
        ("number", "fifty-two", "52"),
        ("order_id", "a b one two three four", "AB1234"),
        ("yes_no", "不是", "no"),
        ("yesno", "yeah", "yes"),
        ("date", "明天", "2026-11-22"),
    ];
    for (kind, text, want) in cases {
        let k = EntityKind::from_name(kind).unwrap();
        let e = entities::extract(k, text, t).unwrap();
        assert_eq!(e.to_string(), want, "{kind} {text:?}");
    }
    assert_eq!(EntityKind::from_name("colour"), None);
    assert_eq!(
        entities::extract(EntityKind::YesNo, "yes", t),
        Some(Entity::YesNo(true))
    );
}

#[test]
fn no_panics_on_odd_input() {
    let t = today();
    let odd = [
        "",
        " ",
        "\u{0}",
        "--",
        "1,,,2",
        "99999999999999999999999",
        "亿亿亿",
        "十十十",
        "零零零",
        "double",
        "triple triple",
        "月",
        "年月日",
        "31号",
        "2月30日",
        "the 32nd",
        "february 30",
        "day",
        "in days",
        "next",
        "下周",
        "周",
        "🙂🙂",
        "ａｂｃ１２３",
        "'''",
        "o o o",
        "1.2.3.4",
        "99999999999999999999999.5",
        ".5",
        "5.",
    ];
    for s in odd {
        for k in [
            EntityKind::Digits,
            EntityKind::Number,
            EntityKind::OrderId,
            EntityKind::YesNo,
            EntityKind::Date,
        ] {
            let _ = entities::extract(k, s, t);
        }
    }
    assert_eq!(entities::date("february 30", t), None);
    assert_eq!(entities::date("2月30日", t), None);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "one",
        "two",
        "oh",
        "double",
        "triple",
        "hundred",
        "thousand",
        "billion",
        "and",
        "a",
        "fifty",
        "twelve",
        "next",
        "this",
        "monday",
        "march",
        "the",
        "5th",
        "of",
        "in",
        "days",
        "weeks",
        "from",
        "now",
        "not",
        "yes",
        "no",
        "x",
        "ray",
        "alpha",
        "1",
        "99999999999",
        "二",
        "十",
        "百",
        "千",
        "万",
        "亿",
        "零",
        "两",
        "月",
        "日",
        "号",
        "年",
        "天",
        "后",
        "周",
        "下",
        "这",
        "不",
        "是",
        "对",
        "-",
        ",",
        ".",
        "2.5",
        "sure",
        "知道",
        " ",
    ];

    proptest! {
        #[test]
        fn on_word_salad(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..12)) {
            let text = words.join(" ");
            let glued = words.concat();
            for s in [&text, &glued] {
                for k in [EntityKind::Digits, EntityKind::Number, EntityKind::OrderId, EntityKind::YesNo, EntityKind::Date] {
                    let _ = entities::extract(k, s, today());
                }
            }
        }

        #[test]
        fn on_any_string(s in "\\PC{0,40}") {
            for k in [EntityKind::Digits, EntityKind::Number, EntityKind::OrderId, EntityKind::YesNo, EntityKind::Date] {
                let _ = entities::extract(k, &s, today());
            }
        }
    }
}

/// The hand-written calendar had no upper end: "tomorrow" on the last day
/// it accepts was `10000-01-01`, a date `Date::new` itself refuses.
#[test]
fn relative_dates_stop_at_the_ends_of_the_calendar() {
    let last = Date::new(9999, 12, 31).unwrap();
    let first = Date::new(1, 1, 1).unwrap();
    assert_eq!(entities::date("tomorrow", last), None);
    assert_eq!(entities::date("明天", last), None);
    assert_eq!(entities::date("next week", last), None);
    assert_eq!(entities::date("yesterday", first), None);
    assert_eq!(entities::date("today", last), Some(last));
    // Digits the recogniser wrote as a date must be the ISO form exactly.
    assert_eq!(entities::date("on 2026-2-3", today()), None);
    assert_eq!(
        entities::date("on 2026-12-03.", today()).map(|d| d.to_string()),
        Some("2026-12-03".into())
    );
}
