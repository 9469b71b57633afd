//! Outgoing mail (lettre): one RFC 5322 `.eml` per mail in a folder, or SMTP.

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use secrecy::ExposeSecret;

use crate::config::MailTransport;

/// Sends the service's mails.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    public_url: String,
}

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport; for `file`, creates the folder.
    pub fn new(transport: &MailTransport, from: &str, public_url: &str) -> anyhow::Result<Self> {
        let transport = match transport {
            MailTransport::File(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating MAIL_DIR {}", dir.display()))?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            MailTransport::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("reading SMTP_URL")?
                    .build(),
            ),
        };
        Ok(Self {
            transport,
            from: from.parse().context("reading MAIL_FROM")?,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The verification mail, with a link carrying `?token=`.
    pub async fn send_verification(&self, to: &str, name: &str, token: &str) -> anyhow::Result<()> {
        let link = format!("{}/verify-email?token={token}", self.public_url);
        let body = format!(
            "Hello {name},\n\nplease confirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in 24 hours. If you did not sign up, ignore this mail.\n"
        );
        self.send(to, "Confirm your email address", body).await
    }

    /// The password reset mail, with a link carrying `?token=`.
    pub async fn send_password_reset(
        &self,
        to: &str,
        name: &str,
        token: &str,
    ) -> anyhow::Result<()> {
        let link = format!("{}/reset-password?token={token}", self.public_url);
        let body = format!(
            "Hello {name},\n\nsomeone asked to reset the password of this account. To choose a new \
             password, open this link:\n\n{link}\n\nThe link works once and expires in 1 hour. If it \
             was not you, ignore this mail: your password stays as it is.\n"
        );
        self.send(to, "Reset your password", body).await
    }

    async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .context("building a mail")?;
        match &self.transport {
            Transport::File(t) => t
                .send(message)
                .await
                .map(drop)
                .context("writing a mail file"),
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(drop)
                .context("sending a mail over SMTP"),
        }
    }
}
