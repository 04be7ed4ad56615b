use super::*;

fn matches(patterns: &Patterns, text: &str) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    patterns.find(text, 0, |s, e, p| found.push((s, e, p)));
    found
}

#[test]
fn finds_every_pattern_in_one_pass_with_its_index() {
    let p = Patterns::new(&["EMP-[0-9]{6}", "(?i)project\\s+(phoenix|falcon)"]).unwrap();
    let text = "EMP-123456 works on Project  Falcon and EMP-12345";
    assert_eq!(matches(&p, text), vec![(0, 10, 0), (20, 35, 1)]);
}

#[test]
fn from_keeps_look_behind_context() {
    let p = Patterns::new(&[r"\bAB[0-9]{2}\b"]).unwrap();
    let mut found = Vec::new();
    // `xAB12` is not at a word boundary, though the search starts at the `A`.
    p.find("xAB12 AB34", 1, |s, e, _| found.push((s, e)));
    assert_eq!(found, vec![(6, 10)]);
}

#[test]
fn first_match_names_the_pattern() {
    let p = Patterns::new(&["secret", "(?i)internal use only"]).unwrap();
    assert_eq!(p.first_match("for INTERNAL use only"), Some(1));
    assert_eq!(p.first_match("public"), None);
}

#[test]
fn undecided_from_holds_only_a_possible_start() {
    let p = Patterns::new(&["EMP-[0-9]{6}"]).unwrap();
    let mut cache = p.cache();
    assert_eq!(p.undecided_from("id EM", 0, &mut cache), 3);
    assert_eq!(p.undecided_from("id EMP-12", 0, &mut cache), 3);
    assert_eq!(p.undecided_from("id EMX", 0, &mut cache), 6);
    assert_eq!(p.undecided_from("no match here", 0, &mut cache), 13);
    // A complete match followed by text is decided.
    assert_eq!(p.undecided_from("EMP-123456 ok", 0, &mut cache), 13);
    // Never before `from`.
    assert_eq!(p.undecided_from("EM", 1, &mut cache), 2);
}

#[test]
fn unbounded_patterns_hold_at_most_the_bound() {
    let p = Patterns::new(&["EMP-[0-9]+"]).unwrap();
    let mut cache = p.cache();
    let text = format!("x EMP-{}", "1".repeat(200));
    assert_eq!(p.undecided_from(&text, 0, &mut cache), 2);
    // A match longer than the bound is decided where the bound ends (documented cut).
    let text = format!("x EMP-{}", "1".repeat(1000));
    assert_eq!(p.undecided_from(&text, 0, &mut cache), text.len());
}

#[test]
fn a_word_boundary_at_the_end_is_undecided() {
    let p = Patterns::new(&[r"\bcode\b"]).unwrap();
    let mut cache = p.cache();
    // `code` could become `codes`: held.
    assert_eq!(p.undecided_from("the code", 0, &mut cache), 4);
}

#[test]
fn bad_patterns_are_refused_with_their_index() {
    let e = Patterns::new(&["ok", "(unclosed"]).unwrap_err();
    assert_eq!(e.index, 1);
    assert!(e.reason.starts_with("invalid regex"), "{}", e.reason);
    let e = Patterns::new(&["a*"]).unwrap_err();
    assert_eq!(e.reason, "the regex matches the empty string");
}

#[test]
fn pathological_input_stays_linear() {
    // Classic backtracking traps; the engines here are automata, so this is bounded.
    let p = Patterns::new(&["(a+)+b", "(x|xx)+y"]).unwrap();
    let text = "a".repeat(100_000);
    assert!(matches(&p, &text).is_empty());
    let mut cache = p.cache();
    let at = p.undecided_from(&text, 0, &mut cache);
    assert!(at >= text.len() - MAX_UNBOUNDED_MATCH_BYTES);
}

#[test]
fn word_boundaries_are_ascii_so_cjk_text_around_an_id_counts_as_a_boundary() {
    let p = Patterns::new(&[r"\b[A-Z]{2}[0-9]{6}\b"]).unwrap();
    assert_eq!(matches(&p, "员工编号AB123456已登记"), vec![(12, 20, 0)]);
    assert!(matches(&p, "XAB123456").is_empty());
    // A stream is not held after every CJK character (the DFA never gives up on them).
    let mut cache = p.cache();
    let text = "员工编号";
    assert_eq!(p.undecided_from(text, 0, &mut cache), text.len());
    // `\w` and `(?i)` stay Unicode.
    let p = Patterns::new(&[r"(?i)straße\s\w+"]).unwrap();
    assert_eq!(matches(&p, "STRASSE x STRAẞE\u{3000}数据").len(), 1);
}
