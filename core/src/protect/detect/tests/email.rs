use super::{found, matches};
use crate::protect::detect::Kind;

fn emails(text: &str) -> Vec<&str> {
    matches(Kind::Email, text)
}

#[test]
fn finds_addresses_in_real_world_formats() {
    assert_eq!(emails("john.doe@example.com"), ["john.doe@example.com"]);
    assert_eq!(
        emails("Mail a+tag@sub.mail.co.uk or first_last@company-name.io today"),
        ["a+tag@sub.mail.co.uk", "first_last@company-name.io"]
    );
    assert_eq!(emails("x@y.cn"), ["x@y.cn"]);
    assert_eq!(emails("USER%test@EXAMPLE.ORG"), ["USER%test@EXAMPLE.ORG"]);
    assert_eq!(
        emails("联系邮箱：zhang.san@qq.com，谢谢"),
        ["zhang.san@qq.com"]
    );
    assert_eq!(emails("<bob@example.com>"), ["bob@example.com"]);
    assert_eq!(emails("mailto:bob@example.com"), ["bob@example.com"]);
    assert_eq!(
        emails("\"bob-99@mx-1.example.net\""),
        ["bob-99@mx-1.example.net"]
    );
    // A sentence's full stop is not part of the domain.
    assert_eq!(emails("Write to bob@example.com."), ["bob@example.com"]);
    assert_eq!(emails("bob@example.com..."), ["bob@example.com"]);
    assert_eq!(emails("a@b.com,c@d.org"), ["a@b.com", "c@d.org"]);
}

#[test]
fn local_part_is_at_most_64_and_the_whole_run() {
    let local64 = "a".repeat(64);
    let text = format!("{local64}@example.com");
    assert_eq!(emails(&text), [text.as_str()]);
    // 65: not a match, and no 64-character tail of it either.
    assert!(emails(&format!("b{local64}@example.com")).is_empty());
}

#[test]
fn total_is_at_most_254() {
    let label = "a".repeat(63);
    // 64 + 1 + 63*3 + 3 dots... build up to exactly 254 and 255.
    let domain = format!("{label}.{label}.{label}.com"); // 63*3 + 2 + 4 = 195
    let ok_local = "b".repeat(254 - 1 - domain.len());
    let ok = format!("{ok_local}@{domain}");
    assert_eq!(ok.len(), 254);
    assert_eq!(emails(&ok), [ok.as_str()]);
    let long = format!("x{ok}");
    assert_eq!(long.len(), 255);
    assert!(emails(&long).is_empty());
}

#[test]
fn rejects_near_misses() {
    for text in [
        "no-at-sign.example.com",
        "@example.com",
        "bob@",
        "bob@localhost",
        "bob@example.c",
        "bob@example.c0m",
        "bob@example.123",
        ".bob@example.com",
        "bob.@example.com",
        "bo..b@example.com",
        "bob@-example.com",
        "bob@example-.com",
        "bob@example..com",
        "bob@.example.com",
        "bob@example.com_x",
        "bob@exa_mple.com",
        "a@a@a@a",
        "bob @example.com",
    ] {
        assert!(emails(text).is_empty(), "{text:?}: {:?}", emails(text));
    }
    let long_label = format!("bob@{}.com", "a".repeat(64));
    assert!(emails(&long_label).is_empty());
    let label63 = format!("bob@{}.com", "a".repeat(63));
    assert_eq!(emails(&label63), [label63.as_str()]);
}

#[test]
fn a_domain_with_digits_and_an_address_after_the_at_sign() {
    // The TLD must be letters: an IP literal is an IPv4 address, not an email.
    assert_eq!(
        found(&Kind::ALL, "bob@192.168.1.1"),
        [(Kind::Ipv4, "192.168.1.1")]
    );
    assert_eq!(emails("ops@10gen.example.com"), ["ops@10gen.example.com"]);
}
