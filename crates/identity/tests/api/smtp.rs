//! A fake SMTP server (RFC 5321, the subset lettre speaks over plain TCP)
//! whose behaviour a test switches: hang without a greeting, refuse mail
//! with a temporary error, or accept it.
#![expect(clippy::unwrap_used, reason = "test harness: a failure fails the test")]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU8, Ordering},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What the server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Accepts the connection and never says a word.
    Hang = 0,
    /// Greets, then answers `MAIL FROM` with `451` (try again later).
    Refuse = 1,
    /// Takes every mail.
    Accept = 2,
}

pub struct FakeSmtp {
    /// `smtp://127.0.0.1:<port>` (no TLS).
    pub url: String,
    mode: Arc<AtomicU8>,
    received: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    _tasks: TaskTracker,
}

impl FakeSmtp {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        {
            let (mode, received, stop, inner) =
                (mode.clone(), received.clone(), stop.clone(), tasks.clone());
            tasks.spawn(async move {
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        () = stop.cancelled() => return,
                    };
                    let (mode, received, stop) = (mode.clone(), received.clone(), stop.clone());
                    inner.spawn(async move {
                        tokio::select! {
                            _ = session(socket, &mode, &received) => {}
                            () = stop.cancelled() => {}
                        }
                    });
                }
            });
        }
        Self {
            url,
            mode,
            received,
            stop,
            _tasks: tasks,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every mail accepted so far, as the DATA the client sent.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn mode(mode: &AtomicU8) -> Mode {
    match mode.load(Ordering::SeqCst) {
        0 => Mode::Hang,
        1 => Mode::Refuse,
        _ => Mode::Accept,
    }
}

async fn session(
    socket: TcpStream,
    current: &AtomicU8,
    received: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    if mode(current) == Mode::Hang {
        // Hold the connection open, silent, until the client gives up.
        std::future::pending::<()>().await;
    }
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 fake ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-fake\r\n250 8BITMIME\r\n",
            "MAIL" if mode(current) == Mode::Refuse => b"451 4.3.0 try again later\r\n",
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    data.push_str(&line);
                    data.push('\n');
                }
                received.lock().unwrap().push(data);
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
