//! Shutdown requests: SIGTERM (ECS stopping the task) and SIGINT (Ctrl-C) become one
//! watch flag that the poll loop and the batch in hand both look at.

use tokio::sync::watch;

/// Sets the flag.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Observes the flag.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn request(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is requested (at once if it already was). If every trigger is
    /// gone no request can come any more, so this then never resolves.
    pub async fn requested(&mut self) {
        if self.0.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Requests shutdown on the first SIGTERM or SIGINT.
pub fn on_signals(trigger: Trigger) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "shutdown requested: no new receives, finishing the jobs in hand"
        );
        trigger.request();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_wakes_every_observer() {
        let (t, s) = channel();
        let mut a = s.clone();
        let mut b = s;
        assert!(!a.is_requested());
        let wait = tokio::spawn(async move { a.requested().await });
        t.request();
        wait.await.unwrap();
        b.requested().await;
        assert!(b.is_requested());
    }
}
