//! User-written regexes (`data_protection.mask[].regex` and `deny[].regex`), compiled once into
//! one multi-pattern set: a single pass finds every pattern's matches (leftmost first), and the
//! set's lazy DFA tells a stream whether the end of its text could still grow into a match.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

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
    /// Anchored-only lazy DFA for the "could this still become a match" question.
    dfa: DFA,
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
        }
        let too_big = |e: String| PatternError {
            index: 0,
            reason: format!("the regexes cannot be compiled: {}", one_line(&e)),
        };
        let regex = Regex::builder()
            .configure(Regex::config().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
            .build_many(patterns)
            .map_err(|e| too_big(e.to_string()))?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    // `\b` works on ASCII; a non-ASCII byte makes the DFA give up, which
                    // `alive_to_end` answers by holding (the safe side).
                    .unicode_word_boundary(true)
                    .cache_capacity(DFA_CACHE_BYTES)
                    .skip_cache_capacity_check(true),
            )
            .thompson(
                regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)),
            )
            .build_many(patterns)
            .map_err(|e| too_big(e.to_string()))?;
        Ok(Self {
            regex,
            dfa,
            longest,
        })
    }

    /// A fresh lazy-DFA cache, one per stream.
    pub fn cache(&self) -> Cache {
        self.dfa.create_cache()
    }

    /// Calls `found(start, end, pattern)` for each match starting in `from..` of `text`
    /// (`text[..from]` is context for look-behind such as `\b`).
    pub fn find(&self, text: &str, from: usize, mut found: impl FnMut(usize, usize, usize)) {
        let input = Input::new(text).range(from..);
        for m in self.regex.find_iter(input) {
            found(m.start(), m.end(), m.pattern().as_usize());
        }
    }

    /// The first pattern that matches anywhere in `text`.
    pub fn first_match(&self, text: &str) -> Option<usize> {
        self.regex
            .find(Input::new(text))
            .map(|m| m.pattern().as_usize())
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
        let input = Input::new(bytes).range(start..).anchored(Anchored::Yes);
        let Ok(mut state) = self.dfa.start_state_forward(cache, &input) else {
            return true; // The DFA gave up (quit byte, cache thrash): hold, to be safe.
        };
        for &byte in bytes.get(start..).unwrap_or_default() {
            state = match self.dfa.next_state(cache, state, byte) {
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
