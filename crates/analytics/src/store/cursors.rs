//! Where `analytics backfill` is in each source (`backfillCursors`).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::backfill_cursors;

/// One source's progress.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = backfill_cursors)]
pub struct Cursor {
    pub source: String,
    /// The last id applied; empty: none yet.
    pub after: String,
    /// Rows applied in this run.
    pub rows: i64,
    pub finished_at: Option<chrono::NaiveDateTime>,
}

/// Every cursor.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Cursor>> {
    backfill_cursors::table
        .select(Cursor::as_select())
        .order(backfill_cursors::source)
        .load(conn)
        .await
}

/// The cursor of `source`, created at its start if missing.
pub async fn get(conn: &mut AsyncPgConnection, source: &str) -> QueryResult<Cursor> {
    diesel::insert_into(backfill_cursors::table)
        .values(backfill_cursors::source.eq(source))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    backfill_cursors::table
        .find(source)
        .select(Cursor::as_select())
        .first(conn)
        .await
}

/// Records that the page ending at `after` (`rows` rows) was applied; with
/// `finished`, that it was the source's last.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    source: &str,
    after: &str,
    rows: i64,
    finished: bool,
) -> QueryResult<()> {
    diesel::update(backfill_cursors::table.find(source))
        .set((
            backfill_cursors::after.eq(after),
            backfill_cursors::rows.eq(backfill_cursors::rows + rows),
            backfill_cursors::finished_at.eq(finished.then(|| chrono::Utc::now().naive_utc())),
            backfill_cursors::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets every cursor: the next run starts each source from its start.
pub async fn reset(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(backfill_cursors::table).execute(conn).await
}
