//! Ollama's NDJSON stream as both stream translators (chat and completions) read it: the body cut
//! into lines as the bytes arrive (a line may span chunks; at most [`MAX_STREAM_LINE_BYTES`]), each
//! line read as one answer object, and the Server-Sent Events both send (`data: ...` events, the
//! error event, `data: [DONE]`). What an answer line becomes is the translator's business.

use serde_json::{Map, Value};

use super::{openai_error_value, to_bytes};

/// A longer line ends the stream with an SSE error event.
pub const MAX_STREAM_LINE_BYTES: usize = 1024 * 1024;

const DONE: &[u8] = b"data: [DONE]\n\n";
const INVALID_LINE: &str = "the model server sent an invalid stream line";
const LONG_LINE: &str = "the model server sent a stream line that is too long";
const CUT_SHORT: &str = "the model server ended the stream before it was complete";
const UPSTREAM_FAILED: &str = "the model server failed while streaming";

/// A line grew past [`MAX_STREAM_LINE_BYTES`] (its bytes are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong;

/// The bytes of the line being received, across chunks.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    /// The bytes of the line being received (no newline yet).
    pending: Vec<u8>,
}

impl LineBuffer {
    /// The next complete line (without its `\n`), with `input` advanced past it; `None` once
    /// `input` is used up, its incomplete tail kept for the next call. A line longer than
    /// [`MAX_STREAM_LINE_BYTES`] is refused as soon as that many bytes are held.
    pub(crate) fn next_line<'a>(
        &mut self,
        input: &mut &'a [u8],
    ) -> Option<Result<Vec<u8>, LineTooLong>> {
        let current: &'a [u8] = std::mem::take(input);
        if current.is_empty() {
            return None;
        }
        let (piece, complete, rest) = match current.iter().position(|&b| b == b'\n') {
            Some(at) => (
                current.get(..at).unwrap_or_default(),
                true,
                current.get(at + 1..).unwrap_or_default(),
            ),
            None => (current, false, &[][..]),
        };
        *input = rest;
        if self.pending.len().saturating_add(piece.len()) > MAX_STREAM_LINE_BYTES {
            self.pending = Vec::new();
            return Some(Err(LineTooLong));
        }
        self.pending.extend_from_slice(piece);
        if complete {
            Some(Ok(std::mem::take(&mut self.pending)))
        } else {
            None
        }
    }

    /// The bytes after the last newline (the body's last line when it ended without one).
    pub(crate) fn take_last(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// One streamed answer's lines and whether its SSE stream has ended. The translator asks for the
/// answer objects ([`next_answer`](Self::next_answer), [`last_answer`](Self::last_answer)),
/// writes its events, and calls [`done`](Self::done) after the `done` line; blank lines are
/// skipped, and an invalid, over-long or `{"error": ...}` line, or a body that ends before the
/// `done` line ([`close`](Self::close)), ends the stream with an error event and `[DONE]`.
#[derive(Debug, Default)]
pub(crate) struct NdjsonStream {
    lines: LineBuffer,
    ended: bool,
    finished: bool,
}

impl NdjsonStream {
    /// The next answer object in `input` (consumed up to and including its line); `None` when
    /// `input` holds no further complete line or the stream has ended. Error events go to `out`.
    pub(crate) fn next_answer(
        &mut self,
        input: &mut &[u8],
        out: &mut Vec<u8>,
    ) -> Option<Map<String, Value>> {
        while !self.ended {
            match self.lines.next_line(input)? {
                Ok(line) => {
                    if let Some(answer) = self.answer(&line, out) {
                        return Some(answer);
                    }
                }
                Err(LineTooLong) => {
                    self.error(LONG_LINE, out);
                    return None;
                }
            }
        }
        None
    }

    /// The body ended: its last line when it had no newline (`None` when there is none, it is
    /// blank or an error, or the stream has ended or was closed).
    pub(crate) fn last_answer(&mut self, out: &mut Vec<u8>) -> Option<Map<String, Value>> {
        if self.ended || self.finished {
            return None;
        }
        let line = self.lines.take_last();
        self.answer(&line, out)
    }

    /// The body ended (after [`last_answer`](Self::last_answer)): an error event when the
    /// stream has not ended yet. Idempotent.
    pub(crate) fn close(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if !self.ended {
            self.error(CUT_SHORT, out);
        }
    }

    /// The `done` line was translated: `[DONE]`, and the end of the stream.
    pub(crate) fn done(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(DONE);
        self.ended = true;
    }

    /// Whether the stream has ended (error event, done line and `[DONE]`, or close).
    pub(crate) fn ended(&self) -> bool {
        self.ended || self.finished
    }

    /// One complete line: its answer object, or `None` (blank, or an error event sent).
    fn answer(&mut self, line: &[u8], out: &mut Vec<u8>) -> Option<Map<String, Value>> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return None;
        }
        let answer = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(answer)) => answer,
            _ => {
                self.error(INVALID_LINE, out);
                return None;
            }
        };
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            let message = error
                .as_str()
                .filter(|m| !m.is_empty())
                .unwrap_or(UPSTREAM_FAILED);
            self.error(message, out);
            return None;
        }
        Some(answer)
    }

    /// An error event, `[DONE]`, and the end of the stream.
    fn error(&mut self, message: &str, out: &mut Vec<u8>) {
        // 500: type "api_error".
        event(&openai_error_value(500, message), out);
        self.done(out);
    }
}

/// One SSE event `data: <json>` and its blank line.
pub(crate) fn event(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&to_bytes(value));
    out.extend_from_slice(b"\n\n");
}

/// What a stream translator makes of each answer line (the chat's deltas, the completion's
/// text chunks); the line buffering, error lines and the stream's end are [`Translating`]'s.
pub trait AnswerLines {
    /// Sends what this answer line adds; `true` when it was the `done` line (the stream ends).
    fn answer(&mut self, answer: &Map<String, Value>, out: &mut Vec<u8>) -> bool;
    /// (prompt_tokens, completion_tokens) once the done line was seen.
    fn usage(&self) -> Option<(u64, u64)>;
}

/// Translates one streamed answer; [`feed`](Self::feed) it the body as it arrives, then
/// [`finish`](Self::finish) it.
#[derive(Debug)]
pub struct Translating<L> {
    /// The lines received so far, and whether the stream has ended.
    stream: NdjsonStream,
    lines: L,
}

impl<L: AnswerLines> Translating<L> {
    pub(crate) fn with(lines: L) -> Self {
        Self {
            stream: NdjsonStream::default(),
            lines,
        }
    }

    /// Feeds the next body bytes; returns the SSE bytes to send now (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(answer) = self.stream.next_answer(&mut rest, &mut out) {
            if self.lines.answer(&answer, &mut out) {
                self.stream.done(&mut out);
            }
        }
        out
    }

    /// The body ended: translates a last line without newline and ends the stream (an error
    /// event when the answer stopped before its `done` line). Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(answer) = self.stream.last_answer(&mut out) {
            if self.lines.answer(&answer, &mut out) {
                self.stream.done(&mut out);
            }
        }
        self.stream.close(&mut out);
        out
    }

    /// (prompt_tokens, completion_tokens) once the done line was seen.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.lines.usage()
    }

    /// Whether the stream has ended (error event, done line and `[DONE]`, or finish).
    pub fn ended(&self) -> bool {
        self.stream.ended()
    }
}
