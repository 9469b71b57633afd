//! `ExportSubscriptions`, `ExportPayments`, `ExportInvoices`: analytics'
//! backfill pages through every row, whoever's, by id, with no duplicate
//! and no gap; bad pages are refused naming the field.
#![expect(clippy::unwrap_used, reason = "tests: a failure fails the test")]

use std::{collections::HashSet, future::Future};

use aichat_proto::billing::v1::{ExportRequest, InvoiceExport, PaymentExport, SubscriptionExport};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use tonic::Status;
use uuid::Uuid;

use crate::helpers::{Harness, assert_invalid};

const ROWS: usize = 23;

/// `ROWS` subscriptions (every other one yearly; the first without a
/// Stripe event time), payments and invoices of `ROWS` users.
async fn seed(h: &Harness) {
    h.execute(&format!(
        "INSERT INTO subscriptions (userId, planId, stripeSubscriptionId, stripeCustomerId, \
           status, currentPeriodStart, currentPeriodEnd, cancelAtPeriodEnd, \
           stripeEventCreatedAt, billingInterval) \
         SELECT gen_random_uuid(), p.id, 'sub_' || n, 'cus_' || n, 'active', \
           '2026-11-01 00:00:00', '2026-12-01 00:00:00', n = 2, \
           CASE WHEN n = 1 THEN NULL ELSE TIMESTAMP '2026-11-01 00:00:05' END, \
           CASE WHEN n % 2 = 0 THEN 'year' ELSE 'month' END \
         FROM generate_series(1, {ROWS}) n, plans p WHERE p.name = 'Plus'"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO payments (userId, stripePaymentIntentId, amount, amountRefunded, currency, \
           status, stripeEventCreatedAt) \
         SELECT gen_random_uuid(), 'pi_' || n, 20 + n, CASE WHEN n = 1 THEN 5.5 ELSE 0 END, \
           'USD', 'succeeded', TIMESTAMP '2026-11-02 00:00:00' \
         FROM generate_series(1, {ROWS}) n"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO invoices (userId, subscriptionId, invoiceNumber, stripeInvoiceId, subtotal, \
           tax, total, status, dueDate, paidAt, stripeEventCreatedAt) \
         SELECT s.userId, CASE WHEN n = 1 THEN NULL ELSE s.id END, 'INV-' || n, 'in_' || n, \
           -1.5 + n, 0.25, n, CASE WHEN n = 1 THEN 'open' ELSE 'paid' END, \
           CASE WHEN n = 1 THEN DATE '2026-11-30' END, \
           CASE WHEN n = 1 THEN NULL ELSE TIMESTAMP '2026-11-03 00:00:00' END, \
           TIMESTAMP '2026-11-03 00:00:00' \
         FROM generate_series(1, {ROWS}) n \
         JOIN subscriptions s ON s.stripeSubscriptionId = 'sub_' || n"
    ))
    .await;
}

/// Every id of `table`, ascending, as text (as the database orders them).
async fn ids(h: &Harness, table: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct I {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query(format!("SELECT id::text AS id FROM {table} ORDER BY id"))
        .load::<I>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

fn request(after: &str, limit: u32) -> ExportRequest {
    ExportRequest {
        after: after.to_owned(),
        limit,
    }
}

/// Pages through one export with `limit`: every item, and the size of
/// each page.
async fn page_through<T, F, Fut>(limit: u32, mut call: F) -> (Vec<T>, Vec<usize>)
where
    F: FnMut(ExportRequest) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let (mut all, mut sizes, mut after) = (Vec::new(), Vec::new(), String::new());
    loop {
        let (items, next) = call(request(&after, limit)).await.unwrap();
        sizes.push(items.len());
        all.extend(items);
        if next.is_empty() {
            return (all, sizes);
        }
        assert!(sizes.len() <= ROWS, "the pages never end");
        after = next;
    }
}

fn no_duplicates(ids: &[String]) {
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
}

#[tokio::test]
async fn every_row_comes_once_in_id_order_across_pages() {
    let h = Harness::start().await;
    seed(&h).await;
    let client = h.client.clone();

    let (subs, sizes) = page_through(5, |r| {
        let mut c = client.clone();
        async move {
            let page = c.export_subscriptions(r).await?.into_inner();
            Ok((page.items, page.next))
        }
    })
    .await;
    // 23 rows in pages of 5: the last not full, so no empty page after it.
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    let got: Vec<String> = subs.iter().map(|s| s.subscription_id.clone()).collect();
    no_duplicates(&got);
    assert_eq!(got, ids(&h, "subscriptions").await);

    let (payments, sizes) = page_through(7, |r| {
        let mut c = client.clone();
        async move {
            let page = c.export_payments(r).await?.into_inner();
            Ok((page.items, page.next))
        }
    })
    .await;
    assert_eq!(sizes, [7, 7, 7, 2]);
    let got: Vec<String> = payments.iter().map(|p| p.payment_id.clone()).collect();
    no_duplicates(&got);
    assert_eq!(got, ids(&h, "payments").await);

    let (invoices, sizes) = page_through(10, |r| {
        let mut c = client.clone();
        async move {
            let page = c.export_invoices(r).await?.into_inner();
            Ok((page.items, page.next))
        }
    })
    .await;
    assert_eq!(sizes, [10, 10, 3]);
    let got: Vec<String> = invoices.iter().map(|i| i.invoice_id.clone()).collect();
    no_duplicates(&got);
    assert_eq!(got, ids(&h, "invoices").await);

    check_fields(&h, &subs, &payments, &invoices).await;
    h.stop().await;
}

/// What each export says of the seeded rows.
async fn check_fields(
    h: &Harness,
    subs: &[SubscriptionExport],
    payments: &[PaymentExport],
    invoices: &[InvoiceExport],
) {
    let plus = crate::webhooks::plan_id(h, "Plus").await.to_string();
    let nov = |day: u32, second: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(0, 0, second)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    let yearly = subs.iter().filter(|s| s.interval == "year").count();
    assert_eq!((yearly, subs.len() - yearly), (ROWS / 2, ROWS - ROWS / 2));
    for s in subs {
        assert_eq!(s.plan_id, plus);
        assert_eq!(s.status, "active");
        Uuid::parse_str(&s.user_id).unwrap();
        assert_eq!(s.current_period_start.unwrap().seconds, nov(1, 0));
        assert!(s.created_at.is_some());
    }
    assert_eq!(subs.iter().filter(|s| s.cancel_at_period_end).count(), 1);
    // The version is the Stripe event's time; without one, updatedAt.
    let versions: Vec<i64> = subs.iter().map(|s| s.version.unwrap().seconds).collect();
    assert_eq!(
        versions.iter().filter(|&&v| v == nov(1, 5)).count(),
        ROWS - 1
    );
    assert!(versions.iter().any(|&v| v > nov(2, 0)), "updatedAt: now");

    let mut amounts: Vec<(&str, &str)> = payments
        .iter()
        .map(|p| (p.amount.as_str(), p.amount_refunded.as_str()))
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts[0], ("21.00", "5.50"));
    assert_eq!(amounts[1], ("22.00", "0.00"));
    for p in payments {
        assert_eq!(
            (p.currency.as_str(), p.status.as_str()),
            ("USD", "succeeded")
        );
        assert_eq!(p.version.unwrap().seconds, nov(2, 0));
    }

    let first = invoices
        .iter()
        .find(|i| i.invoice_number == "INV-1")
        .unwrap();
    assert_eq!(first.subscription_id, "");
    assert_eq!(
        (
            first.subtotal.as_str(),
            first.tax.as_str(),
            first.total.as_str()
        ),
        ("-0.50", "0.25", "1.00")
    );
    assert_eq!(
        (first.status.as_str(), first.due_date.as_str()),
        ("open", "2026-11-30")
    );
    assert!(first.paid_at.is_none());
    let second = invoices
        .iter()
        .find(|i| i.invoice_number == "INV-2")
        .unwrap();
    assert_eq!(second.due_date, "");
    assert_eq!(second.paid_at.unwrap().seconds, nov(3, 0));
    let linked = subs.iter().find(|s| s.user_id == second.user_id).unwrap();
    assert_eq!(second.subscription_id, linked.subscription_id);
    assert!(
        invoices
            .iter()
            .all(|i| i.version.unwrap().seconds == nov(3, 0))
    );
}

#[tokio::test]
async fn a_full_last_page_is_followed_by_an_empty_one_and_zero_means_500() {
    let h = Harness::start().await;
    seed(&h).await;
    let mut client = h.client.clone();
    let all = ids(&h, "payments").await;

    let page = client
        .export_payments(request("", u32::try_from(ROWS).unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.items.len(), ROWS);
    assert_eq!(page.next, all[ROWS - 1]);
    let after_last = client
        .export_payments(request(&page.next, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(after_last.items.is_empty());
    assert_eq!(after_last.next, "");

    // 0: the default page (500), so all of them and no next.
    let page = client
        .export_invoices(request("", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.items.len(), page.next.as_str()), (ROWS, ""));
    // Resuming after any id gives exactly the rows above it.
    let page = client
        .export_subscriptions(request(&ids(&h, "subscriptions").await[9], 1000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.items.len(), ROWS - 10);

    // An empty table: one empty page.
    let fresh = Harness::start().await;
    let page = fresh
        .client
        .clone()
        .export_subscriptions(request("", 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.items.len(), page.next.as_str()), (0, ""));
    fresh.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_bad_after_or_limit_is_refused_naming_the_field() {
    let h = Harness::start().await;
    let mut c = h.client.clone();
    for (after, limit, field) in [
        ("", 1001, "limit"),
        ("not-an-id", 10, "after"),
        ("01a216c1-bf8e-7d99-b752", 0, "after"),
    ] {
        assert_invalid(c.export_subscriptions(request(after, limit)).await, field);
        assert_invalid(c.export_payments(request(after, limit)).await, field);
        assert_invalid(c.export_invoices(request(after, limit)).await, field);
    }
    // The largest page is fine.
    c.export_payments(request("", 1000)).await.unwrap();
    h.stop().await;
}
