//! Reads the LLM token usage from a response as it passes through, without changing it:
//! Ollama's `prompt_eval_count` + `eval_count` (one JSON object, or the final `"done": true`
//! line of an NDJSON stream), or OpenAI's `usage` (a JSON body, or an SSE `data:` chunk).
//! Memory is bounded: a line longer than the cap is skipped, not buffered.

use serde_json::Value;

/// Longest line kept while looking for the usage.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub struct UsageScanner {
    line: Vec<u8>,
    /// The current line was too long: skip to its end.
    skipping: bool,
    usage: Option<(u64, u64)>,
}

impl UsageScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(newline) => {
                    let (head, rest) = chunk.split_at(newline);
                    self.push(head);
                    self.end_line();
                    chunk = rest.get(1..).unwrap_or_default();
                }
                None => {
                    self.push(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// The body ended: the total usage found, if any.
    pub fn finish(self) -> Option<u64> {
        self.finish_split().map(|(p, c)| p.saturating_add(c))
    }

    /// The body ended: (prompt, completion) tokens found, if any.
    pub fn finish_split(mut self) -> Option<(u64, u64)> {
        self.end_line();
        self.usage
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            self.skipping = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self) {
        if !self.skipping {
            if let Some(usage) = usage_of_line(&self.line) {
                self.usage = Some(usage);
            }
        }
        self.line.clear();
        self.skipping = false;
    }
}

fn usage_of_line(line: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let json = text.strip_prefix("data:").map_or(text, str::trim_start);
    if !json.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(json).ok()?;
    let count = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64);
    if value.get("done").and_then(Value::as_bool) == Some(true) {
        let prompt = count(&value, "prompt_eval_count").unwrap_or(0);
        let completion = count(&value, "eval_count").unwrap_or(0);
        return Some((prompt, completion));
    }
    let usage = value.get("usage")?;
    let prompt = count(usage, "prompt_tokens").unwrap_or(0);
    match (
        count(usage, "completion_tokens"),
        count(usage, "total_tokens"),
    ) {
        (Some(completion), _) => Some((prompt, completion)),
        (None, Some(total)) => Some((prompt, total.saturating_sub(prompt))),
        (None, None) => Some((prompt, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Option<u64> {
        let mut scanner = UsageScanner::new();
        for chunk in chunks {
            scanner.feed(chunk);
        }
        scanner.finish()
    }

    const NDJSON: &str = concat!(
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"lo\"},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,",
        "\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":290}\n"
    );

    #[test]
    fn ollama_stream_final_line() {
        assert_eq!(scan(&[NDJSON.as_bytes()]), Some(316));
    }

    #[test]
    fn split_anywhere_gives_the_same_answer() {
        let bytes = NDJSON.as_bytes();
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(scan(&[a, b]), Some(316), "cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(scan(&singles), Some(316));
    }

    #[test]
    fn non_streamed_ollama_and_openai_bodies() {
        let ollama = br#"{"model":"m","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":3,"eval_count":4}"#;
        assert_eq!(scan(&[ollama]), Some(7));
        let openai = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#;
        assert_eq!(scan(&[openai]), Some(11));
        let sse = b"data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        assert_eq!(scan(&[sse]), Some(3));
    }

    #[test]
    fn no_usage_and_garbage() {
        assert_eq!(scan(&[b"{\"done\":false}\n"]), None);
        assert_eq!(scan(&[b"\xff\xfe\n{{{{\n"]), None);
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        assert_eq!(
            scan(&[&long, b"\n", br#"{"done":true,"eval_count":1}"#]),
            Some(1)
        );
    }
}
