//! Analytics' backfill: every subscription, payment and invoice row,
//! whoever's, a keyset page at a time in id order (`ExportSubscriptions`,
//! `ExportPayments`, `ExportInvoices`). Internal: the gateway never routes
//! to these calls. A row's `version` for the consumer is its
//! `stripeEventCreatedAt` (the `occurredAt` of the events that wrote it),
//! else its `updatedAt`.
//!
//! Not here: the events that keep analytics current afterwards
//! (`billing.subscription.changed`, `billing.invoice.changed`, ...).

use aichat_db::page::ExportPage;
use uuid::Uuid;

use crate::{
    service::Error,
    store::{
        Timestamp,
        export::{self, InvoiceRow, PaymentRow, SubscriptionRow},
    },
};

/// A page of rows and the `after` of the next one (empty after the last).
#[derive(Debug, Clone)]
pub struct Exported<T> {
    pub items: Vec<T>,
    pub next: String,
}

/// The export use cases over the pool.
#[derive(Clone)]
pub struct Exports {
    pool: aichat_db::Pool,
}

/// What orders a row against the events' `occurredAt`: the Stripe event
/// it was written from, else when billing last wrote it.
pub fn version(
    stripe_event_created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    created_at: Option<Timestamp>,
) -> Option<Timestamp> {
    stripe_event_created_at.or(updated_at).or(created_at)
}

impl Exports {
    pub fn new(pool: aichat_db::Pool) -> Self {
        Self { pool }
    }

    pub async fn subscriptions(
        &self,
        limit: u32,
        after: &str,
    ) -> Result<Exported<SubscriptionRow>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.pool.get().await?;
        let items = export::subscriptions_page(&mut conn, page.after, page.limit).await?;
        Ok(exported(&page, items, |row| row.id))
    }

    pub async fn payments(&self, limit: u32, after: &str) -> Result<Exported<PaymentRow>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.pool.get().await?;
        let items = export::payments_page(&mut conn, page.after, page.limit).await?;
        Ok(exported(&page, items, |row| row.id))
    }

    pub async fn invoices(&self, limit: u32, after: &str) -> Result<Exported<InvoiceRow>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.pool.get().await?;
        let items = export::invoices_page(&mut conn, page.after, page.limit).await?;
        Ok(exported(&page, items, |row| row.id))
    }
}

fn exported<T>(page: &ExportPage, items: Vec<T>, id: impl Fn(&T) -> Uuid) -> Exported<T> {
    let next = page
        .next(items.iter().map(id))
        .map_or_else(String::new, |id| id.to_string());
    Exported { items, next }
}
