//! One caller's count and its sliding-window arithmetic.
//!
//! A caller's count is kept for the current fixed window and the one before. The
//! sliding estimate weights the previous window by the part of it that still overlaps the last
//! `window` milliseconds: `prev * (window - elapsed) / window + curr`. Inside one window the
//! count is exact; across a boundary there is no 2x burst (which a plain fixed window allows).
//! A calendar-month budget is the same arithmetic with the previous window weighing nothing
//! ([`Period`]). Everything is integer arithmetic (scaled by the weight's denominator), so
//! every worker computes the same decision from the same slot.

use super::period::Period;

/// A caller's count (the counter stores it more compactly, in buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotState {
    /// Hash of the caller owning the slot (0: free).
    pub owner: u64,
    /// Index of the current window ([`Period::index`]).
    pub window: u64,
    pub curr: u64,
    pub prev: u64,
}

impl SlotState {
    /// The state rolled forward to the window containing `now_ms`. The previous window's count
    /// is kept only where it still weighs, so a month's slot is idle as soon as the month ends.
    pub fn at(&self, now_ms: u64, period: Period) -> SlotState {
        let window = period.index(now_ms);
        let (curr, prev) = match window.checked_sub(self.window) {
            Some(0) => (self.curr, self.prev),
            Some(1) if period.weighs_previous() => (0, self.curr),
            _ => (0, 0),
        };
        SlotState {
            owner: self.owner,
            window,
            curr,
            prev,
        }
    }

    /// True when nothing in it counts any more: it may be given to another caller.
    pub fn is_idle(&self) -> bool {
        self.curr == 0 && self.prev == 0
    }
}

/// The limit's view of a slot at `now_ms`, scaled by the previous window's weight
/// denominator to stay in integers.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: u64,
    pub period: Period,
}

impl Window {
    /// `(estimate * scale, scale)` for the rolled state at `now_ms`.
    fn scaled_estimate(&self, state: &SlotState, now_ms: u64) -> (u128, u128) {
        let (weight, scale) = self.period.previous_weight(now_ms);
        let scale = u128::from(scale.max(1));
        let estimate = u128::from(state.prev) * u128::from(weight) + u128::from(state.curr) * scale;
        (estimate, scale)
    }

    /// Whether `cost` more fits. A cost of 0 (a token budget without a reservation) fits while
    /// the budget is not spent.
    pub fn fits(&self, state: &SlotState, now_ms: u64, cost: u64) -> bool {
        let (estimate, scale) = self.scaled_estimate(state, now_ms);
        let limit = u128::from(self.limit) * scale;
        if cost == 0 {
            estimate < limit
        } else {
            estimate + u128::from(cost) * scale <= limit
        }
    }

    /// What is left, rounded down.
    pub fn remaining(&self, state: &SlotState, now_ms: u64) -> u64 {
        let (estimate, scale) = self.scaled_estimate(state, now_ms);
        let used = estimate.div_ceil(scale);
        u64::try_from(u128::from(self.limit).saturating_sub(used)).unwrap_or(0)
    }

    /// Seconds until `cost` (at least 1) would fit again, at least 1.
    pub fn retry_after_s(&self, state: &SlotState, now_ms: u64, cost: u64) -> u64 {
        let cost = cost.max(1);
        let window_end = self.period.end_ms(now_ms);
        let next_end = self.period.end_ms(window_end);
        let seconds_until = |t: u64| t.saturating_sub(now_ms).div_ceil(1000).max(1);
        // Within this window the estimate only falls as the previous window slides out (a
        // month's never does: its count is exact until the month ends).
        let window_start = self.period.start_ms(self.period.index(now_ms));
        let step = (window_end.saturating_sub(window_start) / 50).max(1);
        let mut t = now_ms;
        while t < window_end && self.period.weighs_previous() {
            if self.fits(state, t, cost) {
                return seconds_until(t);
            }
            t = t.saturating_add(step);
        }
        // From the next window on, this window's count becomes the weighted one (or, for a
        // month, is forgotten).
        let next = state.at(window_end, self.period);
        let step = (next_end.saturating_sub(window_end) / 50).max(1);
        let mut t = window_end;
        while t < next_end {
            if self.fits(&next, t, cost) {
                return seconds_until(t);
            }
            t = t.saturating_add(step);
        }
        seconds_until(next_end)
    }

    /// Seconds until the current window ends (`X-RateLimit-Reset`).
    pub fn reset_s(&self, now_ms: u64) -> u64 {
        self.period
            .end_ms(now_ms)
            .saturating_sub(now_ms)
            .div_ceil(1000)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_000;

    const P: Period = Period::Sliding { window_ms: W };

    fn window(limit: u64) -> Window {
        Window { limit, period: P }
    }

    #[test]
    fn rolling_forward_moves_curr_to_prev_then_forgets() {
        let s = SlotState {
            owner: 1,
            window: 10,
            curr: 5,
            prev: 2,
        };
        assert_eq!(s.at(10 * W + 1, P), s);
        assert_eq!(
            s.at(11 * W, P),
            SlotState {
                owner: 1,
                window: 11,
                curr: 0,
                prev: 5
            }
        );
        assert_eq!(
            s.at(12 * W, P),
            SlotState {
                owner: 1,
                window: 12,
                curr: 0,
                prev: 0
            }
        );
        assert!(s.at(12 * W, P).is_idle());
        // A clock that went backwards does not resurrect or underflow.
        assert_eq!(s.at(5 * W, P).curr, 0);
    }

    #[test]
    fn within_one_window_exactly_the_limit_fits() {
        let w = window(100);
        let mut s = SlotState::default().at(5 * W, P);
        let mut admitted = 0;
        for i in 0..400 {
            let now = 5 * W + i * 10;
            s = s.at(now, P);
            if w.fits(&s, now, 1) {
                s.curr += 1;
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100);
    }

    #[test]
    fn no_double_burst_at_a_window_boundary() {
        let w = window(100);
        let full = SlotState {
            owner: 1,
            window: 5,
            curr: 100,
            prev: 0,
        };
        // Just after the boundary the previous window still counts almost fully.
        let s = full.at(6 * W + 1, P);
        assert!(!w.fits(&s, 6 * W + 1, 1));
        // Halfway through, about half is free again.
        let half = 6 * W + W / 2;
        assert_eq!(w.remaining(&s, half), 50);
        // Two windows later everything is free.
        let later = full.at(7 * W, P);
        assert_eq!(w.remaining(&later, 7 * W), 100);
    }

    #[test]
    fn token_budgets_with_and_without_reservations() {
        let w = window(1000);
        let s = SlotState {
            owner: 1,
            window: 5,
            curr: 990,
            prev: 0,
        };
        assert!(
            w.fits(&s, 5 * W, 0),
            "not spent yet: admitted without reservation"
        );
        assert!(w.fits(&s, 5 * W, 10));
        assert!(!w.fits(&s, 5 * W, 11), "the reservation does not fit");
        let spent = SlotState { curr: 1000, ..s };
        assert!(!w.fits(&spent, 5 * W, 0));
    }

    #[test]
    fn retry_after_and_reset_are_sane() {
        let w = window(10);
        let s = SlotState {
            owner: 1,
            window: 5,
            curr: 10,
            prev: 0,
        };
        let now = 5 * W + 30_000;
        assert_eq!(w.reset_s(now), 30);
        let retry = w.retry_after_s(&s, now, 1);
        // The full window must slide until a tenth of it is out: 30 s + 6 s.
        assert!((36..=38).contains(&retry), "{retry}");
        let after = s.at(now + retry * 1000, P);
        assert!(w.fits(&after, now + retry * 1000, 1));
        assert!(w.retry_after_s(&SlotState::default(), now, 1) >= 1);
    }
}
