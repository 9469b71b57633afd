//! The user's side of paid plans: what their subscription is, buying one
//! (Stripe Checkout), managing it (the Billing Portal), cancelling and
//! resuming it, and their invoices and payments. Every call acts on the
//! caller's own rows, found by their user id.
//!
//! Not here: Stripe's webhooks ([`mod@crate::webhooks`]), which bring most
//! changes in; the writers of invoices and payments; the price sync.
//!
//! Stripe is called outside any transaction except one: creating the user's
//! Stripe customer, which holds the user's customer lock (an advisory lock)
//! across the call so that two checkouts at once create one customer; the
//! creation's idempotency key is derived from the user id as well, so a
//! retry after a crash between Stripe's answer and our commit gets the
//! same customer back (within Stripe's 24 hours of idempotency).
//!
//! Cancel and resume store Stripe's answer the way the webhook stores an
//! event (newest state wins): the row's `stripeEventCreatedAt` becomes the
//! second we asked Stripe, so a webhook event created after that (the same
//! change, or a newer one) still overwrites it, and an older one never does.

use aichat_db::page::{PageRequest, next_cursor};
use aichat_messaging::relay::Waker;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::{
        FREE_PLAN, FieldErrors,
        subscription::{ENDED, Interval, NO_SUBSCRIPTION, cancel_reason},
    },
    service::Error,
    store::{
        deleted_users,
        history::{self, InvoiceEntry, PaymentEntry},
        plans, stripe_customers, subscriptions,
    },
    stripe::{
        NewCheckoutSession, NewCustomer, StripeClient, StripeError,
        types::{self, timestamp},
    },
    webhooks::{self, Outcome, WebhookError},
};

/// What these use cases can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No `STRIPE_SECRET_KEY`: nothing can be bought or managed.
    #[error("Stripe is not configured")]
    NotConfigured,
    /// A checkout while a subscription that has not ended exists: it is
    /// changed in the portal, not bought twice.
    #[error("already subscribed")]
    AlreadySubscribed,
    /// The portal before a first checkout: no Stripe customer yet.
    #[error("no Stripe customer")]
    NoCustomer,
    /// A resume of a subscription that is not set to cancel.
    #[error("the subscription is not set to cancel")]
    NotCanceling,
    /// Cancel or resume of a subscription that has ended.
    #[error("the subscription has ended")]
    Ended,
    /// Stripe failed or refused the call.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<diesel::result::Error> for AccountError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Service(e.into())
    }
}

impl From<aichat_db::PoolError> for AccountError {
    fn from(e: aichat_db::PoolError) -> Self {
        Self::Service(e.into())
    }
}

fn field(name: &str, reason: &str) -> AccountError {
    let mut errors = FieldErrors::new();
    errors.insert(name.to_owned(), reason.to_owned());
    AccountError::Service(Error::Validation(errors))
}

fn unexpected(what: &str) -> AccountError {
    AccountError::Service(Error::Unexpected(anyhow::anyhow!("{what}")))
}

/// The user's subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// The plan's name.
    pub plan: String,
    /// `none` without a subscription, else the stored status.
    pub status: String,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub trial_ends_at: Option<DateTime<Utc>>,
}

impl SubscriptionView {
    /// A user without a subscription: the Free plan.
    fn free() -> Self {
        Self {
            plan: FREE_PLAN.to_owned(),
            status: NO_SUBSCRIPTION.to_owned(),
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            trial_ends_at: None,
        }
    }
}

/// A checkout to start.
#[derive(Debug, Clone)]
pub struct CheckoutOrder<'a> {
    pub user_id: Uuid,
    pub plan_id: Uuid,
    /// `month` or `year`, as the user sent it.
    pub interval: &'a str,
    /// For the Stripe customer of a first checkout.
    pub email: &'a str,
    pub name: Option<&'a str>,
}

/// A started checkout: where to send the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutStarted {
    pub url: String,
    pub session_id: String,
}

/// A page of a list, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

/// The use cases over their dependencies.
#[derive(Clone)]
pub struct Account {
    pool: aichat_db::Pool,
    /// `None` without `STRIPE_SECRET_KEY`.
    stripe: Option<StripeClient>,
    /// The web app's base URL (no trailing slash): Stripe's pages send the
    /// user back under it.
    public_url: String,
    /// Wakes the outbox relay after a commit that enqueued an event.
    waker: Waker,
}

impl Account {
    pub fn new(
        pool: aichat_db::Pool,
        stripe: Option<StripeClient>,
        public_url: String,
        waker: Waker,
    ) -> Self {
        Self {
            pool,
            stripe,
            public_url,
            waker,
        }
    }

    fn stripe(&self) -> Result<&StripeClient, AccountError> {
        self.stripe.as_ref().ok_or(AccountError::NotConfigured)
    }

    async fn conn(&self) -> Result<aichat_db::PooledConnection, AccountError> {
        Ok(self.pool.get().await?)
    }

    /// The user's subscription; the Free plan (status `none`) without one.
    pub async fn subscription(&self, user_id: Uuid) -> Result<SubscriptionView, AccountError> {
        let mut conn = self.conn().await?;
        let found = subscriptions::find_with_plan_name(&mut conn, user_id).await?;
        Ok(
            found.map_or_else(SubscriptionView::free, |(row, plan)| SubscriptionView {
                plan,
                status: row.status,
                current_period_start: Some(row.current_period_start.and_utc()),
                current_period_end: Some(row.current_period_end.and_utc()),
                cancel_at_period_end: row.cancel_at_period_end.unwrap_or(false),
                trial_ends_at: row.trial_ends_at.map(|t| t.and_utc()),
            }),
        )
    }

    /// A Stripe Checkout Session for a paid plan at an interval, with the
    /// user's Stripe customer (created once, then reused).
    pub async fn checkout(
        &self,
        order: &CheckoutOrder<'_>,
    ) -> Result<CheckoutStarted, AccountError> {
        let interval = Interval::parse(order.interval).map_err(|r| field("interval", &r))?;
        let email = order.email.trim();
        if email.is_empty() {
            return Err(field("email", "is required"));
        }
        let stripe = self.stripe()?;
        let user_id = order.user_id;
        let mut conn = self.conn().await?;
        if deleted_users::contains(&mut conn, user_id).await? {
            return Err(Error::NotFound.into());
        }
        let (plan, prices) = plans::find_with_prices(&mut conn, order.plan_id)
            .await?
            .filter(|(plan, _)| plan.is_active == Some(true))
            .ok_or(Error::NotFound)?;
        if plan.name == FREE_PLAN {
            return Err(field("planId", "is the Free plan: there is nothing to buy"));
        }
        let price = match interval {
            Interval::Month => prices.monthly,
            Interval::Year => prices.yearly,
        }
        .ok_or_else(|| {
            field(
                "interval",
                &format!(
                    "the {} plan is not sold by the {}",
                    plan.name,
                    interval.as_str()
                ),
            )
        })?;
        if let Some((row, _)) = subscriptions::find_with_plan_name(&mut conn, user_id).await?
            && row.status != ENDED
        {
            return Err(AccountError::AlreadySubscribed);
        }
        let customer = customer_of(&mut conn, stripe, user_id, email, order.name).await?;
        drop(conn);
        let base = &self.public_url;
        let session = stripe
            .create_checkout_session(
                &NewCheckoutSession {
                    user_id,
                    customer: &customer,
                    price: &price,
                    success_url: &format!(
                        "{base}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
                    ),
                    cancel_url: &format!("{base}/billing?checkout=canceled"),
                },
                None,
            )
            .await?;
        let url = session
            .url
            .ok_or_else(|| unexpected("Stripe answered a Checkout Session without a url"))?;
        tracing::info!(user.id = %user_id, plan.name = %plan.name, interval = interval.as_str(), stripe.checkout_session = %session.id, "checkout started");
        Ok(CheckoutStarted {
            url,
            session_id: session.id,
        })
    }

    /// A Billing Portal session for the user's Stripe customer, returning
    /// to `{PUBLIC_URL}/billing`.
    pub async fn portal(&self, user_id: Uuid) -> Result<String, AccountError> {
        let stripe = self.stripe()?;
        let customer = {
            let mut conn = self.conn().await?;
            stripe_customers::of_user(&mut conn, user_id).await?
        }
        .ok_or(AccountError::NoCustomer)?;
        let session = stripe
            .create_portal_session(&customer, &format!("{}/billing", self.public_url), None)
            .await?;
        Ok(session.url)
    }

    /// Cancels the user's subscription in Stripe, at the period's end
    /// (`at_period_end`, the default) or now, with their reason as the
    /// cancellation's comment; stores Stripe's answer.
    pub async fn cancel(
        &self,
        user_id: Uuid,
        at_period_end: Option<bool>,
        reason: Option<&str>,
    ) -> Result<SubscriptionView, AccountError> {
        let reason = cancel_reason(reason).map_err(|r| field("reason", &r))?;
        let stripe = self.stripe()?;
        let stripe_id = self
            .live_subscription(user_id)
            .await?
            .stripe_subscription_id;
        let asked_at = this_second();
        let sub = if at_period_end.unwrap_or(true) {
            stripe
                .update_cancellation(&stripe_id, true, reason.as_deref(), None)
                .await?
        } else {
            stripe
                .cancel_subscription_with_comment(&stripe_id, reason.as_deref())
                .await?
        };
        self.store_answer(user_id, &sub, asked_at).await?;
        self.subscription(user_id).await
    }

    /// Undoes a cancellation at the period's end; stores Stripe's answer.
    pub async fn resume(&self, user_id: Uuid) -> Result<SubscriptionView, AccountError> {
        let stripe = self.stripe()?;
        let row = self.live_subscription(user_id).await?;
        if row.cancel_at_period_end != Some(true) {
            return Err(AccountError::NotCanceling);
        }
        let asked_at = this_second();
        let sub = stripe
            .update_cancellation(&row.stripe_subscription_id, false, None, None)
            .await?;
        self.store_answer(user_id, &sub, asked_at).await?;
        self.subscription(user_id).await
    }

    /// The user's invoices, newest first.
    pub async fn invoices(
        &self,
        user_id: Uuid,
        limit: u32,
        cursor: &str,
    ) -> Result<Page<InvoiceEntry>, AccountError> {
        let page = PageRequest::parse(limit, cursor).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let mut items =
            history::invoices_page(&mut conn, user_id, page.after, page.size + 1).await?;
        let next_cursor = next_cursor(&mut items, page.size, InvoiceEntry::cursor);
        Ok(Page { items, next_cursor })
    }

    /// The user's payments, newest first.
    pub async fn payments(
        &self,
        user_id: Uuid,
        limit: u32,
        cursor: &str,
    ) -> Result<Page<PaymentEntry>, AccountError> {
        let page = PageRequest::parse(limit, cursor).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let mut items =
            history::payments_page(&mut conn, user_id, page.after, page.size + 1).await?;
        let next_cursor = next_cursor(&mut items, page.size, PaymentEntry::cursor);
        Ok(Page { items, next_cursor })
    }

    /// The user's subscription row, if it has not ended.
    async fn live_subscription(
        &self,
        user_id: Uuid,
    ) -> Result<subscriptions::Subscription, AccountError> {
        let mut conn = self.conn().await?;
        let (row, _) = subscriptions::find_with_plan_name(&mut conn, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        if row.status == ENDED {
            return Err(AccountError::Ended);
        }
        Ok(row)
    }

    /// Stores Stripe's answer about the user's subscription (see the module
    /// documentation for the ordering).
    async fn store_answer(
        &self,
        user_id: Uuid,
        sub: &types::Subscription,
        asked_at: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let mut conn = self.conn().await?;
        let applied = conn
            .transaction::<_, AccountError, _>(async |conn| {
                // The same steps as a webhook event's, as of the second
                // Stripe was asked.
                match webhooks::apply_subscription(conn, sub, asked_at, None).await {
                    Ok(outcome) => Ok(outcome == Outcome::Applied),
                    Err(WebhookError::Service(e)) => Err(e.into()),
                    Err(e) => Err(Error::Unexpected(anyhow::anyhow!(
                        "Stripe's answer about user {user_id}'s subscription: {e}"
                    ))
                    .into()),
                }
            })
            .await?;
        if applied {
            self.waker.wake();
        }
        Ok(())
    }
}

/// Now, to the second below: Stripe's event times are whole seconds, and a
/// tie goes to the webhook event (it overwrites equal times).
fn this_second() -> DateTime<Utc> {
    let now = Utc::now();
    timestamp(now.timestamp()).unwrap_or(now)
}

/// The user's Stripe customer: the stored one, or one created now (and
/// stored) under the user's customer lock, with an idempotency key derived
/// from the user id.
async fn customer_of(
    conn: &mut AsyncPgConnection,
    stripe: &StripeClient,
    user_id: Uuid,
    email: &str,
    name: Option<&str>,
) -> Result<String, AccountError> {
    conn.transaction::<_, AccountError, _>(async |conn| {
        stripe_customers::lock_user(conn, user_id).await?;
        if let Some(customer) = stripe_customers::of_user(conn, user_id).await? {
            return Ok(customer);
        }
        let customer = stripe
            .create_customer(
                &NewCustomer {
                    user_id,
                    email,
                    name: name.map(str::trim).filter(|n| !n.is_empty()),
                },
                Some(&customer_idempotency_key(user_id)),
            )
            .await?;
        stripe_customers::insert_if_absent(conn, user_id, &customer.id).await?;
        tracing::info!(user.id = %user_id, stripe.customer = %customer.id, "Stripe customer created");
        Ok(customer.id)
    })
    .await
}

/// The idempotency key of the creation of a user's Stripe customer: the
/// same for every attempt, so Stripe creates one customer per user.
pub fn customer_idempotency_key(user_id: Uuid) -> String {
    format!("aichat-customer-{user_id}")
}
