//! Retention: rows past their window are deleted, rows inside it are kept,
//! and a revoked session whose access tokens may still be valid stays in
//! what gateways rebuild their deny list from.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use aichat_identity::{
    retention::{self, Pruned},
    store,
    testing::{TestIdentity, amqp_url, unique_exchange},
};
use aichat_messaging::AmqpConfig;
use aichat_proto::identity::v1::{
    ListRevokedSessionsRequest, LoginRequest, RefreshRequest, RegisterRequest, SessionRef,
    identity_client::IdentityClient,
};
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tokio_util::sync::CancellationToken;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, from_where: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {from_where}"))
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_rows_past_their_window_and_keeps_the_rest() {
    let amqp = AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    };
    let identity = TestIdentity::spawn(amqp).await.unwrap();
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    let user = client
        .register(RegisterRequest {
            email: "ada@example.com".into(),
            password: "correct horse battery staple".into(),
            name: "Ada".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let login = || LoginRequest {
        email: "ada@example.com".into(),
        password: "correct horse battery staple".into(),
        client: None,
    };
    // A live session that has rotated its refresh token once...
    let live = client.login(login()).await.unwrap().into_inner();
    client
        .refresh(RefreshRequest {
            refresh_token: live.refresh_token.clone(),
            client: None,
        })
        .await
        .unwrap();
    // ...and one logged out just now: its access token is still valid.
    let out = client.login(login()).await.unwrap().into_inner();
    client
        .logout(SessionRef {
            user_id: user.id.clone(),
            session_id: out.session_id.clone(),
        })
        .await
        .unwrap();

    // Rows from the past, on either side of their windows (7 days for
    // ended sessions and expired tokens, 15 min + 1 h for revocations,
    // 7 days for the inbox).
    let pool = identity.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO sessions (id, userId, token, expiresAt, isActive, revokedAt) VALUES
           ('00000000-0000-7000-8000-000000000001', '{u}', 'old-expired', now() - interval '8 days', true, NULL),
           ('00000000-0000-7000-8000-000000000002', '{u}', 'recently-expired', now() - interval '1 day', true, NULL),
           ('00000000-0000-7000-8000-000000000003', '{u}', 'old-revoked', now() + interval '20 days', false, now() - interval '8 days');
         INSERT INTO sessionRotatedTokens (tokenHash, sessionId) VALUES
           ('rotated-of-old-expired', '00000000-0000-7000-8000-000000000001'),
           ('rotated-of-recently-expired', '00000000-0000-7000-8000-000000000002');
         INSERT INTO sessionRevocations (sessionId, userId, revokedAt) VALUES
           ('00000000-0000-7000-8000-0000000000a1', '{u}', now() - interval '2 hours'),
           ('00000000-0000-7000-8000-0000000000a2', '{u}', now() - interval '30 minutes');
         INSERT INTO emailVerifications (userId, email, token, expiresAt) VALUES
           ('{u}', 'ada@example.com', 'verify-old', now() - interval '8 days'),
           ('{u}', 'ada@example.com', 'verify-recent', now() - interval '1 day');
         INSERT INTO passwordResets (userId, email, token, expiresAt) VALUES
           ('{u}', 'ada@example.com', 'reset-old', now() - interval '8 days'),
           ('{u}', 'ada@example.com', 'reset-recent', now() - interval '1 day');
         INSERT INTO apiKeys (id, userId, name, keyHash, prefix, expiresAt) VALUES
           ('00000000-0000-7000-8000-0000000000b1', '{u}', 'old', 'hash-old', 'sk-aichat-old', now() - interval '8 days'),
           ('00000000-0000-7000-8000-0000000000b2', '{u}', 'recent', 'hash-recent', 'sk-aichat-rec', now() - interval '1 day'),
           ('00000000-0000-7000-8000-0000000000b3', '{u}', 'live', 'hash-live', 'sk-aichat-liv', now() + interval '1 day'),
           ('00000000-0000-7000-8000-0000000000b4', '{u}', 'forever', 'hash-forever', 'sk-aichat-for', NULL);
         INSERT INTO inbox (eventId, eventType, processedAt)
           SELECT gen_random_uuid(), 'test.old', now() - interval '8 days' FROM generate_series(1, 2500);
         INSERT INTO inbox (eventId, eventType, processedAt)
           VALUES (gen_random_uuid(), 'test.recent', now() - interval '1 day');",
        u = user.id
    ))
    .await
    .unwrap();

    let config = aichat_identity::retention(&identity.config).unwrap();
    let pruned = retention::prune(&pool, &config, store::now(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        pruned,
        Pruned {
            sessions: 2,
            rotated_tokens: 2,
            revocations: 1,
            mailed_tokens: 2,
            api_keys: 1,
            inbox: 2500,
        }
    );

    // Kept: the live session with its rotated token, the logged-out one,
    // the recently expired one (its rotated token is moot).
    assert_eq!(count(&mut conn, "sessions").await, 3);
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "sessionRotatedTokens WHERE sessionId = '{}'",
                live.session_id
            )
        )
        .await,
        1
    );
    assert_eq!(count(&mut conn, "sessionRotatedTokens").await, 1);
    assert_eq!(count(&mut conn, "sessionRevocations").await, 2);
    assert_eq!(
        count(&mut conn, "emailVerifications WHERE token <> 'verify-old'").await,
        2
    );
    assert_eq!(
        count(&mut conn, "passwordResets WHERE token = 'reset-recent'").await,
        1
    );
    assert_eq!(count(&mut conn, "passwordResets").await, 1);
    assert_eq!(count(&mut conn, "inbox").await, 1);
    // The key expired a day ago is still listed to its owner; the live one
    // and the one that never expires stay.
    assert_eq!(
        count(
            &mut conn,
            "apiKeys WHERE name IN ('recent', 'live', 'forever')"
        )
        .await,
        3
    );
    assert_eq!(count(&mut conn, "apiKeys").await, 3);

    // The logged-out session is still in the gateways' deny list source,
    // as asked for on a gateway's start (an access token's life ago).
    let since = chrono::Utc::now() - chrono::Duration::seconds(900 + 60);
    let revoked = client
        .list_revoked_sessions(ListRevokedSessionsRequest {
            since: Some(aichat_proto::Timestamp {
                seconds: since.timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = revoked
        .items
        .iter()
        .map(|r| r.session_id.as_str())
        .collect();
    assert!(ids.contains(&out.session_id.as_str()), "{ids:?}");

    // A second round finds nothing more.
    let again = retention::prune(&pool, &config, store::now(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again, Pruned::default());
    drop(conn);
    identity.stop().await;
}
