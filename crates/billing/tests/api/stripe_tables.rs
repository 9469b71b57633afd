//! The payment half's tables as the migrations create them: the seed's
//! UNIQUEs, CHECKs and foreign keys, billing's additions, and the schema's
//! Rust names reading them back.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use aichat_billing::{
    store::schema::{invoices, payments, plans, stripe_events, subscriptions},
    testing::TEMPLATE,
};
use aichat_db::testing::TestDatabase;
use bigdecimal::BigDecimal;
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

const PLUS: &str = "01a216c1-bf8f-7ea8-964c-3886ed72bdbe";

async fn connect() -> (TestDatabase, AsyncPgConnection) {
    let db = TestDatabase::new(&TEMPLATE).await.unwrap();
    let conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    (db, conn)
}

async fn run(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, Error> {
    diesel::sql_query(sql).execute(conn).await
}

/// The constraint that refused `sql`, and how.
async fn refused(conn: &mut AsyncPgConnection, sql: &str) -> (DatabaseErrorKind, String) {
    match run(conn, sql).await {
        Err(Error::DatabaseError(kind, info)) => {
            (kind, info.constraint_name().unwrap_or_default().to_owned())
        }
        other => panic!("expected a refusal of {sql}, got {other:?}"),
    }
}

fn subscription_sql(id: Uuid, user: Uuid, stripe_id: &str, status: &str, end: &str) -> String {
    format!(
        "INSERT INTO subscriptions (id, userId, planId, stripeSubscriptionId, stripeCustomerId, \
         status, currentPeriodStart, currentPeriodEnd) VALUES ('{id}', '{user}', '{PLUS}', \
         '{stripe_id}', 'cus_1', '{status}', '2026-12-01 00:00:00', '{end}')"
    )
}

#[tokio::test]
async fn subscriptions_keep_one_per_user_and_the_seeds_statuses() {
    let (_db, mut conn) = connect().await;
    let (user, sub) = (Uuid::now_v7(), Uuid::now_v7());
    run(
        &mut conn,
        &subscription_sql(sub, user, "sub_1", "active", "2027-01-01"),
    )
    .await
    .unwrap();

    let (status, end, at_period_end, plan) = subscriptions::table
        .find(sub)
        .select((
            subscriptions::status,
            subscriptions::current_period_end,
            subscriptions::cancel_at_period_end,
            subscriptions::plan_id,
        ))
        .first::<(String, chrono::NaiveDateTime, Option<bool>, Uuid)>(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "active");
    assert_eq!(end.to_string(), "2027-01-01 00:00:00");
    assert_eq!(at_period_end, Some(false), "the seed's default");
    assert_eq!(plan.to_string(), PLUS);

    let other = Uuid::now_v7();
    let cases = [
        (
            subscription_sql(Uuid::now_v7(), user, "sub_2", "active", "2027-01-01"),
            DatabaseErrorKind::UniqueViolation,
            "subscriptions_userid_key",
        ),
        (
            subscription_sql(Uuid::now_v7(), other, "sub_1", "active", "2027-01-01"),
            DatabaseErrorKind::UniqueViolation,
            "subscriptions_stripesubscriptionid_key",
        ),
        (
            subscription_sql(Uuid::now_v7(), other, "sub_3", "trialing", "2027-01-01"),
            DatabaseErrorKind::CheckViolation,
            "check_subscription_status",
        ),
        (
            subscription_sql(Uuid::now_v7(), other, "sub_3", "active", "2026-11-30"),
            DatabaseErrorKind::CheckViolation,
            "check_subscriptions_currentperiod",
        ),
        (
            subscription_sql(Uuid::now_v7(), other, "sub_3", "active", "2027-01-01")
                .replace(PLUS, &Uuid::now_v7().to_string()),
            DatabaseErrorKind::ForeignKeyViolation,
            "subscriptions_planid_fkey",
        ),
    ];
    for (sql, kind, constraint) in cases {
        assert_eq!(
            refused(&mut conn, &sql).await,
            (kind, constraint.to_owned()),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn payments_and_invoices_outlive_their_subscription_and_keep_their_checks() {
    let (_db, mut conn) = connect().await;
    let (user, sub) = (Uuid::now_v7(), Uuid::now_v7());
    run(
        &mut conn,
        &subscription_sql(sub, user, "sub_1", "active", "2027-01-01"),
    )
    .await
    .unwrap();
    let payment = |intent: &str, amount: &str, currency: &str, status: &str| {
        format!(
            "INSERT INTO payments (userId, subscriptionId, stripePaymentIntentId, stripeInvoiceId, \
             amount, currency, status) VALUES ('{user}', '{sub}', '{intent}', 'in_1', {amount}, \
             '{currency}', '{status}')"
        )
    };
    let invoice = |number: &str, stripe_id: &str, status: &str, tax: &str| {
        format!(
            "INSERT INTO invoices (userId, subscriptionId, invoiceNumber, stripeInvoiceId, \
             subtotal, tax, total, status) VALUES ('{user}', '{sub}', '{number}', '{stripe_id}', \
             20.00, {tax}, 20.00, '{status}')"
        )
    };
    run(&mut conn, &payment("pi_1", "20.00", "USD", "succeeded"))
        .await
        .unwrap();
    run(&mut conn, &invoice("ABC-0001", "in_1", "paid", "0"))
        .await
        .unwrap();
    // A proration credit: Stripe's invoices may total less than zero.
    run(
        &mut conn,
        &invoice("ABC-0002", "in_2", "paid", "0").replace("20.00, 0, 20.00", "-5.00, 0, -5.00"),
    )
    .await
    .unwrap();

    let cases = [
        (
            payment("pi_1", "20.00", "USD", "succeeded"),
            DatabaseErrorKind::UniqueViolation,
            "payments_stripepaymentintentid_key",
        ),
        (
            payment("pi_2", "20.00", "USD", "paid"),
            DatabaseErrorKind::CheckViolation,
            "check_status",
        ),
        (
            payment("pi_2", "-1.00", "USD", "refunded"),
            DatabaseErrorKind::CheckViolation,
            "check_payments_amount",
        ),
        (
            payment("pi_2", "20.00", "usd", "succeeded"),
            DatabaseErrorKind::CheckViolation,
            "check_payments_currency",
        ),
        (
            invoice("ABC-0001", "in_3", "open", "0"),
            DatabaseErrorKind::UniqueViolation,
            "invoices_invoicenumber_key",
        ),
        (
            invoice("ABC-0003", "in_1", "open", "0"),
            DatabaseErrorKind::UniqueViolation,
            "invoices_stripeinvoiceid_key",
        ),
        (
            invoice("ABC-0003", "in_3", "overdue", "0"),
            DatabaseErrorKind::CheckViolation,
            "check_invoices_status",
        ),
        (
            invoice("ABC-0003", "in_3", "open", "-1"),
            DatabaseErrorKind::CheckViolation,
            "check_invoices_tax",
        ),
    ];
    for (sql, kind, constraint) in cases {
        assert_eq!(
            refused(&mut conn, &sql).await,
            (kind, constraint.to_owned()),
            "{sql}"
        );
    }

    // The seed's ON DELETE SET NULL: the money's records stay, unlinked.
    run(
        &mut conn,
        &format!("DELETE FROM subscriptions WHERE id = '{sub}'"),
    )
    .await
    .unwrap();
    let paid: Vec<(Option<Uuid>, BigDecimal)> = payments::table
        .filter(payments::user_id.eq(user))
        .select((payments::subscription_id, payments::amount))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(paid, vec![(None, "20.00".parse().unwrap())]);
    let invoiced: Vec<Option<Uuid>> = invoices::table
        .filter(invoices::user_id.eq(user))
        .select(invoices::subscription_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(invoiced, vec![None, None]);
}

#[tokio::test]
async fn a_stripe_event_is_logged_once_and_a_customer_is_one_per_user() {
    let (_db, mut conn) = connect().await;
    let log = |id: &str| {
        diesel::insert_into(stripe_events::table)
            .values((
                stripe_events::stripe_event_id.eq(id.to_owned()),
                stripe_events::event_type.eq("customer.subscription.updated"),
                stripe_events::event_created_at.eq(chrono::DateTime::from_timestamp(
                    1_680_064_028,
                    0,
                )
                .unwrap()
                .naive_utc()),
            ))
            .on_conflict_do_nothing()
    };
    assert_eq!(log("evt_1").execute(&mut conn).await.unwrap(), 1);
    assert_eq!(
        log("evt_1").execute(&mut conn).await.unwrap(),
        0,
        "a redelivery"
    );
    assert_eq!(log("evt_2").execute(&mut conn).await.unwrap(), 1);

    let user = Uuid::now_v7();
    let customer = |user: Uuid, id: &str| {
        format!("INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', '{id}')")
    };
    run(&mut conn, &customer(user, "cus_1")).await.unwrap();
    assert_eq!(
        refused(&mut conn, &customer(user, "cus_2")).await,
        (
            DatabaseErrorKind::UniqueViolation,
            "stripecustomers_pkey".to_owned()
        )
    );
    assert_eq!(
        refused(&mut conn, &customer(Uuid::now_v7(), "cus_1")).await,
        (
            DatabaseErrorKind::UniqueViolation,
            "stripecustomers_stripecustomerid_key".to_owned()
        )
    );

    // Plans have no Stripe prices until price sync stores them.
    let prices: Vec<(Option<String>, Option<String>)> = plans::table
        .select((plans::stripe_price_id, plans::stripe_yearly_price_id))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(prices.len(), 3);
    assert!(prices.iter().all(|p| *p == (None, None)));
}
