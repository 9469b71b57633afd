//! The pages of `ExportUsers` (analytics' backfill): keyset-paged by user
//! id, ascending.

use uuid::Uuid;

use super::{FieldErrors, Validator};

/// The page size when the request names none.
pub const DEFAULT_LIMIT: i64 = 500;
/// The largest page.
pub const MAX_LIMIT: i64 = 1000;

/// Where an export page starts and how long it is, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportPage {
    /// Rows with a greater id; `None`: from the first.
    pub after: Option<Uuid>,
    /// 1..=[`MAX_LIMIT`].
    pub limit: i64,
}

impl ExportPage {
    /// `after` is empty (the first page) or a previous page's `next`;
    /// `limit` is 0 (the default, [`DEFAULT_LIMIT`]) or 1..=[`MAX_LIMIT`].
    /// Each bad field is named.
    pub fn parse(after: &str, limit: u32) -> Result<Self, FieldErrors> {
        let mut v = Validator::default();
        let after = match after.trim() {
            "" => Some(None),
            id => v.check(
                "after",
                Uuid::parse_str(id)
                    .map(Some)
                    .map_err(|_| "is not the next of a previous page".to_owned()),
            ),
        };
        let limit = v.check(
            "limit",
            match i64::from(limit) {
                0 => Ok(DEFAULT_LIMIT),
                n @ 1..=MAX_LIMIT => Ok(n),
                _ => Err(format!("must be between 1 and {MAX_LIMIT}")),
            },
        );
        v.finish()?;
        // Both checked: refused above unless both are `Some`.
        Ok(Self {
            after: after.flatten(),
            limit: limit.unwrap_or(DEFAULT_LIMIT),
        })
    }

    /// The `next` of a page of `ids`: its last id when the page is full
    /// (there may be more), `None` when it is not (the last page).
    pub fn next(&self, ids: impl ExactSizeIterator<Item = Uuid>) -> Option<Uuid> {
        let full = i64::try_from(ids.len()).is_ok_and(|n| n == self.limit);
        if full { ids.last() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_to_500_and_stop_at_1000() {
        let id = Uuid::now_v7();
        assert_eq!(
            ExportPage::parse("", 0),
            Ok(ExportPage {
                after: None,
                limit: 500
            })
        );
        assert_eq!(
            ExportPage::parse(&id.to_string(), 1000),
            Ok(ExportPage {
                after: Some(id),
                limit: 1000
            })
        );
        let refused = ExportPage::parse("nope", 1001).unwrap_err();
        assert!(refused.contains_key("after") && refused.contains_key("limit"));
        assert_eq!(refused.len(), 2);
    }

    #[test]
    fn only_a_full_page_has_a_next() {
        let page = ExportPage::parse("", 2).unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(page.next([a, b].into_iter()), Some(b));
        assert_eq!(page.next([a].into_iter()), None);
        assert_eq!(page.next(std::iter::empty()), None);
    }
}
