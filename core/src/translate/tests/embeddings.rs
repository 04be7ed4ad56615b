//! Embeddings translation: request vectors, every refusal, response vectors (float and base64),
//! upstream errors and hostile input.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::config;
use crate::translate::embeddings::{
    embeddings_request, embeddings_response, EmbeddingEncoding, EmbeddingsRequest,
};
use crate::translate::{Target, TranslateConfig, TranslateError, UpstreamError};

const TOKEN_IDS: &str = "input as token ids is not supported; send text";
const INPUT_TYPE: &str = "input must be a string or an array of strings";
const ENCODING: &str = "encoding_format must be float or base64";
const DIMENSIONS: &str = "dimensions must be a positive integer up to 65536";

fn request(body: &str) -> Result<EmbeddingsRequest, TranslateError> {
    embeddings_request(body.as_bytes(), &config())
}

/// The translated request: (Ollama body as JSON, model, encoding, inputs).
fn ok(body: &str) -> (Value, String, EmbeddingEncoding, usize) {
    let r = request(body).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    let ollama: Value = serde_json::from_slice(&r.body).unwrap();
    (ollama, r.model, r.encoding, r.inputs)
}

fn refused(body: &str) -> String {
    match request(body) {
        Err(TranslateError::InvalidBody(details)) => details,
        Ok(r) => panic!("{body}: accepted as {}", String::from_utf8_lossy(&r.body)),
    }
}

fn passthrough() -> TranslateConfig {
    TranslateConfig {
        target: Target::OpenAi,
        ..config()
    }
}

fn req(encoding: EmbeddingEncoding, inputs: usize) -> EmbeddingsRequest {
    EmbeddingsRequest {
        body: Vec::new(),
        model: "nomic-embed-text".into(),
        encoding,
        inputs,
    }
}

/// The translated answer as (status, JSON, tokens).
fn answer(status: u16, body: &str, r: &EmbeddingsRequest) -> (u16, Value, Option<u64>) {
    let (status, out, tokens) =
        embeddings_response(status, body.as_bytes(), r).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    (status, serde_json::from_slice(&out).unwrap(), tokens)
}

fn upstream_error(body: &str, r: &EmbeddingsRequest) -> String {
    match embeddings_response(200, body.as_bytes(), r) {
        Err(UpstreamError(reason)) => reason,
        Ok((_, out, _)) => panic!("{body}: translated as {}", String::from_utf8_lossy(&out)),
    }
}

/// The JSON numbers the float answer must hold for these f32 values.
fn widened(values: &[f32]) -> Value {
    Value::Array(values.iter().map(|&x| json!(f64::from(x))).collect())
}

fn decode(b64: &Value) -> Vec<f32> {
    let bytes = STANDARD.decode(b64.as_str().unwrap()).unwrap();
    assert_eq!(bytes.len() % 4, 0);
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

// ---- requests ----

#[test]
fn a_string_becomes_a_one_item_array() {
    let (body, model, encoding, inputs) = ok(r#"{"model":"nomic-embed-text","input":"hello"}"#);
    assert_eq!(
        body,
        json!({"model": "nomic-embed-text", "input": ["hello"], "truncate": true})
    );
    assert_eq!(model, "nomic-embed-text");
    assert_eq!(encoding, EmbeddingEncoding::Float);
    assert_eq!(inputs, 1);
}

#[test]
fn a_batch_keeps_its_order() {
    let (body, _, _, inputs) = ok(
        r#"{"model":"nomic-embed-text","input":["a","b"," ","日本"],"encoding_format":"float"}"#,
    );
    assert_eq!(
        body,
        json!({"model": "nomic-embed-text", "input": ["a", "b", " ", "日本"], "truncate": true})
    );
    assert_eq!(inputs, 4);
}

#[test]
fn dimensions_are_passed_on() {
    let (body, ..) = ok(r#"{"model":"m","input":"x","dimensions":256}"#);
    assert_eq!(
        body,
        json!({"model": "m", "input": ["x"], "truncate": true, "dimensions": 256})
    );
    let (body, ..) = ok(r#"{"model":"m","input":"x","dimensions":65536}"#);
    assert_eq!(body["dimensions"], 65536);
    let (body, ..) = ok(r#"{"model":"m","input":"x","dimensions":null}"#);
    assert_eq!(body.get("dimensions"), None);
}

#[test]
fn encoding_format() {
    let (body, _, encoding, _) = ok(r#"{"model":"m","input":"x","encoding_format":"base64"}"#);
    assert_eq!(encoding, EmbeddingEncoding::Base64);
    // The encoding is ours to apply: Ollama never sees it.
    assert_eq!(
        body,
        json!({"model": "m", "input": ["x"], "truncate": true})
    );
    let (_, _, encoding, _) = ok(r#"{"model":"m","input":"x","encoding_format":"float"}"#);
    assert_eq!(encoding, EmbeddingEncoding::Float);
    let (_, _, encoding, _) = ok(r#"{"model":"m","input":"x","encoding_format":null}"#);
    assert_eq!(encoding, EmbeddingEncoding::Float);
}

#[test]
fn default_model_and_alias() {
    for body in [
        r#"{"input":"x"}"#,
        r#"{"input":"x","model":""}"#,
        r#"{"input":"x","model":null}"#,
    ] {
        let (ollama, model, ..) = ok(body);
        assert_eq!(model, "qwen3:32b", "{body}");
        assert_eq!(ollama["model"], "qwen3:32b");
    }
    let (ollama, model, ..) = ok(r#"{"input":"x","model":"gpt-4o"}"#);
    assert_eq!(model, "qwen3:32b");
    assert_eq!(ollama["model"], "qwen3:32b");
}

#[test]
fn user_and_unknown_fields_are_dropped() {
    let (body, ..) = ok(
        r#"{"model":"m","input":"x","user":"mallory","keep_alive":"1h",
            "options":{"num_ctx":1},"truncate":false,"extra":{"a":[1]}}"#,
    );
    assert_eq!(
        body,
        json!({"model": "m", "input": ["x"], "truncate": true})
    );
}

#[test]
fn at_most_2048_inputs() {
    let items = |n: usize| serde_json::to_string(&vec!["t"; n]).unwrap();
    let (_, _, _, inputs) = ok(&format!(r#"{{"model":"m","input":{}}}"#, items(2048)));
    assert_eq!(inputs, 2048);
    assert_eq!(
        refused(&format!(r#"{{"model":"m","input":{}}}"#, items(2049))),
        "input must have at most 2048 items"
    );
}

#[test]
fn refusals() {
    let cases: &[(&str, &str)] = &[
        ("", "the body is not valid JSON"),
        ("{", "the body is not valid JSON"),
        (r#"{"input":"x"} x"#, "the body is not valid JSON"),
        (r#"["x"]"#, "the body must be a JSON object"),
        (r#""x""#, "the body must be a JSON object"),
        (
            r#"{"input":"x","input":"y"}"#,
            "the body has a duplicate key",
        ),
        (r#"{"model":"m"}"#, "input is required"),
        (r#"{"model":"m","input":null}"#, "input is required"),
        (r#"{"model":"m","input":""}"#, "input must not be empty"),
        (r#"{"model":"m","input":[]}"#, "input must not be empty"),
        (
            r#"{"model":"m","input":["a",""]}"#,
            "input[1] must not be empty",
        ),
        (
            r#"{"model":"m","input":[""]}"#,
            "input[0] must not be empty",
        ),
        (r#"{"model":"m","input":[1,2,3]}"#, TOKEN_IDS),
        (r#"{"model":"m","input":[[1,2],[3]]}"#, TOKEN_IDS),
        (r#"{"model":"m","input":[[]]}"#, TOKEN_IDS),
        (
            r#"{"model":"m","input":["a",1]}"#,
            "input[1] must be a string",
        ),
        (
            r#"{"model":"m","input":[[1],"a"]}"#,
            "input[0] must be a string",
        ),
        (
            r#"{"model":"m","input":["a",["b"]]}"#,
            "input[1] must be a string",
        ),
        (
            r#"{"model":"m","input":["a",null]}"#,
            "input[1] must be a string",
        ),
        (
            r#"{"model":"m","input":["a",{"text":"b"}]}"#,
            "input[1] must be a string",
        ),
        (r#"{"model":"m","input":5}"#, INPUT_TYPE),
        (r#"{"model":"m","input":true}"#, INPUT_TYPE),
        (r#"{"model":"m","input":{"text":"x"}}"#, INPUT_TYPE),
        (r#"{"model":5,"input":"x"}"#, "model must be a string"),
        (r#"{"model":["m"],"input":"x"}"#, "model must be a string"),
        (
            r#"{"model":"m","input":"x","encoding_format":"int8"}"#,
            ENCODING,
        ),
        (
            r#"{"model":"m","input":"x","encoding_format":"FLOAT"}"#,
            ENCODING,
        ),
        (
            r#"{"model":"m","input":"x","encoding_format":""}"#,
            ENCODING,
        ),
        (r#"{"model":"m","input":"x","encoding_format":1}"#, ENCODING),
        (r#"{"model":"m","input":"x","dimensions":0}"#, DIMENSIONS),
        (r#"{"model":"m","input":"x","dimensions":-1}"#, DIMENSIONS),
        (r#"{"model":"m","input":"x","dimensions":1.5}"#, DIMENSIONS),
        (
            r#"{"model":"m","input":"x","dimensions":256.0}"#,
            DIMENSIONS,
        ),
        (
            r#"{"model":"m","input":"x","dimensions":"256"}"#,
            DIMENSIONS,
        ),
        (
            r#"{"model":"m","input":"x","dimensions":65537}"#,
            DIMENSIONS,
        ),
        (
            r#"{"model":"m","input":"x","dimensions":1e300}"#,
            DIMENSIONS,
        ),
    ];
    for (body, expect) in cases {
        assert_eq!(refused(body), *expect, "{body}");
    }
}

#[test]
fn model_is_required_without_a_default() {
    let config = TranslateConfig {
        default_model: None,
        ..config()
    };
    assert_eq!(
        embeddings_request(br#"{"input":"x"}"#, &config),
        Err(TranslateError::InvalidBody("model is required".into()))
    );
}

#[test]
fn passthrough_keeps_the_body() {
    let body =
        br#"{"model":"gpt-4o","input":["a","b"],"encoding_format":"base64","user":"u","x":1}"#;
    let r = embeddings_request(body, &passthrough()).unwrap();
    assert_eq!(
        r,
        EmbeddingsRequest {
            body: body.to_vec(),
            model: "qwen3:32b".into(),
            encoding: EmbeddingEncoding::Base64,
            inputs: 2,
        }
    );
    // The upstream judges the input; the count is only for the record.
    for (input, inputs) in [
        (r#""x""#, 1),
        ("[1,2,3]", 1),
        ("[[1],[2]]", 2),
        ("[]", 0),
        ("5", 0),
        ("null", 0),
    ] {
        let body = format!(r#"{{"input":{input}}}"#);
        let r = embeddings_request(body.as_bytes(), &passthrough()).unwrap();
        assert_eq!(r.inputs, inputs, "{body}");
        assert_eq!(r.body, body.as_bytes());
        assert_eq!(r.model, "qwen3:32b");
        assert_eq!(r.encoding, EmbeddingEncoding::Float);
    }
    let no_default = TranslateConfig {
        default_model: None,
        ..passthrough()
    };
    assert_eq!(
        embeddings_request(br#"{"input":"x"}"#, &no_default).map(|r| r.model),
        Ok(String::new())
    );
    assert_eq!(
        embeddings_request(br#"{"input":"x","encoding_format":"int8"}"#, &passthrough()),
        Err(TranslateError::InvalidBody(ENCODING.into()))
    );
    assert_eq!(
        embeddings_request(b"nope", &passthrough()),
        Err(TranslateError::InvalidBody(
            "the body is not valid JSON".into()
        ))
    );
}

// ---- responses ----

const OLLAMA: &str = r#"{"model":"nomic-embed-text","embeddings":[[0.1,-0.2,3],[0.5,1e-8,-0]],
    "total_duration":14143917,"load_duration":1019500,"prompt_eval_count":7}"#;

#[test]
fn float_answer() {
    let (status, out, tokens) = answer(200, OLLAMA, &req(EmbeddingEncoding::Float, 2));
    assert_eq!(status, 200);
    assert_eq!(tokens, Some(7));
    assert_eq!(
        out,
        json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": widened(&[0.1, -0.2, 3.0])},
                {"object": "embedding", "index": 1, "embedding": widened(&[0.5, 1e-8, -0.0])},
            ],
            "model": "nomic-embed-text",
            "usage": {"prompt_tokens": 7, "total_tokens": 7},
        })
    );
    // The f32 value, widened: not Ollama's decimal text.
    assert_eq!(out["data"][0]["embedding"][0], json!(0.10000000149011612));
}

#[test]
fn base64_answer_decodes_to_the_same_f32_values() {
    let (status, out, tokens) = answer(200, OLLAMA, &req(EmbeddingEncoding::Base64, 2));
    assert_eq!((status, tokens), (200, Some(7)));
    assert_eq!(out["object"], "list");
    assert_eq!(out["model"], "nomic-embed-text");
    assert_eq!(out["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
    let data = out["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["object"], "embedding");
    assert_eq!(
        (data[0]["index"].clone(), data[1]["index"].clone()),
        (json!(0), json!(1))
    );
    let first = decode(&data[0]["embedding"]);
    assert_eq!(first, vec![0.1f32, -0.2, 3.0]);
    let second = decode(&data[1]["embedding"]);
    assert_eq!(second, vec![0.5f32, 1e-8, -0.0]);
    assert!(second[2].is_sign_negative());

    // And the float answer holds exactly those values.
    let (_, floats, _) = answer(200, OLLAMA, &req(EmbeddingEncoding::Float, 2));
    for (i, decoded) in [first, second].iter().enumerate() {
        let numbers: Vec<f64> = floats["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_f64().unwrap())
            .collect();
        let exact: Vec<f64> = decoded.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(numbers, exact);
    }
}

#[test]
fn base64_is_standard_with_padding() {
    let (_, out, _) = answer(
        200,
        r#"{"embeddings":[[1.0],[1,-2]]}"#,
        &req(EmbeddingEncoding::Base64, 2),
    );
    // 1.0f32 = 00 00 80 3f; -2.0f32 = 00 00 00 c0.
    assert_eq!(out["data"][0]["embedding"], "AACAPw==");
    assert_eq!(out["data"][1]["embedding"], "AACAPwAAAMA=");
}

#[test]
fn model_and_usage_fallbacks() {
    // No model, no prompt_eval_count: the request's model and 0 tokens.
    let (_, out, tokens) = answer(
        200,
        r#"{"embeddings":[[1]]}"#,
        &req(EmbeddingEncoding::Float, 1),
    );
    assert_eq!(out["model"], "nomic-embed-text");
    assert_eq!(out["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
    assert_eq!(tokens, Some(0));
    // Odd types (the lenient reading) give the same answer as absent fields.
    for body in [
        r#"{"model":5,"embeddings":[[1]],"prompt_eval_count":-3}"#,
        r#"{"model":"","embeddings":[[1]],"prompt_eval_count":"7"}"#,
        r#"{"model":null,"embeddings":[[1]],"prompt_eval_count":null,"extra":[{}]}"#,
    ] {
        assert_eq!(
            answer(200, body, &req(EmbeddingEncoding::Float, 1)),
            (200, out.clone(), Some(0)),
            "{body}"
        );
    }
    // A duplicate key (the typed reading refuses it): the last one, like serde_json's Value.
    let (_, dup, tokens) = answer(
        200,
        r#"{"model":"a","model":"b","embeddings":[[1]],"prompt_eval_count":2}"#,
        &req(EmbeddingEncoding::Float, 1),
    );
    assert_eq!((dup["model"].clone(), tokens), (json!("b"), Some(2)));
}

#[test]
fn empty_vectors_are_passed_on() {
    let (_, out, _) = answer(
        200,
        r#"{"embeddings":[[]]}"#,
        &req(EmbeddingEncoding::Float, 1),
    );
    assert_eq!(out["data"][0]["embedding"], json!([]));
    let (_, out, _) = answer(
        200,
        r#"{"embeddings":[[]]}"#,
        &req(EmbeddingEncoding::Base64, 1),
    );
    assert_eq!(out["data"][0]["embedding"], "");
}

#[test]
fn answers_that_cannot_be_translated() {
    const NOT_JSON: &str = "the model server's answer is not JSON";
    const NONE: &str = "the model server's answer has no embeddings";
    const NON_NUMERIC: &str = "the model server's answer has a non-numeric value";
    const NOT_ARRAY: &str = "the model server's answer has an embedding that is not an array";
    const RANGE: &str = "the model server's answer has a value out of range";
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, NOT_JSON),
        ("nope", 1, NOT_JSON),
        (r#"{"embeddings":[[NaN]]}"#, 1, NOT_JSON),
        (r#"{"embeddings":[[1e400]]}"#, 1, NOT_JSON),
        ("[[1]]", 1, NOT_JSON),
        // A struct could be read from an array positionally: refused all the same.
        (r#"["m",[[1.0]],3]"#, 1, NOT_JSON),
        ("null", 1, NOT_JSON),
        ("{}", 1, NONE),
        (r#"{"embeddings":null}"#, 1, NONE),
        (r#"{"embeddings":{"0":[1]}}"#, 1, NONE),
        (r#"{"embeddings":"AACAPw=="}"#, 1, NONE),
        (r#"{"embedding":[1,2]}"#, 1, NONE),
        (
            r#"{"embeddings":[[1]]}"#,
            2,
            "the model server's answer has 1 embeddings for 2 inputs",
        ),
        (
            r#"{"embeddings":[[1],[2],[3]]}"#,
            2,
            "the model server's answer has 3 embeddings for 2 inputs",
        ),
        (
            r#"{"embeddings":[]}"#,
            1,
            "the model server's answer has 0 embeddings for 1 inputs",
        ),
        // The count is checked before the values.
        (
            r#"{"embeddings":[["x"]]}"#,
            2,
            "the model server's answer has 1 embeddings for 2 inputs",
        ),
        (r#"{"embeddings":[["x"]]}"#, 1, NON_NUMERIC),
        (r#"{"embeddings":[["NaN","Infinity"]]}"#, 1, NON_NUMERIC),
        (r#"{"embeddings":[[1,null]]}"#, 1, NON_NUMERIC),
        (r#"{"embeddings":[[[1]]]}"#, 1, NON_NUMERIC),
        (r#"{"embeddings":[[true]]}"#, 1, NON_NUMERIC),
        (r#"{"embeddings":[[1],[{"a":1}]]}"#, 2, NON_NUMERIC),
        (r#"{"embeddings":[1,2]}"#, 2, NOT_ARRAY),
        (r#"{"embeddings":[null]}"#, 1, NOT_ARRAY),
        (r#"{"embeddings":["AACAPw=="]}"#, 1, NOT_ARRAY),
        (r#"{"embeddings":[[1e39]]}"#, 1, RANGE),
        (r#"{"embeddings":[[1],[-3.5e38]]}"#, 2, RANGE),
    ];
    for (body, inputs, expect) in cases {
        for encoding in [EmbeddingEncoding::Float, EmbeddingEncoding::Base64] {
            assert_eq!(
                upstream_error(body, &req(encoding, *inputs)),
                *expect,
                "{body}"
            );
        }
    }
}

#[test]
fn error_statuses_become_openai_errors() {
    let r = req(EmbeddingEncoding::Float, 1);
    let (status, out, tokens) = answer(
        404,
        r#"{"error": "model \"x\" not found, try pulling it first"}"#,
        &r,
    );
    assert_eq!((status, tokens), (404, None));
    let message = "model \"x\" not found, try pulling it first";
    assert_eq!(
        out,
        json!({"error": {"message": message, "type": "not_found_error", "param": null,
                         "code": "MODEL_NOT_FOUND", "details": message}})
    );

    let (status, out, tokens) = answer(
        400,
        r#"{"error":"input length exceeds the context length"}"#,
        &r,
    );
    assert_eq!((status, tokens), (400, None));
    assert_eq!(out["error"]["type"], "invalid_request_error");
    assert_eq!(
        out["error"]["message"],
        "input length exceeds the context length"
    );

    // Anything else than Ollama's error shape: a generic message, the status kept.
    for body in [
        "",
        "<html>bad gateway</html>",
        r#"{"error":""}"#,
        r#"{"error":{"message":"x"}}"#,
        "[1]",
    ] {
        for status in [500, 503, 302, 100, 0, 65535] {
            let (got, out, tokens) = answer(status, body, &r);
            assert_eq!((got, tokens), (status, None));
            assert_eq!(
                out["error"]["message"],
                format!("the model server answered with status {status}"),
                "{status} {body}"
            );
        }
    }
}

// ---- hostile input ----

#[test]
fn many_vectors_are_fine() {
    let n = 10_000;
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..8).map(|j| (i * 8 + j) as f32 / 7.0).collect())
        .collect();
    let body = serde_json::to_string(&json!({"model": "m", "embeddings": vectors,
                                             "prompt_eval_count": 20_000}))
    .unwrap();
    let (_, out, tokens) = answer(200, &body, &req(EmbeddingEncoding::Base64, n));
    assert_eq!(tokens, Some(20_000));
    let data = out["data"].as_array().unwrap();
    assert_eq!(data.len(), n);
    assert_eq!(data[n - 1]["index"], n - 1);
    assert_eq!(decode(&data[n - 1]["embedding"]), vectors[n - 1]);

    let (_, out, _) = answer(200, &body, &req(EmbeddingEncoding::Float, n));
    assert_eq!(out["data"][1234]["embedding"], widened(&vectors[1234]));

    // One huge vector too.
    let big: Vec<f32> = (0..200_000).map(|i| i as f32 * 0.5).collect();
    let body = serde_json::to_string(&json!({"embeddings": [big]})).unwrap();
    let (_, out, _) = answer(200, &body, &req(EmbeddingEncoding::Base64, 1));
    assert_eq!(decode(&out["data"][0]["embedding"]), big);
}

#[test]
fn garbage_never_panics() {
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_embeddings = format!(r#"{{"embeddings":{deep_array}}}"#);
    let deep_input = format!(r#"{{"model":"m","input":{deep_array}}}"#);
    let unclosed = "[".repeat(100_000);
    let many_tokens = format!(r#"{{"model":"m","input":[{}1]}}"#, "1,".repeat(50_000));
    let many_strings = format!(
        r#"{{"model":"m","input":[{}"x"]}}"#,
        r#""x","#.repeat(10_000)
    );
    let bodies: Vec<&[u8]> = vec![
        b"",
        b"\xff\xfe\x00",
        b"null",
        b"{}",
        b"[]",
        b"\"x\"",
        b"1e999999",
        b"{\"embeddings\":[[1e-400]]}",
        b"{\"embeddings\":[[18446744073709551616]]}",
        b"{\"embeddings\":[[-9223372036854775809]]}",
        b"{\"embeddings\":[[\"-Infinity\"]],\"model\":{}}",
        b"{\"input\":\"\xff\"}",
        b"{\"input\":\"\\ud800\"}",
        b"{\"input\":[\"a\"],\"dimensions\":18446744073709551616}",
        b"{\"input\":[\"a\"],\"encoding_format\":[\"base64\"]}",
        b"{\"model\":{\"a\":1},\"input\":{}}",
        b"{\"embeddings\":[[1]],\"prompt_eval_count\":1e300}",
        b" \t\n{\"embeddings\":[[1]]} ",
        b"{\"embeddings\":[[1]]}{}",
        deep_array.as_bytes(),
        deep_embeddings.as_bytes(),
        deep_input.as_bytes(),
        unclosed.as_bytes(),
        many_tokens.as_bytes(),
        many_strings.as_bytes(),
    ];
    for body in &bodies {
        for config in [config(), passthrough()] {
            let _ = embeddings_request(body, &config);
        }
        for status in [0, 200, 201, 299, 300, 404, 500, 65535] {
            for inputs in [0, 1, 2, 10_000, usize::MAX] {
                for encoding in [EmbeddingEncoding::Float, EmbeddingEncoding::Base64] {
                    let _ = embeddings_response(status, body, &req(encoding, inputs));
                }
            }
        }
    }
    assert_eq!(
        refused(&many_tokens),
        TOKEN_IDS,
        "token ids are named before the length limit"
    );
    assert_eq!(refused(&many_strings), "input must have at most 2048 items");
    assert_eq!(refused(&deep_input), "the body is not valid JSON");
    // 1e-400 underflows to 0, a number like any other.
    let (_, out, _) = answer(
        200,
        r#"{"embeddings":[[1e-400]]}"#,
        &req(EmbeddingEncoding::Float, 1),
    );
    assert_eq!(out["data"][0]["embedding"], json!([0.0]));
}
