//! Mail leaves from `mailOutbox`: a slow or failing mail server never fails
//! the request that queued the mail, a failed send is retried, and a mail
//! is sent once.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::time::Duration;

use aichat_identity::{
    config::MailTransport,
    mail::worker::{MailWaker, Retry, Worker},
    store::schema::mail_outbox,
    testing::{TestIdentity, amqp_url, unique_exchange},
};
use aichat_messaging::AmqpConfig;
use aichat_proto::identity::v1::{RegisterRequest, TokenRequest, identity_client::IdentityClient};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::smtp::{FakeSmtp, Mode};

/// An identity service sending through `smtp`, giving up on a send after
/// 500 ms and retrying 100 ms later.
async fn identity_with(smtp: &FakeSmtp) -> TestIdentity {
    let amqp = AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    };
    let url = smtp.url.clone();
    TestIdentity::spawn_with(amqp, move |config| {
        config.mail = MailTransport::Smtp(url.into());
        config.smtp_timeout = Duration::from_millis(500);
        config.mail_retry_base = Duration::from_millis(100);
    })
    .await
    .unwrap()
}

async fn register(identity: &TestIdentity, email: &str) -> tonic::Result<()> {
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    client
        .register(RegisterRequest {
            email: email.to_owned(),
            password: "correct horse battery staple".into(),
            name: "Ada".into(),
        })
        .await
        .map(drop)
}

/// (attempts, lastError) of each queued mail.
async fn queued(identity: &TestIdentity) -> Vec<(i32, Option<String>)> {
    let pool = identity.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    mail_outbox::table
        .select((mail_outbox::attempts, mail_outbox::last_error))
        .load(&mut conn)
        .await
        .unwrap()
}

/// Polls `check` every 20 ms for up to 10 s.
async fn until<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn token(mail: &str) -> String {
    let start = mail.find("verify-email?token=").unwrap() + "verify-email?token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_succeeds_while_the_mail_server_hangs_and_the_mail_leaves_once_it_answers() {
    let smtp = FakeSmtp::start(Mode::Hang).await;
    let identity = identity_with(&smtp).await;

    // Answered without waiting for the mail server (lettre alone would wait
    // a minute for its greeting).
    tokio::time::timeout(
        Duration::from_secs(3),
        register(&identity, "ada@example.com"),
    )
    .await
    .expect("registration does not wait for the mail server")
    .expect("registration succeeds");

    // The send timed out and the mail waits for its next attempt.
    until("a timed-out attempt", async || {
        queued(&identity)
            .await
            .as_slice()
            .first()
            .is_some_and(|(attempts, error)| *attempts >= 1 && error.is_some())
    })
    .await;
    assert!(smtp.received().is_empty());

    smtp.set(Mode::Accept);
    identity.mail_sent().await.unwrap();
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: ada@example.com"), "{}", mails[0]);

    // The mailed link works.
    let mut client = IdentityClient::connect(identity.url.clone()).await.unwrap();
    let user = client
        .verify_email(TokenRequest {
            token: token(&mails[0]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(user.email_verified);
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mail_is_retried_until_it_is_sent_and_is_sent_once() {
    let smtp = FakeSmtp::start(Mode::Refuse).await;
    let identity = identity_with(&smtp).await;
    register(&identity, "grace@example.com").await.unwrap();

    until("a retry after a refusal", async || {
        queued(&identity)
            .await
            .as_slice()
            .first()
            .is_some_and(|(attempts, error)| {
                *attempts >= 2 && error.as_deref().is_some_and(|e| e.contains("451"))
            })
    })
    .await;
    assert!(smtp.received().is_empty());

    smtp.set(Mode::Accept);
    identity.mail_sent().await.unwrap();
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "sent once");
    assert!(mails[0].contains("To: grace@example.com"));
    identity.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_queue_and_send_each_mail_once() {
    const USERS: usize = 12;
    let smtp = FakeSmtp::start(Mode::Hang).await;
    let identity = identity_with(&smtp).await;
    // Queued while the service's own worker cannot send.
    for i in 0..USERS {
        register(&identity, &format!("user{i}@example.com"))
            .await
            .unwrap();
    }
    // A second worker, as another replica would run, on the same table.
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mailer = aichat_identity::mailer(&identity.config).unwrap();
    tasks.spawn(
        Worker::new(
            identity.pool().unwrap(),
            mailer,
            MailWaker::default(),
            Retry {
                max_attempts: 8,
                base: Duration::from_millis(100),
                max: Duration::from_millis(100),
            },
            Duration::from_millis(500),
        )
        .run(stop.clone()),
    );
    smtp.set(Mode::Accept);
    identity.mail_sent().await.unwrap();

    let mut recipients: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("To: ")).map(str::to_owned))
        .collect();
    assert_eq!(recipients.len(), USERS, "one mail each");
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), USERS, "no mail twice");
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    identity.stop().await;
}
