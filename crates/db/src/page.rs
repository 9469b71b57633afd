//! Cursor pagination as every service pages its lists: a page size from
//! the wire's `limit`, and an opaque cursor, the sort key of the last item
//! returned (`createdAt` in microseconds, and the id, which breaks ties),
//! base64url. The seed leaves `createdAt` nullable; a row without one says
//! so in its cursor (`-`), and a list whose rows always have one refuses
//! such a cursor. The `Export*` calls of analytics' backfill page by row
//! id instead ([`ExportPage`]).

use std::collections::BTreeMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDateTime};
use uuid::Uuid;

/// Where a page continues: after the item with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Option<NaiveDateTime>,
    pub id: Uuid,
}

/// The page size when `?limit=` is absent.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// The largest page.
pub const MAX_PAGE_SIZE: u32 = 100;

impl Cursor {
    /// The cursor text.
    pub fn encode(&self) -> String {
        let at = self.created_at.map_or_else(
            || "-".to_owned(),
            |t| t.and_utc().timestamp_micros().to_string(),
        );
        URL_SAFE_NO_PAD.encode(format!("{at}:{}", self.id))
    }

    /// Reads a cursor a client sent back; `Err` for anything we did not make.
    pub fn decode(text: &str) -> Result<Self, String> {
        let bad = || "is not a cursor from this API".to_owned();
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (at, id) = raw.split_once(':').ok_or_else(bad)?;
        let created_at = if at == "-" {
            None
        } else {
            let micros: i64 = at.parse().map_err(|_| bad())?;
            Some(
                DateTime::from_timestamp_micros(micros)
                    .ok_or_else(bad)?
                    .naive_utc(),
            )
        };
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Self { created_at, id })
    }
}

/// A page size from the wire's `limit`: 1..=100, and 0 (absent) for the
/// default.
pub fn page_size(limit: u32) -> Result<i64, String> {
    match limit {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=MAX_PAGE_SIZE => Ok(i64::from(limit)),
        _ => Err(format!("must be between 1 and {MAX_PAGE_SIZE}")),
    }
}

/// A page request, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: i64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// `limit` and `cursor` as they came (`cursor` empty: the first page);
    /// the errors name the fields.
    pub fn parse(limit: u32, cursor: &str) -> Result<Self, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let size = page_size(limit)
            .map_err(|e| errors.insert("limit".into(), e))
            .ok();
        let after = if cursor.is_empty() {
            None
        } else {
            Cursor::decode(cursor)
                .map_err(|e| errors.insert("cursor".into(), e))
                .ok()
        };
        match size {
            Some(size) if errors.is_empty() => Ok(Self { size, after }),
            _ => Err(errors),
        }
    }
}

/// Trims the extra row a page query fetched (it asks for `size + 1`) and
/// returns the cursor of the page's last item when more follow.
pub fn next_cursor<T>(items: &mut Vec<T>, size: i64, key: impl Fn(&T) -> Cursor) -> Option<String> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if items.len() <= size {
        return None;
    }
    items.truncate(size);
    items.last().map(|last| key(last).encode())
}

/// The page size of an `Export*` call (analytics' backfill) when the
/// request names none.
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
    pub fn parse(after: &str, limit: u32) -> Result<Self, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
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
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            created_at: Some(
                DateTime::from_timestamp_micros(1_764_140_000_123_456)
                    .unwrap()
                    .naive_utc(),
            ),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let without_time = Cursor {
            created_at: None,
            id: Uuid::now_v7(),
        };
        assert_eq!(
            Cursor::decode(&without_time.encode()).unwrap(),
            without_time
        );
        for bad in [
            "",
            "nope",
            "!!!",
            &URL_SAFE_NO_PAD.encode("12:not-a-uuid"),
            &URL_SAFE_NO_PAD.encode("x:y"),
            &URL_SAFE_NO_PAD.encode(format!("--:{}", Uuid::now_v7())),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0), Ok(20));
        assert_eq!(page_size(1), Ok(1));
        assert_eq!(page_size(100), Ok(100));
        assert!(page_size(101).is_err());
    }

    #[test]
    fn a_page_request_names_each_bad_field() {
        let errors = PageRequest::parse(101, "garbage!").unwrap_err();
        assert!(errors.contains_key("limit") && errors.contains_key("cursor"));
        assert_eq!(
            PageRequest::parse(0, "").unwrap(),
            PageRequest {
                size: 20,
                after: None
            }
        );
    }

    #[test]
    fn the_next_cursor_is_the_last_kept_item() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let key = |id: &Uuid| Cursor {
            created_at: None,
            id: *id,
        };
        let mut page = ids.clone();
        let next = next_cursor(&mut page, 2, key).unwrap();
        assert_eq!(page, ids[..2]);
        assert_eq!(Cursor::decode(&next).unwrap().id, ids[1]);
        let mut last = ids[..2].to_vec();
        assert_eq!(next_cursor(&mut last, 2, key), None);
    }
}

#[cfg(test)]
mod export_tests {
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
