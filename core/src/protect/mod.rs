//! Data protection: sensitive values masked in what reaches the model and in what comes back
//! from it, and prompts refused when they match a deny pattern.
//!
//! - [`detect`]: the built-in detectors (hand-written scanners with checksums);
//! - [`pattern`]: user-written regexes, one multi-pattern set;
//! - [`Protector`]: both together, compiled from `data_protection`: masks a text, finds a deny;
//! - [`stream::StreamMasker`]: masks text that arrives in pieces, holding back only the end
//!   that could still become a match;
//! - [`json`]: every text of a JSON body, masked in place;
//! - [`answer`]: the model's answers as they pass (JSON, NDJSON, Server-Sent Events).

pub mod answer;
pub mod detect;
pub mod json;
pub mod pattern;
pub mod stream;

use detect::{Detectors, Kind};
use pattern::Patterns;

/// One masking rule: what the audit calls it and what replaces its matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub replacement: String,
}

/// The compiled `data_protection` section.
#[derive(Debug)]
pub struct Protector {
    /// Built-in rules first (in configured order), then custom ones; a [`Counts`] indexes this.
    rules: Vec<Rule>,
    detectors: Detectors,
    /// The rule of each built-in kind (by `Kind as usize`), if enabled.
    kind_rule: [Option<usize>; Kind::ALL.len()],
    custom: Option<Patterns>,
    /// The rule of each custom pattern, by pattern index.
    custom_rule: Vec<usize>,
    deny: Option<Patterns>,
    deny_names: Vec<String>,
    /// Mask the model's answers too.
    pub responses: bool,
}

/// One mask entry as configured.
pub enum MaskEntry {
    Builtin(Kind, Rule),
    Custom(String, Rule),
}

/// How many values of each rule were masked (indexed like the rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(Vec<u64>);

impl Counts {
    fn add(&mut self, rule: usize) {
        if self.0.len() <= rule {
            self.0.resize(rule + 1, 0);
        }
        if let Some(count) = self.0.get_mut(rule) {
            *count = count.saturating_add(1);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    pub fn merge(&mut self, other: &Counts) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (count, &n) in self.0.iter_mut().zip(&other.0) {
            *count = count.saturating_add(n);
        }
    }
}

/// A match: where, and which rule (its replacement); matches of other rules that overlapped
/// it are merged in (`also`, counted too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
    pub also: Vec<usize>,
}

impl Protector {
    /// `entries` in configured order; the error names the entry (index into `mask` or `deny`).
    pub fn new(
        entries: Vec<MaskEntry>,
        deny: Vec<(String, String)>,
        responses: bool,
    ) -> Result<Self, ProtectError> {
        let mut rules = Vec::with_capacity(entries.len());
        let mut kinds = Vec::new();
        let mut kind_rule = [None; Kind::ALL.len()];
        let mut custom_patterns = Vec::new();
        let mut custom_rule = Vec::new();
        let mut custom_entry = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            match entry {
                MaskEntry::Builtin(kind, rule) => {
                    if let Some(slot) = kind_rule.get_mut(kind as usize) {
                        if slot.is_none() {
                            *slot = Some(rules.len());
                            kinds.push(kind);
                            rules.push(rule);
                        }
                    }
                }
                MaskEntry::Custom(regex, rule) => {
                    custom_rule.push(rules.len());
                    custom_patterns.push(regex);
                    custom_entry.push(index);
                    rules.push(rule);
                }
            }
        }
        let custom = compile(&custom_patterns)
            .map_err(|e| ProtectError::Mask(custom_entry.get(e.index).copied().unwrap_or(0), e))?;
        let (deny_names, deny_patterns): (Vec<String>, Vec<String>) = deny.into_iter().unzip();
        let deny = compile(&deny_patterns).map_err(ProtectError::Deny)?;
        Ok(Self {
            rules,
            detectors: Detectors::new(&kinds),
            kind_rule,
            custom,
            custom_rule,
            deny,
            deny_names,
            responses,
        })
    }

    /// Whether anything is masked at all (a section with only `deny` masks nothing).
    pub fn masks(&self) -> bool {
        !self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `(rule name, count)` for every rule that masked something.
    pub fn named_counts<'a>(&'a self, counts: &'a Counts) -> impl Iterator<Item = (&'a str, u64)> {
        counts
            .0
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .filter_map(|(rule, &n)| Some((self.rules.get(rule)?.name.as_str(), n)))
    }

    /// The name of the first deny pattern `text` matches.
    pub fn denied(&self, text: &str) -> Option<&str> {
        let index = self.deny.as_ref()?.first_match(text)?;
        self.deny_names.get(index).map(String::as_str)
    }

    /// `text` with every match replaced, or `None` when nothing matched (no copy).
    pub fn mask(&self, text: &str, counts: &mut Counts) -> Option<String> {
        let mut found = Vec::new();
        self.find(text, 0, text.len(), &mut found);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        self.replace(text, 0, text.len(), &found, &mut out, counts);
        Some(out)
    }

    /// The matches starting in `from..upto`, in order; overlapping matches of different
    /// rules are merged into one covering both (the earlier one's replacement), so no part of
    /// either is left in clear.
    pub fn find(&self, text: &str, from: usize, upto: usize, out: &mut Vec<Found>) {
        out.clear();
        let mut spans = Vec::new();
        self.detectors.find(text, from, &mut spans);
        out.extend(spans.iter().filter(|s| s.start < upto).filter_map(|s| {
            let rule = (*self.kind_rule.get(s.kind as usize)?)?;
            Some(Found {
                start: s.start,
                end: s.end,
                rule,
                also: Vec::new(),
            })
        }));
        let Some(custom) = &self.custom else {
            return;
        };
        let before = out.len();
        custom.find(text, from, |start, end, pattern| {
            if start < upto {
                if let Some(&rule) = self.custom_rule.get(pattern) {
                    out.push(Found {
                        start,
                        end,
                        rule,
                        also: Vec::new(),
                    });
                }
            }
        });
        if out.len() == before || before == 0 {
            return;
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut merged: Vec<Found> = Vec::with_capacity(out.len());
        for found in out.drain(..) {
            match merged.last_mut() {
                Some(last) if found.start < last.end => {
                    last.end = last.end.max(found.end);
                    last.also.push(found.rule);
                }
                _ => merged.push(found),
            }
        }
        *out = merged;
    }

    /// Appends `text[from..upto]` to `out` with the `found` matches replaced.
    pub(crate) fn replace(
        &self,
        text: &str,
        from: usize,
        upto: usize,
        found: &[Found],
        out: &mut String,
        counts: &mut Counts,
    ) {
        let mut at = from;
        for f in found {
            out.push_str(text.get(at..f.start).unwrap_or_default());
            if let Some(rule) = self.rules.get(f.rule) {
                out.push_str(&rule.replacement);
            }
            counts.add(f.rule);
            for &also in &f.also {
                counts.add(also);
            }
            at = f.end;
        }
        out.push_str(text.get(at..upto).unwrap_or_default());
    }

    /// For a stream: from where the end of `text` is still undecided (see
    /// [`Detectors::undecided_from`]).
    pub(crate) fn undecided_from(
        &self,
        text: &str,
        from: usize,
        cache: &mut Option<regex_automata::hybrid::regex::Cache>,
    ) -> usize {
        let mut at = self.detectors.undecided_from(text, from);
        if let Some(custom) = &self.custom {
            let cache = cache.get_or_insert_with(|| custom.cache());
            at = at.min(custom.undecided_from(text, from, cache));
        }
        at
    }
}

fn compile(patterns: &[String]) -> Result<Option<Patterns>, pattern::PatternError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    Patterns::new(&refs).map(Some)
}

/// A pattern refused at configuration: which list, which entry, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtectError {
    Mask(usize, pattern::PatternError),
    Deny(pattern::PatternError),
}

#[cfg(test)]
mod tests;
