//! Ollama's NDJSON stream -> OpenAI's Server-Sent Events, line by line as the bytes arrive.

use serde_json::{json, Map, Value};

use super::ndjson::{event, AnswerLines, Translating};
use super::response::{
    created, finish_reason, message_tool_calls, str_of, usage, usage_value, FINGERPRINT,
};
use super::ResponseContext;

pub use super::ndjson::MAX_STREAM_LINE_BYTES;

/// Translates one streamed chat: Ollama's `/api/chat` lines into `chat.completion.chunk`s.
pub type StreamTranslator = Translating<ChatLines>;

/// What each `/api/chat` line adds to the chat's stream.
#[derive(Debug)]
pub struct ChatLines {
    ctx: ResponseContext,
    /// `created` and `model`, fixed by the first line.
    head: Option<(u64, String)>,
    /// The assistant role was sent (on the first chunk).
    role_sent: bool,
    /// Tool calls sent so far (their next index).
    tool_calls_sent: u64,
    usage: Option<(u64, u64)>,
}

impl StreamTranslator {
    pub fn new(ctx: ResponseContext) -> Self {
        Translating::with(ChatLines {
            ctx,
            head: None,
            role_sent: false,
            tool_calls_sent: 0,
            usage: None,
        })
    }
}

impl AnswerLines for ChatLines {
    fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    fn answer(&mut self, answer: &Map<String, Value>, out: &mut Vec<u8>) -> bool {
        if self.head.is_none() {
            let model = str_of(answer, "model").to_string();
            self.head = Some((created(answer, self.ctx.now_s), model));
        }
        let done = answer.get("done").and_then(Value::as_bool) == Some(true);
        let delta = self.delta(answer);
        if done {
            let reason = if self.tool_calls_sent > 0 {
                "tool_calls"
            } else {
                finish_reason(answer)
            };
            event(&self.chunk(delta, Value::String(reason.into())), out);
            let used = usage(answer);
            self.usage = Some(used);
            if self.ctx.include_usage {
                let mut chunk = self.envelope(Vec::new());
                chunk.insert("usage".into(), usage_value(used));
                event(&Value::Object(chunk), out);
            }
            return true;
        }
        if !delta.is_empty() {
            event(&self.chunk(delta, Value::Null), out);
        }
        false
    }
}

impl ChatLines {
    /// What this line adds (role on the first chunk, content, reasoning, tool calls). Thinking is
    /// sent twice: as `reasoning` (the mapping's name) and as `reasoning_content` (the name
    /// DeepSeek's API and the clients written for it read).
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
            delta.insert("reasoning_content".into(), thinking.into());
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
}
