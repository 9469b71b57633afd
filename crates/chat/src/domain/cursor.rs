//! Opaque pagination cursors: the sort key of the last item returned
//! (`createdAt` in microseconds and the id, which breaks ties), base64url.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDateTime};
use uuid::Uuid;

/// Where a page continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: NaiveDateTime,
    pub id: Uuid,
}

impl Cursor {
    /// The cursor text.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.and_utc().timestamp_micros(),
            self.id
        ))
    }

    /// Reads a cursor a client sent back; `Err` for anything we did not make.
    pub fn decode(text: &str) -> Result<Self, String> {
        let bad = || "is not a cursor from this API".to_owned();
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let created_at = DateTime::from_timestamp_micros(micros)
            .ok_or_else(bad)?
            .naive_utc();
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Self { created_at, id })
    }
}

/// A page size from `?limit=`: 1..=100, default 20.
pub fn page_size(limit: u32) -> Result<i64, String> {
    match limit {
        0 => Ok(20),
        1..=100 => Ok(i64::from(limit)),
        _ => Err("must be between 1 and 100".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_140_000_123_456)
                .unwrap()
                .naive_utc(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "nope",
            "!!!",
            &URL_SAFE_NO_PAD.encode("12:not-a-uuid"),
            &URL_SAFE_NO_PAD.encode("x:y"),
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
}
