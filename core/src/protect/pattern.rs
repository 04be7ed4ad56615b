//! User-written regexes (`data_protection.mask[].regex` and `deny[].regex`), compiled once into
//! one multi-pattern lazy DFA (regex-automata's `hybrid`): a single pass finds every pattern's
//! matches (leftmost first), and the same DFA tells a stream whether the end of its text could
//! still grow into a match. Chosen by measurement in V8 (`bench/engine/README.md`): 290–390
//! MB/s whatever the text, +314 KiB of `.wasm`.
//!
//! `\b` means an ASCII word boundary here, as in RE2 (Envoy's own regex engine): the lazy DFA
//! cannot run a Unicode one, and with it a CJK character would count as a word character, so
//! `\bAB[0-9]{6}\b` would not find `员工AB123456`. `\w`, `\s`, `\d` and `(?i)` stay Unicode.

use std::cell::RefCell;

use regex_automata::hybrid::dfa::DFA;
use regex_automata::hybrid::regex::{Cache, Regex};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};

/// The most bytes a stream holds back for a pattern without a bounded length (`EMP-[0-9]+`):
/// a match longer than this, split across chunks, is cut at the bound.
pub const MAX_UNBOUNDED_MATCH_BYTES: usize = 256;
/// Compiled-size bound for one pattern set (a pathological pattern is refused at configuration).
const NFA_SIZE_LIMIT: usize = 4 * 1024 * 1024;
const DFA_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// A compiled set of patterns; a match reports its pattern's index in the configured order.
#[derive(Debug)]
pub struct Patterns {
    regex: Regex,
    /// For whole texts (a stream has a cache of its own).
    cache: RefCell<Cache>,
    /// The longest match any pattern can have, capped at [`MAX_UNBOUNDED_MATCH_BYTES`].
    longest: usize,
}

/// Why a pattern is refused: its index and a reason for the configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub index: usize,
    pub reason: String,
}

impl Patterns {
    pub fn new(patterns: &[&str]) -> Result<Self, PatternError> {
        let mut longest = 0usize;
        let mut hirs = Vec::with_capacity(patterns.len());
        for (index, pattern) in patterns.iter().enumerate() {
            let hir = syntax::parse(pattern).map_err(|e| PatternError {
                index,
                reason: format!("invalid regex: {}", one_line(&e.to_string())),
            })?;
            let properties = hir.properties();
            if properties.minimum_len().unwrap_or(0) == 0 {
                return Err(PatternError {
                    index,
                    reason: "the regex matches the empty string".into(),
                });
            }
            let bound = properties
                .maximum_len()
                .unwrap_or(MAX_UNBOUNDED_MATCH_BYTES)
                .min(MAX_UNBOUNDED_MATCH_BYTES);
            longest = longest.max(bound);
            hirs.push(ascii_word_boundaries(hir));
        }
        let too_big = |e: String| PatternError {
            index: 0,
            reason: format!("the regexes cannot be compiled: {}", one_line(&e)),
        };
        let compile = |reverse: bool| {
            thompson::Compiler::new()
                .configure(
                    thompson::Config::new()
                        .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                        .reverse(reverse)
                        .which_captures(thompson::WhichCaptures::None),
                )
                .build_many_from_hir(&hirs)
                .map_err(|e| too_big(e.to_string()))
        };
        let lazy = |kind: MatchKind, nfa: thompson::NFA| {
            DFA::builder()
                .configure(
                    DFA::config()
                        .match_kind(kind)
                        .cache_capacity(DFA_CACHE_BYTES)
                        .skip_cache_capacity_check(true),
                )
                .build_from_nfa(nfa)
                .map_err(|e| too_big(e.to_string()))
        };
        let forward = lazy(MatchKind::LeftmostFirst, compile(false)?)?;
        let reverse = lazy(MatchKind::All, compile(true)?)?;
        let regex = Regex::builder().build_from_dfas(forward, reverse);
        let cache = RefCell::new(regex.create_cache());
        Ok(Self {
            regex,
            cache,
            longest,
        })
    }

    /// A fresh cache, one per stream.
    pub fn cache(&self) -> Cache {
        self.regex.create_cache()
    }

    /// Calls `found(start, end, pattern)` for each match starting in `from..` of `text`
    /// (`text[..from]` is context for look-behind such as `\b`).
    pub fn find(&self, text: &str, from: usize, mut found: impl FnMut(usize, usize, usize)) {
        let mut fresh = None;
        let mut shared = self.cache.try_borrow_mut().ok();
        let cache = match shared.as_deref_mut() {
            Some(cache) => cache,
            None => fresh.insert(self.cache()),
        };
        let mut at = from;
        while at < text.len() {
            let input = Input::new(text).range(at..);
            // No quit bytes and a cache that never gives up: a search cannot fail.
            let Ok(Some(m)) = self.regex.try_search(cache, &input) else {
                return;
            };
            found(m.start(), m.end(), m.pattern().as_usize());
            at = m.end().max(m.start() + 1);
        }
    }

    /// The first pattern that matches anywhere in `text`.
    pub fn first_match(&self, text: &str) -> Option<usize> {
        let mut first = None;
        self.find(text, 0, |_, _, pattern| {
            first.get_or_insert(pattern);
        });
        first
    }

    /// The smallest char boundary `u >= from` from which no pattern can match beyond the end of
    /// `text`: a match starting at `u` or later could still grow, one before `u` cannot.
    pub fn undecided_from(&self, text: &str, from: usize, cache: &mut Cache) -> usize {
        let bytes = text.as_bytes();
        // A match ending exactly at the end is undecided too: a look-ahead (`\b`, `$`) may
        // still fail on the next byte.
        let first = from.max(text.len().saturating_sub(self.longest));
        (first..text.len())
            .filter(|&start| text.is_char_boundary(start))
            .find(|&start| self.alive_to_end(bytes, start, cache))
            .unwrap_or(text.len())
    }

    /// Whether a match anchored at `start` is still possible once `bytes` end (not dead).
    fn alive_to_end(&self, bytes: &[u8], start: usize, cache: &mut Cache) -> bool {
        let dfa = self.regex.forward();
        let cache = cache.as_parts_mut().0;
        let input = Input::new(bytes).range(start..).anchored(Anchored::Yes);
        let Ok(mut state) = dfa.start_state_forward(cache, &input) else {
            return true; // The DFA gave up: hold, to be safe.
        };
        for &byte in bytes.get(start..).unwrap_or_default() {
            state = match dfa.next_state(cache, state, byte) {
                Ok(next) => next,
                Err(_) => return true,
            };
            if state.is_dead() {
                return false;
            }
            if state.is_quit() {
                return true;
            }
        }
        true
    }
}

/// `hir` with every Unicode word boundary made ASCII (see the module's note).
fn ascii_word_boundaries(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(look) => Hir::look(match look {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => other,
        }),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(ascii_word_boundaries(*rep.sub)),
            ..rep
        }),
        HirKind::Capture(cap) => Hir::capture(Capture {
            sub: Box::new(ascii_word_boundaries(*cap.sub)),
            ..cap
        }),
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(ascii_word_boundaries).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(ascii_word_boundaries).collect())
        }
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(literal) => Hir::literal(literal.0),
        HirKind::Class(class) => Hir::class(class),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
