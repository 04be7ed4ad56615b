//! Throughput of regex engines for the gateway's custom masking patterns, run natively and as
//! wasm32-wasip1 under Node's WASI (V8). Prints tab-separated result lines that `table.mjs`
//! turns into the Markdown table (`run.sh` does both). Usage: `bench <platform> [min-ms]`.

use std::hint::black_box;
use std::time::{Duration, Instant};

const PATTERNS: [&str; 5] = [
    "EMP-[0-9]{6}",
    "(?i)internal use only",
    r"\b[A-Z]{2}[0-9]{6}\b",
    r"(?i)project\s+(phoenix|falcon)",
    "[0-9]{4}-[0-9]{4}-[0-9]{4}",
];
/// Not a masking pattern: a lazy-DFA stress test. Unanchored, its DFA must remember which of the
/// last 21 bytes were `a` (up to 2^21 states), so random `a`/`b` text makes a new state at almost
/// every byte and the 2 MB cache keeps filling up; meta::Regex then gives up on the lazy DFA and
/// runs the PikeVM instead, hybrid::regex::Regex alone (by default) never gives up.
const STRESS: &str = "a[ab]{20}[^ab]";
/// PATTERNS[2] with ASCII word boundaries: no quit bytes for the lazy DFA on non-ASCII text.
const ASCII_ID: &str = r"(?-u:\b)[A-Z]{2}[0-9]{6}(?-u:\b)";
/// One text per pattern that it matches, spaced from the prose around it.
const SAMPLES: [&str; 5] = ["EMP-482913", "Internal Use Only", "AB123456", "Project  Falcon", "4321-8765-2109"];

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had",
    "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if",
    "more", "when", "will", "would", "who", "so", "no", "project", "internal", "use", "model",
    "data", "report", "customer", "team", "quarter", "revenue", "meeting", "review", "policy",
    "employee", "access", "request", "answer", "prompt", "gateway", "security", "system", "update",
    "schedule", "budget", "contract", "partner", "supplier", "market", "product", "release",
    "deadline", "summary", "analysis", "forecast", "question", "document", "server", "network",
    "service", "platform", "training", "support", "office", "manager", "engineer", "design",
    "quality", "process", "result", "account", "invoice", "payment", "order", "shipment", "risk",
    "audit", "compliance", "privacy", "record", "number", "version", "feature", "issue", "plan",
    "strategy", "growth", "cost", "price", "sales", "region", "country", "city", "building",
    "room", "floor", "phone", "email", "address", "name", "date", "time", "week", "month", "year",
    "today", "tomorrow", "yesterday", "please", "thanks", "could", "should", "might", "must",
    "very", "quite", "rather", "about", "after", "before", "between", "during", "without", "under",
    "over", "again", "further", "then", "once", "here", "why", "how", "what", "where", "AI", "US",
    "EU", "CEO", "API", "HR", "IT", "Q3", "v2",
];
const CJK: &[&str] = &[
    "本季度的销售数据已经提交给财务部门审核。",
    "请在周五之前完成模型评估报告。",
    "客户反馈显示新版本的响应速度明显提升。",
    "我们需要重新评估供应链的风险。",
    "会议纪要已经上传到共享文件夹。",
    "该项目的预算将在下个月确定。",
    "请勿将客户信息发送到外部邮箱。",
    "数据中心的迁移计划正在进行中。",
    "新员工入职培训安排在下周一上午。",
    "合同条款需要法务部门再次确认。",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// About `len` bytes of English prose with a CJK line every ~10 lines; with `every`, one of the
/// SAMPLES (in turn) after roughly each `every` bytes. Returns the text and the expected count.
fn prose(len: usize, every: Option<usize>, seed: u64) -> (String, usize) {
    let mut rng = Rng(seed);
    let (mut s, mut last, mut inserted) = (String::with_capacity(len + 256), 0usize, 0usize);
    let mut line = 0;
    while s.len() < len {
        line += 1;
        if line % 10 == 0 {
            for _ in 0..2 + rng.below(3) {
                s.push_str(CJK[rng.below(CJK.len())]);
            }
        } else {
            for _ in 0..3 + rng.below(4) {
                for w in 0..6 + rng.below(13) {
                    if w > 0 {
                        s.push(' ');
                    }
                    if rng.below(25) == 0 {
                        s.push_str(&(rng.below(10_000)).to_string());
                    } else {
                        let word = WORDS[rng.below(WORDS.len())];
                        if w == 0 {
                            let mut c = word.chars();
                            let first = c.next().unwrap();
                            s.extend(first.to_uppercase());
                            s.push_str(c.as_str());
                        } else {
                            s.push_str(word);
                        }
                    }
                    if every.is_some_and(|every| s.len() - last >= every) {
                        s.push(' ');
                        s.push_str(SAMPLES[inserted % SAMPLES.len()]);
                        inserted += 1;
                        last = s.len();
                    }
                }
                s.push_str(if rng.below(8) == 0 { "? " } else { ". " });
            }
        }
        s.push('\n');
    }
    (s, inserted)
}

fn inputs() -> Vec<(&'static str, String)> {
    let mut digits = String::with_capacity(100_000);
    let mut rng = Rng(7);
    while digits.len() < 100_000 {
        digits.push((b'0' + rng.below(10) as u8) as char);
    }
    let mut ab = String::with_capacity(100_000);
    while ab.len() < 100_000 {
        ab.push((b'a' + rng.below(2) as u8) as char);
    }
    vec![
        ("prose", prose(1_000_000, None, 1).0),
        ("prose+match", prose(1_000_000, Some(1000), 2).0),
        ("digits", digits),
        ("aaa", "a".repeat(100_000)),
        ("ab", ab),
    ]
}

type Finder = Box<dyn FnMut(&str) -> Result<usize, String>>;
type Build = fn(&[&str]) -> Result<Finder, String>;

#[cfg(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean", feature = "lite"))]
fn alternation(pats: &[&str]) -> String {
    pats.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|")
}

fn engines() -> Vec<(&'static str, Build)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, Build)> = Vec::new();
    #[cfg(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean"))]
    {
        let name = if cfg!(feature = "regex-default") {
            "regex (default features)"
        } else if cfg!(feature = "regex-slim") {
            "regex (slim)"
        } else {
            "regex (lean)"
        };
        v.push((name, |pats| {
            let re = regex::Regex::new(&alternation(pats)).map_err(|e| e.to_string())?;
            Ok(Box::new(move |h: &str| Ok(re.find_iter(h).count())))
        }));
    }
    #[cfg(feature = "lite")]
    v.push(("regex-lite", |pats| {
        let pats: Vec<&str> = pats.iter().map(|p| if *p == ASCII_ID { PATTERNS[2] } else { *p }).collect();
        let re = regex_lite::Regex::new(&alternation(&pats)).map_err(|e| e.to_string())?;
        Ok(Box::new(move |h: &str| Ok(re.find_iter(h).count())))
    }));
    #[cfg(all(feature = "ra-meta-base", feature = "ra-literal"))]
    v.push(("regex-automata meta::Regex", |pats| {
        let re = regex_automata::meta::Regex::new_many(pats).map_err(|e| e.to_string())?;
        Ok(Box::new(move |h: &str| Ok(re.find_iter(h).count())))
    }));
    #[cfg(all(feature = "ra-meta-base", not(feature = "ra-literal")))]
    v.push(("regex-automata meta::Regex (no prefilter)", |pats| {
        let re = regex_automata::meta::Regex::new_many(pats).map_err(|e| e.to_string())?;
        Ok(Box::new(move |h: &str| Ok(re.find_iter(h).count())))
    }));
    #[cfg(feature = "ra-meta-base")]
    v.push((
        if cfg!(feature = "ra-literal") {
            "regex-automata meta::Regex, `\\b` → ASCII in the HIR"
        } else {
            "regex-automata meta::Regex (no prefilter), `\\b` → ASCII in the HIR"
        },
        |pats| {
        use engine_bench::patterns::{ascii_word_boundaries, parse_many};
        let hirs = parse_many(pats, ascii_word_boundaries)?;
        let re = regex_automata::meta::Regex::builder().build_many_from_hir(&hirs).map_err(|e| e.to_string())?;
        Ok(Box::new(move |h: &str| Ok(re.find_iter(h).count())))
        },
    ));
    #[cfg(feature = "ra-hybrid-base")]
    v.push(("regex-automata hybrid::regex::Regex", |pats| {
        let re = regex_automata::hybrid::regex::Regex::builder()
            .dfa(regex_automata::hybrid::dfa::Config::new().unicode_word_boundary(true))
            .build_many(pats)
            .map_err(|e| e.to_string())?;
        Ok(hybrid_finder(re))
    }));
    #[cfg(feature = "ra-hybrid-base")]
    v.push(("regex-automata hybrid::regex::Regex, `\\b` → ASCII in the HIR", |pats| {
        Ok(hybrid_finder(engine_bench::patterns::hybrid_regex(pats)?))
    }));
    v
}

/// Find-all with a lazy-DFA regex; a give-up (quit byte) is an error, not a silent miss.
#[cfg(feature = "ra-hybrid-base")]
fn hybrid_finder(re: regex_automata::hybrid::regex::Regex) -> Finder {
    let mut cache = re.create_cache();
    Box::new(move |h: &str| {
        let (mut n, mut at) = (0, 0);
        while at <= h.len() {
            let input = regex_automata::Input::new(h).range(at..);
            match re.try_search(&mut cache, &input).map_err(|e| format!("{e}"))? {
                Some(m) => {
                    n += 1;
                    at = if m.is_empty() { m.end() + 1 } else { m.end() };
                }
                None => break,
            }
        }
        Ok(n)
    })
}

/// Best-of timing: at least 3 runs after a warm-up run, more until `min` has passed.
fn best_of(min: Duration, mut f: impl FnMut() -> Result<usize, String>) -> Result<(Duration, usize), String> {
    let n = f()?;
    let (start, mut best, mut reps) = (Instant::now(), Duration::MAX, 0);
    while reps < 3 || (start.elapsed() < min && reps < 10_000) {
        let t = Instant::now();
        black_box(f()?);
        best = best.min(t.elapsed());
        reps += 1;
    }
    Ok((best, n))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let platform = args.get(1).cloned().unwrap_or_else(|| "native".into());
    let min = Duration::from_millis(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200));
    let sets_only = args.get(3).is_some_and(|a| a == "sets");
    let only = args.get(4).cloned().unwrap_or_default();
    let inputs = inputs();
    let mut sets: Vec<(String, Vec<&str>)> = vec![("all 5 (one set)".into(), PATTERNS.to_vec())];
    // The same with the Unicode `\b` written as ASCII `(?-u:\b)` (regex-lite's `\b` is ASCII
    // already, so it gets the pattern unchanged: see `lite_pattern`).
    let ascii: Vec<&str> = PATTERNS.iter().map(|p| if *p == PATTERNS[2] { ASCII_ID } else { *p }).collect();
    sets.push(("all 5 (one set), `\\b` as `(?-u:\\b)`".into(), ascii));
    sets.extend(PATTERNS.iter().map(|p| (format!("`{p}`"), vec![*p])));
    sets.insert(5, (format!("`{ASCII_ID}`"), vec![ASCII_ID]));
    sets.push((format!("stress: `{STRESS}`"), vec![STRESS]));

    for (engine, build) in engines().into_iter().filter(|(e, _)| e.contains(&only)) {
        for (label, pats) in &sets {
            if sets_only && pats.len() == 1 {
                continue;
            }
            // Engines that rewrite `\b` themselves gain nothing from the hand-written `(?-u:\b)`.
            if engine.contains("→ ASCII") && label.contains("(?-u:") {
                continue;
            }
            // Compile cost: best of 5 (the first includes one-time setup).
            let mut build_best = Duration::MAX;
            let mut finder = None;
            for _ in 0..5 {
                let t = Instant::now();
                let f = build(pats);
                build_best = build_best.min(t.elapsed());
                finder = Some(f);
            }
            let mut finder = match finder.unwrap() {
                Ok(f) => f,
                Err(e) => {
                    let e = e.replace(['\n', '\t'], " ");
                    println!("R\t{platform}\t{engine}\t{label}\tbuild_us\t-\terror: {e}");
                    continue;
                }
            };
            println!("R\t{platform}\t{engine}\t{label}\tbuild_us\t{:.0}\t", build_best.as_secs_f64() * 1e6);
            for (name, hay) in &inputs {
                match best_of(min, || finder(hay)) {
                    Ok((t, n)) => println!(
                        "R\t{platform}\t{engine}\t{label}\t{name}\t{:.1}\t{n}",
                        hay.len() as f64 / t.as_secs_f64() / 1e6
                    ),
                    Err(e) => println!("R\t{platform}\t{engine}\t{label}\t{name}\t-\terror: {}", e.replace('\n', " ")),
                }
            }
        }
    }
    #[cfg(feature = "ra-hybrid-base")]
    if !sets_only && only.is_empty() {
        checks(&platform, min, &inputs);
    }
    if !sets_only && only.is_empty() {
        semantics(&platform);
    }
}

/// The streaming dead-state check: its answers on the brief's examples, then its cost.
#[cfg(feature = "ra-hybrid-base")]
fn checks(platform: &str, min: Duration, inputs: &[(&'static str, String)]) {
    use engine_bench::check::{build, build_ascii, check, Outcome};
    let emp = build(&["EMP-[0-9]{6}"]).unwrap();
    let mut cache = emp.create_cache();
    for text in ["EM", "EMX", "EMP-12345", "EMP-123456", "EMP-1234567", "xEMP-1"] {
        let got = check(&emp, &mut cache, text.as_bytes(), 0);
        let eoi = engine_bench::check::matches_at_eoi(&emp, &mut cache, text.as_bytes(), 0);
        println!("D\t{platform}\t`EMP-[0-9]{{6}}` from 0 over `{text}`\t{got:?} (match if the stream ended here: {eoi})");
    }
    // The search's own forward lazy DFA (hybrid::regex::Regex, leftmost-first) answers too:
    // a DFA built for unanchored search also has anchored start states.
    let re = engine_bench::patterns::hybrid_regex(&["EMP-[0-9]{6}"]).unwrap();
    let mut re_cache = re.create_cache();
    for text in ["EM", "EMX", "EMP-123456", "EMP-1234567"] {
        let got = check(re.forward(), re_cache.as_parts_mut().0, text.as_bytes(), 0);
        println!("D\t{platform}\t`EMP-[0-9]{{6}}` from 0 over `{text}`, the search regex's forward DFA\t{got:?}");
    }
    let id = build(&[r"\b[A-Z]{2}[0-9]{6}\b"]).unwrap();
    let ida = build_ascii(&[r"\b[A-Z]{2}[0-9]{6}\b"]).unwrap();
    let (mut c1, mut c2) = (id.create_cache(), ida.create_cache());
    for (text, start) in [("id AB12", 3), ("id ABC", 3), ("编号AB12", 6), ("AB123456 ", 0), ("AB1234567", 0)] {
        let a = check(&id, &mut c1, text.as_bytes(), start);
        let b = check(&ida, &mut c2, text.as_bytes(), start);
        println!("D\t{platform}\t`\\b[A-Z]{{2}}[0-9]{{6}}\\b` from {start} over `{text}`\tUnicode `\\b` (quit bytes): {a:?}; `\\b` → ASCII: {b:?}");
    }

    for (kind, dfa) in [("Unicode `\\b`", build(&PATTERNS).unwrap()), ("`\\b` → ASCII", build_ascii(&PATTERNS).unwrap())] {
        let engine = format!("hybrid::dfa anchored check, {kind}, 64 B suffix");
        let mut cache = dfa.create_cache();
        for (name, hay) in inputs {
            let hay_b = hay.as_bytes();
            let step = (hay.len() / 10_000).max(1);
            let starts: Vec<usize> = (0..hay.len().saturating_sub(64))
                .step_by(step)
                .filter(|&s| hay.is_char_boundary(s))
                .collect();
            let mut outcomes = [0usize; 4];
            for &s in &starts {
                outcomes[check(&dfa, &mut cache, &hay_b[..s + 64], s) as usize] += 1;
            }
            let (t, _) = best_of(min, || {
                let mut live = 0;
                for &s in &starts {
                    live += (check(&dfa, &mut cache, &hay_b[..s + 64], s) != Outcome::Dead) as usize;
                }
                Ok(live)
            })
            .unwrap();
            let pct = |n: usize| 100.0 * n as f64 / starts.len() as f64;
            println!(
                "R\t{platform}\t{engine}\tns/check at {} starts\t{name}\t{:.0}\tdead {:.1}% live {:.1}% matched {:.1}% quit {:.1}%",
                starts.len(),
                t.as_secs_f64() * 1e9 / starts.len() as f64,
                pct(outcomes[0]),
                pct(outcomes[1]),
                pct(outcomes[2]),
                pct(outcomes[3])
            );
        }
        // Worst case: all 64 bytes stay live (`project` then whitespace that `\s+` keeps eating).
        let worst = format!("project{}", " ".repeat(57));
        let (t, _) = best_of(min, || {
            let mut live = 0;
            for _ in 0..1000 {
                live += (check(&dfa, &mut cache, black_box(worst.as_bytes()), 0) == Outcome::Live) as usize;
            }
            Ok(live)
        })
        .unwrap();
        println!(
            "R\t{platform}\t{engine}\tns/check, worst case (64 live bytes)\tprose\t{:.0}\t{:?}",
            t.as_secs_f64() * 1e9 / 1000.0,
            check(&dfa, &mut cache, worst.as_bytes(), 0)
        );
    }
}

/// Where the engines' pattern languages differ on the texts the gateway sees.
fn semantics(platform: &str) {
    let cases = [
        (r"\b[A-Z]{2}[0-9]{6}\b", "员工编号AB123456已登记"),
        (r"\b[A-Z]{2}[0-9]{6}\b", "编号: AB123456。"),
        (ASCII_ID, "员工编号AB123456已登记"),
        (r"(?i)project\s+(phoenix|falcon)", "project\u{3000}phoenix"),
        ("(?i)internal use only", "INTERNAL USE ONLY"),
        (r"\w+", "机密"),
    ];
    for (engine, build) in engines() {
        for (p, text) in cases {
            let n = build(&[p]).and_then(|mut f| f(text)).map(|n| n.to_string()).unwrap_or_else(|e| e);
            println!("S\t{platform}\t{engine}\t`{p}` on `{}`\t{n}", text.replace('\u{3000}', "\\u{3000}"));
        }
    }
}
