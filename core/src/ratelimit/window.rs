//! One caller's count and its sliding-window arithmetic.
//!
//! A caller's count is kept for the current fixed window and the one before. The
//! sliding estimate weights the previous window by the part of it that still overlaps the last
//! `window` milliseconds: `prev * (window - elapsed) / window + curr`. Inside one window the
//! count is exact; across a boundary there is no 2x burst (which a plain fixed window allows).
//! Everything is integer arithmetic (scaled by the window length), so every worker computes
//! the same decision from the same slot.

/// A caller's count (the counter stores it more compactly, in buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotState {
    /// Hash of the caller owning the slot (0: free).
    pub owner: u64,
    /// Index of the current window (`now_ms / window_ms`).
    pub window: u64,
    pub curr: u64,
    pub prev: u64,
}

impl SlotState {
    /// The state rolled forward to the window containing `now_ms`.
    pub fn at(&self, now_ms: u64, window_ms: u64) -> SlotState {
        let window = now_ms / window_ms.max(1);
        let (curr, prev) = match window.checked_sub(self.window) {
            Some(0) => (self.curr, self.prev),
            Some(1) => (0, self.curr),
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

/// The limit's view of a slot at `now_ms`, scaled by `window_ms` to stay in integers.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: u64,
    pub window_ms: u64,
}

impl Window {
    /// `estimate * window_ms` for the rolled state at `now_ms`.
    fn scaled_estimate(&self, state: &SlotState, now_ms: u64) -> u128 {
        let elapsed = u128::from(now_ms % self.window_ms.max(1));
        let w = u128::from(self.window_ms);
        u128::from(state.prev) * (w - elapsed) + u128::from(state.curr) * w
    }

    /// Whether `cost` more fits. A cost of 0 (a token budget without a reservation) fits while
    /// the budget is not spent.
    pub fn fits(&self, state: &SlotState, now_ms: u64, cost: u64) -> bool {
        let estimate = self.scaled_estimate(state, now_ms);
        let limit = u128::from(self.limit) * u128::from(self.window_ms);
        if cost == 0 {
            estimate < limit
        } else {
            estimate + u128::from(cost) * u128::from(self.window_ms) <= limit
        }
    }

    /// What is left, rounded down.
    pub fn remaining(&self, state: &SlotState, now_ms: u64) -> u64 {
        let estimate = self.scaled_estimate(state, now_ms);
        let used = estimate.div_ceil(u128::from(self.window_ms.max(1)));
        u64::try_from(u128::from(self.limit).saturating_sub(used)).unwrap_or(0)
    }

    /// Seconds until `cost` (at least 1) would fit again, at least 1.
    pub fn retry_after_s(&self, state: &SlotState, now_ms: u64, cost: u64) -> u64 {
        let cost = cost.max(1);
        let w = self.window_ms.max(1);
        let window_end = (now_ms / w + 1) * w;
        // Within this window the estimate only falls as the previous window slides out.
        let mut t = now_ms;
        let step = (w / 50).max(1);
        while t < window_end {
            if self.fits(state, t, cost) {
                return (t - now_ms).div_ceil(1000).max(1);
            }
            t += step;
        }
        // From the next window on, this window's count becomes the weighted one.
        let next = state.at(window_end, w);
        let mut t = window_end;
        while t < window_end + w {
            if self.fits(&next, t, cost) {
                return (t - now_ms).div_ceil(1000).max(1);
            }
            t += step;
        }
        (window_end + w - now_ms).div_ceil(1000).max(1)
    }

    /// Seconds until the current window ends (`X-RateLimit-Reset`).
    pub fn reset_s(&self, now_ms: u64) -> u64 {
        let w = self.window_ms.max(1);
        ((now_ms / w + 1) * w - now_ms).div_ceil(1000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_000;

    fn window(limit: u64) -> Window {
        Window {
            limit,
            window_ms: W,
        }
    }

    #[test]
    fn rolling_forward_moves_curr_to_prev_then_forgets() {
        let s = SlotState {
            owner: 1,
            window: 10,
            curr: 5,
            prev: 2,
        };
        assert_eq!(s.at(10 * W + 1, W), s);
        assert_eq!(
            s.at(11 * W, W),
            SlotState {
                owner: 1,
                window: 11,
                curr: 0,
                prev: 5
            }
        );
        assert_eq!(
            s.at(12 * W, W),
            SlotState {
                owner: 1,
                window: 12,
                curr: 0,
                prev: 0
            }
        );
        assert!(s.at(12 * W, W).is_idle());
        // A clock that went backwards does not resurrect or underflow.
        assert_eq!(s.at(5 * W, W).curr, 0);
    }

    #[test]
    fn within_one_window_exactly_the_limit_fits() {
        let w = window(100);
        let mut s = SlotState::default().at(5 * W, W);
        let mut admitted = 0;
        for i in 0..400 {
            let now = 5 * W + i * 10;
            s = s.at(now, W);
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
        let s = full.at(6 * W + 1, W);
        assert!(!w.fits(&s, 6 * W + 1, 1));
        // Halfway through, about half is free again.
        let half = 6 * W + W / 2;
        assert_eq!(w.remaining(&s, half), 50);
        // Two windows later everything is free.
        let later = full.at(7 * W, W);
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
        let after = s.at(now + retry * 1000, W);
        assert!(w.fits(&after, now + retry * 1000, 1));
        assert!(w.retry_after_s(&SlotState::default(), now, 1) >= 1);
    }
}
