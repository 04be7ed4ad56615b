use super::matches;
use crate::protect::detect::Kind;

fn ips(text: &str) -> Vec<&str> {
    matches(Kind::Ipv4, text)
}

#[test]
fn finds_addresses() {
    for (text, want) in [
        ("192.168.1.1", "192.168.1.1"),
        ("10.0.0.255", "10.0.0.255"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("dns is 8.8.8.8.", "8.8.8.8"),
        ("(1.2.3.4)", "1.2.3.4"),
        ("ip=127.0.0.1:8080", "127.0.0.1"),
        ("地址10.1.2.3，", "10.1.2.3"),
    ] {
        assert_eq!(ips(text), [want], "{text:?}");
    }
    assert_eq!(ips("1.1.1.1, 2.2.2.2"), ["1.1.1.1", "2.2.2.2"]);
}

#[test]
fn rejects_out_of_range_leading_zeros_and_longer_sequences() {
    for text in [
        "256.1.1.1",
        "1.2.3.256",
        "1.2.3.1000",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.04",
        "1.00.3.4",
        "1.2.3.4.5",
        "version 10.0.0.1.2",
        "v1.2.3.4",
        "1.2.3.4a",
        "1.2.3.4_",
        "11.2.3.4.5.6.7.8",
        "1..2.3.4",
        "1.2.3.",
    ] {
        assert!(ips(text).is_empty(), "{text:?}: {:?}", ips(text));
    }
    // After a non-digit and a dot it is an address.
    assert_eq!(ips("a.1.2.3.4"), ["1.2.3.4"]);
}
