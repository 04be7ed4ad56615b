//! A rate-limit unit's window in seconds.

use crate::proto::RateLimitUnit;

const DAY: u64 = 86_400;

/// The window of `unit` (the wire number), or `None` for UNKNOWN and numbers Envoy does not
/// define (such a descriptor is not limited). MONTH is 30 days and YEAR 365 days, as
/// envoyproxy/ratelimit counts them; every window starts at a counter's first hit.
pub fn window_seconds(unit: i32) -> Option<u64> {
    match RateLimitUnit::try_from(unit).ok()? {
        RateLimitUnit::Unknown => None,
        RateLimitUnit::Second => Some(1),
        RateLimitUnit::Minute => Some(60),
        RateLimitUnit::Hour => Some(3_600),
        RateLimitUnit::Day => Some(DAY),
        RateLimitUnit::Week => Some(7 * DAY),
        RateLimitUnit::Month => Some(30 * DAY),
        RateLimitUnit::Year => Some(365 * DAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_has_its_window() {
        let cases = [
            (0, None),
            (1, Some(1)),
            (2, Some(60)),
            (3, Some(3_600)),
            (4, Some(86_400)),
            (5, Some(2_592_000)),
            (6, Some(31_536_000)),
            (7, Some(604_800)),
            (8, None),
            (-1, None),
        ];
        for (unit, expected) in cases {
            assert_eq!(window_seconds(unit), expected, "unit {unit}");
        }
    }
}
