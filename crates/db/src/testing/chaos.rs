//! A TCP proxy that can cut every connection through it and refuse new ones:
//! RabbitMQ or PostgreSQL going away and coming back, as a service sees it,
//! without disturbing the servers other tests share (crates.io's
//! `ChaosProxy`).

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::broadcast,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// A proxy on `127.0.0.1:<port>` in front of one upstream address.
pub struct ChaosProxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    /// Connections let through so far.
    pub connections: Arc<AtomicUsize>,
    cut: broadcast::Sender<()>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl ChaosProxy {
    /// Starts one in front of `upstream` (`host:port`).
    pub async fn start(upstream: impl Into<String>) -> anyhow::Result<Self> {
        let upstream: Arc<str> = upstream.into().into();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = broadcast::channel(16);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let connections = Arc::new(AtomicUsize::new(0));
        let (d, c, s, t, n) = (
            down.clone(),
            cut.clone(),
            shutdown.clone(),
            tasks.clone(),
            connections.clone(),
        );
        tasks.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = s.cancelled() => return,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                n.fetch_add(1, Ordering::SeqCst);
                let mut cut = c.subscribe();
                let s = s.clone();
                let upstream = upstream.clone();
                t.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&*upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.recv() => {}
                        () = s.cancelled() => {}
                    }
                });
            }
        });
        Ok(Self {
            port,
            down,
            connections,
            cut,
            shutdown,
            tasks,
        })
    }

    /// Drops every open connection and refuses new ones.
    pub fn break_connections(&self) {
        self.down.store(true, Ordering::SeqCst);
        let _ = self.cut.send(());
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Stops listening and closes every connection.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
