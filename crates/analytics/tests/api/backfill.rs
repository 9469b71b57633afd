//! `analytics backfill`: from the owning services' rows, the same read
//! models as from the events; resumable; idempotent.
#![expect(clippy::unwrap_used, reason = "tests")]

use aichat_analytics::{
    backfill::{self, Exporter, GrpcExporter, Rows, Source},
    store::cursors,
    testing::TestAnalytics,
};
use aichat_billing::testing::{TestBilling, delete_exchange, unique_amqp};

use crate::{
    helpers::{Harness, dump, seed_plans},
    scenario::{Scenario, plans},
};

#[tokio::test]
async fn backfill_gives_the_answers_of_the_events_and_twice_changes_nothing() {
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    // A wiped analytics database, rebuilt from the services' rows (two
    // rows a page, to cross pages).
    let h = Harness::start().await;
    let mut exporter = s.export.clone();
    let report = backfill::run(&h.pool, &mut exporter, 2).await.unwrap();
    assert_eq!(
        report.applied,
        [
            ("plans", 3),
            ("users", 4),
            ("subscriptions", 3),
            ("payments", 6),
            ("invoices", 3),
            ("conversations", 2),
            ("messages", 4),
            ("tokenUsage", 3),
        ]
    );
    assert_eq!(h.answers().await, expected);

    // A second run starts over and changes nothing.
    let before = dump(&h.pool).await;
    let again = backfill::run(&h.pool, &mut s.export.clone(), 500)
        .await
        .unwrap();
    assert_eq!(again.applied.len(), Source::ALL.len());
    assert_eq!(dump(&h.pool).await, before);

    // Then the events (all of them, as a replay would bring): nothing
    // counted twice, nothing resurrected.
    h.deliver(&s.events).await;
    assert_eq!(h.answers().await, expected);

    // And backfill after the events changes nothing either.
    let before = dump(&h.pool).await;
    backfill::run(&h.pool, &mut s.export.clone(), 3)
        .await
        .unwrap();
    assert_eq!(dump(&h.pool).await, before);
    assert_eq!(h.answers().await, expected);
    reference.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_killed_backfill_resumes_after_its_last_applied_page() {
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    let h = Harness::start().await;
    // Plans (1 page), users (2 pages of 2), then the connection drops in
    // the middle of subscriptions.
    let mut failing = s.export.clone();
    failing.fail_after = Some(4);
    assert!(backfill::run(&h.pool, &mut failing, 2).await.is_err());
    let mut conn = h.pool.get().await.unwrap();
    let progress = cursors::all(&mut conn).await.unwrap();
    let of = |name: &str| progress.iter().find(|c| c.source == name).unwrap().clone();
    assert!(of("plans").finished_at.is_some());
    assert!(of("users").finished_at.is_some());
    let subscriptions = of("subscriptions");
    assert!(subscriptions.finished_at.is_none());
    assert_eq!(subscriptions.rows, 2);
    assert!(!subscriptions.after.is_empty());
    drop(conn);

    // The next run goes on from there: the rest of subscriptions, then
    // the sources not started.
    let mut resumed = s.export.clone();
    let report = backfill::run(&h.pool, &mut resumed, 2).await.unwrap();
    assert_eq!(report.applied[0], ("subscriptions", 1));
    assert_eq!(
        report.applied.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [
            "subscriptions",
            "payments",
            "invoices",
            "conversations",
            "messages",
            "tokenUsage"
        ]
    );
    assert_eq!(h.answers().await, expected);
    reference.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn plans_come_from_billing_list_plans() {
    let amqp = unique_amqp();
    let billing = TestBilling::spawn(amqp.clone()).await.unwrap();
    let analytics = TestAnalytics::spawn_with(amqp.clone(), |c| {
        c.billing_grpc_url = Some(billing.url.clone());
    })
    .await
    .unwrap();
    // Read at start-up by the maintenance round.
    let pool = analytics.pool().unwrap();
    let seeded = Harness::start().await;
    seed_plans(&seeded.pool).await;
    let wanted = plans_dump(&seeded.pool).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while plans_dump(&pool).await != wanted {
        assert!(std::time::Instant::now() < deadline, "plans not read");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The same through backfill's exporter.
    let mut exporter =
        GrpcExporter::new("http://127.0.0.1:1", "http://127.0.0.1:1", &billing.url).unwrap();
    let page = exporter.page(Source::Plans, "", 500).await.unwrap();
    let Rows::Plans(mut got) = page.rows else {
        panic!("not plans")
    };
    got.sort_by_key(|p| p.name.clone());
    let mut expected = plans();
    expected.sort_by_key(|p| p.name.clone());
    assert_eq!(got, expected);
    assert!(page.next.is_empty());
    seeded.stop().await;
    analytics.stop().await;
    billing.stop().await;
    delete_exchange(&amqp).await.unwrap();
}

async fn plans_dump(pool: &aichat_db::Pool) -> String {
    dump(pool)
        .await
        .lines()
        .find(|l| l.starts_with("plans:"))
        .unwrap()
        .to_owned()
}
