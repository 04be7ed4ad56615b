//! Ollama's NDJSON stream -> OpenAI's Server-Sent Events, line by line as the bytes arrive.

use serde_json::{json, Map, Value};

use super::response::{
    created, finish_reason, message_tool_calls, str_of, usage, usage_value, FINGERPRINT,
};
use super::{openai_error_value, to_bytes, ResponseContext};

/// A longer line ends the stream with an SSE error event.
pub const MAX_STREAM_LINE_BYTES: usize = 1024 * 1024;

const DONE: &[u8] = b"data: [DONE]\n\n";
const INVALID_LINE: &str = "the model server sent an invalid stream line";
const LONG_LINE: &str = "the model server sent a stream line that is too long";
const CUT_SHORT: &str = "the model server ended the stream before it was complete";
const UPSTREAM_FAILED: &str = "the model server failed while streaming";

/// Translates one streamed answer; [`feed`](Self::feed) it the body as it arrives, then
/// [`finish`](Self::finish) it.
#[derive(Debug)]
pub struct StreamTranslator {
    ctx: ResponseContext,
    /// The bytes of the line being received (no newline yet).
    pending: Vec<u8>,
    /// `created` and `model`, fixed by the first line.
    head: Option<(u64, String)>,
    /// The assistant role was sent (on the first chunk).
    role_sent: bool,
    /// Tool calls sent so far (their next index).
    tool_calls_sent: u64,
    usage: Option<(u64, u64)>,
    ended: bool,
    finished: bool,
}

impl StreamTranslator {
    pub fn new(ctx: ResponseContext) -> Self {
        Self {
            ctx,
            pending: Vec::new(),
            head: None,
            role_sent: false,
            tool_calls_sent: 0,
            usage: None,
            ended: false,
            finished: false,
        }
    }

    /// Feeds the next body bytes; returns the SSE bytes to send now (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while !self.ended && !rest.is_empty() {
            let (piece, complete, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (
                    rest.get(..at).unwrap_or_default(),
                    true,
                    rest.get(at + 1..).unwrap_or_default(),
                ),
                None => (rest, false, &[][..]),
            };
            rest = next;
            if self.pending.len().saturating_add(piece.len()) > MAX_STREAM_LINE_BYTES {
                self.pending = Vec::new();
                self.error(LONG_LINE, &mut out);
                break;
            }
            self.pending.extend_from_slice(piece);
            if complete {
                let line = std::mem::take(&mut self.pending);
                self.line(&line, &mut out);
            }
        }
        out
    }

    /// The body ended: translates a last line without newline and ends the stream (an error
    /// event when the answer stopped before its `done` line). Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.finished = true;
        if !self.ended {
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut out);
        }
        if !self.ended {
            self.error(CUT_SHORT, &mut out);
        }
        out
    }

    /// (prompt_tokens, completion_tokens) once the done line was seen.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    /// Whether the stream has ended (error event, done line and `[DONE]`, or finish).
    pub fn ended(&self) -> bool {
        self.ended || self.finished
    }

    /// One complete line (without its newline).
    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let answer = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(answer)) => answer,
            _ => return self.error(INVALID_LINE, out),
        };
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            let message = error
                .as_str()
                .filter(|m| !m.is_empty())
                .unwrap_or(UPSTREAM_FAILED);
            return self.error(message, out);
        }
        if self.head.is_none() {
            let model = str_of(&answer, "model").to_string();
            self.head = Some((created(&answer, self.ctx.now_s), model));
        }
        let done = answer.get("done").and_then(Value::as_bool) == Some(true);
        let delta = self.delta(&answer);
        if done {
            let reason = if self.tool_calls_sent > 0 {
                "tool_calls"
            } else {
                finish_reason(&answer)
            };
            self.event(&self.chunk(delta, Value::String(reason.into())), out);
            let used = usage(&answer);
            self.usage = Some(used);
            if self.ctx.include_usage {
                let mut chunk = self.envelope(Vec::new());
                chunk.insert("usage".into(), usage_value(used));
                self.event(&Value::Object(chunk), out);
            }
            out.extend_from_slice(DONE);
            self.ended = true;
        } else if !delta.is_empty() {
            self.event(&self.chunk(delta, Value::Null), out);
        }
    }

    /// What this line adds (role on the first chunk, content, reasoning, tool calls).
    fn delta(&mut self, answer: &Map<String, Value>) -> Map<String, Value> {
        let mut delta = Map::new();
        let empty = Map::new();
        let message = answer
            .get("message")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let content = str_of(message, "content");
        if !content.is_empty() {
            delta.insert("content".into(), content.into());
        }
        let thinking = str_of(message, "thinking");
        if !thinking.is_empty() {
            delta.insert("reasoning".into(), thinking.into());
        }
        let calls = message_tool_calls(message, &self.ctx.id, self.tool_calls_sent);
        if !calls.is_empty() {
            self.tool_calls_sent = self.tool_calls_sent.saturating_add(calls.len() as u64);
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        let done = answer.get("done").and_then(Value::as_bool) == Some(true);
        if !self.role_sent && (done || !delta.is_empty()) {
            self.role_sent = true;
            delta.insert("role".into(), "assistant".into());
        }
        delta
    }

    /// The fields every chunk carries, with these choices.
    fn envelope(&self, choices: Vec<Value>) -> Map<String, Value> {
        let (created, model) = self
            .head
            .clone()
            .unwrap_or_else(|| (self.ctx.now_s, String::new()));
        let mut chunk = Map::new();
        chunk.insert("id".into(), self.ctx.id.clone().into());
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("created".into(), created.into());
        chunk.insert("model".into(), model.into());
        chunk.insert("system_fingerprint".into(), FINGERPRINT.into());
        chunk.insert("choices".into(), Value::Array(choices));
        chunk
    }

    fn chunk(&self, delta: Map<String, Value>, finish_reason: Value) -> Value {
        let choice = json!({"index": 0, "delta": delta, "finish_reason": finish_reason});
        Value::Object(self.envelope(vec![choice]))
    }

    fn event(&self, value: &Value, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&to_bytes(value));
        out.extend_from_slice(b"\n\n");
    }

    /// An error event, `[DONE]`, and the end of the stream.
    fn error(&mut self, message: &str, out: &mut Vec<u8>) {
        // 500: type "api_error".
        self.event(&openai_error_value(500, message), out);
        out.extend_from_slice(DONE);
        self.ended = true;
    }
}
