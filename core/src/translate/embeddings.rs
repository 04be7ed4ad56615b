//! OpenAI embeddings (`POST /v1/embeddings`) -> Ollama `POST /api/embed` and back.
//!
//! - [`embeddings_request`]: the client's body, validated and rebuilt as Ollama's
//!   `{"model", "input": [..], "truncate": true, "dimensions"?}` (unknown fields dropped).
//! - [`embeddings_response`]: Ollama's `{"model", "embeddings": [[..]], "prompt_eval_count"}` ->
//!   OpenAI's `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], ..}`,
//!   the vectors as JSON numbers or as base64 of their little-endian f32 bytes.
//!
//! All input is hostile: nothing here indexes, slices or unwraps in a way that can panic, and
//! the work is linear in the size of the body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::fields::{field, invalid};
use super::options::parse_body;
use super::request::resolve_model;
use super::response::error_body;
use super::{to_bytes, Target, TranslateConfig, TranslateError, UpstreamError};

/// Most inputs in one request (OpenAI's limit).
const MAX_INPUTS: usize = 2048;
/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: u64 = 65_536;

const TOKEN_IDS: &str = "input as token ids is not supported; send text";
const INPUT_TYPE: &str = "input must be a string or an array of strings";
const ENCODING: &str = "encoding_format must be float or base64";

/// How the client wants the vectors (`encoding_format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingEncoding {
    /// JSON numbers (OpenAI's default).
    Float,
    /// Standard base64 (with padding) of the vector's little-endian f32 bytes.
    Base64,
}

/// What the embeddings request asked, needed to shape the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// The Ollama `/api/embed` body (or, with `Target::OpenAi`, the client's body unchanged).
    pub body: Vec<u8>,
    /// The model sent upstream (after default and alias).
    pub model: String,
    pub encoding: EmbeddingEncoding,
    /// How many inputs (the answer must have as many vectors).
    pub inputs: usize,
}

/// Translates an OpenAI embeddings request for Ollama's `POST /api/embed`.
///
/// With `Target::OpenAi` the body goes upstream unchanged (like [`super::chat_request`]): the
/// model is resolved for the record ("" when none), `encoding_format` is still checked, and
/// `inputs` is counted leniently (a string or one token-id array: 1; an array: its length;
/// anything else: 0).
pub fn embeddings_request(
    body: &[u8],
    config: &TranslateConfig,
) -> Result<EmbeddingsRequest, TranslateError> {
    let obj = parse_body(body)?;
    if config.target == Target::OpenAi {
        let encoding = encoding(&obj)?;
        return Ok(EmbeddingsRequest {
            body: body.to_vec(),
            model: resolve_model(&obj, config).unwrap_or_default(),
            encoding,
            inputs: count_inputs(&obj),
        });
    }

    let model = resolve_model(&obj, config)?;
    let input = texts(&obj)?;
    let encoding = encoding(&obj)?;
    let dimensions = dimensions(&obj)?;
    let inputs = input.len();

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.clone()));
    out.insert("input".into(), Value::Array(input));
    out.insert("truncate".into(), Value::Bool(true));
    if let Some(d) = dimensions {
        out.insert("dimensions".into(), d.into());
    }
    Ok(EmbeddingsRequest {
        body: to_bytes(&Value::Object(out)),
        model,
        encoding,
        inputs,
    })
}

/// `input` as Ollama's array of non-empty strings.
fn texts(obj: &Map<String, Value>) -> Result<Vec<Value>, TranslateError> {
    match field(obj, "input") {
        None => Err(invalid("input is required")),
        Some(Value::String(s)) if s.is_empty() => Err(invalid("input must not be empty")),
        Some(text @ Value::String(_)) => Ok(vec![text.clone()]),
        Some(Value::Array(items)) => text_items(items),
        Some(_) => Err(invalid(INPUT_TYPE)),
    }
}

fn text_items(items: &[Value]) -> Result<Vec<Value>, TranslateError> {
    if items.is_empty() {
        return Err(invalid("input must not be empty"));
    }
    if is_token_ids(items) {
        return Err(invalid(TOKEN_IDS));
    }
    if items.len() > MAX_INPUTS {
        return Err(invalid(format!(
            "input must have at most {MAX_INPUTS} items"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if s.is_empty() => {
                Err(invalid(format!("input[{i}] must not be empty")))
            }
            Value::String(_) => Ok(item.clone()),
            _ => Err(invalid(format!("input[{i}] must be a string"))),
        })
        .collect()
}

/// OpenAI's token-id forms: an array of numbers, or an array of arrays of numbers.
fn is_token_ids(items: &[Value]) -> bool {
    items.iter().all(Value::is_number)
        || items
            .iter()
            .all(|item| matches!(item, Value::Array(ids) if ids.iter().all(Value::is_number)))
}

/// How many inputs a passthrough request has, without judging it (the upstream does).
fn count_inputs(obj: &Map<String, Value>) -> usize {
    match field(obj, "input") {
        Some(Value::String(_)) => 1,
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_number) => 1,
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}

fn encoding(obj: &Map<String, Value>) -> Result<EmbeddingEncoding, TranslateError> {
    match field(obj, "encoding_format") {
        None => Ok(EmbeddingEncoding::Float),
        Some(Value::String(s)) if s == "float" => Ok(EmbeddingEncoding::Float),
        Some(Value::String(s)) if s == "base64" => Ok(EmbeddingEncoding::Base64),
        Some(_) => Err(invalid(ENCODING)),
    }
}

fn dimensions(obj: &Map<String, Value>) -> Result<Option<u64>, TranslateError> {
    let Some(value) = field(obj, "dimensions") else {
        return Ok(None);
    };
    match value.as_u64() {
        Some(n) if (1..=MAX_DIMENSIONS).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(format!(
            "dimensions must be a positive integer up to {MAX_DIMENSIONS}"
        ))),
    }
}

/// Translates Ollama's `/api/embed` answer (status and body) into OpenAI's (status and body),
/// with the prompt tokens it used (`prompt_eval_count`, 0 when absent) when it succeeded.
///
/// A non-2xx status becomes OpenAI's error body with the same status (as [`super::chat_response`]
/// does). Not used with `Target::OpenAi`: there the upstream's answer is already OpenAI's and is
/// passed through.
pub fn embeddings_response(
    status: u16,
    body: &[u8],
    request: &EmbeddingsRequest,
) -> Result<(u16, Vec<u8>, Option<u64>), UpstreamError> {
    if !(200..300).contains(&status) {
        return Ok((status, error_body(status, body), None));
    }
    let answer = parse_answer(body, request.inputs)?;
    if answer.vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err(UpstreamError(
            "the model server's answer has a value out of range".into(),
        ));
    }
    let model = match answer.model {
        Some(m) if !m.is_empty() => m,
        _ => request.model.clone(),
    };
    let data = answer
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| Item {
            object: "embedding",
            index,
            embedding: match request.encoding {
                EmbeddingEncoding::Float => Embedding::Float(vector),
                EmbeddingEncoding::Base64 => Embedding::Base64(base64_of(vector)),
            },
        })
        .collect();
    let tokens = answer.prompt_tokens;
    let list = List {
        object: "list",
        data,
        model: &model,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    let bytes = serde_json::to_vec(&list)
        .map_err(|_| UpstreamError("the model server's answer could not be translated".into()))?;
    Ok((status, bytes, Some(tokens)))
}

/// What is kept of Ollama's answer.
struct Answer {
    model: Option<String>,
    vectors: Vec<Vec<f32>>,
    prompt_tokens: u64,
}

/// Ollama's answer in the expected shape, read straight into f32 vectors (4 bytes a number
/// instead of a `Value` each). Anything else falls back to [`parse_answer_value`].
#[derive(Deserialize)]
struct TypedAnswer {
    #[serde(default)]
    model: Option<String>,
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

fn parse_answer(body: &[u8], inputs: usize) -> Result<Answer, UpstreamError> {
    // serde reads a struct from a JSON array too (positionally): only try objects.
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match serde_json::from_slice::<TypedAnswer>(body) {
        Ok(typed) if object => {
            check_count(typed.embeddings.len(), inputs)?;
            Ok(Answer {
                model: typed.model,
                vectors: typed.embeddings,
                prompt_tokens: typed.prompt_eval_count.unwrap_or(0),
            })
        }
        _ => parse_answer_value(body, inputs),
    }
}

/// The lenient reading (any `model` and `prompt_eval_count`), which also says what is wrong.
fn parse_answer_value(body: &[u8], inputs: usize) -> Result<Answer, UpstreamError> {
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(UpstreamError(
            "the model server's answer is not JSON".into(),
        ));
    };
    let Some(Value::Array(list)) = answer.get("embeddings") else {
        return Err(UpstreamError(
            "the model server's answer has no embeddings".into(),
        ));
    };
    check_count(list.len(), inputs)?;
    let vectors = list.iter().map(vector).collect::<Result<Vec<_>, _>>()?;
    Ok(Answer {
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
        vectors,
        prompt_tokens: answer
            .get("prompt_eval_count")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

fn check_count(vectors: usize, inputs: usize) -> Result<(), UpstreamError> {
    if vectors == inputs {
        Ok(())
    } else {
        Err(UpstreamError(format!(
            "the model server's answer has {vectors} embeddings for {inputs} inputs"
        )))
    }
}

fn vector(item: &Value) -> Result<Vec<f32>, UpstreamError> {
    let Value::Array(numbers) = item else {
        return Err(UpstreamError(
            "the model server's answer has an embedding that is not an array".into(),
        ));
    };
    numbers
        .iter()
        .map(|n| {
            // Rounded to f32 like the typed reading; overflow (inf) is caught by the caller.
            n.as_f64().map(|x| x as f32).ok_or_else(|| {
                UpstreamError("the model server's answer has a non-numeric value".into())
            })
        })
        .collect()
}

/// Standard base64 (with padding) of the little-endian f32 bytes, as OpenAI sends.
fn base64_of(vector: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(vector.len().saturating_mul(4));
    for x in vector {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    STANDARD.encode(bytes)
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Item<'a>>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Item<'a> {
    object: &'static str,
    index: usize,
    embedding: Embedding<'a>,
}

enum Embedding<'a> {
    /// Written as f64 values of the f32s, so that the float and base64 answers agree exactly.
    Float(&'a [f32]),
    Base64(String),
}

impl Serialize for Embedding<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Float(vector) => serializer.collect_seq(vector.iter().map(|&x| f64::from(x))),
            Self::Base64(text) => serializer.serialize_str(text),
        }
    }
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}
