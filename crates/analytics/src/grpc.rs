//! The `analytics.v1.Analytics` gRPC service: validates the arguments,
//! reads the figures ([`crate::store::queries`]) and translates them to
//! proto; nothing else. A bad argument is INVALID_ARGUMENT
//! `validation_failed` with the field's error in the JSON details, as the
//! other services answer.

use aichat_proto::analytics::v1::{self as pb, analytics_server::Analytics};
use aichat_proto::{problem_status, timestamp};
use chrono::{Datelike, NaiveDate, Utc};
use tonic::{Code, Request, Response, Status};

use crate::store::queries;

type Answer<T> = Result<Response<T>, Status>;

/// The longest window a call may ask for, in days.
pub const MAX_DAYS: u32 = 366;
/// The most top users a call may ask for.
pub const MAX_LIMIT: u32 = 100;

/// The gRPC face of the read models.
pub struct AnalyticsService {
    pool: aichat_db::Pool,
}

impl AnalyticsService {
    pub fn new(pool: aichat_db::Pool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> Result<aichat_db::PooledConnection, Status> {
        self.pool
            .get()
            .await
            .map_err(|e| aichat_proto::unavailable(&anyhow::Error::new(e)))
    }
}

fn invalid(field: &str, message: &str) -> Status {
    problem_status(
        Code::InvalidArgument,
        "validation_failed",
        "some fields are invalid",
        Some(serde_json::json!({ field: message })),
    )
}

fn query_failed(error: diesel::result::Error) -> Status {
    if aichat_db::is_outage(&error) {
        aichat_proto::unavailable(&anyhow::Error::new(error))
    } else {
        aichat_proto::internal(&anyhow::Error::new(error))
    }
}

/// `days`: 0 is the default, 30; otherwise 1..=366.
pub fn days(days: u32) -> Result<i32, Status> {
    match days {
        0 => Ok(30),
        1..=MAX_DAYS => Ok(i32::try_from(days).unwrap_or(30)),
        _ => Err(invalid("days", "must be between 1 and 366")),
    }
}

/// `limit`: 0 is the default, 10; otherwise 1..=100.
pub fn limit(limit: u32) -> Result<i64, Status> {
    match limit {
        0 => Ok(10),
        1..=MAX_LIMIT => Ok(i64::from(limit)),
        _ => Err(invalid("limit", "must be between 1 and 100")),
    }
}

/// A page request: `limit` 0 (the default, 20) or 1..=1000, `cursor`
/// empty (the first page) or a previous page's `next_cursor`.
pub fn page(limit: u32, cursor: &str) -> Result<queries::PageRequest, Status> {
    let size = match i64::from(limit) {
        0 => queries::DEFAULT_PAGE_SIZE,
        n @ 1..=queries::MAX_PAGE_SIZE => n,
        _ => return Err(invalid("limit", "must be between 1 and 1000")),
    };
    Ok(queries::PageRequest {
        size,
        cursor: Some(cursor.to_owned()).filter(|c| !c.is_empty()),
    })
}

fn bad_cursor(_: queries::BadCursor) -> Status {
    invalid("cursor", "is not a cursor of this list")
}

/// `month`, `YYYY-MM` (empty: this UTC month), as its first day.
pub fn month(month: &str) -> Result<NaiveDate, Status> {
    if month.is_empty() {
        let today = Utc::now().date_naive();
        return NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
            .ok_or_else(|| invalid("month", "is not a month"));
    }
    let valid = month.len() == 7 && month.as_bytes().get(4) == Some(&b'-');
    valid
        .then(|| NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| invalid("month", "must be a month, YYYY-MM"))
}

/// `from` and `to`, `YYYY-MM-DD`, `from <= to`, at most 366 days.
pub fn range(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), Status> {
    let day = |value: &str, field: &str| {
        (value.len() == 10)
            .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
            .flatten()
            .ok_or_else(|| invalid(field, "must be a date, YYYY-MM-DD"))
    };
    let (from, to) = (day(from, "from")?, day(to, "to")?);
    if to < from {
        return Err(invalid("to", "must not be before from"));
    }
    if (to - from).num_days() >= i64::from(MAX_DAYS) {
        return Err(invalid("to", "the range is at most 366 days"));
    }
    Ok((from, to))
}

fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[tonic::async_trait]
impl Analytics for AnalyticsService {
    async fn signups(&self, request: Request<pb::DaysRequest>) -> Answer<pb::SignupList> {
        let days = days(request.into_inner().days)?;
        let rows = queries::signups(&mut *self.conn().await?, days)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::SignupList {
            items: rows
                .into_iter()
                .map(|r| pb::SignupDay {
                    date: date(r.date),
                    new_users: r.new_users,
                })
                .collect(),
        }))
    }

    async fn users_by_plan(&self, _: Request<pb::Empty>) -> Answer<pb::PlanCountList> {
        let rows = queries::users_by_plan(&mut *self.conn().await?)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::PlanCountList {
            items: rows
                .into_iter()
                .map(|r| pb::PlanCount {
                    plan_tier: r.plan_tier,
                    count: r.count,
                })
                .collect(),
        }))
    }

    async fn token_usage_by_user(
        &self,
        request: Request<pb::MonthRequest>,
    ) -> Answer<pb::UserUsageList> {
        let request = request.into_inner();
        let month = month(&request.month)?;
        let page = page(request.limit, &request.cursor)?;
        let rows = queries::token_usage_by_user(&mut *self.conn().await?, month, &page)
            .await
            .map_err(query_failed)?
            .map_err(bad_cursor)?;
        Ok(Response::new(pb::UserUsageList {
            month: month.format("%Y-%m").to_string(),
            next_cursor: rows.next.unwrap_or_default(),
            items: rows
                .items
                .into_iter()
                .map(|r| pb::UserUsage {
                    user_id: r.user_id.to_string(),
                    total_tokens: r.total_tokens,
                    total_cost: r.total_cost,
                })
                .collect(),
        }))
    }

    async fn token_usage_by_model(
        &self,
        request: Request<pb::MonthRequest>,
    ) -> Answer<pb::ModelUsageList> {
        let month = month(&request.into_inner().month)?;
        let rows = queries::token_usage_by_model(&mut *self.conn().await?, month)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::ModelUsageList {
            month: month.format("%Y-%m").to_string(),
            items: rows
                .into_iter()
                .map(|r| pb::ModelUsage {
                    model: r.model,
                    usage_count: r.usage_count,
                    total_tokens: r.total_tokens,
                    avg_tokens: r.avg_tokens,
                    total_cost: r.total_cost,
                })
                .collect(),
        }))
    }

    async fn subscriptions(&self, _: Request<pb::Empty>) -> Answer<pb::PlanSubscriptionList> {
        let rows = queries::subscriptions(&mut *self.conn().await?)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::PlanSubscriptionList {
            items: rows
                .into_iter()
                .map(|r| pb::PlanSubscriptions {
                    plan: r.plan,
                    subscription_count: r.subscription_count,
                    user_count: r.user_count,
                })
                .collect(),
        }))
    }

    async fn mrr(&self, _: Request<pb::Empty>) -> Answer<pb::MrrReport> {
        let mrr = queries::mrr(&mut *self.conn().await?)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::MrrReport {
            mrr,
            currency: "USD".to_owned(),
        }))
    }

    async fn top_users(&self, request: Request<pb::TopUsersRequest>) -> Answer<pb::TopUserList> {
        let request = request.into_inner();
        let (days, limit) = (days(request.days)?, limit(request.limit)?);
        let rows = queries::top_users(&mut *self.conn().await?, days, limit)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::TopUserList {
            items: rows
                .into_iter()
                .map(|r| pb::TopUser {
                    user_id: r.user_id.to_string(),
                    conversation_count: r.conversation_count,
                    total_tokens: r.total_tokens,
                })
                .collect(),
        }))
    }

    async fn conversation_length(
        &self,
        request: Request<pb::DaysRequest>,
    ) -> Answer<pb::ConversationLengthReport> {
        let days = days(request.into_inner().days)?;
        let row = queries::conversation_length(&mut *self.conn().await?, days)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::ConversationLengthReport {
            avg_messages: row.avg_messages.unwrap_or_default(),
            avg_tokens: row.avg_tokens.unwrap_or_default(),
        }))
    }

    async fn overdue_invoices(
        &self,
        request: Request<pb::PageRequest>,
    ) -> Answer<pb::OverdueInvoiceList> {
        let request = request.into_inner();
        let page = page(request.limit, &request.cursor)?;
        let rows = queries::overdue_invoices(&mut *self.conn().await?, &page)
            .await
            .map_err(query_failed)?
            .map_err(bad_cursor)?;
        Ok(Response::new(pb::OverdueInvoiceList {
            next_cursor: rows.next.unwrap_or_default(),
            items: rows
                .items
                .into_iter()
                .map(|r| pb::OverdueInvoice {
                    id: r.id.to_string(),
                    invoice_number: r.invoice_number,
                    user_id: r.user_id.to_string(),
                    total: r.total,
                    due_date: date(r.due_date),
                })
                .collect(),
        }))
    }

    async fn lifetime_value(
        &self,
        request: Request<pb::PageRequest>,
    ) -> Answer<pb::LifetimeValueList> {
        let request = request.into_inner();
        let page = page(request.limit, &request.cursor)?;
        let rows = queries::lifetime_value(&mut *self.conn().await?, &page)
            .await
            .map_err(query_failed)?
            .map_err(bad_cursor)?;
        Ok(Response::new(pb::LifetimeValueList {
            next_cursor: rows.next.unwrap_or_default(),
            items: rows
                .items
                .into_iter()
                .map(|r| pb::LifetimeValue {
                    user_id: r.user_id.to_string(),
                    amount: r.amount,
                    payment_count: r.payment_count,
                    total_spent: r.total_spent,
                    signup_date: Some(timestamp(r.signup_date.and_utc())),
                })
                .collect(),
        }))
    }

    async fn daily_series(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Answer<pb::DailySeriesList> {
        let request = request.into_inner();
        let (from, to) = range(&request.from, &request.to)?;
        let rows = queries::daily_series(&mut *self.conn().await?, from, to)
            .await
            .map_err(query_failed)?;
        Ok(Response::new(pb::DailySeriesList {
            items: rows
                .into_iter()
                .map(|r| pb::DailyPoint {
                    date: date(r.date),
                    signups: r.signups,
                    messages: r.messages,
                    tokens: r.tokens,
                    cost: r.cost,
                    revenue: r.revenue,
                    mrr: r.mrr,
                    new_subscriptions: r.new_subscriptions,
                    churned_subscriptions: r.churned_subscriptions,
                })
                .collect(),
        }))
    }
}
