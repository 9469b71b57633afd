//! A TCP proxy that can cut every connection through it and refuse new ones:
//! RabbitMQ going away and coming back, as the services see it, without
//! disturbing the broker other tests share (crates.io's `ChaosProxy`).
#![expect(clippy::unwrap_used, reason = "test harness")]

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
    pub async fn start(upstream: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
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
                t.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
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
        Self {
            port,
            down,
            connections,
            cut,
            shutdown,
            tasks,
        }
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

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
