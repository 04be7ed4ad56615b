//! `data_protection` measured in the VM: how fast prompts and answers are scanned (against the
//! same request untranslated and unmasked), and what masking answers adds to time to first
//! token of a streamed chat.

use std::time::Duration;

use serde_json::{json, Value};
use test_harness::ollama::{ollama_handler, OllamaConfig};
use test_harness::upstream::{Reply, ReplyBody};
use test_harness::{Envoy, Request, Upstream};

use super::{median, open, start, timed};

/// Prompt and answer size, and repeats per measurement.
const SCAN_BYTES: usize = 1_000_000;
const SCAN_REPEATS: usize = 15;
const TTFT_REPEATS: usize = 40;
const TTFT_DELAY: Duration = Duration::from_millis(5);

pub struct ProtectionReport {
    /// (what, masked median, plain median, bytes scanned)
    pub scans: Vec<(&'static str, Duration, Duration, usize)>,
    /// (what, with responses masked, without)
    pub ttft: Vec<(&'static str, Duration, Duration)>,
}

/// Ordinary prose, `bytes` long, with a planted e-mail address every ~1 kB when `planted`.
fn prose(bytes: usize, planted: bool) -> String {
    let words = [
        "the",
        "gateway",
        "masks",
        "personal",
        "data",
        "before",
        "it",
        "reaches",
        "model,",
        "and",
        "answers",
        "are",
        "checked",
        "too.",
        "模型",
        "网关",
        "数据",
        "保护。",
    ];
    let mut out = String::with_capacity(bytes + 64);
    let mut i = 0usize;
    while out.len() < bytes {
        if planted && i % 150 == 149 {
            out.push_str("mail li.lei@example.com ");
        }
        out.push_str(words[i * 7 % words.len()]);
        out.push(' ');
        i += 1;
    }
    out
}

fn config(masked: bool) -> String {
    let mut config = json!({"default_rule": {"auth": "none"},
                            "translate": {"to": "ollama", "default_model": "qwen3:32b"}});
    if masked {
        config["data_protection"] = data_protection(true);
    }
    config.to_string()
}

/// All nine built-in types, a custom regex and a deny pattern; `responses`: answers too.
pub fn data_protection(responses: bool) -> Value {
    let types = [
        "email",
        "phone_cn",
        "id_card_cn",
        "bank_card",
        "credit_card",
        "ssn_us",
        "ipv4",
        "api_key",
        "jwt",
    ];
    let mut mask: Vec<Value> = types.iter().map(|t| json!({"type": t})).collect();
    mask.push(json!({"name": "employee-id", "regex": "EMP-[0-9]{6}"}));
    json!({"mask": mask, "responses": responses,
        "deny": [{"name": "internal", "regex": "(?i)internal use only"}]})
}

/// `/api/generate` answers a small JSON; `/api/show` answers `answer` (1 MB of JSON text);
/// `/api/chat` is the Ollama stand-in streaming `reply`.
fn upstream(answer: Vec<u8>, reply: String) -> Upstream {
    let standin = ollama_handler(OllamaConfig {
        delay: TTFT_DELAY,
        reply: Some(reply),
        ..OllamaConfig::default()
    });
    Upstream::with_handler(move |request| match request.path.as_str() {
        "/api/generate" => Reply::json(200, &json!({"response": "ok", "done": true})),
        "/api/show" => Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(answer.clone()),
        },
        _ => standin(request),
    })
}

pub fn measure_protection() -> ProtectionReport {
    let mut scans = Vec::new();
    for planted in [false, true] {
        let text = prose(SCAN_BYTES, planted);
        let answer = json!({"modelfile": text}).to_string().into_bytes();
        let up = upstream(answer, String::new());
        let masked = gateway(&up, true);
        let plain = gateway(&up, false);
        let prompt = Request::post("/api/generate")
            .json(&json!({"model": "qwen3:32b", "prompt": text, "stream": false}));
        let (m, p) = alternate(&masked, &plain, &prompt, "ok", SCAN_REPEATS);
        scans.push((prompt_label(planted), m, p, text.len()));
        let show = Request::post("/api/show").json(&json!({"model": "qwen3:32b"}));
        let (m, p) = alternate(&masked, &plain, &show, "modelfile", SCAN_REPEATS);
        scans.push((answer_label(planted), m, p, text.len()));
    }
    let mut ttft = Vec::new();
    for (what, reply, marker) in [
        (
            "Chinese answer (pieces end in CJK: nothing held)",
            "你好，我是通义千问，很高兴为你服务。今天我们来谈谈数据保护。",
            "你好",
        ),
        (
            "English answer (the first piece `Sure` could begin an address: held one piece)",
            "Sure, here is the answer you asked for, in a few short words.",
            "Sure",
        ),
    ] {
        let up = upstream(Vec::new(), reply.to_string());
        let masked = gateway(&up, true);
        let plain = gateway(&up, false);
        let chat = Request::post("/v1/chat/completions").json(&json!({"model": "qwen3:32b",
            "stream": true, "messages": [{"role": "user", "content": "hi"}]}));
        let (m, p) = alternate_ttft(&masked, &plain, &chat, marker);
        ttft.push((what, m, p));
    }
    ProtectionReport { scans, ttft }
}

fn prompt_label(planted: bool) -> &'static str {
    if planted {
        "prompt, 1 MB, an e-mail address every ~1 kB (`POST /api/generate`)"
    } else {
        "prompt, 1 MB, no matches (`POST /api/generate`)"
    }
}

fn answer_label(planted: bool) -> &'static str {
    if planted {
        "JSON answer, 1 MB, an e-mail address every ~1 kB (`POST /api/show`)"
    } else {
        "JSON answer, 1 MB, no matches (`POST /api/show`)"
    }
}

fn gateway(upstream: &Upstream, masked: bool) -> Envoy {
    start(
        Envoy::builder(&config(masked))
            .concurrency(1)
            .upstream(upstream.addr()),
    )
}

/// Median total times (masked, plain), alternating requests on keep-alive connections.
fn alternate(
    masked: &Envoy,
    plain: &Envoy,
    request: &Request,
    marker: &str,
    repeats: usize,
) -> (Duration, Duration) {
    let (mut mc, mut pc) = (open(masked.addr()), open(plain.addr()));
    let run = |conn: &mut _, what: &str| {
        timed(conn, request, marker).unwrap_or_else(|e| panic!("{what} {}: {e}", request.target))
    };
    for _ in 0..3 {
        run(&mut mc, "masked");
        run(&mut pc, "plain");
    }
    let (mut m, mut p) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        m.push(run(&mut mc, "masked").total);
        p.push(run(&mut pc, "plain").total);
    }
    (median(m), median(p))
}

/// Median times to first token (masked, plain).
fn alternate_ttft(
    masked: &Envoy,
    plain: &Envoy,
    request: &Request,
    marker: &str,
) -> (Duration, Duration) {
    let (mut mc, mut pc) = (open(masked.addr()), open(plain.addr()));
    let run = |conn: &mut _| {
        timed(conn, request, marker).unwrap_or_else(|e| panic!("{}: {e}", request.target))
    };
    for _ in 0..3 {
        run(&mut mc);
        run(&mut pc);
    }
    let (mut m, mut p) = (Vec::new(), Vec::new());
    for _ in 0..TTFT_REPEATS {
        m.push(run(&mut mc).first_token);
        p.push(run(&mut pc).first_token);
    }
    (median(m), median(p))
}

pub fn render(report: &ProtectionReport, line: &mut dyn FnMut(String)) {
    line("## Data protection".into());
    line(String::new());
    line(format!(
        "`data_protection` with all nine built-in types, a custom regex, a deny pattern and \
         `responses: true`, against the same Envoy without it (both with the gateway, `auth: \
         none`, one worker). Median of {SCAN_REPEATS} requests each, alternating. Scanned MB/s is \
         the text's size over the time masking added (holding, parsing, scanning, rewriting)."
    ));
    line(String::new());
    line("| what | masked | unmasked | added | scanned MB/s |".into());
    line("| --- | ---: | ---: | ---: | ---: |".into());
    for (what, masked, plain, bytes) in &report.scans {
        let added = masked.as_secs_f64() - plain.as_secs_f64();
        let rate = if added > 0.0 {
            format!("{:.0}", *bytes as f64 / 1e6 / added)
        } else {
            "(no cost measured)".into()
        };
        line(format!(
            "| {what} | {:.2} ms | {:.2} ms | {:+.2} ms | {rate} |",
            masked.as_secs_f64() * 1e3,
            plain.as_secs_f64() * 1e3,
            added * 1e3
        ));
    }
    line(String::new());
    line(format!(
        "Time to first token of a streamed, translated chat (`POST /v1/chat/completions`, the \
         Ollama stand-in sends 4-character pieces, {} ms apart), median of {TTFT_REPEATS}:",
        TTFT_DELAY.as_millis()
    ));
    line(String::new());
    line("| answer | `responses: true` | without `data_protection` | added |".into());
    line("| --- | ---: | ---: | ---: |".into());
    for (what, masked, plain) in &report.ttft {
        line(format!(
            "| {what} | {:.2} ms | {:.2} ms | {:+.2} ms |",
            masked.as_secs_f64() * 1e3,
            plain.as_secs_f64() * 1e3,
            (masked.as_secs_f64() - plain.as_secs_f64()) * 1e3
        ));
    }
    line(String::new());
}
