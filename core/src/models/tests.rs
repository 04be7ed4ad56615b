use super::*;

fn list(entries: &[(&[&str], &[&str])]) -> ModelAllowList {
    ModelAllowList::new(
        entries
            .iter()
            .map(|(scopes, models)| {
                (
                    scopes.iter().map(|s| s.to_string()).collect(),
                    models
                        .iter()
                        .map(|m| ModelPattern::parse(m).unwrap())
                        .collect(),
                )
            })
            .collect(),
    )
}

fn scopes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn canonical_names_trim_lowercase_and_add_latest() {
    assert_eq!(canonical_model("qwen3"), "qwen3:latest");
    assert_eq!(canonical_model(" Qwen3:32B\t"), "qwen3:32b");
    assert_eq!(canonical_model("QWEN3:latest"), "qwen3:latest");
    assert_eq!(canonical_model("user/model"), "user/model:latest");
    // A registry's port is not a tag.
    assert_eq!(
        canonical_model("reg.local:5000/user/model"),
        "reg.local:5000/user/model:latest"
    );
    // Ollama's default registry and namespace name the same model.
    assert_eq!(canonical_model("library/qwen3:32b"), "qwen3:32b");
    assert_eq!(
        canonical_model("Registry.Ollama.AI/library/Qwen3:32b"),
        "qwen3:32b"
    );
    assert_eq!(
        ModelPattern::parse("library/qwen3:*"),
        Ok(ModelPattern::AnyTag("qwen3".into()))
    );
    assert_eq!(canonical_model("  "), "");
    assert_eq!(canonical_model(""), "");
}

#[test]
fn patterns_are_checked() {
    assert_eq!(
        ModelPattern::parse("Qwen3"),
        Ok(ModelPattern::Exact("qwen3:latest".into()))
    );
    assert_eq!(
        ModelPattern::parse("qwen3:*"),
        Ok(ModelPattern::AnyTag("qwen3".into()))
    );
    for bad in [
        "", " qwen3", "qwen 3", "qwen3\n", "*", "qwen*", "qwen3:*b", "*:8b", ":*", "a:b:c",
        "qwen3:", ":8b", "q*:*",
    ] {
        assert!(ModelPattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_first_entry_whose_scopes_the_caller_holds_decides() {
    let allow = list(&[
        (&["team:research"], &["qwen3:32b", "qwen3:*"]),
        (&[], &["qwen3:8b"]),
    ]);
    let research = scopes(&["chat", "team:research"]);
    assert!(allow.may_use(&research, "qwen3:32b"));
    assert!(allow.may_use(&research, "qwen3:0.6b"));
    assert!(
        allow.may_use(&research, "qwen3"),
        "qwen3:latest, a tag of qwen3"
    );
    assert!(!allow.may_use(&research, "llama3:8b"));
    assert!(!allow.may_use(&research, "qwen3x:8b"));
    // Everyone else: the second entry only.
    assert!(allow.may_use(&[], "qwen3:8b"));
    assert!(!allow.may_use(&[], "qwen3:32b"));
    assert!(!allow.may_use(&scopes(&["team:other"]), "qwen3"));
}

#[test]
fn no_matching_entry_allows_no_model() {
    let allow = list(&[(&["a", "b"], &["qwen3:*"])]);
    assert!(
        !allow.may_use(&scopes(&["a"]), "qwen3:8b"),
        "needs all scopes"
    );
    assert!(allow.may_use(&scopes(&["b", "a"]), "qwen3:8b"));
    assert!(!allow.may_use(&[], ""));
}

#[test]
fn every_spelling_of_a_model_gets_the_same_decision() {
    let allow = list(&[(&[], &["qwen3", "llama3:8B"])]);
    for spelling in [
        "qwen3",
        "qwen3:latest",
        " QWEN3 ",
        "Qwen3:Latest",
        "llama3:8b",
        "LLAMA3:8b",
    ] {
        assert!(allow.may_use(&[], spelling), "{spelling:?}");
    }
    for other in ["qwen3:8b", "llama3", "", " "] {
        assert!(!allow.may_use(&[], other), "{other:?}");
    }
}

#[test]
fn model_routes_and_the_model_of_a_body() {
    for path in [
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/embeddings/",
        "/v1/embeddings",
    ] {
        assert!(names_model_in_body("POST", path), "{path}");
    }
    assert!(!names_model_in_body("GET", "/api/chat"));
    assert!(!names_model_in_body("POST", "/api/tags"));
    assert_eq!(
        requested_model(br#"{"model": "qwen3", "prompt": "x"}"#),
        Ok("qwen3".into())
    );
    assert_eq!(
        requested_model(br#"{"model": "a", "model": "b"}"#),
        Err("the body has a duplicate key".into())
    );
    assert_eq!(
        requested_model(br#"{"prompt": "x"}"#),
        Err("model is required".into())
    );
    // Ollama reads keys case-insensitively, the last one winning: a second spelling of `model`
    // is refused, as is a digest the allow-list cannot judge.
    for body in [
        &br#"{"model": "qwen3:8b", "MODEL": "qwen3:32b"}"#[..],
        br#"{"Model": "qwen3:32b"}"#,
    ] {
        assert!(
            requested_model(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(requested_model(br#"{"model": "qwen3@sha256:abc"}"#).is_err());
    assert_eq!(
        requested_model(br#"{"model": " "}"#),
        Err("model is required".into())
    );
    assert_eq!(
        requested_model(br#"{"model": 1}"#),
        Err("model must be a string".into())
    );
    assert!(requested_model(b"[]").is_err());
    assert!(requested_model(b"{").is_err());
}
