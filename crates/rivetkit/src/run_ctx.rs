//! The context of an actor's background `run` task.

use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use crate::actor::Actor;
use crate::ctx::{Core, Ctx};
use crate::instance::Jobs;
use crate::kv::Kv;

/// What `run` gets: the actor's identity, storage and client, and [`RunCtx::update`] to act
/// on the state between other inputs.
pub struct RunCtx<A: Actor> {
    pub(crate) core: Arc<Core>,
    pub(crate) jobs: Arc<Jobs<A>>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl<A: Actor> RunCtx<A> {
    /// The actor's id.
    pub fn actor_id(&self) -> &str {
        &self.core.actor_id
    }

    /// The actor's serialized key.
    pub fn key(&self) -> Option<&str> {
        self.core.key.as_deref()
    }

    /// Runs `f` on the state as one turn of the actor (saved and gated like an action).
    /// `None` if the actor is stopping.
    pub async fn update<R, F>(&self, f: F) -> Option<R>
    where
        F: FnOnce(&mut A, &mut Ctx<A>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: crate::instance::Job<A> = Box::new(move |state, ctx| {
            let result = f(state, ctx);
            // The result is an output of the turn: it waits for the turn's state write.
            ctx.core.push_out(Box::new(move |_| {
                let _ = tx.send(result);
            }));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.core.wake.notify_one();
        rx.await.ok()
    }

    /// Resolves when the actor is stopping; `run` should return soon after.
    pub async fn stopping(&mut self) {
        while !*self.stop.borrow() {
            if self.stop.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the actor is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The actor's key-value storage.
    pub fn kv(&self) -> Kv {
        Kv::new(self.core.host.clone(), self.core.actor_id.clone())
    }

    /// A client for calling other actors.
    pub fn client(&self) -> &rivetkit_client::Client {
        &self.core.host.client
    }
}
