//! The pages of the Export* calls (analytics' backfill): keyset-paged by row
//! id, ascending. Not the users' lists (those page by `createdAt`, see
//! [`super::cursor`]).

use uuid::Uuid;

use super::FieldErrors;

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
        let mut errors = FieldErrors::new();
        let after = match after.trim() {
            "" => None,
            id => Uuid::parse_str(id)
                .map_err(|_| {
                    errors.insert("after".into(), "is not the next of a previous page".into())
                })
                .ok(),
        };
        let limit = match i64::from(limit) {
            0 => Some(DEFAULT_LIMIT),
            n @ 1..=MAX_LIMIT => Some(n),
            _ => {
                errors.insert("limit".into(), format!("must be between 1 and {MAX_LIMIT}"));
                None
            }
        };
        match limit {
            Some(limit) if errors.is_empty() => Ok(Self { after, limit }),
            _ => Err(errors),
        }
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
        assert_eq!(ExportPage::parse("", 1).map(|p| p.limit), Ok(1));
        let refused = ExportPage::parse("nope", 1001).unwrap_err();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused.contains_key("after") && refused.contains_key("limit"));
    }

    #[test]
    fn only_a_full_page_has_a_next() {
        let page = ExportPage::parse("", 2).unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(page.next([a, b].into_iter()), Some(b));
        assert_eq!(page.next([a].into_iter()), None);
        assert_eq!(page.next(std::iter::empty::<Uuid>()), None);
    }
}
