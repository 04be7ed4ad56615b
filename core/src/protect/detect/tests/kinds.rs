use super::{found, spans};
use crate::protect::detect::{Detectors, Kind, Span};

#[test]
fn names_round_trip() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "email",
            "phone_cn",
            "id_card_cn",
            "bank_card",
            "credit_card",
            "ssn_us",
            "ipv4",
            "api_key",
            "jwt"
        ]
    );
    for kind in Kind::ALL {
        assert_eq!(Kind::parse(kind.name()), Some(kind));
    }
    assert_eq!(Kind::parse("Email"), None);
    assert_eq!(Kind::parse(""), None);
    assert_eq!(Kind::parse("credit-card"), None);
}

#[test]
fn no_detectors_find_nothing() {
    let d = Detectors::new(&[]);
    assert!(d.is_empty());
    assert!(!Detectors::new(&[Kind::Jwt]).is_empty());
    assert!(spans(&d, "bob@example.com 4111111111111111", 0).is_empty());
    assert_eq!(d.undecided_from("bob@example.com", 0), 15);
}

#[test]
fn only_enabled_kinds_are_reported() {
    let text = "bob@example.com 13800138000 4111111111111111 8.8.8.8";
    assert_eq!(found(&[Kind::Ipv4], text), [(Kind::Ipv4, "8.8.8.8")]);
    assert_eq!(
        found(&[Kind::Email, Kind::PhoneCn], text),
        [
            (Kind::Email, "bob@example.com"),
            (Kind::PhoneCn, "13800138000")
        ]
    );
}

#[test]
fn every_kind_in_one_text() {
    let jwt = super::jwt::JWT_IO;
    let text = format!(
        "邮箱 bob@example.com, 手机 +86 138 0013 8000, 身份证 11010519491231002X, \
         bank 9558801234567890128, visa 4111-1111-1111-1111, ssn 078-05-1120, \
         ip 10.0.0.1, key AKIAIOSFODNN7EXAMPLE, token {jwt}."
    );
    assert_eq!(
        found(&Kind::ALL, &text),
        [
            (Kind::Email, "bob@example.com"),
            (Kind::PhoneCn, "+86 138 0013 8000"),
            (Kind::IdCardCn, "11010519491231002X"),
            (Kind::BankCard, "9558801234567890128"),
            (Kind::CreditCard, "4111-1111-1111-1111"),
            (Kind::SsnUs, "078-05-1120"),
            (Kind::Ipv4, "10.0.0.1"),
            (Kind::ApiKey, "AKIAIOSFODNN7EXAMPLE"),
            (Kind::Jwt, jwt),
        ]
    );
}

#[test]
fn overlaps_go_to_the_earlier_start_then_the_longer() {
    // An email whose local part is a key: same start, the email is longer.
    let text = "sk-abcdefghij0123456789xyz@example.com";
    assert_eq!(found(&Kind::ALL, text), [(Kind::Email, text)]);
    // The phone with its prefix beats the `86...` and the bare number inside it.
    assert_eq!(
        found(&Kind::ALL, "+86 13800138000"),
        [(Kind::PhoneCn, "+86 13800138000")]
    );
    // A later match overlapping an earlier one is dropped, the next one is kept.
    let text = "x@1.2.3.4.example.com 1.2.3.4";
    assert_eq!(
        found(&[Kind::Email, Kind::Ipv4], text),
        [
            (Kind::Email, "x@1.2.3.4.example.com"),
            (Kind::Ipv4, "1.2.3.4")
        ]
    );
}

#[test]
fn from_leaves_earlier_text_as_context_only() {
    let d = Detectors::new(&Kind::ALL);
    let text = "bob@example.com 13800138000";
    assert_eq!(
        spans(&d, text, 1),
        [Span {
            start: 16,
            end: 27,
            kind: Kind::PhoneCn
        }]
    );
    // The byte before `from` still counts for the boundary.
    assert!(spans(&d, "a13800138000", 1).is_empty());
    assert_eq!(spans(&d, "a 13800138000", 2).len(), 1);
    // Past the end, or inside a char: nothing, no panic.
    assert!(spans(&d, "abc", 10).is_empty());
    let mut out = Vec::new();
    d.find("电话13800138000", 1, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn undecided_from_holds_only_what_could_still_change() {
    let d = Detectors::new(&Kind::ALL);
    let cases: &[(&str, usize)] = &[
        ("hello ", 6),
        ("hello", 0), // could be an email's local part
        ("say hello", 4),
        ("card 4111 1111 1111 1111", 5), // could grow to 19 digits
        ("card 4111 1111 1111 1111.", 25),
        ("card 4111 1111 1111 1111 ", 5), // a group may follow
        ("mail bob@example.com", 5),
        ("mail bob@example.com ", 21),
        ("mail bob@example.com.", 5), // `.au` may follow
        ("call 138", 5),
        ("call +", 5),
        ("ip 1.2.3.4", 3),
        ("ip 1.2.3.4.", 3), // `.5` would unmake it
        ("ip 1.2.3.4. ", 12),
        ("key s", 4),
        ("key sk-", 4),
        ("token e", 6),
        ("中文", 6),
        ("", 0),
    ];
    for &(text, want) in cases {
        assert_eq!(d.undecided_from(text, 0), want, "{text:?}");
    }
    // Cards only: a trailing word cannot become one.
    let cards = Detectors::new(&[Kind::CreditCard]);
    assert_eq!(cards.undecided_from("hello", 0), 5);
    assert_eq!(cards.undecided_from("hello 4111", 0), 6);
    // A run that started before `from` can only make matches starting before it: ignored.
    assert_eq!(d.undecided_from("hello", 3), 5);
    assert_eq!(d.undecided_from("hello wor", 3), 6);
    assert_eq!(d.undecided_from("hello", 9), 5);
}

#[test]
fn an_undecided_start_inside_a_decided_match_does_not_hold_it() {
    let d = Detectors::new(&[Kind::Email]);
    // `example.com+x` could become a local part, but an email starting there would overlap
    // `bob@example.com`, which starts earlier and is decided.
    assert_eq!(d.undecided_from("bob@example.com+x", 0), 17);
    // Not inside: held.
    assert_eq!(d.undecided_from("bob@example.com x", 0), 16);
}
