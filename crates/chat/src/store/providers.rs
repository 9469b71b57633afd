//! The `aiProviders` table: prices, limits, models and availability.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{now, schema::ai_providers};

/// A provider row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ai_providers, check_for_backend(diesel::pg::Pg))]
pub struct Provider {
    pub id: Uuid,
    pub name: String,
    pub input_token_cost_per_1k: BigDecimal,
    pub output_token_cost_per_1k: BigDecimal,
    pub requests_per_minute: Option<i32>,
    pub requests_per_day: Option<i32>,
    pub supported_models: serde_json::Value,
    pub is_active: Option<bool>,
    pub is_available: Option<bool>,
}

impl Provider {
    /// The model names it serves.
    pub fn models(&self) -> Vec<String> {
        self.supported_models
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Serves `model`.
    pub fn serves(&self, model: &str) -> bool {
        self.supported_models
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(model)))
    }
}

/// Active providers, by name (pipelines with other reads).
pub async fn active(mut conn: &AsyncPgConnection) -> QueryResult<Vec<Provider>> {
    ai_providers::table
        .filter(ai_providers::is_active.eq(true))
        .order(ai_providers::name)
        .select(Provider::as_select())
        .load(&mut conn)
        .await
}

/// A provider by name, active or not (the prices a call is charged at).
pub async fn by_name(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<Provider>> {
    ai_providers::table
        .filter(ai_providers::name.eq(name))
        .select(Provider::as_select())
        .first(conn)
        .await
        .optional()
}

/// Marks a provider available or not (the circuit breaker's verdict).
pub async fn set_available(
    conn: &mut AsyncPgConnection,
    name: &str,
    available: bool,
) -> QueryResult<usize> {
    diesel::update(ai_providers::table.filter(ai_providers::name.eq(name)))
        .set((
            ai_providers::is_available.eq(available),
            ai_providers::updated_at.eq(now()),
        ))
        .execute(conn)
        .await
}
