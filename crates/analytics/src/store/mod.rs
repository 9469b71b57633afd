//! The analytics database: its schema, the writes of the read models
//! ([`apply`]), the figures ([`queries`]), backfill's cursors
//! ([`cursors`]) and the monthly partitions.

pub mod apply;
pub mod cursors;
pub mod queries;
pub mod schema;

use chrono::NaiveDate;
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The partitioned tables (monthly ranges).
pub const PARTITIONED: [&str; 4] = ["userEvents", "chatAnalytics", "tokenUsage", "messages"];

/// Makes sure the monthly partitions of every partitioned table exist from
/// `first` for `months` months; returns how many it created.
pub async fn ensure_partitions(
    conn: &mut AsyncPgConnection,
    first: NaiveDate,
    months: i32,
) -> QueryResult<i32> {
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        created: i32,
    }
    let mut created = 0;
    for table in PARTITIONED {
        let row: Created =
            diesel::sql_query("SELECT create_monthly_partitions($1, $2, $3) AS created")
                .bind::<diesel::sql_types::Text, _>(table)
                .bind::<diesel::sql_types::Date, _>(first)
                .bind::<diesel::sql_types::Integer, _>(months)
                .get_result(conn)
                .await?;
        created += row.created;
    }
    Ok(created)
}
