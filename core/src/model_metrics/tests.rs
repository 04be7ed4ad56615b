use super::*;

fn models() -> MetricModels {
    let patterns: Vec<ModelPattern> = ["qwen3:*", "qwen3:8b", "llama3.2", "qwen3:8b"]
        .iter()
        .map(|p| ModelPattern::parse(p).unwrap())
        .collect();
    MetricModels::new(&patterns)
}

#[test]
fn named_models_are_labels_others_fold_into_other() {
    let m = models();
    assert_eq!(m.label("qwen3:8b"), "qwen3:8b");
    // Exact names win over a pattern listed earlier.
    assert_eq!(m.label("registry.ollama.ai/library/qwen3:8b"), "qwen3:8b");
    assert_eq!(m.label("qwen3:32b"), "qwen3:*");
    assert_eq!(m.label("qwen3:anything-a-client-makes-up"), "qwen3:*");
    assert_eq!(m.label("llama3.2"), "llama3.2:latest");
    assert_eq!(m.label("mistral:7b"), OTHER);
    assert_eq!(m.label(""), OTHER);
    assert_eq!(MetricModels::default().label("qwen3:8b"), OTHER);
}

#[test]
fn records_name_the_metric_then_rule_then_model_last() {
    let sample = Sample {
        rule: "chat".into(),
        model: "llama3.2:latest".into(),
        tokens: Some((12, 34)),
        error: None,
        duration_ms: 250,
        first_token_ms: Some(40),
    };
    assert_eq!(
        sample.records(),
        vec![
            Record::Count("model.requests.rule.chat.model.llama3.2:latest".into(), 1),
            Record::Count(
                "model.prompt_tokens.rule.chat.model.llama3.2:latest".into(),
                12
            ),
            Record::Count(
                "model.completion_tokens.rule.chat.model.llama3.2:latest".into(),
                34
            ),
            Record::Histogram(
                "model.duration_ms.rule.chat.model.llama3.2:latest".into(),
                250
            ),
            Record::Histogram(
                "model.first_token_ms.rule.chat.model.llama3.2:latest".into(),
                40
            ),
        ]
    );
    let failed = Sample {
        error: Some("RATE_LIMITED".into()),
        tokens: None,
        first_token_ms: None,
        ..sample
    };
    assert!(failed.records().contains(&Record::Count(
        "model.errors.code.RATE_LIMITED.rule.chat.model.llama3.2:latest".into(),
        1
    )));
}

#[test]
fn upstream_statuses_get_codes() {
    assert_eq!(upstream_error_code(404), "MODEL_NOT_FOUND");
    assert_eq!(upstream_error_code(503), "UPSTREAM_ERROR");
    assert_eq!(upstream_error_code(400), "UPSTREAM_400");
}
