//! The built-in detectors of sensitive values: hand-written scanners (no regex), precise
//! (checksums, calendar dates, valid ranges: a number that only looks right is not reported)
//! and single-pass (ordinary words are skipped whole; a matcher runs only where a value can
//! start). Every input is hostile: nothing here indexes or slices in a way that can panic, and
//! the work is linear in the text (each matcher reads a bounded number of bytes).
//!
//! One file per family (each documents its exact rules): `email`, `phone_cn`, `id_card_cn`,
//! `card` (bank and credit cards, Luhn), `ssn_us`, `ipv4`, `api_key`, `jwt`.
//!
//! Boundaries: a value is never reported inside a longer word or number. "Identifier
//! characters" below are ASCII `[A-Za-z0-9_]`; any other byte (punctuation, space, non-ASCII
//! text such as Chinese right before a phone number) is a boundary.
//!
//! Streaming ([`Detectors::undecided_from`]): every matcher reads the text through one accessor
//! that notes a read past the end; a start whose matcher did so is undecided (more text could
//! make, change or unmake a match there), and so is the start of a trailing run that could
//! still become the local part of an email once an `@` arrives. Matches are resolved greedily
//! (earlier start wins, then the longer), so an undecided start strictly inside a decided match
//! cannot matter: the text is decided up to the first undecided start not covered by one.

mod api_key;
mod card;
mod email;
mod id_card_cn;
mod ipv4;
mod jwt;
mod phone_cn;
mod ssn_us;
mod text;

#[cfg(test)]
mod tests;

use text::{class, is_ident, Src, IDENT, SPECIAL, WORD_TRIGGER};

/// A kind of sensitive value with a built-in detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    PhoneCn,
    IdCardCn,
    BankCard,
    CreditCard,
    SsnUs,
    Ipv4,
    ApiKey,
    Jwt,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Email,
        Kind::PhoneCn,
        Kind::IdCardCn,
        Kind::BankCard,
        Kind::CreditCard,
        Kind::SsnUs,
        Kind::Ipv4,
        Kind::ApiKey,
        Kind::Jwt,
    ];

    /// The config/audit name: "email", "phone_cn", "id_card_cn", "bank_card", "credit_card",
    /// "ssn_us", "ipv4", "api_key", "jwt".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::PhoneCn => "phone_cn",
            Kind::IdCardCn => "id_card_cn",
            Kind::BankCard => "bank_card",
            Kind::CreditCard => "credit_card",
            Kind::SsnUs => "ssn_us",
            Kind::Ipv4 => "ipv4",
            Kind::ApiKey => "api_key",
            Kind::Jwt => "jwt",
        }
    }

    /// The kind named `name` (exactly as [`Kind::name`] spells it).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A match: `text[start..end]` (byte offsets on char boundaries) is a value of `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The enabled built-in detectors.
#[derive(Clone, Debug)]
pub struct Detectors {
    enabled: u16,
}

/// The most bytes [`Detectors::undecided_from`] ever leaves undecided: the longest match a
/// detector reads before deciding, a JWT (longer tokens are masked up to this many bytes).
/// Emails decide within 255 bytes, API keys within 256, the numbers within about 30.
pub const MAX_UNDECIDED_BYTES: usize = jwt::MAX_BYTES;

/// Bytes of left context a detector may read before `from`. The detectors read at most 2 (the
/// byte before a match, and for IPv4 the `digit.` that makes it part of a longer dotted
/// number); 16 leaves room without changing what a stream must keep. A stream keeps at least
/// this many bytes (rounded down to a char boundary) before the undecided point.
pub const LEFT_CONTEXT_BYTES: usize = 16;

const WORD_KINDS: u16 = (1 << Kind::PhoneCn as u16)
    | (1 << Kind::IdCardCn as u16)
    | (1 << Kind::BankCard as u16)
    | (1 << Kind::CreditCard as u16)
    | (1 << Kind::SsnUs as u16)
    | (1 << Kind::Ipv4 as u16)
    | (1 << Kind::ApiKey as u16)
    | (1 << Kind::Jwt as u16);

impl Detectors {
    pub fn new(kinds: &[Kind]) -> Self {
        Self {
            enabled: kinds.iter().fold(0, |acc, k| acc | k.bit()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.enabled == 0
    }

    fn has(&self, kind: Kind) -> bool {
        self.enabled & kind.bit() != 0
    }

    /// Appends every match that starts at or after `from` (`text[..from]` is only left context,
    /// e.g. for boundaries; a value starting there is not considered at all), sorted by start,
    /// not overlapping (earlier start wins; at equal start the longer; at equal span the kind
    /// first in [`Kind::ALL`], e.g. a Chinese ID number that also passes Luhn is an ID).
    pub fn find(&self, text: &str, from: usize, out: &mut Vec<Span>) {
        if self.is_empty() {
            return;
        }
        let mut scan = Scan::new(self, text.as_bytes(), from, false);
        scan.run();
        let mut cands = scan.cands;
        sort(&mut cands);
        let mut last_end = 0;
        for c in cands {
            if c.start >= last_end {
                last_end = c.end;
                out.push(c);
            }
        }
    }

    /// For streaming: the largest char-boundary index u (`from <= u <= text.len()`) such that,
    /// for EVERY continuation c, the matches of `find(text + c, from)` that start before u are
    /// exactly the matches of `find(text, from)` that start before u, and end at or before u;
    /// i.e. `text[u..]` is the shortest suffix that could still become (part of) a match or
    /// change one (conservatively: a matcher that read past the end counts as undecided).
    /// Returns `text.len()` when nothing at the end can still grow into a match. Never leaves
    /// more than [`MAX_UNDECIDED_BYTES`] undecided.
    ///
    /// A stream holding `h` masks the matches of `find(h, ctx)` that start before
    /// `u = undecided_from(h, ctx)`, then keeps `h[u..]` plus at least [`LEFT_CONTEXT_BYTES`]
    /// before it as the next round's context.
    pub fn undecided_from(&self, text: &str, from: usize) -> usize {
        let len = text.len();
        if self.is_empty() || from >= len {
            return len;
        }
        let mut scan = Scan::new(self, text.as_bytes(), from, true);
        scan.run();
        if self.has(Kind::Email) {
            if let Some(start) = email::trailing_local_start(text.as_bytes(), from) {
                scan.undecided.push(start);
            }
        }
        let mut cands = scan.cands;
        let mut undecided = scan.undecided;
        sort(&mut cands);
        undecided.sort_unstable();
        let mut pending = undecided.into_iter().peekable();
        let mut last_end = from;
        let mut at = len;
        'resolve: {
            for c in &cands {
                // An undecided start not inside an accepted match (all of which start before
                // it) could become a match that wins over, or suppresses, what follows.
                while let Some(&p) = pending.peek() {
                    if p > c.start {
                        break;
                    }
                    if p >= last_end {
                        at = p;
                        break 'resolve;
                    }
                    pending.next();
                }
                if c.start >= last_end {
                    last_end = c.end;
                }
            }
            if let Some(p) = pending.find(|&p| p >= last_end) {
                at = p;
            }
        }
        // Never reached (every matcher decides within its cap); keeps the bound a guarantee.
        let mut floor = len.saturating_sub(MAX_UNDECIDED_BYTES).max(from);
        while floor < len && !text.is_char_boundary(floor) {
            floor += 1;
        }
        at.max(floor)
    }
}

/// By start, then the longer, then the kind.
fn sort(cands: &mut [Span]) {
    cands.sort_unstable_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.kind.cmp(&b.kind))
    });
}

/// One pass over the text: the candidate matches of every enabled detector (overlapping), and,
/// for streaming, the starts that are undecided.
struct Scan<'a> {
    src: Src<'a>,
    from: usize,
    detectors: &'a Detectors,
    cands: Vec<Span>,
    track_undecided: bool,
    undecided: Vec<usize>,
}

impl<'a> Scan<'a> {
    fn new(detectors: &'a Detectors, bytes: &'a [u8], from: usize, track: bool) -> Self {
        Self {
            src: Src::new(bytes),
            from,
            detectors,
            cands: Vec::new(),
            track_undecided: track,
            undecided: Vec::new(),
        }
    }

    fn run(&mut self) {
        let bytes = self.src.bytes;
        let d = self.detectors;
        let words = d.enabled & WORD_KINDS != 0;
        let email = d.has(Kind::Email);
        let plus = d.has(Kind::PhoneCn);
        let mut i = self.from;
        let mut prev_ident = self.src.before(i).is_some_and(is_ident);
        while let Some(&b) = bytes.get(i) {
            let c = class(b);
            if c == 0 {
                prev_ident = false;
                i += 1;
                continue;
            }
            if c & IDENT != 0 {
                if !prev_ident && words && c & WORD_TRIGGER != 0 {
                    self.word_start(i, b);
                }
                // The rest of the word: nothing starts inside it.
                i += 1;
                i += bytes
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .position(|&b| !is_ident(b))
                    .unwrap_or(bytes.len().saturating_sub(i));
                prev_ident = true;
                continue;
            }
            if c & SPECIAL != 0 {
                if b == b'@' {
                    if email {
                        self.at_sign(i);
                    }
                } else if plus && !prev_ident {
                    self.try_at(i, Kind::PhoneCn, phone_cn::at);
                }
            }
            prev_ident = false;
            i += 1;
        }
    }

    /// A word starting at `i` (not preceded by an identifier character) with a trigger byte.
    fn word_start(&mut self, i: usize, b: u8) {
        let d = self.detectors;
        if b.is_ascii_digit() {
            if d.has(Kind::PhoneCn) {
                self.try_at(i, Kind::PhoneCn, phone_cn::at);
            }
            if d.has(Kind::IdCardCn) {
                self.try_at(i, Kind::IdCardCn, id_card_cn::at);
            }
            let (credit, bank) = (d.has(Kind::CreditCard), d.has(Kind::BankCard));
            if credit || bank {
                self.src.reset();
                if let Some((end, kind)) = card::at(&self.src, i, credit, bank) {
                    self.push(i, end, kind);
                }
                self.note(i);
            }
            if d.has(Kind::SsnUs) {
                self.try_at(i, Kind::SsnUs, ssn_us::at);
            }
            if d.has(Kind::Ipv4) {
                self.try_at(i, Kind::Ipv4, ipv4::at);
            }
            return;
        }
        // A letter: most words are ruled out by their second byte (at the end of the text the
        // matcher runs, to note that it is undecided).
        let next = self.src.bytes.get(i + 1).copied();
        let plausible = |second: &[u8]| next.is_none_or(|n| second.contains(&n));
        if b == b'e' {
            if d.has(Kind::Jwt) && plausible(b"y") {
                self.try_at(i, Kind::Jwt, jwt::at);
            }
        } else if d.has(Kind::ApiKey) {
            let second: &[u8] = match b {
                b's' | b'r' => b"k",
                b'A' => b"KSI",
                b'g' => b"hi",
                b'x' => b"o",
                _ => b"",
            };
            if plausible(second) {
                self.try_at(i, Kind::ApiKey, api_key::at);
            }
        }
    }

    /// An `@` at `at`: the email whose local part ends there, if any.
    fn at_sign(&mut self, at: usize) {
        let Some(start) = email::local_start(self.src.bytes, at) else {
            return;
        };
        if start < self.from {
            return;
        }
        self.src.reset();
        if let Some(end) = email::domain_end(&self.src, start, at) {
            self.push(start, end, Kind::Email);
        }
        self.note(start);
    }

    fn try_at(&mut self, start: usize, kind: Kind, matcher: fn(&Src, usize) -> Option<usize>) {
        self.src.reset();
        if let Some(end) = matcher(&self.src, start) {
            self.push(start, end, kind);
        }
        self.note(start);
    }

    fn push(&mut self, start: usize, end: usize, kind: Kind) {
        if start >= self.from && end > start {
            self.cands.push(Span { start, end, kind });
        }
    }

    /// The matcher that just ran at `start` read past the end: undecided.
    fn note(&mut self, start: usize) {
        if self.track_undecided && self.src.went_past_end() && start >= self.from {
            self.undecided.push(start);
        }
    }
}
