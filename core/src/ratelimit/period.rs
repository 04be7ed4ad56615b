//! Which fixed window a moment falls in, and how much the window before it still counts.
//!
//! Counts are kept per fixed window (its index is what a bucket stores), so every worker must
//! map a moment to the same index. A sliding limit numbers windows of `window_ms` since the
//! epoch and weighs the previous one by how much of it still overlaps the last `window_ms`; a
//! calendar-month budget numbers UTC months since January 1970 and counts exactly: the previous
//! month never weighs, so the count starts at 0 when the month changes (a budget "per month"
//! means the calendar month to people reading invoices, not the last 30 days).

const MS_PER_DAY: u64 = 86_400_000;
/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar (Hinnant).
const EPOCH_SHIFT_DAYS: u64 = 719_468;
/// Days in a 400-year era.
const ERA_DAYS: u64 = 146_097;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Windows of `window_ms`, the previous one weighted as it slides out.
    Sliding { window_ms: u64 },
    /// UTC calendar months, counted exactly.
    CalendarMonth,
}

impl Period {
    /// The index of the window containing `now_ms` (Unix milliseconds).
    pub fn index(self, now_ms: u64) -> u64 {
        match self {
            Self::Sliding { window_ms } => now_ms / window_ms.max(1),
            Self::CalendarMonth => {
                let (year, month, _) = civil_from_days(now_ms / MS_PER_DAY);
                year.saturating_sub(1970) * 12 + (month - 1)
            }
        }
    }

    /// When window `index` starts (saturating: an absurd index from shared data never panics).
    pub fn start_ms(self, index: u64) -> u64 {
        match self {
            Self::Sliding { window_ms } => index.saturating_mul(window_ms.max(1)),
            Self::CalendarMonth => {
                let year = 1970u64.saturating_add(index / 12);
                days_from_civil(year, index % 12 + 1, 1).saturating_mul(MS_PER_DAY)
            }
        }
    }

    /// When the window containing `now_ms` ends (the next one starts).
    pub fn end_ms(self, now_ms: u64) -> u64 {
        self.start_ms(self.index(now_ms).saturating_add(1))
    }

    /// Whether the previous window's count still weighs in this one: only a sliding window
    /// carries it over; a month forgets it at once.
    pub fn weighs_previous(self) -> bool {
        matches!(self, Self::Sliding { .. })
    }

    /// How much of the previous window's count still counts at `now_ms`, as
    /// `(numerator, denominator)` so that every worker computes it in the same integers.
    pub fn previous_weight(self, now_ms: u64) -> (u64, u64) {
        match self {
            Self::Sliding { window_ms } => {
                let w = window_ms.max(1);
                (w - now_ms % w, w)
            }
            Self::CalendarMonth => (0, 1),
        }
    }
}

/// `(year, month 1..=12, day 1..=31)` of a day counted from 1970-01-01: Howard Hinnant's
/// `civil_from_days`, in unsigned arithmetic since the clock never reads before 1970.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days.saturating_add(EPOCH_SHIFT_DAYS);
    let era = z / ERA_DAYS;
    let doe = z - era * ERA_DAYS; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / (ERA_DAYS - 1)) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to `year-month-day` (`year` >= 1970): Hinnant's `days_from_civil`.
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Years start on March 1st here, so that February's leap day is the year's last.
    let year = year.saturating_sub(u64::from(month <= 2));
    let era = year / 400;
    let yoe = year - era * 400; // [0, 399]
    let mp = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era.saturating_mul(ERA_DAYS)
        .saturating_add(doe)
        .saturating_sub(EPOCH_SHIFT_DAYS)
}

#[cfg(test)]
mod tests;
