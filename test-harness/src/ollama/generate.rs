//! `POST /api/generate` ("Generate a completion" in Ollama's API docs).
//!
//! Request fields: `model` (required, matched as for `/api/chat`), `prompt`, `suffix`,
//! `system`, `template`, `context`, `images`, `format`, `stream` (default true), `raw`, `think`,
//! `keep_alive`, `options` (`num_predict`, `stop` and the types of the others are honoured),
//! type-checked as Go's decoder does. The answer is the configured reply or
//! `"You said: <prompt>"`; `suffix`, `system`, `template`, `format` and `images` do not change
//! it (the stand-in only counts the `suffix` and `system` words in `prompt_eval_count`).
//!
//! Streamed: `{"model","created_at","response","done":false}` lines of [`PIECE_CHARS`]
//! characters (thinking first, in `"thinking"` with `"response":""`), then
//! `{"model","created_at","response":"","done":true,"done_reason","context":[1,2,3],<metrics>}`.
//! Not streamed: one object with the whole `response` (and `thinking`) and the same fields. With
//! `"raw": true` there is no `context`, as the docs say. An empty or absent `prompt` loads the
//! model (`{"model","created_at","response":"","done":true,"done_reason":"load"}`, or `"unload"`
//! with `keep_alive` 0), as the docs' "Load a model" and "Unload a model" examples show.
//!
//! [`PIECE_CHARS`]: super::PIECE_CHARS

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    answer_plan, check_images, check_model, check_options, check_think, check_type, error_reply,
    expected_prompt_tokens, json_body_reply, json_reply, metrics, mid_stream_error_line,
    ndjson_reply, now_rfc3339, parse_body, single_reply, unload_requested, Go, OllamaConfig, Plan,
    MID_STREAM_ERROR,
};
use crate::upstream::Reply;

/// The `response` text the stand-in answers a generate request body with (what a client
/// assembles from the stream, or finds in the non-streamed `response`): the configured reply or
/// `"You said: <prompt>"`, cut before the first `options.stop` string found in it, then cut
/// short by `options.num_predict` (in pieces of [`PIECE_CHARS`](super::PIECE_CHARS) characters,
/// thinking pieces first, as for chat). Empty when the prompt is empty (the request only loads
/// the model). Ignores [`OllamaConfig::fail_mid_stream`].
pub fn expected_generate_text(config: &OllamaConfig, request_body: &Value) -> String {
    generate_plan(config, request_body).content.concat()
}

/// The `thinking` text the stand-in answers a generate request body with (see
/// [`expected_generate_text`]): [`OllamaConfig::think`] unless the request says
/// `"think": false`.
pub fn expected_generate_thinking(config: &OllamaConfig, request_body: &Value) -> String {
    generate_plan(config, request_body).thinking.concat()
}

/// `(prompt_eval_count, eval_count)` of the final line: the words of `system`, `prompt` and
/// `suffix` (see [`expected_prompt_tokens`]; each non-empty one counts at least 1), and the
/// pieces generated, thinking included (at least 1). `(0, 0)` when the request only loads the
/// model (that answer has no metrics).
pub fn expected_generate_usage(config: &OllamaConfig, request_body: &Value) -> (u64, u64) {
    let plan = generate_plan(config, request_body);
    (plan.prompt_eval_count, plan.eval_count)
}

/// What one generate answer consists of; an empty [`Plan`] for a load request.
fn generate_plan(config: &OllamaConfig, body: &Value) -> Plan {
    let prompt = body["prompt"].as_str().unwrap_or("");
    if prompt.is_empty() {
        return Plan::default();
    }
    let text = config
        .reply
        .clone()
        .unwrap_or_else(|| format!("You said: {prompt}"));
    let text = cut_at_stop(&text, body);
    let counted: Vec<&str> = ["system", "prompt", "suffix"]
        .iter()
        .filter_map(|field| body[*field].as_str())
        .filter(|text| !text.is_empty())
        .collect();
    answer_plan(config, body, text, expected_prompt_tokens(&counted), false)
}

/// `text` up to the earliest occurrence of any (non-empty) `options.stop` string, which is not
/// included, as a model stops before emitting a stop sequence.
fn cut_at_stop<'a>(text: &'a str, body: &Value) -> &'a str {
    let stops = body["options"]["stop"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let end = stops
        .iter()
        .filter_map(Value::as_str)
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

pub(super) fn generate(config: &OllamaConfig, raw: &[u8]) -> Reply {
    match answer(config, raw) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn answer(config: &OllamaConfig, raw: &[u8]) -> Result<Reply, Reply> {
    let body = validate_generate(config, raw)?;
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let prompt = body["prompt"].as_str().unwrap_or("");
    // Ollama's order: unload, then the raw-mode check, then options, then load.
    if prompt.is_empty() && unload_requested(&body) {
        return Ok(load_reply(&model, "unload"));
    }
    let is_raw = body["raw"].as_bool().unwrap_or(false);
    let has_context = body["context"].as_array().is_some_and(|c| !c.is_empty());
    let non_empty = |field: &str| body[field].as_str().is_some_and(|s| !s.is_empty());
    if is_raw && (non_empty("template") || non_empty("system") || has_context) {
        return Err(error_reply(
            400,
            "raw mode does not support template, system, or context",
        ));
    }
    if let Some(options) = body["options"].as_object() {
        check_options(options)?;
    }
    if prompt.is_empty() {
        return Ok(load_reply(&model, "load"));
    }
    let plan = generate_plan(config, &body);
    // "raw mode will not return a context".
    let context = (!is_raw).then(|| json!([1, 2, 3]));
    if body["stream"].as_bool().unwrap_or(true) {
        return Ok(stream_reply(config, &model, &plan, context));
    }
    std::thread::sleep(config.delay);
    if config.fail_mid_stream {
        return Err(json_reply(500, &json!({"error": MID_STREAM_ERROR})));
    }
    let object = final_object(
        &model,
        &plan.content.concat(),
        &plan.thinking.concat(),
        &plan,
        context,
        Duration::ZERO,
    );
    Ok(single_reply(config, object.render().into_bytes()))
}

/// The answer to an empty prompt: one object, no metrics (`done_reason` `load` or `unload`).
fn load_reply(model: &str, done_reason: &str) -> Reply {
    let object = Go::object(vec![
        ("model", Go::string(model)),
        ("created_at", Go::string(&now_rfc3339())),
        ("response", Go::string("")),
        ("done", Go::Value(json!(true))),
        ("done_reason", Go::string(done_reason)),
    ]);
    json_body_reply(200, object.render().into_bytes())
}

fn stream_reply(config: &OllamaConfig, model: &str, plan: &Plan, context: Option<Value>) -> Reply {
    let line = |response: &str, thinking: Option<&str>| {
        let mut fields = vec![
            ("model", Go::string(model)),
            ("created_at", Go::string(&now_rfc3339())),
            ("response", Go::string(response)),
        ];
        if let Some(thinking) = thinking {
            fields.push(("thinking", Go::string(thinking)));
        }
        fields.push(("done", Go::Value(json!(false))));
        Go::object(fields).render()
    };
    let mut lines = Vec::new();
    for piece in &plan.thinking {
        lines.push(line("", Some(piece)));
    }
    for piece in &plan.content {
        lines.push(line(piece, None));
        if config.fail_mid_stream {
            break;
        }
    }
    if config.fail_mid_stream {
        // After the first response line; with none, instead of the done line.
        lines.push(mid_stream_error_line());
    } else {
        let streamed = config.delay * (lines.len() as u32 + 1);
        lines.push(final_object(model, "", "", plan, context, streamed).render());
    }
    ndjson_reply(config, lines)
}

/// Ollama's `GenerateResponse` with `done: true`: `model`, `created_at`, `response`,
/// `thinking` (when not empty), `done`, `done_reason`, `context` (unless raw), the metrics.
fn final_object(
    model: &str,
    response: &str,
    thinking: &str,
    plan: &Plan,
    context: Option<Value>,
    waited: Duration,
) -> Go {
    let mut fields = vec![
        ("model", Go::string(model)),
        ("created_at", Go::string(&now_rfc3339())),
        ("response", Go::string(response)),
    ];
    if !thinking.is_empty() {
        fields.push(("thinking", Go::string(thinking)));
    }
    fields.push(("done", Go::Value(json!(true))));
    fields.push(("done_reason", Go::string(plan.done_reason)));
    if let Some(context) = context {
        fields.push(("context", Go::Value(context)));
    }
    fields.extend(metrics(plan, waited));
    Go::object(fields)
}

/// Checks the request as Ollama's decoder and handler would (types, `think`, the model); the
/// parsed body, or the error reply. The raw-mode and option checks come later, in Ollama's
/// order.
fn validate_generate(config: &OllamaConfig, raw: &[u8]) -> Result<Value, Reply> {
    let body = parse_body(raw, "api.GenerateRequest")?;
    for field in ["model", "prompt", "suffix", "system", "template"] {
        let value = &body[field];
        check_type(
            &format!("GenerateRequest.{field}"),
            value,
            value.is_string(),
            "string",
        )?;
    }
    for field in ["stream", "raw", "truncate", "shift"] {
        let value = &body[field];
        check_type(
            &format!("GenerateRequest.{field}"),
            value,
            value.is_boolean(),
            "bool",
        )?;
    }
    let context = &body["context"];
    check_type(
        "GenerateRequest.context",
        context,
        context.is_array(),
        "[]int",
    )?;
    for token in context.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        check_type(
            "GenerateRequest.context",
            token,
            token.is_i64() || token.is_u64(),
            "int",
        )?;
    }
    check_images("GenerateRequest.images", &body["images"])?;
    let options = &body["options"];
    check_type(
        "GenerateRequest.options",
        options,
        options.is_object(),
        "map[string]interface {}",
    )?;
    check_think(&body)?;
    check_model(config, &body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::super::tests::{assert_rfc3339_nano, ndjson, normalised, send};
    use super::super::{start, Chunking, OllamaConfig, MID_STREAM_ERROR, PIECE_CHARS};
    use super::*;
    use crate::http::{Request, Response};
    use crate::upstream::Upstream;

    fn generate_body(prompt: &str) -> Value {
        json!({"model": "qwen3:32b", "prompt": prompt})
    }

    fn post_generate(upstream: &Upstream, body: &Value) -> Response {
        send(upstream, Request::post("/api/generate").json(body))
    }

    fn assembled(lines: &[Value]) -> String {
        lines
            .iter()
            .filter_map(|l| l["response"].as_str())
            .collect()
    }

    fn thinking(lines: &[Value]) -> String {
        lines
            .iter()
            .filter_map(|l| l["thinking"].as_str())
            .collect()
    }

    #[test]
    fn generate_streams_documented_lines_by_default() {
        let config = OllamaConfig::default();
        let body = generate_body("Why is the sky blue?");
        let expected = expected_generate_text(&config, &body);
        assert_eq!(expected, "You said: Why is the sky blue?");
        let upstream = start(config.clone());
        let response = post_generate(&upstream, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/x-ndjson")
        );
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        let lines = ndjson(&response);
        let (last, pieces) = lines.split_last().unwrap();
        assert_eq!(pieces.len(), expected.chars().count().div_ceil(PIECE_CHARS));
        for line in pieces {
            let keys: Vec<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys.len(), 4, "{line}");
            assert_eq!(line["model"], "qwen3:32b");
            assert_rfc3339_nano(line["created_at"].as_str().unwrap());
            assert!(!line["response"].as_str().unwrap().is_empty());
            assert_eq!(line["done"], false);
        }
        assert_eq!(assembled(&lines), expected);
        assert_eq!(last["response"], "");
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["context"], json!([1, 2, 3]));
        assert_rfc3339_nano(last["created_at"].as_str().unwrap());
        assert_eq!(last["prompt_eval_count"], 5, "words in the prompt");
        assert_eq!(last["eval_count"], pieces.len());
        assert_eq!(
            expected_generate_usage(&config, &body),
            (5, pieces.len() as u64)
        );
        for metric in [
            "total_duration",
            "load_duration",
            "prompt_eval_duration",
            "eval_duration",
        ] {
            assert!(last[metric].as_u64().unwrap() > 0, "{metric}: {last}");
        }
        // Field order as Ollama's GenerateResponse.
        let raw = response.text();
        let mut raw_lines = raw.lines();
        let first = raw_lines.next().unwrap();
        assert!(
            first.starts_with(r#"{"model":"qwen3:32b","created_at":""#),
            "{first}"
        );
        assert!(
            first.ends_with(r#"","response":"You ","done":false}"#),
            "{first}"
        );
        let final_line = raw_lines.last().unwrap();
        assert!(
            final_line.contains(
                r#","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":"#
            ),
            "{final_line}"
        );
        assert!(
            final_line.contains(
                r#","load_duration":12345678,"prompt_eval_count":5,"prompt_eval_duration":"#
            ),
            "{final_line}"
        );
        assert_eq!(upstream.requests()[0].path, "/api/generate");
    }

    #[test]
    fn generate_stream_false_is_one_object() {
        let upstream = start(OllamaConfig::default());
        let mut body = generate_body("one two three");
        body["stream"] = json!(false);
        let response = post_generate(&upstream, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(response.header("content-length").is_some());
        assert_eq!(response.text().lines().count(), 1);
        let v = response.json();
        assert_eq!(v["model"], "qwen3:32b");
        assert_eq!(v["response"], "You said: one two three");
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["context"], json!([1, 2, 3]));
        assert_eq!(v["prompt_eval_count"], 3);
        assert_eq!(v["eval_count"], 6);
        assert!(v.get("thinking").is_none());
        assert!(v.get("message").is_none());
        let raw = response.text();
        assert!(
            raw.contains(r#","response":"You said: one two three","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":"#),
            "{raw}"
        );
    }

    #[test]
    fn generate_counts_system_and_suffix_but_answers_the_prompt() {
        let config = OllamaConfig::default();
        let body = json!({"model": "qwen3", "prompt": "def f(a, b):", "suffix": "    return r",
            "system": "You write Python", "stream": false});
        let config = OllamaConfig {
            models: vec!["qwen3:latest".into()],
            ..config
        };
        assert_eq!(
            expected_generate_text(&config, &body),
            "You said: def f(a, b):"
        );
        assert_eq!(expected_generate_usage(&config, &body), (8, 6));
        let upstream = start(config);
        let v = post_generate(&upstream, &body).json();
        assert_eq!(v["response"], "You said: def f(a, b):");
        assert_eq!(
            v["prompt_eval_count"], 8,
            "3 system + 3 prompt + 2 suffix words"
        );
        assert_eq!(v["eval_count"], 6);
        // A prompt of blanks still counts one token.
        assert_eq!(
            expected_generate_usage(&OllamaConfig::default(), &generate_body("  ")).0,
            1
        );
    }

    #[test]
    fn generate_reply_num_predict_and_stop() {
        let config = OllamaConfig {
            reply: Some("abcdefghijklmnopqrstuvwxyz".into()),
            ..OllamaConfig::default()
        };
        let upstream = start(config.clone());
        let mut body = generate_body("hi");
        body["options"] = json!({"num_predict": 3, "temperature": 0.5});
        assert_eq!(expected_generate_text(&config, &body), "abcdefghijkl");
        let lines = ndjson(&post_generate(&upstream, &body));
        assert_eq!(lines.len(), 4);
        assert_eq!(assembled(&lines), "abcdefghijkl");
        assert_eq!(lines[3]["done_reason"], "length");
        assert_eq!(lines[3]["eval_count"], 3);
        body["stream"] = json!(false);
        let v = post_generate(&upstream, &body).json();
        assert_eq!(v["response"], "abcdefghijkl");
        assert_eq!(v["done_reason"], "length");
        body["options"]["num_predict"] = json!(7);
        let v = post_generate(&upstream, &body).json();
        assert_eq!(v["response"], "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(v["done_reason"], "stop");
        // Stop sequences end the text before the earliest one found.
        body["options"] = json!({"stop": ["xyz", "mno", ""]});
        assert_eq!(expected_generate_text(&config, &body), "abcdefghijkl");
        let v = post_generate(&upstream, &body).json();
        assert_eq!(v["response"], "abcdefghijkl");
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["eval_count"], 3);
        body["options"] = json!({"stop": ["def"], "num_predict": 1});
        assert_eq!(expected_generate_text(&config, &body), "abc");
        let v = post_generate(&upstream, &body).json();
        assert_eq!(
            (v["response"].as_str(), v["done_reason"].as_str()),
            (Some("abc"), Some("stop"))
        );
        body["options"] = json!({"stop": ["abc"]});
        let v = post_generate(&upstream, &body).json();
        assert_eq!(v["response"], "");
        assert_eq!(v["eval_count"], 1);
    }

    #[test]
    fn generate_thinking_comes_first() {
        let config = OllamaConfig {
            think: Some("Let me think.".into()),
            reply: Some("Done.".into()),
            ..OllamaConfig::default()
        };
        let upstream = start(config.clone());
        let body = generate_body("x");
        let response = post_generate(&upstream, &body);
        let lines = ndjson(&response);
        assert_eq!(thinking(&lines), "Let me think.");
        assert_eq!(expected_generate_thinking(&config, &body), "Let me think.");
        assert_eq!(assembled(&lines), "Done.");
        assert_eq!(lines[0]["response"], "");
        let first_line = response.text().lines().next().unwrap().to_string();
        assert!(
            first_line.ends_with(r#","response":"","thinking":"Let ","done":false}"#),
            "{first_line}"
        );
        let first_response = lines.iter().position(|l| l["response"] != "").unwrap();
        assert_eq!(first_response, 4, "four thinking pieces");
        assert!(lines[first_response..]
            .iter()
            .all(|l| l.get("thinking").is_none()));
        assert_eq!(lines.last().unwrap()["eval_count"], 6);
        let mut flat = body.clone();
        flat["stream"] = json!(false);
        let v = post_generate(&upstream, &flat).json();
        assert_eq!(v["thinking"], "Let me think.");
        assert_eq!(v["response"], "Done.");
        // "think": false turns it off; a level keeps it.
        flat["think"] = json!(false);
        let v = post_generate(&upstream, &flat).json();
        assert!(v.get("thinking").is_none());
        assert_eq!(expected_generate_thinking(&config, &flat), "");
        flat["think"] = json!("low");
        assert_eq!(
            post_generate(&upstream, &flat).json()["thinking"],
            "Let me think."
        );
        // num_predict counts thinking pieces first.
        flat["options"] = json!({"num_predict": 2});
        let v = post_generate(&upstream, &flat).json();
        assert_eq!(v["thinking"], "Let me t");
        assert_eq!(v["response"], "");
        assert_eq!(v["done_reason"], "length");
    }

    #[test]
    fn generate_raw_has_no_context() {
        let upstream = start(OllamaConfig::default());
        let body = json!({"model": "qwen3:32b", "prompt": "[INST] hi [/INST]", "raw": true});
        let lines = ndjson(&post_generate(&upstream, &body));
        let last = lines.last().unwrap();
        assert_eq!(last["done"], true);
        assert!(last.get("context").is_none(), "{last}");
        assert_eq!(assembled(&lines), "You said: [INST] hi [/INST]");
        let mut flat = body.clone();
        flat["stream"] = json!(false);
        assert!(post_generate(&upstream, &flat)
            .json()
            .get("context")
            .is_none());
        for extra in [
            json!({"system": "be brief"}),
            json!({"template": "{{ .Prompt }}"}),
            json!({"context": [1, 2]}),
        ] {
            let mut bad = body.clone();
            bad.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let response = post_generate(&upstream, &bad);
            assert_eq!(response.status, 400);
            assert_eq!(
                response.json(),
                json!({"error": "raw mode does not support template, system, or context"})
            );
        }
        // Empty ones are fine.
        let mut ok = body.clone();
        ok["system"] = json!("");
        ok["context"] = json!([]);
        assert_eq!(post_generate(&upstream, &ok).status, 200);
    }

    #[test]
    fn generate_empty_prompt_loads_the_model() {
        let upstream = start(OllamaConfig::default());
        for (body, reason) in [
            (json!({"model": "qwen3:32b"}), "load"),
            (json!({"model": "qwen3:32b", "prompt": ""}), "load"),
            (json!({"model": "qwen3:32b", "keep_alive": 0}), "unload"),
            (
                json!({"model": "qwen3:32b", "prompt": "", "keep_alive": "0s"}),
                "unload",
            ),
        ] {
            let response = post_generate(&upstream, &body);
            assert_eq!(response.status, 200);
            assert_eq!(
                response.header("content-type"),
                Some("application/json; charset=utf-8")
            );
            let mut v = response.json();
            assert_rfc3339_nano(v["created_at"].as_str().unwrap());
            v["created_at"] = json!("");
            assert_eq!(
                v,
                json!({"model": "qwen3:32b", "created_at": "", "response": "", "done": true, "done_reason": reason})
            );
            assert_eq!(expected_generate_text(&OllamaConfig::default(), &body), "");
            assert_eq!(
                expected_generate_usage(&OllamaConfig::default(), &body),
                (0, 0)
            );
        }
    }

    #[test]
    fn generate_errors_have_ollama_shapes() {
        let upstream = start(OllamaConfig::default());
        let response = post_generate(&upstream, &json!({"model": "nope:7b", "prompt": "x"}));
        assert_eq!(response.status, 404);
        assert_eq!(
            response.json(),
            json!({"error": "model \"nope:7b\" not found, try pulling it first"})
        );
        let response = post_generate(&upstream, &json!({"model": "qwen3", "prompt": "x"}));
        assert_eq!(response.status, 404, "qwen3 means qwen3:latest");
        let response = post_generate(&upstream, &json!({"prompt": "x"}));
        assert_eq!(response.status, 400);
        assert_eq!(response.json(), json!({"error": "model is required"}));
        let response = send(&upstream, Request::post("/api/generate"));
        assert_eq!(response.status, 400);
        assert_eq!(response.json(), json!({"error": "missing request body"}));
        let response = send(&upstream, Request::post("/api/generate").body("prompt=hi"));
        assert_eq!(response.status, 400);
        assert_eq!(
            response.json(),
            json!({"error": "invalid character 'p' looking for beginning of value"})
        );
        for (body, message) in [
            (
                json!({"model": "qwen3:32b", "prompt": 42}),
                "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": ["a", "b"]}),
                "json: cannot unmarshal array into Go struct field GenerateRequest.prompt of type string",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": "x", "stream": "no"}),
                "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": "x", "suffix": {}}),
                "json: cannot unmarshal object into Go struct field GenerateRequest.suffix of type string",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": "x", "context": ["a"]}),
                "json: cannot unmarshal string into Go struct field GenerateRequest.context of type int",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": "x", "images": ["data:image/png;base64,AAAA"]}),
                "illegal base64 data at input byte 4",
            ),
            (
                json!({"model": "qwen3:32b", "prompt": "x", "think": "none"}),
                "invalid think value: \"none\" (must be \"high\", \"medium\", \"low\", true, or false)",
            ),
        ] {
            let response = post_generate(&upstream, &body);
            assert_eq!(response.status, 400, "{body}: {}", response.text());
            assert_eq!(response.json(), json!({"error": message}), "{body}");
        }
        let response = post_generate(
            &upstream,
            &json!({"model": "qwen3:32b", "prompt": "x", "options": {"stop": "\n"}}),
        );
        assert_eq!(response.status, 500);
        assert_eq!(
            response.json(),
            json!({"error": "option \"stop\" must be of type array"})
        );
        // Accepted: images, format, template, think levels, unknown fields.
        let ok = json!({"model": "qwen3:32b", "prompt": "x", "images": ["iVBORw0KGgo="],
            "format": {"type": "object"}, "template": "{{ .Prompt }}", "think": "high",
            "keep_alive": "5m", "user": "alice", "stream": false});
        assert_eq!(post_generate(&upstream, &ok).status, 200);
        let response = send(&upstream, Request::get("/api/generate"));
        assert_eq!(response.status, 404);
        assert_eq!(response.text(), "404 page not found");
    }

    #[test]
    fn generate_failing_mid_stream() {
        let upstream = start(OllamaConfig {
            fail_mid_stream: true,
            ..OllamaConfig::default()
        });
        let lines = ndjson(&post_generate(&upstream, &generate_body("please fail now")));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["response"], "You ");
        assert_eq!(lines[1], json!({"error": MID_STREAM_ERROR}));
        let mut body = generate_body("x");
        body["stream"] = json!(false);
        let response = post_generate(&upstream, &body);
        assert_eq!(response.status, 500);
        assert_eq!(response.json(), json!({"error": MID_STREAM_ERROR}));
        // With thinking: all thinking lines, the first response line, the error.
        let upstream = start(OllamaConfig {
            fail_mid_stream: true,
            think: Some("hmm".into()),
            ..OllamaConfig::default()
        });
        let lines = ndjson(&post_generate(&upstream, &generate_body("x")));
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["thinking"], "hmm");
        assert_eq!(lines[1]["response"], "You ");
        assert_eq!(lines[2], json!({"error": MID_STREAM_ERROR}));
    }

    #[test]
    fn generate_every_chunking_gives_the_same_body() {
        let body = generate_body("héllo wörld, ünïcode splits 你好 🎉 <b>&amp;</b>");
        let config = OllamaConfig {
            think: Some("thought 🤔".into()),
            ..OllamaConfig::default()
        };
        let expected = expected_generate_text(&config, &body);
        let mut bodies = Vec::new();
        for chunking in Chunking::VARIETY {
            let upstream = start(OllamaConfig {
                chunking,
                ..config.clone()
            });
            let response = post_generate(&upstream, &body);
            let lines = normalised(&response);
            assert_eq!(assembled(&lines), expected, "{chunking:?}");
            assert_eq!(thinking(&lines), "thought 🤔");
            let mut flat = body.clone();
            flat["stream"] = json!(false);
            let response = post_generate(&upstream, &flat);
            assert_eq!(response.status, 200);
            match chunking {
                Chunking::Lines | Chunking::Whole => {
                    assert!(response.header("content-length").is_some())
                }
                _ => assert_eq!(response.header("transfer-encoding"), Some("chunked")),
            }
            let mut single = response.json();
            assert_eq!(single["response"], expected.as_str());
            single["created_at"] = json!("");
            bodies.push((lines, single));
        }
        for other in &bodies[1..] {
            assert_eq!(&bodies[0], other);
        }
        assert!(
            serde_json::to_string(&bodies[0].1)
                .unwrap()
                .contains("<b>&amp;</b>"),
            "the text survives"
        );
    }

    #[test]
    fn generate_escapes_like_go() {
        let upstream = start(OllamaConfig::default());
        let mut body = generate_body("<tag> & \u{2028} \"q\"");
        body["stream"] = json!(false);
        let raw = post_generate(&upstream, &body).text();
        assert!(
            raw.contains(r#""response":"You said: \u003ctag\u003e \u0026 \u2028 \"q\"""#),
            "{raw}"
        );
    }

    #[test]
    fn generate_waits_the_delay_per_line() {
        let handler = super::super::ollama_handler(OllamaConfig {
            delay: Duration::from_millis(25),
            reply: Some("12345678".into()),
            ..OllamaConfig::default()
        });
        let request = crate::upstream::Recorded {
            method: "POST".into(),
            path: "/api/generate".into(),
            headers: Vec::new(),
            body: generate_body("x").to_string().into_bytes(),
            complete: true,
        };
        let crate::upstream::ReplyBody::Chunks(chunks) = handler(&request).body else {
            panic!("streamed answers are chunked")
        };
        assert_eq!(chunks.len(), 3, "two pieces and the done line");
        assert!(chunks
            .iter()
            .all(|(delay, _)| *delay == Duration::from_millis(25)));
        let upstream = start(OllamaConfig {
            delay: Duration::from_millis(100),
            ..OllamaConfig::default()
        });
        let started = std::time::Instant::now();
        let mut body = generate_body("x");
        body["stream"] = json!(false);
        assert_eq!(post_generate(&upstream, &body).status, 200);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        let started = std::time::Instant::now();
        let lines = ndjson(&post_generate(&upstream, &generate_body("a")));
        assert_eq!(lines.len(), 4, "three pieces and the done line");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }
}
