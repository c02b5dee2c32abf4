//! What ends `serve`: SIGTERM or SIGINT, or a [`Stop`] handle an embedding
//! program (or a test) triggers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Asks a running `flowgate serve` to shut down gracefully: stop accepting,
/// finish the requests in flight, close the host, exit 0.
///
/// Cheap to clone; every clone stops the same server.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    notify: Notify,
    signals: bool,
}

impl Stop {
    /// Stops only when [`Stop::trigger`] is called (no signal handlers are installed).
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stops on SIGTERM or SIGINT too: what the `flowgate` binary uses.
    pub fn on_signals() -> Stop {
        Stop { inner: Arc::new(Inner { signals: true, ..Inner::default() }) }
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Resolves once triggered, or on a signal if asked to listen for them.
    pub(crate) async fn wait(&self) {
        let signalled = async {
            if self.inner.signals {
                signal().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = self.triggered() => {}
            () = signalled => {}
        }
    }

    async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.inner.triggered.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(unix)]
async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without handlers the default action (exit) still stops the process.
        _ => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
