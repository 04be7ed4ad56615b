use super::{found, luhn, with_luhn_digit, without_luhn_digit};
use crate::protect::detect::Kind;

const BOTH: [Kind; 2] = [Kind::CreditCard, Kind::BankCard];

fn credit(text: &str) -> Vec<&str> {
    super::matches(Kind::CreditCard, text)
}

fn bank(text: &str) -> Vec<&str> {
    super::matches(Kind::BankCard, text)
}

#[test]
fn finds_credit_cards_of_every_issuer_and_grouping() {
    for (text, want) in [
        ("4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("card:4111111111111111;", "4111111111111111"),
        ("5555555555554444", "5555555555554444"),
        ("5555 5555 5555 4444", "5555 5555 5555 4444"),
        ("2223003122003222", "2223003122003222"), // Mastercard 2-series
        ("378282246310005", "378282246310005"),   // Amex
        ("3782 822463 10005", "3782 822463 10005"),
        ("3782-822463-10005", "3782-822463-10005"),
        ("6011111111111117", "6011111111111117"), // Discover
        ("3530111333300000", "3530111333300000"), // JCB
        ("4222222222222", "4222222222222"),       // Visa 13
        ("30569309025904", "30569309025904"),     // Diners 14
        ("3056 930902 5904", "3056 930902 5904"),
        ("6212345678901232", "6212345678901232"), // UnionPay
        ("卡号6212 3456 7890 1232。", "6212 3456 7890 1232"),
        // An expiry date or CVV after it is fine.
        ("4111 1111 1111 1111 12/25", "4111 1111 1111 1111"),
        ("4111111111111111 123", "4111111111111111"),
    ] {
        assert!(luhn(want), "{want}");
        assert_eq!(credit(text), [want], "{text:?}");
    }
}

#[test]
fn the_longest_grouping_that_is_a_card_wins() {
    assert!(!luhn("4111111111111111123"));
    assert_eq!(credit("4111 1111 1111 1111 123"), ["4111 1111 1111 1111"]);
    // A 19-digit Visa grouped 4-4-4-4-3.
    let visa19 = with_luhn_digit("411111111111111112");
    let grouped = format!(
        "{} {} {} {} {}",
        &visa19[..4],
        &visa19[4..8],
        &visa19[8..12],
        &visa19[12..16],
        &visa19[16..]
    );
    assert_eq!(credit(&grouped), [grouped.as_str()]);
    assert_eq!(credit(&visa19), [visa19.as_str()]);
}

#[test]
fn rejects_luhn_failures_bad_groupings_unknown_issuers_and_adjacency() {
    let bad_luhn = without_luhn_digit("411111111111111");
    for text in [
        bad_luhn.as_str(),
        "4111 1111 1111 1112",
        "4111 1111-1111 1111",  // mixed separators
        "4111  1111 1111 1111", // double space
        "41111 111 1111 1111",
        "411 1111 1111 11111",
        "4111 111111 11111", // 4-6-5 is Amex's only
        "x4111111111111111",
        "4111111111111111x",
        "4111 1111 1111 1111x",
        "_4111111111111111",
        "14111111111111111111", // 20 digits
        "41111111111111111111111",
    ] {
        assert!(credit(text).is_empty(), "{text:?}: {:?}", credit(text));
    }
    // Right Luhn, unknown issuer or wrong length for the issuer.
    for prefix in [
        "123456789012345",
        "41111111111111",
        "5555555555554",
        "3782822463100",
    ] {
        let number = with_luhn_digit(prefix);
        assert!(credit(&number).is_empty(), "{number}");
    }
}

#[test]
fn bank_cards_are_16_to_19_luhn_digits() {
    let icbc = with_luhn_digit("955880123456789012"); // 19 digits, no card issuer
    assert_eq!(bank(&icbc), [icbc.as_str()]);
    assert!(credit(&icbc).is_empty());
    let unionpay = with_luhn_digit("622202123456789012");
    assert_eq!(bank(&unionpay), [unionpay.as_str()]);
    let grouped = "6222 0212 3456 7890 128";
    assert!(luhn(grouped));
    assert_eq!(bank(grouped), [grouped]);
    let sixteen = with_luhn_digit("123456781234567");
    assert_eq!(bank(&sixteen), [sixteen.as_str()]);
    // Only bank_card enabled: a Visa number is a bank card too (16..=19 digits).
    assert_eq!(bank("4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
    // Too short for a bank card, a leading 0, Luhn failure, Amex grouping.
    for text in [
        "378282246310005".to_string(),
        with_luhn_digit("012345678901234"),
        without_luhn_digit("955880123456789012"),
        "3782 822463 10005".to_string(),
    ] {
        assert!(bank(&text).is_empty(), "{text}");
    }
}

#[test]
fn with_both_enabled_a_credit_card_is_a_credit_card() {
    let icbc = with_luhn_digit("955880123456789012");
    let text = format!("visa 4111111111111111, icbc {icbc}, unionpay 6212345678901232");
    assert_eq!(
        found(&BOTH, &text),
        [
            (Kind::CreditCard, "4111111111111111"),
            (Kind::BankCard, icbc.as_str()),
            (Kind::CreditCard, "6212345678901232"),
        ]
    );
}
