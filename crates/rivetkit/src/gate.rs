//! The output gate: replies and events produced by a turn leave the host only after every
//! state write issued before them has committed (Durable Objects' output gate).
//!
//! The actor task never waits for a write: it registers the write here, then hands the
//! turn's outputs over and goes on with its next input. The host's read loop completes writes
//! as the engine answers and releases the outputs queued behind them right there, so no task
//! of its own is needed (an idle actor's gate is an empty queue). Writes of one actor commit
//! in order (one socket, one per-actor queue in the engine), so releasing outputs in order
//! after the writes queued before them is enough.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A pending output: called with `true` to send it, `false` if a write before it failed
/// (then it should send an error instead, or nothing).
pub(crate) type Out = Box<dyn FnOnce(bool) + Send>;

enum Item {
    /// A state write (its KV request id); `done` once answered.
    Write {
        id: u32,
        done: Option<bool>,
    },
    /// An event the engine must have applied first (its index), e.g. a destroy intent: the
    /// reply of the action that destroyed the actor leaves once the destroy is recorded.
    Event {
        index: i64,
        done: bool,
    },
    Release(Vec<Out>),
    Barrier(oneshot::Sender<bool>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    failed: bool,
}

/// One actor's gate.
#[derive(Default)]
pub(crate) struct Gate {
    // Outputs run while this is held, so outputs released by the actor task and by the host's
    // read loop cannot overtake each other.
    queue: Mutex<Queue>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Outputs released after this wait for the write with KV request `id`. Registered before
    /// the request is sent, so its answer always finds it.
    pub fn write(&self, id: u32) {
        self.lock().items.push_back(Item::Write { id, done: None });
    }

    /// The engine answered write `id`. Returns true when this is the first failure (the actor
    /// must then crash: its state in memory is ahead of what storage holds).
    pub fn complete(&self, id: u32, ok: bool) -> bool {
        let mut q = self.lock();
        for item in q.items.iter_mut() {
            if let Item::Write { id: w, done } = item {
                if *w == id {
                    *done = Some(ok);
                    break;
                }
            }
        }
        Self::drain(&mut q)
    }

    /// Outputs released after this wait until the engine acknowledged event `index`.
    pub fn event(&self, index: i64) {
        self.lock()
            .items
            .push_back(Item::Event { index, done: false });
    }

    /// The engine acknowledged the actor's events up to `upto` (or, with `None`, the actor
    /// ended and nobody will: let everything out).
    pub fn events_acked(&self, upto: Option<i64>) {
        let mut q = self.lock();
        for item in q.items.iter_mut() {
            if let Item::Event { index, done } = item {
                if upto.is_none_or(|u| *index <= u) {
                    *done = true;
                }
            }
        }
        Self::drain(&mut q);
    }

    /// Pops what is done from the front, running the outputs it reaches. Returns true when a
    /// write failed for the first time.
    fn drain(q: &mut Queue) -> bool {
        let mut newly_failed = false;
        loop {
            match q.items.front() {
                Some(Item::Write { done: Some(ok), .. }) => {
                    if !*ok && !q.failed {
                        q.failed = true;
                        newly_failed = true;
                        tracing::error!(
                            "state write failed; holding back the outputs that depend on it"
                        );
                    }
                    q.items.pop_front();
                }
                Some(Item::Write { done: None, .. })
                | Some(Item::Event { done: false, .. })
                | None => break,
                Some(Item::Event { done: true, .. }) => {
                    q.items.pop_front();
                }
                Some(Item::Release(_)) | Some(Item::Barrier(_)) => {
                    let ok = !q.failed;
                    match q.items.pop_front() {
                        Some(Item::Release(outs)) => outs.into_iter().for_each(|out| out(ok)),
                        Some(Item::Barrier(done)) => drop(done.send(ok)),
                        _ => {}
                    }
                }
            }
        }
        if q.items.is_empty() && q.items.capacity() > 16 {
            q.items.shrink_to_fit();
        }
        newly_failed
    }

    /// Releases outputs once every write before them committed; at once when none is pending.
    pub fn release(&self, outs: Vec<Out>) {
        if outs.is_empty() {
            return;
        }
        let mut q = self.lock();
        if q.items.is_empty() {
            let ok = !q.failed;
            outs.into_iter().for_each(|out| out(ok));
        } else {
            q.items.push_back(Item::Release(outs));
        }
    }

    /// Waits until every write registered so far has been answered; `false` if one failed.
    pub async fn barrier(&self) -> bool {
        let rx = {
            let mut q = self.lock();
            if q.items.is_empty() {
                return !q.failed;
            }
            let (tx, rx) = oneshot::channel();
            q.items.push_back(Item::Barrier(tx));
            rx
        };
        rx.await.unwrap_or(false)
    }

    /// Gives back the queue's capacity when nothing waits in it.
    pub fn compact(&self) {
        let mut q = self.lock();
        if q.items.is_empty() {
            q.items.shrink_to_fit();
        }
    }

    /// Whether a write has failed.
    pub fn failed(&self) -> bool {
        self.lock().failed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(&str) -> Out) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let out = move |name: &str| -> Out {
            let (l, name) = (l.clone(), name.to_string());
            Box::new(move |ok| l.lock().unwrap().push(format!("{name}:{ok}")))
        };
        (log, out)
    }

    #[test]
    fn outputs_wait_for_the_writes_before_them_in_order() {
        let gate = Gate::default();
        let (log, out) = recorder();
        gate.release(vec![out("a")]);
        assert_eq!(*log.lock().unwrap(), ["a:true"], "nothing pending: at once");
        gate.write(1);
        gate.release(vec![out("b")]);
        gate.write(2);
        gate.release(vec![out("c")]);
        gate.release(vec![out("d")]);
        // Answers may come in any order; outputs still leave in turn order.
        assert!(!gate.complete(2, true));
        assert_eq!(log.lock().unwrap().len(), 1);
        assert!(!gate.complete(1, true));
        assert_eq!(
            *log.lock().unwrap(),
            ["a:true", "b:true", "c:true", "d:true"]
        );
    }

    #[test]
    fn a_failed_write_fails_what_follows_it_once() {
        let gate = Gate::default();
        let (log, out) = recorder();
        gate.write(1);
        gate.release(vec![out("x")]);
        assert!(gate.complete(1, false));
        gate.write(2);
        gate.release(vec![out("y")]);
        assert!(!gate.complete(2, true), "reported once");
        gate.release(vec![out("z")]);
        assert_eq!(*log.lock().unwrap(), ["x:false", "y:false", "z:false"]);
        assert!(gate.failed());
    }

    #[test]
    fn outputs_after_an_event_wait_for_its_acknowledgement() {
        let gate = Gate::default();
        let (log, out) = recorder();
        gate.event(4);
        gate.release(vec![out("reply")]);
        gate.events_acked(Some(3));
        assert!(log.lock().unwrap().is_empty());
        gate.events_acked(Some(4));
        assert_eq!(*log.lock().unwrap(), ["reply:true"]);
        gate.event(9);
        gate.release(vec![out("late")]);
        gate.events_acked(None);
        assert_eq!(
            log.lock().unwrap().len(),
            2,
            "an ended actor lets everything out"
        );
    }

    #[tokio::test]
    async fn a_barrier_resolves_after_the_writes_before_it() {
        let gate = Arc::new(Gate::default());
        assert!(gate.barrier().await, "nothing pending");
        gate.write(7);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.barrier().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        gate.complete(7, true);
        assert!(waiting.await.unwrap());
    }
}
