//! Cutting a body into the pieces a stream would deliver it in, at points the fuzzer chooses:
//! what a streaming parser sends must not depend on where the network split its input.

/// `bytes` cut at `cuts` (each taken modulo the length, sorted, duplicates dropped): the
/// pieces, in order, that concatenate back to `bytes`. Empty pieces are kept out.
pub fn split<'a>(bytes: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % bytes.len()).collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points {
        if point > start {
            pieces.push(&bytes[start..point]);
            start = point;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// [`split`] for text: each cut moved back to a character boundary.
pub fn split_str<'a>(text: &'a str, cuts: &[u16]) -> Vec<&'a str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| {
            let mut at = usize::from(c) % text.len();
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points {
        if point > start {
            pieces.push(&text[start..point]);
            start = point;
        }
    }
    pieces.push(&text[start..]);
    pieces
}
