//! The model's answers masked as they pass: a JSON answer whole, and streamed answers (Ollama's
//! NDJSON lines, OpenAI's Server-Sent Events) event by event, the text of each streamed field
//! carried across events by a [`StreamMasker`] so a value split over chunks is still masked.

use serde_json::{Map, Value};

use super::stream::StreamMasker;
use super::{Counts, Protector};

/// A streamed line or event longer than this ends the answer (nothing more is sent).
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// A JSON answer longer than this is refused.
pub const MAX_JSON_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How an answer is framed, from its `content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document: masked once complete.
    Json,
    /// Newline-delimited JSON (Ollama's streams).
    Ndjson,
    /// Server-Sent Events (OpenAI's streams, and the gateway's own translation).
    Sse,
    /// Any other text: masked as one stream of text.
    Text,
    /// Not text (images, archives): passed as it is.
    Binary,
}

impl Framing {
    pub fn of(content_type: Option<&str>) -> Self {
        let essence = content_type
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match essence.as_str() {
            "text/event-stream" => Self::Sse,
            "application/x-ndjson" | "application/jsonl" | "application/ndjson" => Self::Ndjson,
            "" => Self::Text,
            e if e == "application/json" || e.ends_with("+json") => Self::Json,
            e if e.starts_with("text/") => Self::Text,
            _ => Self::Binary,
        }
    }
}

/// One answer being masked.
#[derive(Debug)]
pub struct AnswerMasker {
    framing: Framing,
    /// Bytes of an incomplete line, event, JSON document or UTF-8 character.
    pending: Vec<u8>,
    /// The streamed fields' text so far, by field (`0/content`, `0/tool/1`...).
    fields: Vec<(String, StreamMasker)>,
    /// The last SSE chunk seen, the envelope of a closing chunk the gateway adds.
    last_chunk: Option<Map<String, Value>>,
    text: StreamMasker,
    /// Bytes at the front of `pending` already searched for a frame end.
    scanned: usize,
    /// Nothing more is sent (an oversized event or document).
    cut: bool,
    pub counts: Counts,
}

impl AnswerMasker {
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            pending: Vec::new(),
            fields: Vec::new(),
            last_chunk: None,
            text: StreamMasker::new(),
            scanned: 0,
            cut: false,
            counts: Counts::default(),
        }
    }

    /// Whether the answer's length may change (its `content-length` must go).
    pub fn rewrites(&self) -> bool {
        self.framing != Framing::Binary
    }

    /// The next body bytes; returns what to send now.
    pub fn feed(&mut self, p: &Protector, chunk: &[u8]) -> Vec<u8> {
        if self.cut {
            return Vec::new();
        }
        match self.framing {
            Framing::Binary => chunk.to_vec(),
            Framing::Json => {
                if self.pending.len().saturating_add(chunk.len()) > MAX_JSON_ANSWER_BYTES {
                    self.cut = true;
                    self.pending = Vec::new();
                    return Vec::new();
                }
                self.pending.extend_from_slice(chunk);
                Vec::new()
            }
            Framing::Text => {
                self.pending.extend_from_slice(chunk);
                let text = take_utf8(&mut self.pending);
                self.text.push(p, &text, &mut self.counts).into_bytes()
            }
            Framing::Ndjson | Framing::Sse => self.frames(p, chunk),
        }
    }

    /// The body ended: the rest.
    pub fn finish(&mut self, p: &Protector) -> Vec<u8> {
        if self.cut {
            return Vec::new();
        }
        let rest = std::mem::take(&mut self.pending);
        match self.framing {
            Framing::Binary => rest,
            Framing::Json => self.json_document(p, &rest),
            Framing::Text => {
                let mut text = String::from_utf8_lossy(&rest).into_owned();
                let mut out = self.text.push(p, &text, &mut self.counts);
                text = self.text.finish(p, &mut self.counts);
                out.push_str(&text);
                out.into_bytes()
            }
            Framing::Ndjson | Framing::Sse => {
                let mut out = Vec::new();
                if !rest.trim_ascii().is_empty() {
                    self.frame(p, &rest, &mut out);
                }
                self.flush_all(p, &mut out);
                out
            }
        }
    }

    fn json_document(&mut self, p: &Protector, body: &[u8]) -> Vec<u8> {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                if super::json::mask_answer(p, &mut value, &mut self.counts) {
                    serde_json::to_vec(&value).unwrap_or_default()
                } else {
                    body.to_vec()
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                match p.mask(&text, &mut self.counts) {
                    Some(masked) => masked.into_bytes(),
                    None => text.into_owned().into_bytes(),
                }
            }
        }
    }

    /// Splits complete lines (NDJSON) or events (SSE) off the pending bytes.
    fn frames(&mut self, p: &Protector, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.pending.extend_from_slice(chunk);
        let sse = self.framing == Framing::Sse;
        let mut start = 0;
        // Where the search resumes: bytes before it held no frame end (less the longest end's
        // first bytes, which may complete now). A huge frame is not rescanned chunk by chunk.
        let mut from = self.scanned.saturating_sub(3);
        while let Some(stop) = frame_end(&self.pending, from.max(start), sse) {
            let frame = self.pending.get(start..stop).unwrap_or_default().to_vec();
            self.frame(p, &frame, &mut out);
            start = stop;
            from = stop;
        }
        self.pending.drain(..start.min(self.pending.len()));
        self.scanned = self.pending.len();
        if self.pending.len() > MAX_EVENT_BYTES {
            self.cut = true;
            self.pending = Vec::new();
        }
        out
    }

    /// One line or event, with its terminator.
    fn frame(&mut self, p: &Protector, frame: &[u8], out: &mut Vec<u8>) {
        match self.framing {
            Framing::Ndjson => self.ndjson_line(p, frame, out),
            _ => self.sse_event(p, frame, out),
        }
    }

    fn ndjson_line(&mut self, p: &Protector, line: &[u8], out: &mut Vec<u8>) {
        let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(line) else {
            return self.as_text(p, line, out);
        };
        let done = answer.get("done").and_then(Value::as_bool) == Some(true);
        // Token ids and per-token data would carry what masking takes out of the text.
        let mut changed = answer.remove("context").is_some() | answer.remove("logprobs").is_some();
        let mut taken = Vec::new();
        for path in [
            &["message", "content"][..],
            &["message", "thinking"],
            &["response"],
            &["thinking"],
        ] {
            if let Some(text) = string_at(&mut answer, path) {
                let key = path.join("/");
                let piece = std::mem::take(text);
                taken.push((path, key, piece));
            }
        }
        changed |= mask_object(p, &mut answer, &mut self.counts);
        for (path, key, piece) in taken {
            let mut sent = field(&mut self.fields, &key).push(p, &piece, &mut self.counts);
            if done {
                sent.push_str(&field(&mut self.fields, &key).finish(p, &mut self.counts));
            }
            changed |= sent != piece;
            if let Some(text) = string_at(&mut answer, path) {
                *text = sent;
            }
        }
        if done {
            // Text still held in a field the last line does not carry.
            for (key, masker) in &mut self.fields {
                let rest = masker.finish(p, &mut self.counts);
                if !rest.is_empty() {
                    let path: Vec<&str> = key.split('/').collect();
                    append_at(&mut answer, &path, &rest);
                    changed = true;
                }
            }
        }
        if changed {
            out.extend_from_slice(&serde_json::to_vec(&Value::Object(answer)).unwrap_or_default());
            out.push(b'\n');
        } else {
            out.extend_from_slice(line);
        }
    }

    fn sse_event(&mut self, p: &Protector, event: &[u8], out: &mut Vec<u8>) {
        let Ok(text) = std::str::from_utf8(event) else {
            return self.as_text(p, event, out);
        };
        let lines: Vec<&str> = text
            .split(['\n', '\r'])
            .filter(|line| !line.is_empty())
            .collect();
        let data: Vec<&str> = lines
            .iter()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        // `event:`, `id:`, `retry:` and comments go out as they came.
        let others: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|line| !line.starts_with("data:"))
            .collect();
        let joined = data.join("\n");
        if joined.trim() == "[DONE]" {
            self.flush_all(p, out);
            out.extend_from_slice(event);
            return;
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(&joined) else {
            return match p.mask(text, &mut self.counts) {
                Some(masked) => out.extend_from_slice(masked.as_bytes()),
                None => out.extend_from_slice(event),
            };
        };
        let mut changed = chunk.remove("logprobs").is_some();
        let mut taken = Vec::new();
        for (key, path) in top_stream_fields(&chunk) {
            let mut value = Value::Object(std::mem::take(&mut chunk));
            if let Some(text) = string_at_value(&mut value, &path) {
                taken.push((None, key, path.clone(), std::mem::take(text)));
            }
            if let Value::Object(map) = value {
                chunk = map;
            }
        }
        let choices = chunk
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut choices_out = Vec::with_capacity(choices.len());
        for mut choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let ends = choice.get("finish_reason").is_some_and(|r| !r.is_null());
            if let Some(map) = choice.as_object_mut() {
                changed |= map.remove("logprobs").is_some();
            }
            for (key, path) in stream_fields(&choice, index) {
                if let Some(text) = string_at_value(&mut choice, &path) {
                    taken.push((Some(choices_out.len()), key, path, std::mem::take(text)));
                }
            }
            choices_out.push((index, ends, choice));
        }
        changed |= mask_object(p, &mut chunk, &mut self.counts);
        let mut masked_choices: Vec<(u64, bool, Value)> = choices_out;
        for (_, _, choice) in &mut masked_choices {
            if let Value::Object(map) = choice {
                changed |= mask_object(p, map, &mut self.counts);
            }
        }
        for (at, key, path, piece) in taken {
            let sent = field(&mut self.fields, &key).push(p, &piece, &mut self.counts);
            changed |= sent != piece;
            match at.and_then(|at| masked_choices.get_mut(at)) {
                Some((_, _, choice)) => {
                    if let Some(text) = string_at_value(choice, &path) {
                        *text = sent;
                    }
                }
                None => {
                    let mut value = Value::Object(std::mem::take(&mut chunk));
                    if let Some(text) = string_at_value(&mut value, &path) {
                        *text = sent;
                    }
                    if let Value::Object(map) = value {
                        chunk = map;
                    }
                }
            }
        }
        for (index, ends, choice) in &mut masked_choices {
            if *ends {
                changed |= self.flush_choice(p, *index, choice);
            }
        }
        chunk.insert(
            "choices".into(),
            Value::Array(masked_choices.into_iter().map(|(_, _, c)| c).collect()),
        );
        self.last_chunk = Some(chunk.clone());
        if changed {
            for line in others {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            write_event(&Value::Object(chunk), out);
        } else {
            out.extend_from_slice(event);
        }
    }

    /// Appends the held text of choice `index` to its closing chunk.
    fn flush_choice(&mut self, p: &Protector, index: u64, choice: &mut Value) -> bool {
        let prefix = format!("{index}/");
        let mut changed = false;
        for (key, masker) in &mut self.fields {
            let Some(field) = key.strip_prefix(&prefix) else {
                continue;
            };
            let rest = masker.finish(p, &mut self.counts);
            if rest.is_empty() {
                continue;
            }
            changed = true;
            let path = field_path(field);
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if let Value::Object(map) = choice {
                append_at(map, &path, &rest);
            }
        }
        changed
    }

    /// The stream ends (`[DONE]`, or the body's end): text still held goes out in a closing
    /// chunk per field (SSE) or a last line (NDJSON).
    fn flush_all(&mut self, p: &Protector, out: &mut Vec<u8>) {
        for (key, masker) in &mut self.fields {
            let rest = masker.finish(p, &mut self.counts);
            if rest.is_empty() {
                continue;
            }
            match self.framing {
                Framing::Ndjson => {
                    let mut line = Map::new();
                    let path: Vec<&str> = key.split('/').collect();
                    append_at(&mut line, &path, &rest);
                    line.insert("done".into(), Value::Bool(false));
                    out.extend_from_slice(
                        &serde_json::to_vec(&Value::Object(line)).unwrap_or_default(),
                    );
                    out.push(b'\n');
                }
                _ if key.starts_with("top/") => {
                    let mut chunk = self.last_chunk.clone().unwrap_or_default();
                    let path: Vec<&str> = key.split('/').skip(1).collect();
                    set_at(&mut chunk, &path, &rest);
                    write_event(&Value::Object(chunk), out);
                }
                _ => {
                    let (index, field) = key.split_once('/').unwrap_or(("0", key));
                    let mut choice = Map::new();
                    choice.insert("index".into(), index.parse::<u64>().unwrap_or(0).into());
                    let path = field_path(field);
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    append_at(&mut choice, &path, &rest);
                    choice.insert("finish_reason".into(), Value::Null);
                    let mut chunk = self.last_chunk.clone().unwrap_or_default();
                    chunk.remove("usage");
                    chunk.insert("choices".into(), Value::Array(vec![Value::Object(choice)]));
                    write_event(&Value::Object(chunk), out);
                }
            }
        }
    }

    fn as_text(&mut self, p: &Protector, frame: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(frame);
        match p.mask(&text, &mut self.counts) {
            Some(masked) => out.extend_from_slice(masked.as_bytes()),
            None => out.extend_from_slice(text.as_bytes()),
        }
    }
}

/// The masker of one streamed field, started on first use.
fn field<'f>(fields: &'f mut Vec<(String, StreamMasker)>, key: &str) -> &'f mut StreamMasker {
    let at = match fields.iter().position(|(k, _)| k == key) {
        Some(at) => at,
        None => {
            fields.push((key.to_string(), StreamMasker::new()));
            fields.len() - 1
        }
    };
    &mut fields[at].1
}

/// The streamed text fields of one SSE choice: `(field key, path in the choice)`.
fn stream_fields(choice: &Value, index: u64) -> Vec<(String, Vec<String>)> {
    let mut fields = Vec::new();
    for path in [
        &["delta", "content"][..],
        &["delta", "reasoning_content"],
        &["delta", "reasoning"],
        &["text"],
        &["reasoning_content"],
        &["delta", "refusal"],
        &["delta", "function_call", "arguments"],
    ] {
        if path
            .iter()
            .try_fold(choice, |v, k| v.get(k))
            .is_some_and(Value::is_string)
        {
            fields.push((
                format!("{index}/{}", path.join("/")),
                path.iter().map(|k| k.to_string()).collect(),
            ));
        }
    }
    let calls = choice
        .get("delta")
        .and_then(|d| d.get("tool_calls"))
        .and_then(Value::as_array);
    for (at, call) in calls.into_iter().flatten().enumerate() {
        let tool = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(at as u64);
        if call
            .get("function")
            .and_then(|f| f.get("arguments"))
            .is_some_and(Value::is_string)
        {
            fields.push((
                format!("{index}/tool/{tool}"),
                vec![
                    "delta".into(),
                    "tool_calls".into(),
                    at.to_string(),
                    "function".into(),
                    "arguments".into(),
                ],
            ));
        }
    }
    fields
}

/// The streamed text fields outside `choices` (the Responses API's `delta`, Anthropic's
/// `delta.text` / `partial_json` / `thinking`): `(field key, path in the event)`.
fn top_stream_fields(chunk: &Map<String, Value>) -> Vec<(String, Vec<String>)> {
    let event = Value::Object(chunk.clone());
    [
        &["delta"][..],
        &["delta", "text"],
        &["delta", "partial_json"],
        &["delta", "thinking"],
    ]
    .iter()
    .filter(|path| {
        path.iter()
            .try_fold(&event, |v, k| v.get(k))
            .is_some_and(Value::is_string)
    })
    .map(|path| {
        (
            format!("top/{}", path.join("/")),
            path.iter().map(|k| k.to_string()).collect(),
        )
    })
    .collect()
}

/// Sets the string at `path` (objects only) to `text`, creating what is missing.
fn set_at(map: &mut Map<String, Value>, path: &[&str], text: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = map;
    for key in parents {
        let slot = at
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = slot else {
            return;
        };
        at = next;
    }
    at.insert(last.to_string(), Value::String(text.to_string()));
}

/// A field key's path inside a choice, for the closing chunk (`tool/1`: the arguments of a
/// tool call with that index).
fn field_path(field: &str) -> Vec<String> {
    match field.strip_prefix("tool/") {
        Some(tool) => vec![
            "delta".into(),
            "tool_calls".into(),
            format!("#{tool}"),
            "function".into(),
            "arguments".into(),
        ],
        None => field.split('/').map(str::to_string).collect(),
    }
}

/// Masks the object's texts, except its `choices` (masked one by one).
fn mask_object(p: &Protector, map: &mut Map<String, Value>, counts: &mut Counts) -> bool {
    super::json::mask_map(p, map, counts, "choices")
}

fn string_at<'v>(map: &'v mut Map<String, Value>, path: &[&str]) -> Option<&'v mut String> {
    let (last, parents) = path.split_last()?;
    let mut at = map;
    for key in parents {
        at = at.get_mut(*key)?.as_object_mut()?;
    }
    match at.get_mut(*last)? {
        Value::String(text) => Some(text),
        _ => None,
    }
}

fn string_at_value<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut String> {
    let mut at = value;
    for key in path {
        at = match at {
            Value::Object(map) => map.get_mut(key.as_str())?,
            Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match at {
        Value::String(text) => Some(text),
        _ => None,
    }
}

/// Appends `text` to the string at `path`, creating what is missing. A `#N` segment is the
/// element of an array whose `index` is N (a tool call), added if absent.
fn append_at(map: &mut Map<String, Value>, path: &[&str], text: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = map;
    for (i, key) in parents.iter().enumerate() {
        let next_is_tool = parents.get(i + 1).is_some_and(|k| k.starts_with('#'));
        if key.starts_with('#') {
            continue; // Resolved by `descend` one step earlier.
        }
        let slot = at.entry(key.to_string()).or_insert_with(|| {
            if next_is_tool {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        });
        let Some(next) = descend(slot, parents.get(i + 1).copied()) else {
            return;
        };
        at = next;
    }
    let slot = at
        .entry(last.to_string())
        .or_insert_with(|| Value::String(String::new()));
    if let Value::String(existing) = slot {
        existing.push_str(text);
    } else if slot.is_null() {
        *slot = Value::String(text.to_string());
    }
}

/// The object inside `slot` where the path goes on: for an array followed by `#N`, the tool
/// call with that index (added if absent).
fn descend<'v>(slot: &'v mut Value, next: Option<&str>) -> Option<&'v mut Map<String, Value>> {
    match slot {
        Value::Object(map) => Some(map),
        Value::Array(items) => {
            let tool: u64 = next?.strip_prefix('#')?.parse().ok()?;
            let at = match items
                .iter()
                .position(|c| c.get("index").and_then(Value::as_u64) == Some(tool))
            {
                Some(at) => at,
                None => {
                    let mut call = Map::new();
                    call.insert("index".into(), tool.into());
                    items.push(Value::Object(call));
                    items.len() - 1
                }
            };
            items.get_mut(at)?.as_object_mut()
        }
        _ => None,
    }
}

fn write_event(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&serde_json::to_vec(value).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

/// The end (after its terminator) of the first frame in `buf` whose terminator starts at or
/// after `from`: a newline for NDJSON; a blank line for SSE, in any of the line ends the SSE
/// specification allows (`\n\n`, `\r\n\r\n`, `\r\r`, and mixes).
fn frame_end(buf: &[u8], from: usize, sse: bool) -> Option<usize> {
    let rest = buf.get(from..)?;
    if !sse {
        return rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| from + at + 1);
    }
    let mut i = 0;
    while i < rest.len() {
        // A line end here, then another right after it: a blank line.
        if let Some(first) = line_end(rest, i) {
            if let Some(second) = line_end(rest, i + first) {
                return Some(from + i + first + second);
            }
        }
        i += 1;
    }
    None
}

/// The length of the line end at `at` (`\r\n`, `\n` or a lone `\r`), if there is one.
fn line_end(buf: &[u8], at: usize) -> Option<usize> {
    match (buf.get(at), buf.get(at + 1)) {
        (Some(b'\r'), Some(b'\n')) => Some(2),
        (Some(b'\n'), _) => Some(1),
        // A `\r` at the very end may still be followed by `\n`: not decided yet.
        (Some(b'\r'), Some(_)) => Some(1),
        _ => None,
    }
}

/// The text of `pending` but an incomplete character at its very end, which stays for the next
/// chunk; each invalid sequence becomes one U+FFFD, as `String::from_utf8_lossy` of the whole
/// body would make it, so where the chunks are cut does not change the text.
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let mut text = String::with_capacity(pending.len());
    let mut rest: &[u8] = pending;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest
                    .split_at_checked(e.valid_up_to())
                    .unwrap_or((rest, &[]));
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    // An invalid sequence (not merely cut short): replaced, and on.
                    Some(len) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = after.get(len..).unwrap_or_default();
                    }
                    // Only the end is incomplete: it waits for the next chunk.
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let keep = rest.len();
    pending.drain(..pending.len() - keep);
    text
}

#[cfg(test)]
mod tests;
