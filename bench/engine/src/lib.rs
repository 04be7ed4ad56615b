//! The tiny cdylib whose release `wasm32-wasip1` size is compared per engine (`run.sh` builds it
//! once per feature set). Patterns and text come in at run time through linear memory, so the
//! compiler can optimise nothing away: the host calls `buf_alloc` twice, writes the patterns
//! (one per line) and the text, and calls `count` (and, where the lazy DFA is built in, `check`).
//! Without an engine feature the same exports count literal occurrences: that is the baseline.

use std::slice;

#[no_mangle]
pub extern "C" fn buf_alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// # Safety
/// Both pointers come from `buf_alloc` with at least the given lengths written.
#[no_mangle]
pub unsafe extern "C" fn count(pat: *const u8, pat_len: usize, hay: *const u8, hay_len: usize) -> i32 {
    let (Ok(pats), Ok(hay)) = (
        std::str::from_utf8(slice::from_raw_parts(pat, pat_len)),
        std::str::from_utf8(slice::from_raw_parts(hay, hay_len)),
    ) else {
        return -2;
    };
    let pats: Vec<&str> = pats.lines().collect();
    match search(&pats, hay) {
        Some(n) => n as i32,
        None => -1,
    }
}

/// Multi-pattern search as the bench does it: one alternation for `regex`/`regex-lite`.
#[cfg(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean"))]
fn search(pats: &[&str], hay: &str) -> Option<usize> {
    let re = regex::Regex::new(&alternation(pats)).ok()?;
    Some(re.find_iter(hay).count())
}

#[cfg(all(
    feature = "lite",
    not(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean"))
))]
fn search(pats: &[&str], hay: &str) -> Option<usize> {
    let re = regex_lite::Regex::new(&alternation(pats)).ok()?;
    Some(re.find_iter(hay).count())
}

#[cfg(all(
    feature = "ra-meta-base",
    not(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean", feature = "lite"))
))]
fn search(pats: &[&str], hay: &str) -> Option<usize> {
    // As recommended: Unicode `\b` rewritten to ASCII in the parsed patterns (see `patterns`).
    let hirs = patterns::parse_many(pats, patterns::ascii_word_boundaries).ok()?;
    let re = regex_automata::meta::Regex::builder().build_many_from_hir(&hirs).ok()?;
    Some(re.find_iter(hay).count())
}

#[cfg(all(
    feature = "ra-hybrid-base",
    not(any(
        feature = "regex-default",
        feature = "regex-slim",
        feature = "regex-lean",
        feature = "lite",
        feature = "ra-meta-base"
    ))
))]
fn search(pats: &[&str], hay: &str) -> Option<usize> {
    // As recommended for the lazy DFA alone: Unicode `\b` rewritten to ASCII, so it never quits.
    use regex_automata::Input;
    let re = patterns::hybrid_regex(pats).ok()?;
    let mut cache = re.create_cache();
    let (mut n, mut at) = (0, 0);
    while at <= hay.len() {
        match re.try_search(&mut cache, &Input::new(hay).range(at..)).ok()? {
            Some(m) => {
                n += 1;
                at = if m.is_empty() { m.end() + 1 } else { m.end() };
            }
            None => break,
        }
    }
    Some(n)
}

/// Baseline: no engine, literal occurrences of each line.
#[cfg(not(any(
    feature = "regex-default",
    feature = "regex-slim",
    feature = "regex-lean",
    feature = "lite",
    feature = "ra-meta-base",
    feature = "ra-hybrid-base"
)))]
fn search(pats: &[&str], hay: &str) -> Option<usize> {
    Some(pats.iter().filter(|p| !p.is_empty()).map(|p| hay.matches(*p).count()).sum())
}

#[cfg(any(feature = "regex-default", feature = "regex-slim", feature = "regex-lean", feature = "lite"))]
fn alternation(pats: &[&str]) -> String {
    pats.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|")
}

/// The streaming "could the text from `start` on still become a match" check, in builds that
/// carry the lazy DFA: 0 dead, 1 live, 2 a match ended inside, 3 quit, negative on error.
///
/// # Safety
/// As for `count`.
#[cfg(feature = "ra-hybrid-base")]
#[no_mangle]
pub unsafe extern "C" fn check(pat: *const u8, pat_len: usize, hay: *const u8, hay_len: usize, start: usize) -> i32 {
    let (Ok(pats), Ok(hay)) = (
        std::str::from_utf8(slice::from_raw_parts(pat, pat_len)),
        std::str::from_utf8(slice::from_raw_parts(hay, hay_len)),
    ) else {
        return -2;
    };
    let pats: Vec<&str> = pats.lines().collect();
    let Ok(dfa) = check::build_ascii(&pats) else { return -1 };
    let mut cache = dfa.create_cache();
    check::check(&dfa, &mut cache, hay.as_bytes(), start) as i32
}

/// The anchored dead-state check, shared with the bench (`engine_bench::check`).
#[cfg(feature = "ra-hybrid-base")]
pub mod check {
    use regex_automata::{
        hybrid::dfa::{Cache, DFA},
        nfa::thompson,
        util::syntax,
        Anchored, Input, MatchKind,
    };

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Outcome {
        /// No continuation of the text can match any pattern from this start: emit it.
        Dead = 0,
        /// Still on a path to a match: hold this text back until more arrives.
        Live = 1,
        /// A match already ended inside the text (the DFA reports it one byte late).
        Matched = 2,
        /// The DFA gave up (a Unicode `\b` met a non-ASCII byte): treat as live, it is safe.
        /// Only `build` (Unicode `\b` kept) can say it; `build_ascii` never does.
        Quit = 3,
    }

    /// The check DFA exactly as the patterns say: `MatchKind::All` keeps every alternative
    /// alive (leftmost-first would drop lower-priority ones after a match); a Unicode `\b`
    /// needs `unicode_word_boundary(true)`, which quits on any non-ASCII byte.
    pub fn build(pats: &[&str]) -> Result<DFA, String> {
        DFA::builder()
            .configure(DFA::config().match_kind(MatchKind::All).unicode_word_boundary(true))
            .build_many(pats)
            .map_err(|e| e.to_string())
    }

    /// The check for the patterns as the recommended search runs them: Unicode `\b` rewritten
    /// to ASCII (`patterns::ascii_word_boundaries`), which a DFA handles without quit bytes, so
    /// the answer is exact on any text.
    pub fn build_ascii(pats: &[&str]) -> Result<DFA, String> {
        let hirs = crate::patterns::parse_many(pats, crate::patterns::ascii_word_boundaries)?;
        let nfa = thompson::Compiler::new()
            .syntax(syntax::Config::new())
            .build_many_from_hir(&hirs)
            .map_err(|e| e.to_string())?;
        DFA::builder()
            .configure(DFA::config().match_kind(MatchKind::All))
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())
    }

    /// Run the anchored lazy DFA from `start` over `hay[start..]` (the bytes before `start`
    /// are the look-behind context for `\b`) and say whether the state is dead at the end.
    pub fn check(dfa: &DFA, cache: &mut Cache, hay: &[u8], start: usize) -> Outcome {
        let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
        let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
            return Outcome::Quit; // the look-behind byte is a quit byte
        };
        let mut matched = false;
        for &b in &hay[start..] {
            let Ok(next) = dfa.next_state(cache, sid, b) else { return Outcome::Quit };
            sid = next;
            if sid.is_tagged() {
                if sid.is_dead() {
                    return if matched { Outcome::Matched } else { Outcome::Dead };
                }
                if sid.is_quit() {
                    return Outcome::Quit;
                }
                matched |= sid.is_match();
            }
        }
        if matched {
            Outcome::Matched
        } else {
            Outcome::Live
        }
    }

    /// Whether a match ends exactly at the end of `hay` (what `next_eoi_state` reports), for a
    /// stream that has ended: a live state alone cannot tell, matches show one byte late.
    pub fn matches_at_eoi(dfa: &DFA, cache: &mut Cache, hay: &[u8], start: usize) -> bool {
        let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
        let Ok(mut sid) = dfa.start_state_forward(cache, &input) else { return false };
        for &b in &hay[start..] {
            match dfa.next_state(cache, sid, b) {
                Ok(next) if !next.is_dead() && !next.is_quit() => sid = next,
                _ => return false,
            }
        }
        dfa.next_eoi_state(cache, sid).is_ok_and(|s| s.is_match())
    }
}

/// Pattern rewriting at the syntax-tree level: regex-syntax parses, a rewrite maps each
/// look-around assertion, and regex-automata builds from the result (`build_many_from_hir`).
#[cfg(feature = "ra-hybrid-base")]
pub mod patterns {
    use regex_automata::{hybrid, hybrid::dfa::DFA, nfa::thompson, MatchKind};
    use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};

    /// Parse with the same defaults as `regex`/`meta::Regex::new` (Unicode on, UTF-8 only).
    pub fn parse_many(pats: &[&str], look: fn(Look) -> Hir) -> Result<Vec<Hir>, String> {
        pats.iter()
            .map(|p| {
                let hir = regex_syntax::ParserBuilder::new().build().parse(p).map_err(|e| e.to_string())?;
                Ok(map_looks(hir, look))
            })
            .collect()
    }

    /// Unicode word boundaries as ASCII ones: `\b` next to a CJK character then counts it as a
    /// non-word character (so `编号AB123456` matches `\bAB[0-9]+`), and the lazy DFA keeps
    /// going over non-ASCII text instead of quitting to the PikeVM.
    pub fn ascii_word_boundaries(look: Look) -> Hir {
        Hir::look(match look {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => other,
        })
    }

    /// A `hybrid::regex::Regex` (forward and reverse lazy DFA, as its `build_many` makes them)
    /// from the patterns with ASCII word boundaries: no quit bytes, and by default it never
    /// gives up, so it answers on any text without a fallback engine.
    pub fn hybrid_regex(pats: &[&str]) -> Result<hybrid::regex::Regex, String> {
        let hirs = parse_many(pats, ascii_word_boundaries)?;
        let err = |e: &dyn std::fmt::Display| e.to_string();
        // A DFA reports no capture groups: leave them out of both NFAs (the reverse one must).
        let no_captures = || thompson::Config::new().which_captures(thompson::WhichCaptures::None);
        let fwd = thompson::Compiler::new()
            .configure(no_captures())
            .build_many_from_hir(&hirs)
            .map_err(|e| err(&e))?;
        let rev = thompson::Compiler::new()
            .configure(no_captures().reverse(true))
            .build_many_from_hir(&hirs)
            .map_err(|e| err(&e))?;
        let fwd = DFA::builder().build_from_nfa(fwd).map_err(|e| err(&e))?;
        let rev = DFA::builder()
            .configure(DFA::config().prefilter(None).specialize_start_states(false).match_kind(MatchKind::All))
            .build_from_nfa(rev)
            .map_err(|e| err(&e))?;
        Ok(hybrid::regex::Builder::new().build_from_dfas(fwd, rev))
    }

    fn map_looks(hir: Hir, look: fn(Look) -> Hir) -> Hir {
        match hir.into_kind() {
            HirKind::Look(l) => look(l),
            HirKind::Empty => Hir::empty(),
            HirKind::Literal(l) => Hir::literal(l.0),
            HirKind::Class(c) => Hir::class(c),
            HirKind::Repetition(r) => Hir::repetition(Repetition { sub: Box::new(map_looks(*r.sub, look)), ..r }),
            HirKind::Capture(c) => Hir::capture(Capture { sub: Box::new(map_looks(*c.sub, look)), ..c }),
            HirKind::Concat(v) => Hir::concat(v.into_iter().map(|h| map_looks(h, look)).collect()),
            HirKind::Alternation(v) => Hir::alternation(v.into_iter().map(|h| map_looks(h, look)).collect()),
        }
    }
}
