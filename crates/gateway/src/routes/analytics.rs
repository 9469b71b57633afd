//! The admin endpoints of API.md ("Analytics"): the operators' figures,
//! answered by the analytics service (`analytics.v1`).
//!
//! Only admins: the [`Admin`] extractor refuses a missing or bad token (401)
//! and a caller without role `admin` (403) before the query is read or
//! analytics called. The query is checked here, every field at once (422
//! `validation_failed`), so a bad one never reaches the service. Each route
//! answers JSON, or with `Accept: text/csv` the same rows as a CSV download
//! ([`answer`]): one implementation for both formats.
//!
//! The unbounded lists (token usage by user, overdue invoices, lifetime
//! value) come a page at a time (`?limit=` 1..100, default 20, `?cursor=`
//! the `nextCursor` of the previous page; API.md "Pagination"); their CSV
//! holds every row: the route pages through the service
//! ([`CSV_PAGE`] rows a call) and ignores `limit` and `cursor`.

use std::collections::BTreeMap;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use aichat_proto::analytics::v1 as pb;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{billing::time, grpc};
use crate::{
    auth::Admin,
    csv::{self, Row},
    problem::{Code, Problem, ProblemBody},
    state::AppState,
};

type Data = web::Data<AppState>;
type Answer = Result<HttpResponse, Problem>;

/// The longest span of `daily`, and the most `days` of the others.
const MAX_DAYS: u32 = 366;
/// The most `top-users` rows.
const MAX_LIMIT: u32 = 100;
/// The days of `daily` when neither end is given (today included).
const DEFAULT_RANGE_DAYS: u64 = 30;
/// The page size a CSV export of a paged list asks the service for.
const CSV_PAGE: u32 = 1000;

// ---- the answers ------------------------------------------------------

/// New users of one UTC day.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignupDay {
    #[schema(format = Date)]
    pub date: String,
    pub new_users: i64,
}

/// Newest day first; a day without signups is there with 0.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupList {
    pub items: Vec<SignupDay>,
}

/// Active (not deleted) users on a plan tier.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanCount {
    /// `FREE`, `PLUS` or `PRO`.
    pub plan_tier: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanCountList {
    pub items: Vec<PlanCount>,
}

/// One user's tokens and cost in a billing month.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUsage {
    #[schema(format = Uuid)]
    pub user_id: String,
    pub total_tokens: i64,
    /// USD, a decimal string.
    pub total_cost: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUsageList {
    /// The month answered, `YYYY-MM`.
    pub month: String,
    /// Most tokens first (then by user id).
    pub items: Vec<UserUsage>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One model's use in a billing month.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub model: String,
    pub usage_count: i64,
    pub total_tokens: i64,
    /// A decimal string.
    pub avg_tokens: String,
    /// USD, a decimal string (not in the seed's query: the dashboard's
    /// cost by model).
    pub total_cost: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelUsageList {
    /// The month answered, `YYYY-MM`.
    pub month: String,
    /// Most tokens first.
    pub items: Vec<ModelUsage>,
}

/// Active subscriptions of a plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSubscriptions {
    /// The plan's name.
    pub plan: String,
    pub subscription_count: i64,
    pub user_count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanSubscriptionList {
    pub items: Vec<PlanSubscriptions>,
}

/// Monthly recurring revenue of the active subscriptions whose period holds
/// today (a yearly one counts as its yearly price / 12).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Mrr {
    /// A decimal string; `"0.00"` without subscriptions.
    pub mrr: String,
    /// ISO 4217, upper case.
    pub currency: String,
}

/// One user's tokens in the conversations they started in the window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopUser {
    #[schema(format = Uuid)]
    pub user_id: String,
    pub conversation_count: i64,
    pub total_tokens: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopUserList {
    /// Most tokens first.
    pub items: Vec<TopUser>,
}

/// Average length of the conversations started in the window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationLength {
    /// A decimal string; `null` when no conversation started in the window.
    pub avg_messages: Option<String>,
    /// A decimal string; `null` when no conversation started in the window.
    pub avg_tokens: Option<String>,
}

/// An open invoice past its due date.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverdueInvoice {
    /// The invoice's id.
    #[schema(format = Uuid)]
    pub id: String,
    pub invoice_number: String,
    #[schema(format = Uuid)]
    pub user_id: String,
    /// A decimal string.
    pub total: String,
    #[schema(format = Date)]
    pub due_date: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverdueInvoiceList {
    /// Oldest due first (then by number).
    pub items: Vec<OverdueInvoice>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A user's succeeded payments (per amount, as the seed groups them).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifetimeValue {
    #[schema(format = Uuid)]
    pub user_id: String,
    /// The payment amount the seed's query groups by, a decimal string.
    pub amount: String,
    pub payment_count: i64,
    /// A decimal string.
    pub total_spent: String,
    pub signup_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifetimeValueList {
    /// Most spent first (then by user id and amount).
    pub items: Vec<LifetimeValue>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One UTC day of the dashboard's charts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyPoint {
    #[schema(format = Date)]
    pub date: String,
    pub signups: i64,
    pub messages: i64,
    pub tokens: i64,
    /// USD, decimal strings.
    pub cost: String,
    pub revenue: String,
    /// The MRR at the end of the day.
    pub mrr: String,
    pub new_subscriptions: i64,
    pub churned_subscriptions: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DailySeries {
    /// Every day of the range, oldest first; a day without rows is there
    /// with zeros.
    pub items: Vec<DailyPoint>,
}

// ---- the same, as CSV rows -------------------------------------------

impl Row for SignupDay {
    const COLUMNS: &'static [&'static str] = &["date", "newUsers"];
    fn cells(&self) -> Vec<String> {
        vec![self.date.clone(), self.new_users.to_string()]
    }
}

impl Row for PlanCount {
    const COLUMNS: &'static [&'static str] = &["planTier", "count"];
    fn cells(&self) -> Vec<String> {
        vec![self.plan_tier.clone(), self.count.to_string()]
    }
}

impl Row for UserUsage {
    const COLUMNS: &'static [&'static str] = &["userId", "totalTokens", "totalCost"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.user_id.clone(),
            self.total_tokens.to_string(),
            self.total_cost.clone(),
        ]
    }
}

impl Row for ModelUsage {
    const COLUMNS: &'static [&'static str] = &[
        "model",
        "usageCount",
        "totalTokens",
        "avgTokens",
        "totalCost",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.model.clone(),
            self.usage_count.to_string(),
            self.total_tokens.to_string(),
            self.avg_tokens.clone(),
            self.total_cost.clone(),
        ]
    }
}

impl Row for PlanSubscriptions {
    const COLUMNS: &'static [&'static str] = &["plan", "subscriptionCount", "userCount"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.plan.clone(),
            self.subscription_count.to_string(),
            self.user_count.to_string(),
        ]
    }
}

impl Row for Mrr {
    const COLUMNS: &'static [&'static str] = &["mrr", "currency"];
    fn cells(&self) -> Vec<String> {
        vec![self.mrr.clone(), self.currency.clone()]
    }
}

impl Row for TopUser {
    const COLUMNS: &'static [&'static str] = &["userId", "conversationCount", "totalTokens"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.user_id.clone(),
            self.conversation_count.to_string(),
            self.total_tokens.to_string(),
        ]
    }
}

impl Row for ConversationLength {
    const COLUMNS: &'static [&'static str] = &["avgMessages", "avgTokens"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.avg_messages.clone().unwrap_or_default(),
            self.avg_tokens.clone().unwrap_or_default(),
        ]
    }
}

impl Row for OverdueInvoice {
    const COLUMNS: &'static [&'static str] = &["id", "invoiceNumber", "userId", "total", "dueDate"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.invoice_number.clone(),
            self.user_id.clone(),
            self.total.clone(),
            self.due_date.clone(),
        ]
    }
}

impl Row for LifetimeValue {
    const COLUMNS: &'static [&'static str] = &[
        "userId",
        "amount",
        "paymentCount",
        "totalSpent",
        "signupDate",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.user_id.clone(),
            self.amount.clone(),
            self.payment_count.to_string(),
            self.total_spent.clone(),
            self.signup_date
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        ]
    }
}

impl Row for DailyPoint {
    const COLUMNS: &'static [&'static str] = &[
        "date",
        "signups",
        "messages",
        "tokens",
        "cost",
        "revenue",
        "mrr",
        "newSubscriptions",
        "churnedSubscriptions",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.date.clone(),
            self.signups.to_string(),
            self.messages.to_string(),
            self.tokens.to_string(),
            self.cost.clone(),
            self.revenue.clone(),
            self.mrr.clone(),
            self.new_subscriptions.to_string(),
            self.churned_subscriptions.to_string(),
        ]
    }
}

/// The answer in the format the client asked for: `body` as JSON, or with
/// `Accept: text/csv` the `rows` as a CSV attachment named
/// `<name>-<today>.csv`.
/// Whether the caller asked for the CSV.
fn wants_csv(req: &HttpRequest) -> bool {
    csv::wants_csv(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A paged list's items and the cursor of the page after: one page of
/// `limit` rows at `cursor`, or, for the CSV, every page ([`CSV_PAGE`] rows
/// a call; `limit` and `cursor` ignored, no cursor after). `fetch(limit,
/// cursor)` is one call to the service: a page's items and its next cursor
/// (empty after the last page).
async fn paged<T, F, Fut>(
    csv: bool,
    limit: u32,
    cursor: Option<String>,
    mut fetch: F,
) -> Result<(Vec<T>, Option<String>), Problem>
where
    F: FnMut(u32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Problem>>,
{
    let mut items = Vec::new();
    let mut cursor = if csv {
        String::new()
    } else {
        cursor.unwrap_or_default()
    };
    loop {
        let (page, next) = fetch(if csv { CSV_PAGE } else { limit }, cursor).await?;
        items.extend(page);
        match Some(next).filter(|c| !c.is_empty()) {
            Some(next) if csv => cursor = next,
            next => return Ok((items, next)),
        }
    }
}

/// `limit` of a page: 1..100; absent: 0, the service's 20.
fn page_of(limit: Option<&str>) -> Result<u32, Problem> {
    let mut fields = Fields::default();
    let limit = fields.check("limit", limit_of(limit));
    fields.done()?;
    Ok(limit.unwrap_or_default())
}

pub fn answer<B: Serialize, T: Row>(
    req: &HttpRequest,
    name: &str,
    body: &B,
    rows: &[T],
) -> HttpResponse {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let mut response = if csv::wants_csv(accept) {
        let filename = format!("{name}-{}.csv", Utc::now().format("%Y-%m-%d"));
        let mut response = HttpResponse::Ok();
        response
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ));
        response.body(csv::document(rows))
    } else {
        HttpResponse::Ok().json(body)
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

// ---- the query ----------------------------------------------------------

/// `?days=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// How many UTC days up to today, today included: 1..366, default 30.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 366, nullable = false)]
    pub days: Option<String>,
}

/// `?month=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// The billing month, `YYYY-MM`; default this UTC month.
    #[param(nullable = false, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
}

/// `?month=&limit=&cursor=` of the token usage by user.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthPageQuery {
    /// The billing month, `YYYY-MM`; default this UTC month.
    #[param(nullable = false, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
    /// Rows per page: 1..100, default 20 (the CSV has every row).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(nullable = false, pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// `?limit=&cursor=` of a paged admin list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminPageQuery {
    /// Rows per page: 1..100, default 20 (the CSV has every row).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(nullable = false, pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// `?days=&limit=` of the most active users.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopUsersQuery {
    /// Conversations started in the last this many UTC days: 1..366,
    /// default 30.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 366, nullable = false)]
    pub days: Option<String>,
    /// How many users: 1..100, default 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<String>,
}

/// `?from=&to=` of the daily series.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First UTC day, `YYYY-MM-DD`; default 29 days before `to`.
    #[param(value_type = Option<String>, format = Date, nullable = false)]
    pub from: Option<String>,
    /// Last UTC day (included), `YYYY-MM-DD`, at most 365 days after
    /// `from`; default today.
    #[param(value_type = Option<String>, format = Date, nullable = false)]
    pub to: Option<String>,
}

/// The query string as `T`; all its fields are text, so only a malformed
/// string (or a field given twice) fails.
fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, Problem> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| Problem::new(Code::ValidationFailed, format!("Bad query string: {e}")))
}

/// The field errors of one query, gathered so all are told at once.
#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Fields {
    fn check<T>(&mut self, name: &str, parsed: Result<T, &str>) -> Option<T> {
        parsed
            .map_err(|reason| {
                self.0.insert(name.to_owned(), reason.to_owned());
            })
            .ok()
    }

    fn done(self) -> Result<(), Problem> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.0))
        }
    }
}

/// A count in `1..=max`; absent: 0, the service's default.
fn bounded(raw: Option<&str>, max: u32, reason: &'static str) -> Result<u32, &'static str> {
    match raw {
        None => Ok(0),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(reason),
    }
}

/// `days`: 1..366; absent: 0 (the service's default, 30).
pub fn days_of(raw: Option<&str>) -> Result<u32, &'static str> {
    bounded(raw, MAX_DAYS, "must be a whole number between 1 and 366")
}

/// `limit`: 1..100; absent: 0 (the service's default: 10 top users, a
/// page of 20).
pub fn limit_of(raw: Option<&str>) -> Result<u32, &'static str> {
    bounded(raw, MAX_LIMIT, "must be a whole number between 1 and 100")
}

/// `month`: `YYYY-MM`; absent: empty (the service's default, this month).
pub fn month_of(raw: Option<&str>) -> Result<String, &'static str> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    let ok = raw.len() == 7
        && raw.as_bytes().get(4) == Some(&b'-')
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
        && raw
            .get(5..)
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| (1..=12).contains(&m));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("must be a month as YYYY-MM")
    }
}

/// A UTC day as `YYYY-MM-DD` (exactly: no sign, no shorter fields).
fn date_of(raw: &str) -> Result<NaiveDate, &'static str> {
    if raw.len() != 10 {
        return Err("must be a date as YYYY-MM-DD");
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| "must be a date as YYYY-MM-DD")
}

/// `from`/`to` of the daily series, both included, at most 366 days; the
/// defaults end today and span 30 days.
pub fn range_of(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), BTreeMap<String, String>> {
    let mut fields = Fields::default();
    let to = match to {
        Some(raw) => fields.check("to", date_of(raw)),
        None => Some(today),
    };
    let from = match from {
        Some(raw) => fields.check("from", date_of(raw)),
        None => to.map(|to| to - chrono::Days::new(DEFAULT_RANGE_DAYS - 1)),
    };
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            fields.check::<()>("to", Err("must not be before from"));
        } else if (to - from).num_days() >= i64::from(MAX_DAYS) {
            fields.check::<()>("to", Err("at most 366 days after from, both included"));
        }
    }
    match (from, to) {
        (Some(from), Some(to)) if fields.0.is_empty() => Ok((from, to)),
        _ => Err(fields.0),
    }
}

// ---- the routes ----------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/admin/analytics/signups", tag = "analytics", security(("bearer" = [])), params(DaysQuery),
    responses(
        (status = 200, description = "New users per UTC day, newest first (a day without signups has 0); with `Accept: text/csv` the same rows as a CSV attachment", content((SignupList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `days` is not a number in 1..366"),
    ))]
pub async fn signups(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: DaysQuery = query(&req)?;
    let days = days_of(q.days.as_deref()).map_err(|r| Problem::field("days", r))?;
    let list = state
        .analytics
        .clone()
        .signups(grpc(&req, pb::DaysRequest { days }))
        .await?
        .into_inner();
    let body = SignupList {
        items: list
            .items
            .into_iter()
            .map(|d| SignupDay {
                date: d.date,
                new_users: d.new_users,
            })
            .collect(),
    };
    Ok(answer(&req, "signups", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/users-by-plan", tag = "analytics", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active users per plan tier; with `Accept: text/csv` as a CSV attachment", content((PlanCountList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
    ))]
pub async fn users_by_plan(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let list = state
        .analytics
        .clone()
        .users_by_plan(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let body = PlanCountList {
        items: list
            .items
            .into_iter()
            .map(|p| PlanCount {
                plan_tier: p.plan_tier,
                count: p.count,
            })
            .collect(),
    };
    Ok(answer(&req, "users-by-plan", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/token-usage/users", tag = "analytics", security(("bearer" = [])), params(MonthPageQuery),
    responses(
        (status = 200, description = "Tokens and cost per user in the month, most tokens first, a page at a time; with `Accept: text/csv` every row (no paging) as a CSV attachment", content((UserUsageList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `month` is not `YYYY-MM`, `limit` not 1..100, or `cursor` not from this list"),
    ))]
pub async fn token_usage_by_user(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: MonthPageQuery = query(&req)?;
    let mut fields = Fields::default();
    let month = fields.check("month", month_of(q.month.as_deref()));
    let limit = fields.check("limit", limit_of(q.limit.as_deref()));
    fields.done()?;
    let (month, limit) = (month.unwrap_or_default(), limit.unwrap_or_default());
    // The month as the service spells it (each page says it).
    let answered = std::cell::RefCell::new(String::new());
    let (items, next_cursor) = paged(wants_csv(&req), limit, q.cursor, |limit, cursor| {
        let mut analytics = state.analytics.clone();
        let request = grpc(
            &req,
            pb::MonthRequest {
                month: month.clone(),
                limit,
                cursor,
            },
        );
        let answered = &answered;
        async move {
            let page = analytics.token_usage_by_user(request).await?.into_inner();
            *answered.borrow_mut() = page.month;
            let items = page.items.into_iter().map(|u| UserUsage {
                user_id: u.user_id,
                total_tokens: u.total_tokens,
                total_cost: u.total_cost,
            });
            Ok((items.collect(), page.next_cursor))
        }
    })
    .await?;
    let body = UserUsageList {
        month: answered.into_inner(),
        items,
        next_cursor,
    };
    Ok(answer(&req, "token-usage-users", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/token-usage/models", tag = "analytics", security(("bearer" = [])), params(MonthQuery),
    responses(
        (status = 200, description = "Calls, tokens, average tokens and cost per model in the month, most tokens first; with `Accept: text/csv` the items as a CSV attachment", content((ModelUsageList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `month` is not `YYYY-MM`"),
    ))]
pub async fn token_usage_by_model(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: MonthQuery = query(&req)?;
    let month = month_of(q.month.as_deref()).map_err(|r| Problem::field("month", r))?;
    let list = state
        .analytics
        .clone()
        .token_usage_by_model(grpc(
            &req,
            pb::MonthRequest {
                month,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let body = ModelUsageList {
        month: list.month,
        items: list
            .items
            .into_iter()
            .map(|m| ModelUsage {
                model: m.model,
                usage_count: m.usage_count,
                total_tokens: m.total_tokens,
                avg_tokens: m.avg_tokens,
                total_cost: m.total_cost,
            })
            .collect(),
    };
    Ok(answer(&req, "token-usage-models", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/subscriptions", tag = "analytics", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active subscriptions and their users per plan; with `Accept: text/csv` as a CSV attachment", content((PlanSubscriptionList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
    ))]
pub async fn subscriptions(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let list = state
        .analytics
        .clone()
        .subscriptions(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let body = PlanSubscriptionList {
        items: list
            .items
            .into_iter()
            .map(|s| PlanSubscriptions {
                plan: s.plan,
                subscription_count: s.subscription_count,
                user_count: s.user_count,
            })
            .collect(),
    };
    Ok(answer(&req, "subscriptions", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/mrr", tag = "analytics", security(("bearer" = [])),
    responses(
        (status = 200, description = "The monthly recurring revenue now; with `Accept: text/csv` one row", content((Mrr = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
    ))]
pub async fn mrr(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let report = state
        .analytics
        .clone()
        .mrr(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let body = Mrr {
        mrr: report.mrr,
        currency: report.currency,
    };
    Ok(answer(&req, "mrr", &body, std::slice::from_ref(&body)))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/top-users", tag = "analytics", security(("bearer" = [])), params(TopUsersQuery),
    responses(
        (status = 200, description = "The users with the most tokens in conversations started in the window; with `Accept: text/csv` as a CSV attachment", content((TopUserList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `days` (1..366) or `limit` (1..100)"),
    ))]
pub async fn top_users(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: TopUsersQuery = query(&req)?;
    let mut fields = Fields::default();
    let days = fields.check("days", days_of(q.days.as_deref()));
    let limit = fields.check("limit", limit_of(q.limit.as_deref()));
    fields.done()?;
    let list = state
        .analytics
        .clone()
        .top_users(grpc(
            &req,
            pb::TopUsersRequest {
                days: days.unwrap_or_default(),
                limit: limit.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    let body = TopUserList {
        items: list
            .items
            .into_iter()
            .map(|u| TopUser {
                user_id: u.user_id,
                conversation_count: u.conversation_count,
                total_tokens: u.total_tokens,
            })
            .collect(),
    };
    Ok(answer(&req, "top-users", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/conversation-length", tag = "analytics", security(("bearer" = [])), params(DaysQuery),
    responses(
        (status = 200, description = "Average messages and tokens of the conversations started in the window; with `Accept: text/csv` one row", content((ConversationLength = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `days` is not a number in 1..366"),
    ))]
pub async fn conversation_length(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: DaysQuery = query(&req)?;
    let days = days_of(q.days.as_deref()).map_err(|r| Problem::field("days", r))?;
    let report = state
        .analytics
        .clone()
        .conversation_length(grpc(&req, pb::DaysRequest { days }))
        .await?
        .into_inner();
    let body = ConversationLength {
        avg_messages: Some(report.avg_messages).filter(|s| !s.is_empty()),
        avg_tokens: Some(report.avg_tokens).filter(|s| !s.is_empty()),
    };
    Ok(answer(
        &req,
        "conversation-length",
        &body,
        std::slice::from_ref(&body),
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/overdue-invoices", tag = "analytics", security(("bearer" = [])), params(AdminPageQuery),
    responses(
        (status = 200, description = "Open invoices past their due date, oldest due first, a page at a time; with `Accept: text/csv` every row (no paging) as a CSV attachment", content((OverdueInvoiceList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `limit` is not 1..100, or `cursor` not from this list"),
    ))]
pub async fn overdue_invoices(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: AdminPageQuery = query(&req)?;
    let limit = page_of(q.limit.as_deref())?;
    let (items, next_cursor) = paged(wants_csv(&req), limit, q.cursor, |limit, cursor| {
        let mut analytics = state.analytics.clone();
        let request = grpc(&req, pb::PageRequest { limit, cursor });
        async move {
            let page = analytics.overdue_invoices(request).await?.into_inner();
            let items = page.items.into_iter().map(|i| OverdueInvoice {
                id: i.id,
                invoice_number: i.invoice_number,
                user_id: i.user_id,
                total: i.total,
                due_date: i.due_date,
            });
            Ok((items.collect(), page.next_cursor))
        }
    })
    .await?;
    let body = OverdueInvoiceList { items, next_cursor };
    Ok(answer(&req, "overdue-invoices", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/lifetime-value", tag = "analytics", security(("bearer" = [])), params(AdminPageQuery),
    responses(
        (status = 200, description = "Succeeded payments and their total per user, most spent first, a page at a time; with `Accept: text/csv` every row (no paging) as a CSV attachment", content((LifetimeValueList = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `limit` is not 1..100, or `cursor` not from this list"),
    ))]
pub async fn lifetime_value(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: AdminPageQuery = query(&req)?;
    let limit = page_of(q.limit.as_deref())?;
    let (items, next_cursor) = paged(wants_csv(&req), limit, q.cursor, |limit, cursor| {
        let mut analytics = state.analytics.clone();
        let request = grpc(&req, pb::PageRequest { limit, cursor });
        async move {
            let page = analytics.lifetime_value(request).await?.into_inner();
            let items = page.items.into_iter().map(|v| LifetimeValue {
                user_id: v.user_id,
                amount: v.amount,
                payment_count: v.payment_count,
                total_spent: v.total_spent,
                signup_date: time(v.signup_date),
            });
            Ok((items.collect(), page.next_cursor))
        }
    })
    .await?;
    let body = LifetimeValueList { items, next_cursor };
    Ok(answer(&req, "lifetime-value", &body, &body.items))
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/daily", tag = "analytics", security(("bearer" = [])), params(RangeQuery),
    responses(
        (status = 200, description = "The dashboard's daily series over [from, to]; with `Accept: text/csv` as a CSV attachment", content((DailySeries = "application/json"), (String = "text/csv"))),
        (status = 403, body = ProblemBody, description = "`forbidden`: the caller is not an admin"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `from` or `to` is not a date, `to` is before `from`, or the range is over 366 days"),
    ))]
pub async fn daily(state: Data, req: HttpRequest, _admin: Admin) -> Answer {
    let q: RangeQuery = query(&req)?;
    let (from, to) = range_of(q.from.as_deref(), q.to.as_deref(), Utc::now().date_naive())
        .map_err(Problem::validation)?;
    let list = state
        .analytics
        .clone()
        .daily_series(grpc(
            &req,
            pb::RangeRequest {
                from: from.to_string(),
                to: to.to_string(),
            },
        ))
        .await?
        .into_inner();
    let body = DailySeries {
        items: list
            .items
            .into_iter()
            .map(|p| DailyPoint {
                date: p.date,
                signups: p.signups,
                messages: p.messages,
                tokens: p.tokens,
                cost: p.cost,
                revenue: p.revenue,
                mrr: p.mrr,
                new_subscriptions: p.new_subscriptions,
                churned_subscriptions: p.churned_subscriptions,
            })
            .collect(),
    };
    Ok(answer(&req, "daily", &body, &body.items))
}

/// Mounts the admin analytics routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/analytics")
            .route("/signups", web::get().to(signups))
            .route("/users-by-plan", web::get().to(users_by_plan))
            .route("/token-usage/users", web::get().to(token_usage_by_user))
            .route("/token-usage/models", web::get().to(token_usage_by_model))
            .route("/subscriptions", web::get().to(subscriptions))
            .route("/mrr", web::get().to(mrr))
            .route("/top-users", web::get().to(top_users))
            .route("/conversation-length", web::get().to(conversation_length))
            .route("/overdue-invoices", web::get().to(overdue_invoices))
            .route("/lifetime-value", web::get().to(lifetime_value))
            .route("/daily", web::get().to(daily)),
    );
}

#[cfg(test)]
mod tests {
    use actix_web::{body::MessageBody, test::TestRequest};

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn days_and_limit_are_whole_numbers_in_range_and_absent_means_the_default() {
        assert_eq!(days_of(None), Ok(0));
        assert_eq!(days_of(Some("1")), Ok(1));
        assert_eq!(days_of(Some("366")), Ok(366));
        for bad in ["0", "367", "-1", "7.5", "", "ten", "99999999999"] {
            assert!(days_of(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(limit_of(None), Ok(0));
        assert_eq!(limit_of(Some("100")), Ok(100));
        for bad in ["0", "101", "x"] {
            assert!(limit_of(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_is_yyyy_mm_with_a_real_month() {
        assert_eq!(month_of(None), Ok(String::new()));
        assert_eq!(month_of(Some("2026-12")), Ok("2026-12".to_owned()));
        assert_eq!(month_of(Some("2026-01")), Ok("2026-01".to_owned()));
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "2026/12",
            "26-12",
            "2026-12-01",
            "abcd-12",
            "+026-12",
            "",
        ] {
            assert!(month_of(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_range_defaults_to_the_last_30_days_ending_today() {
        let today = day("2026-12-01");
        assert_eq!(range_of(None, None, today), Ok((day("2026-11-02"), today)));
        assert_eq!(
            range_of(None, Some("2026-06-30"), today),
            Ok((day("2026-06-01"), day("2026-06-30")))
        );
        assert_eq!(
            range_of(Some("2026-11-30"), None, today),
            Ok((day("2026-11-30"), today))
        );
        assert_eq!(
            range_of(Some("2026-12-01"), Some("2026-12-01"), today),
            Ok((today, today))
        );
    }

    #[test]
    fn the_range_spans_at_most_366_days_and_never_ends_before_it_starts() {
        let today = day("2026-12-01");
        // 2024 is a leap year: 2024-01-01..2024-12-31 is 366 days.
        assert!(range_of(Some("2024-01-01"), Some("2024-12-31"), today).is_ok());
        let too_long = range_of(Some("2024-01-01"), Some("2025-01-01"), today).unwrap_err();
        assert!(too_long.contains_key("to"), "{too_long:?}");
        let backwards = range_of(Some("2026-12-02"), Some("2026-12-01"), today).unwrap_err();
        assert_eq!(backwards.keys().collect::<Vec<_>>(), ["to"]);
    }

    #[test]
    fn bad_dates_are_told_per_field_and_together() {
        let today = day("2026-12-01");
        let both = range_of(Some("2026-02-30"), Some("yesterday"), today).unwrap_err();
        assert_eq!(both.keys().collect::<Vec<_>>(), ["from", "to"]);
        for bad in [
            "2026-1-01",
            "2026-01-1",
            "20260101",
            "2026-01-01T00:00:00Z",
            "",
        ] {
            assert!(range_of(Some(bad), None, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_route_answers_json_or_with_accept_text_csv_the_same_rows_as_an_attachment() {
        let body = SignupList {
            items: vec![
                SignupDay {
                    date: "2026-12-01".into(),
                    new_users: 3,
                },
                SignupDay {
                    date: "2026-11-30".into(),
                    new_users: 0,
                },
            ],
        };
        let json = answer(
            &TestRequest::default().to_http_request(),
            "signups",
            &body,
            &body.items,
        );
        assert_eq!(
            json.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(json.headers().get("vary").unwrap(), "Accept");
        let bytes = json.into_body().try_into_bytes().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"items": [
                {"date": "2026-12-01", "newUsers": 3},
                {"date": "2026-11-30", "newUsers": 0},
            ]})
        );

        let csv_req = TestRequest::default()
            .insert_header(("Accept", "text/csv"))
            .to_http_request();
        let csv = answer(&csv_req, "signups", &body, &body.items);
        assert_eq!(
            csv.headers().get("content-type").unwrap(),
            "text/csv; charset=utf-8"
        );
        let disposition = csv
            .headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap();
        let today = Utc::now().format("%Y-%m-%d").to_string();
        assert_eq!(
            disposition,
            format!("attachment; filename=\"signups-{today}.csv\"")
        );
        let bytes = csv.into_body().try_into_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "date,newUsers\r\n2026-12-01,3\r\n2026-11-30,0\r\n"
        );
    }

    #[test]
    fn a_one_object_answer_is_one_csv_row_and_null_is_an_empty_cell() {
        let body = ConversationLength {
            avg_messages: Some("4.5000000000000000".into()),
            avg_tokens: None,
        };
        let req = TestRequest::default()
            .insert_header(("Accept", "text/csv"))
            .to_http_request();
        let response = answer(
            &req,
            "conversation-length",
            &body,
            std::slice::from_ref(&body),
        );
        let bytes = response.into_body().try_into_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "avgMessages,avgTokens\r\n4.5000000000000000,\r\n"
        );
    }

    #[test]
    fn every_row_has_as_many_cells_as_columns_named_as_its_json_fields() {
        fn same<T: Row + Serialize>(item: &T) {
            assert_eq!(item.cells().len(), T::COLUMNS.len());
            let json = serde_json::to_value(item).unwrap();
            let mut keys: Vec<&str> = json
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            let mut columns = T::COLUMNS.to_vec();
            columns.sort_unstable();
            assert_eq!(keys, columns);
        }
        same(&PlanCount {
            plan_tier: "PRO".into(),
            count: 1,
        });
        same(&UserUsage {
            user_id: "u".into(),
            total_tokens: 1,
            total_cost: "0.10".into(),
        });
        same(&ModelUsage {
            model: "m".into(),
            usage_count: 1,
            total_tokens: 2,
            avg_tokens: "2".into(),
            total_cost: "0.01".into(),
        });
        same(&PlanSubscriptions {
            plan: "Pro".into(),
            subscription_count: 1,
            user_count: 1,
        });
        same(&Mrr {
            mrr: "10.00".into(),
            currency: "USD".into(),
        });
        same(&TopUser {
            user_id: "u".into(),
            conversation_count: 1,
            total_tokens: 1,
        });
        same(&ConversationLength {
            avg_messages: None,
            avg_tokens: None,
        });
        same(&OverdueInvoice {
            id: "i".into(),
            invoice_number: "INV-1".into(),
            user_id: "u".into(),
            total: "9.99".into(),
            due_date: "2026-11-01".into(),
        });
        same(&LifetimeValue {
            user_id: "u".into(),
            amount: "9.99".into(),
            payment_count: 2,
            total_spent: "19.98".into(),
            signup_date: None,
        });
        same(&DailyPoint {
            date: "2026-12-01".into(),
            signups: 1,
            messages: 2,
            tokens: 3,
            cost: "0.01".into(),
            revenue: "9.99".into(),
            mrr: "9.99".into(),
            new_subscriptions: 1,
            churned_subscriptions: 0,
        });
        same(&SignupDay {
            date: "2026-12-01".into(),
            new_users: 1,
        });
    }
}
