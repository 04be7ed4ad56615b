//! `POST /api/embed` ("Generate Embeddings" in Ollama's API docs).
//!
//! Request fields: `model` (required, matched as for `/api/chat`), `input` (a string or an array
//! of strings), `truncate` (default true), `dimensions`, `options`, `keep_alive`, type-checked as
//! Go's decoder and Ollama's handler do (`input` of another type, or an array holding a
//! non-string, is 400 `invalid input type`). As in Ollama, an absent or empty `input` (`""`,
//! `[]`) only loads the model: 200 `{"model","embeddings":[]}`.
//!
//! The answer is `{"model","embeddings","total_duration","load_duration","prompt_eval_count"}`
//! with one vector per input, from [`expected_embedding`]: deterministic from the text,
//! [`EMBED_DIMENSIONS`] long unless `dimensions` says otherwise, L2-normalised the way Ollama
//! does it, written as Go writes `float32`s (shortest form). Words stand for tokens: with
//! `options.num_ctx` set, an input of more words is cut to its first `num_ctx` words (joined
//! by single spaces) before embedding, or refused (400) with `"truncate": false`.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    check_model, check_options, check_type, error_reply, json_body_reply, json_reply, parse_body,
    single_reply, Go, OllamaConfig, SplitMix64, LOAD_DURATION, MID_STREAM_ERROR,
};
use crate::upstream::Reply;

/// Length of an embedding when the request has no (positive) `dimensions`.
pub const EMBED_DIMENSIONS: usize = 8;

/// The longest embedding the stand-in makes (its model's "native" length): a larger
/// `dimensions` gives this many, as Ollama gives the model's length.
const MAX_DIMENSIONS: usize = 4096;

/// The embedding the stand-in answers for `text` with `dimensions` values (0 means
/// [`EMBED_DIMENSIONS`]; more than 4096 means 4096): raw values drawn from a PRNG seeded with
/// the SHA-256 of the text (the first `n` are the same whatever the length, so a shorter
/// embedding is the longer one's prefix renormalised, as with Ollama's `dimensions`), then
/// L2-normalised with Ollama's `float32` arithmetic. Each value is in `[-1, 1]` and is written
/// in the JSON so that reading it back (as `f32`, or as `f64` then converted) gives exactly
/// this value.
pub fn expected_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let dimensions = match dimensions {
        0 => EMBED_DIMENSIONS,
        n => n.min(MAX_DIMENSIONS),
    };
    let digest = Sha256::digest(text.as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    let mut rng = SplitMix64(u64::from_le_bytes(seed));
    // 24-bit values in [-1, 1): exact in f32.
    let raw: Vec<f32> = (0..dimensions)
        .map(|_| (rng.next() >> 40) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    normalise(raw)
        .into_iter()
        .map(|v| {
            let mut v = v.clamp(-1.0, 1.0);
            // Written as Go writes float32 (the shortest text that reads back as this f32); in
            // the unlikely case that reading that text as f64 first rounds differently, use
            // the neighbour toward zero.
            while go_f32(v).parse::<f64>().map(|d| d as f32) != Ok(v) {
                v = f32::from_bits(v.to_bits() - 1);
            }
            v
        })
        .collect()
}

/// The embeddings the stand-in answers a valid `/api/embed` request body with, in order (empty
/// for an absent or empty `input`, and for a request it refuses): [`expected_embedding`] of
/// each input, after the `options.num_ctx` cut, with the request's `dimensions`.
pub fn expected_embeddings(request_body: &Value) -> Vec<Vec<f32>> {
    let Ok(inputs) = inputs(request_body) else {
        return Vec::new();
    };
    let dimensions = dimensions(request_body);
    inputs
        .iter()
        .filter_map(|text| fit_context(text, request_body).ok())
        .map(|text| expected_embedding(&text, dimensions))
        .collect()
}

/// Tokens the stand-in counts for these texts: the whitespace-separated words of each, at least
/// 1 per text. The `prompt_eval_count` of an `/api/embed` request with these inputs (after the
/// `options.num_ctx` cut); for `/api/generate` pass the non-empty ones of `system`, `prompt`
/// and `suffix` (see [`expected_generate_usage`](super::expected_generate_usage)).
pub fn expected_prompt_tokens(texts: &[&str]) -> u64 {
    texts
        .iter()
        .map(|text| text.split_whitespace().count().max(1) as u64)
        .sum()
}

/// Ollama's `normalize`: the sum of squares in f32, the factor `float32(1 / max(sqrt(sum),
/// 1e-12))` computed in f64.
fn normalise(mut vector: Vec<f32>) -> Vec<f32> {
    let sum: f32 = vector.iter().map(|v| v * v).sum();
    let norm = (1.0 / f64::from(sum).sqrt().max(1e-12)) as f32;
    for v in &mut vector {
        *v *= norm;
    }
    vector
}

/// A float32 as Go's `encoding/json` writes it: shortest form, `'f'` notation except below
/// 1e-6 or from 1e21 on (`'e'`, with a one-digit exponent written as such: `1e-7`).
fn go_f32(v: f32) -> String {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The inputs as Ollama's handler reads them: a non-empty string is one, an array gives its
/// strings (empty ones included), `""`, `[]` and `null` none; anything else is refused.
fn inputs(body: &Value) -> Result<Vec<String>, Reply> {
    let invalid = || error_reply(400, "invalid input type");
    match &body["input"] {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

/// The `dimensions` asked for; 0 (the default length) when absent or not positive, as Ollama
/// ignores those.
fn dimensions(body: &Value) -> usize {
    body["dimensions"]
        .as_u64()
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// The text as embedded: cut to `options.num_ctx` words when it has more (and `truncate` is not
/// false), else the message of Ollama's 400.
fn fit_context(text: &str, body: &Value) -> Result<String, &'static str> {
    let Some(limit) = body["options"]["num_ctx"]
        .as_f64()
        .filter(|&n| n >= 1.0)
        .map(|n| n as usize)
    else {
        return Ok(text.to_string());
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= limit {
        return Ok(text.to_string());
    }
    if body["truncate"] == json!(false) {
        return Err("input exceeds maximum context length");
    }
    Ok(words[..limit].join(" "))
}

pub(super) fn embed(config: &OllamaConfig, raw: &[u8]) -> Reply {
    match answer(config, raw) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn answer(config: &OllamaConfig, raw: &[u8]) -> Result<Reply, Reply> {
    let body = validate_embed(config, raw)?;
    let inputs = inputs(&body)?;
    let model = body["model"].as_str().unwrap_or_default();
    if inputs.is_empty() {
        // Ollama loads the model and answers at once, with no metrics.
        let object = Go::object(vec![
            ("model", Go::string(model)),
            ("embeddings", Go::Raw("[]".into())),
        ]);
        return Ok(json_body_reply(200, object.render().into_bytes()));
    }
    let texts = inputs
        .iter()
        .map(|text| fit_context(text, &body))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|message| error_reply(400, message))?;
    std::thread::sleep(config.delay);
    if config.fail_mid_stream {
        return Err(json_reply(500, &json!({"error": MID_STREAM_ERROR})));
    }
    let dimensions = dimensions(&body);
    let vectors: Vec<String> = texts
        .iter()
        .map(|text| {
            let values: Vec<String> = expected_embedding(text, dimensions)
                .into_iter()
                .map(go_f32)
                .collect();
            format!("[{}]", values.join(","))
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let prompt_eval_count = expected_prompt_tokens(&refs);
    let total = LOAD_DURATION + prompt_eval_count * 250_000 + 1_000_000;
    let object = Go::object(vec![
        ("model", Go::string(model)),
        ("embeddings", Go::Raw(format!("[{}]", vectors.join(",")))),
        ("total_duration", Go::Value(json!(total))),
        ("load_duration", Go::Value(json!(LOAD_DURATION))),
        ("prompt_eval_count", Go::Value(json!(prompt_eval_count))),
    ]);
    Ok(single_reply(config, object.render().into_bytes()))
}

/// Checks the request as Go's decoder and Ollama's handler would, up to the inputs: field types,
/// `input`, the model, the options. The parsed body, or the error reply.
fn validate_embed(config: &OllamaConfig, raw: &[u8]) -> Result<Value, Reply> {
    let body = parse_body(raw, "api.EmbedRequest")?;
    let model = &body["model"];
    check_type("EmbedRequest.model", model, model.is_string(), "string")?;
    let truncate = &body["truncate"];
    check_type(
        "EmbedRequest.truncate",
        truncate,
        truncate.is_boolean(),
        "bool",
    )?;
    let dimensions = &body["dimensions"];
    if dimensions.is_number() && !(dimensions.is_i64() || dimensions.is_u64()) {
        return Err(error_reply(
            400,
            &format!(
                "json: cannot unmarshal number {dimensions} into Go struct field EmbedRequest.dimensions of type int"
            ),
        ));
    }
    check_type(
        "EmbedRequest.dimensions",
        dimensions,
        dimensions.is_number(),
        "int",
    )?;
    let options = &body["options"];
    check_type(
        "EmbedRequest.options",
        options,
        options.is_object(),
        "map[string]interface {}",
    )?;
    inputs(&body)?;
    check_model(config, &body)?;
    if let Some(options) = body["options"].as_object() {
        check_options(options)?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::super::tests::send;
    use super::super::{start, Chunking, OllamaConfig, MID_STREAM_ERROR};
    use super::*;
    use crate::http::{Request, Response};
    use crate::upstream::Upstream;

    fn post_embed(upstream: &Upstream, body: &Value) -> Response {
        send(upstream, Request::post("/api/embed").json(body))
    }

    /// The `embeddings` as f32s, read the way a client would (as f64, then converted).
    fn embeddings_of(v: &Value) -> Vec<Vec<f32>> {
        v["embeddings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect()
    }

    fn norm(vector: &[f32]) -> f64 {
        vector
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn embed_one_input() {
        let upstream = start(OllamaConfig::default());
        let body = json!({"model": "qwen3:32b", "input": "Why is the sky blue?"});
        let response = post_embed(&upstream, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(response.header("content-length").is_some());
        let v = response.json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{v}");
        assert_eq!(v["model"], "qwen3:32b");
        assert_eq!(v["prompt_eval_count"], 5);
        assert_eq!(v["load_duration"], 12_345_678);
        assert!(v["total_duration"].as_u64().unwrap() > 12_345_678);
        let vectors = embeddings_of(&v);
        assert_eq!(vectors.len(), 1);
        assert_eq!(vectors[0].len(), EMBED_DIMENSIONS);
        assert_eq!(vectors[0], expected_embedding("Why is the sky blue?", 0));
        assert_eq!(
            vectors,
            expected_embeddings(&body),
            "the request-level helper agrees"
        );
        assert!((norm(&vectors[0]) - 1.0).abs() < 1e-6);
        let raw = response.text();
        assert!(
            raw.starts_with(r#"{"model":"qwen3:32b","embeddings":[["#),
            "{raw}"
        );
        assert!(
            raw.contains(r#"]],"total_duration":"#)
                && raw.contains(r#","load_duration":12345678,"prompt_eval_count":5}"#),
            "{raw}"
        );
        // Every number is written as Go writes a float32: the shortest form.
        let numbers = &raw[raw.find("[[").unwrap() + 2..raw.find("]]").unwrap()];
        for (text, value) in numbers.split(',').zip(&vectors[0]) {
            assert_eq!(text, go_f32(*value));
            assert_eq!(text.parse::<f32>().unwrap(), *value);
            assert!(text.len() <= 16, "{text}");
        }
    }

    #[test]
    fn embed_several_inputs_deterministically() {
        let upstream = start(OllamaConfig::default());
        let inputs = [
            "Why is the sky blue?",
            "Why is the grass green?",
            "",
            "日本語 🎉",
        ];
        let body = json!({"model": "qwen3:32b", "input": inputs});
        let v = post_embed(&upstream, &body).json();
        let vectors = embeddings_of(&v);
        assert_eq!(vectors.len(), 4);
        for (vector, text) in vectors.iter().zip(inputs) {
            assert_eq!(vector, &expected_embedding(text, EMBED_DIMENSIONS));
            assert!(vector.iter().all(|x| (-1.0..=1.0).contains(x)));
            assert!((norm(vector) - 1.0).abs() < 1e-6, "{vector:?}");
        }
        assert_ne!(vectors[0], vectors[1]);
        assert_eq!(v["prompt_eval_count"], 5 + 5 + 1 + 2);
        assert_eq!(expected_prompt_tokens(&inputs), 13);
        // The same again, and the same as a single input.
        assert_eq!(embeddings_of(&post_embed(&upstream, &body).json()), vectors);
        let single = json!({"model": "qwen3:32b", "input": "Why is the grass green?"});
        assert_eq!(
            embeddings_of(&post_embed(&upstream, &single).json())[0],
            vectors[1]
        );
    }

    #[test]
    fn embed_dimensions() {
        let upstream = start(OllamaConfig::default());
        for dimensions in [1, 3, 8, 10, 384, 1024] {
            let body =
                json!({"model": "qwen3:32b", "input": ["a", "b c"], "dimensions": dimensions});
            let vectors = embeddings_of(&post_embed(&upstream, &body).json());
            assert_eq!(vectors.len(), 2);
            for (vector, text) in vectors.iter().zip(["a", "b c"]) {
                assert_eq!(vector.len(), dimensions);
                assert_eq!(vector, &expected_embedding(text, dimensions));
                assert!((norm(vector) - 1.0).abs() < 1e-5, "{dimensions}");
            }
            assert_eq!(expected_embeddings(&body), vectors);
        }
        assert_eq!(expected_embedding("a", 1).len(), 1);
        // One value: ±1 up to Ollama's float32 rounding.
        assert!((expected_embedding("a", 1)[0].abs() - 1.0).abs() < 1e-6);
        // 0 and negative values are ignored, as Ollama ignores them; beyond 4096 gives 4096.
        for dimensions in [json!(0), json!(-5)] {
            let body = json!({"model": "qwen3:32b", "input": "a", "dimensions": dimensions});
            assert_eq!(
                embeddings_of(&post_embed(&upstream, &body).json())[0].len(),
                8
            );
        }
        assert_eq!(expected_embedding("a", 1 << 40).len(), 4096);
    }

    #[test]
    fn embed_values_read_back_exactly() {
        // Many texts and lengths: the JSON text of every value reads back as the same f32
        // through f64 (what serde_json and most clients do) and directly.
        let mut checked = 0;
        for i in 0..300 {
            let text = format!("input number {i}");
            let vector = expected_embedding(&text, 1 + i % 40);
            let rendered = format!(
                "[{}]",
                vector
                    .iter()
                    .map(|v| go_f32(*v))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let parsed: Vec<f64> = serde_json::from_str(&rendered).unwrap();
            for (p, v) in parsed.iter().zip(&vector) {
                assert_eq!(*p as f32, *v, "{text}: {rendered}");
                checked += 1;
            }
        }
        assert!(checked > 5000);
        assert_eq!(go_f32(1e-7), "1e-7");
        assert_eq!(go_f32(-2.5e-9), "-2.5e-9");
        assert_eq!(go_f32(0.1), "0.1");
        assert_eq!(go_f32(1.0), "1");
        assert_eq!(go_f32(-0.000_001), "-0.000001");
    }

    #[test]
    fn embed_empty_input_loads_the_model() {
        let upstream = start(OllamaConfig::default());
        for input in [Value::Null, json!(""), json!([])] {
            let mut body = json!({"model": "qwen3:32b"});
            if !input.is_null() {
                body["input"] = input.clone();
            }
            let response = post_embed(&upstream, &body);
            assert_eq!(response.status, 200, "{body}");
            assert_eq!(response.text(), r#"{"model":"qwen3:32b","embeddings":[]}"#);
            assert!(expected_embeddings(&body).is_empty());
        }
    }

    #[test]
    fn embed_num_ctx_and_truncate() {
        let upstream = start(OllamaConfig::default());
        let mut body = json!({"model": "qwen3:32b", "input": ["one  two three four", "five"],
            "options": {"num_ctx": 2}});
        let v = post_embed(&upstream, &body).json();
        assert_eq!(v["prompt_eval_count"], 3);
        assert_eq!(
            embeddings_of(&v),
            vec![
                expected_embedding("one two", 8),
                expected_embedding("five", 8)
            ]
        );
        assert_eq!(expected_embeddings(&body), embeddings_of(&v));
        body["truncate"] = json!(true);
        assert_eq!(post_embed(&upstream, &body).status, 200);
        body["truncate"] = json!(false);
        let response = post_embed(&upstream, &body);
        assert_eq!(response.status, 400);
        assert_eq!(
            response.json(),
            json!({"error": "input exceeds maximum context length"})
        );
        body["options"]["num_ctx"] = json!(4);
        let v = post_embed(&upstream, &body).json();
        assert_eq!(
            embeddings_of(&v)[0],
            expected_embedding("one  two three four", 8)
        );
    }

    #[test]
    fn embed_errors_have_ollama_shapes() {
        let upstream = start(OllamaConfig::default());
        let response = post_embed(&upstream, &json!({"model": "nope", "input": "x"}));
        assert_eq!(response.status, 404);
        assert_eq!(
            response.json(),
            json!({"error": "model \"nope\" not found, try pulling it first"})
        );
        let response = post_embed(&upstream, &json!({"input": "x"}));
        assert_eq!(response.status, 400);
        assert_eq!(response.json(), json!({"error": "model is required"}));
        let response = send(&upstream, Request::post("/api/embed"));
        assert_eq!(response.status, 400);
        assert_eq!(response.json(), json!({"error": "missing request body"}));
        for input in [
            json!(42),
            json!(true),
            json!({"text": "x"}),
            json!(["a", 1]),
            json!([["a"]]),
        ] {
            let response = post_embed(&upstream, &json!({"model": "qwen3:32b", "input": input}));
            assert_eq!(response.status, 400, "{input}");
            assert_eq!(response.json(), json!({"error": "invalid input type"}));
        }
        for (body, message) in [
            (
                json!({"model": "qwen3:32b", "input": "x", "dimensions": 3.5}),
                "json: cannot unmarshal number 3.5 into Go struct field EmbedRequest.dimensions of type int",
            ),
            (
                json!({"model": "qwen3:32b", "input": "x", "dimensions": "8"}),
                "json: cannot unmarshal string into Go struct field EmbedRequest.dimensions of type int",
            ),
            (
                json!({"model": "qwen3:32b", "input": "x", "truncate": "no"}),
                "json: cannot unmarshal string into Go struct field EmbedRequest.truncate of type bool",
            ),
            (
                json!({"model": 7, "input": "x"}),
                "json: cannot unmarshal number into Go struct field EmbedRequest.model of type string",
            ),
        ] {
            let response = post_embed(&upstream, &body);
            assert_eq!(response.status, 400, "{body}");
            assert_eq!(response.json(), json!({"error": message}));
        }
        let response = post_embed(
            &upstream,
            &json!({"model": "qwen3:32b", "input": "x", "options": {"num_ctx": "big"}}),
        );
        assert_eq!(response.status, 500);
        assert_eq!(
            response.json(),
            json!({"error": "option \"num_ctx\" must be of type integer"})
        );
        // Accepted: a model without a tag meaning :latest, keep_alive, options, unknown fields.
        let upstream = start(OllamaConfig {
            models: vec!["all-minilm:latest".into()],
            ..OllamaConfig::default()
        });
        let ok = json!({"model": "all-minilm", "input": "x", "keep_alive": "5m",
            "options": {"temperature": 0}, "truncate": true, "encoding_format": "float"});
        let response = post_embed(&upstream, &ok);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["model"], "all-minilm");
        let response = send(&upstream, Request::get("/api/embed"));
        assert_eq!(response.status, 404);
        assert_eq!(response.text(), "404 page not found");
    }

    #[test]
    fn embed_every_chunking_gives_the_same_body() {
        let body =
            json!({"model": "qwen3:32b", "input": ["héllo wörld", "你好 🎉"], "dimensions": 32});
        let mut bodies = Vec::new();
        for chunking in Chunking::VARIETY {
            let upstream = start(OllamaConfig {
                chunking,
                ..OllamaConfig::default()
            });
            let response = post_embed(&upstream, &body);
            assert_eq!(response.status, 200);
            match chunking {
                Chunking::Lines | Chunking::Whole => {
                    assert!(response.header("content-length").is_some())
                }
                _ => assert_eq!(response.header("transfer-encoding"), Some("chunked")),
            }
            bodies.push(response.text());
        }
        for other in &bodies[1..] {
            assert_eq!(&bodies[0], other);
        }
    }

    #[test]
    fn embed_delay_and_failure() {
        let upstream = start(OllamaConfig {
            delay: Duration::from_millis(100),
            ..OllamaConfig::default()
        });
        let started = std::time::Instant::now();
        let body = json!({"model": "qwen3:32b", "input": "x"});
        assert_eq!(post_embed(&upstream, &body).status, 200);
        assert!(started.elapsed() >= Duration::from_millis(100));
        let upstream = start(OllamaConfig {
            fail_mid_stream: true,
            ..OllamaConfig::default()
        });
        let response = post_embed(&upstream, &body);
        assert_eq!(response.status, 500);
        assert_eq!(response.json(), json!({"error": MID_STREAM_ERROR}));
    }
}
