use super::matches;
use crate::protect::detect::Kind;

fn keys(text: &str) -> Vec<&str> {
    matches(Kind::ApiKey, text)
}

#[test]
fn finds_keys_of_every_provider() {
    let openai = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
    let project = "sk-proj-Ab3_dEf-GhIjKlMnOpQrStUvWxYz0123456789";
    let anthropic = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEf";
    let github = format!("ghp_{}", "aB3".repeat(12));
    let github_pat = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz";
    let google = format!("AIza{}", "SyA-1_b".repeat(5));
    for key in [
        openai,
        project,
        anthropic,
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPLE",
        github.as_str(),
        &github.replace("ghp_", "gho_"),
        &github.replace("ghp_", "ghs_"),
        github_pat,
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-1234567890",
        google.as_str(),
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ] {
        assert_eq!(keys(key), [key], "{key}");
        for text in [
            format!("key={key}"),
            format!("\"{key}\","),
            format!("Authorization: Bearer {key}\n"),
            format!("密钥：{key}。"),
        ] {
            assert_eq!(keys(&text), [key], "{text}");
        }
    }
}

#[test]
fn rejects_near_misses() {
    for text in [
        "sk-short123",
        "sk-learn-compatible-estimators", // no digit: prose, not a key
        "mysk-abcdefghijklmnopqrstuvwxyz0123456789",
        "task-abcdefghijklmnopqrstuvwxyz0123456789",
        "my-sk-abcdefghijklmnopqrstuvwxyz0123456789",
        "-AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPL",   // 15
        "AKIAIOSFODNN7EXAMPLEX", // 17
        "AKIAiosfodnn7example",  // lower case
        "XAKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE_",
        "ghx_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3",
        "xoxc-1234567890",
        "xoxb-123456789",
        "sk_live_short",
        "pk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ] {
        assert!(keys(text).is_empty(), "{text:?}: {:?}", keys(text));
    }
    let github = format!("ghp_{}", "a".repeat(36));
    assert_eq!(keys(&github), [github.as_str()]);
    assert!(keys(&format!("ghp_{}", "a".repeat(35))).is_empty());
    assert!(keys(&format!("ghp_{}", "a".repeat(37))).is_empty());
    assert!(keys(&format!("AIza{}", "a".repeat(34))).is_empty());
    assert!(keys(&format!("AIza{}", "a".repeat(36))).is_empty());
    assert!(keys(&format!("AIza{}-", "a".repeat(35))).is_empty());
    assert!(keys(&format!("github_pat_{}", "a".repeat(21))).is_empty());
}

#[test]
fn twenty_body_characters_are_enough() {
    assert_eq!(keys("sk-abcdefghijklmnopqr12"), ["sk-abcdefghijklmnopqr12"]);
    assert!(keys("sk-abcdefghijklmnopq12").is_empty());
}

#[test]
fn a_long_run_is_cut_at_the_cap() {
    let key = format!("sk-1{}", "a".repeat(400));
    let text = format!("x {key} y");
    assert_eq!(keys(&text), [&key[..256]]);
}
