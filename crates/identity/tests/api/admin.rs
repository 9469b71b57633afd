//! `make admin`: the identity command that grants the admin role.

use aichat_identity::{
    service::Error,
    testing::{TestIdentity, amqp_url, unique_exchange},
};
use aichat_messaging::AmqpConfig;
use aichat_proto::identity::v1::{RegisterRequest, identity_client::IdentityClient};
use diesel_async::RunQueryDsl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_admin_grants_the_role_and_reports_the_change() {
    let amqp = AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    };
    let identity = TestIdentity::spawn(amqp).await.unwrap();
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    client
        .register(RegisterRequest {
            email: "boss@example.com".into(),
            password: "correct horse battery staple".into(),
            name: "Boss".into(),
        })
        .await
        .unwrap();

    let pool = identity.pool().unwrap();
    let accounts = aichat_identity::accounts(
        &identity.config,
        pool.clone(),
        aichat_messaging::relay::Waker::default(),
        aichat_identity::mail::worker::MailWaker::default(),
    )
    .unwrap();
    let user = accounts.make_admin("  BOSS@example.com ").await.unwrap();
    assert_eq!(user.role, "admin");
    assert!(matches!(
        accounts.make_admin("nobody@example.com").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        accounts.make_admin("not an email").await,
        Err(Error::Validation(_))
    ));

    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.unwrap();
    let updated: N = diesel::sql_query(
        "SELECT count(*) AS n FROM outbox WHERE eventType = 'identity.user.updated' AND payload->'data'->'user'->>'role' = 'admin'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(updated.n, 1);
    identity.outbox_drained().await.unwrap();
    identity.stop().await;
}
