//! The output gate: replies and events produced by a turn leave the host only after every
//! state write issued before them has committed (Durable Objects' output gate).
//!
//! The actor task never waits for a write: it issues the write, then hands the turn's
//! outputs to the gate, and goes on with the next input. Writes of one actor commit in
//! order (one socket, one per-actor queue in the engine), so releasing outputs in order
//! after the writes queued before them is enough.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rivet_envoy_protocol::KvResponseData;
use tokio::sync::{mpsc, oneshot, Notify};

/// A pending output: called with `true` to send it, `false` if a write before it failed
/// (then it should send an error instead, or nothing).
pub(crate) type Out = Box<dyn FnOnce(bool) + Send>;

enum Gated {
    Write(oneshot::Receiver<KvResponseData>),
    Release(Vec<Out>),
    Barrier(oneshot::Sender<bool>),
}

/// One actor's gate.
pub(crate) struct Gate {
    tx: mpsc::UnboundedSender<Gated>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Items handed to the gate task and not yet processed.
    queued: AtomicUsize,
    failed: AtomicBool,
    failure: Notify,
}

impl Gate {
    /// Starts the gate's task.
    pub fn new() -> Gate {
        let (tx, mut rx) = mpsc::unbounded_channel::<Gated>();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            failure: Notify::new(),
        });
        let task_shared = shared.clone();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Gated::Write(answer) => {
                        let ok = matches!(
                            answer.await,
                            Ok(KvResponseData::Put | KvResponseData::Delete)
                        );
                        if !ok && !task_shared.failed.swap(true, Ordering::SeqCst) {
                            tracing::error!(
                                "state write failed; holding back the outputs that depend on it"
                            );
                            task_shared.failure.notify_one();
                        }
                    }
                    Gated::Release(outs) => {
                        let ok = !task_shared.failed.load(Ordering::SeqCst);
                        for out in outs {
                            out(ok);
                        }
                    }
                    Gated::Barrier(done) => {
                        let _ = done.send(!task_shared.failed.load(Ordering::SeqCst));
                    }
                }
                task_shared.queued.fetch_sub(1, Ordering::AcqRel);
            }
        });
        Gate { tx, shared }
    }

    fn push(&self, item: Gated) {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(item).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Outputs after this wait for `answer`.
    pub fn write(&self, answer: oneshot::Receiver<KvResponseData>) {
        self.push(Gated::Write(answer));
    }

    /// Releases outputs once every write before them committed; at once when nothing is
    /// pending (the gate task being idle means nothing queued can be overtaken).
    pub fn release(&self, outs: Vec<Out>) {
        if outs.is_empty() {
            return;
        }
        if self.shared.queued.load(Ordering::Acquire) == 0 {
            let ok = !self.shared.failed.load(Ordering::SeqCst);
            for out in outs {
                out(ok);
            }
        } else {
            self.push(Gated::Release(outs));
        }
    }

    /// Waits until everything handed to the gate so far is done; `false` if a write failed.
    pub async fn barrier(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        self.push(Gated::Barrier(tx));
        rx.await.unwrap_or(false)
    }

    /// Resolves when a write has failed.
    pub async fn failed(&self) {
        if self.shared.failed.load(Ordering::SeqCst) {
            return;
        }
        self.shared.failure.notified().await;
    }
}
