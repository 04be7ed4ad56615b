use super::matches;
use crate::protect::detect::Kind;

fn phones(text: &str) -> Vec<&str> {
    matches(Kind::PhoneCn, text)
}

#[test]
fn finds_mobile_numbers_in_real_world_formats() {
    for (text, want) in [
        ("13800138000", "13800138000"),
        ("call 19912345678 now", "19912345678"),
        ("+86 138 0013 8000", "+86 138 0013 8000"),
        ("+8613800138000", "+8613800138000"),
        ("+86-13800138000", "+86-13800138000"),
        ("0086-138-0013-8000", "0086-138-0013-8000"),
        ("0086 13800138000", "0086 13800138000"),
        ("8613800138000", "8613800138000"),
        ("86 13800138000", "86 13800138000"),
        ("电话13800138000。", "13800138000"),
        ("手机：+86 15912345678，", "+86 15912345678"),
        ("(+86) 199 1234 5678", "199 1234 5678"),
        ("tel:138-0013-8000;", "138-0013-8000"),
        ("138 0013 8000 5", "138 0013 8000"),
    ] {
        assert_eq!(phones(text), [want], "{text:?}");
    }
}

#[test]
fn rejects_near_misses() {
    for text in [
        "12800138000",     // second digit 2
        "11800138000",     // second digit 1
        "1380013800",      // 10 digits
        "138001380001",    // 12 digits
        "138001380001234", // longer number
        "a13800138000",
        "13800138000b",
        "x_13800138000",
        "13800138000_",
        "138 0013-8000",   // mixed separators
        "1380 013 8000",   // not 3-4-4
        "138 00138000",    // one separator only
        "138  0013  8000", // double spaces
        "+86 ",
        "+8612800138000",
        "0086138",
    ] {
        assert!(phones(text).is_empty(), "{text:?}: {:?}", phones(text));
    }
    // A prefix that is not China's: the number alone still is one.
    assert_eq!(phones("+87 13800138000"), ["13800138000"]);
    // A letter before the `+`.
    assert_eq!(phones("a+8613800138000"), ["8613800138000"]);
}
