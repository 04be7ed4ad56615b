use super::matches;
use crate::protect::detect::Kind;

fn ssns(text: &str) -> Vec<&str> {
    matches(Kind::SsnUs, text)
}

#[test]
fn finds_dashed_and_spaced_numbers() {
    assert_eq!(ssns("123-45-6789"), ["123-45-6789"]);
    assert_eq!(ssns("SSN: 078-05-1120."), ["078-05-1120"]);
    assert_eq!(ssns("ssn 123 45 6789"), ["123 45 6789"]);
    assert_eq!(ssns("(899-99-9999)"), ["899-99-9999"]);
}

#[test]
fn rejects_invalid_ranges_bare_runs_and_adjacency() {
    for text in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123456789", // bare 9 digits: deliberately not matched
        "123-45 6789",
        "123 45-6789",
        "1123-45-6789",
        "123-45-67890",
        "123-456-789",
        "a123-45-6789",
        "123-45-6789b",
        "12-345-6789",
    ] {
        assert!(ssns(text).is_empty(), "{text:?}");
    }
}
