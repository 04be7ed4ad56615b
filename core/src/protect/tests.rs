use super::detect::Kind;
use super::stream::StreamMasker;
use super::*;

pub(crate) fn rule(name: &str) -> Rule {
    Rule {
        name: name.into(),
        replacement: "[FILTERED]".into(),
    }
}

/// email, credit_card, id_card_cn and a custom `EMP-` number; deny `internal use only`.
pub(crate) fn protector() -> Protector {
    Protector::new(
        vec![
            MaskEntry::Builtin(Kind::Email, rule("email")),
            MaskEntry::Builtin(Kind::CreditCard, rule("credit_card")),
            MaskEntry::Builtin(Kind::IdCardCn, rule("id_card_cn")),
            MaskEntry::Custom("EMP-[0-9]{6}".into(), rule("employee-id")),
        ],
        vec![("internal".into(), "(?i)internal use only".into())],
        true,
    )
    .unwrap()
}

fn counted(p: &Protector, counts: &Counts) -> Vec<(String, u64)> {
    p.named_counts(counts)
        .map(|(n, c)| (n.to_string(), c))
        .collect()
}

#[test]
fn masks_builtin_and_custom_values_and_counts_them() {
    let p = protector();
    let mut counts = Counts::default();
    let text = "Mail bob@example.com, card 4111 1111 1111 1111, id 11010519491231002X, EMP-123456.";
    let masked = p.mask(text, &mut counts).unwrap();
    assert_eq!(
        masked,
        "Mail [FILTERED], card [FILTERED], id [FILTERED], [FILTERED]."
    );
    assert_eq!(
        counted(&p, &counts),
        vec![
            ("email".into(), 1),
            ("credit_card".into(), 1),
            ("id_card_cn".into(), 1),
            ("employee-id".into(), 1)
        ]
    );
}

#[test]
fn text_without_matches_is_not_copied() {
    let p = protector();
    let mut counts = Counts::default();
    assert_eq!(
        p.mask("card 4111 1111 1111 1112 fails Luhn", &mut counts),
        None
    );
    assert!(counts.is_empty());
}

#[test]
fn each_rule_has_its_own_replacement() {
    let p = Protector::new(
        vec![
            MaskEntry::Builtin(
                Kind::Email,
                Rule {
                    name: "email".into(),
                    replacement: "<email>".into(),
                },
            ),
            MaskEntry::Custom("EMP-[0-9]{6}".into(), rule("emp")),
        ],
        vec![],
        false,
    )
    .unwrap();
    let masked = p.mask("a@b.cn EMP-000001", &mut Counts::default()).unwrap();
    assert_eq!(masked, "<email> [FILTERED]");
}

#[test]
fn a_match_inside_another_is_masked_once_and_counted() {
    // The custom pattern matches inside the e-mail address: masked once, both counted.
    let p = Protector::new(
        vec![
            MaskEntry::Builtin(Kind::Email, rule("email")),
            MaskEntry::Custom("example\\.com".into(), rule("domain")),
        ],
        vec![],
        false,
    )
    .unwrap();
    let mut counts = Counts::default();
    let masked = p
        .mask("to bob@example.com or example.com", &mut counts)
        .unwrap();
    assert_eq!(masked, "to [FILTERED] or [FILTERED]");
    assert_eq!(
        counted(&p, &counts),
        vec![("email".into(), 1), ("domain".into(), 2)]
    );
}

#[test]
fn deny_names_the_pattern() {
    let p = protector();
    assert_eq!(p.denied("This is for INTERNAL USE ONLY."), Some("internal"));
    assert_eq!(p.denied("public text"), None);
}

#[test]
fn a_bad_regex_names_its_entry() {
    let e = Protector::new(
        vec![
            MaskEntry::Builtin(Kind::Email, rule("email")),
            MaskEntry::Custom("ok".into(), rule("a")),
            MaskEntry::Custom("(bad".into(), rule("b")),
        ],
        vec![],
        false,
    )
    .unwrap_err();
    assert!(matches!(e, ProtectError::Mask(2, _)), "{e:?}");
    let e = Protector::new(vec![], vec![("x".into(), "[z-a]".into())], false).unwrap_err();
    assert!(
        matches!(e, ProtectError::Deny(ref p) if p.index == 0),
        "{e:?}"
    );
}

/// Streams `pieces` through a masker; what is sent, in order, and the counts.
fn stream(p: &Protector, pieces: &[&str]) -> (String, Counts) {
    let mut masker = StreamMasker::new();
    let mut counts = Counts::default();
    let mut out = String::new();
    for piece in pieces {
        out.push_str(&masker.push(p, piece, &mut counts));
    }
    out.push_str(&masker.finish(p, &mut counts));
    (out, counts)
}

const PLANTED: &str = "Hi, write to bob.smith@example.com or call. Card: 4111-1111-1111-1111; \
    身份证 11010519491231002X 和 EMP-654321 and 5555555555554444.";

#[test]
fn a_stream_split_anywhere_is_masked_like_the_whole_text() {
    let p = protector();
    let mut whole_counts = Counts::default();
    let whole = p.mask(PLANTED, &mut whole_counts).unwrap();
    let cuts: Vec<usize> = (0..=PLANTED.len())
        .filter(|&i| PLANTED.is_char_boundary(i))
        .collect();
    for &i in &cuts {
        let (out, counts) = stream(&p, &[&PLANTED[..i], &PLANTED[i..]]);
        assert_eq!(out, whole, "split at {i}");
        assert_eq!(counts, whole_counts, "split at {i}");
    }
    // Three pieces: every second cut against every fifth.
    for &i in cuts.iter().step_by(2) {
        for &j in cuts.iter().filter(|&&j| j > i).step_by(5) {
            let (out, _) = stream(&p, &[&PLANTED[..i], &PLANTED[i..j], &PLANTED[j..]]);
            assert_eq!(out, whole, "split at {i} and {j}");
        }
    }
}

#[test]
fn a_stream_byte_by_byte_is_masked_like_the_whole_text() {
    let p = protector();
    let pieces: Vec<String> = PLANTED.chars().map(String::from).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let (out, _) = stream(&p, &refs);
    assert_eq!(out, p.mask(PLANTED, &mut Counts::default()).unwrap());
}

#[test]
fn a_stream_sends_text_that_cannot_become_a_match_at_once() {
    let p = protector();
    let mut masker = StreamMasker::new();
    let mut counts = Counts::default();
    // Ends with punctuation and CJK: nothing can grow from there.
    assert_eq!(masker.push(&p, "你好，世界。", &mut counts), "你好，世界。");
    assert_eq!(masker.held_bytes(), 0);
    // A trailing digit run could become a card number: held, and only it.
    assert_eq!(masker.push(&p, "Card 4111 ", &mut counts), "Card ");
    assert_eq!(
        masker.push(&p, "1111 1111 1111. ", &mut counts),
        "[FILTERED]. "
    );
}

#[test]
fn overlapping_matches_of_different_rules_are_masked_as_one() {
    // The custom match ends inside the card number: no digit of either is left.
    let p = protector();
    let mut counts = Counts::default();
    let masked = p.mask("ref EMP-4111111111111111 ok", &mut counts).unwrap();
    assert_eq!(masked, "ref [FILTERED] ok");
    assert_eq!(
        counted(&p, &counts),
        vec![("credit_card".into(), 1), ("employee-id".into(), 1)]
    );
    let p = Protector::new(
        vec![
            MaskEntry::Builtin(Kind::CreditCard, rule("credit_card")),
            MaskEntry::Custom("(?i)acct[ -]?[0-9]{4}".into(), rule("account")),
        ],
        vec![],
        false,
    )
    .unwrap();
    let mut counts = Counts::default();
    let masked = p
        .mask("acct 4111 1111 1111 1111 thanks", &mut counts)
        .unwrap();
    assert_eq!(masked, "[FILTERED] thanks");
    assert_eq!(
        counted(&p, &counts),
        vec![("credit_card".into(), 1), ("account".into(), 1)]
    );
}
