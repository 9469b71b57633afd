//! `ExportUsers`, which analytics' backfill pages through: every user once,
//! by id, in pages of `limit`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use aichat_identity::testing::{TestIdentity, amqp_url, unique_exchange};
use aichat_messaging::AmqpConfig;
use aichat_proto::identity::v1::{
    ExportRequest, RegisterRequest, UserExport, identity_client::IdentityClient,
};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use tonic::transport::Channel;

async fn spawn() -> TestIdentity {
    TestIdentity::spawn(AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    })
    .await
    .unwrap()
}

/// Every page from the first with `limit`; the users, and how many pages.
async fn page_through(
    client: &mut IdentityClient<Channel>,
    limit: u32,
) -> (Vec<UserExport>, usize) {
    let size = if limit == 0 { 500 } else { limit as usize };
    let (mut all, mut pages, mut after) = (Vec::new(), 0, String::new());
    loop {
        let page = client
            .export_users(ExportRequest {
                after: after.clone(),
                limit,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        if page.next.is_empty() {
            assert!(page.items.len() < size, "only a page not full is the last");
            all.extend(page.items);
            return (all, pages);
        }
        assert_eq!(page.items.len(), size, "a page with a next is full");
        assert_eq!(page.items.last().unwrap().user_id, page.next);
        after = page.next;
        all.extend(page.items);
        assert!(pages < 100, "paging does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_users_pages_through_every_user_once_in_id_order() {
    let identity = spawn().await;
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    let registered = client
        .register(RegisterRequest {
            email: "first@example.com".into(),
            password: "correct horse battery staple".into(),
            name: "First".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let pool = identity.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    // 24 more: some on a paid plan since a known time, one admin, some
    // verified, some deactivated.
    conn.batch_execute(
        "INSERT INTO users (email, password, name, planTier, planTierChangedAt, role, emailVerified, emailVerifiedAt, isActive, createdAt)
         SELECT 'u' || i || '@example.com', 'x', 'U' || i,
                CASE WHEN i % 3 = 0 THEN 'PRO' ELSE 'FREE' END,
                CASE WHEN i % 3 = 0 THEN TIMESTAMP '2026-11-20 08:30:00.25' END,
                CASE WHEN i = 7 THEN 'admin' ELSE 'user' END,
                i % 2 = 0, CASE WHEN i % 2 = 0 THEN now() END,
                i <> 11, TIMESTAMP '2026-11-01 00:00:00' + i * INTERVAL '1 hour'
         FROM generate_series(1, 24) i",
    )
    .await
    .unwrap();
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let expected: Vec<String> = diesel::sql_query("SELECT id::text AS id FROM users ORDER BY id")
        .load::<Id>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(expected.len(), 25);

    let ids = |users: &[UserExport]| users.iter().map(|u| u.user_id.clone()).collect::<Vec<_>>();
    for (limit, pages) in [(7, 4), (5, 6), (25, 2), (0, 1), (1000, 1)] {
        let (users, n) = page_through(&mut client, limit).await;
        assert_eq!(ids(&users), expected, "limit {limit}");
        assert_eq!(n, pages, "limit {limit}");
    }

    let (users, _) = page_through(&mut client, 0).await;
    let first = users.iter().find(|u| u.user_id == registered.id).unwrap();
    assert_eq!(
        (first.plan_tier.as_str(), first.role.as_str()),
        ("FREE", "user")
    );
    assert!(first.is_active && !first.email_verified);
    assert!(first.created_at.is_some());
    assert_eq!(first.plan_tier_changed_at, None, "never changed");
    let pro: Vec<&UserExport> = users.iter().filter(|u| u.plan_tier == "PRO").collect();
    assert_eq!(pro.len(), 8);
    for u in pro {
        let at = u.plan_tier_changed_at.unwrap();
        assert_eq!((at.seconds, at.nanos), (1_795_163_400, 250_000_000));
    }
    assert_eq!(users.iter().filter(|u| u.role == "admin").count(), 1);
    assert_eq!(users.iter().filter(|u| u.email_verified).count(), 12);
    assert_eq!(users.iter().filter(|u| !u.is_active).count(), 1);
    drop(conn);
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_users_refuses_a_malformed_after_and_a_limit_over_1000() {
    let identity = spawn().await;
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    for (after, limit, fields) in [
        ("not-an-id", 10, vec!["after"]),
        ("", 1001, vec!["limit"]),
        ("42", u32::MAX, vec!["after", "limit"]),
    ] {
        let refused = client
            .export_users(ExportRequest {
                after: after.to_owned(),
                limit,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        let details: serde_json::Value = serde_json::from_slice(refused.details()).unwrap();
        assert_eq!(details["code"], "validation_failed");
        let named: Vec<&str> = details["errors"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(named, fields, "{details}");
    }
    identity.stop().await;
}
