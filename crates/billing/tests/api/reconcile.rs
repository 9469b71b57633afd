//! Drift from Stripe repaired without the webhook: `billing reconcile`
//! (Stripe's list of subscriptions applied where the local row is missing
//! or differs) and the period-end step of the maintenance round.
#![expect(clippy::unwrap_used, reason = "tests: a failure fails the test")]

use std::time::Duration;

use aichat_billing::{Config, reconcile::Reconciled, store::locks};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Harness, eventually},
    stripe_standin::{Reply, StandIn},
    webhooks::{
        DAY, FREE_QUOTA, PLUS_MONTH, PLUS_QUOTA, PRO_MONTH, PRO_QUOTA, PRO_YEAR, changes, count,
        deliver_signed, event, now, plan_name, quota, start_with_stripe, subscription, user,
    },
};

fn page(data: Vec<Value>, has_more: bool) -> Reply {
    Reply::ok(
        json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/subscriptions"}),
    )
}

async fn reconcile(h: &Harness) -> Reconciled {
    aichat_billing::reconcile_once(&h.billing.config)
        .await
        .unwrap()
        .unwrap()
}

/// A Plus subscription created through its webhook.
async fn subscribed(h: &Harness, start_at: i64) -> Uuid {
    let user = user(h).await;
    deliver_signed(
        h,
        &event(
            &format!("evt_created_{}", user.simple()),
            "customer.subscription.created",
            now() - 60,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(h, user).await, PLUS_QUOTA);
    user
}

async fn status(h: &Harness, user: Uuid) -> String {
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut conn = h.pool.get().await.unwrap();
    diesel_async::RunQueryDsl::get_result::<S>(
        diesel::sql_query(format!(
            "SELECT status FROM subscriptions WHERE userId = '{user}'"
        )),
        &mut conn,
    )
    .await
    .unwrap()
    .status
}

#[tokio::test]
async fn reconcile_repairs_a_missed_upgrade_and_a_second_run_changes_nothing() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let start_at = now() - DAY;
    let user = subscribed(&h, start_at).await;
    // The upgrade to Pro happened in Stripe; its webhook never came.
    let in_stripe = subscription(Some(user), PRO_MONTH, "active", start_at);
    standin.push([page(vec![in_stripe.clone()], false)]);

    let done = reconcile(&h).await;

    assert_eq!(
        done,
        Reconciled {
            listed: 1,
            repaired: 1,
            ..Reconciled::default()
        }
    );
    let request = standin.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/subscriptions")
    );
    assert_eq!(
        request.query(),
        [
            ("limit".to_owned(), "100".to_owned()),
            ("status".to_owned(), "all".to_owned())
        ]
    );
    assert_eq!(quota(&h, user).await, PRO_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Pro");
    let tiers: Vec<Value> = changes(&h)
        .await
        .iter()
        .map(|c| c["planTier"].clone())
        .collect();
    assert_eq!(tiers, [json!("PLUS"), json!("PRO")]);

    // Again: in step, so nothing is applied and nothing published.
    standin.push([page(vec![in_stripe], false)]);
    let again = reconcile(&h).await;
    assert_eq!(again.listed, 1);
    assert_eq!(again.repaired, 0);
    assert_eq!(changes(&h).await.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn reconcile_repairs_a_missed_cancellation_and_the_late_older_webhook_is_ignored() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let start_at = now() - DAY;
    let user = subscribed(&h, start_at).await;
    let mut canceled = subscription(Some(user), PLUS_MONTH, "canceled", start_at);
    canceled["canceled_at"] = (now() - 30).into();
    canceled["ended_at"] = (now() - 30).into();
    standin.push([page(vec![canceled], false)]);

    assert_eq!(reconcile(&h).await.repaired, 1);

    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Free");
    assert_eq!(status(&h, user).await, "canceled");
    let last = changes(&h).await.pop().unwrap();
    assert_eq!(last["planTier"], "FREE");
    assert_eq!(last["status"], "canceled");

    // A webhook from before the reconciliation, delivered after it.
    deliver_signed(
        &h,
        &event(
            "evt_late",
            "customer.subscription.updated",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(status(&h, user).await, "canceled");
    assert_eq!(changes(&h).await.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn reconcile_pages_through_stripe_and_creates_a_subscription_unknown_locally() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = user(&h).await;
    // Page 1: a subscription of nobody billing knows; page 2: the user's,
    // whose `customer.subscription.created` was missed.
    let mut stranger = subscription(None, PLUS_MONTH, "active", now() - DAY);
    stranger["id"] = "sub_stranger".into();
    stranger["customer"] = "cus_stranger".into();
    let mut missed = subscription(Some(user), PLUS_MONTH, "active", now() - DAY);
    missed["id"] = "sub_missed".into();
    standin.push([
        page(vec![stranger], true),
        page(vec![missed.clone()], false),
    ]);

    let done = reconcile(&h).await;

    assert_eq!(
        done,
        Reconciled {
            listed: 2,
            repaired: 1,
            skipped: 1,
            failed: 0,
        }
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1]
            .query()
            .contains(&("starting_after".to_owned(), "sub_stranger".to_owned())),
        "{:?}",
        requests[1].query()
    );
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM subscriptions WHERE userId = '{user}' \
                 AND stripeSubscriptionId = 'sub_missed' AND status = 'active'"
            )
        )
        .await,
        1
    );
    assert_eq!(changes(&h).await.len(), 1);

    standin.push([page(vec![missed], false)]);
    assert_eq!(reconcile(&h).await.repaired, 0);
    assert_eq!(changes(&h).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn reconcile_corrects_the_interval_of_a_row_written_before_it_was_stored() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let user = user(&h).await;
    let start_at = now() - DAY;
    let yearly = subscription(Some(user), PRO_YEAR, "active", start_at);
    deliver_signed(
        &h,
        &event(
            "evt_created",
            "customer.subscription.created",
            now() - 60,
            yearly.clone(),
        ),
    )
    .await;
    // As the migration left it: every row `month`.
    h.execute("UPDATE subscriptions SET billingInterval = 'month'")
        .await;
    standin.push([page(vec![yearly.clone()], false)]);

    assert_eq!(reconcile(&h).await.repaired, 1);

    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE billingInterval = 'year'"
        )
        .await,
        1
    );
    let last = changes(&h).await.pop().unwrap();
    assert_eq!(last["interval"], "year");
    assert_eq!(last["planTier"], "PRO");
    // In step now: nothing more.
    standin.push([page(vec![yearly], false)]);
    assert_eq!(reconcile(&h).await.repaired, 0);
    assert_eq!(changes(&h).await.len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn reconcile_replaces_a_stale_live_subscription_only_after_stripe_says_it_ended() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let start_at = now() - DAY;
    // The row holds the old subscription, still active locally; in Stripe
    // it ended and a new one (its `created` missed) is live.
    let user = subscribed(&h, start_at).await;
    let mut old = subscription(Some(user), PLUS_MONTH, "canceled", start_at);
    old["canceled_at"] = (now() - 40).into();
    let mut new = subscription(Some(user), PRO_MONTH, "active", now() - 30);
    new["id"] = "sub_new".into();
    // Stripe lists the newest first.
    standin.push([
        page(vec![new.clone(), old.clone()], false),
        Reply::ok(old),
        Reply::ok(new),
    ]);

    let done = reconcile(&h).await;

    assert_eq!(done.failed, 0, "{done:?}");
    let requests = standin.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/subscriptions",
            "/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs",
            "/v1/subscriptions/sub_new"
        ]
    );
    assert_eq!(quota(&h, user).await, PRO_QUOTA);
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM subscriptions WHERE userId = '{user}' \
                 AND stripeSubscriptionId = 'sub_new' AND status = 'active'"
            )
        )
        .await,
        1
    );
    h.stop().await;
}

fn every_second(config: &mut Config) {
    config.maintenance_interval = Duration::from_secs(1);
}

#[tokio::test]
async fn past_due_keeps_the_plan_and_unpaid_puts_the_user_on_free_at_once() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let start_at = now() - DAY;
    let user = subscribed(&h, start_at).await;
    deliver_signed(
        &h,
        &event(
            "evt_past_due",
            "customer.subscription.updated",
            now() - 40,
            subscription(Some(user), PLUS_MONTH, "past_due", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Plus");
    deliver_signed(
        &h,
        &event(
            "evt_unpaid",
            "customer.subscription.updated",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "unpaid", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Free");
    assert_eq!(changes(&h).await.pop().unwrap()["planTier"], "FREE");
    h.stop().await;
}

/// Moves the user's subscription period into the past, ending `ago`
/// seconds ago: time passing.
async fn period_ended(h: &Harness, user: Uuid, ago: i64) {
    h.execute(&format!(
        "UPDATE subscriptions SET \
         currentPeriodStart = now() AT TIME ZONE 'UTC' - interval '{} seconds', \
         currentPeriodEnd = now() AT TIME ZONE 'UTC' - interval '{ago} seconds' \
         WHERE userId = '{user}'",
        ago + 30 * DAY
    ))
    .await;
}

#[tokio::test]
async fn cancel_at_period_end_keeps_the_quota_until_the_period_ends_then_free() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, every_second).await;
    let start_at = now() - 10 * DAY;
    let user = subscribed(&h, start_at).await;
    let mut cancelling = subscription(Some(user), PLUS_MONTH, "active", start_at);
    cancelling["cancel_at_period_end"] = true.into();
    cancelling["cancel_at"] = (start_at + 30 * DAY).into();
    deliver_signed(
        &h,
        &event(
            "evt_cancel_at_end",
            "customer.subscription.updated",
            now() - 30,
            cancelling,
        ),
    )
    .await;
    // Maintenance rounds pass; the period is paid for.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    assert!(standin.requests().is_empty());

    // The period ends; Stripe's `deleted` webhook is late. Stripe says:
    let ended_at = now() - 2 * 3600;
    let mut ended = subscription(Some(user), PLUS_MONTH, "canceled", ended_at - 30 * DAY);
    ended["cancel_at_period_end"] = true.into();
    ended["canceled_at"] = ended_at.into();
    ended["ended_at"] = ended_at.into();
    standin.push([Reply::ok(ended)]);
    period_ended(&h, user, 2 * 3600).await;

    eventually(
        "the quota to drop to Free",
        Duration::from_secs(10),
        || async { quota(&h, user).await == FREE_QUOTA },
    )
    .await;
    let request = standin.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs")
    );
    eventually("the row to be canceled", Duration::from_secs(5), || async {
        status(&h, user).await == "canceled"
    })
    .await;
    assert_eq!(plan_name(&h, user).await, "Free");
    assert_eq!(changes(&h).await.pop().unwrap()["planTier"], "FREE");
    h.stop().await;
}

#[tokio::test]
async fn an_ended_cancellation_drops_to_free_even_when_stripe_cannot_be_asked() {
    // Stripe unreachable: the quota still drops once the period is over.
    let h = start_with_stripe("http://127.0.0.1:9", every_second).await;
    let start_at = now() - 10 * DAY;
    let user = subscribed(&h, start_at).await;
    let mut cancelling = subscription(Some(user), PLUS_MONTH, "active", start_at);
    cancelling["cancel_at_period_end"] = true.into();
    deliver_signed(
        &h,
        &event(
            "evt_cancel_at_end",
            "customer.subscription.updated",
            now() - 30,
            cancelling,
        ),
    )
    .await;
    // Not yet over (inside the grace hour): kept.
    period_ended(&h, user, 600).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);

    period_ended(&h, user, 2 * 3600).await;
    eventually(
        "the quota to drop to Free",
        Duration::from_secs(15),
        || async { quota(&h, user).await == FREE_QUOTA },
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_pending_downgrade_is_lowered_at_the_period_end_without_the_renewal_webhook() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, every_second).await;
    let start_at = now() - 10 * DAY;
    let user = user(&h).await;
    deliver_signed(
        &h,
        &event(
            "evt_pro",
            "customer.subscription.created",
            now() - 60,
            subscription(Some(user), PRO_MONTH, "active", start_at),
        ),
    )
    .await;
    deliver_signed(
        &h,
        &event(
            "evt_down",
            "customer.subscription.updated",
            now() - 30,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(quota(&h, user).await, PRO_QUOTA);

    period_ended(&h, user, 2 * 3600).await;
    eventually(
        "the quota to drop to Plus",
        Duration::from_secs(10),
        || async { quota(&h, user).await == PLUS_QUOTA },
    )
    .await;
    // Still an active Plus subscriber: Stripe is not asked.
    assert!(standin.requests().is_empty());
    assert_eq!(plan_name(&h, user).await, "Plus");
    h.stop().await;
}

#[tokio::test]
async fn stripe_sync_and_reconcile_do_nothing_without_stripe() {
    let h = Harness::start().await;
    assert!(
        aichat_billing::stripe_sync(&h.billing.config)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        aichat_billing::reconcile_once(&h.billing.config)
            .await
            .unwrap()
            .is_none()
    );
    h.stop().await;
}

#[tokio::test]
async fn reconcile_skips_its_turn_while_another_replica_holds_the_lock() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |_| {}).await;
    let mut other_replica = h.pool.get().await.unwrap();
    assert!(
        locks::try_lock(&mut other_replica, "billing.reconcile")
            .await
            .unwrap()
    );

    assert_eq!(
        aichat_billing::reconcile_once(&h.billing.config)
            .await
            .unwrap(),
        None
    );
    assert!(standin.requests().is_empty());

    assert!(
        locks::unlock(&mut other_replica, "billing.reconcile")
            .await
            .unwrap()
    );
    standin.push([page(vec![], false)]);
    assert_eq!(reconcile(&h).await, Reconciled::default());
    assert_eq!(standin.requests().len(), 1);
    drop(other_replica);
    h.stop().await;
}

#[tokio::test]
async fn serve_reconciles_every_interval_on_its_own() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, |c| {
        c.reconcile_interval = Duration::from_secs(1);
    })
    .await;
    let start_at = now() - DAY;
    let user = subscribed(&h, start_at).await;
    standin.push([page(
        vec![subscription(Some(user), PRO_MONTH, "active", start_at)],
        false,
    )]);

    eventually(
        "the periodic reconciliation",
        Duration::from_secs(10),
        || async { quota(&h, user).await == PRO_QUOTA },
    )
    .await;
    assert!(
        standin
            .requests()
            .iter()
            .all(|r| r.method == "GET" && r.path == "/v1/subscriptions")
    );
    h.stop().await;
}

#[tokio::test]
async fn an_ended_cancellation_stripe_has_not_applied_yet_is_not_republished_every_round() {
    let standin = StandIn::start([]);
    let h = start_with_stripe(&standin.base, every_second).await;
    let user = user(&h).await;
    // The period ended two hours ago; Stripe still shows the subscription
    // active, to cancel at the period's end (the same state as stored).
    let start_at = now() - 30 * DAY - 2 * 3600;
    let mut cancelling = subscription(Some(user), PLUS_MONTH, "active", start_at);
    cancelling["cancel_at_period_end"] = true.into();
    deliver_signed(
        &h,
        &event(
            "evt_cancel_at_end",
            "customer.subscription.updated",
            now() - 30,
            cancelling.clone(),
        ),
    )
    .await;
    standin.push([
        Reply::ok(cancelling.clone()),
        Reply::ok(cancelling.clone()),
        Reply::ok(cancelling),
    ]);

    eventually("Stripe asked twice", Duration::from_secs(10), || async {
        standin.requests().len() >= 2
    })
    .await;
    // The paid period is over: Free, but nothing new to publish.
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(changes(&h).await.len(), 1);
    h.stop().await;
}
