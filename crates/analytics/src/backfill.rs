//! `analytics backfill`: builds the read models for history that happened
//! before analytics was deployed (or after its database was lost), from the
//! owning services' Export* calls (and billing's ListPlans), then events
//! carry on.
//!
//! Each source is paged by its row id; each page is applied in one
//! transaction with the same functions the consumer uses
//! ([`crate::store::apply`]), together with the source's cursor, so a killed
//! run resumes after the last page it applied. Versions, tombstones and
//! facts keyed by id make the writes idempotent and order-independent, so
//! backfill and events may run at the same time, and a second run changes
//! nothing. When every source of the last run finished, the next run starts
//! them over.

use std::str::FromStr;

use aichat_proto::{
    billing::v1::{self as billing, billing_client::BillingClient},
    chat::v1::{self as chat, chat_client::ChatClient},
    identity::v1::{self as identity, identity_client::IdentityClient},
};
use anyhow::Context;
use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::store::{
    apply::{
        self, ConversationFacts, Counters, InvoiceState, MessageFact, PaymentState, PlanRow,
        Profile, SubscriptionState, TokenUsageFact, UserFacts,
    },
    cursors,
};

/// Rows asked for per page.
pub const PAGE_SIZE: u32 = 500;

/// Where backfill reads from, in the order it reads them (plans first:
/// MRR needs their prices; users before what refers to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Plans,
    Users,
    Subscriptions,
    Payments,
    Invoices,
    Conversations,
    Messages,
    TokenUsage,
}

impl Source {
    pub const ALL: [Self; 8] = [
        Self::Plans,
        Self::Users,
        Self::Subscriptions,
        Self::Payments,
        Self::Invoices,
        Self::Conversations,
        Self::Messages,
        Self::TokenUsage,
    ];

    /// Its name in `backfillCursors`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plans => "plans",
            Self::Users => "users",
            Self::Subscriptions => "subscriptions",
            Self::Payments => "payments",
            Self::Invoices => "invoices",
            Self::Conversations => "conversations",
            Self::Messages => "messages",
            Self::TokenUsage => "tokenUsage",
        }
    }
}

/// The rows of one page, converted for [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Plans(Vec<PlanRow>),
    Users(Vec<UserFacts>),
    Subscriptions(Vec<SubscriptionState>),
    Payments(Vec<PaymentState>),
    Invoices(Vec<InvoiceState>),
    Conversations(Vec<ConversationFacts>),
    Messages(Vec<MessageFact>),
    TokenUsage(Vec<TokenUsageFact>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Self::Plans(r) => r.len(),
            Self::Users(r) => r.len(),
            Self::Subscriptions(r) => r.len(),
            Self::Payments(r) => r.len(),
            Self::Invoices(r) => r.len(),
            Self::Conversations(r) => r.len(),
            Self::Messages(r) => r.len(),
            Self::TokenUsage(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: Rows,
    /// The `after` of the next page; empty after the last one.
    pub next: String,
}

/// Reads pages of the owning services' rows.
pub trait Exporter {
    /// The page of `source` after `after` (empty: the first).
    fn page(
        &mut self,
        source: Source,
        after: &str,
        limit: u32,
    ) -> impl std::future::Future<Output = anyhow::Result<Page>> + Send;
}

/// What a run applied, per source (sources finished before are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<(&'static str, u64)>,
}

/// Runs (or resumes) a backfill from `exporter` into the database of
/// `pool`.
pub async fn run(
    pool: &aichat_db::Pool,
    exporter: &mut impl Exporter,
    page_size: u32,
) -> anyhow::Result<Report> {
    let mut conn = pool.get().await.context("connecting to the database")?;
    let known = cursors::all(&mut conn).await?;
    if known.len() == Source::ALL.len() && known.iter().all(|c| c.finished_at.is_some()) {
        cursors::reset(&mut conn).await?;
        tracing::info!("the last backfill finished; starting a new one");
    }
    let mut report = Report::default();
    for source in Source::ALL {
        let cursor = cursors::get(&mut conn, source.name()).await?;
        if cursor.finished_at.is_some() {
            continue;
        }
        let mut after = cursor.after;
        let mut applied = 0u64;
        loop {
            let page = exporter
                .page(source, &after, page_size)
                .await
                .with_context(|| format!("reading {} after {after:?}", source.name()))?;
            let rows = page.rows.len();
            let next = page.next.clone();
            let finished = next.is_empty();
            let position = if finished {
                after.clone()
            } else {
                next.clone()
            };
            conn.transaction::<_, anyhow::Error, _>(async |conn| {
                apply_page(conn, &page.rows).await?;
                cursors::advance(
                    conn,
                    source.name(),
                    &position,
                    i64::try_from(rows).unwrap_or(i64::MAX),
                    finished,
                )
                .await?;
                Ok(())
            })
            .await
            .with_context(|| format!("applying a page of {}", source.name()))?;
            applied += u64::try_from(rows).unwrap_or(u64::MAX);
            tracing::info!(source = source.name(), rows, after = %position, finished, "backfill page applied");
            if finished {
                break;
            }
            after = next;
        }
        report.applied.push((source.name(), applied));
    }
    Ok(report)
}

/// Applies one page's rows with the consumer's functions.
pub async fn apply_page(conn: &mut AsyncPgConnection, rows: &Rows) -> diesel::QueryResult<()> {
    match rows {
        Rows::Plans(rows) => {
            for row in rows {
                apply::plan(conn, row).await?;
            }
            apply::snapshot_mrr(conn).await?;
        }
        Rows::Users(rows) => {
            for row in rows {
                apply::user(conn, row).await?;
            }
        }
        Rows::Subscriptions(rows) => {
            for row in rows {
                apply::subscription(conn, row).await?;
            }
            apply::snapshot_mrr(conn).await?;
        }
        Rows::Payments(rows) => {
            for row in rows {
                apply::payment(conn, row).await?;
            }
        }
        Rows::Invoices(rows) => {
            for row in rows {
                apply::invoice(conn, row).await?;
            }
        }
        Rows::Conversations(rows) => {
            for row in rows {
                apply::conversation(conn, row).await?;
            }
        }
        Rows::Messages(rows) => {
            for row in rows {
                apply::message(conn, row).await?;
            }
        }
        Rows::TokenUsage(rows) => {
            for row in rows {
                apply::token_usage(conn, row).await?;
            }
        }
    }
    Ok(())
}

/// The owning services over gRPC.
pub struct GrpcExporter {
    identity: IdentityClient<Channel>,
    chat: ChatClient<Channel>,
    billing: BillingClient<Channel>,
}

impl GrpcExporter {
    /// Connects lazily to the three services.
    pub fn new(identity_url: &str, chat_url: &str, billing_url: &str) -> anyhow::Result<Self> {
        let channel = |url: &str| {
            Channel::from_shared(url.to_owned())
                .with_context(|| format!("{url} is not a URL"))
                .map(|e| e.connect_lazy())
        };
        Ok(Self {
            identity: IdentityClient::new(channel(identity_url)?),
            chat: ChatClient::new(channel(chat_url)?),
            billing: BillingClient::new(channel(billing_url)?),
        })
    }
}

impl Exporter for GrpcExporter {
    async fn page(&mut self, source: Source, after: &str, limit: u32) -> anyhow::Result<Page> {
        let after = after.to_owned();
        // The export time orders the users' profiles against their events.
        let now = chrono::Utc::now().naive_utc();
        Ok(match source {
            Source::Plans => {
                let plans = self
                    .billing
                    .list_plans(billing::Empty {})
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Plans(plans.items.iter().map(plan).collect::<Result<_, _>>()?),
                    next: String::new(),
                }
            }
            Source::Users => {
                let page = self
                    .identity
                    .export_users(identity::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Users(
                        page.items
                            .iter()
                            .map(|u| user(u, now))
                            .collect::<Result<_, _>>()?,
                    ),
                    next: page.next,
                }
            }
            Source::Subscriptions => {
                let page = self
                    .billing
                    .export_subscriptions(billing::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Subscriptions(
                        page.items
                            .iter()
                            .map(subscription)
                            .collect::<Result<_, _>>()?,
                    ),
                    next: page.next,
                }
            }
            Source::Payments => {
                let page = self
                    .billing
                    .export_payments(billing::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Payments(page.items.iter().map(payment).collect::<Result<_, _>>()?),
                    next: page.next,
                }
            }
            Source::Invoices => {
                let page = self
                    .billing
                    .export_invoices(billing::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Invoices(page.items.iter().map(invoice).collect::<Result<_, _>>()?),
                    next: page.next,
                }
            }
            Source::Conversations => {
                let page = self
                    .chat
                    .export_conversations(chat::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Conversations(
                        page.items
                            .iter()
                            .map(conversation)
                            .collect::<Result<_, _>>()?,
                    ),
                    next: page.next,
                }
            }
            Source::Messages => {
                let page = self
                    .chat
                    .export_messages(chat::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::Messages(page.items.iter().map(message).collect::<Result<_, _>>()?),
                    next: page.next,
                }
            }
            Source::TokenUsage => {
                let page = self
                    .chat
                    .export_token_usage(chat::ExportRequest { after, limit })
                    .await?
                    .into_inner();
                Page {
                    rows: Rows::TokenUsage(
                        page.items
                            .iter()
                            .map(token_usage)
                            .collect::<Result<_, _>>()?,
                    ),
                    next: page.next,
                }
            }
        })
    }
}

fn id(value: &str, what: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(value).with_context(|| format!("{what} {value:?} is not a UUID"))
}

fn optional_id(value: &str, what: &str) -> anyhow::Result<Option<Uuid>> {
    (!value.is_empty()).then(|| id(value, what)).transpose()
}

fn decimal(value: &str, what: &str) -> anyhow::Result<BigDecimal> {
    BigDecimal::from_str(value).with_context(|| format!("{what} {value:?} is not a decimal"))
}

fn time(value: Option<&aichat_proto::Timestamp>) -> Option<NaiveDateTime> {
    value.and_then(|t| {
        DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            .map(|t| t.naive_utc())
    })
}

fn required_time(
    value: Option<&aichat_proto::Timestamp>,
    what: &str,
) -> anyhow::Result<NaiveDateTime> {
    time(value).with_context(|| format!("{what} is missing"))
}

fn day(value: &str, what: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .with_context(|| format!("{what} {value:?} is not a date"))
}

fn int(value: i64, what: &str) -> anyhow::Result<i32> {
    i32::try_from(value).with_context(|| format!("{what} {value} is out of range"))
}

/// A plan of ListPlans.
pub fn plan(p: &billing::Plan) -> anyhow::Result<PlanRow> {
    Ok(PlanRow {
        id: id(&p.id, "plan id")?,
        name: p.name.clone(),
        monthly_price: decimal(&p.monthly_price, "monthly price")?,
        yearly_price: p
            .yearly_price
            .as_deref()
            .map(|v| decimal(v, "yearly price"))
            .transpose()?,
    })
}

/// An exported user, its profile as of `exported_at`.
pub fn user(u: &identity::UserExport, exported_at: NaiveDateTime) -> anyhow::Result<UserFacts> {
    Ok(UserFacts {
        user_id: id(&u.user_id, "user id")?,
        created_at: Some(required_time(u.created_at.as_ref(), "a user's createdAt")?),
        plan: Some((u.plan_tier.clone(), time(u.plan_tier_changed_at.as_ref()))),
        profile: Some(Profile {
            role: u.role.clone(),
            email_verified: u.email_verified,
            is_active: u.is_active,
            version: exported_at,
        }),
    })
}

/// An exported subscription.
pub fn subscription(s: &billing::SubscriptionExport) -> anyhow::Result<SubscriptionState> {
    let created_at = time(s.created_at.as_ref());
    Ok(SubscriptionState {
        user_id: id(&s.user_id, "user id")?,
        subscription_id: optional_id(&s.subscription_id, "subscription id")?,
        plan_id: optional_id(&s.plan_id, "plan id")?,
        plan_tier: None,
        status: s.status.clone(),
        interval: Some(s.interval.clone()).filter(|i| !i.is_empty()),
        current_period_start: time(s.current_period_start.as_ref()),
        current_period_end: time(s.current_period_end.as_ref()),
        created_at,
        version: time(s.version.as_ref())
            .or(created_at)
            .unwrap_or(DateTime::UNIX_EPOCH.naive_utc()),
    })
}

/// An exported payment.
pub fn payment(p: &billing::PaymentExport) -> anyhow::Result<PaymentState> {
    let created_at = required_time(p.created_at.as_ref(), "a payment's createdAt")?;
    Ok(PaymentState {
        payment_id: id(&p.payment_id, "payment id")?,
        user_id: id(&p.user_id, "user id")?,
        amount: decimal(&p.amount, "amount")?,
        amount_refunded: if p.amount_refunded.is_empty() {
            BigDecimal::default()
        } else {
            decimal(&p.amount_refunded, "amount refunded")?
        },
        currency: p.currency.clone(),
        status: p.status.clone(),
        created_at,
        version: time(p.version.as_ref()).unwrap_or(created_at),
    })
}

/// An exported invoice.
pub fn invoice(i: &billing::InvoiceExport) -> anyhow::Result<InvoiceState> {
    let created_at = required_time(i.created_at.as_ref(), "an invoice's createdAt")?;
    Ok(InvoiceState {
        invoice_id: id(&i.invoice_id, "invoice id")?,
        user_id: id(&i.user_id, "user id")?,
        subscription_id: optional_id(&i.subscription_id, "subscription id")?,
        invoice_number: i.invoice_number.clone(),
        status: i.status.clone(),
        subtotal: decimal(&i.subtotal, "subtotal")?,
        tax: decimal(&i.tax, "tax")?,
        total: decimal(&i.total, "total")?,
        due_date: (!i.due_date.is_empty())
            .then(|| day(&i.due_date, "due date"))
            .transpose()?,
        paid_at: time(i.paid_at.as_ref()),
        created_at,
        version: time(i.version.as_ref()).unwrap_or(created_at),
    })
}

/// An exported conversation with its counters.
pub fn conversation(c: &chat::ConversationExport) -> anyhow::Result<ConversationFacts> {
    let created_at = required_time(c.created_at.as_ref(), "a conversation's createdAt")?;
    Ok(ConversationFacts {
        conversation_id: id(&c.conversation_id, "conversation id")?,
        user_id: id(&c.user_id, "user id")?,
        model: Some(c.model.clone()),
        created_at: Some(created_at),
        counters: Some(Counters {
            message_count: int(c.message_count, "messageCount")?,
            token_count: int(c.token_count, "tokenCount")?,
            version: time(c.updated_at.as_ref()).unwrap_or(created_at),
        }),
    })
}

/// An exported message.
pub fn message(m: &chat::MessageExport) -> anyhow::Result<MessageFact> {
    Ok(MessageFact {
        message_id: id(&m.message_id, "message id")?,
        conversation_id: id(&m.conversation_id, "conversation id")?,
        user_id: id(&m.user_id, "user id")?,
        role: m.role.clone(),
        token_count: int(m.token_count, "tokenCount")?,
        model: Some(m.model.clone()).filter(|m| !m.is_empty()),
        created_at: required_time(m.created_at.as_ref(), "a message's createdAt")?,
    })
}

/// An exported tokenUsage row.
pub fn token_usage(t: &chat::TokenUsageExport) -> anyhow::Result<TokenUsageFact> {
    Ok(TokenUsageFact {
        usage_id: id(&t.usage_id, "usage id")?,
        user_id: id(&t.user_id, "user id")?,
        conversation_id: optional_id(&t.conversation_id, "conversation id")?,
        provider: t.provider.clone(),
        model: t.model.clone(),
        prompt_tokens: int(t.prompt_tokens, "promptTokens")?,
        completion_tokens: int(t.completion_tokens, "completionTokens")?,
        total_tokens: int(t.total_tokens, "totalTokens")?,
        cost_usd: decimal(&t.cost_usd, "costUsd")?,
        billing_month: day(&t.billing_month, "billingMonth")?,
        created_at: required_time(t.created_at.as_ref(), "a tokenUsage createdAt")?,
    })
}
