use super::{found, matches};
use crate::protect::detect::Kind;

fn ids(text: &str) -> Vec<&str> {
    matches(Kind::IdCardCn, text)
}

#[test]
fn finds_valid_numbers() {
    assert_eq!(ids("11010519491231002X"), ["11010519491231002X"]);
    assert_eq!(ids("11010519491231002x"), ["11010519491231002x"]);
    assert_eq!(
        ids("身份证号：320106198510152130。"),
        ["320106198510152130"]
    );
    assert_eq!(ids("id 510108197703084510, ok"), ["510108197703084510"]);
    // 29 February of a leap year.
    assert_eq!(ids("440304200002291236"), ["440304200002291236"]);
}

#[test]
fn rejects_bad_checksums_dates_and_shapes() {
    for text in [
        "110105194912310021", // bad check char
        "11010519491231002Y",
        "44030419000229123X", // 1900 is not a leap year (checksum right)
        "440304202302301239", // 30 February
        "440304189912311238", // year 1899
        "440304210001011238", // year 2100
        "440304199013011230", // month 13
        "040304199001011239", // region 0
        "11010519491231002",  // 17 digits
        "11010519491231002X1",
        "111010519491231002X",
        "A11010519491231002X",
        "11010519491231002XA",
        "_11010519491231002X",
    ] {
        assert!(ids(text).is_empty(), "{text:?}");
    }
}

#[test]
fn an_id_that_also_passes_luhn_is_an_id() {
    // Whatever Luhn says about these digits, the ID is reported (same span: the ID wins).
    let text = "440304200002291236";
    assert_eq!(found(&Kind::ALL, text), [(Kind::IdCardCn, text)]);
    let text = "320106198510152130";
    assert_eq!(found(&Kind::ALL, text), [(Kind::IdCardCn, text)]);
}
