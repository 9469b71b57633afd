//! Billing months: UTC calendar months, named by their first day (the
//! seed's `billingMonth DATE`), and where a usage event counts.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// A calendar month (UTC), held as its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingMonth(NaiveDate);

impl BillingMonth {
    /// The month `at` falls in, in UTC.
    pub fn of(at: DateTime<Utc>) -> Self {
        Self::containing(at.date_naive())
    }

    /// The month of a calendar day.
    pub fn containing(day: NaiveDate) -> Self {
        // Going back to day 1 of the same month cannot leave chrono's range.
        Self(
            day.checked_sub_days(chrono::Days::new(u64::from(day.day0())))
                .unwrap_or(day),
        )
    }

    /// A stored `billingMonth`, which must be a first day.
    pub fn parse(first_day: NaiveDate) -> Result<Self, String> {
        if first_day.day() == 1 {
            Ok(Self(first_day))
        } else {
            Err(format!("{first_day} is not the first day of a month"))
        }
    }

    /// The month's first day, as stored.
    pub fn first_day(self) -> NaiveDate {
        self.0
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        Self(self.0.checked_add_months(Months::new(1)).unwrap_or(self.0))
    }

    /// The month before this one.
    pub fn previous(self) -> Self {
        Self(self.0.checked_sub_months(Months::new(1)).unwrap_or(self.0))
    }

    /// The month a usage row must be in now: its own, or the current one if
    /// the row is older (a new month started: counters start from zero).
    pub fn rolled_over(self, now: Self) -> Option<Self> {
        (self < now).then_some(now)
    }
}

impl std::fmt::Display for BillingMonth {
    /// `YYYY-MM-01`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Where a usage event (tokens, a conversation) of month `event` counts, for
/// a usage row of month `row`, with our clock in month `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Count it; first roll the row over to `roll_to` when set.
    Count { roll_to: Option<BillingMonth> },
    /// It belongs to a month already closed: count nothing.
    Stale,
    /// It claims a month after next: a bad clock or a bad event; refuse it.
    Future,
}

impl Placement {
    /// Decides. The row first rolls over to the current month, as any
    /// touch does; an event of that month counts, an earlier one is stale.
    /// An event of the next month (the producer's clock crossed midnight
    /// before ours) rolls the row forward to it, so tokens land in the month
    /// the producer billed them in.
    pub fn of(row: BillingMonth, now: BillingMonth, event: BillingMonth) -> Self {
        let target = row.max(now);
        let roll = |to: BillingMonth| (row < to).then_some(to);
        if event < target {
            Self::Stale
        } else if event == target {
            Self::Count {
                roll_to: roll(target),
            }
        } else if event == now.next() {
            Self::Count {
                roll_to: roll(event),
            }
        } else {
            Self::Future
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn month(y: i32, m: u32) -> BillingMonth {
        BillingMonth::parse(day(y, m, 1)).unwrap()
    }

    #[test]
    fn a_month_is_named_by_its_first_day_in_utc() {
        let last_second = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        let first_second = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(BillingMonth::of(last_second), month(2026, 1));
        assert_eq!(BillingMonth::of(first_second), month(2026, 2));
        assert_eq!(BillingMonth::containing(day(2024, 2, 29)), month(2024, 2));
        assert_eq!(month(2026, 3).to_string(), "2026-03-01");
    }

    #[test]
    fn a_time_west_of_utc_counts_in_the_utc_month() {
        // 2026-03-31 20:00 in New York (UTC-4) is already April in UTC.
        let ny = chrono::FixedOffset::west_opt(4 * 3600).unwrap();
        let at = ny.with_ymd_and_hms(2026, 3, 31, 20, 0, 0).unwrap();
        assert_eq!(BillingMonth::of(at.with_timezone(&Utc)), month(2026, 4));
    }

    #[test]
    fn only_first_days_are_months() {
        assert!(BillingMonth::parse(day(2026, 5, 2)).is_err());
        assert!(BillingMonth::parse(day(2026, 5, 31)).is_err());
    }

    #[test]
    fn december_is_followed_by_january_of_the_next_year() {
        assert_eq!(month(2026, 12).next(), month(2027, 1));
        assert_eq!(month(2027, 1).previous(), month(2026, 12));
        assert_eq!(month(2024, 1).next(), month(2024, 2));
        assert_eq!(month(2024, 3).previous(), month(2024, 2));
        assert!(month(2026, 12) < month(2027, 1));
    }

    #[test]
    fn a_row_rolls_over_only_when_its_month_is_over() {
        assert_eq!(
            month(2026, 12).rolled_over(month(2027, 1)),
            Some(month(2027, 1))
        );
        assert_eq!(
            month(2026, 10).rolled_over(month(2027, 1)),
            Some(month(2027, 1))
        );
        assert_eq!(month(2027, 1).rolled_over(month(2027, 1)), None);
        // A row already moved forward never goes back.
        assert_eq!(month(2027, 2).rolled_over(month(2027, 1)), None);
    }

    #[test]
    fn an_event_of_the_current_month_counts_after_the_lazy_rollover() {
        let (dec, jan) = (month(2026, 12), month(2027, 1));
        assert_eq!(
            Placement::of(jan, jan, jan),
            Placement::Count { roll_to: None }
        );
        assert_eq!(
            Placement::of(dec, jan, jan),
            Placement::Count { roll_to: Some(jan) }
        );
    }

    #[test]
    fn an_event_of_a_closed_month_is_stale() {
        let (dec, jan) = (month(2026, 12), month(2027, 1));
        assert_eq!(Placement::of(jan, jan, dec), Placement::Stale);
        // The row is rolled over first, so December is closed even for a
        // row that still says December.
        assert_eq!(Placement::of(dec, jan, dec), Placement::Stale);
        assert_eq!(Placement::of(dec, jan, month(2026, 11)), Placement::Stale);
    }

    #[test]
    fn an_event_of_next_month_moves_the_row_forward_but_no_further() {
        let (dec, jan, feb) = (month(2026, 12), month(2027, 1), month(2027, 2));
        assert_eq!(
            Placement::of(dec, dec, jan),
            Placement::Count { roll_to: Some(jan) }
        );
        // Moved forward already: later events of that month count there.
        assert_eq!(
            Placement::of(jan, dec, jan),
            Placement::Count { roll_to: None }
        );
        // ... and those of our clock's month are stale.
        assert_eq!(Placement::of(jan, dec, dec), Placement::Stale);
        assert_eq!(Placement::of(dec, dec, feb), Placement::Future);
        assert_eq!(Placement::of(dec, dec, month(2099, 1)), Placement::Future);
    }
}
