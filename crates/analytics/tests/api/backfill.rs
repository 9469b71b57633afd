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
    helpers::{Harness, assert_aggregates_match, dump, seed_plans},
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
    assert_aggregates_match(&h.pool).await;
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

#[test]
fn exported_rows_convert_to_the_consumers_states() {
    use aichat_analytics::store::apply::{
        ConversationFacts, Counters, InvoiceState, MessageFact, PaymentState, Profile,
        SubscriptionState, TokenUsageFact, UserFacts,
    };
    use aichat_proto::{billing::v1 as billing, chat::v1 as chat, identity::v1 as identity};
    use chrono::{DateTime, NaiveDate};

    use crate::scenario::money;
    let at = |s: i64| aichat_proto::timestamp(DateTime::from_timestamp(s, 0).unwrap());
    let naive = |s: i64| DateTime::from_timestamp(s, 0).unwrap().naive_utc();
    let (u, x) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let exported_at = naive(9_999);

    let user = identity::UserExport {
        user_id: u.to_string(),
        plan_tier: "PLUS".into(),
        role: "admin".into(),
        email_verified: true,
        is_active: false,
        created_at: Some(at(100)),
        plan_tier_changed_at: Some(at(200)),
    };
    assert_eq!(
        backfill::user(&user, exported_at).unwrap(),
        UserFacts {
            user_id: u,
            created_at: Some(naive(100)),
            plan: Some(("PLUS".into(), Some(naive(200)))),
            profile: Some(Profile {
                role: "admin".into(),
                email_verified: true,
                is_active: false,
                version: exported_at,
            }),
        }
    );
    // Never changed since registration: the registration's tier.
    let fresh = identity::UserExport {
        plan_tier_changed_at: None,
        ..user.clone()
    };
    assert_eq!(
        backfill::user(&fresh, exported_at).unwrap().plan,
        Some(("PLUS".into(), None))
    );
    assert!(
        backfill::user(
            &identity::UserExport {
                user_id: "nope".into(),
                ..user
            },
            exported_at
        )
        .is_err()
    );

    let subscription = billing::SubscriptionExport {
        subscription_id: x.to_string(),
        user_id: u.to_string(),
        plan_id: crate::scenario::PRO.into(),
        status: "active".into(),
        interval: "year".into(),
        current_period_start: Some(at(300)),
        current_period_end: Some(at(400)),
        cancel_at_period_end: false,
        created_at: Some(at(250)),
        version: Some(at(350)),
    };
    assert_eq!(
        backfill::subscription(&subscription).unwrap(),
        SubscriptionState {
            user_id: u,
            subscription_id: Some(x),
            plan_id: Some(uuid::Uuid::parse_str(crate::scenario::PRO).unwrap()),
            plan_tier: None,
            status: "active".into(),
            interval: Some("year".into()),
            current_period_start: Some(naive(300)),
            current_period_end: Some(naive(400)),
            created_at: Some(naive(250)),
            version: naive(350),
        }
    );

    let payment = billing::PaymentExport {
        payment_id: x.to_string(),
        user_id: u.to_string(),
        amount: "20.00".into(),
        amount_refunded: "5.00".into(),
        currency: "USD".into(),
        status: "succeeded".into(),
        created_at: Some(at(500)),
        version: Some(at(600)),
    };
    assert_eq!(
        backfill::payment(&payment).unwrap(),
        PaymentState {
            payment_id: x,
            user_id: u,
            amount: money("20.00"),
            amount_refunded: money("5.00"),
            currency: "USD".into(),
            status: "succeeded".into(),
            created_at: naive(500),
            version: naive(600),
        }
    );
    assert!(
        backfill::payment(&billing::PaymentExport {
            amount: "twenty".into(),
            ..payment
        })
        .is_err()
    );

    let invoice = billing::InvoiceExport {
        invoice_id: x.to_string(),
        user_id: u.to_string(),
        subscription_id: String::new(),
        invoice_number: "INV-1".into(),
        status: "open".into(),
        subtotal: "20.00".into(),
        tax: "0.00".into(),
        total: "20.00".into(),
        due_date: "2026-11-30".into(),
        paid_at: None,
        created_at: Some(at(700)),
        version: Some(at(800)),
    };
    assert_eq!(
        backfill::invoice(&invoice).unwrap(),
        InvoiceState {
            invoice_id: x,
            user_id: u,
            subscription_id: None,
            invoice_number: "INV-1".into(),
            status: "open".into(),
            subtotal: money("20.00"),
            tax: money("0.00"),
            total: money("20.00"),
            due_date: NaiveDate::from_ymd_opt(2026, 11, 30),
            paid_at: None,
            created_at: naive(700),
            version: naive(800),
        }
    );

    let conversation = chat::ConversationExport {
        conversation_id: x.to_string(),
        user_id: u.to_string(),
        model: "gpt-4o".into(),
        message_count: 4,
        token_count: 321,
        created_at: Some(at(900)),
        updated_at: Some(at(950)),
    };
    assert_eq!(
        backfill::conversation(&conversation).unwrap(),
        ConversationFacts {
            conversation_id: x,
            user_id: u,
            model: Some("gpt-4o".into()),
            created_at: Some(naive(900)),
            counters: Some(Counters {
                message_count: 4,
                token_count: 321,
                version: naive(950),
            }),
        }
    );

    let message = chat::MessageExport {
        message_id: x.to_string(),
        conversation_id: x.to_string(),
        user_id: u.to_string(),
        role: "user".into(),
        token_count: 7,
        model: String::new(),
        created_at: Some(at(1000)),
    };
    assert_eq!(
        backfill::message(&message).unwrap(),
        MessageFact {
            message_id: x,
            conversation_id: x,
            user_id: u,
            role: "user".into(),
            token_count: 7,
            model: None,
            created_at: naive(1000),
        }
    );

    let usage = chat::TokenUsageExport {
        usage_id: x.to_string(),
        user_id: u.to_string(),
        conversation_id: String::new(),
        message_id: String::new(),
        provider: "openai".into(),
        model: "gpt-4o".into(),
        prompt_tokens: 10,
        completion_tokens: 20,
        total_tokens: 30,
        cost_usd: "0.000123".into(),
        billing_month: "2026-11-01".into(),
        created_at: Some(at(1100)),
    };
    assert_eq!(
        backfill::token_usage(&usage).unwrap(),
        TokenUsageFact {
            usage_id: x,
            user_id: u,
            conversation_id: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            cost_usd: money("0.000123"),
            billing_month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            created_at: naive(1100),
        }
    );
    assert!(
        backfill::token_usage(&chat::TokenUsageExport {
            total_tokens: i64::from(i32::MAX) + 1,
            ..usage
        })
        .is_err()
    );
}
