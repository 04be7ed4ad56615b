//! The text as the matchers read it: bytes, with a note of whether a matcher looked past the
//! end (its answer could then change when more text arrives), and byte classes.

use std::cell::Cell;

/// The text being scanned. Every read at or after a match start goes through [`Src::at`], so
/// that reading past the end is recorded: that is how a matcher says "undecided".
pub(super) struct Src<'a> {
    pub(super) bytes: &'a [u8],
    past_end: Cell<bool>,
}

impl<'a> Src<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            past_end: Cell::new(false),
        }
    }

    /// The byte at `i`; `None` past the end (which is noted).
    #[inline]
    pub(super) fn at(&self, i: usize) -> Option<u8> {
        match self.bytes.get(i) {
            Some(&b) => Some(b),
            None => {
                self.past_end.set(true);
                None
            }
        }
    }

    /// The byte before `i` (left context: never past the end), `None` at the start of the text.
    #[inline]
    pub(super) fn before(&self, i: usize) -> Option<u8> {
        i.checked_sub(1).and_then(|p| self.bytes.get(p)).copied()
    }

    /// The value of the digit at `i`, if it is one.
    #[inline]
    pub(super) fn digit(&self, i: usize) -> Option<u8> {
        self.at(i).filter(u8::is_ascii_digit).map(|b| b - b'0')
    }

    /// The `n` digits at `i..i + n` as a number (`n` small enough not to overflow).
    pub(super) fn number(&self, i: usize, n: usize) -> Option<u32> {
        (i..i + n).try_fold(0u32, |acc, k| Some(acc * 10 + u32::from(self.digit(k)?)))
    }

    /// Whether `i` is a right boundary: the end of the text or a byte that is not an
    /// identifier character.
    #[inline]
    pub(super) fn boundary_after(&self, i: usize) -> bool {
        !self.at(i).is_some_and(is_ident)
    }

    /// Whether `prefix` is at `i` (reads stop at the first difference).
    pub(super) fn starts_with(&self, i: usize, prefix: &[u8]) -> bool {
        prefix
            .iter()
            .enumerate()
            .all(|(k, &c)| self.at(i + k) == Some(c))
    }

    pub(super) fn reset(&self) {
        self.past_end.set(false);
    }

    pub(super) fn went_past_end(&self) -> bool {
        self.past_end.get()
    }
}

/// `[A-Za-z0-9_]`: a byte that continues an identifier or a number, so that a match next to one
/// is not at a boundary. Non-ASCII (e.g. Chinese text right before a phone number) is not.
pub(super) const IDENT: u8 = 1;
/// A byte a match can start with at the start of a word: digits and the first letters of the
/// API-key prefixes and of `eyJ`.
pub(super) const WORD_TRIGGER: u8 = 2;
/// `@` (email) and `+` (`+86` phone prefix).
pub(super) const SPECIAL: u8 = 4;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[b] |= IDENT;
        }
        if c.is_ascii_digit() || matches!(c, b's' | b'r' | b'A' | b'g' | b'x' | b'e') {
            t[b] |= WORD_TRIGGER;
        }
        if c == b'@' || c == b'+' {
            t[b] |= SPECIAL;
        }
        b += 1;
    }
    t
}

#[inline]
pub(super) fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

#[inline]
pub(super) fn is_ident(b: u8) -> bool {
    class(b) & IDENT != 0
}

/// `[A-Za-z0-9_-]`.
#[inline]
pub(super) fn is_base64url(b: u8) -> bool {
    is_ident(b) || b == b'-'
}
