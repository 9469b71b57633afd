//! Which UTC days a daily-usage request covers, and which billing months a
//! usage row of those days can carry. No I/O; the sums are the store's.

use chrono::{Datelike, Days, NaiveDate};

/// Days when a request names none (`days` = 0 on the wire).
pub const DEFAULT_DAYS: u32 = 30;
/// The most days one request covers: a leap year.
pub const MAX_DAYS: u32 = 366;

/// `days` UTC days ending with today, today included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    first: NaiveDate,
    last: NaiveDate,
}

impl DayWindow {
    /// The last `days` days up to `today`; 0 means [`DEFAULT_DAYS`].
    pub fn parse(days: u32, today: NaiveDate) -> Result<Self, String> {
        let days = match days {
            0 => DEFAULT_DAYS,
            1..=MAX_DAYS => days,
            _ => return Err(format!("must be between 1 and {MAX_DAYS}")),
        };
        let first = today
            .checked_sub_days(Days::new(u64::from(days - 1)))
            .ok_or_else(|| "reaches before the calendar".to_owned())?;
        Ok(Self { first, last: today })
    }

    /// The oldest day.
    pub fn first(&self) -> NaiveDate {
        self.first
    }

    /// Today.
    pub fn last(&self) -> NaiveDate {
        self.last
    }

    /// The range of `billingMonth` a usage row created in this window can
    /// have, so a query reads only those partitions of `tokenUsage`.
    ///
    /// A charge takes its billing month from the clock just before it
    /// stamps `createdAt` (send/charge.rs), so the month is that of
    /// `createdAt`, or, for a charge straddling midnight at a month's end,
    /// the month before. Hence from the month of the day before the first
    /// day, to the month of the last day.
    pub fn billing_months(&self) -> (NaiveDate, NaiveDate) {
        let before = self.first.pred_opt().unwrap_or(self.first);
        (month_of(before), month_of(self.last))
    }
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_window_ends_today_and_counts_today() {
        let w = DayWindow::parse(30, day("2026-12-01")).unwrap();
        assert_eq!(
            (w.first(), w.last()),
            (day("2026-11-02"), day("2026-12-01"))
        );
        let one = DayWindow::parse(1, day("2026-12-01")).unwrap();
        assert_eq!(
            (one.first(), one.last()),
            (day("2026-12-01"), day("2026-12-01"))
        );
        let year = DayWindow::parse(366, day("2024-12-31")).unwrap();
        assert_eq!(year.first(), day("2024-01-01"), "a leap year");
    }

    #[test]
    fn zero_means_thirty_and_the_bounds_are_one_and_366() {
        assert_eq!(
            DayWindow::parse(0, day("2026-12-01")),
            DayWindow::parse(30, day("2026-12-01"))
        );
        assert!(DayWindow::parse(367, day("2026-12-01")).is_err());
        assert!(DayWindow::parse(u32::MAX, day("2026-12-01")).is_err());
    }

    #[test]
    fn billing_months_reach_back_one_day_before_the_first() {
        let w = DayWindow::parse(30, day("2026-12-15")).unwrap();
        assert_eq!(w.billing_months(), (day("2026-11-01"), day("2026-12-01")));
        // The first day is the 1st: a row of its first instant may carry
        // the month before.
        let w = DayWindow::parse(15, day("2026-12-15")).unwrap();
        assert_eq!(w.first(), day("2026-12-01"));
        assert_eq!(w.billing_months(), (day("2026-11-01"), day("2026-12-01")));
        let w = DayWindow::parse(14, day("2026-12-15")).unwrap();
        assert_eq!(w.billing_months(), (day("2026-12-01"), day("2026-12-01")));
    }
}
