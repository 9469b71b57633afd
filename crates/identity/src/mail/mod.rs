//! Outgoing mail (lettre): one RFC 5322 `.eml` per mail in a folder, or SMTP.
//!
//! Use cases render a [`Mail`] and queue it in `mailOutbox` in the
//! transaction that issues its token; the [`worker`] sends it. Nothing here
//! is called while a request waits, so a slow or failing mail server never
//! fails a request.

pub mod worker;

use std::time::Duration;

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Body, Mailbox,
        header::{ContentTransferEncoding, ContentType},
    },
};
use secrecy::ExposeSecret;

use crate::config::MailTransport;

/// Renders and sends the service's mails.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    public_url: String,
    /// The most one send may take, connecting included (`SMTP_TIMEOUT_SECS`).
    timeout: Duration,
}

/// A rendered mail, ready to queue and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport; for `file`, creates the folder. Each send gives
    /// up after `timeout`.
    pub fn new(
        transport: &MailTransport,
        from: &str,
        public_url: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let transport = match transport {
            MailTransport::File(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating MAIL_DIR {}", dir.display()))?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            MailTransport::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("reading SMTP_URL")?
                    .timeout(Some(timeout))
                    .build(),
            ),
        };
        Ok(Self {
            transport,
            from: from.parse().context("reading MAIL_FROM")?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The verification mail, with a link carrying `?token=`.
    pub fn verification(&self, to: &str, name: &str, token: &str) -> Mail {
        let link = format!("{}/verify-email?token={token}", self.public_url);
        let body = format!(
            "Hello {name},\n\nplease confirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in 24 hours. If you did not sign up, ignore this mail.\n"
        );
        mail(to, "Confirm your email address", body)
    }

    /// The password reset mail, with a link carrying `?token=`.
    pub fn password_reset(&self, to: &str, name: &str, token: &str) -> Mail {
        let link = format!("{}/reset-password?token={token}", self.public_url);
        let body = format!(
            "Hello {name},\n\nsomeone asked to reset the password of this account. To choose a new \
             password, open this link:\n\n{link}\n\nThe link works once and expires in 1 hour. If it \
             was not you, ignore this mail: your password stays as it is.\n"
        );
        mail(to, "Reset your password", body)
    }

    /// Sends `mail`, giving up after the timeout.
    pub async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.parse().context("recipient address")?)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(encode_body(&mail.body))
            .context("building a mail")?;
        tokio::time::timeout(self.timeout, self.deliver(message))
            .await
            .with_context(|| format!("sending a mail timed out after {:?}", self.timeout))?
    }

    async fn deliver(&self, message: Message) -> anyhow::Result<()> {
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

fn mail(to: &str, subject: &str, body: String) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body,
    }
}

/// The body as 7bit (ASCII) or 8bit (UTF-8) text with CRLF line endings:
/// valid MIME for lines up to 998 octets (RFC 5322 §2.1.1, RFC 2045 §2.7-8).
/// lettre would pick quoted-printable for any line over 76 characters,
/// which breaks the link across lines and turns `=` into `=3D`: a person
/// or a script reading the `.eml` could no longer copy it.
fn encode_body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let fits = crlf
        .split("\r\n")
        .all(|line| line.len() <= 998 && !line.contains(['\r', '\0']));
    if !fits {
        return Body::new(crlf);
    }
    let encoding = if crlf.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_links_stay_on_one_line_unencoded() {
        let link = format!(
            "http://localhost:8080/verify-email?token={}",
            "a".repeat(43)
        );
        let body = encode_body(&format!("Hello Żółw,\n\n{link}\n"));
        assert_eq!(body.encoding(), ContentTransferEncoding::EightBit);
        let raw = String::from_utf8(body.into_vec()).unwrap();
        assert!(raw.contains(&format!("\r\n{link}\r\n")), "{raw}");
        assert_eq!(
            encode_body("plain\n").encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_eq!(
            encode_body(&"x".repeat(1200)).encoding(),
            ContentTransferEncoding::QuotedPrintable
        );
    }
}
