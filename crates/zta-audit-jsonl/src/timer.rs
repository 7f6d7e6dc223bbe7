//! Deadlines for appends waiting on a full queue (`on_full: wait`), kept by a small thread of
//! the sink's own: a wait then ends on time even while the writer is stuck in a slow fsync, and
//! whatever runtime the caller uses (no tokio timer needed).

use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

/// The deadline thread. Dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Deadlines {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Dropping a sender tells its receiver the deadline has passed.
    waiting: Vec<(Instant, oneshot::Sender<()>)>,
    stop: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Deadlines {
    /// Starts the thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Inner::default());
        let run = inner.clone();
        let thread =
            std::thread::Builder::new().name("zta-audit-deadlines".into()).spawn(move || serve(&run))?;
        Ok(Self { inner, thread: Some(thread) })
    }

    /// A receiver that completes (with an error) once `wait` has passed; `None` if that time is
    /// too far off to represent (it never comes).
    pub(crate) fn after(&self, wait: Duration) -> Option<oneshot::Receiver<()>> {
        let due = Instant::now().checked_add(wait)?;
        let (tx, rx) = oneshot::channel();
        let mut state = self.inner.lock();
        let earliest = state.waiting.iter().all(|(d, _)| due < *d);
        state.waiting.push((due, tx));
        drop(state);
        if earliest {
            self.inner.changed.notify_one();
        }
        Some(rx)
    }
}

fn serve(inner: &Inner) {
    let mut state = inner.lock();
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        // Expired and abandoned (the append found room) entries go; dropping a sender wakes
        // its receiver.
        state.waiting.retain(|(due, tx)| *due > now && !tx.is_closed());
        state = match state.waiting.iter().map(|(due, _)| *due).min() {
            None => inner.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(due) => {
                inner
                    .changed
                    .wait_timeout(state, due.saturating_duration_since(now))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
        };
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_fires_and_an_abandoned_one_is_dropped() {
        let deadlines = Deadlines::start().unwrap();
        let long = deadlines.after(Duration::from_secs(3600)).unwrap();
        let short = deadlines.after(Duration::from_millis(1)).unwrap();
        // The shorter deadline fires although a longer one was registered first.
        assert!(short.await.is_err());
        drop(long);
        assert!(deadlines.after(Duration::MAX).is_none());
        drop(deadlines); // joins the thread
    }
}
