//! API keys over gRPC: what is stored (a hash, never the secret), the
//! live-key limit under concurrency, expiry, the throttled `lastUsedAt`,
//! and what deleting a key or the account leaves.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use aichat_identity::testing::{TestIdentity, amqp_url, unique_exchange};
use aichat_messaging::AmqpConfig;
use aichat_proto::identity::v1::{
    CreateApiKeyRequest, DeleteUserRequest, RegisterRequest, RevokeApiKeyRequest, UserRef,
    VerifyApiKeyRequest, identity_client::IdentityClient,
};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use tonic::{Code, transport::Channel};

const PASSWORD: &str = "correct horse battery staple";

async fn spawn() -> (TestIdentity, IdentityClient<Channel>) {
    let identity = TestIdentity::spawn(AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    })
    .await
    .unwrap();
    let client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    (identity, client)
}

async fn user(client: &mut IdentityClient<Channel>, email: &str) -> String {
    client
        .register(RegisterRequest {
            email: email.into(),
            password: PASSWORD.into(),
            name: "Ada".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

fn create(user_id: &str, name: &str, expires_at: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        user_id: user_id.into(),
        name: name.into(),
        expires_at: (!expires_at.is_empty()).then(|| expires_at.into()),
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(identity: &TestIdentity, sql: &str) -> i64 {
    let pool = identity.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(format!("SELECT count(*) AS n FROM {sql}"))
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

async fn execute(identity: &TestIdentity, sql: &str) {
    let pool = identity.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_hash_of_a_key_is_stored_and_it_finds_the_key() {
    let (identity, mut client) = spawn().await;
    let id = user(&mut client, "ada@example.com").await;
    let created = client
        .create_api_key(create(&id, "laptop", ""))
        .await
        .unwrap()
        .into_inner();
    let key = created.key.unwrap();
    let secret = created.secret;
    assert!(
        secret.starts_with("sk-aichat-") && secret.len() == 53,
        "{secret}"
    );
    assert_eq!(key.prefix, secret[..14]);
    assert!(key.expires_at.is_none() && key.last_used_at.is_none());

    // The row holds the SHA-256 and no part of the secret past the prefix.
    let random = &secret[14..];
    assert_eq!(
        count(
            &identity,
            &format!("apiKeys a WHERE a::text LIKE '%{random}%'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &identity,
            &format!(
                "apiKeys WHERE keyHash = encode(sha256(convert_to('{secret}', 'UTF8')), 'hex') \
                 AND id = '{}'",
                key.id
            )
        )
        .await,
        1
    );
    // Nor does any event (creating publishes none).
    assert_eq!(
        count(
            &identity,
            &format!("outbox WHERE payload::text LIKE '%{random}%'")
        )
        .await,
        0
    );

    let principal = client
        .verify_api_key(VerifyApiKeyRequest {
            key: secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(principal.user_id, id);
    assert_eq!(principal.api_key_id, key.id);
    assert_eq!(principal.plan_tier, "FREE");

    let last = if secret.ends_with('A') { "B" } else { "A" };
    for wrong in [
        String::new(),
        "sk-aichat-short".to_owned(),
        format!("{}{last}", &secret[..52]),
        secret[10..].to_owned(),
    ] {
        let status = client
            .verify_api_key(VerifyApiKeyRequest { key: wrong })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_pass_the_limit() {
    let (identity, mut client) = spawn().await;
    let id = user(&mut client, "many@example.com").await;
    // An expired key does not count.
    client
        .create_api_key(create(
            &id,
            "old",
            &(chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
        ))
        .await
        .unwrap();
    execute(
        &identity,
        "UPDATE apiKeys SET expiresAt = now() - interval '1 minute'",
    )
    .await;

    let attempts = 32;
    let calls: Vec<_> = (0..attempts)
        .map(|i| {
            let mut client = client.clone();
            let request = create(&id, &format!("k{i}"), "");
            async move { client.create_api_key(request).await }
        })
        .collect();
    let answers = futures::future::join_all(calls).await;
    let (mut created, mut refused) = (0, 0);
    for answer in answers {
        match answer {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(String::from_utf8_lossy(status.details()).contains("api_key_limit"));
                refused += 1;
            }
        }
    }
    assert_eq!((created, refused), (20, attempts - 20));
    assert_eq!(
        count(&identity, "apiKeys WHERE expiresAt IS NULL").await,
        20
    );
    let listed = client
        .list_api_keys(UserRef {
            user_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(listed.len(), 21, "the expired key is still listed");
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused_and_use_is_recorded_at_most_once_a_minute() {
    let (identity, mut client) = spawn().await;
    let id = user(&mut client, "exp@example.com").await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let created = client
        .create_api_key(create(&id, "ci", &tomorrow))
        .await
        .unwrap()
        .into_inner();
    let key_id = created.key.unwrap().id;
    let verify = || VerifyApiKeyRequest {
        key: created.secret.clone(),
    };
    assert!(
        client
            .verify_api_key(verify())
            .await
            .unwrap()
            .into_inner()
            .expires_at
            .is_some()
    );
    let first = count(&identity, "apiKeys WHERE lastUsedAt IS NOT NULL").await;
    assert_eq!(first, 1);
    // Ten more uses within the minute: lastUsedAt stays as it was.
    execute(
        &identity,
        "UPDATE apiKeys SET lastUsedAt = now() - interval '30 seconds'",
    )
    .await;
    for _ in 0..10 {
        client.verify_api_key(verify()).await.unwrap();
    }
    assert_eq!(
        count(
            &identity,
            "apiKeys WHERE lastUsedAt < now() - interval '29 seconds'"
        )
        .await,
        1,
        "not rewritten within the minute"
    );
    execute(
        &identity,
        "UPDATE apiKeys SET lastUsedAt = now() - interval '61 seconds'",
    )
    .await;
    client.verify_api_key(verify()).await.unwrap();
    assert_eq!(
        count(
            &identity,
            "apiKeys WHERE lastUsedAt > now() - interval '5 seconds'"
        )
        .await,
        1,
        "rewritten after a minute"
    );

    execute(
        &identity,
        &format!(
            "UPDATE apiKeys SET expiresAt = now() - interval '1 second' WHERE id = '{key_id}'"
        ),
    )
    .await;
    let status = client.verify_api_key(verify()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_key_or_the_account_revokes_and_announces_each_key() {
    let (identity, mut client) = spawn().await;
    let ada = user(&mut client, "ada@example.com").await;
    let bob = user(&mut client, "bob@example.com").await;
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let c = client
            .create_api_key(create(&ada, name, ""))
            .await
            .unwrap()
            .into_inner();
        ids.push(c.key.unwrap().id);
        secrets.push(c.secret);
    }
    // Bob cannot delete Ada's key: the same answer as for no key at all.
    for (user_id, key_id) in [
        (bob.as_str(), ids[0].as_str()),
        (ada.as_str(), "0190a1b2-0000-7000-8000-000000000000"),
        (ada.as_str(), "not-a-uuid"),
    ] {
        let status = client
            .revoke_api_key(RevokeApiKeyRequest {
                user_id: user_id.into(),
                api_key_id: key_id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    assert_eq!(count(&identity, "apiKeys").await, 3);

    client
        .revoke_api_key(RevokeApiKeyRequest {
            user_id: ada.clone(),
            api_key_id: ids[0].clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        client
            .verify_api_key(VerifyApiKeyRequest {
                key: secrets[0].clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        count(
            &identity,
            &format!(
                "outbox WHERE eventType = 'identity.api_key.revoked' \
                 AND payload->'data'->>'apiKeyId' = '{}' AND payload->'data'->>'reason' = 'key_deleted'",
                ids[0]
            )
        )
        .await,
        1
    );

    client
        .delete_user(DeleteUserRequest {
            user_id: ada.clone(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    assert_eq!(count(&identity, "apiKeys").await, 0);
    for secret in &secrets[1..] {
        assert_eq!(
            client
                .verify_api_key(VerifyApiKeyRequest {
                    key: secret.clone()
                })
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
    for id in &ids[1..] {
        assert_eq!(
            count(
                &identity,
                &format!(
                    "outbox WHERE eventType = 'identity.api_key.revoked' \
                     AND payload->'data'->>'apiKeyId' = '{id}' AND payload->'data'->>'reason' = 'account_deleted'"
                )
            )
            .await,
            1
        );
    }
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}
