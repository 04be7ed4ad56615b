//! The bodies the gateway parses whole: OpenAI requests translated for Ollama (chat,
//! completions, embeddings), Ollama's non-streamed answers translated back, and the strict JSON
//! parser under all of them. Properties: never panics; a refused body yields no bytes; an
//! accepted one yields a JSON object naming the model and stream flag it reports (Ollama), or
//! the body unchanged (OpenAI passthrough); what `json::parse_strict` accepts serde_json reads
//! the same and survives a round trip; what refuses duplicates is never translated.
#![no_main]

use gateway_core::json::{parse_strict, StrictJsonError};
use gateway_core::translate::{
    chat_request, chat_response, completion_request, completion_response, embeddings_request,
    embeddings_response, model_object, models_list, Caller, ResponseContext, Target,
};
use gateway_fuzz::settings::translate_config;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = parse_strict(data);
    if let Ok(value) = &strict {
        let text = serde_json::to_vec(value).unwrap_or_default();
        assert_eq!(
            parse_strict(&text).as_ref(),
            Ok(value),
            "round trip changed the value"
        );
        // serde_json keeps the last of duplicates; with none, both read the same document.
        if let Ok(lax) = serde_json::from_slice::<Value>(data) {
            assert_eq!(&lax, value);
        }
    }
    let duplicate = strict == Err(StrictJsonError::DuplicateKey);
    requests(data, duplicate);
    responses(data);
});

fn requests(data: &[u8], duplicate: bool) {
    let caller = Caller {
        user_id: Some("alice".into()),
        session_id: Some("s1".into()),
    };
    for target in [Target::Ollama, Target::OpenAi] {
        let passthrough = target == Target::OpenAi;
        let config = translate_config(target);
        let outputs = [
            chat_request(data, &config, &caller).map(|r| (r.body, Some(r.stream), r.model)),
            completion_request(data, &config, &caller).map(|r| (r.body, Some(r.stream), r.model)),
            embeddings_request(data, &config).map(|r| (r.body, None, r.model)),
        ];
        for output in outputs {
            let Ok((body, stream, model)) = output else {
                continue;
            };
            assert!(!duplicate, "a body with a duplicate key was translated");
            if passthrough {
                assert_eq!(body, data, "passthrough changed the body");
                continue;
            }
            let sent = match parse_strict(&body) {
                Ok(Value::Object(sent)) => sent,
                other => panic!("translated body is not a JSON object: {other:?}"),
            };
            assert_eq!(
                sent.get("model").and_then(Value::as_str),
                Some(model.as_str())
            );
            assert!(!model.is_empty(), "no model sent upstream");
            if let Some(stream) = stream {
                assert_eq!(sent.get("stream").and_then(Value::as_bool), Some(stream));
            }
        }
    }
}

fn responses(data: &[u8]) {
    let ctx = ResponseContext {
        id: "chatcmpl-fuzz".into(),
        now_s: 1_900_000_000,
        include_usage: true,
    };
    let json_ok = |bytes: &[u8]| {
        assert!(
            serde_json::from_slice::<Value>(bytes).is_ok(),
            "answer is not JSON"
        )
    };
    for status in [200, 500] {
        if let Ok((_, body)) = chat_response(status, data, &ctx) {
            json_ok(&body);
        }
        if let Ok((_, body)) = completion_response(status, data, &ctx) {
            json_ok(&body);
        }
    }
    if let Ok(request) = embeddings_request(
        br#"{"model": "e", "input": ["a", "b"]}"#,
        &translate_config(Target::Ollama),
    ) {
        if let Ok((_, body, _)) = embeddings_response(200, data, &request) {
            json_ok(&body);
        }
    }
    if let Ok(body) = models_list(data) {
        json_ok(&body);
    }
    if let Ok(Some(body)) = model_object(data, "qwen3") {
        json_ok(&body);
    }
}
