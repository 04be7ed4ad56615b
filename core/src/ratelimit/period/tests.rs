use super::*;

/// Unix milliseconds of a UTC date and time (checked against `date -u`).
const JAN_31_23_59_59_2026: u64 = 1_769_903_999_000;
const FEB_1_2026: u64 = 1_769_904_000_000;
const MAR_1_2026: u64 = 1_772_323_200_000;
const JAN_1_2026: u64 = 1_767_225_600_000;
const DEC_1_2025: u64 = 1_764_547_200_000;
const FEB_1_2024: u64 = 1_706_745_600_000;
const FEB_29_2024: u64 = 1_709_164_800_000;
const MAR_1_2024: u64 = 1_709_251_200_000;

#[test]
fn civil_dates_round_trip_and_match_known_days() {
    for days in (0..150_000).chain([2_932_896, 10_000_000]) {
        let (y, m, d) = civil_from_days(days);
        assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{days}");
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(FEB_29_2024 / MS_PER_DAY), (2024, 2, 29));
    assert_eq!(civil_from_days(MAR_1_2024 / MS_PER_DAY), (2024, 3, 1));
    // 2000 is a leap year (divisible by 400), 2100 is not (by 100).
    assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
    assert_eq!(civil_from_days(4_107_542_400 / 86_400), (2100, 3, 1));
    assert_eq!(
        days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 1),
        28
    );
}

#[test]
fn a_month_is_numbered_from_january_1970_and_ends_on_the_next_first() {
    let month = Period::CalendarMonth;
    assert_eq!(month.index(0), 0);
    assert_eq!(month.index(JAN_31_23_59_59_2026 + 999), 56 * 12);
    assert_eq!(month.index(FEB_1_2026), 56 * 12 + 1);
    assert_eq!(month.start_ms(56 * 12 + 1), FEB_1_2026);
    assert_eq!(month.end_ms(JAN_31_23_59_59_2026 + 999), FEB_1_2026);
    assert_eq!(month.end_ms(FEB_1_2026), MAR_1_2026);
    // December → January: the index goes on, the year turns.
    assert_eq!(month.index(JAN_1_2026), month.index(JAN_1_2026 - 1) + 1);
    assert_eq!(month.start_ms(month.index(JAN_1_2026 - 1)), DEC_1_2025);
    assert_eq!(month.end_ms(JAN_1_2026 - 1), JAN_1_2026);
    // A leap February has 29 days.
    assert_eq!(month.index(FEB_29_2024), month.index(FEB_1_2024));
    assert_eq!(month.end_ms(FEB_29_2024), MAR_1_2024);
    assert_eq!(MAR_1_2024 - FEB_1_2024, 29 * MS_PER_DAY);
    // Every month starts where the one before ends.
    for index in 0..2400 {
        let start = month.start_ms(index);
        assert_eq!(month.index(start), index);
        assert_eq!(
            month.index(start - u64::from(index > 0)),
            index.saturating_sub(1)
        );
    }
    // The previous month never weighs; an absurd index saturates instead of panicking.
    assert_eq!(month.previous_weight(FEB_1_2026), (0, 1));
    assert!(!month.weighs_previous());
    assert_eq!(month.start_ms(u64::MAX), u64::MAX);
    let _ = month.index(u64::MAX);
}

#[test]
fn a_sliding_window_is_numbered_and_weighted_as_before() {
    let sliding = Period::Sliding { window_ms: 60_000 };
    assert_eq!(sliding.index(600_000), 10);
    assert_eq!(sliding.start_ms(10), 600_000);
    assert_eq!(sliding.end_ms(600_001), 660_000);
    assert_eq!(sliding.previous_weight(630_000), (30_000, 60_000));
    assert!(sliding.weighs_previous());
    assert_eq!(Period::Sliding { window_ms: 0 }.index(5), 5);
}
