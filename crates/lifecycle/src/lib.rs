#![doc = include_str!("../README.md")]

use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGINT (Ctrl-C) or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the signal watcher lives as long as the process"
    )]
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    shutdown
}
