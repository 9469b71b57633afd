//! `identity.user.deleted` with a paid subscription: cancelled in Stripe
//! first (an outage retried), then the subscription and Stripe customer
//! rows deleted with the usage row; payments and invoices kept, unlinked.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Harness, deleted},
    stripe_standin::{Reply, StandIn},
    webhooks::{
        DAY, PLUS_MONTH, checkout_session, count, deliver_signed, event, now, start_with_stripe,
        subscription, user,
    },
};

const SUB: &str = "sub_1MowQVLkdIwHu7ixeRlqHVzs";

/// A Plus subscription (through its webhook) with a payment and an invoice.
async fn paying_user(h: &Harness) -> Uuid {
    let user = user(h).await;
    deliver_signed(
        h,
        &event(
            &format!("evt_created_{}", user.simple()),
            "customer.subscription.created",
            now() - 60,
            subscription(Some(user), PLUS_MONTH, "active", now() - DAY),
        ),
    )
    .await;
    h.execute(&format!(
        "INSERT INTO payments (id, userId, subscriptionId, stripePaymentIntentId, amount, currency, status) \
         SELECT gen_random_uuid(), userId, id, 'pi_{0}', 20.00, 'USD', 'succeeded' \
         FROM subscriptions WHERE userId = '{user}'",
        user.simple()
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO invoices (id, userId, subscriptionId, invoiceNumber, stripeInvoiceId, subtotal, total, status) \
         SELECT gen_random_uuid(), userId, id, 'INV-{0}', 'in_{0}', 20.00, 20.00, 'paid' \
         FROM subscriptions WHERE userId = '{user}'",
        user.simple()
    ))
    .await;
    user
}

/// The user's rows in each table: (subscriptions, stripeCustomers,
/// usageTracking, payments, payments still linked, invoices, invoices still
/// linked).
async fn rows(h: &Harness, user: Uuid) -> [i64; 7] {
    let n = |sql: String| async move { count(h, &sql).await };
    [
        n(format!("SELECT count(*) AS n FROM subscriptions WHERE userId = '{user}'")).await,
        n(format!("SELECT count(*) AS n FROM stripeCustomers WHERE userId = '{user}'")).await,
        n(format!("SELECT count(*) AS n FROM usageTracking WHERE userId = '{user}'")).await,
        n(format!("SELECT count(*) AS n FROM payments WHERE userId = '{user}'")).await,
        n(format!(
            "SELECT count(*) AS n FROM payments WHERE userId = '{user}' AND subscriptionId IS NOT NULL"
        ))
        .await,
        n(format!("SELECT count(*) AS n FROM invoices WHERE userId = '{user}'")).await,
        n(format!(
            "SELECT count(*) AS n FROM invoices WHERE userId = '{user}' AND subscriptionId IS NOT NULL"
        ))
        .await,
    ]
}

/// Stripe's answer to `DELETE /v1/subscriptions/{id}`: the subscription,
/// `canceled`.
fn cancelled(user: Uuid) -> Reply {
    let mut sub = subscription(Some(user), PLUS_MONTH, "canceled", now() - DAY);
    sub["canceled_at"] = now().into();
    sub["ended_at"] = now().into();
    sub["cancellation_details"]["reason"] = "cancellation_requested".into();
    Reply::ok(sub)
}

/// Stripe's answer to `GET /v1/subscriptions?customer=...`.
fn page(data: Vec<Value>) -> Reply {
    Reply::ok(
        json!({"object": "list", "data": data, "has_more": false, "url": "/v1/subscriptions"}),
    )
}

/// What Stripe lists for the customer: the user's subscription, active.
fn listed(user: Uuid) -> Reply {
    page(vec![subscription(
        Some(user),
        PLUS_MONTH,
        "active",
        now() - DAY,
    )])
}

fn deletes(standin: &StandIn) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path == format!("/v1/subscriptions/{SUB}"))
        .count()
}

#[tokio::test]
async fn deleting_a_subscriber_cancels_in_stripe_and_keeps_payments_and_invoices_unlinked() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = paying_user(&h).await;
    assert_eq!(rows(&h, user).await, [1, 1, 1, 1, 1, 1, 1]);
    standin.push([listed(user), cancelled(user)]);

    let envelope = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&envelope).await;

    let requests = standin.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/v1/subscriptions")
    );
    assert!(
        requests[0]
            .query()
            .contains(&("customer".to_owned(), "cus_Na6dX7aXxi11N4".to_owned()))
    );
    assert_eq!(deletes(&standin), 1);
    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);

    // A redelivery asks Stripe nothing and changes nothing.
    h.billing
        .publish_envelopes(std::slice::from_ref(&envelope))
        .await
        .unwrap();
    let marker = h.billing.publish(&deleted(Uuid::now_v7())).await.unwrap();
    h.wait_processed(&marker).await;
    assert_eq!(standin.requests().len(), 2);
    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);

    // The cancellation's own webhook, later, brings no row back.
    let mut ended = subscription(Some(user), PLUS_MONTH, "canceled", now() - DAY);
    ended["canceled_at"] = now().into();
    deliver_signed(
        &h,
        &event("evt_deleted", "customer.subscription.deleted", now(), ended),
    )
    .await;
    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);
    h.stop().await;
}

#[tokio::test]
async fn stripe_unavailable_during_a_deletion_is_retried_until_it_answers() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = paying_user(&h).await;
    // The client's own attempts (1 + 2 retries) all fail: the event fails
    // transiently and the consumer tries again.
    let down = || Reply::error(503, "api_error", None, "Stripe is down");
    standin.push([
        listed(user),
        down(),
        down(),
        down(),
        listed(user),
        cancelled(user),
    ]);

    let envelope = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&envelope).await;

    assert_eq!(deletes(&standin), 4);
    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);
    h.stop().await;
}

#[tokio::test]
async fn a_subscription_stripe_no_longer_has_counts_as_cancelled() {
    // The stand-in answers 404 `resource_missing` to everything (as Stripe
    // does for a subscription cancelled already, or a customer deleted).
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = paying_user(&h).await;

    let envelope = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&envelope).await;

    assert_eq!(deletes(&standin), 1);
    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);
    h.stop().await;
}

#[tokio::test]
async fn without_stripe_a_deleted_users_subscription_is_deleted_locally() {
    let h = Harness::start().await;
    let user = user(&h).await;
    h.execute(&format!(
        "INSERT INTO subscriptions (id, userId, planId, stripeSubscriptionId, stripeCustomerId, \
         status, currentPeriodStart, currentPeriodEnd) \
         SELECT gen_random_uuid(), '{user}', id, 'sub_local', 'cus_local', 'active', \
         now() - interval '1 day', now() + interval '29 days' FROM plans WHERE name = 'Plus'"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', 'cus_local')"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO payments (id, userId, subscriptionId, stripePaymentIntentId, amount, currency, status) \
         SELECT gen_random_uuid(), userId, id, 'pi_local', 20.00, 'USD', 'succeeded' \
         FROM subscriptions WHERE userId = '{user}'"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO invoices (id, userId, subscriptionId, invoiceNumber, stripeInvoiceId, subtotal, total, status) \
         SELECT gen_random_uuid(), userId, id, 'INV-local', 'in_local', 20.00, 20.00, 'paid' \
         FROM subscriptions WHERE userId = '{user}'"
    ))
    .await;

    let envelope = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&envelope).await;

    assert_eq!(rows(&h, user).await, [0, 0, 0, 1, 0, 1, 0]);
    h.stop().await;
}

#[tokio::test]
async fn deletion_also_cancels_a_subscription_whose_webhook_was_lost() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = user(&h).await;
    // Checkout completed (the customer is known); the subscription's
    // `created` never arrived.
    deliver_signed(
        &h,
        &event(
            "evt_checkout",
            "checkout.session.completed",
            now() - 60,
            checkout_session(user),
        ),
    )
    .await;
    let mut lost = subscription(Some(user), PLUS_MONTH, "active", now() - DAY);
    lost["id"] = "sub_lost".into();
    let mut ended = subscription(Some(user), PLUS_MONTH, "canceled", now() - 90 * DAY);
    ended["id"] = "sub_ended".into();
    let mut lost_cancelled = lost.clone();
    lost_cancelled["status"] = "canceled".into();
    standin.push([page(vec![lost, ended]), Reply::ok(lost_cancelled)]);

    let envelope = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&envelope).await;

    let paths: Vec<(String, String)> = standin
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            ("GET".to_owned(), "/v1/subscriptions".to_owned()),
            ("DELETE".to_owned(), "/v1/subscriptions/sub_lost".to_owned()),
        ]
    );
    assert_eq!(rows(&h, user).await, [0, 0, 0, 0, 0, 0, 0]);
    h.stop().await;
}
