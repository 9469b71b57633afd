//! Outgoing mail (lettre): one RFC 5322 `.eml` per mail in a folder, or SMTP.

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
        let body = encode_body(&body);
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
