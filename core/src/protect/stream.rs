//! Text that arrives in pieces (a streamed answer's deltas), masked exactly as the whole text
//! would be: each piece is sent at once except its end that could still become a match.

use regex_automata::hybrid::regex::Cache;

use super::detect::LEFT_CONTEXT_BYTES;
use super::{Counts, Found, Protector};

/// One stream of text (one field of one choice).
#[derive(Debug, Default)]
pub struct StreamMasker {
    /// Text not sent yet, after `context` bytes already sent (kept for look-behind only).
    held: String,
    context: usize,
    cache: Option<Cache>,
    found: Vec<Found>,
}

impl StreamMasker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next piece; returns the masked text that can be sent now (possibly empty).
    pub fn push(&mut self, protector: &Protector, piece: &str, counts: &mut Counts) -> String {
        self.held.push_str(piece);
        let upto = protector.undecided_from(&self.held, self.context, &mut self.cache);
        self.release(protector, upto, counts)
    }

    /// The stream ended: the rest, masked.
    pub fn finish(&mut self, protector: &Protector, counts: &mut Counts) -> String {
        let out = self.release(protector, self.held.len(), counts);
        self.held.clear();
        self.context = 0;
        out
    }

    /// Bytes received but not sent yet.
    pub fn held_bytes(&self) -> usize {
        self.held.len().saturating_sub(self.context)
    }

    fn release(&mut self, protector: &Protector, upto: usize, counts: &mut Counts) -> String {
        if upto <= self.context {
            return String::new();
        }
        protector.find(&self.held, self.context, upto, &mut self.found);
        // A match is never cut: if one reaches past `upto` (a custom regex longer than the
        // held bound), it goes out whole.
        let upto = self.found.last().map_or(upto, |f| f.end.max(upto));
        let mut out = String::with_capacity(upto - self.context);
        protector.replace(
            &self.held,
            self.context,
            upto,
            &self.found,
            &mut out,
            counts,
        );
        let mut keep = upto.saturating_sub(LEFT_CONTEXT_BYTES);
        while !self.held.is_char_boundary(keep) {
            keep -= 1;
        }
        self.held.drain(..keep);
        self.context = upto - keep;
        out
    }
}
