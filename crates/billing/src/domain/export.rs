//! What an `Export*` call (analytics' backfill) may ask for: a page of
//! rows in id order after the id `after`, at most `limit` of them. Rows
//! are whoever's; the caller is a service, not a user.

use uuid::Uuid;

/// The page size when `limit` is 0 (absent).
pub const DEFAULT_EXPORT_PAGE: i64 = 500;
/// The largest page.
pub const MAX_EXPORT_PAGE: u32 = 1000;

/// An export page request, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportPage {
    pub size: i64,
    /// The last id of the previous page; `None`: the first page.
    pub after: Option<Uuid>,
}

impl ExportPage {
    /// `limit` and `after` as they came (`after` empty: the first page);
    /// the errors name the fields.
    pub fn parse(limit: u32, after: &str) -> Result<Self, super::FieldErrors> {
        let mut errors = super::FieldErrors::new();
        let size = match limit {
            0 => Some(DEFAULT_EXPORT_PAGE),
            1..=MAX_EXPORT_PAGE => Some(i64::from(limit)),
            _ => {
                errors.insert(
                    "limit".into(),
                    format!("must be between 1 and {MAX_EXPORT_PAGE}"),
                );
                None
            }
        };
        let after = if after.is_empty() {
            None
        } else {
            Uuid::parse_str(after)
                .map_err(|_| errors.insert("after".into(), "is not a row id".into()))
                .ok()
        };
        match size {
            Some(size) if errors.is_empty() => Ok(Self { size, after }),
            _ => Err(errors),
        }
    }

    /// The `next` of a page whose last row has `last` id: that id when the
    /// page is full (more rows may follow), empty otherwise.
    pub fn next(&self, rows: usize, last: Option<Uuid>) -> String {
        match last {
            Some(last) if i64::try_from(rows).is_ok_and(|n| n >= self.size) => last.to_string(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_zero_is_the_default() {
        assert_eq!(ExportPage::parse(0, "").unwrap().size, 500);
        assert_eq!(ExportPage::parse(1, "").unwrap().size, 1);
        assert_eq!(ExportPage::parse(1000, "").unwrap().size, 1000);
        assert!(
            ExportPage::parse(1001, "")
                .unwrap_err()
                .contains_key("limit")
        );
    }

    #[test]
    fn after_is_a_row_id_or_empty() {
        let id = Uuid::now_v7();
        assert_eq!(
            ExportPage::parse(10, &id.to_string()).unwrap().after,
            Some(id)
        );
        assert_eq!(ExportPage::parse(10, "").unwrap().after, None);
        for bad in ["nope", " ", "00000000-0000-0000-0000", "1"] {
            assert!(
                ExportPage::parse(10, bad)
                    .unwrap_err()
                    .contains_key("after"),
                "{bad}"
            );
        }
        let both = ExportPage::parse(5000, "x").unwrap_err();
        assert!(both.contains_key("limit") && both.contains_key("after"));
    }

    #[test]
    fn next_is_the_last_id_of_a_full_page_only() {
        let page = ExportPage::parse(2, "").unwrap();
        let id = Uuid::now_v7();
        assert_eq!(page.next(2, Some(id)), id.to_string());
        assert_eq!(page.next(1, Some(id)), "");
        assert_eq!(page.next(0, None), "");
    }
}
